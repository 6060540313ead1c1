"""Every state change of a session: start, rotate, revoke, and the security log.

Rotation is a compare-and-set on the session row (`UPDATE ... WHERE generation = g`),
so exactly one of any number of concurrent refreshes, in any process on any host,
moves the generation; the others find it moved and, if generation g was rotated away
less than the grace window ago, get the session's current generation re-minted from
the row (tokens are deterministic). The row lock is held from that UPDATE to its
COMMIT, only while the new pair is signed, and no in-process lock is involved.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connections, router, transaction
from django.db.models import Field, Model, Q, QuerySet
from django.http import HttpRequest

from . import binding, clock, keys, revocations, store
from .clientinfo import client_ip, user_agent
from .conf import auth_settings
from .errors import AuthError
from .events import security_event_record
from .models import (
    ROTATION_WIDTH,
    ROTATIONS_KEPT,
    RevokeReason,
    Rotation,
    SecurityEvent,
    Session,
    SigningKey,
    credential_fingerprint,
    rotation_entry,
)
from .selectors import SessionMustEnd, cache_ttl_for, session_user, snapshot_fields, snapshot_ttl, user_snapshot
from .throttles import throttle_refresh
from .tokens import ACCESS, REFRESH, TokenExpired, TokenInvalid, TokenPair, decode, mint_pair, refresh_claims

logger = logging.getLogger("duotoken.sessions")


@dataclass(frozen=True)
class IssuedSession:
    session_id: str
    user_id: str
    pair: TokenPair
    absolute_expires_at: datetime
    # True when a refresh lost the race inside the grace window and got the same
    # successor as the one that won, rather than moving the generation itself.
    replayed: bool = False


def _issue(
    session_id: str,
    user_id: str,
    generation: int,
    issued_at: datetime,
    absolute: datetime,
    now: datetime,
    kid: str,
    jkt: str | None = None,
) -> IssuedSession:
    pair = mint_pair(
        session_id=session_id,
        user_id=user_id,
        generation=generation,
        issued_at=issued_at,
        absolute_expires_at=absolute,
        now=now,
        kid=kid,
        jkt=jkt,
    )
    return IssuedSession(session_id=session_id, user_id=user_id, pair=pair, absolute_expires_at=absolute)


def session_start(*, user: AbstractBaseUser, request: HttpRequest) -> IssuedSession:
    """Open a new session (token family) for a user who has just proved who they are.

    `user` must be the instance that proved it (as `authenticate()` returned it): its
    password hash is the credential the session is bound to. The user row is locked
    and read again first, and a password or activity change committed since then
    refuses the login (`invalid_credentials`), so that no session outlives a change
    that committed before it: a change that commits later waits for our row lock,
    and its revocation then finds this session.
    """
    conf = auth_settings()
    User = type(user)
    with transaction.atomic():
        # SELECT ... FOR UPDATE on PostgreSQL; on SQLite the IMMEDIATE transaction
        # mode (config/settings.py) already serialises writers.
        locked = User._default_manager.select_for_update().filter(pk=user.pk)
        # `is_active` is a field of the user model, which the stubs know only as AbstractBaseUser.
        current = locked.values_list("password", "is_active")  # type: ignore[misc]
        row = current.first()
        if row is None or row != (user.password, True):
            raise AuthError("invalid_credentials")
        now = clock.now()
        issued = clock.whole_second(now)
        absolute = issued + conf.max_lifetime
        kid = keys.active_kid()
        over_limit = _sessions_over_limit(user_id=user.pk, now=now, keep=conf.max_sessions_per_user - 1)
        ip, agent = client_ip(request), user_agent(request)
        # `user` is of AUTH_USER_MODEL, which the stubs know only as AbstractBaseUser.
        session = Session.objects.create(  # type: ignore[misc]
            user=user,
            created_at=now,
            rotated_at=issued,
            idle_expires_at=min(issued + conf.refresh_lifetime, absolute),
            absolute_expires_at=absolute,
            ip=ip,
            user_agent=agent,
            last_ip=ip,
            last_user_agent=agent,
            credential=credential_fingerprint(user.password),
            signing_kid=kid,
        )
        sid, uid = str(session.pk), str(user.pk)
        if over_limit:
            Session.objects.filter(pk__in=over_limit, revoked_at__isnull=True).update(
                revoked_at=now, revoke_reason=RevokeReason.SESSION_LIMIT
            )
            revocations.record(((pk, uid, RevokeReason.SESSION_LIMIT) for pk in over_limit), now=now)
            security_event_record(
                kind=SecurityEvent.Kind.SESSION_LIMIT,
                request=request,
                user_id=user.pk,
                session_id=sid,
                data={"limit": conf.max_sessions_per_user, "sessions": over_limit},
            )
    if over_limit:
        # After the commit: Redis must never say "ended" for a session the database
        # still has alive. A failed publish stays in the outbox and is replayed
        # (tokens.revocations); the login itself goes ahead.
        revocations.publish_pending()
        logger.info("user %s reached the session limit: %d session(s) ended", uid, len(over_limit))
    store.remember_session(
        sid,
        uid,
        session_ttl=cache_ttl_for(min(issued + conf.refresh_lifetime, absolute)),
        user_snapshot=user_snapshot(user),
        user_ttl=snapshot_ttl(),
    )
    return _issue(sid, uid, 1, issued, absolute, now, kid)


def _sessions_over_limit(*, user_id: int | str, now: datetime, keep: int) -> list[str]:
    """Ids of the user's live sessions beyond the `keep` most recently created."""
    live = Session.objects.filter(
        user_id=user_id, revoked_at__isnull=True, idle_expires_at__gt=now, absolute_expires_at__gt=now
    ).order_by("-created_at", "-pk")
    return sorted(str(pk) for pk in live.values_list("pk", flat=True)[keep:])


