"""The security log: one function writes every event.

Kept apart from `services` and `throttles` so that both can record events without
importing each other.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

from . import clock
from .clientinfo import client_ip, user_agent
from .models import SecurityEvent


def security_event_record(
    *,
    kind: str,
    request: HttpRequest | None = None,
    user: AbstractBaseUser | None = None,
    user_id: int | str | None = None,
    session_id: str | None = None,
    username: str = "",
    data: dict[str, Any] | None = None,
) -> SecurityEvent:
    """Write one event. The user's id and name are copied onto it, so that the event
    keeps saying whose it was after the user is deleted."""
    if user is None and user_id is not None:
        user = get_user_model()._default_manager.filter(pk=user_id).first()
    if user is not None:
        user_id = user.pk
        username = username or user.get_username()
    return SecurityEvent.objects.create(
        kind=kind,
        created_at=clock.now(),
        user_id=user_id,
        account_id=user_id,
        session_id=session_id,
        username=username[:150],
        ip=client_ip(request) if request is not None else None,
        user_agent=user_agent(request) if request is not None else "",
        data=data or {},
    )
