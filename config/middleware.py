"""Request and response rules for the API.

Bodies on /api/ are refused before anything parses them.

Django's CSRF check reads request.POST, which spools a multipart body to disk,
before any view could say no; so this runs ahead of CsrfViewMiddleware and
answers 415 to a body that no API view parses (multipart above all) and 413 to
one over the JSON parser's cap, reading nothing (or, for a chunked body without a
length, at most cap + 1 bytes). Which type a view takes comes from its own
parsers (JSON everywhere except introspection, whose RFC 7662 body is urlencoded),
checked in process_view, which runs before CsrfViewMiddleware's.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.utils.http import http_date

from tokens.errors import ERRORS

from .exceptions import error_body
from .parsers import MAX_BODY_BYTES

API_PREFIX = "/api/"
AUTH_PREFIX = "/api/auth/"
JSON = "application/json"
# Every body type some /api/ view parses; which view takes which is checked per view.
API_BODY_TYPES = frozenset({JSON, "application/x-www-form-urlencoded"})


def _refuse(code: str) -> JsonResponse:
    status, detail = ERRORS[code]
    return JsonResponse(error_body(code, detail), status=status)


class ApiBodyGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API_PREFIX):
            refused = self.check(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    def check(self, request: HttpRequest) -> JsonResponse | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if length <= 0 and not chunked:
            return None
        if request.content_type not in API_BODY_TYPES:
            return _refuse("unsupported_media_type")
        if length > MAX_BODY_BYTES:
            return _refuse("request_too_large")
        if chunked and length <= 0:
            # No length: Django would see an empty body. Read it here, bounded.
            stream = request.META.get("wsgi.input")
            body = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
            if len(body) > MAX_BODY_BYTES:
                return _refuse("request_too_large")
            request.META["CONTENT_LENGTH"] = str(len(body))
            # WSGIRequest keeps a LimitedStream here; the stubs declare a BinaryIO.
            request._stream = LimitedStream(io.BytesIO(body), len(body))  # type: ignore[assignment]
        return None

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponseBase],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> JsonResponse | None:
        if not request.path.startswith(API_PREFIX) or not _has_body(request):
            return None
        view_class = getattr(view_func, "cls", None)
        parsers = getattr(view_class, "parser_classes", None) or ()
        accepted = {parser.media_type for parser in parsers} or {JSON}
        if request.content_type not in accepted:
            return _refuse("unsupported_media_type")
        return None


def _has_body(request: HttpRequest) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return length > 0 or "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()


# What add_never_cache_headers writes on a response that has no Cache-Control yet.
NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"


class PrivateApiResponsesMiddleware:
    """Every answer under /api/auth/ depends on who is asking (me/, sessions/, ...),
    so no shared cache may keep one and no browser may store one."""

    # (second, its HTTP date): Expires is "now", to the second, on every response.
    _expires: tuple[int, str] = (0, "")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(AUTH_PREFIX):
            never_cache(response)
        return response

    @classmethod
    def expires_now(cls) -> str:
        second = int(time.time())
        cached = cls._expires
        if cached[0] != second:
            cached = cls._expires = (second, http_date(second))
        return cached[1]


def never_cache(response: HttpResponse) -> None:
    """Django's add_never_cache_headers, without parsing and rebuilding a
    Cache-Control that is not there yet (issue 17: it was a tenth of /me's own work);
    a response that has one already goes through Django's merge."""
    if response.get("Cache-Control"):
        add_never_cache_headers(response)
        return
    if not response.has_header("Expires"):
        response.headers["Expires"] = PrivateApiResponsesMiddleware.expires_now()
    response.headers["Cache-Control"] = NEVER_CACHE
