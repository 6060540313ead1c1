"""Django's own CSRF protection, applied explicitly: every DRF APIView is csrf_exempt,
so a view that trusts cookies must run the check itself (as DRF's
SessionAuthentication.enforce_csrf does)."""

from django.http import HttpRequest, HttpResponseForbidden
from django.middleware.csrf import CsrfViewMiddleware

from .errors import AuthError


class _CSRFCheck(CsrfViewMiddleware):
    """Django's check, keeping the reason it refused for our error instead of a page."""

    reason = ""

    def _reject(self, request: HttpRequest, reason: str) -> HttpResponseForbidden:
        self.reason = reason
        return HttpResponseForbidden(reason)


def _no_response(request: HttpRequest) -> None:
    return None


# RFC 9110's safe methods, which CsrfViewMiddleware.process_view accepts whatever the
# request carries.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def enforce_csrf(request: HttpRequest) -> None:
    """Raise `csrf_failed` unless the request passes Django's checks (token + Origin).

    A safe method is accepted here without building the check (issue 17: that was
    most of the check's cost on every GET /me), exactly as Django's process_view
    accepts it, marking the request as checked the same way."""
    if request.method in SAFE_METHODS:
        request.csrf_processing_done = True  # type: ignore[attr-defined]
        return
    check = _CSRFCheck(_no_response)  # type: ignore[arg-type]
    check.process_request(request)
    refused = check.process_view(request, None, (), {})  # type: ignore[arg-type]
    if refused is not None:
        raise AuthError("csrf_failed", f"CSRF verification failed: {check.reason.rstrip('.')}.")
