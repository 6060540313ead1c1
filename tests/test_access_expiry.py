"""What an expired access token is answered with. The access cookie outlives its
token, so the browser keeps presenting it, and the answer tells the client which
one thing to do: refresh, just retry, or log in."""

from datetime import timedelta

from tokens.models import RevokeReason, Session
from tokens.services import sessions_revoke

ACCESS_LIFETIME = timedelta(seconds=300)


def test_access_cookie_lives_as_long_as_the_refresh_cookie_after_rotation(at_noon, time_machine):
    time_machine.shift(timedelta(hours=1))

    response = at_noon.refresh()

    assert response.status_code == 200
    assert response.cookies["dt_access"]["max-age"] == 7 * 24 * 3600
    assert response.cookies["dt_access"]["max-age"] == response.cookies["dt_refresh"]["max-age"]


def test_access_cookie_of_a_grace_replay_lives_as_long_as_its_refresh_cookie(at_noon, make_spa, time_machine):
    other_tab = make_spa()
    other_tab.set_cookie("refresh", at_noon.cookie("refresh"))
    assert at_noon.refresh().status_code == 200
    time_machine.shift(timedelta(seconds=10))

    replay = other_tab.refresh()

    assert replay.status_code == 200
    assert replay.cookies["dt_access"]["max-age"] == 7 * 24 * 3600 - 10
    assert replay.cookies["dt_access"]["max-age"] == replay.cookies["dt_refresh"]["max-age"]


def test_expired_access_token_of_a_live_session_costs_one_query(at_noon, time_machine, django_assert_num_queries):
    time_machine.shift(ACCESS_LIFETIME)

    with django_assert_num_queries(1):
        response = at_noon.me()

    assert response.status_code == 401
    assert response.json() == {
        "detail": "The access token has expired; refresh the session and retry.",
        "code": "access_token_expired",
    }
    assert response["WWW-Authenticate"] == 'Cookie realm="api"'


def test_expired_access_token_older_than_the_session_generation_is_stale(at_noon, time_machine):
    old_access = at_noon.cookie("access")
    time_machine.shift(ACCESS_LIFETIME)
    assert at_noon.refresh().status_code == 200

    at_noon.set_cookie("access", old_access)
    response = at_noon.me()

    assert response.status_code == 401
    assert response.json() == {
        "detail": "The access token has expired and the session has been refreshed since; retry with the newer cookie.",
        "code": "access_token_stale",
    }
    assert Session.objects.get().generation == 2


def test_unexpired_access_token_of_an_earlier_generation_still_works(at_noon, time_machine):
    old_access = at_noon.cookie("access")
    time_machine.shift(timedelta(seconds=10))
    assert at_noon.refresh().status_code == 200

    at_noon.set_cookie("access", old_access)

    assert at_noon.me().status_code == 200


def test_expired_access_token_of_a_revoked_session_says_session_revoked(at_noon, alice, time_machine):
    time_machine.shift(ACCESS_LIFETIME)
    sessions_revoke(reason=RevokeReason.ADMIN, user=alice)

    response = at_noon.me()

    assert response.status_code == 401
    assert response.json() == {"detail": "This session has ended; log in again.", "code": "session_revoked"}


def test_expired_access_token_of_a_deleted_session_says_session_revoked(at_noon, time_machine):
    time_machine.shift(ACCESS_LIFETIME)
    Session.objects.all().delete()

    response = at_noon.me()

    assert response.status_code == 401
    assert response.json()["code"] == "session_revoked"


def test_expired_access_cookie_does_not_stand_in_the_way_of_refresh_and_logout(at_noon, time_machine):
    time_machine.shift(ACCESS_LIFETIME)

    assert at_noon.refresh().status_code == 200
    assert at_noon.me().status_code == 200
    time_machine.shift(ACCESS_LIFETIME)
    assert at_noon.logout().status_code == 204
    assert Session.objects.get().revoke_reason == RevokeReason.LOGOUT


def test_no_access_cookie_is_not_authenticated_even_with_a_refresh_cookie(at_noon):
    at_noon.cookies.pop("dt_access")

    response = at_noon.me()

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"}


def test_refresh_says_whether_it_rotated_or_replayed_the_same_successor(at_noon, make_spa):
    other_tab = make_spa()
    other_tab.set_cookie("refresh", at_noon.cookie("refresh"))

    first = at_noon.refresh()
    second = other_tab.refresh()

    assert (first.status_code, first["Duotoken-Refresh"]) == (200, "rotated")
    assert (second.status_code, second["Duotoken-Refresh"]) == (200, "replayed")
    assert second.cookies["dt_refresh"].value == first.cookies["dt_refresh"].value
    assert Session.objects.get().generation == 2
