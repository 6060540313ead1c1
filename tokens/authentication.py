"""Cookie JWT authentication with CSRF and a live-session check.

Split into small overridable steps, like Simple JWT's JWTAuthentication. Returns
None when there is no access cookie ("not my scheme"); raises for a cookie that is
there but bad. CSRF is enforced on unsafe methods, since cookies ride along on
cross-site requests.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from . import clock
from .conf import auth_settings
from .cookies import read_access
from .csrf import enforce_csrf
from .errors import AuthError
from .models import Session
from .services import session_user_checked
from .tokens import ACCESS, TokenExpired, TokenInvalid, decode


class CookieJWTAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, dict[str, Any]] | None:
        raw = self.get_raw_token(request)
        if raw is None:
            return None
        self.enforce_csrf(request)
        claims = self.get_validated_token(raw)
        return self.get_user(claims), claims

    def get_raw_token(self, request: Request) -> str | None:
        return read_access(request._request)

    def enforce_csrf(self, request: Request) -> None:
        enforce_csrf(request._request)

    def get_validated_token(self, raw: str) -> dict[str, Any]:
        return access_claims(raw)

    def get_user(self, claims: dict[str, Any]) -> AbstractBaseUser:
        return session_user_checked(session_id=claims["sid"], user_id=claims[auth_settings().user_id_claim])

    def authenticate_header(self, request: Request) -> str:
        # Any value makes DRF answer 401 (not 403) when credentials are missing.
        return 'Cookie realm="api"'


def access_claims(raw: str) -> dict[str, Any]:
    """The claims of a valid, unexpired access token, or the AuthError that tells
    the client what to do (shared by the cookie authentication and `verify/`)."""
    try:
        return decode(raw, ACCESS)
    except TokenExpired as exc:
        raise expired_error(exc.claims) from None
    except TokenInvalid:
        raise AuthError("access_token_invalid") from None


def expired_error(claims: dict[str, Any]) -> AuthError:
    """Why a genuine but expired token is refused, so the client does the one right
    thing: refresh (`access_token_expired`), just retry because the session was
    refreshed since this token was issued (`access_token_stale`), or log in.

    An expired token never authorises; it only picks the answer. The database is
    asked (one indexed read), since Redis does not hold the generation: browsers send
    an expired token only around each expiry, never on the hot path."""
    if claims["sx"] <= clock.now().timestamp():
        return AuthError("session_expired")
    row = Session.objects.filter(pk=claims["sid"]).values_list("user_id", "generation", "revoked_at").first()
    if row is None or str(row[0]) != claims[auth_settings().user_id_claim] or row[2] is not None:
        return AuthError("session_revoked")
    if claims["gen"] < row[1]:
        return AuthError("access_token_stale")
    return AuthError("access_token_expired")
