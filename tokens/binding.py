"""Sessions bound to the device: W3C Device Bound Session Credentials (DBSC).

The browser keeps a private key that never leaves the device (a TPM where there
is one) and proves possession of it each time the short-lived access cookie is
renewed. A copied cookie jar then stops working within one access lifetime: the
refresh token alone no longer refreshes.

  login / password change  ->  Secure-Session-Registration: (ES256 RS256);path=...;challenge=...
  POST register/  Secure-Session-Response: JWS{typ dbsc+jwt, jwk} over the challenge
                  -> the session row keeps the public key and its RFC 7638 thumbprint,
                     the answer is the session config (which cookie is bound, where to refresh)
  POST refresh URL  Sec-Secure-Session-Id: <sid>            -> 403 Secure-Session-Challenge
                    + Secure-Session-Response over that one -> the same rotation as refresh/

Challenges are random, single use (GETDEL), short-lived and tied to one session
(tokens.store); Redis being away refuses every proof (503), it never accepts one.
A bound session's refresh token without a proof is refused wherever it is
presented (`binding_proof_required`), and logged, but the session is not ended:
anyone holding a copy could otherwise end the owner's session at will, and the
owner's browser never sends such a request (its cookie is renewed by the browser
before it expires, so the page never meets `access_token_expired`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import jwt
from django.db.models import Q
from django.http import HttpRequest, HttpResponseBase
from django.urls import reverse
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from . import clock, store
from .conf import auth_settings
from .cookies import access_cookie_attributes
from .errors import AuthError
from .events import security_event_record
from .models import SecurityEvent, Session
from .throttles import throttle_refresh
from .tokens import TokenPair, mint_pair, refresh_claims

logger = logging.getLogger("duotoken.binding")

REGISTRATION_HEADER = "Secure-Session-Registration"
CHALLENGE_HEADER = "Secure-Session-Challenge"
_PROOF_META = "HTTP_SECURE_SESSION_RESPONSE"  # Secure-Session-Response
_SESSION_ID_META = "HTTP_SEC_SECURE_SESSION_ID"  # Sec-Secure-Session-Id

# What the browser may sign with (DBSC allows these two); never none or HS*.
ALGORITHMS = ("ES256", "RS256")
_KTY = {"ES256": "EC", "RS256": "RSA"}
PROOF_TYPE = "dbsc+jwt"
# A proof with an RSA-4096 jwk is under 2 KB; anything much larger is refused unparsed.
MAX_PROOF_BYTES = 8192
MAX_CHALLENGE_CHARS = 128
RSA_BITS = (2048, 4096)
# Purposes of a challenge: the one offered at login is for registration only.
REGISTER, REFRESH_PROOF = "r", "f"
# Codes that answer a request the owner's browser never makes: they keep the
# cookies (the owner must not be logged out through them) and end nothing.
PROOF_CODES = frozenset(
    {
        "binding_proof_required",
        "binding_proof_invalid",
        "binding_proof_malformed",
        "binding_challenge_invalid",
        "binding_challenge_expired",
        "binding_session_mismatch",
    }
)


class ChallengeRequired(AuthError):
    """The refresh URL's first leg: answered 403 with a fresh challenge."""

    def __init__(self, *, session_id: str, challenge: str) -> None:
        super().__init__("binding_challenge")
        self.header = f'"{challenge}";id="{session_id}"'


def enabled() -> bool:
    return auth_settings().dbsc


# -- challenges ---------------------------------------------------------------


def _challenge_issue(session_id: str, user_id: str, purpose: str) -> str:
    challenge = secrets.token_urlsafe(32)
    ttl = auth_settings().dbsc_challenge_seconds
    # Redis keeps it a minute past its life, so that a late answer hears
    # "expired" (decided on the clock seam) rather than "unknown".
    issued_ms = int(clock.now().timestamp() * 1000)
    store.challenge_remember(session_id, user_id, challenge, purpose=purpose, issued_ms=issued_ms, ttl=ttl + 60)
    return challenge