_CAS_FIELDS = ("generation", "rotated_at", "idle_expires_at", "last_ip", "last_user_agent")


@lru_cache(maxsize=8)
def _advance_sql(alias: str) -> str:
    # Written out once per database: this statement is the refresh hot path, and
    # building it through the ORM cost more CPU than running it.
    qn = connections[alias].ops.quote_name
    # A concrete field always has a column (the stubs allow None, for the other kinds).
    col = {f.name: qn(cast(str, f.column)) for f in Session._meta.concrete_fields}
    sets = ", ".join(f"{col[name]} = %s" for name in _CAS_FIELDS)
    key = {f.name: qn(cast(str, f.column)) for f in SigningKey._meta.concrete_fields}
    # The new generation is signed by the key active at this very statement, on
    # whatever host and of whatever algorithm (at most one key is active): the row
    # records it, and a grace replay re-mints with it.
    kid = (
        f"{col['signing_kid']} = COALESCE((SELECT {key['kid']} FROM {qn(SigningKey._meta.db_table)}"  # noqa: S608
        f" WHERE {key['state']} = %s), %s)"
    )
    # The generation rotated away now goes on top of the grace window's record, and
    # the oldest falls off (SET expressions read the row as it was, in both databases).
    history = col["recent_rotations"]
    history = f"{history} = substr(%s || {history}, 1, {ROTATIONS_KEPT * ROTATION_WIDTH})"
    # Only quoted names from the model's own metadata and that constant width are
    # interpolated; every value is a parameter.
    return (
        f"UPDATE {qn(Session._meta.db_table)} SET {sets}, {kid}, {history}"  # noqa: S608
        f" WHERE {col['id']} = %s AND {col['generation']} = %s"
        f" AND {col['revoked_at']} IS NULL AND {col['idle_expires_at']} > %s"
        f" AND {col['absolute_expires_at']} > %s AND {col['absolute_expires_at']} = %s"
        f" AND {col['user']} = %s AND {col['credential']} = %s AND {col['binding_jkt']} = %s"
        f" RETURNING {col['signing_kid']}"
    )


