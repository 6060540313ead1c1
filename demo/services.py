"""The demo's one state change: play a thief who copied an old refresh token.

Tokens are deterministic, so the thief's token is re-minted from the session row
with the claims the copied one carried (session, user, generation); the real
rotation service then judges it exactly as it would judge the copy. No token
leaves the server.

A session bound to the device (DBSC) is robbed differently: the thief copies the
whole cookie jar, current refresh token included, and replays it from another
client, which has no device key; the real refresh path refuses it.
"""

from __future__ import annotations

from django.http import HttpRequest

from tokens import binding, clock
from tokens.conf import auth_settings
from tokens.errors import AuthError
from tokens.models import SecurityEvent, Session
from tokens.services import session_rotate
from tokens.tokens import RefreshToken

# The thief's device, as the security log will record it: an address from the
# documentation range (RFC 5737), so nobody mistakes it for a real one.
THIEF_IP = "203.0.113.66"
THIEF_USER_AGENT = "curl/8.5.0 (demo thief)"


def _thief_request() -> HttpRequest:
    request = HttpRequest()
    request.method = "POST"
    request.path = "/api/auth/refresh/"
    request.META = {"REMOTE_ADDR": THIEF_IP, "HTTP_USER_AGENT": THIEF_USER_AGENT}
    return request


def thief_replay(*, session_id: str) -> SecurityEvent:
    """Present the previous generation's refresh token after the grace window; returns
    the security-log entry of the reuse the server detected. 409 `nothing_to_steal`
    before the first refresh, 409 `grace_window_open` while the server would still
    take the replay for the owner's own retry."""
    session = Session.objects.get(pk=session_id)
    if session.is_bound:
        return _replay_copied_jar(session)
    if session.generation < 2:
        raise AuthError("nothing_to_steal")
    window_left = (session.rotated_at + auth_settings().grace - clock.now()).total_seconds()
    if window_left >= 0:
        raise AuthError(
            "grace_window_open",
            f"The grace window is open for {window_left:.1f} s more: a replay now would count as your own retry.",
        )
    stolen = _refresh_token(session, generation=session.generation - 1)
    try:
        session_rotate(raw_refresh=stolen, request=_thief_request())
    except AuthError as exc:
        if exc.code != "refresh_token_reused":
            raise
    else:
        raise RuntimeError("the rotation service accepted a used refresh token")
    return SecurityEvent.objects.filter(session_id=session.pk, kind=SecurityEvent.Kind.REFRESH_REUSE).latest(
        "created_at"
    )


def _refresh_token(session: Session, *, generation: int, jkt: str | None = None) -> str:
    """A refresh token of `generation`, minted from the row the way the server mints
    it (the thief holds a copy of one it was issued)."""
    token = RefreshToken.for_generation(
        session_id=str(session.pk),
        user_id=str(session.user_id),
        generation=generation,
        issued_at=session.rotated_at,
        not_after=session.idle_expires_at,
        absolute_expires_at=session.absolute_expires_at,
        kid=session.signing_kid,
        jkt=jkt,
    )
    return str(token)


def _replay_copied_jar(session: Session) -> SecurityEvent:
    """Present a copy of the current refresh cookie of a bound session, without a
    proof of the device key, as refresh/ would get it; returns the refusal's log entry."""
    copied = _refresh_token(session, generation=session.generation, jkt=session.binding_jkt)
    request = _thief_request()
    try:
        jkt = binding.require_proof(request=request, raw_refresh=copied)
        session_rotate(raw_refresh=copied, request=request, jkt=jkt)
    except AuthError as exc:
        if exc.code != "binding_proof_required":
            raise
    else:
        raise RuntimeError("the rotation service refreshed a bound session without its device key")
    return SecurityEvent.objects.filter(session_id=session.pk, kind=SecurityEvent.Kind.BINDING_PROOF_MISSING).latest(
        "created_at"
    )
