"""Request and response rules for the API.

Bodies on /api/ are refused before anything parses them.

Django's CSRF check reads request.POST, which spools a multipart body to disk,
before any view could say no; so this runs ahead of CsrfViewMiddleware and
answers 415 to a body that is not JSON and 413 to one over the JSON parser's cap,
reading nothing (or, for a chunked body without a length, at most cap + 1 bytes).
"""

from __future__ import annotations

import io
from collections.abc import Callable

from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers

from tokens.errors import ERRORS

from .exceptions import error_body
from .parsers import MAX_BODY_BYTES

API_PREFIX = "/api/"
AUTH_PREFIX = "/api/auth/"
JSON = "application/json"


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
        if request.content_type != JSON:
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
            request._stream = LimitedStream(io.BytesIO(body), len(body))  # type: ignore[attr-defined]
        return None


class PrivateApiResponsesMiddleware:
    """Every answer under /api/auth/ depends on who is asking (me/, sessions/, ...),
    so no shared cache may keep one and no browser may store one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(AUTH_PREFIX):
            add_never_cache_headers(response)  # Cache-Control: max-age=0, no-cache, no-store, must-revalidate, private
        return response
