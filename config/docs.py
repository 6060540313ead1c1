"""The API docs page: Redoc served from this project's static files (the pinned
drf-spectacular-sidecar bundle), never from a third-party CDN, under a CSP; and the
schema it reads.

Both are public (drf-spectacular's SERVE_PERMISSIONS, AllowAny) and authenticate
nobody: the default cookie authentication would answer 401 to a browser that still
holds an expired or invalid access cookie, for a page that needs no identity."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView
from rest_framework.request import Request
from rest_framework.response import Response

# No inline script and no other origin. Redoc injects its styles at run time
# (hence 'unsafe-inline' for styles only) and runs its search in a blob: worker.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src blob:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


class SchemaView(SpectacularAPIView):
    authentication_classes = ()


class DocsView(SpectacularRedocView):
    template_name = "docs/redoc.html"
    authentication_classes = ()

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # drf-spectacular leaves its views' get() unannotated.
        response: Response = super().get(request, *args, **kwargs)  # type: ignore[no-untyped-call]
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response