def _challenge_take(session_id: str, user_id: str, challenge: Any, purpose: str) -> None:
    if not isinstance(challenge, str) or not challenge or len(challenge) > MAX_CHALLENGE_CHARS:
        raise AuthError("binding_challenge_invalid")
    found = store.challenge_take(session_id, user_id, challenge)
    if found is None or found[0] != purpose:
        # Never issued, issued for another session, already answered, or offered
        # for the other step.
        raise AuthError("binding_challenge_invalid")
    lifetime_ms = auth_settings().dbsc_challenge_seconds * 1000
    if found[1] + lifetime_ms <= clock.now().timestamp() * 1000:
        raise AuthError("binding_challenge_expired")


def offer(response: HttpResponseBase, *, session_id: str, user_id: str) -> None:
    """Add the registration header to a response that starts a session. Best
    effort: without Redis the session simply stays unbound (a plain session)."""
    if not enabled():
        return
    try:
        challenge = _challenge_issue(session_id, user_id, REGISTER)
    except store.StoreUnavailable as exc:
        logger.warning("device binding not offered to session %s: %s", session_id, exc)
        return
    path = reverse("auth:dbsc-register")
    response[REGISTRATION_HEADER] = f'({" ".join(ALGORITHMS)});path="{path}";challenge="{challenge}"'


# -- proofs -------------------------------------------------------------------


