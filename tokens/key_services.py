"""The life cycle of signing keys: add (published), promote (signs), retire.

A key is published before it signs: every host's verifier reloads the key set on
an unknown kid, and `promote` waits (unless forced) until caches of the JWKS that
other services keep for AUTH_JWKS_MAX_AGE have seen it. Promotion is one
transaction on the shared table, so every host signs with the new key from the
next refresh or login on. Retirement stops verification everywhere within
AUTH_KEYS_RELOAD_SECONDS; with live sessions whose current tokens the key signed,
it needs `force` and ends those sessions (the emergency path for a leaked key).

The public development key is never added or promoted (`keys.DEVELOPMENT_KIDS`),
and a key is promoted only if this host can decrypt it. `reencrypt` stores every
usable private part under the newest encryption key, which completes a rotation of
DJANGO_SECRET_KEY (or JWT_KEYS_ENCRYPTION_KEY) so that the old one can go.

An algorithm switch is the same procedure: `add` a key of the new algorithm,
`promote` it (signing moves to it, and each session to it at its next refresh),
`retire` the old algorithm's keys once their sessions have moved on. Keys keep the
algorithm they were added with; at most one key of any algorithm is active.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q

from . import clock, keys
from .conf import auth_settings
from .events import security_event_record
from .models import RevokeReason, SecurityEvent, Session, SigningKey
from .services import sessions_revoke

logger = logging.getLogger("duotoken.keys")


class KeyRefused(Exception):
    """The change was not made; the message says why, for the operator."""


@dataclass(frozen=True)
class KeyListing:
    key: SigningKey
    live_sessions: int


@dataclass(frozen=True)
class Retired:
    key: SigningKey
    sessions_ended: int


def _refuse_development(kid: str) -> None:
    if keys.is_development(kid):
        raise KeyRefused(f"Key {kid} is the public development key: anyone can sign with it.")


def _live(now: datetime) -> Q:
    return Q(revoked_at__isnull=True, idle_expires_at__gt=now, absolute_expires_at__gt=now)


def signing_keys_list() -> list[KeyListing]:
    """Every key, of every algorithm, with how many live sessions it signs."""
    if keys.is_symmetric():
        return []
    keys.current()  # imports the configured key on first use
    now = clock.now()
    counts = dict(
        Session.objects.filter(_live(now))
        .values_list("signing_kid")
        .annotate(n=Count("pk"))
        .values_list("signing_kid", "n")
    )
    rows = SigningKey.objects.all()
    return [KeyListing(key=row, live_sessions=counts.get(row.kid, 0)) for row in rows]


def _record(kind: str, key: SigningKey, operator: str, **data: object) -> None:
    """One security-log entry per change of the key set, naming who made it."""
    security_event_record(
        kind=kind, data={"kid": key.kid, "algorithm": key.algorithm, "operator": operator or "unknown", **data}
    )


def signing_key_add(*, private_pem: str | None = None, algorithm: str = "", operator: str = "") -> SigningKey:
    """A new published key (generated, or imported from a PEM) of `algorithm`, by
    default JWT_ALGORITHM's; it signs once promoted. `operator` names who asked, for
    the security log (the OS user of the command)."""
    configured = keys.algorithm()
    if keys.is_symmetric(configured):
        raise KeyRefused(f"JWT_ALGORITHM={configured} signs with JWT_SIGNING_KEY; there is no key set to add to.")
    alg = algorithm or configured
    if alg not in keys.ASYMMETRIC:
        raise KeyRefused(f"A key set key signs with one of {', '.join(keys.ASYMMETRIC)}, not {alg}.")
    try:
        private = keys.parse_private(private_pem, alg) if private_pem else keys.generate_private(alg)
    except keys.KeyUnusable as exc:
        raise KeyRefused(f"{exc}.") from None
    keys.current()  # the configured key goes in first, so that it stays the active one
    kid = keys.thumbprint(private.public_key())
    _refuse_development(kid)
    if SigningKey.objects.filter(pk=kid).exists():
        raise KeyRefused(f"Key {kid} is already in the key set.")
    with transaction.atomic():
        row = SigningKey.objects.create(
            kid=kid,
            algorithm=alg,
            state=SigningKey.State.PUBLISHED,
            public_pem=keys.public_pem(private.public_key()),
            private_encrypted=keys.encrypt_private(private),
            created_at=clock.now(),
        )
        _record(SecurityEvent.Kind.SIGNING_KEY_ADDED, row, operator, imported=bool(private_pem))
    keys.forget()
    logger.info("signing key %s added (published)", kid)
    return row


def _get(kid: str) -> SigningKey:
    row = SigningKey.objects.filter(pk=kid).first()
    if row is None:
        raise KeyRefused(f"No key {kid!r} in the key set (see `signing_keys list`).")
    return row


def signing_key_promote(*, kid: str, force: bool = False, operator: str = "") -> SigningKey:
    """Make `kid` the key that signs, on every host, from the next token on."""
    _refuse_development(kid)
    keys.current()  # imports the configured key on first use, so that it can be promoted
    with transaction.atomic():
        row = _get(kid)
        if row.state == SigningKey.State.RETIRED:
            raise KeyRefused(f"Key {kid} is retired; add a new key instead.")
        if row.state == SigningKey.State.ACTIVE:
            return row
        if kid != keys.fallback_kid():
            try:
                keys.decrypt_private(row)
            except keys.KeyUnusable as exc:
                # Every login and refresh would answer 503 from now on.
                raise KeyRefused(f"Key {kid} cannot sign here: {exc}.") from None
        now = clock.now()
        ready = row.created_at + timedelta(seconds=auth_settings().jwks_max_age)
        if now < ready and not force:
            raise KeyRefused(
                f"Key {kid} was published {int((now - row.created_at).total_seconds())} s ago; services may cache "
                f"the JWKS for AUTH_JWKS_MAX_AGE={auth_settings().jwks_max_age} s. Promote it after "
                f"{ready:%Y-%m-%d %H:%M:%S} UTC, or pass --force."
            )
        # Whatever its algorithm: promoting a key of another one is an algorithm switch.
        previous = SigningKey.objects.filter(state=SigningKey.State.ACTIVE)
        previous_kid = previous.values_list("kid", flat=True).first()
        previous.update(state=SigningKey.State.PUBLISHED)
        SigningKey.objects.filter(pk=kid).update(state=SigningKey.State.ACTIVE, promoted_at=now)
        _record(SecurityEvent.Kind.SIGNING_KEY_PROMOTED, row, operator, previous=previous_kid or "", forced=now < ready)
    keys.forget()
    logger.warning("signing key %s promoted: it signs every new token from now on", kid)
    return _get(kid)


def signing_key_retire(*, kid: str, force: bool = False, operator: str = "") -> Retired:
    """Stop accepting tokens of `kid`. Sessions whose current tokens it signed would
    be logged out: that takes `force`, and ends them through the usual revocation."""
    row = _get(kid)
    if row.state == SigningKey.State.ACTIVE:
        raise KeyRefused(f"Key {kid} is the active signing key; promote another key first.")
    if row.state == SigningKey.State.RETIRED:
        return Retired(key=row, sessions_ended=0)
    live = list(Session.objects.filter(_live(clock.now()), signing_kid=kid).values_list("pk", flat=True).order_by("pk"))
    if live and not force:
        raise KeyRefused(
            f"Key {kid} signed the current tokens of {len(live)} live session(s); retiring it ends them. "
            "Pass --force to do so."
        )
    SigningKey.objects.filter(pk=kid).update(state=SigningKey.State.RETIRED, retired_at=clock.now())
    keys.forget()
    ended = sessions_revoke(reason=RevokeReason.KEY_RETIRED, session_ids=[str(pk) for pk in live]) if live else []
    # The session ids too: after a leak, these are the logins to look into.
    _record(SecurityEvent.Kind.SIGNING_KEY_RETIRED, row, operator, sessions=sorted(ended))
    logger.warning("signing key %s retired; %d session(s) ended", kid, len(ended))
    return Retired(key=_get(kid), sessions_ended=len(ended))


def signing_keys_reencrypt() -> list[str]:
    """Store the private part of every usable key (active or published) under the
    first encryption key; returns their kids. Refused, changing nothing, if any of
    them cannot be decrypted with the keys this host has."""
    rows = list(SigningKey.objects.exclude(state=SigningKey.State.RETIRED).order_by("kid"))
    updated = []
    for row in rows:
        try:
            updated.append((row.kid, keys.reencrypt_private(row.private_encrypted)))
        except keys.KeyUnusable as exc:
            raise KeyRefused(f"Key {row.kid} cannot be re-encrypted: {exc}.") from None
    with transaction.atomic():
        for kid, token in updated:
            SigningKey.objects.filter(pk=kid).update(private_encrypted=token)
    keys.forget()
    logger.warning("private parts of %d signing key(s) re-encrypted under the newest encryption key", len(updated))
    return [kid for kid, _ in updated]
