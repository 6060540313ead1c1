"""Verifying Duotoken's access tokens in a service that is not Django, with PyJWT only.

    pip install "PyJWT[crypto]"

Set DUOTOKEN_JWKS_URL, DUOTOKEN_ISSUER and DUOTOKEN_AUDIENCE to Duotoken's public
URL + /.well-known/jwks.json, its JWT_ISSUER and its JWT_AUDIENCE. Then call
verify() on the token from the `Authorization: Bearer` header of each request:
it returns the claims (`user_id`, `sid`, `exp`, ...) or raises jwt.InvalidTokenError.
"""

import os

import jwt

JWKS_URL = os.environ.get("DUOTOKEN_JWKS_URL", "https://auth.example.com/.well-known/jwks.json")
ISSUER = os.environ.get("DUOTOKEN_ISSUER", "https://auth.example.com")
AUDIENCE = os.environ.get("DUOTOKEN_AUDIENCE", "duotoken")

# One client per process: it keeps the key set for `lifespan` seconds (Duotoken's
# AUTH_JWKS_MAX_AGE, 300 by default) and refetches it when a token names a kid it
# has not seen (a new key), at most once per `cooldown_duration`.
jwks_client = jwt.PyJWKClient(JWKS_URL, lifespan=300, cooldown_duration=30, timeout=5)


def verify(token: str) -> dict:
    """The claims of a live access token; jwt.InvalidTokenError for anything else."""
    try:
        # Picked by the token's `kid` among the published keys only.
        signing_key = jwks_client.get_signing_key_from_jwt(token)
    except jwt.PyJWKClientConnectionError:
        raise  # Duotoken did not answer: a 503 for the caller, not a 401
    except jwt.PyJWKClientError as exc:  # no published key has this kid (unknown or retired)
        raise jwt.InvalidTokenError(str(exc)) from exc
    claims = jwt.decode(
        token,
        signing_key,
        # The algorithm the key set names for this key, never the token's own `alg`:
        # an HS256 token keyed with the public key is refused.
        algorithms=[signing_key.algorithm_name],
        issuer=ISSUER,
        audience=AUDIENCE,
        # `iat` is never later than the moment of issue, so no leeway is needed; a
        # few seconds (leeway=5) absorb clock skew between this host and Duotoken's.
        options={"require": ["exp", "iat", "iss", "aud", "token_type"]},
    )
    # A refresh token is signed by the same keys: only access tokens open the door.
    if claims["token_type"] != "access":
        raise jwt.InvalidTokenError("not an access token")
    return claims
