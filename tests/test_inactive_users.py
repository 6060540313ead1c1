"""A session of an inactive user ends for good, however `is_active` was changed:
QuerySet.update() sends no signal, so refresh, the database fallback and the Redis
snapshot each end what they find."""

import redis
from django.conf import settings
from django.contrib.auth import get_user_model

from tokens import store
from tokens.models import RevokeReason, Session

REVOKED = {"detail": "This session has ended; log in again.", "code": "session_revoked"}


def set_active(user, value: bool) -> None:
    # No save(), no signal: what a bulk admin script or a data migration does.
    get_user_model().objects.filter(pk=user.pk).update(is_active=value)


def forget_everything_in_redis() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{settings.DUOTOKEN['REDIS_KEY_PREFIX']}:*", count=1000))
    if keys:
        client.delete(*keys)


def ended_reasons(user) -> set[tuple[bool, str]]:
    return {(s.revoked_at is not None, s.revoke_reason) for s in Session.objects.filter(user=user)}


def keep_cookies(client):
    """Copies of the cookies, as a client that ignores Set-Cookie (or a thief) keeps them."""
    access, refresh = client.cookie("access"), client.cookie("refresh")

    def restore() -> None:
        client.set_cookie("access", access)
        client.set_cookie("refresh", refresh)

    return restore


def test_refresh_of_user_deactivated_by_update_is_401_and_ends_the_session_for_good(logged_in, alice):
    restore = keep_cookies(logged_in)
    set_active(alice, False)

    response = logged_in.refresh()

    assert response.status_code == 401
    assert response.json() == REVOKED
    assert ended_reasons(alice) == {(True, RevokeReason.USER_DEACTIVATED)}
    set_active(alice, True)
    restore()
    assert logged_in.me().json() == REVOKED
    assert logged_in.refresh().json() == REVOKED


def test_session_of_user_deactivated_by_update_found_by_database_fallback_is_ended(logged_in, alice):
    set_active(alice, False)
    forget_everything_in_redis()  # e.g. a Redis restart: the database answers

    response = logged_in.me()

    assert response.status_code == 401
    assert response.json() == REVOKED
    assert ended_reasons(alice) == {(True, RevokeReason.USER_DEACTIVATED)}
    set_active(alice, True)
    forget_everything_in_redis()
    assert logged_in.me().json() == REVOKED
    assert logged_in.refresh().json() == REVOKED


def test_session_of_user_deactivated_by_update_found_on_snapshot_reload_is_ended(logged_in, alice, make_spa):
    other = make_spa()
    assert other.login().status_code == 200
    set_active(alice, False)
    store.forget_user(str(alice.pk))  # the snapshot expired; the sessions are still cached alive

    response = logged_in.me()

    assert response.status_code == 401
    assert response.json() == REVOKED
    assert ended_reasons(alice) == {(True, RevokeReason.USER_DEACTIVATED)}
    set_active(alice, True)
    assert other.me().json() == REVOKED
    assert other.refresh().json() == REVOKED
