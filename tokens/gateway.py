"""What other services ask us: the gateway check and token introspection.

`verify/` is for nginx `auth_request`, Traefik ForwardAuth and Envoy ext_authz (HTTP
mode): the same live session check as `me/`, answered in headers that a gateway can
copy to the upstream, because `auth_request` passes no body on. `token_introspect`
is the RFC 7662 answer behind `introspect/`, whose clients live in `accounts`.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, QueryDict
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .authentication import access_claims
from .conf import auth_settings
from .cookies import read_access
from .csrf import enforce_csrf
from .errors import AuthError
from .services import session_user_checked
from .tokens import ACCESS, TokenExpired, TokenInvalid, decode
from .views import ERROR_RESPONSE

# The methods Django's CSRF protection lets through (CsrfViewMiddleware).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
NO_STORE = "private, no-store"


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an `Authorization: Bearer` header, or None without one."""
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def original_method(request: HttpRequest) -> str:
    """The method to check the request a gateway asks about as: nginx passes it as
    X-Original-Method (our snippet), Traefik as X-Forwarded-Method, and Envoy's HTTP
    ext_authz forwards the method itself. Gateways may pass a client's own headers
    on too, so a client must not be able to loosen the check: if any of the three
    is unsafe, that one is the method."""
    meta = request.META
    candidates = (meta.get("HTTP_X_ORIGINAL_METHOD"), meta.get("HTTP_X_FORWARDED_METHOD"), request.method)
    methods = [m.strip().upper() for m in candidates if m and m.strip()]
    return next((m for m in methods if m not in SAFE_METHODS), methods[0] if methods else "GET")


def enforce_csrf_as(request: HttpRequest, method: str) -> None:
    """Django's CSRF check (Origin/Referer, the CSRF cookie against X-CSRFToken) as if
    `request` had been sent with `method`. The gateway forwards headers, never the
    body, so the token must come in the header: a form field cannot be seen here."""
    if method in SAFE_METHODS:
        return
    original = copy.copy(request)
    original.method = method
    original.POST = QueryDict()
    enforce_csrf(original)


def gateway_identity(request: HttpRequest) -> tuple[AbstractBaseUser, dict[str, Any]]:
    """Who sent the request a gateway asks about: a bearer token, or the access cookie
    with CSRF checked for the original method. Raises AuthError otherwise."""
    raw = bearer_token(request)
    if raw is None:
        raw = read_access(request)
        if raw is None:
            raise AuthError("not_authenticated")
        # A cookie rides along on cross-site requests; a bearer header never does.
        enforce_csrf_as(request, original_method(request))
    claims = access_claims(raw)
    user = session_user_checked(session_id=claims["sid"], user_id=claims[auth_settings().user_id_claim])
    return user, claims


def header_value(value: str) -> str:
    """An identity value as a header: its UTF-8 bytes percent-encoded (RFC 3986), with
    the unreserved characters and `@` left as they are, so `alice@example.com` reads
    as itself. `%` is always encoded, so decoding (Python's `urllib.parse.unquote`,
    JavaScript's `decodeURIComponent`, Go's `url.PathUnescape`) gives back exactly the
    stored value and no two values share a header. Nothing in it is an RFC 2047
    encoded word: an address such as `=?utf-8?q?admin=40corp.example?=@evil.example`
    arrives as `%3D%3Futf-8...@evil.example`, which no decoder reads as another one."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="@")


_IDENTITY_HEADERS = [
    OpenApiParameter(name, str, OpenApiParameter.HEADER, response=[200], description=description)
    for name, description in (
        ("X-Auth-User-Id", "the user's id: the identity to authorise on (names and addresses can change)"),
        ("X-Auth-Username", "the username, percent-encoded UTF-8 (RFC 3986; letters, digits, `-._~@` as is)"),
        ("X-Auth-Email", "the email address (empty if none), percent-encoded like the username"),
        ("X-Auth-Session-Id", "the session (token family) id"),
    )
]
_ERROR_HEADER = OpenApiParameter(
    "X-Auth-Error", str, OpenApiParameter.HEADER, response=[401, 403, 503], description="the error code"
)


class VerifyView(APIView):
    """`GET /api/auth/verify/`: 200 with identity headers, or 401/403 with the error
    code in `X-Auth-Error` as well as in the body. Any method is accepted, because
    some gateways (Envoy) forward the original one."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        summary="Gateway check (forward auth)",
        request=None,
        parameters=[
            OpenApiParameter("X-Original-Method", str, OpenApiParameter.HEADER, required=False),
            OpenApiParameter("X-Forwarded-Method", str, OpenApiParameter.HEADER, required=False),
            *_IDENTITY_HEADERS,
            _ERROR_HEADER,
        ],
        responses={
            200: OpenApiResponse(description="authenticated; identity in X-Auth-* headers, empty body"),
            401: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            503: ERROR_RESPONSE,
        },
    )
    def get(self, request: Request) -> Response:
        user, claims = gateway_identity(request._request)
        email = getattr(user, "email", "") or ""
        return Response(
            headers={
                "X-Auth-User-Id": str(user.pk),
                "X-Auth-Username": header_value(user.get_username()),
                "X-Auth-Email": header_value(email),
                "X-Auth-Session-Id": claims["sid"],
                "Cache-Control": NO_STORE,
            }
        )

    head = post = put = patch = delete = get

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        code = response.data.get("code") if isinstance(response.data, dict) else None
        if code:
            # auth_request passes no body on: the code travels in a header too.
            response["X-Auth-Error"] = code
        response["Cache-Control"] = NO_STORE
        return response


INACTIVE: dict[str, Any] = {"active": False}


def token_introspect(*, raw: str | None) -> dict[str, Any]:
    """RFC 7662's answer for a token: its claims while it is a live access token of
    a live session, `{"active": false}` for anything else (expired, revoked, a
    refresh token, garbage). Never raises for a bad token."""
    if not raw:
        return INACTIVE
    conf = auth_settings()
    try:
        claims = decode(raw, ACCESS)
        user = session_user_checked(session_id=claims["sid"], user_id=claims[conf.user_id_claim])
    except (TokenExpired, TokenInvalid, AuthError):
        return INACTIVE
    answer: dict[str, Any] = {
        "active": True,
        "sub": str(user.pk),
        "sid": claims["sid"],
        "exp": claims["exp"],
        "iat": claims["iat"],
    }
    # `cnf` (RFC 7800): the session is bound to a device key (tokens.binding).
    for name in ("iss", "aud", "cnf"):
        if name in claims:
            answer[name] = claims[name]
    answer["username"] = user.get_username()
    answer["token_type"] = claims[conf.token_type_claim]
    return answer
