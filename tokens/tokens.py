"""Our token classes, built on Simple JWT's `Token`, signed through `tokens.keys`.

Tokens are deterministic: the same session, generation, issue time and key always
sign to the same bytes (ECDSA with RFC 6979 nonces, Ed25519, RSA PKCS#1 v1.5 and
HMAC signatures are deterministic). That is what lets a refresh replayed inside the grace window get
the byte-identical successor without any raw token being stored anywhere.

Every token names its key in a `kid` header and carries `iss` and `aud`; all three
and the algorithm are checked on every use. The verifying key is looked up by
`kid` among our own published keys only: never from a token's `jku`, `x5u` or
`jwk` header, never for an algorithm other than the one that key is bound to.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.crypto import salted_hmac
from rest_framework_simplejwt.tokens import Token

from . import clock, keys
from .conf import AuthSettings, auth_settings
from .errors import AuthError

ACCESS = "access"
REFRESH = "refresh"


class TokenInvalid(Exception):
    """Malformed, forged, tampered, of the wrong type, or otherwise unusable."""


class TokenExpired(Exception):
    def __init__(self, claims: dict[str, Any]) -> None:
        super().__init__("token expired")
        self.claims = claims


class _SessionToken(Token):
    """A token of one session generation; never built from the current time."""

    token_type: str
    kid: str = ""

    @property
    def lifetime(self) -> timedelta:  # type: ignore[override]  # read at use time, never captured at import
        conf = auth_settings()
        return conf.access_lifetime if self.token_type == ACCESS else conf.refresh_lifetime

    def __str__(self) -> str:
        # Simple JWT's backend cannot set a `kid` header.
        return keys.sign(self.payload, self.kid)

    @classmethod
    def for_generation(
        cls,
        *,
        session_id: str,
        user_id: str,
        generation: int,
        issued_at: datetime,
        not_after: datetime,
        absolute_expires_at: datetime,
        kid: str,
        jkt: str | None = None,
    ) -> _SessionToken:
        conf = auth_settings()
        token = cls()
        token.kid = kid
        iat = int(issued_at.timestamp())
        token.payload = {
            "iss": conf.issuer,
            "aud": conf.audience,
            conf.token_type_claim: cls.token_type,
            "iat": iat,
            "exp": min(iat + int(token.lifetime.total_seconds()), int(not_after.timestamp())),
            conf.jti_claim: salted_hmac(
                "duotoken.jti", f"{session_id}:{generation}:{cls.token_type}", secret=conf.signing_key
            ).hexdigest()[:32],
            conf.user_id_claim: user_id,
            "sid": session_id,
            "gen": generation,
            # The absolute end of the session, so an expired token can tell
            # "session_expired" from a plain idle expiry without a query.
            "sx": int(absolute_expires_at.timestamp()),
        }
        if jkt:
            # RFC 7800 / RFC 9449: the session is bound to this device key, so that
            # gateways and services can see it (the thumbprint comes from the row).
            token.payload["cnf"] = {"jkt": jkt}
        return token


class AccessToken(_SessionToken):
    token_type = ACCESS


class RefreshToken(_SessionToken):
    token_type = REFRESH


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    access_max_age: int
    refresh_max_age: int
    session_expires: datetime


# Seconds by which a bound session's access cookie dies before its token.
BOUND_COOKIE_MARGIN = 1


def mint_pair(
    *,
    session_id: str,
    user_id: str,
    generation: int,
    issued_at: datetime,
    absolute_expires_at: datetime,
    now: datetime,
    kid: str,
    jkt: str | None = None,
) -> TokenPair:
    """The pair of one generation, as issued at `issued_at` (a whole second); the
    cookie lifetimes count from `now`, so a grace replay gets what is left.

    `jkt` is the thumbprint of the device key a bound session (tokens.binding) is
    bound to: both tokens carry `cnf` (so refresh/ knows without a query that a
    proof is due) and the access cookie dies before its token (BOUND_COOKIE_MARGIN)."""
    conf = auth_settings()
    idle_end = min(issued_at + conf.refresh_lifetime, absolute_expires_at)
    common: dict[str, Any] = {
        "session_id": session_id,
        "user_id": user_id,
        "generation": generation,
        "issued_at": issued_at,
        "absolute_expires_at": absolute_expires_at,
        "kid": kid,
    }
    access = AccessToken.for_generation(not_after=absolute_expires_at, jkt=jkt, **common)
    refresh = RefreshToken.for_generation(not_after=idle_end, jkt=jkt, **common)
    # Counted from the whole second `now` falls in, as `iat` is: at issue the cookie
    # lives the full lifetime, and it may outlive its token by under a second.
    elapsed = int(clock.whole_second(now).timestamp())
    refresh_max_age = max(0, refresh["exp"] - elapsed)
    access_max_age = refresh_max_age
    if jkt:
        # A bound access cookie lives as long as its token, less a margin: once it is
        # gone, the browser holds requests back and renews it with a device-signed
        # refresh first, so a request never leaves with a token that expires on the way.
        access_max_age = max(0, min(access["exp"] - elapsed - BOUND_COOKIE_MARGIN, refresh_max_age))
    return TokenPair(
        access=str(access),
        refresh=str(refresh),
        # The access cookie outlives its token on purpose: a browser then presents the
        # expired token and hears `access_token_expired`, rather than sending nothing
        # and hearing `not_authenticated`. It never authorises anything once expired.
        access_max_age=access_max_age,
        refresh_max_age=refresh_max_age,
        session_expires=idle_end,
    )


# Signature checks are the costly part of reading a token, and a browser presents the
# same access token on every request for its whole lifetime: remember the claims of
# tokens that verified, with their kid. Bounded per process, least recently used out
# first, one at a time (issue 17: emptying it wholesale when full re-verified every
# token of a worker that sees more distinct tokens than it holds). Expiry, type and
# the key still being published (not retired) are checked on every use.
class _VerifiedTokens:
    """A bounded LRU map raw token -> (kid, claims), safe across a worker's threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, raw: str) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            hit = self._entries.get(raw)
            if hit is not None:
                self._entries.move_to_end(raw)
            return hit

    def put(self, raw: str, hit: tuple[str, dict[str, Any]]) -> None:
        with self._lock:
            self._entries[raw] = hit
            self._entries.move_to_end(raw)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def pop(self, raw: str) -> None:
        with self._lock:
            self._entries.pop(raw, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __contains__(self, raw: str) -> bool:
        return raw in self._entries

    def __len__(self) -> int:
        return len(self._entries)


VERIFIED_CACHE_SIZE = 10_000
_VERIFIED = _VerifiedTokens(VERIFIED_CACHE_SIZE)


def decode(raw: str, expected_type: str) -> dict[str, Any]:
    """Verify signature, type and shape; raise TokenExpired or TokenInvalid.

    Expiry is checked here against `clock.now()` (not PyJWT's clock) so that the
    claims of an expired-but-genuine token are still available to pick the error.
    The returned claims are shared: read them, never change them.
    """
    conf = auth_settings()
    hit = _VERIFIED.get(raw)
    if hit is None:
        hit = _verify(raw, conf)
        _VERIFIED.put(raw, hit)
    elif not keys.still_verifying(hit[0]):
        _VERIFIED.pop(raw)
        raise TokenInvalid("key retired")
    claims = hit[1]
    if claims.get(conf.token_type_claim) != expected_type:
        raise TokenInvalid("wrong type")
    if claims["exp"] <= clock.now().timestamp():
        raise TokenExpired(claims)
    return claims


_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


def _unverified_header(raw: str) -> dict[str, Any]:
    """The JOSE header, to choose the key by: read here once, with one regular
    expression for the base64url alphabet, rather than by PyJWT, which checks it byte
    by byte in Python and then does it all again in decode() (issue 17: most of a
    cache miss's cost besides the signature). decode() still parses and checks the
    whole token; the header we read is covered by the signature it verifies."""
    head, dot, _ = raw.partition(".")
    if not dot or not _SEGMENT.fullmatch(head):
        raise TokenInvalid("malformed header")
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error, RecursionError) as exc:  # JSONDecodeError, bad UTF-8: ValueError
        raise TokenInvalid("malformed header") from exc
    if not isinstance(header, dict):
        raise TokenInvalid("malformed header")
    return header


