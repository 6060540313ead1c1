"""DBSC registration: binding offered at login, and the hostile registrations."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tokens import binding, store
from tokens.models import SecurityEvent, Session
from tokens.tokens import decode

from .dbsc_device import REGISTER, Device, offered_challenge, register
from .factories import user_create


@pytest.fixture(autouse=True)
def dbsc_on(settings):
    settings.DUOTOKEN = {**settings.DUOTOKEN, "DBSC": True}


@pytest.fixture
def device():
    return Device()


@pytest.fixture
def offered(spa, alice):
    """Logged in; the registration challenge the login offered."""
    response = spa.login()
    assert response.status_code == 200, response.content
    return offered_challenge(response)


def _sid(spa) -> str:
    return decode(spa.cookie("refresh"), "refresh")["sid"]


def _b64(data: dict | str) -> str:
    raw = data if isinstance(data, str) else json.dumps(data)
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def test_login_with_binding_on_offers_a_fresh_challenge_each_time(spa, make_spa, alice):
    first, second = spa.login(), make_spa().login()
    assert offered_challenge(first) != offered_challenge(second)
    assert len(offered_challenge(first)) >= 43  # 256 random bits


def test_login_with_binding_off_offers_nothing(spa, alice, settings):
    settings.DUOTOKEN = {**settings.DUOTOKEN, "DBSC": False}
    assert "Secure-Session-Registration" not in spa.login()


def test_binding_defaults_to_on_exactly_when_cookies_are_secure(settings):
    from tokens.conf import auth_settings

    settings.DUOTOKEN = {**{k: v for k, v in settings.DUOTOKEN.items() if k != "DBSC"}, "COOKIE_SECURE": True}
    assert auth_settings().dbsc is True
    settings.DUOTOKEN = {**settings.DUOTOKEN, "COOKIE_SECURE": False}
    assert auth_settings().dbsc is False


def test_offer_with_redis_away_leaves_the_session_unbound_without_failing(logged_in):
    # Login itself fails closed without Redis (its throttle); the offer after it
    # is best effort, so a Redis lost in between costs the binding, not the login.
    from django.http import HttpResponse

    store._Breaker.down_until = 1e12
    response = HttpResponse()
    binding.offer(response, session_id=_sid(logged_in), user_id="1")
    assert "Secure-Session-Registration" not in response


def test_password_change_offers_binding_for_the_new_session(logged_in):
    response = logged_in.send(
        "post",
        "/api/auth/password/change/",
        {"old_password": "correct horse battery staple", "new_password": "n3w!pass-w0rd"},
    )
    assert response.status_code == 200, response.content
    challenge = offered_challenge(response)
    assert register(logged_in, Device().proof(challenge)).status_code == 200


def test_registration_binds_the_session_and_answers_its_config(spa, offered, device):
    sid = _sid(spa)
    response = register(spa, device.proof(offered), REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "session_identifier": sid,
        "refresh_url": "/api/auth/dbsc/refresh/",
        "scope": {"origin": "http://testserver", "include_site": False, "scope_specification": []},
        "credentials": [{"type": "cookie", "name": "dt_access", "attributes": "Path=/; HttpOnly; SameSite=Lax"}],
    }
    session = Session.objects.get(pk=sid)
    assert session.binding_jkt == binding.thumbprint(device.jwk)
    assert session.binding_jwk == {k: device.jwk[k] for k in ("kty", "crv", "x", "y")}
    assert session.bound_at is not None
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.BINDING_REGISTERED)
    assert (str(event.session_id), event.ip, event.data) == (
        sid,
        "198.51.100.7",
        {"jkt": session.binding_jkt, "alg": "ES256"},
    )


def test_registration_sets_a_bound_access_cookie_that_dies_before_its_token(spa, offered, device):
    response = register(spa, device.proof(offered))
    cookie = response.cookies["dt_access"]
    claims = decode(cookie.value, "access")
    assert claims["cnf"] == {"jkt": binding.thumbprint(device.jwk)}
    assert claims["gen"] == 1  # the same generation, now bound: nothing rotated
    lifetime = claims["exp"] - claims["iat"]
    assert 0 < int(cookie["max-age"]) < lifetime
    assert (cookie["path"], cookie["httponly"], cookie["samesite"]) == ("/", True, "Lax")
    assert decode(response.cookies["dt_refresh"].value, "refresh")["cnf"] == claims["cnf"]


def test_thumbprint_matches_rfc_7638_example():
    # RFC 7638, section 3.1.
    jwk = {
        "kty": "RSA",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKR"
            "XjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicA"
            "taSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3X"
            "PksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        ),
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert binding.thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_registration_with_an_rs256_key_binds(spa, offered):
    device = Device(alg="RS256")
    assert register(spa, device.proof(offered)).status_code == 200
    assert Session.objects.get(pk=_sid(spa)).binding_jwk["kty"] == "RSA"


def _refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    # Nothing in the error body but the one shape.
    assert set(response.json()) == {"detail", "code"}


def _unbound(spa) -> bool:
    return Session.objects.get(pk=_sid(spa)).binding_jkt == ""


def test_registration_without_a_proof_is_refused(spa, offered):
    _refused(register(spa, None), 401, "binding_proof_required")
    assert _unbound(spa)


def test_registration_without_cookies_is_refused(make_spa, offered, device):
    _refused(register(make_spa(), device.proof(offered)), 401, "refresh_token_missing")


def test_registration_signed_by_another_key_than_its_jwk_is_refused(spa, offered, device):
    thief = Device()
    _refused(register(spa, thief.proof(offered, jwk=device.jwk)), 401, "binding_proof_invalid")
    assert _unbound(spa)
    # The challenge survives a bad signature (it proves nothing), for the real device.
    assert register(spa, device.proof(offered)).status_code == 200


@pytest.mark.parametrize(
    ("alg", "jwk_of"),
    [("ES256", "RS256"), ("RS256", "ES256")],
    ids=["es256-with-rsa-jwk", "rs256-with-ec-jwk"],
)
def test_registration_with_a_jwk_of_another_key_type_is_refused(spa, offered, alg, jwk_of):
    signer, other = Device(alg=alg), Device(alg=jwk_of)
    _refused(register(spa, signer.proof(offered, jwk=other.jwk)), 401, "binding_proof_invalid")
    assert _unbound(spa)


def test_registration_with_a_private_jwk_is_refused(spa, offered, device):
    private = {**device.jwk, "d": "AAAA"}
    _refused(register(spa, device.proof(offered, jwk=private)), 401, "binding_proof_invalid")


def test_registration_with_a_p384_key_is_refused(spa, offered, device):
    jwk = {**device.jwk, "crv": "P-384"}
    _refused(register(spa, device.proof(offered, jwk=jwk)), 401, "binding_proof_invalid")


@pytest.mark.filterwarnings("ignore:The RSA key is 1024 bits")
def test_registration_with_a_short_rsa_key_is_refused(spa, offered):
    weak = Device(alg="RS256", bits=1024)
    _refused(register(spa, weak.proof(offered)), 401, "binding_proof_invalid")


def test_registration_with_alg_none_is_refused(spa, offered, device):
    header = _b64({"alg": "none", "typ": "dbsc+jwt", "jwk": device.jwk})
    _refused(register(spa, f"{header}.{_b64({'jti': offered})}."), 401, "binding_proof_invalid")
    assert _unbound(spa)


def test_registration_with_hs256_keyed_by_the_public_jwk_is_refused(spa, offered, device):
    # The classic confusion: an HMAC "signed" with the public key as the secret.
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'dbsc+jwt', 'jwk': device.jwk})}.{_b64({'jti': offered})}"
    mac = hmac.new(json.dumps(device.jwk).encode(), signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    _refused(register(spa, forged), 401, "binding_proof_invalid")
    assert _unbound(spa)


def test_registration_of_another_type_is_refused(spa, offered, device):
    _refused(register(spa, device.proof(offered, typ="JWT")), 401, "binding_proof_invalid")


def test_registration_without_a_jwk_is_refused(spa, offered, device):
    _refused(register(spa, device.proof(offered, jwk=False)), 401, "binding_proof_invalid")


@pytest.mark.parametrize(
    "proof",
    ["not-a-jws", "a.b.c", "....", _b64("{") + ".e30.", _b64({"alg": "ES256"})[:-1] + "!.e30.sig", "x" * 8193],
    ids=["no-dots", "not-base64-json", "empty-parts", "bad-json", "bad-base64", "oversized"],
)
def test_registration_with_a_malformed_or_oversized_header_is_refused(spa, offered, proof):
    _refused(register(spa, proof), 400, "binding_proof_malformed")
    assert _unbound(spa)


def test_registration_with_a_tampered_payload_is_refused(spa, offered, device):
    header, _, signature = device.proof(offered).split(".")
    _refused(register(spa, f"{header}.{_b64({'jti': offered + 'x'})}.{signature}"), 401, "binding_proof_invalid")


def test_registration_replaying_a_used_challenge_is_refused(spa, offered, device):
    proof = device.proof(offered)
    assert register(spa, proof).status_code == 200
    _refused(register(spa, proof), 401, "binding_challenge_invalid")


def test_registration_with_an_expired_challenge_is_refused(spa, offered, device, time_machine):
    time_machine.move_to(timezone.now() + timedelta(seconds=61))
    _refused(register(spa, device.proof(offered)), 401, "binding_challenge_expired")
    assert _unbound(spa)


def test_registration_with_another_sessions_challenge_is_refused(spa, make_spa, offered, device):
    user_create(username="bob")
    other = make_spa()
    foreign = offered_challenge(other.login("bob"))
    _refused(register(spa, device.proof(foreign)), 401, "binding_challenge_invalid")
    # Nor alice's own second session's: a challenge belongs to one session.
    mine_elsewhere = offered_challenge(make_spa().login())
    _refused(register(spa, device.proof(mine_elsewhere)), 401, "binding_challenge_invalid")
    assert _unbound(spa)


def test_registration_with_an_unknown_challenge_is_refused(spa, offered, device):
    _refused(register(spa, device.proof("made-up-challenge")), 401, "binding_challenge_invalid")
    _refused(register(spa, device.proof(12345)), 401, "binding_proof_invalid")  # a jti must be a string


def test_registration_naming_another_session_is_refused(spa, offered, device):
    other = "00000000-0000-4000-8000-000000000000"
    _refused(register(spa, device.proof(offered), HTTP_SEC_SECURE_SESSION_ID=other), 400, "binding_session_mismatch")


def test_registration_of_an_ended_session_is_refused(spa, offered, device):
    refresh = spa.cookie("refresh")
    assert spa.logout().status_code == 204
    spa.set_cookie("refresh", refresh)
    _refused(register(spa, device.proof(offered)), 401, "session_revoked")


def test_registration_of_a_bound_session_is_refused(spa, offered, device):
    assert register(spa, device.proof(offered)).status_code == 200
    sid = _sid(spa)
    user_id = str(Session.objects.get(pk=sid).user_id)
    again = binding._challenge_issue(sid, user_id, binding.REGISTER)  # as if offered twice
    _refused(register(spa, Device().proof(again)), 409, "binding_already_registered")
    assert Session.objects.get(pk=sid).binding_jkt == binding.thumbprint(device.jwk)


def test_registration_with_redis_away_is_refused_not_accepted(spa, offered, device):
    store._Breaker.down_until = 1e12
    _refused(register(spa, device.proof(offered)), 503, "service_unavailable")
    assert _unbound(spa)


def test_registration_is_throttled_like_refresh(spa, offered, settings):
    settings.DUOTOKEN = {**settings.DUOTOKEN, "THROTTLE_REFRESH": "2/min"}
    for _ in range(2):
        assert register(spa, "junk").status_code == 400
    _refused(register(spa, "junk"), 429, "throttled")


def test_failed_registration_is_in_the_security_log(spa, offered, device):
    register(spa, Device().proof(offered, jwk=device.jwk), HTTP_USER_AGENT="curl/8.5.0")
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.BINDING_PROOF_INVALID)
    assert (str(event.session_id), event.user_agent, event.data) == (
        _sid(spa),
        "curl/8.5.0",
        {"path": REGISTER, "code": "binding_proof_invalid"},
    )


def test_checks_warn_when_binding_is_on_without_secure_cookies(settings):
    from tokens.checks import check_duotoken_settings

    settings.DUOTOKEN = {**settings.DUOTOKEN, "DBSC": True, "COOKIE_SECURE": False}
    assert "duotoken.W030" in [message.id for message in check_duotoken_settings()]
    settings.DUOTOKEN = {**settings.DUOTOKEN, "COOKIE_SECURE": True}
    assert "duotoken.W030" not in [message.id for message in check_duotoken_settings()]


@pytest.mark.parametrize("seconds", [0, 601, "60"])
def test_checks_refuse_a_challenge_lifetime_out_of_range(settings, seconds):
    from tokens.checks import check_duotoken_settings

    settings.DUOTOKEN = {**settings.DUOTOKEN, "DBSC_CHALLENGE_SECONDS": seconds}
    assert "duotoken.E030" in [message.id for message in check_duotoken_settings()]
