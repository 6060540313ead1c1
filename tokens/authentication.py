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

from .conf import auth_settings
from .cookies import read_access
from .csrf import enforce_csrf
from .errors import AuthError
from .selectors import session_user
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
        try:
            return decode(raw, ACCESS)
        except TokenExpired:
            raise AuthError("access_token_expired") from None
        except TokenInvalid:
            raise AuthError("access_token_invalid") from None

    def get_user(self, claims: dict[str, Any]) -> AbstractBaseUser:
        return session_user(session_id=claims["sid"], user_id=claims[auth_settings().user_id_claim])

    def authenticate_header(self, request: Request) -> str:
        # Any value makes DRF answer 401 (not 403) when credentials are missing.
        return 'Cookie realm="api"'
