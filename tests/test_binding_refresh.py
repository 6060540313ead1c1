"""Refresh of a device-bound session: the challenge, the device-signed rotation
(the same compare-and-set as refresh/), and "no proof, no refresh"."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from tokens import binding, store
from tokens.models import RevokeReason, SecurityEvent, Session
from tokens.tokens import decode

from .dbsc_device import (
    REFRESH_URL,
    Device,
    bound_refresh,
    dbsc_refresh,
    offered_challenge,
    refresh_challenge,
    register,
)
from .factories import user_create

GRACE = timedelta(seconds=30)


@pytest.fixture(autouse=True)
def dbsc_on(settings):
    settings.DUOTOKEN = {**settings.DUOTOKEN, "DBSC": True}


@pytest.fixture
def device():
    return Device()


@pytest.fixture
def bound(spa, alice, device, time_machine):
    """alice logged in at a fixed instant and bound to `device`; returns the session id."""
    time_machine.move_to("2026-11-23 12:00:00+00:00", tick=False)
    response = spa.login()
    assert register(spa, device.proof(offered_challenge(response))).status_code == 200
    return decode(spa.cookie("refresh"), "refresh")["sid"]


def _refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code


def _copy(source, target):
    """Another client holding copies of every cookie of `source` (new morsels: the
    test client changes cookies in place)."""
    for name, morsel in source.cookies.items():
        target.cookies[name] = morsel.value
    return target


def _generation(sid: str) -> int:
    return Session.objects.get(pk=sid).generation


def test_refresh_url_without_a_proof_answers_a_challenge_for_this_session(spa, bound):
    response = dbsc_refresh(spa, bound)
    _refused(response, 403, "binding_challenge")
    challenge, named = refresh_challenge(response)
    assert (named, len(challenge) >= 43) == (bound, True)
    assert _generation(bound) == 1  # asking changes nothing
    assert not response.cookies


def test_device_signed_refresh_rotates_and_answers_the_session_config(spa, bound, device):
    response = bound_refresh(spa, device, bound)
    assert response.status_code == 200, response.content
    assert response["Duotoken-Refresh"] == "rotated"
    assert response.json()["session_identifier"] == bound
    assert response.json()["refresh_url"] == REFRESH_URL
    access = decode(response.cookies["dt_access"].value, "access")
    assert (access["gen"], access["cnf"]) == (2, {"jkt": binding.thumbprint(device.jwk)})
    assert int(response.cookies["dt_access"]["max-age"]) == access["exp"] - access["iat"] - 1
    assert _generation(bound) == 2


def test_device_signed_refresh_with_rs256_rotates(spa, alice):
    device = Device(alg="RS256")
    response = spa.login()
    assert register(spa, device.proof(offered_challenge(response))).status_code == 200
    sid = decode(spa.cookie("refresh"), "refresh")["sid"]
    assert bound_refresh(spa, device, sid).status_code == 200
    assert _generation(sid) == 2


def test_two_device_signed_refreshes_of_one_token_get_the_same_successor(spa, make_spa, bound, device):
    # Two tabs of the device, one refresh token: the grace window works as for refresh/.
    other = _copy(spa, make_spa())
    first, second = bound_refresh(spa, device, bound), bound_refresh(other, device, bound)
    assert (first["Duotoken-Refresh"], second["Duotoken-Refresh"]) == ("rotated", "replayed")
    assert first.cookies["dt_access"].value == second.cookies["dt_access"].value
    assert first.cookies["dt_refresh"].value == second.cookies["dt_refresh"].value
    assert _generation(bound) == 2


def test_device_signed_replay_of_an_old_token_after_grace_is_reuse(spa, make_spa, bound, device, time_machine):
    old = _copy(spa, make_spa())
    assert bound_refresh(spa, device, bound).status_code == 200
    time_machine.shift(GRACE + timedelta(seconds=1))
    _refused(bound_refresh(old, device, bound), 401, "refresh_token_reused")
    assert Session.objects.get(pk=bound).revoke_reason == RevokeReason.REUSE


def test_refresh_endpoint_refuses_a_bound_session_without_a_proof_and_keeps_it(spa, bound):
    response = spa.refresh(REMOTE_ADDR="203.0.113.66", HTTP_USER_AGENT="curl/8.5.0")
    _refused(response, 401, "binding_proof_required")
    # Neither the session nor the cookies end: a copy must not be a lever to log the owner out.
    assert "dt_access" not in response.cookies and "dt_refresh" not in response.cookies
    assert (_generation(bound), Session.objects.get(pk=bound).is_revoked) == (1, False)
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.BINDING_PROOF_MISSING)
    assert (str(event.session_id), event.ip, event.user_agent, event.data) == (
        bound,
        "203.0.113.66",
        "curl/8.5.0",
        {"path": "/api/auth/refresh/", "code": "binding_proof_required"},
    )


def test_refresh_endpoint_refuses_a_token_copied_before_the_binding(spa, make_spa, alice, device):
    response = spa.login()
    thief = _copy(spa, make_spa())  # copied between login and registration
    assert register(spa, device.proof(offered_challenge(response))).status_code == 200
    sid = decode(spa.cookie("refresh"), "refresh")["sid"]
    assert "cnf" not in decode(thief.cookie("refresh"), "refresh")
    _refused(thief.refresh(), 401, "binding_proof_required")
    assert _generation(sid) == 1
    # Nor after the device has rotated, inside the grace window: no successor for it.
    assert bound_refresh(spa, device, sid).status_code == 200
    _refused(thief.refresh(), 401, "binding_proof_required")
    assert (_generation(sid), Session.objects.get(pk=sid).is_revoked) == (2, False)


def test_refresh_endpoint_accepts_a_device_proof_too(spa, bound, device):
    challenge, _ = refresh_challenge(dbsc_refresh(spa, bound))
    response = spa.refresh(HTTP_SECURE_SESSION_RESPONSE=device.proof(challenge, jwk=False))
    assert response.status_code == 200, response.content
    assert decode(response.cookies["dt_access"].value, "access")["cnf"] == {"jkt": binding.thumbprint(device.jwk)}


def test_unbound_session_refreshes_as_before_without_cnf(logged_in):
    response = logged_in.refresh()
    assert response.status_code == 200
    assert "cnf" not in decode(response.cookies["dt_access"].value, "access")


def test_refresh_url_refuses_an_unbound_session(logged_in):
    sid = decode(logged_in.cookie("refresh"), "refresh")["sid"]
    _refused(dbsc_refresh(logged_in, sid), 400, "session_not_bound")
    assert _generation(sid) == 1


def test_refresh_url_without_cookies_is_refused(make_spa, bound):
    _refused(dbsc_refresh(make_spa(), bound), 401, "refresh_token_missing")


def _proof_refused(spa, bound, proof, status: int, code: str) -> None:
    _refused(dbsc_refresh(spa, bound, proof), status, code)
    assert _generation(bound) == 1
    assert not Session.objects.get(pk=bound).is_revoked


def test_refresh_proof_signed_by_another_key_is_refused_and_logged(spa, bound):
    challenge, _ = refresh_challenge(dbsc_refresh(spa, bound))
    thief = Device()
    # Its own jwk in the header changes nothing: the proof is checked against the row's key.
    _proof_refused(spa, bound, thief.proof(challenge), 401, "binding_proof_invalid")
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.BINDING_PROOF_INVALID)
    assert (str(event.session_id), event.data) == (bound, {"path": REFRESH_URL, "code": "binding_proof_invalid"})


def test_refresh_proof_with_another_alg_than_the_bound_key_is_refused(spa, bound):
    challenge, _ = refresh_challenge(dbsc_refresh(spa, bound))
    _proof_refused(spa, bound, Device(alg="RS256").proof(challenge, jwk=False), 401, "binding_proof_invalid")


def test_refresh_proof_replayed_is_refused(spa, bound, device):
    challenge, _ = refresh_challenge(dbsc_refresh(spa, bound))
    proof = device.proof(challenge, jwk=False)
    assert dbsc_refresh(spa, bound, proof).status_code == 200
    _refused(dbsc_refresh(spa, bound, proof), 401, "binding_challenge_invalid")
    assert _generation(bound) == 2


def test_refresh_proof_over_an_expired_challenge_is_refused(spa, bound, device, time_machine):
    challenge, _ = refresh_challenge(dbsc_refresh(spa, bound))
    time_machine.shift(timedelta(seconds=61))
    _proof_refused(spa, bound, device.proof(challenge, jwk=False), 401, "binding_challenge_expired")


def test_refresh_proof_over_the_registration_challenge_is_refused(spa, alice, device):
    challenge = offered_challenge(spa.login())
    sid = decode(spa.cookie("refresh"), "refresh")["sid"]
    user_id = str(Session.objects.get(pk=sid).user_id)
    assert register(spa, device.proof(binding._challenge_issue(sid, user_id, binding.REGISTER))).status_code == 200
    _proof_refused(spa, sid, device.proof(challenge, jwk=False), 401, "binding_challenge_invalid")


def test_refresh_proof_for_another_session_is_refused(spa, make_spa, bound, device):
    # bob's bound session, on another device: its challenge answered by its key...
    user_create(username="bob")
    bob, bob_device = make_spa(), Device()
    assert register(bob, bob_device.proof(offered_challenge(bob.login("bob")))).status_code == 200
    bob_sid = decode(bob.cookie("refresh"), "refresh")["sid"]
    bob_challenge, _ = refresh_challenge(dbsc_refresh(bob, bob_sid))
    # ...presented with alice's cookies: not a challenge of hers.
    _proof_refused(spa, bound, bob_device.proof(bob_challenge, jwk=False), 401, "binding_proof_invalid")
    _proof_refused(spa, bound, device.proof(bob_challenge, jwk=False), 401, "binding_challenge_invalid")
    # Naming bob's session with alice's cookies is refused before anything else.
    _refused(dbsc_refresh(spa, bob_sid), 400, "binding_session_mismatch")


@pytest.mark.parametrize("proof", ["not-a-jws", "e30.e30.", "x" * 9000], ids=["no-dots", "no-alg", "oversized"])
def test_refresh_proof_malformed_or_oversized_is_refused(spa, bound, proof):
    code = "binding_proof_invalid" if proof == "e30.e30." else "binding_proof_malformed"
    _proof_refused(spa, bound, proof, 401 if code == "binding_proof_invalid" else 400, code)


def test_refresh_proof_with_alg_none_is_refused(spa, bound, device):
    challenge, _ = refresh_challenge(dbsc_refresh(spa, bound))
    _, payload, _ = device.proof(challenge, jwk=False).split(".")
    none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"dbsc+jwt"}').rstrip(b"=").decode()
    _proof_refused(spa, bound, f"{none}.{payload}.", 401, "binding_proof_invalid")


def test_refresh_url_for_an_ended_session_ends_the_browser_session(spa, bound):
    Session.objects.filter(pk=bound).update(revoked_at=Session.objects.get(pk=bound).created_at)
    response = dbsc_refresh(spa, bound)
    _refused(response, 401, "session_revoked")
    assert response.cookies["dt_access"].value == "" and response.cookies["dt_refresh"].value == ""


def test_logout_ends_a_bound_session_and_its_next_device_signed_refresh_fails(spa, bound, device):
    kept = _copy(spa, spa.__class__())
    assert spa.logout().status_code == 204
    _refused(dbsc_refresh(spa, bound), 401, "refresh_token_missing")  # the browser's cookies are gone
    _refused(dbsc_refresh(kept, bound), 401, "session_revoked")  # and a copy of them is refused


def test_refresh_url_with_redis_away_is_refused_not_accepted(spa, bound, device):
    challenge, _ = refresh_challenge(dbsc_refresh(spa, bound))
    store._Breaker.down_until = 1e12
    _proof_refused(spa, bound, device.proof(challenge, jwk=False), 503, "service_unavailable")


def test_refresh_url_challenges_are_throttled_like_refresh(spa, bound, settings):
    # The registration was the first of three this minute.
    settings.DUOTOKEN = {**settings.DUOTOKEN, "THROTTLE_REFRESH": "3/min"}
    for _ in range(2):
        assert dbsc_refresh(spa, bound).status_code == 403
    _refused(dbsc_refresh(spa, bound), 429, "throttled")


def test_proofless_refreshes_are_throttled_so_the_log_cannot_be_flooded(spa, bound, settings):
    # The registration was the first of three this minute.
    settings.DUOTOKEN = {**settings.DUOTOKEN, "THROTTLE_REFRESH": "3/min"}
    for _ in range(2):
        _refused(spa.refresh(), 401, "binding_proof_required")
    _refused(spa.refresh(), 429, "throttled")
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.BINDING_PROOF_MISSING).count() == 2


def test_copied_cookie_jar_cannot_refresh_and_its_access_copy_dies_with_the_token(
    spa, make_spa, bound, device, time_machine
):
    thief = _copy(spa, make_spa())
    assert thief.me().status_code == 200  # the copy works while its token lives...
    _refused(thief.refresh(), 401, "binding_proof_required")
    _refused(dbsc_refresh(thief, bound, Device().proof("guess", jwk=False)), 401, "binding_proof_invalid")
    exp = decode(thief.cookie("access"), "access")["exp"]
    time_machine.move_to(datetime.fromtimestamp(exp, tz=UTC))
    _refused(thief.me(), 401, "access_token_expired")  # ...and no longer
    # The owner's device goes on.
    assert bound_refresh(spa, device, bound).status_code == 200
    assert spa.me().status_code == 200


def test_refresh_url_for_a_deleted_session_is_refused_as_invalid(spa, bound):
    Session.objects.filter(pk=bound).delete()
    _refused(dbsc_refresh(spa, bound), 401, "refresh_token_invalid")


def test_refresh_url_after_the_absolute_expiry_says_session_expired(spa, bound, time_machine):
    time_machine.move_to(Session.objects.get(pk=bound).absolute_expires_at)
    _refused(dbsc_refresh(spa, bound), 401, "session_expired")