def _advance(
    *,
    session_id: str,
    generation: int,
    now: datetime,
    issued: datetime,
    absolute: datetime,
    request: HttpRequest,
    user_id: str,
    credential: str,
    jkt: str | None = None,
) -> str | None:
    """The compare-and-set: move a live, unexpired session of this user, opened with
    this credential, from `generation` to the next, or change nothing. One UPDATE;
    the database serialises the racers. Returns the kid that signs the new
    generation, or None if nothing moved. A session bound to a device moves only
    for a request that proved its key (`jkt`), an unbound one only without one.

    Matching `absolute` too lets the new idle expiry be computed here."""
    alias = router.db_for_write(Session)
    connection = connections[alias]

    def prep(name: str, value: object) -> Any:
        # Only concrete fields are named here, never the reverse side of a relation.
        field = cast("Field[Any, Any]", Session._meta.get_field(name))
        return field.get_db_prep_value(value, connection)

    idle = min(issued + auth_settings().refresh_lifetime, absolute)
    values = (generation + 1, issued, idle, client_ip(request), user_agent(request))
    params = [prep(name, value) for name, value in zip(_CAS_FIELDS, values, strict=True)]
    # HS*: the shared secret signs, never a row left from an asymmetric algorithm.
    params += [SigningKey.State.ACTIVE if not keys.is_symmetric() else "", keys.fallback_kid(), rotation_entry(issued)]
    params += [
        prep("id", uuid.UUID(session_id)),
        generation,
        prep("idle_expires_at", now),
        prep("absolute_expires_at", now),
        prep("absolute_expires_at", absolute),
        int(user_id) if user_id.isdigit() else user_id,
        credential,
        jkt or "",
    ]
    with connection.cursor() as cursor:
        cursor.execute(_advance_sql(alias), params)
        row = cursor.fetchone()
        return row[0] if row else None


def _user_credential(user_id: str) -> tuple[str, list[Any]]:
    """The credential fingerprint a session of this user must carry to be rotated,
    and the user's snapshot (read in the same query, for Redis).

    An inactive or deleted user has none: their sessions are ended here for good,
    whichever way `is_active` was changed (QuerySet.update() sends no signal)."""
    User = get_user_model()
    fields = snapshot_fields()
    row = User._default_manager.filter(pk=user_id).values_list("password", *fields).first()
    if row is None:
        raise AuthError("refresh_token_invalid")  # the user is gone, and so are their sessions
    password, *snapshot = row
    if not snapshot[fields.index("is_active")]:
        sessions_revoke(reason=RevokeReason.USER_DEACTIVATED, user=user_id)
        raise AuthError("session_revoked")
    return credential_fingerprint(password), snapshot


