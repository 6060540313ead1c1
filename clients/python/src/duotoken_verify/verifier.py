"""Verifying a Duotoken access token: signature against the JWKS, then the claims,
then (optionally) whether its session is still alive."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from .errors import ExpiredToken, InvalidToken
from .jwks import ALGORITHMS, KeySet
from .revocation import GatewayCheck, IntrospectionCheck, RevocationCheck

JWKS_PATH = "/.well-known/jwks.json"
VERIFY_PATH = "/api/auth/verify/"
INTROSPECT_PATH = "/api/auth/introspect/"
# Duotoken's tokens are a few hundred bytes; anything far larger is not one of them.
MAX_TOKEN_LENGTH = 8192


@dataclass(frozen=True)
class Claims:
    """The verified claims of an access token; `raw` holds all of them."""

    user_id: str
    session_id: str
    expires_at: int
    issued_at: int
    token_id: str | None
    raw: Mapping[str, Any] = field(repr=False)


class Verifier:
    """One per process (it holds the key-set cache and the revocation cache).

    `url` is where this service reaches Duotoken; the JWKS, `verify/` and
    `introspect/` URLs derive from it unless given. `issuer` defaults to `url`
    (Duotoken's default JWT_ISSUER is its AUTH_PUBLIC_URL); set it when the two differ.

    `revocation`: None (signature and claims only: a revoked session's token is
    accepted until it expires), "verify" (ask `verify/`), "introspect" (ask
    `introspect/`, needs `client_id` and `client_secret`), or a RevocationCheck.

    `leeway` is the clock skew allowed between the hosts, applied to `exp` and `iat`.
    """

    def __init__(
        self,
        *,
        url: str | None = None,
        audience: str,
        issuer: str | None = None,
        jwks_url: str | None = None,
        revocation: str | RevocationCheck | None = None,
        verify_url: str | None = None,
        introspect_url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        cache_seconds: float = 5,
        jwks_lifespan: float = 300,
        jwks_miss_interval: float = 5,
        algorithms: tuple[str, ...] = ALGORITHMS,
        leeway: float = 5,
        timeout: float = 5,
        user_id_claim: str = "user_id",
        token_type_claim: str = "token_type",  # noqa: S107 (a claim name)
    ) -> None:
        base = (url or "").rstrip("/")
        issuer = issuer or base
        jwks_url = jwks_url or (base + JWKS_PATH if base else None)
        if not audience or not issuer or not jwks_url:
            raise ValueError("a Verifier needs an audience, and url (or issuer and jwks_url)")
        if not 0 <= leeway <= 60:
            raise ValueError("leeway must be between 0 and 60 seconds")
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.user_id_claim = user_id_claim
        self.token_type_claim = token_type_claim
        self.keys = KeySet(
            jwks_url, lifespan=jwks_lifespan, miss_interval=jwks_miss_interval, timeout=timeout, algorithms=algorithms
        )
        if revocation == "verify":
            verify_url = verify_url or _need(base, VERIFY_PATH)
            revocation = GatewayCheck(verify_url, cache_seconds=cache_seconds, timeout=timeout)
        elif revocation == "introspect":
            revocation = IntrospectionCheck(
                introspect_url or _need(base, INTROSPECT_PATH),
                client_id=client_id or "",
                client_secret=client_secret or "",
                cache_seconds=cache_seconds,
                timeout=timeout,
            )
        elif revocation is not None and not isinstance(revocation, RevocationCheck):
            raise ValueError(f"revocation must be None, 'verify', 'introspect' or a check, not {revocation!r}")
        self.revocation: RevocationCheck | None = revocation

    def verify_access_token(self, token: str) -> Claims:
        """The claims of a live access token. InvalidToken (ExpiredToken, RevokedToken)
        for a token to refuse with 401; Unavailable when Duotoken could not be asked."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("not a token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("not a JWT") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the token names no key")
        key = self.keys.key_for(kid)
        required = ["exp", "iat", "iss", "aud", "sid", self.user_id_claim, self.token_type_claim]
        try:
            claims = jwt.decode(
                token,
                key.key,
                # The key set's algorithm for this key, never the token's own `alg`.
                algorithms=[key.algorithm_name],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError:
            raise ExpiredToken("the access token has expired") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the token is refused: {exc}") from None
        # Refresh tokens are signed by the same keys: only access tokens open the door.
        if claims[self.token_type_claim] != "access":
            raise InvalidToken("not an access token")
        if not isinstance(claims["sid"], str) or not isinstance(claims[self.user_id_claim], (str, int)):
            raise InvalidToken("the token's sid or user id is malformed")
        if self.revocation is not None:
            self.revocation.check(token, claims)
        return Claims(
            user_id=str(claims[self.user_id_claim]),
            session_id=claims["sid"],
            expires_at=int(claims["exp"]),
            issued_at=int(claims["iat"]),
            token_id=claims.get("jti"),
            raw=claims,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Verifier:
        """A Verifier configured by DUOTOKEN_* environment variables (see the README)."""

        def number(name: str, default: float) -> float:
            return float(environ.get(name) or default)

        return cls(
            url=environ.get("DUOTOKEN_URL"),
            audience=environ.get("DUOTOKEN_AUDIENCE", "duotoken"),
            issuer=environ.get("DUOTOKEN_ISSUER"),
            jwks_url=environ.get("DUOTOKEN_JWKS_URL"),
            revocation=environ.get("DUOTOKEN_REVOCATION") or None,
            verify_url=environ.get("DUOTOKEN_VERIFY_URL"),
            introspect_url=environ.get("DUOTOKEN_INTROSPECT_URL"),
            client_id=environ.get("DUOTOKEN_CLIENT_ID"),
            client_secret=environ.get("DUOTOKEN_CLIENT_SECRET"),
            cache_seconds=number("DUOTOKEN_CACHE_SECONDS", 5),
            leeway=number("DUOTOKEN_LEEWAY", 5),
        )


def _need(base: str, path: str) -> str:
    if not base:
        raise ValueError(f"set url (or the URL of {path}) for a revocation check")
    return base + path


_default: Verifier | None = None
_default_lock = threading.Lock()


def configure(**options: Any) -> Verifier:
    """Set the Verifier that `verify_access_token()` uses (same arguments as Verifier)."""
    global _default
    with _default_lock:
        _default = Verifier(**options)
        return _default


def verify_access_token(token: str) -> Claims:
    """`Verifier.verify_access_token` on the process's Verifier: the one given to
    `configure()`, else one built from the environment on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Verifier.from_env()
        verifier = _default
    return verifier.verify_access_token(token)
