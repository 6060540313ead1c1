"""Domain errors with stable codes. The codes are the contract SPAs program against;
`config.exceptions` translates them to HTTP at the edge."""

from __future__ import annotations

# code: (HTTP status, message for humans)
ERRORS: dict[str, tuple[int, str]] = {
    "not_authenticated": (401, "Authentication credentials were not provided."),
    "access_token_expired": (401, "The access token has expired; refresh the session and retry."),
    "access_token_stale": (
        401,
        "The access token has expired and the session has been refreshed since; retry with the newer cookie.",
    ),
    "access_token_invalid": (401, "The access token is invalid."),
    "session_revoked": (401, "This session has ended; log in again."),
    "session_expired": (401, "This session has reached its maximum lifetime; log in again."),
    "refresh_token_missing": (401, "No refresh token was sent."),
    "refresh_token_invalid": (401, "The refresh token is invalid."),
    "refresh_token_expired": (401, "The refresh token has expired; log in again."),
    "refresh_token_reused": (401, "This refresh token was already used; the session has been ended."),
    "auth_cookie_conflict": (401, "An auth cookie was sent more than once; log in again."),
    "binding_proof_required": (
        401,
        "This session is bound to a device: only that browser can refresh it, with a proof of its key.",
    ),
    "binding_proof_invalid": (401, "The device-bound session proof is invalid."),
    "binding_proof_malformed": (400, "The device-bound session proof is malformed or oversized."),
    "binding_challenge_invalid": (401, "The proof does not answer a challenge issued for this session."),
    "binding_challenge_expired": (401, "The challenge has expired; ask for a new one."),
    "binding_challenge": (403, "Sign the challenge in Secure-Session-Challenge with the session's key."),
    "binding_session_mismatch": (400, "Sec-Secure-Session-Id does not name the session of these cookies."),
    "binding_already_registered": (409, "This session is already bound to a device."),
    "session_not_bound": (400, "This session is not bound to a device: refresh it with refresh/."),
    "invalid_credentials": (401, "Unable to log in with the provided credentials."),
    "invalid_client": (401, "Service client authentication failed."),
    "csrf_failed": (403, "CSRF verification failed."),
    # The demo page's thief (demo/, only while AUTH_DEMO_PAGE is on).
    "grace_window_open": (409, "The grace window is still open: a replay now would count as your own retry."),
    "nothing_to_steal": (
        409,
        "This session has not been refreshed yet, so there is no used refresh token to replay.",
    ),
    "unsupported_media_type": (415, "Unsupported Content-Type: send JSON (introspect/ takes a form)."),
    "request_too_large": (413, "The request body is too large."),
    "throttled": (429, "Too many requests; retry later."),
    "service_unavailable": (503, "The service is temporarily unavailable; retry shortly."),
    # A signing key that this host cannot use (not decryptable, unparsable, public
    # knowledge): an operator must act, see checks duotoken.E012 and E013.
    "signing_key_unavailable": (503, "The service cannot sign tokens right now; retry later."),
}


class AuthError(Exception):
    def __init__(self, code: str, detail: str | None = None, *, retry_after: float | None = None) -> None:
        status, default = ERRORS[code]
        super().__init__(detail or default)
        self.code = code
        self.status = status
        self.detail = detail or default
        self.retry_after = retry_after
