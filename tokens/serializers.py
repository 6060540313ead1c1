"""Response shapes of the session endpoints (refresh/, and the session part of
login/ and password change), owned by the floor that owns sessions."""

from typing import Any

from rest_framework import serializers

from .services import IssuedSession


class SessionInfoSerializer(serializers.Serializer[IssuedSession]):
    id = serializers.UUIDField(source="session_id")
    expiry = serializers.DateTimeField(source="pair.session_expires")
    absolute_expiry = serializers.DateTimeField(source="absolute_expires_at")


class RefreshResponseSerializer(serializers.Serializer[dict[str, Any]]):
    session = SessionInfoSerializer()
