"""Set and clear the auth cookies: the only cookie code.

Access cookie: HttpOnly, SameSite=Lax, Path=/, lives as long as the session can be
refreshed (the refresh cookie's Max-Age), so an expired token is still presented and
answered with `access_token_expired`.
Refresh cookie: HttpOnly, SameSite=Strict, Path=/api/auth/ (only auth endpoints ever
see it), lives as long as what is left of the session. Clearing repeats every
attribute, or browsers keep the cookie.

Cookie tossing: a sibling subdomain can set a second cookie of the same name (with
Domain= on the parent, allowed for __Secure- names), and Django keeps only one value
per name, so a request could silently run as whoever tossed it. Reading an auth
cookie that appears more than once in the Cookie header is refused instead.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

from .conf import auth_settings
from .errors import AuthError
from .events import security_event_record
from .models import SecurityEvent
from .tokens import TokenPair


def _attrs(kind: str) -> dict[str, Any]:
    conf = auth_settings()
    common = {"secure": conf.cookie_secure, "httponly": True, "domain": conf.cookie_domain}
    if kind == "access":
        return {**common, "key": conf.access_cookie_name, "path": "/", "samesite": "Lax"}
    return {**common, "key": conf.refresh_cookie_name, "path": conf.refresh_cookie_path, "samesite": "Strict"}


def access_cookie_attributes() -> str:
    """The access cookie's attributes as a Set-Cookie line spells them, for the DBSC
    session config, which must name exactly what the cookie is set with."""
    attrs = _attrs("access")
    parts = [f"Path={attrs['path']}"]
    if attrs["domain"]:
        parts.append(f"Domain={attrs['domain']}")
    if attrs["secure"]:
        parts.append("Secure")
    parts += ["HttpOnly", f"SameSite={attrs['samesite']}"]
    return "; ".join(parts)


def set_auth_cookies(response: HttpResponse, pair: TokenPair) -> None:
    response.set_cookie(value=pair.access, max_age=pair.access_max_age, **_attrs("access"))
    response.set_cookie(value=pair.refresh, max_age=pair.refresh_max_age, **_attrs("refresh"))
    add_never_cache_headers(response)  # Cache-Control: no-store, private, ...


def clear_auth_cookies(response: HttpResponse) -> None:
    for kind in ("access", "refresh"):
        response.set_cookie(value="", max_age=0, expires="Thu, 01 Jan 1970 00:00:00 GMT", **_attrs(kind))
    add_never_cache_headers(response)


def duplicated_auth_cookies(request: HttpRequest) -> list[str]:
    """Auth cookie names that the raw Cookie header carries more than once."""
    conf = auth_settings()
    header = request.META.get("HTTP_COOKIE", "")
    ours = (conf.access_cookie_name, conf.refresh_cookie_name)
    # Two copies of a name need two occurrences of it in the header: without them,
    # skip splitting the header (every request pays this check).
    if all(header.count(name) < 2 for name in ours):
        return []
    names = [part.partition("=")[0].strip() for part in header.split(";")]
    return [name for name in ours if names.count(name) > 1]


def _refuse_tossed(request: HttpRequest) -> None:
    duplicated = duplicated_auth_cookies(request)
    if not duplicated:
        return
    if not getattr(request, "_duotoken_cookie_conflict", False):
        request._duotoken_cookie_conflict = True  # type: ignore[attr-defined]
        security_event_record(
            kind=SecurityEvent.Kind.AUTH_COOKIE_CONFLICT, request=request, data={"cookies": duplicated}
        )
    raise AuthError("auth_cookie_conflict")


def read_access(request: HttpRequest) -> str | None:
    _refuse_tossed(request)
    return request.COOKIES.get(auth_settings().access_cookie_name) or None


def read_refresh(request: HttpRequest) -> str | None:
    _refuse_tossed(request)
    return request.COOKIES.get(auth_settings().refresh_cookie_name) or None
