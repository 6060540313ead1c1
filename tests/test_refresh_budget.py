"""What one refresh costs, in counts rather than times: two Redis round trips (every
throttle bucket in one pipeline, then the session entry and user snapshot in
another) and two database transactions (the credential read, then the
compare-and-set with its story row in one commit)."""

import redis
import redis.connection
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from .servers import PrivateRedis


class RoundTrips:
    """Counts requests sent to Redis and waited for: a single command and a whole
    pipeline are one each (redis-py sends both through send_packed_command)."""

    def __init__(self, monkeypatch):
        self.count = 0
        send = redis.connection.AbstractConnection.send_packed_command

        def counted(conn, command, check_health=True):
            self.count += 1
            return send(conn, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)


def test_refresh_is_two_redis_round_trips(logged_in, monkeypatch):
    assert logged_in.refresh().status_code == 200  # the throttle script is loaded once per process
    trips = RoundTrips(monkeypatch)

    response = logged_in.refresh()

    assert response.status_code == 200
    assert trips.count == 2


def test_refresh_is_two_transactions_one_read_then_one_commit(logged_in):
    with CaptureQueriesContext(connection) as queries:
        response = logged_in.refresh()

    assert response.status_code == 200
    # The test runs inside a transaction, so the service's own transaction shows as a
    # savepoint: a read on its own, then the compare-and-set and its row together.
    shapes = [q["sql"].split()[0] for q in queries.captured_queries]
    assert shapes == ["SELECT", "SAVEPOINT", "UPDATE", "INSERT", "RELEASE"]


def test_refresh_after_redis_forgot_the_script_loads_it_again_and_is_counted(alice, make_spa):
    # A Redis of the test's own: SCRIPT FLUSH stands for a restart or a failover.
    server = PrivateRedis().start()
    try:
        with override_settings(CACHES={a: {**c, "LOCATION": server.url} for a, c in settings.CACHES.items()}):
            spa = make_spa()
            assert spa.login().status_code == 200
            assert spa.refresh().status_code == 200
            redis.Redis.from_url(server.url).script_flush()

            for _ in range(3):
                assert spa.refresh().status_code == 200
            client = redis.Redis.from_url(server.url)
            (bucket,) = [key for key in client.keys("*refresh_session*") if not key.endswith(b":strikes")]
            counted = int(client.get(bucket))
    finally:
        server.kill()

    # Every refresh was counted: the throttle (which fails open) did not just give up.
    assert counted == 4
