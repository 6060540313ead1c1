"""The revocation outbox: every ended session reaches Redis, even if Redis missed
the first write.

Redis keeps a session's "alive" entry as long as the session can be used, so a
revocation that Redis did not take (a partition, a timeout) would otherwise leave
it vouching for the session. Each revocation therefore writes a `Revocation` row in
the same transaction that ends the session; the row is marked published once Redis
has taken the write, and replayed until then:

* at once, after the commit, by the process that ended the session;
* by every process before it next trusts Redis, if it has seen Redis fail since
  (a failed publish, a reconnect after an outage);
* by every process, every AUTH_REVOCATION_POLL_SECONDS (one query, and one look
  at Redis, below), checked before the session check reads Redis: this is the
  bound on how long any process can accept an ended session;
* by `manage.py publish_revocations` (once, or `--every N` as a sidecar).

Redis can also go back in time: restarted from its snapshot (RDB) or from an AOF
that lost its tail, or a replica promoted before it had every write, it brings
back "alive" entries written before a revocation whose "revoked" it lost. Errors
cannot be relied on to tell: redis-py reconnects silently, and a process that was
idle saw nothing. So every check also asks Redis which server it is (its run_id,
new at every start) and compares it with the mark left by the last full replay; a
mismatch, or no mark, means the revocations of the last window are written again
before that Redis is trusted (until then the session check asks the database).
A process that has seen Redis fail or reconnect does the same.

The window is one access token lifetime plus a margin (`republish_seconds`):
every access token of a session ended longer ago than that has expired (none is
minted after the revocation), and refresh always asks the database, so an "alive"
entry a restore brings back for such a session grants nothing. Published rows are
kept that long, then deleted. Replaying is idempotent (it sets "revoked"), so
several publishers never conflict.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import DatabaseError
from django.db.models import Q

from . import clock, store
from .conf import auth_settings
from .models import Revocation

logger = logging.getLogger("duotoken.revocations")

# While Redis or the database is failing, a process retries the replay this often.
RETRY_SECONDS = 1.0
BATCH = 500
# Beyond the access token lifetime: clock skew between hosts, and the whole second
# that issue times are rounded up to.
MARGIN_SECONDS = 60


class _State:
    # This process has reason to believe the outbox holds something Redis lacks.
    pending = False
    # This process has seen Redis fail: write the recent revocations again too.
    republish = False
    # time.monotonic() of the next periodic check; 0: at the first session check.
    next_poll = 0.0
    retry_at = 0.0
    # Redis was found to be a server the recent revocations were not replayed into,
    # and the replay has not succeeded yet: the session check asks the database.
    untrusted = False


def revoked_ttl() -> int:
    # Long enough to outlive every access token of the session (none is minted after
    # the revocation); after that the database answers, and says revoked.
    return int((auth_settings().access_lifetime + timedelta(seconds=MARGIN_SECONDS)).total_seconds())


def republish_seconds() -> int:
    """How long a published revocation is kept, and written again to a Redis that
    may have lost it: as long as any access token of the session can still be used."""
    return revoked_ttl()


def record(entries: Iterable[tuple[str | uuid.UUID, str | int, str]], *, now: datetime) -> None:
    """Queue (session id, user id, reason) revocations; call inside the transaction
    that ends the sessions, so the queue holds exactly what was committed."""
    Revocation.objects.bulk_create(
        Revocation(session_id=sid, user_id=str(uid), reason=reason, created_at=now) for sid, uid, reason in entries
    )
    _State.pending = True


def mark_published(session_ids: Iterable[str], *, now: datetime) -> None:
    """Redis has taken these sessions' queued revocations (written directly)."""
    Revocation.objects.filter(session_id__in=list(session_ids), published_at__isnull=True).update(published_at=now)


def publish_pending(*, republish_recent: bool = False) -> bool:
    """Write every queued revocation to Redis (with `republish_recent`, also those
    published in the last `republish_seconds()`) and mark them published.
    True when nothing is left queued; False when Redis could not be written."""
    now = clock.now()
    window = timedelta(seconds=republish_seconds())
    queued = Revocation.objects.filter(published_at__isnull=True)
    if republish_recent:
        queued = Revocation.objects.filter(Q(published_at__isnull=True) | Q(published_at__gte=now - window))
    last = 0
    while True:
        rows = list(
            queued.filter(pk__gt=last).order_by("pk").values_list("pk", "session_id", "user_id", "reason")[:BATCH]
        )
        if not rows:
            break
        entries = {(str(sid), uid): reason for _, sid, uid, reason in rows}
        if not store.mark_revoked(entries, ttl=revoked_ttl()):
            _State.pending = True
            return False
        last = rows[-1][0]
        Revocation.objects.filter(pk__in=[pk for pk, *_ in rows], published_at__isnull=True).update(published_at=now)
        logger.info("published %d revocation(s) to redis", len(rows))
        if len(rows) < BATCH:
            break
    if last:
        Revocation.objects.filter(published_at__lt=now - window).delete()
    _State.pending = False
    return True


def waiting() -> int:
    """How many revocations Redis has not taken yet."""
    return Revocation.objects.filter(published_at__isnull=True).count()


def sync(*, republish_recent: bool = False) -> bool:
    """Replay the outbox into Redis; all of the last window too if asked, or if
    Redis is not the server the outbox was last replayed into in full (restarted,
    restored, failed over, flushed), which is then marked as replayed.
    True when Redis holds every revocation; raises StoreUnavailable or DatabaseError."""
    run_id, vouched = store.server_identity()
    if not vouched:
        _State.untrusted = True
        logger.warning("redis server %s has not been given the recent revocations: writing them again", run_id)
    if not publish_pending(republish_recent=republish_recent or not vouched):
        return False
    if not vouched:
        store.vouch_for(run_id)
    _State.untrusted = False
    return True


def sync_if_due() -> bool:
    """Called before the session check trusts Redis: replay the outbox if this
    process has seen Redis fail or reconnect, or if the periodic check is due.
    Costs nothing otherwise. False while Redis must not be believed about sessions
    (it may have gone back in time and could not be given the revocations yet)."""
    now = time.monotonic()
    if store.take_outage_seen():
        _State.pending = _State.republish = True
    poll = auth_settings().revocation_poll_seconds
    due = poll > 0 and now >= _State.next_poll
    if not (_State.pending or due) or now < _State.retry_at or store.is_marked_down():
        # While Redis is marked down the session check asks the database anyway.
        return not _State.untrusted
    try:
        ok = sync(republish_recent=_State.republish)
    except store.StoreUnavailable:
        # The breaker is open: the session check asks the database meanwhile.
        ok = False
    except DatabaseError as exc:
        # Nothing can be revoked while the database is away, and Redis keeps answering:
        # try again at the next periodic check, so that a database that times out
        # costs one slow request per interval, not one per second.
        logger.warning("could not read the revocation outbox: %s", exc)
        _State.pending = True
        _State.retry_at = now + max(poll, RETRY_SECONDS)
        return not _State.untrusted
    if ok:
        _State.next_poll = now + poll
        _State.retry_at = 0.0
        _State.republish = False
    else:
        _State.pending = True
        _State.retry_at = now + RETRY_SECONDS
    return not _State.untrusted
