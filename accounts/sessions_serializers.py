"""Shapes for the self-service session API and password change."""

from __future__ import annotations

from rest_framework import serializers

from tokens.clientinfo import device_label

from .serializers import StrictCharField


class SessionSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    device = serializers.SerializerMethodField()
    ip = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)
    last_used_at = serializers.DateTimeField(source="rotated_at", read_only=True)
    current = serializers.SerializerMethodField()

    def get_device(self, session) -> str:
        return device_label(session.last_user_agent or session.user_agent)

    def get_ip(self, session) -> str | None:
        return session.last_ip or session.ip

    def get_current(self, session) -> bool:
        return str(session.pk) == self.context["current_session_id"]


class PasswordChangeSerializer(serializers.Serializer):
    old_password = StrictCharField(max_length=4096, trim_whitespace=False)
    new_password = StrictCharField(max_length=4096, trim_whitespace=False)
