"""Session, auth and message middleware for the site, skipped on the API.

Those three serve the admin (its login, its session, its flash messages) and the
pages around it. The API needs none of them: DRF authenticates every API request
itself (`request.user` on `/api/` comes from `CookieJWTAuthentication`), and the API
never reads a Django session or a message. Skipping them there saves a session
lookup, a lazy user object and a message store per API request, and guarantees an
API response never sets `sessionid` nor touches `django_session`.

Each class is a subclass of the middleware it wraps, so Django's admin checks
(admin.E408-E410) and everything that looks for those classes still find them.
CSRF is not among them: `CsrfViewMiddleware` still runs everywhere, so the
`csrftoken` cookie and `rotate_token` at login behave as before.
"""

from __future__ import annotations

from collections.abc import Awaitable

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

# Where config/urls.py mounts the API (and where config.exceptions answers in JSON).
API_PREFIX = "/api/"


def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


class _SiteOnly(MiddlewareMixin):
    """Pass API requests straight through; run the wrapped middleware for the rest.
    (Listed first in each subclass, so the wrapped middleware's own MiddlewareMixin
    still comes after it in the MRO.)"""

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if is_api_request(request):
            # In async mode get_response returns a coroutine; returning it unawaited
            # is fine: the middleware is marked as a coroutine function, so the
            # handler awaits whatever __call__ returns.
            return self.get_response(request)
        return super().__call__(request)


class SiteSessionMiddleware(_SiteOnly, SessionMiddleware):
    pass


class SiteAuthenticationMiddleware(_SiteOnly, AuthenticationMiddleware):
    pass


class SiteMessageMiddleware(_SiteOnly, MessageMiddleware):
    pass
