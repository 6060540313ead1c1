"""Shapes for the self-service session API and password change."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime

from rest_framework import serializers

from tokens.clientinfo import device_label
from tokens.models import Session

from ..serializers import StrictCharField
from ..services import SessionsAfter


class SessionSerializer(serializers.Serializer[Session]):
    id = serializers.UUIDField(read_only=True)
    device = serializers.SerializerMethodField()
    ip = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)
    last_used_at = serializers.DateTimeField(source="rotated_at", read_only=True)
    current = serializers.SerializerMethodField()
    # Bound to the device it runs on (DBSC): copies of its cookies cannot refresh it.
    bound = serializers.BooleanField(source="is_bound", read_only=True)
    bound_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def get_device(self, session: Session) -> str:
        return device_label(session.last_user_agent or session.user_agent)

    def get_ip(self, session: Session) -> str | None:
        return session.last_ip or session.ip

    def get_current(self, session: Session) -> bool:
        current: str = self.context["current_session_id"]
        return str(session.pk) == current


MAX_PAGE = 100


def cursor_encode(after: SessionsAfter) -> str:
    """An opaque page position: clients pass it back as they got it."""
    data = [after[0].isoformat(), str(after[1])] if after else []
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def cursor_decode(text: str) -> SessionsAfter:
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if data == []:
            return ()
        rotated_at, pk = data
        after = (datetime.fromisoformat(rotated_at), uuid.UUID(pk))
    except (binascii.Error, ValueError, TypeError, AttributeError, UnicodeDecodeError):
        raise serializers.ValidationError("Invalid cursor.") from None
    if after[0].tzinfo is None:
        raise serializers.ValidationError("Invalid cursor.")
    return after


class SessionListQuerySerializer(serializers.Serializer[None]):
    """Query parameters of the sessions list."""

    limit = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=50)
    cursor = serializers.CharField(required=False, max_length=200)

    def validate_cursor(self, value: str) -> SessionsAfter:
        return cursor_decode(value)


class PasswordChangeSerializer(serializers.Serializer[None]):
    old_password = StrictCharField(max_length=4096, trim_whitespace=False)
    new_password = StrictCharField(max_length=4096, trim_whitespace=False)
