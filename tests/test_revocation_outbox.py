"""A revocation that Redis missed (a partition, a timeout) while Redis kept the
session's "alive" entry: the outbox row written with the revocation is replayed
until Redis has it, so no process accepts the session for longer than
AUTH_REVOCATION_POLL_SECONDS."""

import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from tokens import revocations, store
from tokens.models import Revocation, Session

from .servers import free_port


def _caches_at(url):
    return {alias: {**conf, "LOCATION": url} for alias, conf in settings.CACHES.items()}


def _redis_value(alice):
    sid = str(Session.objects.get().pk)
    raw = redis.Redis.from_url(settings.REDIS_URL).get(store.session_key(sid, str(alice.pk)))
    return raw.decode() if raw is not None else None


def _as_another_process():
    """Forget what this process saw: a process on a host that never lost Redis."""
    store._Breaker.down_until = 0.0
    store._Breaker.outage_seen = False
    revocations._State.pending = revocations._State.republish = False
    revocations._State.retry_at = 0.0
    revocations._State.next_poll = time.monotonic() + 3600


@pytest.fixture
def missed_logout(logged_in, alice, make_spa):
    """Alice's session is cached alive in Redis; her logout commits while Redis is
    unreachable, and Redis comes back with the stale "alive" entry. Returns an
    attacker holding her access token."""
    assert logged_in.me().status_code == 200
    captured = logged_in.cookie("access")
    assert _redis_value(alice) == f"1:{alice.pk}"
    with override_settings(CACHES=_caches_at(f"redis://127.0.0.1:{free_port()}/0")):
        response = logged_in.logout()
    assert response.status_code == 503
    assert response.json() == {
        "detail": "The service is temporarily unavailable; retry shortly.",
        "code": "service_unavailable",
    }
    assert Session.objects.get().revoke_reason == "logout"
    assert list(Revocation.objects.values_list("session_id", "user_id", "reason", "published_at")) == [
        (Session.objects.get().pk, str(alice.pk), "logout", None)
    ]
    assert _redis_value(alice) == f"1:{alice.pk}"  # Redis missed it
    attacker = make_spa()
    attacker.set_cookie("access", captured)
    return attacker


def test_missed_revocation_is_replayed_by_the_same_process_once_redis_answers(missed_logout, alice):
    store._Breaker.down_until = 0.0  # the breaker's second has passed

    response = missed_logout.me()

    assert response.status_code == 401
    assert response.json()["code"] == "session_revoked"
    assert _redis_value(alice) == "0:logout"
    assert revocations.waiting() == 0


def test_missed_revocation_is_refused_by_another_process_from_its_next_poll(
    missed_logout, alice, django_assert_num_queries
):
    _as_another_process()
    # Until its periodic check, a process that never saw Redis fail believes Redis:
    # this is the documented bound (AUTH_REVOCATION_POLL_SECONDS).
    assert missed_logout.me().status_code == 200

    revocations._State.next_poll = time.monotonic()  # the check is due
    with django_assert_num_queries(3):  # read the outbox, mark it published, drop old rows
        response = missed_logout.me()

    assert (response.status_code, response.json()["code"]) == (401, "session_revoked")
    assert _redis_value(alice) == "0:logout"
    assert revocations.waiting() == 0
    with django_assert_num_queries(0):
        assert missed_logout.me().json()["code"] == "session_revoked"


def test_logout_retry_publishes_the_missed_revocation(missed_logout, alice):
    _as_another_process()

    assert missed_logout.logout().status_code == 204  # the same tokens, presented again

    assert _redis_value(alice) == "0:logout"
    assert revocations.waiting() == 0


def test_publish_revocations_command_replays_the_outbox(missed_logout, alice, capsys):
    _as_another_process()

    call_command("publish_revocations")

    assert capsys.readouterr().out == "Published 1 revocation(s); none is waiting.\n"
    assert _redis_value(alice) == "0:logout"
    assert missed_logout.me().json()["code"] == "session_revoked"


def test_publish_revocations_command_with_redis_away_fails_and_keeps_the_outbox(missed_logout):
    with (
        override_settings(CACHES=_caches_at(f"redis://127.0.0.1:{free_port()}/0")),
        pytest.raises(CommandError, match=r"Redis could not be written: 1 revocation\(s\) still waiting"),
    ):
        call_command("publish_revocations")

    assert revocations.waiting() == 1


def test_periodic_check_with_an_empty_outbox_costs_one_query(logged_in, django_assert_num_queries):
    logged_in.me()
    revocations._State.next_poll = time.monotonic()

    with django_assert_num_queries(1):
        assert logged_in.me().status_code == 200
    with django_assert_num_queries(0):
        assert logged_in.me().status_code == 200


def test_revocation_published_at_once_leaves_nothing_waiting(logged_in, alice):
    logged_in.me()

    assert logged_in.logout().status_code == 204

    assert _redis_value(alice) == "0:logout"
    assert revocations.waiting() == 0


def test_failover_that_lost_a_published_revocation_is_repaired_by_a_process_that_saw_it(logged_in, alice, make_spa):
    logged_in.me()
    attacker = make_spa()
    attacker.set_cookie("access", logged_in.cookie("access"))
    assert logged_in.logout().status_code == 204
    # A replica promoted before the revocation reached it: the "alive" entry is back.
    sid = str(Session.objects.get().pk)
    redis.Redis.from_url(settings.REDIS_URL).set(store.session_key(sid, str(alice.pk)), f"1:{alice.pk}")
    _as_another_process()
    store._Breaker.outage_seen = True  # the failover cost this process a failed command

    response = attacker.me()

    assert (response.status_code, response.json()["code"]) == (401, "session_revoked")
    assert _redis_value(alice) == "0:logout"


def test_published_revocations_are_dropped_after_the_republish_window(logged_in, make_spa, time_machine):
    time_machine.move_to("2026-11-23 12:00:00+00:00", tick=False)
    assert logged_in.logout().status_code == 204
    assert Revocation.objects.count() == 1

    time_machine.shift(timedelta(seconds=revocations.republish_seconds() + 1))
    other = make_spa()
    assert other.login().status_code == 200
    assert other.logout().status_code == 204

    assert Revocation.objects.count() == 1  # only the new one
