"""GET /.well-known/jwks.json: our public keys as an RFC 7517 JWK Set, cacheable,
never a private part, enough for another service to verify our tokens."""

from __future__ import annotations

import base64
import hashlib
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import override_settings

from tokens import clock, keys
from tokens.key_services import signing_key_add, signing_key_promote, signing_key_retire
from tokens.models import SigningKey

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def our_kid() -> str:
    return keys.configured_key()[0]


def our_point() -> tuple[str, str]:
    numbers = keys.configured_key()[1].public_key().public_numbers()
    return b64(numbers.x.to_bytes(32, "big")), b64(numbers.y.to_bytes(32, "big"))


def jwks(client):
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return response


@pytest.fixture
def rs256(settings):
    pem = keys.private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, "ALGORITHM": "RS256", "SIGNING_KEY": pem}):
        yield pem


def test_jwks_lists_the_signing_key_as_a_p256_jwk(spa, db):
    response = jwks(spa)

    x, y = our_point()
    assert response.json() == {
        "keys": [{"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": our_kid(), "use": "sig", "alg": "ES256"}]
    }
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "public, max-age=300"


def test_jwks_needs_no_cookie_and_no_csrf_token(spa, db):
    response = spa.get("/.well-known/jwks.json", HTTP_ORIGIN="https://evil.example")

    assert response.status_code == 200
    assert response.cookies == {} or all(not morsel.value for morsel in response.cookies.values())


def test_jwks_max_age_follows_the_setting(spa, db, settings):
    with override_settings(DUOTOKEN={**settings.DUOTOKEN, "JWKS_MAX_AGE": 60}):
        assert jwks(spa)["Cache-Control"] == "public, max-age=60"


def test_jwks_kid_is_the_rfc7638_thumbprint(spa, db):
    key = jwks(spa).json()["keys"][0]
    canonical = json.dumps({"crv": key["crv"], "kty": key["kty"], "x": key["x"], "y": key["y"]}, separators=(",", ":"))

    assert key["kid"] == b64(hashlib.sha256(canonical.encode()).digest())


def test_thumbprint_matches_the_rfc8037_example():
    # RFC 8037, appendix A.2 and A.3.
    public = jwt.PyJWK({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}).key

    assert keys.thumbprint(public) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_jwks_verifies_our_access_token_with_pyjwt(logged_in):
    access = logged_in.cookie("access")
    key_set = jwt.PyJWKSet.from_dict(jwks(logged_in).json())
    kid = jwt.get_unverified_header(access)["kid"]

    # No leeway: iat is the whole second the token was issued in, never later.
    claims = jwt.decode(
        access,
        key_set[kid].key,
        algorithms=[key_set[kid].algorithm_name],
        audience="duotoken",
        issuer="http://127.0.0.1:8000",
    )

    assert claims["token_type"] == "access"
    assert claims["user_id"] == str(logged_in.me().json()["id"])


def test_jwks_never_publishes_a_private_part(spa, db):
    signing_key_add()

    published = jwks(spa).json()["keys"]

    assert len(published) == 2
    assert all(PRIVATE_MEMBERS.isdisjoint(key) for key in published)
    assert "PRIVATE" not in json.dumps(published)


def test_jwks_for_rs256_lists_modulus_and_exponent_and_no_private_part(spa, db, rs256):
    key = jwks(spa).json()["keys"][0]

    assert sorted(key) == ["alg", "e", "kid", "kty", "n", "use"]
    assert (key["kty"], key["e"], key["alg"], key["use"]) == ("RSA", "AQAB", "RS256", "sig")
    assert len(base64.urlsafe_b64decode(key["n"] + "==")) == 256


def test_rs256_sessions_log_in_refresh_and_verify_with_the_jwks(spa, alice, rs256):
    assert spa.login().status_code == 200
    assert spa.refresh().status_code == 200
    access = spa.cookie("access")

    key_set = jwt.PyJWKSet.from_dict(jwks(spa).json())
    header = jwt.get_unverified_header(access)

    assert header["alg"] == "RS256"
    assert jwt.decode(access, key_set[header["kid"]].key, algorithms=["RS256"], audience="duotoken")["gen"] == 2
    assert spa.me().status_code == 200


