"""The one error shape: {"detail": "...", "code": "snake_case"} (+ "fields" for validation).

Every error reaches the client through here, DRF's and ours alike, and nothing that
the database or Redis raises ever becomes a 500: an unreachable dependency is a
503 `service_unavailable`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import TooManyFieldsSent
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.csrf import csrf_failure as django_csrf_failure
from redis.exceptions import RedisError
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tokens.cookies import clear_auth_cookies
from tokens.errors import ERRORS, AuthError
from tokens.store import StoreUnavailable

logger = logging.getLogger("duotoken.errors")

UNAVAILABLE = (OperationalError, InterfaceError, RedisError, StoreUnavailable)


def error_body(code: str, detail: str, fields: object = None) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": detail, "code": code}
    if fields is not None:
        body["fields"] = fields
    return body


def _retry_after(seconds: float | None) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))} if seconds is not None else {}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, AuthError):
        headers = _retry_after(exc.retry_after)
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Cookie realm="api"'
        answer = Response(error_body(exc.code, exc.detail), status=exc.status, headers=headers)
        if exc.code == "auth_cookie_conflict":
            # Whichever copy is ours, neither can be trusted now: both go.
            clear_auth_cookies(answer)
        return answer
    if isinstance(exc, UNAVAILABLE):
        logger.error("dependency unavailable: %r", exc)
        return Response(
            error_body("service_unavailable", ERRORS["service_unavailable"][1]), status=503, headers=_retry_after(1)
        )
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("invalid", "Invalid input.", fields)
    elif isinstance(exc, drf.UnsupportedMediaType):
        # The same answer as config.middleware gives before any parsing.
        response.status_code = 415
        response.data = error_body("unsupported_media_type", ERRORS["unsupported_media_type"][1])
    elif isinstance(exc, drf.ParseError):
        response.status_code = 400
        response.data = error_body("invalid", "Malformed request body.", {"body": [str(exc.detail)]})
    elif isinstance(exc, drf.Throttled):
        response.data = error_body("throttled", ERRORS["throttled"][1])
    elif isinstance(exc, drf.APIException):
        codes = exc.get_codes()
        response.data = error_body(codes if isinstance(codes, str) else exc.default_code, str(exc.detail))
    return response


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def csrf_failure(request: HttpRequest, reason: str = "", template_name: str | None = None) -> HttpResponse:
    """CSRF failures outside DRF views (Django's middleware): JSON under /api/."""
    if _wants_json(request):
        return JsonResponse(error_body("csrf_failed", f"CSRF verification failed: {reason}."), status=403)
    return django_csrf_failure(request, reason=reason)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400 (a SuspiciousOperation: a form with more fields than
    DATA_UPLOAD_MAX_NUMBER_FIELDS where DRF's form parser or request.POST reads it, a
    bad Host) in our shape under /api/, as 400 `invalid`."""
    if not _wants_json(request):
        from django.views.defaults import bad_request as django_bad_request

        return django_bad_request(request, exception)
    if isinstance(exception, TooManyFieldsSent):
        fields = {"body": [f"More than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields."]}
        return JsonResponse(error_body("invalid", "Malformed request body.", fields), status=400)
    return JsonResponse(error_body("invalid", "Bad request."), status=400)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    from django.views.defaults import server_error as django_server_error

    return django_server_error(request)
