"""Service clients: create, deactivate, authenticate, and the introspection they may
call (RFC 7662). Every state change of a `ServiceClient` lives here."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.hashers import check_password
from django.db import transaction
from django.http import HttpRequest

from tokens import clock
from tokens.errors import AuthError
from tokens.events import security_event_record
from tokens.gateway import token_introspect
from tokens.models import SecurityEvent
from tokens.throttles import (
    IntrospectionGate,
    introspection_client_failed,
    introspection_client_succeeded,
    throttle_introspection,
    throttle_introspection_failures,
)

from .models import ServiceClient

# A client's secret is 256 random bits, so one SHA-256 of it is as strong a record
# as any slow hash, and costs an attacker as much to try as it costs us: no key to
# rotate (unlike an HMAC under SECRET_KEY), nothing to cache. Compared in constant
# time. Hashes made before (Django password hashes) are checked the slow way,
# after the failure limits, and replaced by the digest on their first success.
DIGEST_PREFIX = "sha256$"
# What an unknown client id is compared against: the same work as a wrong secret.
UNKNOWN_CLIENT_DIGEST = DIGEST_PREFIX + "0" * 64
# last_used_at is written at most this often per client, not on every request.
LAST_USED_EVERY = timedelta(seconds=60)


def secret_digest(secret: str) -> str:
    """What is stored for a client secret (and compared with on every call)."""
    return DIGEST_PREFIX + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def service_client_create(
    *, name: str, request: HttpRequest | None = None, admin: AbstractBaseUser | None = None
) -> tuple[ServiceClient, str]:
    """A new active client; returns it with its secret, which is stored only as its
    digest. `admin` names who acted, for the security log."""
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        client = ServiceClient.objects.create(
            name=name,
            client_id="svc_" + secrets.token_urlsafe(12),
            secret_hash=secret_digest(secret),
            created_at=clock.now(),
        )
        security_event_record(
            kind=SecurityEvent.Kind.SERVICE_CLIENT_CREATED, request=request, data=_event_data(client, admin)
        )
    return client, secret


def service_client_deactivate(
    *, client_id: str, request: HttpRequest | None = None, admin: AbstractBaseUser | None = None
) -> bool:
    """Refuse a client from now on; returns False if it was not active (or unknown)."""
    with transaction.atomic():
        client = ServiceClient.objects.select_for_update().filter(client_id=client_id, is_active=True).first()
        if client is None:
            return False
        client.is_active = False
        client.save(update_fields=["is_active"])
        security_event_record(
            kind=SecurityEvent.Kind.SERVICE_CLIENT_DEACTIVATED, request=request, data=_event_data(client, admin)
        )
    return True


def service_client_authenticate(*, client_id: str, secret: str, request: HttpRequest) -> ServiceClient:
    """The active client with these credentials, or AuthError `invalid_client`.

    Failed attempts are limited before anything is looked up (tokens.throttles), and
    logged once per (client id, IP) and window. Unknown, wrong and deactivated take
    one path: one lookup, one digest, one constant-time comparison."""
    gate = throttle_introspection_failures(request=request, client_id=client_id)
    client = ServiceClient.objects.filter(client_id=client_id).first()
    if client is not None and client.is_active and not client.secret_hash.startswith(DIGEST_PREFIX):
        matches = _legacy_secret_matches(client, secret, gate)
    else:
        matches = hmac.compare_digest(secret_digest(secret), _stored_digest(client))
    if client is not None and client.is_active and matches:
        introspection_client_succeeded(request=request, client_id=client_id, gate=gate)
        throttle_introspection(request=request, client_id=client_id)
        _touch(client)
        return client
    introspection_client_failed(request=request, client_id=client_id, gate=gate)
    if gate.first_failure:
        security_event_record(
            kind=SecurityEvent.Kind.INTROSPECTION_CLIENT_FAILED,
            request=request,
            username=client_id,
            data={"client": _client_ref(client) if client else None, "reason": _failure_reason(client)},
        )
    raise AuthError("invalid_client")


def service_client_introspect(*, client: ServiceClient, raw_token: str, request: HttpRequest) -> dict[str, Any]:
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


def _client_ref(client: ServiceClient) -> dict[str, str]:
    return {"id": client.client_id, "name": client.name}


def _event_data(client: ServiceClient, admin: AbstractBaseUser | None) -> dict[str, Any]:
    data: dict[str, Any] = {"client": _client_ref(client)}
    if admin is not None:
        data["admin"] = {"id": admin.pk, "username": admin.get_username()}
    return data


def _stored_digest(client: ServiceClient | None) -> str:
    # Unknown clients, and deactivated ones with an old hash, meet the dummy.
    if client is not None and client.secret_hash.startswith(DIGEST_PREFIX):
        return client.secret_hash
    return UNKNOWN_CLIENT_DIGEST


def _failure_reason(client: ServiceClient | None) -> str:
    if client is None:
        return "unknown_client"
    return "wrong_secret" if client.is_active else "inactive_client"


def _legacy_secret_matches(client: ServiceClient, secret: str, gate: IntrospectionGate) -> bool:
    """A secret stored as a Django password hash (before secret digests): checked
    only behind the failure limits, since it costs a full key stretch, and replaced
    by its digest on success. Without Redis the limits could not be read: 503."""
    if not gate.checked:
        raise AuthError("service_unavailable", retry_after=1)
    if not check_password(secret, client.secret_hash):
        return False
    ServiceClient.objects.filter(pk=client.pk, secret_hash=client.secret_hash).update(secret_hash=secret_digest(secret))
    return True


def _touch(client: ServiceClient) -> None:
    now = clock.now()
    if client.last_used_at is None or now - client.last_used_at >= LAST_USED_EVERY:
        ServiceClient.objects.filter(pk=client.pk).update(last_used_at=now)
