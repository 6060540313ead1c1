"""The security log for every login path: the API's and the admin's alike."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from tokens.events import security_event_record
from tokens.models import SecurityEvent


@receiver(user_login_failed)
def _login_failed(
    sender: object, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Django sends this after every backend said no; the password is already masked.
    username = str(credentials.get("username") or "")
    security_event_record(kind=SecurityEvent.Kind.LOGIN_FAILED, request=request, username=username)


@receiver(user_logged_in)
def _logged_in(
    sender: object, request: HttpRequest | None, user: AbstractBaseUser, session_id: str | None = None, **kwargs: Any
) -> None:
    # The API passes the id of the session it opened; the admin opens Django's own.
    security_event_record(
        kind=SecurityEvent.Kind.LOGIN_SUCCEEDED,
        request=request,
        user=user,
        username=user.get_username(),
        session_id=session_id,
    )
