"""Test clients that behave like the SPA: CSRF enforced, cookie jar kept, the CSRF
header echoed from the cookie on unsafe methods."""

from __future__ import annotations

from django.conf import settings
from rest_framework.test import APIClient

from tokens.conf import auth_settings

from .factories import PASSWORD


class SpaClient(APIClient):
    def __init__(self, **kwargs):
        super().__init__(enforce_csrf_checks=True, **kwargs)

    @property
    def csrf_token(self) -> str | None:
        morsel = self.cookies.get(settings.CSRF_COOKIE_NAME)
        return morsel.value if morsel and morsel.value else None

    def ensure_csrf(self) -> str:
        if not self.csrf_token:
            self.get("/api/auth/csrf/")
        return self.csrf_token

    def send(self, method: str, path: str, data=None, *, csrf: bool = True, **extra):
        if csrf:
            extra.setdefault("HTTP_X_CSRFTOKEN", self.ensure_csrf())
        return getattr(self, method)(path, data, format="json", **extra)

    def login(self, username: str = "alice", password: str = PASSWORD, **extra):
        return self.send("post", "/api/auth/login/", {"username": username, "password": password}, **extra)

    def refresh(self, **extra):
        return self.send("post", "/api/auth/refresh/", **extra)

    def logout(self, **extra):
        return self.send("post", "/api/auth/logout/", **extra)

    def me(self, **extra):
        return self.get("/api/auth/me/", **extra)

    def cookie(self, kind: str) -> str | None:
        conf = auth_settings()
        name = conf.access_cookie_name if kind == "access" else conf.refresh_cookie_name
        morsel = self.cookies.get(name)
        return morsel.value if morsel and morsel.value else None

    def set_cookie(self, kind: str, value: str) -> None:
        conf = auth_settings()
        name = conf.access_cookie_name if kind == "access" else conf.refresh_cookie_name
        self.cookies[name] = value
