from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from rest_framework import serializers

from tokens.serializers import SessionInfoSerializer


class StrictCharField(serializers.CharField):
    """A string and only a string (DRF's CharField would turn 123 into "123"), that
    can be stored: lone surrogates from JSON escapes are refused here, not by the
    database driver as a 500."""

    default_error_messages = {"invalid": "Must be a string.", "encoding": "Must be valid Unicode text."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("encoding")
        return super().to_internal_value(data)


class LoginSerializer(serializers.Serializer[None]):
    username = StrictCharField(max_length=150, trim_whitespace=False)
    password = StrictCharField(max_length=4096, trim_whitespace=False)


class UserSerializer(serializers.Serializer[AbstractBaseUser]):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    email = serializers.EmailField(read_only=True)


class LoginResponseSerializer(serializers.Serializer[dict[str, Any]]):
    user = UserSerializer()
    session = SessionInfoSerializer()
