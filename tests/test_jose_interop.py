"""Independent JOSE libraries, each fed only our JWKS and used with its default
options, verify an access token the moment it is issued (no sleep, no leeway) and
refuse a tampered one. Node's `jose` and `jsonwebtoken` are in the system tests
(tests/system/test_node_interop.py)."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Callable

# authlib.jose still works and is what its users have; it asks them to move to joserfc
# (authlib.deprecate turns its warning on when imported, so it goes in first).
import authlib.deprecate  # noqa: F401
import jwt as pyjwt
import pytest
from joserfc import jwt as joserfc_jwt
from joserfc.errors import JoseError as JoserfcError
from joserfc.jwk import KeySet
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt
from jwcrypto.common import JWException

from tokens import keys
from tokens.conf import auth_settings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "authlib.jose module is deprecated")
    from authlib.jose import JsonWebKey
    from authlib.jose import jwt as authlib_jwt
    from authlib.jose.errors import JoseError


def verify_pyjwt(jwks: dict, token: str) -> dict:
    key = pyjwt.PyJWKSet.from_dict(jwks)[pyjwt.get_unverified_header(token)["kid"]]
    conf = auth_settings()
    # The algorithm from the key set, never from the token; PyJWT insists on an audience.
    return pyjwt.decode(token, key, algorithms=[key.algorithm_name], audience=conf.audience)


def verify_joserfc(jwks: dict, token: str) -> dict:
    decoded = joserfc_jwt.decode(token, KeySet.import_key_set(jwks))
    joserfc_jwt.JWTClaimsRegistry().validate(decoded.claims)  # exp, nbf and iat
    return decoded.claims


def verify_authlib(jwks: dict, token: str) -> dict:
    claims = authlib_jwt.decode(token, JsonWebKey.import_key_set(jwks))
    claims.validate()  # exp, nbf and iat
    return dict(claims)


def verify_jwcrypto(jwks: dict, token: str) -> dict:
    verified = jwcrypto_jwt.JWT(jwt=token, key=jwcrypto_jwk.JWKSet.from_json(json.dumps(jwks)))
    return json.loads(verified.claims)


LIBRARIES: dict[str, tuple[Callable[[dict, str], dict], type[Exception]]] = {
    "pyjwt": (verify_pyjwt, pyjwt.InvalidTokenError),
    "joserfc": (verify_joserfc, JoserfcError),
    "authlib": (verify_authlib, JoseError),
    "jwcrypto": (verify_jwcrypto, JWException),
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


def jwks_of(client) -> dict:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize("library", LIBRARIES)
def test_library_fed_only_the_jwks_verifies_an_access_token_right_after_login(spa, alice, library):
    verify, _ = LIBRARIES[library]
    assert spa.login().status_code == 200
    access = spa.cookie("access")

    claims = verify(jwks_of(spa), access)

    assert claims == claims_of(access)
    assert pyjwt.get_unverified_header(access)["alg"] == keys.algorithm() == "ES256"


@pytest.mark.parametrize("library", LIBRARIES)
def test_library_fed_only_the_jwks_verifies_an_access_token_right_after_refresh(logged_in, library):
    verify, _ = LIBRARIES[library]
    assert logged_in.refresh().status_code == 200
    access = logged_in.cookie("access")

    assert verify(jwks_of(logged_in), access) == claims_of(access)


@pytest.mark.parametrize("library", LIBRARIES)
def test_library_fed_only_the_jwks_refuses_a_tampered_access_token(logged_in, library):
    verify, refused = LIBRARIES[library]
    header, _, signature = logged_in.cookie("access").split(".")
    claims = claims_of(logged_in.cookie("access"))
    tampered = ".".join([header, b64(json.dumps({**claims, "user_id": "1" + claims["user_id"]}).encode()), signature])

    with pytest.raises(refused):
        verify(jwks_of(logged_in), tampered)


@pytest.mark.parametrize("library", LIBRARIES)
def test_library_fed_only_the_jwks_refuses_an_access_token_signed_by_another_key_under_our_kid(logged_in, library):
    verify, refused = LIBRARIES[library]
    access = logged_in.cookie("access")
    forged = pyjwt.encode(
        claims_of(access),
        keys.generate_private("ES256"),
        algorithm="ES256",
        headers={"kid": pyjwt.get_unverified_header(access)["kid"]},
    )

    with pytest.raises(refused):
        verify(jwks_of(logged_in), forged)
