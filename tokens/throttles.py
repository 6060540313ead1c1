"""Rate limits on login, password change and refresh: fixed windows counted
atomically in Redis.

DRF's SimpleRateThrottle reads, appends and writes a list in the cache, which lets
parallel requests slip through; one Lua script per request counts every bucket at
once, so at most the configured number ever get through.

Login is limited so that a stranger cannot lock the owner out: the strict limit
counts a username *and* a client IP together, the per-IP limit bounds one address
across usernames, and a looser per-username ceiling across all addresses (whose
block doubles each time it is reached again) bounds a distributed guesser. An
address the user has logged in from before is not held back by that ceiling.

Introspection's service clients are limited the same way, on failed attempts only
(see `throttle_introspection_failures`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.http import HttpRequest

from . import store
from .clientinfo import client_ip
from .conf import auth_settings
from .errors import AuthError
from .events import security_event_record
from .models import SecurityEvent
from .store import Bucket

logger = logging.getLogger("duotoken.throttles")


def _hit(
    buckets: list[Bucket],
    *,
    request: HttpRequest | None,
    fail_closed: bool,
    username: str = "",
    skip: tuple[int, str] | None = None,
) -> None:
    try:
        wait, over = store.throttle_hit(buckets, skip=skip)
    except store.StoreUnavailable:
        if fail_closed:
            raise AuthError("service_unavailable", retry_after=1) from None
        logger.warning("throttle %s skipped: redis unavailable", buckets[0].scope)
        return
    if wait <= 0:
        return
    if over:
        bucket = buckets[over - 1]
        security_event_record(
            kind=SecurityEvent.Kind.THROTTLED,
            request=request,
            username=username,
            data={"scope": bucket.scope, "limit": bucket.rate.limit, "seconds": bucket.rate.seconds},
        )
    raise AuthError("throttled", f"Too many requests; retry in {int(wait + 0.999)} s.", retry_after=wait)


def _ip(request: HttpRequest | None) -> str:
    return (client_ip(request) if request is not None else None) or "unknown"


def throttle_login(*, request: HttpRequest | None, username: str) -> None:
    # Fails closed: without Redis we cannot bound password guessing, so no login.
    conf = auth_settings()
    ip, name = _ip(request), username.casefold()
    _hit(
        [
            Bucket("login_ip", ip, conf.throttle_login_ip),
            Bucket("login_user_ip", f"{name}|{ip}", conf.throttle_login),
            Bucket("login_user", name, conf.throttle_login_user, backoff=True),
        ],
        request=request,
        fail_closed=True,
        username=username,
        skip=(3, store.login_known_key(name, ip)),
    )


def login_succeeded(*, request: HttpRequest | None, username: str) -> None:
    """Remember the address of a successful login, for the ceiling (see above)."""
    store.login_known_remember(username, _ip(request), ttl=int(auth_settings().max_lifetime.total_seconds()))


def throttle_password_change(*, request: HttpRequest, session_id: str, username: str) -> None:
    # Keyed on the session: the old password is worth guessing for whoever holds a
    # stolen session, and failed logins elsewhere must not block the owner here.
    _hit(
        [Bucket("password_change", session_id, auth_settings().throttle_password_change)],
        request=request,
        fail_closed=True,
        username=username,
    )


def throttle_refresh(*, request: HttpRequest, session_id: str) -> None:
    # Fails open: the refresh token itself is the credential and the database
    # decides rotation, so a Redis outage should not log everyone out.
    conf = auth_settings()
    ip = _ip(request)
    _hit(
        [
            Bucket("refresh_ip", ip, conf.throttle_refresh_ip),
            Bucket("refresh_session", session_id, conf.throttle_refresh),
        ],
        request=request,
        fail_closed=False,
    )


def throttle_introspection(*, request: HttpRequest, client_id: str) -> None:
    # Per authenticated client, counted once its secret has been checked: only a
    # holder of the secret can spend this budget (failures have their own limits,
    # below). Fails open: the token check falls back to the database.
    _hit(
        [Bucket("introspection_client", client_id, auth_settings().throttle_introspection)],
        request=request,
        fail_closed=False,
        username=client_id,
    )


@dataclass(frozen=True)
class IntrospectionGate:
    """What `throttle_introspection_failures` learnt before the secret was checked."""

    checked: bool  # False: Redis could not be read, so nothing was limited
    known: bool = False  # this client id has authenticated from this IP before
    first_failure: bool = True  # no failure of this client id from this IP in the current window


def _introspection_failure_buckets(client_id: str, ip: str) -> list[Bucket]:
    conf = auth_settings()
    return [
        Bucket("introspection_failed", f"{client_id}|{ip}", conf.throttle_introspection_failed),
        Bucket("introspection_failed_ip", ip, conf.throttle_introspection_failed_ip),
        Bucket("introspection_failed_all", "all", conf.throttle_introspection_failed_all),
    ]


def throttle_introspection_failures(*, request: HttpRequest, client_id: str) -> IntrospectionGate:
    """Refuse (429) before any lookup or hashing while this caller's failed client
    authentications are over a limit: per (client id, IP), per IP, and in all. Failures
    are counted by `introspection_client_failed`, successes not at all.

    As for logins, a client id that has authenticated from this IP before is held by
    its own (client id, IP) count only, so that wrong secrets sent under its id from
    elsewhere, or a flood that fills the per-IP and global counts, never lock the
    service out. Fails open (the secret check is one SHA-256); the caller refuses
    what it cannot check cheaply."""
    ip = _ip(request)
    buckets = _introspection_failure_buckets(client_id, ip)
    try:
        peeks, known = store.throttle_peek(buckets, marker=store.introspection_known_key(client_id, ip))
    except store.StoreUnavailable:
        logger.warning("introspection failure limits skipped: redis unavailable")
        return IntrospectionGate(checked=False)
    wait = max(peek.wait for peek in (peeks[:1] if known else peeks))
    if wait > 0:
        raise AuthError("throttled", f"Too many requests; retry in {int(wait + 0.999)} s.", retry_after=wait)
    return IntrospectionGate(checked=True, known=known, first_failure=peeks[0].count == 0)


def introspection_client_failed(*, request: HttpRequest, client_id: str, gate: IntrospectionGate) -> None:
    """Count a failed client authentication; 429 (logged once per window) if it takes
    a count over its limit."""
    if not gate.checked:
        return
    buckets = _introspection_failure_buckets(client_id, _ip(request))
    _hit(buckets[:1] if gate.known else buckets, request=request, fail_closed=False, username=client_id)


def introspection_client_succeeded(*, request: HttpRequest, client_id: str, gate: IntrospectionGate) -> None:
    """Remember this client id at this IP (see `throttle_introspection_failures`)."""
    if gate.checked and not gate.known:
        ttl = int(auth_settings().max_lifetime.total_seconds())
        store.introspection_known_remember(client_id, _ip(request), ttl=ttl)
