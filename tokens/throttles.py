"""Rate limits on login and refresh: fixed windows counted atomically in Redis.

DRF's SimpleRateThrottle reads, appends and writes a list in the cache, which lets
parallel requests slip through; one Lua script per request counts every bucket at
once, so at most the configured number ever get through.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest

from . import store
from .clientinfo import client_ip
from .conf import Rate, auth_settings
from .errors import AuthError
from .models import SecurityEvent

logger = logging.getLogger("duotoken.throttles")


def _hit(buckets: list[tuple[str, str, Rate]], *, request: HttpRequest, fail_closed: bool, username: str = "") -> None:
    try:
        wait, over = store.throttle_hit(buckets)
    except store.StoreUnavailable:
        if fail_closed:
            raise AuthError("service_unavailable", retry_after=1) from None
        logger.warning("throttle %s skipped: redis unavailable", buckets[0][0])
        return
    if wait <= 0:
        return
    if over:
        from .services import security_event_record

        scope, _, rate = buckets[over - 1]
        security_event_record(
            kind=SecurityEvent.Kind.THROTTLED,
            request=request,
            username=username,
            data={"scope": scope, "limit": rate.limit, "seconds": rate.seconds},
        )
    raise AuthError("throttled", f"Too many requests; retry in {int(wait + 0.999)} s.", retry_after=wait)


def throttle_login(*, request: HttpRequest, username: str) -> None:
    # Fails closed: without Redis we cannot bound password guessing, so no login.
    conf = auth_settings()
    ip = client_ip(request) or "unknown"
    _hit(
        [("login_ip", ip, conf.throttle_login_ip), ("login_user", username.casefold(), conf.throttle_login)],
        request=request,
        fail_closed=True,
        username=username,
    )


def throttle_refresh(*, request: HttpRequest, session_id: str) -> None:
    # Fails open: the refresh token itself is the credential and the database
    # decides rotation, so a Redis outage should not log everyone out.
    conf = auth_settings()
    ip = client_ip(request) or "unknown"
    _hit(
        [("refresh_ip", ip, conf.throttle_refresh_ip), ("refresh_session", session_id, conf.throttle_refresh)],
        request=request,
        fail_closed=False,
    )


def throttle_introspection(*, request: HttpRequest, client_id: str) -> None:
    # Per client id, counted before the secret is checked, so that guessing at one
    # client's secret is bounded too. Fails open: the client's credentials are
    # checked against the database, and the token check falls back to it as well.
    _hit(
        [("introspection_client", client_id, auth_settings().throttle_introspection)],
        request=request,
        fail_closed=False,
        username=client_id,
    )
