"""Development conveniences, refused unless DEBUG is on: the demo user that
`make serve` creates on a fresh checkout so that there is someone to log in as."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction

DEMO_USERNAME = "demo"


def demo_password_generate() -> str:
    return secrets.token_urlsafe(12)


def demo_user_ensure(*, username: str = DEMO_USERNAME, password: str) -> tuple[AbstractBaseUser, bool]:
    """The demo user, created with `password` if it does not exist yet (an admin too,
    so that the admin's session pages can be tried). An existing user is left as it
    is: its password may have been changed since. Returns (user, created)."""
    if not settings.DEBUG:
        raise ImproperlyConfigured("The demo user exists only for development: DJANGO_DEBUG is off.")
    users = get_user_model()
    existing = users.objects.filter(username=username).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            user = users.objects.create_superuser(username=username, email=f"{username}@example.com", password=password)
    except IntegrityError:  # two first runs at once
        return users.objects.get(username=username), False
    return user, True