def refresh_claims(raw_refresh: str | None) -> dict[str, Any]:
    """The claims of a usable refresh token, or the AuthError that tells the client
    why not (missing, expired, past the session's end, invalid); for refresh/ and
    the device-bound refresh alike."""
    if not raw_refresh:
        raise AuthError("refresh_token_missing")
    try:
        return decode(raw_refresh, REFRESH)
    except TokenExpired as exc:
        if exc.claims["sx"] <= clock.now().timestamp():
            raise AuthError("session_expired") from None
        raise AuthError("refresh_token_expired") from None
    except TokenInvalid:
        raise AuthError("refresh_token_invalid") from None


def _verify(raw: str, conf: AuthSettings) -> tuple[str, dict[str, Any]]:
    if not raw or len(raw) > conf.max_token_bytes:
        raise TokenInvalid("empty or oversized token")
    header = _unverified_header(raw)
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in keys.ALGORITHMS or not isinstance(kid, str):
        raise TokenInvalid("an algorithm we never sign with, or no kid")
    verifier = keys.verifying_key(kid)
    if verifier is None:
        raise TokenInvalid("unknown or retired key")
    # Only the algorithm the named key is bound to, whatever the header says: no
    # "none", no HS256 with a public key as the secret, no RS384 with an RS256 key.
    if alg != verifier.algorithm:
        raise TokenInvalid("wrong algorithm for its key")
    try:
        claims = jwt.decode(
            raw,
            verifier.key,
            algorithms=[verifier.algorithm],
            audience=conf.audience,
            issuer=conf.issuer,
            # No iat check: a host whose clock runs a second behind the one that
            # minted the token would call it "not yet valid" and log the user out.
            options={
                "verify_exp": False,
                "verify_iat": False,
                "require": ["exp", "iat", "iss", "aud"],
            },
        )
    except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
        raise TokenInvalid(str(exc)) from exc
    if not _well_formed(claims, conf):
        raise TokenInvalid("wrong shape")
    if not _within_lifetime(claims, conf):
        # We never sign one: a token that claims to outlive its type's lifetime was
        # made with a key that is not ours alone (issue 15), or under settings that
        # have since been shortened. Either way it must not live that long.
        raise TokenInvalid("lives longer than its type's lifetime")
    return kid, claims


@receiver(setting_changed)
def _forget_verified(*, setting: str, **kwargs: object) -> None:
    if setting == "SIMPLE_JWT":
        _VERIFIED.clear()


def _within_lifetime(claims: dict[str, Any], conf: AuthSettings) -> bool:
    kind = claims.get(conf.token_type_claim)
    lifetime = (
        {ACCESS: conf.access_lifetime, REFRESH: conf.refresh_lifetime}.get(kind) if isinstance(kind, str) else None
    )
    return lifetime is not None and claims["exp"] - claims["iat"] <= lifetime.total_seconds()


def _well_formed(claims: dict[str, Any], conf: AuthSettings) -> bool:
    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if not all(is_int(claims.get(name)) for name in ("exp", "iat", "gen", "sx")):
        return False
    if not isinstance(claims.get(conf.jti_claim), str) or not isinstance(claims.get(conf.user_id_claim), str):
        return False
    try:
        uuid.UUID(claims.get("sid"))
    except (TypeError, ValueError, AttributeError):
        return False
    generation: int = claims["gen"]
    return generation >= 1
