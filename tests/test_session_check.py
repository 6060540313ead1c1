"""The per-request check: one Redis round trip, the database when Redis does not
know, and never "alive" for something unknown."""

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from tokens import store
from tokens.models import Session

from .servers import PrivateRedis, free_port


def _flush_our_keys():
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{settings.DUOTOKEN['REDIS_KEY_PREFIX']}:*"))
    if keys:
        client.delete(*keys)


def _caches_at(url):
    return {alias: {**conf, "LOCATION": url} for alias, conf in settings.CACHES.items()}


def test_me_without_cookie_is_not_authenticated_with_www_authenticate(spa, db):
    response = spa.me()

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"}
    assert response["WWW-Authenticate"] == 'Cookie realm="api"'


def test_expired_access_token_is_access_token_expired(at_noon, time_machine):
    time_machine.shift(timedelta(seconds=300))

    response = at_noon.me()

    assert response.status_code == 401
    assert response.json() == {
        "detail": "The access token has expired; refresh the session and retry.",
        "code": "access_token_expired",
    }


def test_refresh_after_access_expiry_restores_access(at_noon, time_machine):
    time_machine.shift(timedelta(seconds=301))
    assert at_noon.me().json()["code"] == "access_token_expired"

    assert at_noon.refresh().status_code == 200
    assert at_noon.me().status_code == 200


def test_tampered_access_token_is_access_token_invalid(logged_in):
    header, payload, signature = logged_in.cookie("access").split(".")
    logged_in.set_cookie("access", f"{header}.{payload}.{signature[::-1]}")

    response = logged_in.me()

    assert response.status_code == 401
    assert response.json()["code"] == "access_token_invalid"


def test_hot_path_makes_no_database_query(logged_in, django_assert_num_queries):
    logged_in.me()  # the login cached the session; make sure the user is cached too

    with django_assert_num_queries(0):
        response = logged_in.me()

    assert response.status_code == 200


def test_redis_miss_falls_back_to_the_database_then_caches(logged_in, django_assert_num_queries):
    _flush_our_keys()

    with django_assert_num_queries(1):
        assert logged_in.me().status_code == 200
    with django_assert_num_queries(0):
        assert logged_in.me().status_code == 200


def test_redis_flush_never_revives_a_revoked_session(logged_in, make_spa):
    captured = logged_in.cookie("access")
    logged_in.logout()
    _flush_our_keys()
    attacker = make_spa()
    attacker.set_cookie("access", captured)

    assert attacker.me().json()["code"] == "session_revoked"
    assert attacker.me().json()["code"] == "session_revoked"


def test_deactivated_user_is_refused_at_once(logged_in, alice):
    alice.is_active = False
    alice.save()

    assert logged_in.me().json()["code"] == "session_revoked"
    assert Session.objects.get().revoke_reason == "user_deactivated"


def test_deleted_user_is_refused_at_once(logged_in, alice):
    alice.delete()

    assert logged_in.me().json()["code"] == "session_revoked"
    assert logged_in.refresh().json()["code"] == "refresh_token_invalid"


def test_user_changes_show_on_the_next_request(logged_in, alice):
    logged_in.me()
    alice.email = "new@example.com"
    alice.save()

    assert logged_in.me().json()["email"] == "new@example.com"


def test_request_user_is_a_real_model_instance_with_lazy_fields(logged_in, alice):
    from tokens.selectors import session_user

    logged_in.me()
    user = session_user(session_id=str(Session.objects.get().pk), user_id=str(alice.pk))

    assert isinstance(user, type(alice)) and user.pk == alice.pk
    assert user.check_password("correct horse battery staple")  # deferred field loads on demand


@pytest.fixture
def dead_redis():
    with override_settings(CACHES=_caches_at(f"redis://127.0.0.1:{free_port()}/0")):
        yield


