"""Set and clear the auth cookies: the only cookie code.

Access cookie: HttpOnly, SameSite=Lax, Path=/, lives as long as the session can be
refreshed (the refresh cookie's Max-Age), so an expired token is still presented and
answered with `access_token_expired`.
Refresh cookie: HttpOnly, SameSite=Strict, Path=/api/auth/ (only auth endpoints ever
see it), lives as long as what is left of the session. Clearing repeats every
attribute, or browsers keep the cookie.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.cache import add_never_cache_headers

from .conf import auth_settings
from .tokens import TokenPair


def _attrs(kind: str) -> dict:
    conf = auth_settings()
    common = {"secure": conf.cookie_secure, "httponly": True, "domain": conf.cookie_domain}
    if kind == "access":
        return {**common, "key": conf.access_cookie_name, "path": "/", "samesite": "Lax"}
    return {**common, "key": conf.refresh_cookie_name, "path": conf.refresh_cookie_path, "samesite": "Strict"}


def set_auth_cookies(response: HttpResponse, pair: TokenPair) -> None:
    response.set_cookie(value=pair.access, max_age=pair.access_max_age, **_attrs("access"))
    response.set_cookie(value=pair.refresh, max_age=pair.refresh_max_age, **_attrs("refresh"))
    add_never_cache_headers(response)  # Cache-Control: no-store, private, ...


def clear_auth_cookies(response: HttpResponse) -> None:
    for kind in ("access", "refresh"):
        response.set_cookie(value="", max_age=0, expires="Thu, 01 Jan 1970 00:00:00 GMT", **_attrs(kind))
    add_never_cache_headers(response)


def read_access(request) -> str | None:
    return request.COOKIES.get(auth_settings().access_cookie_name) or None


def read_refresh(request) -> str | None:
    return request.COOKIES.get(auth_settings().refresh_cookie_name) or None
