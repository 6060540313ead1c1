"""What can go wrong, as a small hierarchy with stable codes (Duotoken's own codes
where they mean the same thing, so a SPA behind both services reads one contract).

    DuotokenError
    ├── InvalidToken        401 access_token_invalid: forged, malformed, wrong type, unknown key, ...
    │   ├── ExpiredToken    401 access_token_expired: refresh at Duotoken, then retry
    │   └── RevokedToken    401 session_revoked: the session was ended (logout, admin, reuse, ...)
    └── Unavailable         503 service_unavailable: Duotoken could not be asked (JWKS or check)

An InvalidToken means "these credentials are bad"; an Unavailable means "we could
not find out", which is never a reason to log the user out.
"""

from __future__ import annotations


class DuotokenError(Exception):
    code = "duotoken_error"
    status = 500

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r}, code={self.code!r})"


class InvalidToken(DuotokenError):
    code = "access_token_invalid"
    status = 401


class ExpiredToken(InvalidToken):
    code = "access_token_expired"


class RevokedToken(InvalidToken):
    code = "session_revoked"


class Unavailable(DuotokenError):
    code = "service_unavailable"
    status = 503
