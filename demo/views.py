"""The demo page and the few static files it needs.

Django serves no static files with DEBUG off, and the demo (and the tests, which
run gunicorn) must work there too; so these views serve exactly the files below,
with an ETag and a short cache lifetime, and nothing else.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, cast

from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import quote_etag
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tokens import clock
from tokens.conf import auth_settings
from tokens.models import SecurityEvent, Session

from .services import thief_replay

# Everything the page loads comes from this origin, and no script or style is
# inline, so the strictest useful policy holds.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)

# path under STATIC_URL -> (content type, served only while the demo page is on)
ASSETS = {
    "duotoken/client.js": ("text/javascript; charset=utf-8", False),
    # The API docs page's Redoc (drf-spectacular-sidecar), also without a static server.
    "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js": ("text/javascript; charset=utf-8", False),
    "demo/demo.js": ("text/javascript; charset=utf-8", True),
    "demo/timeline.js": ("text/javascript; charset=utf-8", True),
    "demo/demo.css": ("text/css; charset=utf-8", True),
}
ASSET_MAX_AGE = 300


def _demo_enabled() -> None:
    if not auth_settings().demo_page:
        raise Http404("The demo page is off (AUTH_DEMO_PAGE).")


@require_safe
@ensure_csrf_cookie  # the page's first POST (login) then needs no extra round trip
def index(request: HttpRequest) -> HttpResponse:
    _demo_enabled()
    response = render(request, "demo/index.html")
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    patch_cache_control(response, no_store=True)
    return response


def _load(path: str) -> tuple[bytes, str]:
    found = finders.find(path)
    if not found:
        raise Http404(path)
    content = Path(found).read_bytes()
    return content, quote_etag(hashlib.sha256(content).hexdigest()[:32])


@require_safe
def asset(request: HttpRequest, path: str) -> HttpResponse:
    if path not in ASSETS:
        raise Http404(path)
    content_type, demo_only = ASSETS[path]
    if demo_only:
        _demo_enabled()
    content, etag = _load(path)
    response = get_conditional_response(request, etag=etag) or HttpResponse(content, content_type=content_type)
    response["ETag"] = etag
    patch_cache_control(response, public=True, max_age=ASSET_MAX_AGE)
    return response


# The page's two API endpoints. They exist only while the demo page is on (404
# otherwise, before any authentication), and never hand a token to JavaScript.


def _claims(request: Request) -> dict[str, Any]:
    """The access token's claims, which CookieJWTAuthentication sets as request.auth."""
    return cast("dict[str, Any]", request.auth)


@extend_schema(exclude=True)  # demo-only (404 unless AUTH_DEMO_PAGE): not part of the API contract
class _DemoAPIView(APIView):
    permission_classes = (IsAuthenticated,)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        _demo_enabled()
        super().initial(request, *args, **kwargs)


class StateView(_DemoAPIView):
    """What the timeline draws: the session's generation and the presented access
    token's expiry (times only, in epoch seconds)."""

    def get(self, request: Request) -> Response:
        claims = _claims(request)
        session = Session.objects.get(pk=claims["sid"])
        conf = auth_settings()
        return Response(
            {
                "generation": session.generation,
                "token_generation": claims["gen"],
                "access_expires_at": claims["exp"],
                "access_lifetime": conf.access_lifetime.total_seconds(),
                "grace_seconds": conf.grace.total_seconds(),
                "rotated_at": session.rotated_at.timestamp(),
                "server_time": clock.now().timestamp(),
                # Bound to this device (DBSC): the browser renews the access cookie itself.
                "bound_at": session.bound_at.timestamp() if session.bound_at else None,
            }
        )


def security_event_json(event: SecurityEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "created_at": event.created_at.isoformat(),
        "session_id": str(event.session_id),
        "ip": event.ip,
        "user_agent": event.user_agent,
        "data": event.data,
    }


class ThiefView(_DemoAPIView):
    """Replay this session's previous refresh token from another device, after the
    grace window: the server must detect the reuse and end the session."""

    def post(self, request: Request) -> Response:
        event = thief_replay(session_id=_claims(request)["sid"])
        outcome = (
            "binding_proof_required"
            if event.kind == SecurityEvent.Kind.BINDING_PROOF_MISSING
            else "refresh_token_reused"
        )
        return Response({"outcome": outcome, "event": security_event_json(event)})
