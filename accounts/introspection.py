"""`POST /api/auth/introspect/` (RFC 7662) for services that hold a bearer token.

The caller is a service client (HTTP Basic, RFC 6749 §2.3.1), never a browser: no
cookie is read, so there is no CSRF check. It lives here rather than in `tokens`
because the clients are an `accounts` model.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from typing import cast
from urllib.parse import unquote_plus

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import FormParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tokens.errors import AuthError
from tokens.views import ERROR_RESPONSE

from .models import ServiceClient
from .service_clients import service_client_authenticate, service_client_introspect

BASIC_CHALLENGE = 'Basic realm="introspection", charset="UTF-8"'


class ServiceClientAuthentication(BaseAuthentication):
    """HTTP Basic with a service client's id and secret; anything else is
    `invalid_client`, since this endpoint has no other scheme."""

    def authenticate(self, request: Request) -> tuple[ServiceClient, None]:
        client_id, secret = self.get_credentials(request)
        return service_client_authenticate(client_id=client_id, secret=secret, request=request._request), None

    def get_credentials(self, request: Request) -> tuple[str, str]:
        scheme, _, encoded = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "basic":
            raise AuthError("invalid_client")
        try:
            decoded = b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise AuthError("invalid_client") from None
        client_id, colon, secret = decoded.partition(":")
        if not colon or not client_id:
            raise AuthError("invalid_client")
        # RFC 6749 §2.3.1: both parts are form-urlencoded before the Basic encoding.
        return unquote_plus(client_id), unquote_plus(secret)

    def authenticate_header(self, request: Request) -> str:
        return BASIC_CHALLENGE


# drf-spectacular leaves its extensions' __init_subclass__ (the registration) unannotated.
class ServiceClientScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = ServiceClientAuthentication
    name = "serviceClient"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {"type": "http", "scheme": "basic"}


class IntrospectionRequestSerializer(serializers.Serializer[None]):
    token = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=8192)
    # Accepted and ignored (RFC 7662 §2.1): only access tokens can be active here.
    token_type_hint = serializers.CharField(required=False, allow_blank=True, max_length=64)


INTROSPECTION_RESPONSE = inline_serializer(
    "Introspection",
    fields={
        "active": serializers.BooleanField(),
        "sub": serializers.CharField(required=False),
        "sid": serializers.CharField(required=False),
        "exp": serializers.IntegerField(required=False),
        "iat": serializers.IntegerField(required=False),
        "iss": serializers.CharField(required=False),
        "aud": serializers.JSONField(required=False),
        "username": serializers.CharField(required=False),
        "token_type": serializers.CharField(required=False),
        "cnf": serializers.DictField(
            required=False, help_text='{"jkt": <RFC 7638 thumbprint>}: the session is bound to this device key (DBSC)'
        ),
    },
)


class IntrospectView(APIView):
    authentication_classes = (ServiceClientAuthentication,)
    permission_classes = (IsAuthenticated,)
    parser_classes = (FormParser,)

    @extend_schema(
        summary="Token introspection (RFC 7662)",
        request={"application/x-www-form-urlencoded": IntrospectionRequestSerializer},
        responses={
            200: INTROSPECTION_RESPONSE,
            400: ERROR_RESPONSE,
            401: ERROR_RESPONSE,
            429: ERROR_RESPONSE,
            503: ERROR_RESPONSE,
        },
    )
    def post(self, request: Request) -> Response:
        form = IntrospectionRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        # ServiceClientAuthentication, this view's only scheme, puts the client there.
        client = cast(ServiceClient, request.user)
        answer = service_client_introspect(
            client=client, raw_token=form.validated_data["token"], request=request._request
        )
        return Response(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if response.status_code == 401:
            response["WWW-Authenticate"] = BASIC_CHALLENGE
        response["Cache-Control"] = "no-store"
        return response
