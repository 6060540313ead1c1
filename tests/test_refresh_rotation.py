import jwt
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tokens.models import Session


def _claims(raw):
    return jwt.decode(raw, options={"verify_signature": False})


def test_refresh_rotates_to_a_new_generation_with_new_cookies(logged_in):
    old_access, old_refresh = logged_in.cookie("access"), logged_in.cookie("refresh")

    response = logged_in.refresh()

    assert response.status_code == 200
    session = Session.objects.get()
    assert response.json() == {
        "session": {
            "id": str(session.pk),
            "expiry": session.idle_expires_at.isoformat().replace("+00:00", "Z"),
            "absolute_expiry": session.absolute_expires_at.isoformat().replace("+00:00", "Z"),
        }
    }
    assert session.generation == 2
    new_access, new_refresh = logged_in.cookie("access"), logged_in.cookie("refresh")
    assert new_access != old_access and new_refresh != old_refresh
    assert _claims(new_refresh)["gen"] == 2 and _claims(new_refresh)["sid"] == str(session.pk)
    assert logged_in.me().status_code == 200


def test_refresh_blacklists_the_old_token_in_the_database_before_answering(logged_in):
    logged_in.refresh()

    # The generation counter is the blacklist: generation 1 is no longer current.
    assert Session.objects.get().generation == 2


def test_refresh_happy_path_is_one_user_read_one_update_and_its_log_row(logged_in):
    with CaptureQueriesContext(connection) as queries:
        response = logged_in.refresh()

    assert response.status_code == 200
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # The user's activity and password fingerprint (an index lookup), then the
    # compare-and-set that also matches the fingerprint, and the step it adds to the
    # session's story (tokens.timeline).
    assert [sql.split()[0] for sql in statements] == ["SELECT", "UPDATE", "INSERT"]
    assert '"accounts_user"' in statements[0] and '"credential"' in statements[1]
    assert '"tokens_rotation"' in statements[2]


def test_refresh_without_cookie_is_refresh_token_missing(spa, alice):
    response = spa.refresh()

    assert response.status_code == 401
    assert response.json() == {"detail": "No refresh token was sent.", "code": "refresh_token_missing"}


def test_refresh_with_garbage_is_refresh_token_invalid_and_clears_cookies(logged_in):
    logged_in.set_cookie("refresh", "not-a-token")

    response = logged_in.refresh()

    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_invalid"
    assert response.cookies["dt_refresh"].value == "" and response.cookies["dt_access"].value == ""


def test_refresh_with_an_access_token_is_refresh_token_invalid(logged_in):
    logged_in.set_cookie("refresh", logged_in.cookie("access"))

    response = logged_in.refresh()

    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_invalid"
    assert Session.objects.get().generation == 1


def test_me_with_a_refresh_token_as_access_is_access_token_invalid(logged_in):
    logged_in.set_cookie("access", logged_in.cookie("refresh"))

    response = logged_in.me()

    assert response.status_code == 401
    assert response.json()["code"] == "access_token_invalid"


def test_refresh_tokens_carry_session_and_generation_and_never_the_password(logged_in):
    claims = _claims(logged_in.cookie("refresh"))

    assert set(claims) == {"iss", "aud", "token_type", "iat", "exp", "jti", "user_id", "sid", "gen", "sx"}
    assert claims["token_type"] == "refresh" and claims["gen"] == 1


@pytest.mark.parametrize("rounds", [5])
def test_each_refresh_moves_exactly_one_generation(logged_in, rounds):
    for expected in range(2, 2 + rounds):
        assert logged_in.refresh().status_code == 200
        assert Session.objects.get().generation == expected


def test_token_minted_by_a_host_with_a_faster_clock_is_accepted(logged_in, time_machine):
    # Several hosts never agree to the second; a token "from the future" is still ours.
    from datetime import timedelta

    from tokens import clock

    time_machine.move_to(clock.now() - timedelta(seconds=5), tick=False)

    assert logged_in.me().status_code == 200
    assert logged_in.refresh().status_code == 200
