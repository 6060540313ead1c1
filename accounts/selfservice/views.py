"""The user's own sessions (list, end one) and password change."""

from __future__ import annotations

import uuid

from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tokens import binding
from tokens.cookies import clear_auth_cookies, set_auth_cookies
from tokens.serializers import RefreshResponseSerializer
from tokens.views import ERROR_RESPONSE

from ..services import SessionNotFound, user_password_change, user_session_end, user_sessions_page
from ..views import request_claims, request_user
from .serializers import (
    PasswordChangeSerializer,
    SessionListQuerySerializer,
    SessionSerializer,
    cursor_encode,
)


class SessionListView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        parameters=[
            OpenApiParameter("limit", OpenApiTypes.INT, OpenApiParameter.QUERY, description="1 to 100, default 50"),
            OpenApiParameter("cursor", OpenApiTypes.STR, OpenApiParameter.QUERY, description="from the Link header"),
            OpenApiParameter(
                "Link",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[200],
                description='`<URL of the next page>; rel="next"`, when there is one',
            ),
        ],
        responses={200: SessionSerializer(many=True), 400: ERROR_RESPONSE, 401: ERROR_RESPONSE},
    )
    def get(self, request: Request) -> Response:
        query = SessionListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        current, limit = request_claims(request)["sid"], query.validated_data["limit"]
        page = user_sessions_page(
            user=request_user(request),
            current_session_id=current,
            limit=limit,
            after=query.validated_data.get("cursor"),
        )
        context = {"current_session_id": current}
        # The stubs type the instance as one Session: they do not model many=True.
        sessions = SessionSerializer(page.sessions, many=True, context=context)  # type: ignore[arg-type]
        response = Response(sessions.data)
        if page.next_after is not None:
            # The body stays a plain list (what clients read); the next page is in
            # a Link header (RFC 8288).
            params = urlencode({"limit": limit, "cursor": cursor_encode(page.next_after)})
            response["Link"] = f'<{request.build_absolute_uri(request.path)}?{params}>; rel="next"'
        add_never_cache_headers(response)
        return response


class SessionDetailView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        parameters=[OpenApiParameter("session_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={204: None, 401: ERROR_RESPONSE, 403: ERROR_RESPONSE, 404: ERROR_RESPONSE},
    )
    def delete(self, request: Request, session_id: str) -> Response:
        try:
            was_current = user_session_end(
                user=request_user(request),
                session_id=str(uuid.UUID(session_id)),
                current_session_id=request_claims(request)["sid"],
                request=request._request,
            )
        except (ValueError, SessionNotFound):
            # One answer for unknown ids and other people's: ids reveal nothing.
            raise NotFound() from None
        response = Response(status=204)
        if was_current:
            clear_auth_cookies(response)
        return response


class PasswordChangeView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        request=PasswordChangeSerializer,
        responses={200: RefreshResponseSerializer, 400: ERROR_RESPONSE, 401: ERROR_RESPONSE, 403: ERROR_RESPONSE},
    )
    def post(self, request: Request) -> Response:
        serializer = PasswordChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = user_password_change(
            user=request_user(request),
            session_id=request_claims(request)["sid"],
            request=request._request,
            **serializer.validated_data,
        )
        response = Response(RefreshResponseSerializer({"session": issued}).data)
        set_auth_cookies(response, issued.pair)
        # The device moves to a new session: it is offered binding like a login.
        binding.offer(response, session_id=issued.session_id, user_id=issued.user_id)
        return response
