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
* by every process, every AUTH_REVOCATION_POLL_SECONDS (one query on a table that
  holds only the last minute's revocations), checked before the session check
  reads Redis: this is the bound on how long any process can accept an ended
  session;
* by `manage.py publish_revocations` (once, or `--every N` as a sidecar).

Redis replicates asynchronously: a write a primary acknowledged can be lost when a
replica is promoted. A process that has seen Redis fail therefore also writes again
the revocations published in the last REPUBLISH_SECONDS, after which published rows
are deleted. Replaying is idempotent (it sets "revoked"), so several publishers
never conflict.
"""

from __future__ import annotations

import logging
import time
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
# How long a published revocation is kept for writing again after a failover.
REPUBLISH_SECONDS = 60


class _State:
    # This process has reason to believe the outbox holds something Redis lacks.
    pending = False
    # This process has seen Redis fail: write the recent revocations again too.
    republish = False
    # time.monotonic() of the next periodic check; 0: at the first session check.
    next_poll = 0.0
    retry_at = 0.0


def revoked_ttl() -> int:
    # Long enough to outlive every access token of the session (none is minted after
    # the revocation); after that the database answers, and says revoked.
    return int((auth_settings().access_lifetime + timedelta(seconds=60)).total_seconds())


def record(entries: Iterable[tuple[str, str | int, str]], *, now: datetime) -> None:
    """Queue (session id, user id, reason) revocations; call inside the transaction
    that ends the sessions, so the queue holds exactly what was committed."""
    Revocation.objects.bulk_create(
        Revocation(session_id=sid, user_id=str(uid), reason=reason, created_at=now) for sid, uid, reason in entries
    )
    _State.pending = True


def publish_pending(*, republish_recent: bool = False) -> bool:
    """Write every queued revocation to Redis (with `republish_recent`, also those
    published in the last REPUBLISH_SECONDS) and mark them published.
    True when nothing is left queued; False when Redis could not be written."""
    now = clock.now()
    queued = Revocation.objects.filter(published_at__isnull=True)
    if republish_recent:
        queued = Revocation.objects.filter(
            Q(published_at__isnull=True) | Q(published_at__gte=now - timedelta(seconds=REPUBLISH_SECONDS))
        )
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
        Revocation.objects.filter(published_at__lt=now - timedelta(seconds=REPUBLISH_SECONDS)).delete()
    _State.pending = False
    return True


def waiting() -> int:
    """How many revocations Redis has not taken yet."""
    return Revocation.objects.filter(published_at__isnull=True).count()


def sync_if_due() -> None:
    """Called before the session check trusts Redis: replay the outbox if this
    process has seen Redis fail, or if the periodic check is due. Costs nothing
    otherwise."""
    now = time.monotonic()
    if store.take_outage_seen():
        _State.pending = _State.republish = True
    poll = auth_settings().revocation_poll_seconds
    due = poll > 0 and now >= _State.next_poll
    if not (_State.pending or due) or now < _State.retry_at or store.is_marked_down():
        # While Redis is marked down the session check asks the database anyway.
        return
    try:
        ok = publish_pending(republish_recent=_State.republish)
    except DatabaseError as exc:
        # Nothing can be revoked while the database is away, and Redis keeps answering:
        # try again at the next periodic check, so that a database that times out
        # costs one slow request per interval, not one per second.
        logger.warning("could not read the revocation outbox: %s", exc)
        _State.pending = True
        _State.retry_at = now + max(poll, RETRY_SECONDS)
        return
    if ok:
        _State.next_poll = now + poll
        _State.retry_at = 0.0
        _State.republish = False
    else:
        _State.pending = True
        _State.retry_at = now + RETRY_SECONDS