def test_redis_down_authenticated_requests_answer_from_the_database(logged_in, dead_redis):
    response = logged_in.me()

    assert response.status_code == 200


def test_redis_down_revoked_session_stays_refused(logged_in, make_spa, dead_redis):
    captured = logged_in.cookie("access")
    logged_in.logout()
    attacker = make_spa()
    attacker.set_cookie("access", captured)

    assert attacker.me().json()["code"] == "session_revoked"


def test_redis_down_refresh_still_rotates_durably(logged_in, dead_redis):
    response = logged_in.refresh()

    assert response.status_code == 200
    assert Session.objects.get().generation == 2


def test_redis_down_login_fails_closed_with_503(spa, alice, dead_redis):
    response = spa.login()

    assert response.status_code == 503
    assert response.json() == {
        "detail": "The service is temporarily unavailable; retry shortly.",
        "code": "service_unavailable",
    }
    assert response["Retry-After"] == "1"
    assert "dt_access" not in response.cookies


def test_service_resumes_when_redis_returns_empty(alice, make_spa, time_machine):
    time_machine.move_to("2026-11-23 12:00:00+00:00", tick=False)
    server = PrivateRedis().start()
    try:
        with override_settings(CACHES=_caches_at(server.url)):
            owner = make_spa()
            owner.login()
            revoked = make_spa()
            revoked.login()
            revoked_access = revoked.cookie("access")
            revoked.logout()

            server.kill()
            assert owner.me().status_code == 200  # from the database
            server.restart()  # back, and empty
            time_machine.shift(timedelta(seconds=2))  # past the breaker

            assert owner.me().status_code == 200
            assert owner.refresh().status_code == 200
            revoked.set_cookie("access", revoked_access)
            assert revoked.me().json()["code"] == "session_revoked"
            assert owner.login().status_code == 200  # throttles work again
    finally:
        server.kill()


def test_hot_path_stays_off_the_database_long_after_the_old_cache_ttl(at_noon, django_assert_num_queries, time_machine):
    at_noon.me()

    # Revisits after pauses longer than any short cache TTL, across refreshes, for
    # well past the access token lifetime: every check is answered from Redis.
    for _ in range(3):
        time_machine.shift(timedelta(seconds=61))
        with django_assert_num_queries(0):
            assert at_noon.me().status_code == 200
        time_machine.shift(timedelta(seconds=200))
        with django_assert_num_queries(0):
            assert at_noon.get("/api/auth/verify/").status_code == 200
        time_machine.shift(timedelta(seconds=40))
        assert at_noon.me().json()["code"] == "access_token_expired"
        assert at_noon.refresh().status_code == 200


def test_session_entry_lives_as_long_as_the_session_and_the_snapshot_one_access_lifetime(logged_in, alice):
    logged_in.me()
    sid = str(Session.objects.get().pk)
    client = redis.Redis.from_url(settings.REDIS_URL)
    session_ttl = client.ttl(store.session_key(sid, str(alice.pk)))
    user_ttl = client.ttl(store.user_key(str(alice.pk)))

    refresh_lifetime = int(settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"].total_seconds())
    access_lifetime = int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds())
    assert refresh_lifetime - 5 <= session_ttl <= refresh_lifetime + 1
    assert access_lifetime <= user_ttl <= access_lifetime + 2


def test_user_change_without_signals_shows_once_the_access_token_is_renewed(at_noon, alice, make_spa, time_machine):
    from accounts.models import User

    assert at_noon.me().json()["email"] == alice.email
    User.objects.filter(pk=alice.pk).update(email="bypass@example.com")

    # Within one access token lifetime the snapshot may still be the old one; any
    # access token usable after that was minted by a refresh that rewrote it.
    time_machine.shift(timedelta(seconds=301))
    assert at_noon.me().json()["code"] == "access_token_expired"
    assert at_noon.refresh().status_code == 200

    assert at_noon.me().json()["email"] == "bypass@example.com"
