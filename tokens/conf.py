"""A typed, cached view of our settings, read at use time and cleared on setting_changed.

Simple JWT's SIMPLE_JWT dict stays the source for algorithm, keys and lifetimes;
our own knobs live in the DUOTOKEN dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

MAX_GRACE = timedelta(seconds=60)
MAX_SESSIONS_CAP = 1000
_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


@dataclass(frozen=True)
class Rate:
    """A DRF-style rate such as ``10/min``: at most ``limit`` hits per ``seconds``."""

    limit: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        try:
            num, period = text.strip().split("/")
            seconds = _PERIODS[period.strip().lower()]
            limit = int(num)
        except (ValueError, KeyError):
            raise ImproperlyConfigured(f"Invalid rate {text!r}: use the DRF form such as '10/min'.") from None
        if limit < 1:
            raise ImproperlyConfigured(f"Invalid rate {text!r}: the limit must be at least 1.")
        return cls(limit=limit, seconds=seconds)


@dataclass(frozen=True)
class AuthSettings:
    access_lifetime: timedelta
    refresh_lifetime: timedelta
    max_lifetime: timedelta
    grace: timedelta
    cookie_secure: bool
    cookie_domain: str | None
    access_cookie_name: str
    refresh_cookie_name: str
    refresh_cookie_path: str
    throttle_login: Rate
    throttle_login_ip: Rate
    throttle_login_user: Rate
    throttle_password_change: Rate
    throttle_refresh: Rate
    throttle_refresh_ip: Rate
    num_proxies: int
    redis_alias: str
    key_prefix: str
    revocation_poll_seconds: float
    demo_page: bool
    user_id_claim: str
    token_type_claim: str
    jti_claim: str
    signing_key: str
    issuer: str
    audience: str
    jwks_max_age: int
    # Live sessions one user may hold; login ends the oldest beyond it.
    max_sessions_per_user: int = 50
    # Tokens larger than this are refused before any parsing (browsers cap cookies at 4 KB).
    max_token_bytes: int = 4096
    throttle_introspection: Rate = Rate(limit=6000, seconds=60)
    # Failed service client authentications: per (client id, IP), per IP, and in all.
    throttle_introspection_failed: Rate = Rate(limit=10, seconds=60)
    throttle_introspection_failed_ip: Rate = Rate(limit=60, seconds=60)
    throttle_introspection_failed_all: Rate = Rate(limit=600, seconds=60)
    # Device Bound Session Credentials (tokens.binding): offered on login when on.
    dbsc: bool = False
    dbsc_challenge_seconds: int = 60


@lru_cache(maxsize=1)
def auth_settings() -> AuthSettings:
    jwt = settings.SIMPLE_JWT
    ours = settings.DUOTOKEN
    secure = bool(ours["COOKIE_SECURE"])
    domain = ours.get("COOKIE_DOMAIN") or None
    # __Host- needs Secure, Path=/ and no Domain; __Secure- needs Secure only.
    access_default = "__Host-dt_access" if secure and not domain else ("__Secure-dt_access" if secure else "dt_access")
    refresh_default = "__Secure-dt_refresh" if secure else "dt_refresh"
    return AuthSettings(
        access_lifetime=jwt["ACCESS_TOKEN_LIFETIME"],
        refresh_lifetime=jwt["REFRESH_TOKEN_LIFETIME"],
        max_lifetime=ours["SESSION_MAX_LIFETIME"],
        grace=ours["REFRESH_GRACE"],
        cookie_secure=secure,
        cookie_domain=domain,
        access_cookie_name=ours.get("ACCESS_COOKIE_NAME") or access_default,
        refresh_cookie_name=ours.get("REFRESH_COOKIE_NAME") or refresh_default,
        refresh_cookie_path=ours.get("REFRESH_COOKIE_PATH", "/api/auth/"),
        throttle_login=Rate.parse(ours["THROTTLE_LOGIN"]),
        throttle_login_ip=Rate.parse(ours["THROTTLE_LOGIN_IP"]),
        throttle_login_user=Rate.parse(ours.get("THROTTLE_LOGIN_USER", "100/hour")),
        throttle_password_change=Rate.parse(ours.get("THROTTLE_PASSWORD_CHANGE", "5/min")),
        throttle_refresh=Rate.parse(ours["THROTTLE_REFRESH"]),
        throttle_refresh_ip=Rate.parse(ours["THROTTLE_REFRESH_IP"]),
        num_proxies=int(ours.get("NUM_PROXIES", 0)),
        redis_alias=ours.get("REDIS_ALIAS", "auth"),
        key_prefix=ours.get("REDIS_KEY_PREFIX", "duotoken"),
        revocation_poll_seconds=float(ours.get("REVOCATION_POLL_SECONDS", 5)),
        demo_page=bool(ours.get("DEMO_PAGE", False)),
        user_id_claim=jwt.get("USER_ID_CLAIM", "user_id"),
        token_type_claim=jwt.get("TOKEN_TYPE_CLAIM", "token_type"),
        jti_claim=jwt.get("JTI_CLAIM", "jti"),
        signing_key=jwt["SIGNING_KEY"],
        throttle_introspection=Rate.parse(ours.get("THROTTLE_INTROSPECTION", "6000/min")),
        throttle_introspection_failed=Rate.parse(ours.get("THROTTLE_INTROSPECTION_FAILED", "10/min")),
        throttle_introspection_failed_ip=Rate.parse(ours.get("THROTTLE_INTROSPECTION_FAILED_IP", "60/min")),
        throttle_introspection_failed_all=Rate.parse(ours.get("THROTTLE_INTROSPECTION_FAILED_ALL", "600/min")),
        max_sessions_per_user=int(ours.get("MAX_SESSIONS_PER_USER", 50)),
        issuer=jwt.get("ISSUER") or "",
        audience=jwt.get("AUDIENCE") or "",
        jwks_max_age=int(ours.get("JWKS_MAX_AGE", 300)),
        # On by default whenever the cookies are Secure: DBSC needs HTTPS anyway.
        dbsc=bool(ours["DBSC"]) if ours.get("DBSC") is not None else secure,
        dbsc_challenge_seconds=int(ours.get("DBSC_CHALLENGE_SECONDS", 60)),
    )


@receiver(setting_changed)
def _clear(*, setting: str, **kwargs: object) -> None:
    if setting in {"SIMPLE_JWT", "DUOTOKEN"}:
        auth_settings.cache_clear()
