"""A Redis that goes back in time (restarted from its RDB snapshot, as after a
crash, an OOM kill or a reboot) brings back "alive" entries written before a
revocation. No process may believe them: the one whose connection had to reconnect
refuses from its first request, and every other from its next outbox check, which
compares the server with the one the outbox was last replayed into."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from tokens import revocations, store
from tokens.models import Revocation, Session

from .factories import PASSWORD, user_create
from .servers import PrivateRedis

REVOKED = (401, "session_revoked")


def _caches_at(url: str) -> dict:
    return {alias: {**conf, "LOCATION": url} for alias, conf in settings.CACHES.items()}


def _outcome(response) -> tuple[int, str | None]:
    return response.status_code, (response.json().get("code") if response.status_code != 200 else None)


@pytest.fixture
def restorable(tmp_path):
    """A private redis-server keeping an RDB snapshot in tmp_path; the app uses it."""
    server = PrivateRedis(snapshot_dir=tmp_path).start()
    with override_settings(CACHES=_caches_at(server.url)):
        yield server
    server.kill()


def _entry(server: PrivateRedis, session_id: str, user_id: str) -> str | None:
    raw = redis.Redis(port=server.port).get(store.session_key(session_id, user_id))
    return raw.decode() if raw is not None else None


def _logged_in(make_spa, username: str):
    user = user_create(username=username)
    client = make_spa()
    assert client.login(username).status_code == 200
    assert client.me().status_code == 200  # Redis holds the session as alive
    return client, str(Session.objects.get(user=user, revoked_at__isnull=True).pk), str(user.pk)


def _holding(make_spa, client):
    copy = make_spa()
    copy.set_cookie("access", client.cookie("access"))
    return copy


def _as_another_process(server: PrivateRedis):
    """A process that never saw Redis go away: its own connections (another URL for
    the same server, so another pool), no outage seen, no check due."""
    store._Breaker.down_until = 0.0
    store._Breaker.outage_seen = False
    revocations._State.pending = revocations._State.republish = revocations._State.untrusted = False
    revocations._State.retry_at = 0.0
    revocations._State.next_poll = time.monotonic() + 3600
    return override_settings(CACHES=_caches_at(f"redis://localhost:{server.port}/0"))


def test_redis_restored_from_snapshot_after_logout_is_refused_from_the_first_request(restorable, make_spa, db):
    alice, sid, uid = _logged_in(make_spa, "alice")
    attacker = _holding(make_spa, alice)
    restorable.snapshot()
    assert alice.logout().status_code == 204
    assert _entry(restorable, sid, uid) == "0:logout"

    restorable.restart()
    assert _entry(restorable, sid, uid) == f"1:{uid}"  # the snapshot brought it back

    # No periodic check is due; the reconnect that redis-py made silently is seen.
    assert _outcome(attacker.me()) == REVOKED
    assert _outcome(attacker.get("/api/auth/verify/")) == REVOKED
    assert _entry(restorable, sid, uid) == "0:logout"  # written again
    assert _outcome(attacker.me()) == REVOKED


def test_redis_restarted_a_reconnect_fails_no_login(restorable, make_spa, db):
    _logged_in(make_spa, "alice")

    restorable.restart()

    # The login throttle (fail closed) goes through redis-py's reconnect.
    client = make_spa()
    assert client.login("alice").status_code == 200
    assert client.me().status_code == 200


def test_redis_restored_from_snapshot_is_refused_by_a_process_that_never_saw_it_from_its_next_check(
    restorable, make_spa, db, time_machine
):
    time_machine.move_to("2026-11-23 12:00:00+00:00", tick=False)
    alice, sid, uid = _logged_in(make_spa, "alice")
    attacker = _holding(make_spa, alice)
    restorable.snapshot()
    assert alice.logout().status_code == 204
    # Longer ago than a minute, well within the access token's lifetime.
    time_machine.shift(timedelta(seconds=120))
    bob, _, _ = _logged_in(make_spa, "bob")
    assert bob.logout().status_code == 204  # a publish, which drops rows past the window

    restorable.restart()
    with _as_another_process(restorable):
        # A revocation published after the restart, which would bring a high-water mark
        # up to date without the lost ones.
        carol, _, _ = _logged_in(make_spa, "carol")
        assert carol.logout().status_code == 204
        assert _entry(restorable, sid, uid) == f"1:{uid}"
        # Until its periodic check, this process believes Redis: the documented bound.
        assert attacker.me().status_code == 200

        revocations._State.next_poll = time.monotonic()  # the check is due
        assert _outcome(attacker.me()) == REVOKED

        assert _entry(restorable, sid, uid) == "0:logout"
        assert _outcome(attacker.get("/api/auth/verify/")) == REVOKED


def test_redis_restored_from_snapshot_after_password_change_is_refused_at_the_next_check(restorable, make_spa, db):
    alice, sid, uid = _logged_in(make_spa, "alice")
    attacker = _holding(make_spa, alice)
    restorable.snapshot()
    change = {"old_password": PASSWORD, "new_password": "a brand new passphrase 42"}
    assert alice.send("post", "/api/auth/password/change/", change).status_code == 200

    restorable.restart()
    with _as_another_process(restorable):
        revocations._State.next_poll = time.monotonic()
        assert _outcome(attacker.me()) == REVOKED
    assert _entry(restorable, sid, uid) == "0:password_change"


def test_redis_restored_from_snapshot_after_a_session_was_deleted_is_refused_at_the_next_check(
    restorable, make_spa, db
):
    alice, sid, uid = _logged_in(make_spa, "alice")
    attacker = _holding(make_spa, alice)
    restorable.snapshot()
    Session.objects.filter(pk=sid).delete()  # as the admin, or deleting the user, does
    assert _entry(restorable, sid, uid) == "0:deleted"
    assert revocations.waiting() == 0

    restorable.restart()
    with _as_another_process(restorable):
        revocations._State.next_poll = time.monotonic()
        assert _outcome(attacker.me()) == REVOKED
    assert _entry(restorable, sid, uid) == "0:deleted"


def test_redis_restored_while_unreachable_for_the_replay_is_not_believed(restorable, make_spa, db):
    alice, sid, uid = _logged_in(make_spa, "alice")
    attacker = _holding(make_spa, alice)
    restorable.snapshot()
    assert alice.logout().status_code == 204
    restorable.restart()

    with _as_another_process(restorable):
        revocations._State.next_poll = time.monotonic()
        # The replay cannot be written (Redis refuses writes), so this Redis stays unvouched.
        redis.Redis(port=restorable.port).config_set("min-replicas-to-write", 1)
        assert _outcome(attacker.me()) == REVOKED  # answered by the database
        # The breaker closes before the replay is retried: still not believed.
        store._Breaker.down_until = 0.0
        assert _outcome(attacker.me()) == REVOKED
        revocations._State.retry_at = 0.0
        assert _outcome(attacker.me()) == REVOKED
        assert _entry(restorable, sid, uid) == f"1:{uid}"

        redis.Redis(port=restorable.port).config_set("min-replicas-to-write", 0)
        revocations._State.retry_at = 0.0
        store._Breaker.down_until = 0.0
        assert _outcome(attacker.me()) == REVOKED
        assert _entry(restorable, sid, uid) == "0:logout"
        assert not revocations._State.untrusted


def test_published_revocation_is_kept_one_access_lifetime_for_a_restored_redis(restorable, make_spa, db, time_machine):
    time_machine.move_to("2026-11-23 12:00:00+00:00", tick=False)
    alice, _, _ = _logged_in(make_spa, "alice")
    assert alice.logout().status_code == 204

    time_machine.shift(timedelta(seconds=61))
    bob, _, _ = _logged_in(make_spa, "bob")
    assert bob.logout().status_code == 204
    assert Revocation.objects.count() == 2

    time_machine.shift(timedelta(seconds=revocations.republish_seconds() - 60))
    carol, _, _ = _logged_in(make_spa, "carol")
    assert carol.logout().status_code == 204
    assert Revocation.objects.count() == 2  # alice's went; bob's is still within the window
    assert revocations.republish_seconds() >= 300 + 60