@dataclass(frozen=True)
class Proof:
    raw: str
    alg: str
    jwk: dict[str, Any] | None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, without whitespace."""
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({name: jwk[name] for name in members}, sort_keys=True, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest())


def _proof(request: HttpRequest) -> Proof | None:
    raw = request.META.get(_PROOF_META)
    if raw is None:
        return None
    if len(raw) > MAX_PROOF_BYTES:
        raise AuthError("binding_proof_malformed")
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = raw[1:-1]  # the same JWS as a structured-field string
    if raw.count(".") != 2:
        raise AuthError("binding_proof_malformed")
    try:
        header = jwt.get_unverified_header(raw)
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise AuthError("binding_proof_malformed") from None
    alg = header.get("alg")
    if header.get("typ") != PROOF_TYPE or alg not in ALGORITHMS:
        raise AuthError("binding_proof_invalid", "The proof must be a dbsc+jwt signed with ES256 or RS256.")
    jwk = header.get("jwk")
    if jwk is not None and not isinstance(jwk, dict):
        raise AuthError("binding_proof_invalid")
    return Proof(raw=raw, alg=alg, jwk=jwk)


def _public_key(jwk: Any, alg: str) -> tuple[Any, dict[str, Any]]:
    """The verifying key of a public JWK that fits `alg`, and the JWK reduced to
    its public members (what the session row keeps)."""
    if not isinstance(jwk, dict) or jwk.get("kty") != _KTY[alg] or "d" in jwk:
        raise AuthError("binding_proof_invalid", f"The proof's jwk must be a public {_KTY[alg]} key for {alg}.")
    members = ("kty", "crv", "x", "y") if alg == "ES256" else ("kty", "n", "e")
    if not all(isinstance(jwk.get(name), str) and len(jwk[name]) <= 1024 for name in members):
        raise AuthError("binding_proof_invalid", "The proof's jwk is incomplete.")
    public = {name: jwk[name] for name in members}
    if alg == "ES256" and public["crv"] != "P-256":
        raise AuthError("binding_proof_invalid", "ES256 needs a P-256 key.")
    try:
        key = (ECAlgorithm if alg == "ES256" else RSAAlgorithm).from_jwk(public)
    except (jwt.InvalidKeyError, ValueError, TypeError):
        raise AuthError("binding_proof_invalid", "The proof's jwk is not a valid key.") from None
    if alg == "RS256" and not RSA_BITS[0] <= key.key_size <= RSA_BITS[1]:
        raise AuthError("binding_proof_invalid", "RSA keys must have 2048 to 4096 bits.")
    return key, public


def _verified_jti(proof: Proof, key: Any) -> Any:
    try:
        claims = jwt.decode(
            proof.raw,
            key,
            algorithms=[proof.alg],
            # The browser signs only {"jti": challenge}: no aud, no iat, no exp.
            options={"verify_aud": False, "verify_iat": False, "verify_exp": False, "verify_nbf": False},
        )
    except jwt.InvalidSignatureError:  # a DecodeError in PyJWT, but not malformed
        raise AuthError("binding_proof_invalid") from None
    except jwt.DecodeError:
        raise AuthError("binding_proof_malformed") from None
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise AuthError("binding_proof_invalid") from None
    return claims.get("jti")


# -- the session behind the cookies ---------------------------------------------


def _check_session_header(request: HttpRequest, session_id: str) -> None:
    named = request.META.get(_SESSION_ID_META)
    if named is not None and named.strip().strip('"') != session_id:
        raise AuthError("binding_session_mismatch")


def _refuse(*, request: HttpRequest, session_id: str, user_id: str, kind: str, code: str) -> None:
    # Counted like a refresh, so that neither the log nor the database can be
    # flooded through here; a throttled attempt is refused as throttled.
    throttle_refresh(request=request, session_id=session_id)
    security_event_record(
        kind=kind, request=request, user_id=user_id, session_id=session_id, data={"path": request.path, "code": code}
    )
    logger.warning("bound session %s: %s from %s", session_id, code, request.META.get("REMOTE_ADDR"))


def refuse_unproven(*, request: HttpRequest, session_id: str, user_id: str) -> None:
    """A bound session's refresh token without a proof of the device key: logged
    (with IP and user agent) and refused. The session is not ended: see the module
    docstring."""
    code = "binding_proof_required"
    _refuse(
        request=request,
        session_id=session_id,
        user_id=user_id,
        kind=SecurityEvent.Kind.BINDING_PROOF_MISSING,
        code=code,
    )
    raise AuthError(code)


def require_proof(*, request: HttpRequest, raw_refresh: str | None, challenge: bool = False) -> str | None:
    """Run before every rotation. For an unbound session: None (rotate as usual;
    bad tokens are left to the rotation to report). For a bound one: the thumbprint
    of its key, once the request's Secure-Session-Response proved possession of it
    over a challenge issued for this session; otherwise AuthError, logged.

    Tokens of a bound session carry `cnf`, so refresh/ asks the database only for
    those; a token minted before the binding has none, and the rotation's
    compare-and-set (which matches the binding) refuses it.

    `challenge`: the refresh URL, which answers a request without a proof with a
    challenge (ChallengeRequired, the protocol's first leg) instead of refusing it.
    """
    try:
        claims = refresh_claims(raw_refresh)
    except AuthError:
        if challenge:
            raise  # the refresh URL is for bound sessions only: no token, nothing to bind
        return None
    sid, uid = claims["sid"], claims[auth_settings().user_id_claim]
    if not challenge and "cnf" not in claims and _PROOF_META not in request.META:
        return None  # the plain refresh/ hot path: no query
    if challenge:
        _check_session_header(request, sid)
    row = Session.objects.filter(pk=sid).values_list("binding_jkt", "binding_jwk", "revoked_at").first()
    if row is None and challenge:
        raise AuthError("refresh_token_invalid")  # the session is gone (deleted after it expired)
    if row is None or not row[0]:
        if challenge:
            raise AuthError("session_not_bound")
        return None
    jkt, jwk, revoked_at = row
    if revoked_at is not None:
        raise AuthError("session_revoked")  # the browser ends its bound session on this
    try:
        proof = _proof(request)
        if proof is None:
            if challenge:
                throttle_refresh(request=request, session_id=sid)
                raise ChallengeRequired(session_id=sid, challenge=_challenge_issue(sid, uid, REFRESH_PROOF))
            raise AuthError("binding_proof_required")
        # A bound row always has its key: binding_jwk and binding_jkt are written together.
        alg = "ES256" if cast("dict[str, Any]", jwk).get("kty") == "EC" else "RS256"
        if proof.alg != alg:
            raise AuthError("binding_proof_invalid", f"This session's key signs with {alg}.")
        # The proof is checked against the key on the row, never against a jwk in its header.
        key, _ = _public_key(jwk, alg)
        _challenge_take(sid, uid, _verified_jti(proof, key), REFRESH_PROOF)
    except AuthError as exc:
        if exc.code == "binding_proof_required":
            refuse_unproven(request=request, session_id=sid, user_id=uid)
        if exc.code in PROOF_CODES:
            _refuse(
                request=request,
                session_id=sid,
                user_id=uid,
                kind=SecurityEvent.Kind.BINDING_PROOF_INVALID,
                code=exc.code,
            )
        raise
    return jkt


# -- registration ---------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    session_id: str
    jkt: str
    pair: TokenPair


def session_register(*, request: HttpRequest, raw_refresh: str | None) -> Registered:
    """Bind the session of these cookies to the key in the request's proof, which
    must answer the registration challenge offered to this very session."""
    claims = refresh_claims(raw_refresh)
    sid, uid, gen = claims["sid"], claims[auth_settings().user_id_claim], claims["gen"]
    throttle_refresh(request=request, session_id=sid)
    _check_session_header(request, sid)
    try:
        proof = _proof(request)
        if proof is None:
            raise AuthError("binding_proof_required")
        if proof.jwk is None:
            raise AuthError("binding_proof_invalid", "A registration proof carries its public key as jwk.")
        key, public = _public_key(proof.jwk, proof.alg)
        _challenge_take(sid, uid, _verified_jti(proof, key), REGISTER)
    except AuthError as exc:
        if exc.code in PROOF_CODES:
            security_event_record(
                kind=SecurityEvent.Kind.BINDING_PROOF_INVALID,
                request=request,
                user_id=uid,
                session_id=sid,
                data={"path": request.path, "code": exc.code},
            )
        raise
    jkt, now = thumbprint(public), clock.now()
    live = Q(revoked_at__isnull=True, idle_expires_at__gt=now, absolute_expires_at__gt=now)
    bound = Session.objects.filter(live, pk=sid, user_id=uid, generation=gen, binding_jkt="").update(
        binding_jwk=public, binding_jkt=jkt, bound_at=now
    )
    session = Session.objects.filter(pk=sid).first()
    if not bound or session is None:
        raise _why_not_bound(session, uid=uid, gen=gen, now=now)
    security_event_record(
        kind=SecurityEvent.Kind.BINDING_REGISTERED,
        request=request,
        user_id=uid,
        session_id=sid,
        data={"jkt": jkt, "alg": proof.alg},
    )
    # The current generation again, now with `cnf` and the bound cookie's short life,
    # so that the browser renews it (signed) from its first expiry on.
    pair = mint_pair(
        session_id=sid,
        user_id=uid,
        generation=session.generation,
        issued_at=session.rotated_at,
        absolute_expires_at=session.absolute_expires_at,
        now=now,
        kid=session.signing_kid,
        jkt=jkt,
    )
    return Registered(session_id=sid, jkt=jkt, pair=pair)


def _why_not_bound(session: Session | None, *, uid: str, gen: int, now: datetime) -> AuthError:
    if session is None or str(session.user_id) != uid:
        return AuthError("refresh_token_invalid")
    if session.is_revoked:
        return AuthError("session_revoked")
    if now >= session.absolute_expires_at:
        return AuthError("session_expired")
    if now >= session.idle_expires_at:
        return AuthError("refresh_token_expired")
    if session.is_bound:
        return AuthError("binding_already_registered")
    # Refreshed since the challenge was offered: a newer login step owns it.
    return AuthError("binding_challenge_expired", "The session was refreshed since binding was offered.")


def session_config(*, request: HttpRequest, session_id: str) -> dict[str, Any]:
    """The DBSC session instructions: which cookie is bound, where it is renewed
    (under the refresh cookie's path, so that cookie rides along), and for what."""
    conf = auth_settings()
    return {
        "session_identifier": session_id,
        "refresh_url": reverse("auth:dbsc-refresh"),
        "scope": {
            "origin": f"{request.scheme}://{request.get_host()}",
            "include_site": False,
            "scope_specification": [],
        },
        "credentials": [{"type": "cookie", "name": conf.access_cookie_name, "attributes": access_cookie_attributes()}],
    }
