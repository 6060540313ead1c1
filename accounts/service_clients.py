"""Service clients: create, deactivate, authenticate, and the introspection they may
call (RFC 7662). Every state change of a `ServiceClient` lives here."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.http import HttpRequest

from tokens import clock
from tokens.errors import AuthError
from tokens.gateway import token_introspect
from tokens.models import SecurityEvent
from tokens.services import security_event_record
from tokens.throttles import throttle_introspection

from .models import ServiceClient

# A client's secret is random (256 bits), so Django's slow password hash guards
# only against a leaked database, and paying it on every introspection would cost
# more than the introspection itself. Verified (client, hash, secret digest)
# triples are remembered per process; a new hash or another secret misses.
_VERIFIED: set[tuple[str, str, str]] = set()
VERIFIED_SIZE = 1000
# last_used_at is written at most this often per client, not on every request.
LAST_USED_EVERY = timedelta(seconds=60)


def service_client_create(*, name: str, request: HttpRequest | None = None) -> tuple[ServiceClient, str]:
    """A new active client; returns it with its secret, which is stored only hashed."""
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        client = ServiceClient.objects.create(
            name=name,
            client_id="svc_" + secrets.token_urlsafe(12),
            secret_hash=make_password(secret),
            created_at=clock.now(),
        )
        security_event_record(
            kind=SecurityEvent.Kind.SERVICE_CLIENT_CREATED, request=request, data={"client": _client_ref(client)}
        )
    return client, secret


def service_client_deactivate(*, client_id: str, request: HttpRequest | None = None) -> bool:
    """Refuse a client from now on; returns False if it was not active (or unknown)."""
    with transaction.atomic():
        client = ServiceClient.objects.select_for_update().filter(client_id=client_id, is_active=True).first()
        if client is None:
            return False
        client.is_active = False
        client.save(update_fields=["is_active"])
        security_event_record(
            kind=SecurityEvent.Kind.SERVICE_CLIENT_DEACTIVATED, request=request, data={"client": _client_ref(client)}
        )
    return True


def service_client_authenticate(*, client_id: str, secret: str, request: HttpRequest) -> ServiceClient:
    """The active client with these credentials, or AuthError `invalid_client`
    (logged), after counting the attempt against the client's rate limit."""
    throttle_introspection(request=request, client_id=client_id)
    client = ServiceClient.objects.filter(client_id=client_id).first()
    if client is None:
        make_password(secret)  # as long as a wrong secret takes, so ids cannot be probed by timing
    elif client.is_active and _secret_matches(client, secret):
        _touch(client)
        return client
    security_event_record(
        kind=SecurityEvent.Kind.INTROSPECTION_CLIENT_FAILED,
        request=request,
        username=client_id,
        data={"client": _client_ref(client) if client else None, "reason": _failure_reason(client)},
    )
    raise AuthError("invalid_client")


def service_client_introspect(*, client: ServiceClient, raw_token: str, request: HttpRequest) -> dict:
    """RFC 7662's answer for a token; active answers go to the security log."""
    answer = token_introspect(raw=raw_token)
    if answer["active"]:
        security_event_record(
            kind=SecurityEvent.Kind.INTROSPECTION,
            request=request,
            user_id=answer["sub"],
            session_id=answer["sid"],
            data={"client": _client_ref(client)},
        )
    return answer


def _client_ref(client: ServiceClient) -> dict:
    return {"id": client.client_id, "name": client.name}


def _failure_reason(client: ServiceClient | None) -> str:
    if client is None:
        return "unknown_client"
    return "wrong_secret" if client.is_active else "inactive_client"


def _secret_matches(client: ServiceClient, secret: str) -> bool:
    digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
    key = (client.client_id, client.secret_hash, digest)
    if key in _VERIFIED:
        return True
    if not check_password(secret, client.secret_hash):
        return False
    if len(_VERIFIED) >= VERIFIED_SIZE:
        _VERIFIED.clear()
    _VERIFIED.add(key)
    return True


def _touch(client: ServiceClient) -> None:
    now = clock.now()
    if client.last_used_at is None or now - client.last_used_at >= LAST_USED_EVERY:
        ServiceClient.objects.filter(pk=client.pk).update(last_used_at=now)
