"""Django REST framework authentication with Duotoken access tokens.

    # settings.py
    DUOTOKEN_VERIFY = {"URL": "http://duotoken:8000", "AUDIENCE": "duotoken"}
    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["duotoken_verify.drf.DuotokenAuthentication"],
        "EXCEPTION_HANDLER": "duotoken_verify.drf.exception_handler",  # optional: Duotoken's error shape
    }

`DUOTOKEN_VERIFY` takes Verifier's arguments in upper case (URL, AUDIENCE, ISSUER,
JWKS_URL, REVOCATION, VERIFY_URL, INTROSPECT_URL, CLIENT_ID, CLIENT_SECRET,
CACHE_SECONDS, LEEWAY, ...) plus SOURCES (default ("header", "cookie")) and
COOKIE_NAME (default "__Host-dt_access", Duotoken's access cookie with Secure on).
A subclass can override any of them in its `options` class attribute.

Read at use time: a change of the setting builds a new Verifier (and new caches).
A token in the cookie is checked for CSRF on unsafe methods, as DRF's
SessionAuthentication does: the browser sends a cookie on cross-site requests too.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, CSRFCheck
from rest_framework.request import Request

from .errors import InvalidToken, Unavailable
from .verifier import Claims, Verifier

SOURCES = ("header", "cookie")
_LOCAL = {"SOURCES", "COOKIE_NAME"}


class TokenUser:
    """Who a verified token names: no database row, just the claims. Override
    `DuotokenAuthentication.get_user()` to map it to a model of your own."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, claims: Claims) -> None:
        self.claims = claims
        self.id = self.pk = claims.user_id
        self.session_id = claims.session_id

    def __str__(self) -> str:
        return f"duotoken user {self.id}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenUser) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Duotoken could not be asked; retry shortly."
    default_code = "service_unavailable"


_verifiers: dict[tuple[tuple[str, Any], ...], Verifier] = {}
_verifiers_lock = threading.Lock()


@receiver(setting_changed)
def _forget_verifiers(*, setting: str, **kwargs: object) -> None:
    if setting == "DUOTOKEN_VERIFY":
        with _verifiers_lock:
            _verifiers.clear()


def _options(overrides: dict[str, Any]) -> dict[str, Any]:
    return {**getattr(settings, "DUOTOKEN_VERIFY", {}), **overrides}


def verifier_for(options: dict[str, Any]) -> Verifier:
    """One Verifier per configuration, kept for the life of the process."""
    key = tuple(sorted((name, repr(value)) for name, value in options.items() if name not in _LOCAL))
    with _verifiers_lock:
        verifier = _verifiers.get(key)
        if verifier is None:
            arguments = {name.lower(): value for name, value in options.items() if name not in _LOCAL}
            if isinstance(arguments.get("algorithms"), list):
                arguments["algorithms"] = tuple(arguments["algorithms"])
            verifier = _verifiers[key] = Verifier(**arguments)
        return verifier


class DuotokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <access token>` and/or Duotoken's access cookie.

    None (not ours: the next authenticator may try) when neither carries a token;
    401 with the token's code when one does and it is refused; 503 when Duotoken
    could not be asked. The steps are small methods to override."""

    options: ClassVar[dict[str, Any]] = {}
    www_authenticate_realm = "api"

    def authenticate(self, request: Request) -> tuple[Any, Claims] | None:
        options = _options(self.options)
        found = self.get_raw_token(request, options)
        if found is None:
            return None
        raw, from_cookie = found
        if from_cookie:
            self.enforce_csrf(request)
        claims = self.get_validated_claims(raw, options)
        return self.get_user(claims), claims

    def get_raw_token(self, request: Request, options: dict[str, Any]) -> tuple[str, bool] | None:
        """(token, came from the cookie) or None."""
        sources = tuple(options.get("SOURCES", SOURCES))
        if "header" in sources:
            scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
            if scheme.lower() == "bearer":
                token = token.strip()
                if not token:
                    raise exceptions.AuthenticationFailed("The bearer header holds no token.", "access_token_invalid")
                return token, False
        if "cookie" in sources:
            token = request.COOKIES.get(options.get("COOKIE_NAME", "__Host-dt_access"))
            if token:
                return token, True
        return None

    def get_validated_claims(self, raw: str, options: dict[str, Any]) -> Claims:
        try:
            return verifier_for(options).verify_access_token(raw)
        except InvalidToken as exc:
            raise exceptions.AuthenticationFailed(exc.detail, exc.code) from None
        except Unavailable as exc:
            raise ServiceUnavailable(code=exc.code) from None

    def get_user(self, claims: Claims) -> Any:
        return TokenUser(claims)

    def enforce_csrf(self, request: Request) -> None:
        """Django's CSRF check (Origin, CSRF cookie against X-CSRFToken) on unsafe
        methods, as SessionAuthentication does it."""

        def dummy_get_response(request: Any) -> None:  # pragma: no cover (never called)
            return None

        check = CSRFCheck(dummy_get_response)
        check.process_request(request)
        reason = check.process_view(request, None, (), {})
        if reason:
            raise exceptions.PermissionDenied(f"CSRF Failed: {reason}", "csrf_failed")

    def authenticate_header(self, request: Request) -> str:
        return f'Bearer realm="{self.www_authenticate_realm}"'


def exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """DRF's handler, with every simple error shaped `{"detail": ..., "code": ...}`
    like Duotoken's (validation errors keep DRF's shape)."""
    # Imported here: rest_framework.views reads DEFAULT_AUTHENTICATION_CLASSES at import,
    # which names this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException) and not isinstance(exc.detail, (list, dict)):
        response.data = {"detail": str(exc.detail), "code": exc.detail.code}
    return response
