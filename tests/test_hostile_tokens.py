"""Forged, tampered, re-encoded and garbage tokens in the auth cookies: always 401
with the right code, never a 500 and never a session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tokens import keys
from tokens.errors import AuthError
from tokens.key_services import signing_key_add, signing_key_promote, signing_key_retire

HYPOTHESIS = hypothesis_settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
ATTACKER_KEY = "attacker-key-0123456789abcdefghijklmnopqrstuvwxyz"
# What an RS256 verifying key looks like; the classic confusion attack uses it as an HMAC secret.
PUBLIC_PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n"
    "-----END PUBLIC KEY-----\n"
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def claims(token: str) -> dict:
    return json.loads(unb64(token.split(".")[1]))


# An attacker's own key pairs, of our type and of another; their kid is their own or ours.
ATTACKER_P256 = ec.generate_private_key(ec.SECP256R1())
ATTACKER_ED25519 = ed25519.Ed25519PrivateKey.generate()


def our_kid() -> str:
    return keys.configured_key()[0]


def our_public_pem() -> bytes:
    return keys.public_pem(keys.configured_key()[1].public_key()).encode()


def sign(payload: dict, *, key=None, alg: str = "HS256", headers: dict | None = None) -> str:
    """Signed with our own key and kid, as we sign, unless another key is given."""
    if key is None:
        assert not headers
        return keys.sign(payload, our_kid())
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def hs256(payload: dict, key: bytes, header: dict | None = None) -> str:
    """HS256 by hand, for keys PyJWT rightly refuses to sign with (PEM, empty)."""
    signing_input = ".".join(
        [b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode()), b64(json.dumps(payload).encode())]
    )
    return signing_input + "." + b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def unsigned(payload: dict, header: dict, signature: bytes = b"") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)])


def me_with(client, access: str):
    client.set_cookie("access", access)
    return client.me()


def refresh_with(client, token: str):
    client.set_cookie("refresh", token)
    return client.refresh()


def outcome(response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


def _without(name: str):
    return lambda c: {k: v for k, v in c.items() if k != name}


FORGERIES = {
    "alg_none": lambda c: unsigned(c, {"alg": "none", "typ": "JWT"}),
    "alg_none_uppercase": lambda c: unsigned(c, {"alg": "NONE", "typ": "JWT"}),
    "rs256_header_fake_signature": lambda c: unsigned(c, {"alg": "RS256", "typ": "JWT"}, b"\x01" * 256),
    "hs256_with_public_key_as_secret": lambda c: hs256(c, PUBLIC_PEM.encode()),
    # The classic confusion, with our real published key and its kid.
    "hs256_with_our_public_key_as_secret": lambda c: hs256(c, our_public_pem(), {"alg": "HS256", "kid": our_kid()}),
    "hs256_with_our_public_key_pem_bytes_no_kid": lambda c: hs256(c, our_public_pem()),
    "hs256_with_the_hmac_setting": lambda c: jwt.encode(
        c, os.environ["JWT_SIGNING_KEY"], algorithm="HS256", headers={"kid": our_kid()}
    ),
    "attacker_p256_with_our_kid": lambda c: jwt.encode(c, ATTACKER_P256, algorithm="ES256", headers={"kid": our_kid()}),
    "attacker_p256_unknown_kid": lambda c: jwt.encode(
        c, ATTACKER_P256, algorithm="ES256", headers={"kid": keys.thumbprint(ATTACKER_P256.public_key())}
    ),
    # An algorithm other than the one our kid's key is bound to.
    "attacker_ed25519_with_our_kid": lambda c: jwt.encode(
        c, ATTACKER_ED25519, algorithm="EdDSA", headers={"kid": our_kid()}
    ),
    "attacker_ed25519_unknown_kid": lambda c: jwt.encode(
        c, ATTACKER_ED25519, algorithm="EdDSA", headers={"kid": keys.thumbprint(ATTACKER_ED25519.public_key())}
    ),
    "attacker_ed25519_no_kid": lambda c: jwt.encode(c, ATTACKER_ED25519, algorithm="EdDSA"),
    "jwk_header_attacker_key": lambda c: jwt.encode(
        c,
        ATTACKER_ED25519,
        algorithm="EdDSA",
        headers={"kid": "attacker", "jwk": {**keys.public_jwk(ATTACKER_ED25519.public_key()), "kid": "attacker"}},
    ),
    "jku_header_attacker_ed25519": lambda c: jwt.encode(
        c, ATTACKER_ED25519, algorithm="EdDSA", headers={"kid": "attacker", "jku": "https://evil.example/jwks.json"}
    ),
    "our_kid_as_a_list": lambda c: unsigned(c, {"alg": "ES256", "kid": [our_kid()]}, b"\x01" * 64),
    "alg_as_a_list": lambda c: unsigned(c, {"alg": ["ES256"], "kid": our_kid()}, b"\x01" * 64),
    "another_key": lambda c: sign(c, key=ATTACKER_KEY),
    "jku_header_attacker_key": lambda c: sign(c, key=ATTACKER_KEY, headers={"jku": "https://evil.example/jwks.json"}),
    "x5u_header_attacker_key": lambda c: sign(c, key=ATTACKER_KEY, headers={"x5u": "https://evil.example/cert.pem"}),
    "kid_header_attacker_key": lambda c: sign(c, key=ATTACKER_KEY, headers={"kid": "attacker"}),
    "kid_path_traversal_empty_key": lambda c: hs256(c, b"", {"alg": "HS256", "kid": "../../../../dev/null"}),
}
TAMPERS = {
    "user_id": lambda c: {**c, "user_id": str(int(c["user_id"]) + 1)},
    "generation": lambda c: {**c, "gen": c["gen"] + 1},
    "session": lambda c: {**c, "sid": "00000000-0000-0000-0000-000000000000"},
    "expiry": lambda c: {**c, "exp": c["exp"] + 10**6},
    "absolute_expiry": lambda c: {**c, "sx": c["sx"] + 10**6},
}
MISSING = ["exp", "iat", "jti", "token_type", "sid", "gen", "sx", "user_id", "iss", "aud"]
WRONG_AUDIENCE_OR_ISSUER = {
    "another_audience": lambda c: {**c, "aud": "orders-service"},
    "audience_list_without_ours": lambda c: {**c, "aud": ["orders-service"]},
    "another_issuer": lambda c: {**c, "iss": "https://evil.example"},
}
WRONG_SHAPES = {
    "gen_as_string": lambda c: {**c, "gen": str(c["gen"])},
    "gen_zero": lambda c: {**c, "gen": 0},
    "gen_bool": lambda c: {**c, "gen": True},
    "sid_not_uuid": lambda c: {**c, "sid": "../etc"},
    "user_id_as_int": lambda c: {**c, "user_id": int(c["user_id"])},
    "exp_as_string": lambda c: {**c, "exp": str(c["exp"])},
    "payload_is_list": lambda c: [c],
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_access_token_gets_401_access_token_invalid(logged_in, forge):
    forged = forge(claims(logged_in.cookie("access")))
    assert outcome(me_with(logged_in, forged)) == (401, "access_token_invalid")


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_refresh_token_gets_401_refresh_token_invalid_and_clears_cookies(logged_in, forge):
    forged = forge(claims(logged_in.cookie("refresh")))
    response = refresh_with(logged_in, forged)
    assert outcome(response) == (401, "refresh_token_invalid")
    assert response.cookies["dt_access"].value == "" and response.cookies["dt_refresh"].value == ""


@pytest.mark.parametrize("tamper", TAMPERS.values(), ids=TAMPERS.keys())
def test_tampered_access_claims_with_the_original_signature_get_401(logged_in, tamper):
    header, _, signature = logged_in.cookie("access").split(".")
    payload = tamper(claims(logged_in.cookie("access")))
    forged = ".".join([header, b64(json.dumps(payload).encode()), signature])
    assert outcome(me_with(logged_in, forged)) == (401, "access_token_invalid")


@pytest.mark.parametrize("tamper", TAMPERS.values(), ids=TAMPERS.keys())
def test_tampered_refresh_claims_with_the_original_signature_get_401(logged_in, tamper):
    header, _, signature = logged_in.cookie("refresh").split(".")
    payload = tamper(claims(logged_in.cookie("refresh")))
    forged = ".".join([header, b64(json.dumps(payload).encode()), signature])
    assert outcome(refresh_with(logged_in, forged)) == (401, "refresh_token_invalid")


@pytest.mark.parametrize("name", MISSING)
def test_access_token_signed_with_our_key_but_missing_a_claim_gets_401(logged_in, name):
    forged = sign(_without(name)(claims(logged_in.cookie("access"))))
    assert outcome(me_with(logged_in, forged)) == (401, "access_token_invalid")


@pytest.mark.parametrize("name", MISSING)
def test_refresh_token_signed_with_our_key_but_missing_a_claim_gets_401(logged_in, name):
    forged = sign(_without(name)(claims(logged_in.cookie("refresh"))))
    assert outcome(refresh_with(logged_in, forged)) == (401, "refresh_token_invalid")


@pytest.mark.parametrize("change", WRONG_AUDIENCE_OR_ISSUER.values(), ids=WRONG_AUDIENCE_OR_ISSUER.keys())
def test_access_token_signed_with_our_key_for_another_audience_or_issuer_gets_401(logged_in, change):
    forged = sign(change(claims(logged_in.cookie("access"))))
    assert outcome(me_with(logged_in, forged)) == (401, "access_token_invalid")


def test_access_token_resigned_with_our_key_unchanged_is_accepted(logged_in):
    # The control for the forgeries above: our key and kid, the same claims, passes.
    resigned = sign(claims(logged_in.cookie("access")))
    assert resigned == logged_in.cookie("access")
    assert me_with(logged_in, resigned).status_code == 200


@pytest.mark.parametrize("shape", WRONG_SHAPES.values(), ids=WRONG_SHAPES.keys())
def test_access_token_signed_with_our_key_but_wrongly_shaped_gets_401(logged_in, shape):
    payload = shape(claims(logged_in.cookie("access")))
    header = b64(json.dumps({"alg": keys.algorithm(), "typ": "JWT", "kid": our_kid()}).encode())
    body = b64(json.dumps(payload).encode())
    signature = jwt.get_algorithm_by_name(keys.algorithm()).sign(f"{header}.{body}".encode(), keys.configured_key()[1])
    assert outcome(me_with(logged_in, f"{header}.{body}.{b64(signature)}")) == (401, "access_token_invalid")


def test_refresh_token_used_as_access_gets_401_access_token_invalid(logged_in):
    assert outcome(me_with(logged_in, logged_in.cookie("refresh"))) == (401, "access_token_invalid")


def test_access_token_used_as_refresh_gets_401_refresh_token_invalid(logged_in):
    assert outcome(refresh_with(logged_in, logged_in.cookie("access"))) == (401, "refresh_token_invalid")


def test_token_type_claim_swapped_and_resigned_by_attacker_gets_401(logged_in):
    payload = {**claims(logged_in.cookie("refresh")), "token_type": "access"}
    assert outcome(me_with(logged_in, sign(payload, key=ATTACKER_KEY))) == (401, "access_token_invalid")


def _re_encodings(token: str) -> dict[str, str]:
    header, payload, signature = token.split(".")
    std = token.replace("-", "+").replace("_", "/")
    return {
        "equals_appended": token + "=",
        "padded_segments": ".".join(s + "=" * (-len(s) % 4) for s in (header, payload, signature)),
        "standard_alphabet": std,
        "trailing_dot": token + ".",
        "four_segments": token + ".e30",
        "leading_space": " " + token,
        "percent_encoded": token.replace(".", "%2E"),
        "upper_case": token.upper(),
        "quoted": f'"{token}"',
    }


def test_revoked_access_token_reencoded_is_still_refused(logged_in):
    access = logged_in.cookie("access")
    assert logged_in.logout().status_code == 204
    for name, variant in _re_encodings(access).items():
        response = me_with(logged_in, variant)
        # Either the variant does not parse, or it is the same token: revoked.
        assert outcome(response) in {(401, "access_token_invalid"), (401, "session_revoked")}, name


def test_revoked_refresh_token_reencoded_is_still_refused(logged_in):
    token = logged_in.cookie("refresh")
    assert logged_in.logout().status_code == 204
    for name, variant in _re_encodings(token).items():
        response = refresh_with(logged_in, variant)
        assert outcome(response) in {(401, "refresh_token_invalid"), (401, "session_revoked")}, name
        assert not response.cookies["dt_refresh"].value


@pytest.mark.parametrize(
    "value",
    ["x", "onesegment", "a.b", "a.b.c", "...", "e30.e30.", "eyJhbGciOiJIUzI1NiJ9", "null", "x" * 8192,
     "eyJ" + "A" * 8000 + ".e30.sig"],
    ids=["x", "one_segment", "two_segments", "garbage", "dots", "empty_json", "header_only", "null", "8k", "8k_jwt"],
)  # fmt: skip
def test_garbage_access_cookie_gets_401_access_token_invalid(logged_in, value):
    assert outcome(me_with(logged_in, value)) == (401, "access_token_invalid")


@pytest.mark.parametrize("value", ["onesegment", "a.b.c", "x" * 8192], ids=["one_segment", "garbage", "8k"])
def test_garbage_refresh_cookie_gets_401_refresh_token_invalid(logged_in, value):
    assert outcome(refresh_with(logged_in, value)) == (401, "refresh_token_invalid")


@pytest.mark.parametrize("raw", [b"\xff\xfe\xfd", b"\xc3\x28.\xa0\xa1.\xe2\x28\xa1", b"eyJ\x80.e30.\x81"])
def test_non_utf8_access_cookie_gets_401_access_token_invalid(spa, db, raw):
    # WSGI hands headers over as latin-1 strings; this is what non-UTF-8 bytes look like.
    response = spa.get("/api/auth/me/", HTTP_COOKIE="dt_access=" + raw.decode("latin-1"))
    assert outcome(response) == (401, "access_token_invalid")


@pytest.mark.parametrize("raw", [b"\xff\xfe\xfd", b"\xc3\x28.\xa0\xa1.\xe2\x28\xa1"])
def test_non_utf8_refresh_cookie_gets_401_refresh_token_invalid(spa, db, raw):
    csrf = spa.ensure_csrf()
    cookie = f"csrftoken={csrf}; dt_refresh=" + raw.decode("latin-1")
    response = spa.post("/api/auth/refresh/", HTTP_COOKIE=cookie, HTTP_X_CSRFTOKEN=csrf)
    assert outcome(response) == (401, "refresh_token_invalid")


cookie_safe = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=';,"\\'), min_size=1, max_size=600
)


@HYPOTHESIS
@given(value=cookie_safe)
def test_any_access_cookie_value_gets_401_access_token_invalid(logged_in, value):
    assert outcome(me_with(logged_in, value)) == (401, "access_token_invalid")


@HYPOTHESIS
@given(data=st.data())
def test_any_mutation_of_a_genuine_access_token_is_refused(logged_in, data):
    # The fixture lives across examples, and each example overwrites the cookie.
    if not hasattr(logged_in, "genuine_access"):
        logged_in.genuine_access = logged_in.cookie("access")
    genuine = logged_in.genuine_access
    position = data.draw(st.integers(0, len(genuine) - 1))
    char = data.draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."))
    mutated = genuine[:position] + char + genuine[position + 1 :]

    response = me_with(logged_in, mutated)

    # Only the token itself passes: even a respelling of the signature's spare
    # base64 bits (the same bytes) is refused, as PyJWT checks canonical padding.
    if mutated == genuine:
        assert response.status_code == 200
    else:
        assert outcome(response) == (401, "access_token_invalid")


def test_non_canonical_spelling_of_a_genuine_signature_is_refused(logged_in):
    genuine = logged_in.cookie("access")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # 32 signature bytes leave 2 spare bits in the last character: bump them.
    last = alphabet.index(genuine[-1])
    respelled = genuine[:-1] + alphabet[last | 1 if last % 4 == 0 else last - last % 4]
    assert unb64(respelled.rpartition(".")[2]) == unb64(genuine.rpartition(".")[2])

    assert outcome(me_with(logged_in, respelled)) == (401, "access_token_invalid")


def test_a_token_signed_by_one_of_our_keys_under_the_kid_of_another_is_refused(logged_in):
    second = ec.generate_private_key(ec.SECP256R1())
    second_kid = signing_key_add(private_pem=keys.private_pem(second)).kid
    payload = claims(logged_in.cookie("access"))

    swapped = jwt.encode(payload, second, algorithm="ES256", headers={"kid": our_kid()})
    genuine = jwt.encode(payload, second, algorithm="ES256", headers={"kid": second_kid})

    assert outcome(me_with(logged_in, swapped)) == (401, "access_token_invalid")
    assert me_with(logged_in, genuine).status_code == 200  # the control: both keys are published


def test_a_token_whose_alg_is_not_that_of_its_kids_key_is_refused(logged_in):
    # Keys of two algorithms are published (an algorithm switch under way): each
    # verifies only tokens of its own algorithm, whatever the header claims.
    other = ed25519.Ed25519PrivateKey.generate()
    other_kid = signing_key_add(private_pem=keys.private_pem(other), algorithm="EdDSA").kid
    payload = claims(logged_in.cookie("access"))
    _, body, signature = logged_in.cookie("access").split(".")
    relabelled = b64(json.dumps({"alg": "EdDSA", "kid": our_kid(), "typ": "JWT"}).encode())

    forged = {
        "other_key_under_our_kid": jwt.encode(payload, other, algorithm="EdDSA", headers={"kid": our_kid()}),
        "our_signature_relabelled_eddsa": ".".join([relabelled, body, signature]),
        "our_signature_under_the_other_kid": jwt.encode(
            payload, keys.configured_key()[1], algorithm="ES256", headers={"kid": other_kid}
        ),
        "hs256_keyed_with_the_other_public_key": hs256(
            payload, keys.public_pem(other.public_key()).encode(), {"alg": "HS256", "kid": other_kid}
        ),
    }

    for name, token in forged.items():
        assert outcome(me_with(logged_in, token)) == (401, "access_token_invalid"), name
    genuine = jwt.encode(payload, other, algorithm="EdDSA", headers={"kid": other_kid})
    assert me_with(logged_in, genuine).status_code == 200  # the control


def test_a_token_signed_by_a_retired_key_is_refused(logged_in):
    old = logged_in.cookie("access")
    signing_key_promote(kid=signing_key_add().kid, force=True)
    assert logged_in.refresh().status_code == 200
    signing_key_retire(kid=our_kid())

    # Whoever still holds the retired key can sign with it; we no longer can.
    fresh = jwt.encode(claims(old), keys.configured_key()[1], algorithm=keys.algorithm(), headers={"kid": our_kid()})

    assert outcome(me_with(logged_in, old)) == (401, "access_token_invalid")
    assert outcome(me_with(logged_in, fresh)) == (401, "access_token_invalid")
    with pytest.raises(AuthError) as refused:
        keys.sign(claims(old), our_kid())
    assert refused.value.code == "signing_key_unavailable"


@pytest.mark.parametrize(
    "header",
    [
        b"[" * 1500 + b"]" * 1500,  # nested past the JSON parser's recursion limit
        b'["alg", "kid"]',  # JSON, but not an object
        b"\xff\xfe{}",  # not UTF-8
        b'{"alg": "ES256", "kid": ',  # cut short
    ],
    ids=["deeply-nested", "array", "not-utf8", "truncated"],
)
def test_a_token_whose_header_is_not_a_json_object_is_access_token_invalid(logged_in, header):
    _, body, signature = logged_in.cookie("access").split(".")

    response = me_with(logged_in, f"{b64(header)}.{body}.{signature}")

    assert outcome(response) == (401, "access_token_invalid")


@pytest.mark.parametrize("head", ["", "eyJhbGciOiJFUzI1NiJ9=", "eyJhbGciOiJFUzI1NiJ9+", "ey Jh"])
def test_a_token_whose_header_segment_is_not_base64url_is_access_token_invalid(logged_in, head):
    _, body, signature = logged_in.cookie("access").split(".")

    response = me_with(logged_in, f"{head}.{body}.{signature}")

    assert outcome(response) == (401, "access_token_invalid")