def session_rotate(*, raw_refresh: str | None, request: HttpRequest, jkt: str | None = None) -> IssuedSession:
    """Exchange a refresh token for the next generation (see the module docstring).

    `jkt`: the session is bound to a device and this request proved it holds that
    key (tokens.binding.require_proof runs first, in the view); its new access token
    says so."""
    conf = auth_settings()
    claims = refresh_claims(raw_refresh)
    sid, uid, gen = claims["sid"], claims[conf.user_id_claim], claims["gen"]
    throttle_refresh(request=request, session_id=sid)

    # One indexed read: rotation refuses a session whose user is inactive or whose
    # password hash changed since login, even if no signal ever told us.
    credential, snapshot = _user_credential(uid)
    now = clock.now()
    issued = clock.whole_second(now)
    # The claims were signed from the row, so `sx` is its absolute expiry.
    absolute = datetime.fromtimestamp(claims["sx"], tz=UTC)
    # The new generation is minted before the move commits: a key that cannot sign
    # (KeyUnusable, or anything else) rolls the move back, so the client's retry is
    # still the current generation, never a replay of one that no client ever got.
    # The row stays locked only while the two tokens are signed.
    with transaction.atomic(using=router.db_for_write(Session)):
        kid = _advance(
            session_id=sid,
            generation=gen,
            now=now,
            issued=issued,
            absolute=absolute,
            request=request,
            user_id=uid,
            credential=credential,
            jkt=jkt,
        )
        rotated = _issue(sid, uid, gen + 1, issued, absolute, now, kid, jkt) if kid is not None else None
        if rotated is not None:
            # The step of the session's story (tokens.timeline), in the same commit.
            _rotation_record(
                sid=sid, kind=Rotation.Kind.ROTATED, presented=gen, generation=gen + 1, now=now, request=request
            )
    if rotated is not None:
        # The session's Redis entry lives as long as its new idle expiry, and the user
        # snapshot is written afresh: a usable access token always finds both.
        store.remember_session(
            sid,
            uid,
            session_ttl=cache_ttl_for(min(issued + conf.refresh_lifetime, absolute)),
            user_snapshot=snapshot,
            user_ttl=snapshot_ttl(),
        )
        return rotated
    return _after_lost_rotation(sid=sid, uid=uid, gen=gen, now=now, request=request, credential=credential, jkt=jkt)


def _after_lost_rotation(
    *, sid: str, uid: str, gen: int, now: datetime, request: HttpRequest, credential: str, jkt: str | None = None
) -> IssuedSession:
    """The compare-and-set matched nothing: find out why, from the committed row."""
    session = Session.objects.filter(pk=sid).first()
    if session is None or str(session.user_id) != uid or session.generation < gen:
        raise AuthError("refresh_token_invalid")
    if session.is_revoked:
        raise AuthError("session_revoked")
    if (session.binding_jkt or None) != jkt:
        # Bound to a device, and this request did not prove it holds the key (a
        # token copied before the binding): refused and logged, the session kept.
        binding.refuse_unproven(request=request, session_id=sid, user_id=uid)
    if session.credential != credential:
        # The password hash changed after this session was opened, by a path that
        # did not end it (QuerySet.update(), raw SQL): end it now, for good.
        sessions_revoke(reason=RevokeReason.PASSWORD_CHANGE, session_ids=[sid])
        raise AuthError("session_revoked")
    if now >= session.absolute_expires_at:
        raise AuthError("session_expired")
    if session.generation == gen:
        raise AuthError("refresh_token_expired")  # idle timeout reached
    rotated_away = session.rotated_away_at(gen)
    if rotated_away is not None and now - rotated_away <= auth_settings().grace:
        # Rotated away less than the grace window ago: a parallel or late refresh by
        # the owner (a slow tab, a reload), however many rotations other tabs made
        # since. It gets the session's current pair, re-minted from the row with the
        # key that signed it, even if another has been promoted since.
        issued = _issue(
            sid, uid, session.generation, session.rotated_at, session.absolute_expires_at, now, session.signing_kid, jkt
        )
        _rotation_record(
            sid=sid, kind=Rotation.Kind.REPLAYED, presented=gen, generation=session.generation, now=now, request=request
        )
        return replace(issued, replayed=True)
    _revoke_for_reuse(session=session, gen=gen, request=request)
    raise AuthError("refresh_token_reused")


def _rotation_record(
    *, sid: str, kind: str, presented: int, generation: int, now: datetime, request: HttpRequest
) -> None:
    """One step of the session's story for the admin's timeline (tokens.timeline)."""
    Rotation.objects.create(
        session_id=sid,
        kind=kind,
        presented=presented,
        generation=generation,
        at=now,
        ip=client_ip(request),
        user_agent=user_agent(request),
    )


