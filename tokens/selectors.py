"""Reads: is this session alive, and who is its user. The per-request hot path.

One Redis round trip (session liveness + a snapshot of the user) and no database
query when Redis knows the session, which it does for as long as the session can
be used; a miss or a Redis failure falls back to the database, which is the record.
Nothing unknown is ever treated as alive.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, NoReturn

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import router

from . import clock, revocations, store
from .conf import auth_settings
from .errors import AuthError
from .models import RevokeReason, Session, credential_fingerprint
from .revocations import revoked_ttl

# Fields cached in Redis; the rest of the user loads lazily (as deferred fields) if
# a view touches them, so request.user is a real model instance either way.
SNAPSHOT_FIELDS = ("id", "username", "email", "first_name", "last_name", "is_active", "is_staff", "is_superuser")


@lru_cache(maxsize=1)
def snapshot_fields() -> tuple[str, ...]:
    # In model field order: Model.from_db() consumes values in that order.
    wanted = set(SNAPSHOT_FIELDS)
    return tuple(f.attname for f in get_user_model()._meta.concrete_fields if f.attname in wanted)


def user_snapshot(user: AbstractBaseUser) -> list[Any]:
    return [getattr(user, name) for name in snapshot_fields()]


def user_from_snapshot(values: list[Any]) -> AbstractBaseUser:
    User = get_user_model()
    # from_db is how Django itself builds instances from rows: the fields we lack are
    # deferred, and save() writes only the loaded ones, so nothing is clobbered.
    return User.from_db(router.db_for_read(User), list(snapshot_fields()), values)


def cache_ttl_for(expires_at: datetime) -> int:
    """How long Redis keeps a session's "alive" entry: as long as the session can
    be used (its idle or absolute expiry, whichever is sooner). A missed revocation
    is bounded by the revocation outbox (tokens.revocations), not by this TTL."""
    return max(1, int((expires_at - clock.now()).total_seconds()))


def snapshot_ttl() -> int:
    """How long Redis keeps a user snapshot: one access token lifetime (plus the
    whole second that issue times are rounded up to). Login and every refresh write
    it afresh, so a usable access token always finds it, and a change made without
    signals (QuerySet.update(), raw SQL) is seen within one access token lifetime."""
    return int(auth_settings().access_lifetime.total_seconds()) + 2


def session_user(*, session_id: str, user_id: str) -> AbstractBaseUser:
    """The live user of a session, or AuthError `session_revoked` (`SessionMustEnd`
    when the session must also be ended: call `services.session_user_checked`)."""
    if not revocations.sync_if_due():
        # Redis may have gone back in time and has not been given the recent
        # revocations yet: the database answers until it has.
        return _session_user_from_db(session_id=session_id, user_id=user_id, cache=False)
    try:
        entry, snapshot = store.read_session(session_id, user_id)
    except store.StoreUnavailable:
        return _session_user_from_db(session_id=session_id, user_id=user_id, cache=False)
    if entry is None:
        return _session_user_from_db(session_id=session_id, user_id=user_id, cache=True)
    if not entry.alive:
        raise AuthError("session_revoked")
    if entry.user_id != user_id:
        raise AuthError("access_token_invalid")
    if snapshot is None:
        user: AbstractBaseUser | None = get_user_model()._default_manager.filter(pk=user_id).first()
        if user is None:
            raise AuthError("session_revoked")
        if not user.is_active:
            _end_sessions_of_inactive_user(user.pk)
        store.remember_user(user_id, user_snapshot(user), ttl=snapshot_ttl())
        return user
    user = user_from_snapshot(snapshot)
    if not user.is_active:
        _end_sessions_of_inactive_user(user.pk)
    return user


class SessionMustEnd(AuthError):
    """The verdict of a read that found a session which must end for good. A
    selector only reads: the caller (`tokens.services.session_user_checked`) ends
    what the verdict names, then answers `session_revoked`."""

    def __init__(self, *, reason: str, user_id: int | str | None = None, session_ids: list[str] | None = None) -> None:
        super().__init__("session_revoked")
        self.reason = reason
        self.user_id = user_id
        self.session_ids = session_ids


def _end_sessions_of_inactive_user(user_id: int | str) -> NoReturn:
    """A session found belonging to an inactive user ends for good, so that
    reactivating the user resurrects nothing, however `is_active` was changed
    (QuerySet.update() sends no signal)."""
    raise SessionMustEnd(reason=RevokeReason.USER_DEACTIVATED, user_id=user_id)


def _session_user_from_db(*, session_id: str, user_id: str, cache: bool) -> AbstractBaseUser:
    session = Session.objects.select_related("user").filter(pk=session_id).first()
    if session is None or session.is_revoked or str(session.user_id) != user_id:
        if cache and session is not None and session.is_revoked:
            store.mark_revoked({(session_id, user_id): session.revoke_reason}, ttl=revoked_ttl())
        raise AuthError("session_revoked")
    if clock.now() >= session.absolute_expires_at:
        raise AuthError("session_expired")
    user = session.user
    if not user.is_active:
        _end_sessions_of_inactive_user(user.pk)
    if session.credential != credential_fingerprint(user.password):
        # The password hash changed by a path that ended nothing (QuerySet.update()).
        raise SessionMustEnd(reason=RevokeReason.PASSWORD_CHANGE, session_ids=[session_id])
    if cache:
        store.remember_session(
            session_id,
            user_id,
            session_ttl=cache_ttl_for(session.expires_at),
            user_snapshot=user_snapshot(user),
            user_ttl=snapshot_ttl(),
        )
    return user
