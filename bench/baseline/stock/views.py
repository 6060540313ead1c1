"""The stock views we compare against, each as a Django team would write it."""

from django.contrib.auth import authenticate
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    email = serializers.EmailField(read_only=True)


class JWTMeView(APIView):
    """Simple JWT's JWTAuthentication: bearer header, user loaded from the database."""

    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response(UserSerializer(request.user).data)


class SessionMeView(APIView):
    """Django's database sessions, through DRF's SessionAuthentication."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response(UserSerializer(request.user).data)


class FloorView(APIView):
    """No authentication at all: the most any authenticated view could reach."""

    authentication_classes = []
    permission_classes = [AllowAny]
    body = {"id": 1, "username": "floor", "email": "floor@example.com"}

    def get(self, request):
        return Response(self.body)


class AuthenticateOnlyView(APIView):
    """Only `authenticate()` with the configured hasher: what a login costs before
    any session, throttle or cookie work."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        user = authenticate(
            request._request, username=request.data.get("username"), password=request.data.get("password")
        )
        if user is None:
            return Response({"detail": "Unable to log in.", "code": "invalid_credentials"}, status=401)
        return Response(UserSerializer(user).data)
