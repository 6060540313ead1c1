from __future__ import annotations

from typing import Any, cast

from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tokens import binding
from tokens.cookies import clear_auth_cookies, read_access, read_refresh, set_auth_cookies
from tokens.views import ERROR_RESPONSE, CsrfEnforcedAPIView

from .models import User
from .serializers import LoginResponseSerializer, LoginSerializer, UserSerializer
from .services import user_login, user_logout, user_logout_all


def request_user(request: Request) -> User:
    """The user of a request that IsAuthenticated let through: CookieJWTAuthentication
    sets a live user there, which the stubs cannot know (to them it may be anonymous)."""
    return cast(User, request.user)


def request_claims(request: Request) -> dict[str, Any]:
    """The access token's claims, which CookieJWTAuthentication sets as request.auth."""
    return cast("dict[str, Any]", request.auth)


class LoginView(CsrfEnforcedAPIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(
        request=LoginSerializer,
        responses={
            200: LoginResponseSerializer,
            400: ERROR_RESPONSE,
            401: ERROR_RESPONSE,
            403: ERROR_RESPONSE,
            429: ERROR_RESPONSE,
            503: ERROR_RESPONSE,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user, issued = user_login(**serializer.validated_data, request=request._request)
        response = Response(LoginResponseSerializer({"user": user, "session": issued}).data)
        set_auth_cookies(response, issued.pair)
        binding.offer(response, session_id=issued.session_id, user_id=issued.user_id)
        return response


class LogoutView(CsrfEnforcedAPIView):
    # Works with an expired access token and with no cookies at all: it reads the
    # cookies itself instead of requiring authentication.
    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(request=None, responses={204: None, 403: ERROR_RESPONSE, 503: ERROR_RESPONSE})
    def post(self, request: Request) -> Response:
        django_request = request._request
        user_logout(
            request=django_request, raw_access=read_access(django_request), raw_refresh=read_refresh(django_request)
        )
        response = Response(status=204)
        clear_auth_cookies(response)
        return response

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if response.status_code == 503:
            # The database has ended the session; only Redis could not be told, and
            # the client's retry repairs that. The cookies are dead either way.
            clear_auth_cookies(response)
        return response


class LogoutAllView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(request=None, responses={204: None, 401: ERROR_RESPONSE, 403: ERROR_RESPONSE, 503: ERROR_RESPONSE})
    def post(self, request: Request) -> Response:
        user_logout_all(request=request._request, user=request_user(request))
        response = Response(status=204)
        clear_auth_cookies(response)
        return response


class MeView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(responses={200: UserSerializer, 401: ERROR_RESPONSE, 503: ERROR_RESPONSE})
    def get(self, request: Request) -> Response:
        # The hot path: a plain dict of UserSerializer's shape, without building a
        # serializer on every request.
        user = request_user(request)
        return Response({"id": user.pk, "username": user.get_username(), "email": user.email})


class CsrfView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    @extend_schema(request=None, responses={204: None})
    def get(self, request: Request) -> Response:
        get_token(request._request)  # makes CsrfViewMiddleware set the cookie
        return Response(status=204)
