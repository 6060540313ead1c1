from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import binding, keys
from .conf import auth_settings
from .cookies import clear_auth_cookies, read_refresh, set_auth_cookies
from .csrf import enforce_csrf
from .serializers import RefreshResponseSerializer
from .services import session_rotate

# The one error shape (config.exceptions), declared so that clients and schema
# checkers can validate error bodies too.
_DATETIME = serializers.DateTimeField()

ERROR_RESPONSE = OpenApiResponse(
    response=inline_serializer(
        "Error",
        fields={
            "detail": serializers.CharField(),
            "code": serializers.CharField(),
            "fields": serializers.DictField(required=False),
        },
    ),
    description='`{"detail": "...", "code": "..."}`, plus `"fields"` on validation errors',
)


class CsrfEnforcedAPIView(APIView):
    """For endpoints that act on cookies before any authentication (login, refresh,
    logout): Django's CSRF check runs first, so a forged request changes nothing."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        enforce_csrf(request._request)
        super().initial(request, *args, **kwargs)


class RefreshView(CsrfEnforcedAPIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        request=None,
        responses={
            200: RefreshResponseSerializer,
            401: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            429: ERROR_RESPONSE,
            503: ERROR_RESPONSE,
        },
    )
    def post(self, request: Request) -> Response:
        raw_refresh = read_refresh(request._request)
        # A device-bound session is refreshed with a proof of its key, here or at the
        # refresh URL; its refresh token alone gets `binding_proof_required`.
        jkt = binding.require_proof(request=request._request, raw_refresh=raw_refresh)
        issued = session_rotate(raw_refresh=raw_refresh, request=request._request, jkt=jkt)
        # RefreshResponseSerializer's shape, built without a serializer on the hot path.
        session = {
            "id": issued.session_id,
            "expiry": _DATETIME.to_representation(issued.pair.session_expires),
            "absolute_expiry": _DATETIME.to_representation(issued.absolute_expires_at),
        }
        response = Response({"session": session})
        # Whether this refresh moved the generation or got the same successor inside
        # the grace window: no secret, and it lets a client (or the demo page) say so.
        response["Duotoken-Refresh"] = "replayed" if issued.replayed else "rotated"
        set_auth_cookies(response, issued.pair)
        return response

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if response.status_code == 401 and getattr(exc, "code", None) not in binding.PROOF_CODES:
            # The SPA's cue to show its login screen; stale cookies must go too. Not
            # for a missing or bad device proof: the owner's browser never sends one,
            # and clearing its cookies through a stray call would log it out.
            clear_auth_cookies(response)
        return response


class DbscRegisterView(APIView):
    """DBSC registration: the browser posts a proof over the challenge it was
    offered at login. No CSRF token (the browser itself sends it): the challenge,
    single use and tied to this session, is what a forged request cannot have."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        request=None,
        responses={200: OpenApiResponse(description="DBSC session config"), 400: ERROR_RESPONSE, 401: ERROR_RESPONSE},
    )
    def post(self, request: Request) -> Response:
        django_request = request._request
        registered = binding.session_register(request=django_request, raw_refresh=read_refresh(django_request))
        response = Response(binding.session_config(request=django_request, session_id=registered.session_id))
        set_auth_cookies(response, registered.pair)
        return response


class DbscRefreshView(APIView):
    """DBSC refresh: 403 with a challenge, then the same rotation as refresh/ for a
    proof signed over it by the session's key. No CSRF token, as for registration:
    the proof is the anti-forgery token here."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(description="DBSC session config"),
            400: ERROR_RESPONSE,
            401: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            429: ERROR_RESPONSE,
            503: ERROR_RESPONSE,
        },
    )
    def post(self, request: Request) -> Response:
        django_request = request._request
        raw_refresh = read_refresh(django_request)
        jkt = binding.require_proof(request=django_request, raw_refresh=raw_refresh, challenge=True)
        issued = session_rotate(raw_refresh=raw_refresh, request=django_request, jkt=jkt)
        response = Response(binding.session_config(request=django_request, session_id=issued.session_id))
        response["Duotoken-Refresh"] = "replayed" if issued.replayed else "rotated"
        set_auth_cookies(response, issued.pair)
        return response

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if isinstance(exc, binding.ChallengeRequired):
            response[binding.CHALLENGE_HEADER] = exc.header
        elif response.status_code == 401 and getattr(exc, "code", None) not in binding.PROOF_CODES:
            # The session is over: the browser ends its bound session and the page's
            # next call finds no cookie (`not_authenticated`).
            clear_auth_cookies(response)
        return response


class JwksView(APIView):
    """The public keys that verify our tokens (RFC 7517 JWK Set), for services that
    verify tokens themselves (e.g. PyJWT's PyJWKClient). Published keys appear here
    before they sign; retired ones disappear. Served from the process's key set, with
    no query (`keys.jwks`). Empty for HS*, whose secret is never published."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        auth=[],
        responses={
            200: inline_serializer(
                "JwkSet",
                fields={
                    "keys": serializers.ListField(
                        child=serializers.DictField(child=serializers.CharField()),
                        help_text="Public keys: kty with crv, x, y (EC), crv, x (OKP) or n, e (RSA); kid, use, alg.",
                    )
                },
            )
        },
    )
    def get(self, request: Request) -> Response:
        response = Response(keys.jwks())
        response["Cache-Control"] = f"public, max-age={auth_settings().jwks_max_age}"
        return response
