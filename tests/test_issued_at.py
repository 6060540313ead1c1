"""`iat` is never later than the moment a token is issued: a verifier elsewhere
with no leeway (PyJWT's default) accepts a token the instant it arrives, and the
tokens stay deterministic because the issue time is rounded down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from tokens.conf import auth_settings
from tokens.models import Session

# Just past a whole second: the moment where rounding up dated tokens in the future.
LOGIN_AT = datetime(2026, 11, 23, 12, 0, 0, 600_000, tzinfo=UTC)


@pytest.fixture
def at_a_fraction(spa, alice, time_machine):
    time_machine.move_to(LOGIN_AT, tick=False)
    return spa


def claims_of(raw: str) -> dict:
    return jwt.decode(raw, options={"verify_signature": False})


def pyjwt_default_decode(client, raw: str) -> dict:
    """PyJWT with its defaults (no leeway: `iat` in the future is refused), keyed from our JWKS."""
    key = jwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())[jwt.get_unverified_header(raw)["kid"]]
    conf = auth_settings()
    return jwt.decode(raw, key, algorithms=[key.algorithm_name], audience=conf.audience, issuer=conf.issuer)


def test_login_tokens_issued_mid_second_carry_the_second_they_fall_in(at_a_fraction):
    response = at_a_fraction.login()

    assert response.status_code == 200
    whole = int(LOGIN_AT.replace(microsecond=0).timestamp())
    for kind in ("access", "refresh"):
        assert claims_of(at_a_fraction.cookie(kind))["iat"] == whole


def test_login_access_token_verifies_with_pyjwt_defaults_at_once(at_a_fraction):
    assert at_a_fraction.login().status_code == 200

    claims = pyjwt_default_decode(at_a_fraction, at_a_fraction.cookie("access"))

    assert claims["token_type"] == "access"


def test_refreshed_access_token_verifies_with_pyjwt_defaults_at_once(at_a_fraction, time_machine):
    assert at_a_fraction.login().status_code == 200
    time_machine.shift(timedelta(seconds=61, microseconds=300_000))

    assert at_a_fraction.refresh().status_code == 200

    claims = pyjwt_default_decode(at_a_fraction, at_a_fraction.cookie("access"))
    assert claims["iat"] == int((LOGIN_AT + timedelta(seconds=61)).replace(microsecond=0).timestamp())


def test_session_rotated_at_is_the_issue_second_and_never_after_the_refresh(at_a_fraction, time_machine):
    assert at_a_fraction.login().status_code == 200
    time_machine.shift(timedelta(seconds=30))
    refreshed_at = LOGIN_AT + timedelta(seconds=30)

    assert at_a_fraction.refresh().status_code == 200

    session = Session.objects.get()
    assert session.rotated_at == refreshed_at.replace(microsecond=0)
    assert session.idle_expires_at == session.rotated_at + auth_settings().refresh_lifetime
    assert int(session.rotated_at.timestamp()) == claims_of(at_a_fraction.cookie("refresh"))["iat"]


def test_cookies_issued_mid_second_live_the_full_refresh_lifetime(at_a_fraction):
    response = at_a_fraction.login()

    lifetime = int(auth_settings().refresh_lifetime.total_seconds())
    assert response.cookies["dt_refresh"]["max-age"] == lifetime
    assert response.cookies["dt_access"]["max-age"] == lifetime
    assert claims_of(at_a_fraction.cookie("refresh"))["exp"] == int(LOGIN_AT.timestamp()) + lifetime


def test_grace_replay_mid_second_gets_the_byte_identical_successor(at_a_fraction, make_spa, time_machine):
    assert at_a_fraction.login().status_code == 200
    other_tab = make_spa()
    other_tab.set_cookie("refresh", at_a_fraction.cookie("refresh"))
    time_machine.shift(timedelta(seconds=5, microseconds=200_000))
    assert at_a_fraction.refresh().status_code == 200
    time_machine.shift(timedelta(seconds=2, microseconds=500_000))

    replay = other_tab.refresh()

    assert (replay.status_code, replay["Duotoken-Refresh"]) == (200, "replayed")
    assert (other_tab.cookie("access"), other_tab.cookie("refresh")) == (
        at_a_fraction.cookie("access"),
        at_a_fraction.cookie("refresh"),
    )
    assert replay.cookies["dt_refresh"]["max-age"] == int(auth_settings().refresh_lifetime.total_seconds()) - 3
