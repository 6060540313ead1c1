"""Django's own CSRF protection, applied explicitly: every DRF APIView is csrf_exempt,
so a view that trusts cookies must run the check itself (as DRF's
SessionAuthentication.enforce_csrf does)."""

from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware

from .errors import AuthError


class _CSRFCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> str:  # type: ignore[override]
        return reason


def _no_response(request: HttpRequest) -> None:
    return None


def enforce_csrf(request: HttpRequest) -> None:
    """Raise `csrf_failed` unless the request passes Django's checks (token + Origin)."""
    check = _CSRFCheck(_no_response)  # type: ignore[arg-type]
    check.process_request(request)
    reason = check.process_view(request, None, (), {})  # type: ignore[arg-type]
    if reason:
        raise AuthError("csrf_failed", f"CSRF verification failed: {reason.rstrip('.')}.")