def test_jwks_is_empty_for_hs256_and_hs256_sessions_still_work(spa, alice, settings):
    hs = {**settings.SIMPLE_JWT, "ALGORITHM": "HS256", "SIGNING_KEY": "h" * 50}
    with override_settings(SIMPLE_JWT=hs):
        assert jwks(spa).json() == {"keys": []}
        assert spa.login().status_code == 200
        assert spa.refresh().status_code == 200
        assert spa.me().status_code == 200
        header = jwt.get_unverified_header(spa.cookie("access"))

    assert header["alg"] == "HS256" and header["kid"].startswith("hs-")


def test_jwks_shows_a_new_key_before_it_signs_and_drops_it_once_retired(logged_in):
    added = signing_key_add()
    assert [key["kid"] for key in jwks(logged_in).json()["keys"]] == [our_kid(), added.kid]

    signing_key_promote(kid=added.kid, force=True)
    assert logged_in.refresh().status_code == 200  # moves the session off the first key
    signing_key_retire(kid=our_kid())

    assert [key["kid"] for key in jwks(logged_in).json()["keys"]] == [added.kid]


def test_jwks_on_a_warm_process_reads_no_database(spa, db, django_assert_num_queries):
    first = jwks(spa).json()

    with django_assert_num_queries(0):
        response = jwks(spa)

    assert response.json() == first
    assert response["Cache-Control"] == "public, max-age=300"


def test_jwks_publishes_a_key_added_on_another_host_at_the_next_reload(spa, db, settings):
    before = jwks(spa).json()
    private = keys.generate_private(keys.algorithm())
    kid = keys.thumbprint(private.public_key())
    # Another host's `signing_keys add`: a row this process is not told of.
    SigningKey.objects.create(
        kid=kid,
        algorithm=keys.algorithm(),
        public_pem=keys.public_pem(private.public_key()),
        private_encrypted=keys.encrypt_private(private),
        created_at=clock.now(),
    )
    assert jwks(spa).json() == before  # until this process's view is AUTH_KEYS_RELOAD_SECONDS old

    keys._State.keyset.loaded_at -= settings.DUOTOKEN["KEYS_RELOAD_SECONDS"]

    assert [key["kid"] for key in jwks(spa).json()["keys"]] == [our_kid(), kid]


def test_jwks_of_a_host_publishes_a_key_promoted_elsewhere_before_the_host_signs_with_it(logged_in, make_spa):
    jwks(logged_in)  # this process has looked at the key set
    private = keys.generate_private(keys.algorithm())
    kid = keys.thumbprint(private.public_key())
    # Another host's `add` and `promote --force`: rows this process is not told of.
    SigningKey.objects.filter(state=SigningKey.State.ACTIVE).update(state=SigningKey.State.PUBLISHED)
    SigningKey.objects.create(
        kid=kid,
        algorithm=keys.algorithm(),
        state=SigningKey.State.ACTIVE,
        public_pem=keys.public_pem(private.public_key()),
        private_encrypted=keys.encrypt_private(private),
        created_at=clock.now(),
        promoted_at=clock.now(),
    )

    assert logged_in.refresh().status_code == 200
    assert jwt.get_unverified_header(logged_in.cookie("access"))["kid"] == kid

    assert [key["kid"] for key in jwks(logged_in).json()["keys"]] == [our_kid(), kid]


def test_jwks_lists_each_key_with_its_own_algorithm(spa, db):
    eddsa = signing_key_add(algorithm="EdDSA")
    rs256 = signing_key_add(algorithm="RS256")

    published = {key["kid"]: (key["kty"], key.get("crv"), key["alg"]) for key in jwks(spa).json()["keys"]}

    assert published == {
        our_kid(): ("EC", "P-256", "ES256"),
        eddsa.kid: ("OKP", "Ed25519", "EdDSA"),
        rs256.kid: ("RSA", None, "RS256"),
    }
