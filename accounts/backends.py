"""The one authentication backend: Django's ModelBackend behind our login throttle.

Every `authenticate()` call goes through here (the API's login, the admin's login
form, anything else), so every path has the same limits. A throttled attempt
raises `AuthError("throttled")` rather than Django's PermissionDenied, which
`authenticate()` would swallow into a plain "wrong password".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from tokens.throttles import login_succeeded, throttle_login

if TYPE_CHECKING:
    from .models import User


class ThrottledModelBackend(ModelBackend):
    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        throttle_login(request=request, username=str(username))
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            login_succeeded(request=request, username=str(username))
        return user