def _revoke_for_reuse(*, session: Session, gen: int, request: HttpRequest) -> None:
    now = clock.now()
    with transaction.atomic():
        ended = Session.objects.filter(pk=session.pk, revoked_at__isnull=True).update(
            revoked_at=now, revoke_reason=RevokeReason.REUSE
        )
        if ended:
            revocations.record([(session.pk, session.user_id, RevokeReason.REUSE)], now=now)
            security_event_record(
                kind=SecurityEvent.Kind.REFRESH_REUSE,
                request=request,
                user_id=session.user_id,
                session_id=str(session.pk),
                data={
                    "presented_generation": gen,
                    "current_generation": session.generation,
                    # Which of the two is the thief is unknown: whoever rotated first
                    # may have been the thief, and the replay the owner's old tab.
                    "first_rotation": {"ip": session.last_ip, "user_agent": session.last_user_agent},
                    "replay": {"ip": client_ip(request), "user_agent": user_agent(request)},
                },
            )
    revocations.publish_pending()
    logger.warning("refresh token reuse: session %s ended (generation %s presented)", session.pk, gen)


class Revoked(list[str]):
    """The ids of the sessions a revocation ended, plus whether Redis was told.

    `published` False means the database (the record) has ended them but Redis could
    not be written: the revocation waits in the outbox, and a process that still
    reads that Redis may accept the session until it replays the outbox (at most
    AUTH_REVOCATION_POLL_SECONDS). API callers answer 503 so the client retries, and
    the retry publishes again.
    """

    published: bool = True


def sessions_revoke(
    *,
    reason: str,
    session_ids: Iterable[str] | None = None,
    user: AbstractBaseUser | int | str | None = None,
    except_credential: str | None = None,
) -> Revoked:
    """End live sessions, by id and/or all of a user's (optionally only those not
    opened with the credential `except_credential`); returns the ids ended.

    The database is written first (it is the record), with an outbox row per ended
    session in the same transaction, then Redis, so that a Redis restart can never
    bring an ended session back and a Redis that missed the write is told later.
    """
    scope = Session.objects.all()
    if session_ids is not None:
        scope = scope.filter(pk__in=list(session_ids))
    if user is not None:
        # A user of AUTH_USER_MODEL or its pk, which the plugin types as the model's class or int only.
        scope = scope.filter(user=user)  # type: ignore[misc]
    if except_credential is not None:
        # Only the sessions opened with another credential than this one.
        scope = scope.exclude(credential=except_credential)
    now = clock.now()
    with transaction.atomic():
        rows = list(scope.filter(revoked_at__isnull=True).select_for_update().values_list("pk", "user_id"))
        ended = Revoked(str(pk) for pk, _ in rows)
        if ended:
            Session.objects.filter(pk__in=ended, revoked_at__isnull=True).update(revoked_at=now, revoke_reason=reason)
            revocations.record(((pk, uid, reason) for pk, uid in rows), now=now)
    # The whole outbox, not just these: a retry after a failed publish (Redis slow
    # or away) repairs it, whichever process queued it.
    ended.published = revocations.publish_pending()
    return ended


def session_user_checked(*, session_id: str, user_id: str) -> AbstractBaseUser:
    """The per-request check (`selectors.session_user`), and the ending of a session
    it finds must end for good (its user is inactive, its credential changed)."""
    try:
        return session_user(session_id=session_id, user_id=user_id)
    except SessionMustEnd as verdict:
        # A verdict always names its sessions: never an unscoped "end everything".
        if verdict.user_id is not None or verdict.session_ids:
            sessions_revoke(reason=verdict.reason, user=verdict.user_id, session_ids=verdict.session_ids)
        raise AuthError("session_revoked") from None


def revocation_published_or_503(ended: Revoked) -> None:
    if not ended.published:
        raise AuthError("service_unavailable", retry_after=1)


