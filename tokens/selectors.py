"""Reads: is this session alive, and who is its user. The per-request hot path.

One Redis round trip (session liveness + a snapshot of the user) and no database
query when Redis knows the session; a miss or a Redis failure falls back to the
database, which is the record. Nothing unknown is ever treated as alive.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import NoReturn

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import router

from . import clock, store
from .conf import auth_settings
from .errors import AuthError
from .models import RevokeReason, Session, credential_fingerprint

# Fields cached in Redis; the rest of the user loads lazily (as deferred fields) if
# a view touches them, so request.user is a real model instance either way.
SNAPSHOT_FIELDS = ("id", "username", "email", "first_name", "last_name", "is_active", "is_staff", "is_superuser")


@lru_cache(maxsize=1)
def _snapshot_fields() -> tuple[str, ...]:
    # In model field order: Model.from_db() consumes values in that order.
    wanted = set(SNAPSHOT_FIELDS)
    return tuple(f.attname for f in get_user_model()._meta.concrete_fields if f.attname in wanted)


def user_snapshot(user: AbstractBaseUser) -> list:
    return [getattr(user, name) for name in _snapshot_fields()]


def user_from_snapshot(values: list) -> AbstractBaseUser:
    User = get_user_model()
    # from_db is how Django itself builds instances from rows: the fields we lack are
    # deferred, and save() writes only the loaded ones, so nothing is clobbered.
    return User.from_db(router.db_for_read(User), list(_snapshot_fields()), values)


def cache_ttl_for(expires_at) -> int:
    remaining = int((expires_at - clock.now()).total_seconds())
    return max(1, min(auth_settings().session_cache_seconds, remaining))


def revoked_ttl() -> int:
    # Long enough to outlive every access token of the session; after that the
    # database answers (and says revoked) if anyone asks again.
    return int((auth_settings().access_lifetime + timedelta(seconds=60)).total_seconds())


def session_user(*, session_id: str, user_id: str) -> AbstractBaseUser:
    """The live user of a session, or AuthError `session_revoked`."""
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
        user = get_user_model()._default_manager.filter(pk=user_id).first()
        if user is None:
            raise AuthError("session_revoked")
        if not user.is_active:
            _end_sessions_of_inactive_user(user.pk)
        store.remember_user(user_id, user_snapshot(user), ttl=auth_settings().session_cache_seconds)
        return user
    user = user_from_snapshot(snapshot)
    if not user.is_active:
        _end_sessions_of_inactive_user(user.pk)
    return user


def _end_sessions_of_inactive_user(user_id) -> NoReturn:
    """A session found belonging to an inactive user ends for good, so that
    reactivating the user resurrects nothing, however `is_active` was changed
    (QuerySet.update() sends no signal)."""
    from .services import sessions_revoke

    sessions_revoke(reason=RevokeReason.USER_DEACTIVATED, user=user_id)
    raise AuthError("session_revoked")


def _session_user_from_db(*, session_id: str, user_id: str, cache: bool) -> AbstractBaseUser:
    session = Session.objects.select_related("user").filter(pk=session_id).first()
    if session is None or session.is_revoked or str(session.user_id) != user_id:
        if cache and session is not None and session.is_revoked:
            store.mark_revoked({session_id: session.revoke_reason}, ttl=revoked_ttl())
        raise AuthError("session_revoked")
    if clock.now() >= session.absolute_expires_at:
        raise AuthError("session_expired")
    user = session.user
    if not user.is_active:
        _end_sessions_of_inactive_user(user.pk)
    if session.credential != credential_fingerprint(user.password):
        # The password hash changed by a path that ended nothing (QuerySet.update()).
        from .services import sessions_revoke

        sessions_revoke(reason=RevokeReason.PASSWORD_CHANGE, session_ids=[session_id])
        raise AuthError("session_revoked")
    if cache:
        ttl = cache_ttl_for(session.absolute_expires_at)
        store.remember_session(session_id, user_id, session_ttl=ttl, user_snapshot=user_snapshot(user), user_ttl=ttl)
    return user
