import io
import math
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tokens import clock
from tokens.models import RevokeReason, Rotation, SecurityEvent, Session

DAY = timedelta(days=1)


def make_sessions(user, count, *, created_days_ago, idle_in, absolute_in, revoked=False):
    now = clock.now()
    created = now - created_days_ago * DAY
    Session.objects.bulk_create(
        Session(
            id=uuid.uuid4(),
            user=user,
            created_at=created,
            rotated_at=created,
            idle_expires_at=now + idle_in,
            absolute_expires_at=now + absolute_in,
            revoked_at=now - DAY if revoked else None,
            revoke_reason=RevokeReason.LOGOUT if revoked else "",
        )
        for _ in range(count)
    )
    return count


def make_events(count, *, days_ago):
    created = clock.now() - days_ago * DAY
    SecurityEvent.objects.bulk_create(
        SecurityEvent(kind=SecurityEvent.Kind.LOGIN_FAILED, created_at=created, username="x") for _ in range(count)
    )


def populate(user, n):
    """n x 10 sessions and n x 16 events: some expired long ago, some recently, some alive."""
    make_sessions(user, 4 * n, created_days_ago=20, idle_in=-10 * DAY, absolute_in=10 * DAY)  # idle long ago
    make_sessions(user, 1 * n, created_days_ago=3, idle_in=-1 * DAY, absolute_in=27 * DAY)  # idle yesterday
    make_sessions(user, 2 * n, created_days_ago=31, idle_in=5 * DAY, absolute_in=-1 * DAY)  # cap reached
    make_sessions(user, 1 * n, created_days_ago=1, idle_in=6 * DAY, absolute_in=29 * DAY, revoked=True)
    make_sessions(user, 2 * n, created_days_ago=1, idle_in=6 * DAY, absolute_in=29 * DAY)  # alive
    make_events(12 * n, days_ago=120)
    make_events(4 * n, days_ago=10)


@pytest.fixture
def crowded(alice):
    populate(alice, 300)  # 3000 sessions, 4800 events


@pytest.fixture
def some(alice):
    populate(alice, 10)  # 100 sessions, 160 events


def run(*args):
    out = io.StringIO()
    call_command("cleanup_sessions", *args, stdout=out)
    return out.getvalue().strip()


def deletes(queries, table):
    return [q for q in queries if q["sql"].startswith("DELETE") and table in q["sql"]]


def test_cleanup_deletes_expired_sessions_and_old_events_in_batches(crowded):
    with CaptureQueriesContext(connection) as ctx:
        output = run("--batch-size", "400")

    assert output == "Deleted 2100 expired session(s) and 3600 security event(s)."
    now = clock.now()
    assert Session.objects.count() == 900
    assert not Session.objects.filter(idle_expires_at__lte=now).exists()
    assert not Session.objects.filter(absolute_expires_at__lte=now).exists()
    assert Session.objects.filter(revoked_at__isnull=False).count() == 300  # ended, not yet expired: kept
    assert SecurityEvent.objects.count() == 1200
    assert len(deletes(ctx.captured_queries, "tokens_session")) == math.ceil(2100 / 400)
    assert len(deletes(ctx.captured_queries, "tokens_securityevent")) == math.ceil(3600 / 400)


def test_cleanup_keeps_sessions_expired_more_recently_than_session_days(some):
    output = run("--session-days", "3", "--event-days", "200")

    assert output == "Deleted 40 expired session(s) and 0 security event(s)."
    assert Session.objects.count() == 60  # those expired a day ago stay, for now
    assert SecurityEvent.objects.count() == 160


def test_cleanup_event_days_sets_the_log_retention(some):
    output = run("--event-days", "5")

    assert output == "Deleted 70 expired session(s) and 160 security event(s)."
    assert not SecurityEvent.objects.exists()


def test_cleanup_dry_run_counts_and_deletes_nothing(some):
    output = run("--dry-run")

    assert output == "Would delete 70 expired session(s) and 120 security event(s)."
    assert (Session.objects.count(), SecurityEvent.objects.count()) == (100, 160)


def test_cleanup_run_twice_deletes_nothing_the_second_time(some):
    run()

    assert run() == "Deleted 0 expired session(s) and 0 security event(s)."


def test_cleanup_leaves_live_sessions_working(alice, logged_in):
    make_sessions(alice, 50, created_days_ago=20, idle_in=-10 * DAY, absolute_in=10 * DAY)

    assert run() == "Deleted 50 expired session(s) and 0 security event(s)."
    assert logged_in.me().status_code == 200
    assert logged_in.refresh().status_code == 200


@pytest.mark.parametrize(
    "args",
    [("--batch-size", "0"), ("--event-days", "-1"), ("--session-days", "soon"), ("--pause", "-1")],
)
def test_cleanup_with_bad_arguments_refuses_to_run(some, args):
    with pytest.raises(CommandError):
        run(*args)

    assert (Session.objects.count(), SecurityEvent.objects.count()) == (100, 160)


def test_cleanup_deletes_expired_sessions_with_their_story(at_noon, time_machine):
    session = Session.objects.get()
    assert at_noon.refresh().status_code == 200
    assert Rotation.objects.filter(session=session).count() == 1
    time_machine.shift(40 * DAY)

    call_command("cleanup_sessions", stdout=io.StringIO())

    assert not Session.objects.filter(pk=session.pk).exists()
    assert not Rotation.objects.exists()