def session_from_cookies(*, raw_access: str | None, raw_refresh: str | None) -> tuple[str, str] | None:
    """(session id, user id) of the session a request's cookies belong to, expired
    or not: logout must work with an expired access token."""
    user_id_claim = auth_settings().user_id_claim
    for raw, kind in ((raw_refresh, REFRESH), (raw_access, ACCESS)):
        if not raw:
            continue
        try:
            claims = decode(raw, kind)
        except TokenExpired as exc:
            claims = exc.claims
        except TokenInvalid:
            continue
        return claims["sid"], claims[user_id_claim]
    return None


def sessions_revoke_by_admin(
    *, admin: AbstractBaseUser, request: HttpRequest | None, session_ids: Iterable[str]
) -> Revoked:
    """End sessions from the admin, leaving one `admin_revoked` event per user whose
    sessions ended, naming the admin and the sessions."""
    ended = sessions_revoke(reason=RevokeReason.ADMIN, session_ids=session_ids)
    by_user: dict[int, list[str]] = {}
    for pk, user_id in Session.objects.filter(pk__in=ended).values_list("pk", "user_id"):
        by_user.setdefault(user_id, []).append(str(pk))
    for user_id, ids in sorted(by_user.items()):
        ids.sort()
        security_event_record(
            kind=SecurityEvent.Kind.ADMIN_REVOKED,
            request=request,
            user_id=user_id,
            session_id=ids[0] if len(ids) == 1 else None,
            data={"admin": {"id": admin.pk, "username": admin.get_username()}, "sessions": ids},
        )
    if ended:
        logger.info("admin %s ended %d session(s)", admin.pk, len(ended))
    return ended


def sessions_live_ids(
    *, session_ids: Iterable[str | uuid.UUID] | None = None, user_ids: Iterable[int] | None = None
) -> list[str]:
    """Ids of sessions that are neither revoked nor expired, among those given."""
    now = clock.now()
    qs = Session.objects.filter(revoked_at__isnull=True, idle_expires_at__gt=now, absolute_expires_at__gt=now)
    if session_ids is not None:
        qs = qs.filter(pk__in=list(session_ids))
    if user_ids is not None:
        qs = qs.filter(user_id__in=list(user_ids))
    return [str(pk) for pk in qs.values_list("pk", flat=True)]


@dataclass(frozen=True)
class CleanupResult:
    sessions: int
    events: int


def _delete_in_batches(qs: QuerySet[Model], *, batch_size: int, pause: float, raw: bool) -> int:
    deleted = 0
    while True:
        ids = list(qs.order_by().values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        batch = qs.filter(pk__in=ids)
        # Expired sessions cannot have a usable token left (every token's `exp` is
        # capped by the session's expiry), so the per-row Redis mark that
        # Session's post_delete receiver would send is skipped on purpose.
        if raw:
            # The rows that point at these sessions go first (a raw delete runs no
            # cascade, and the database's foreign key would refuse it).
            Rotation.objects.filter(session_id__in=ids)._raw_delete(batch.db)
            deleted += batch._raw_delete(batch.db)
        else:
            deleted += batch.delete()[0]
        if len(ids) < batch_size:
            return deleted
        if pause:
            time.sleep(pause)


def expired_records_delete(
    *,
    session_age: timedelta,
    event_age: timedelta,
    batch_size: int = 1000,
    pause: float = 0.0,
    dry_run: bool = False,
) -> CleanupResult:
    """Delete sessions expired for longer than `session_age` and security events
    older than `event_age`, a batch per short transaction, so that it can run from
    cron beside a live service without long locks."""
    now = clock.now()
    cutoff = now - session_age
    sessions = Session.objects.filter(Q(idle_expires_at__lte=cutoff) | Q(absolute_expires_at__lte=cutoff))
    events = SecurityEvent.objects.filter(created_at__lt=now - event_age)
    if dry_run:
        return CleanupResult(sessions=sessions.count(), events=events.count())
    return CleanupResult(
        sessions=_delete_in_batches(sessions, batch_size=batch_size, pause=pause, raw=True),
        events=_delete_in_batches(events, batch_size=batch_size, pause=pause, raw=False),
    )
