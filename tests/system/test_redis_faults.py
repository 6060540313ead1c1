"""Redis killed, flushed and slow, on a private redis-server (never the shared one).

The contract under a Redis fault: authenticated requests answer correctly from the
database or 503; no revoked token is accepted, except that a Redis which missed a
revocation and kept the session's "alive" entry may be believed, by a process that
never saw it fail, until that process's next outbox check
(AUTH_REVOCATION_POLL_SECONDS); refresh succeeds durably or answers 503
`service_unavailable`; login fails closed (503); and when Redis is back the service
resumes by itself, with revocation and reuse detection intact.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import redis
import requests
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from tests.factories import PASSWORD, user_create
from tests.servers import PrivateRedis
from tokens import revocations, store
from tokens.models import Session

from .conftest import (
    REQUEST_TIMEOUT,
    THROTTLES_OFF,
    Pair,
    access_name,
    claims_of,
    code_of,
    csrf_token,
    env_float,
    env_int,
    eventually,
    login,
    login_pair,
    logout,
    me,
    pair_from,
    post,
    refresh,
    refresh_name,
    sets_token_cookie,
    storm,
)
from .proxy import TcpProxy

pytestmark = pytest.mark.system

FAULT_CLIENTS = env_int("SYSTEM_FAULT_CLIENTS", 4)
OUTAGE_SECONDS = env_float("SYSTEM_REDIS_OUTAGE_SECONDS", 4)
SLOW_REQUESTS = env_int("SYSTEM_SLOW_REQUESTS", 24)
SLOW_REDIS_DELAY = env_float("SYSTEM_SLOW_REDIS_DELAY", 3)

UNAVAILABLE = (503, "service_unavailable")


class LiveClient(threading.Thread):
    """An SPA tab calling the API and refreshing every few calls, recording every
    answer it gets. Access tokens outlive the test, so that the revoked tokens
    below are refused for being revoked, not for being old."""

    def __init__(self, base: str, pair: Pair, csrf: str, stop: threading.Event) -> None:
        super().__init__()
        self.base, self.pair, self.csrf, self.stop = base, pair, csrf, stop
        self.answers: Counter = Counter()
        self.unexpected: list[str] = []

    def run(self) -> None:
        calls = 0
        while not self.stop.is_set():
            calls += 1
            if calls % 4 == 0:
                self._refresh()
            try:
                response = me(self.base, self.pair.access)
            except requests.RequestException as exc:
                self.unexpected.append(f"me transport: {exc!r}")
                return
            outcome = (response.status_code, code_of(response))
            self.answers["me", *outcome] += 1
            if response.status_code == 200:
                if str(response.json()["id"]) != claims_of(self.pair.access)["user_id"]:
                    self.unexpected.append(f"me: {response.text}")
            elif outcome != UNAVAILABLE:
                self.unexpected.append(f"me: {response.status_code} {response.text}")
            time.sleep(0.05)

    def _refresh(self) -> None:
        try:
            response = refresh(self.base, self.pair.refresh, csrf=self.csrf)
        except requests.RequestException as exc:
            self.unexpected.append(f"refresh transport: {exc!r}")
            return
        outcome = (response.status_code, code_of(response))
        self.answers["refresh", *outcome] += 1
        if response.status_code == 200:
            self.pair = pair_from(response)
        elif outcome != UNAVAILABLE or sets_token_cookie(response):
            self.unexpected.append(f"refresh: {response.status_code} {response.text}")
        else:
            self.unexpected.append(f"refresh: {response.status_code} {response.text}")


class RevokedProbe(threading.Thread):
    """Keeps presenting the tokens of an ended session; none may ever work."""

    def __init__(self, base: str, pair: Pair, csrf: str, stop: threading.Event) -> None:
        super().__init__()
        self.base, self.pair, self.csrf, self.stop = base, pair, csrf, stop
        self.answers: Counter = Counter()

    def run(self) -> None:
        while not self.stop.is_set():
            for kind, response in (
                ("me", me(self.base, self.pair.access)),
                ("refresh", refresh(self.base, self.pair.refresh, csrf=self.csrf)),
            ):
                self.answers[kind, response.status_code, code_of(response)] += 1
            time.sleep(0.05)


@pytest.fixture
def redis_servers(private_redis, start_servers):
    """Two instances on the private Redis, with a 1 s grace window."""
    env = {
        **THROTTLES_OFF,
        "REDIS_URL": private_redis.url,
        "AUTH_REFRESH_GRACE_SECONDS": "1",
        "AUTH_REVOCATION_POLL_SECONDS": "1",
    }
    return start_servers(2, **env)


def test_redis_killed_mid_run_answers_from_database_or_503_and_resumes_empty(private_redis, redis_servers):
    servers = redis_servers
    base = servers[0].url
    for name in ["gone", "late", "rotated", "newcomer"] + [f"live{i}" for i in range(FAULT_CLIENTS)]:
        user_create(username=name)
    csrf = csrf_token(base)

    gone = login_pair(base, "gone", csrf=csrf)
    assert logout(base, gone, csrf=csrf).status_code == 204
    late = login_pair(base, "late", csrf=csrf)  # logged out while Redis is down
    rotated_old = login_pair(base, "rotated", csrf=csrf)
    rotated_new = pair_from(refresh(base, rotated_old.refresh, csrf=csrf))

    stop = threading.Event()
    clients = [
        LiveClient(servers[i % 2].url, login_pair(base, f"live{i}", csrf=csrf), csrf, stop)
        for i in range(FAULT_CLIENTS)
    ]
    probe = RevokedProbe(servers[1].url, gone, csrf, stop)
    for thread in [*clients, probe]:
        thread.start()
    try:
        time.sleep(1)
        private_redis.kill()

        # Login fails closed: without Redis there is no bound on password guessing.
        response = login(base, "newcomer", csrf=csrf)
        assert (response.status_code, code_of(response)) == UNAVAILABLE
        assert not sets_token_cookie(response)
        # Logout still ends the session: the database is the record. It answers 503
        # because Redis could not be told (a partitioned Redis would come back with
        # the session still marked alive), so the client retries once Redis is back.
        response = logout(servers[1].url, late, csrf=csrf)
        assert response.status_code in {204, 503}, response.text
        if response.status_code == 503:
            assert code_of(response) == "service_unavailable"
            cleared = response.headers.get("Set-Cookie", "")
            assert f'{access_name()}=""' in cleared and f'{refresh_name()}=""' in cleared
        response = me(base, late.access)
        assert (response.status_code, code_of(response)) == (401, "session_revoked")
        time.sleep(OUTAGE_SECONDS)

        # Back, on the same port, with nothing in it. The app is not restarted.
        private_redis.restart()
        assert eventually(lambda: login(base, "newcomer", csrf=csrf).status_code == 200)
        time.sleep(2)
    finally:
        stop.set()
        for thread in [*clients, probe]:
            thread.join(timeout=30)

    for client in clients:
        assert client.unexpected == []
        # Each client's latest refresh token is the session's current one: every
        # rotation it was told about was recorded durably.
        session = Session.objects.get(pk=client.pair.session_id)
        assert (session.generation, session.revoked_at) == (client.pair.generation, None)
        assert me(base, pair_from(refresh(base, client.pair.refresh, csrf=csrf)).access).status_code == 200
    assert sum(client.answers["refresh", 200, None] for client in clients) > 0
    assert set(probe.answers) <= {("me", 401, "session_revoked"), ("refresh", 401, "session_revoked")}
    # The logout Redis missed while it was down was replayed into the new Redis.
    assert eventually(lambda: revocations.waiting() == 0, timeout=20)

    # Revoked and rotated stay dead after Redis came back empty; reuse still detected.
    for pair in (gone, late):
        assert (me(base, pair.access).status_code, code_of(me(base, pair.access))) == (401, "session_revoked")
        response = refresh(servers[1].url, pair.refresh, csrf=csrf)
        assert (response.status_code, code_of(response)) == (401, "session_revoked")
    assert me(base, rotated_new.access).status_code == 200
    response = refresh(servers[1].url, rotated_old.refresh, csrf=csrf)
    assert (response.status_code, code_of(response)) == (401, "refresh_token_reused")
    response = me(base, rotated_new.access)
    assert (response.status_code, code_of(response)) == (401, "session_revoked")


def test_redis_flushed_in_grace_window_owner_replay_gets_the_same_successor(private_redis, start_servers):
    # Our documented outcome: successors are re-minted from the database row, so an
    # empty Redis changes nothing for the owner's replay: same bytes, no new generation.
    servers = start_servers(2, **THROTTLES_OFF, REDIS_URL=private_redis.url)
    user_create(username="owner")
    csrf = csrf_token(servers[0].url)
    first = login_pair(servers[0].url, "owner", csrf=csrf)
    response = refresh(servers[0].url, first.refresh, csrf=csrf)
    assert response.status_code == 200
    successor = pair_from(response)

    redis.Redis(port=private_redis.port).flushall()

    replays = storm(8, lambda i: refresh(servers[i % 2].url, first.refresh, csrf=csrf))
    assert [r.status_code for r in replays] == [200] * 8
    assert {pair_from(r) for r in replays} == {successor}
    session = Session.objects.get(pk=first.session_id)
    assert (session.generation, session.revoked_at) == (2, None)
    assert me(servers[1].url, successor.access).json()["username"] == "owner"


@pytest.mark.parametrize("fault", ["latency", "sigstop"])
def test_slow_redis_answers_correctly_or_503_within_socket_timeouts(private_redis, start_servers, fault):
    proxy = TcpProxy(private_redis.port).start()
    servers = start_servers(
        2, **THROTTLES_OFF, REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0", AUTH_ACCESS_TOKEN_LIFETIME="60"
    )
    base = servers[0].url
    for name in ("alive", "gone", "newcomer"):
        user_create(username=name)
    csrf = csrf_token(base)
    alive = login_pair(base, "alive", csrf=csrf)
    gone = login_pair(base, "gone", csrf=csrf)
    assert logout(base, gone, csrf=csrf).status_code == 204

    try:
        if fault == "latency":
            proxy.delay = SLOW_REDIS_DELAY
        else:
            private_redis.pause()

        # More requests at once than there are workers: with 0.5 s socket timeouts
        # and the breaker, each is answered in bounded time instead of piling up.
        def call(i: int) -> requests.Response:
            kind = i % 4
            if kind == 0:
                return me(servers[i % 2].url, alive.access)
            if kind == 1:
                return me(servers[i % 2].url, gone.access)
            if kind == 2:
                return login(servers[i % 2].url, "newcomer", csrf=csrf)
            return refresh(servers[i % 2].url, alive.refresh, csrf=csrf)

        results = storm(SLOW_REQUESTS, call)
        for i, response in enumerate(results):
            assert isinstance(response, requests.Response), response
            outcome = (response.status_code, code_of(response))
            kind = i % 4
            if kind == 0:
                assert outcome == UNAVAILABLE or response.json()["username"] == "alive", response.text
            elif kind == 1:
                assert outcome in {(401, "session_revoked"), UNAVAILABLE}, response.text
            elif kind == 2:
                assert outcome == UNAVAILABLE, response.text
                assert not sets_token_cookie(response)
            else:
                assert response.status_code in {200, 503}, response.text
        refreshed = [pair_from(r) for i, r in enumerate(results) if i % 4 == 3 and r.status_code == 200]
        assert len(set(refreshed)) <= 1
    finally:
        proxy.restore()
        if fault == "sigstop":
            private_redis.resume()

    # Healthy again without a restart. Whatever the refreshes above answered, the
    # database moved at most one generation, and the first token is now either the
    # current one or its predecessor inside the grace window: both yield generation 2.
    assert eventually(lambda: login(base, "newcomer", csrf=csrf).status_code == 200)
    response = refresh(base, alive.refresh, csrf=csrf)
    assert response.status_code == 200, response.text
    current = pair_from(response)
    assert set(refreshed) <= {current}
    session = Session.objects.get(pk=alive.session_id)
    assert (session.generation, session.revoked_at, current.generation) == (2, None, 2)
    assert me(servers[1].url, current.access).json()["username"] == "alive"
    response = me(base, gone.access)
    assert (response.status_code, code_of(response)) == (401, "session_revoked")
    proxy.stop()


def test_logout_while_redis_is_slow_is_not_undone_when_redis_heals(private_redis, start_servers):
    # Redis keeps its data through a slowdown (unlike a restart), so a revocation it
    # could not take must not leave the old "alive" entry to be believed afterwards.
    proxy = TcpProxy(private_redis.port).start()
    servers = start_servers(1, **THROTTLES_OFF, REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0")
    base = servers[0].url
    user_create(username="late")
    csrf = csrf_token(base)
    late = login_pair(base, "late", csrf=csrf)
    assert me(base, late.access).status_code == 200  # Redis holds the session as alive

    proxy.delay = SLOW_REDIS_DELAY
    try:
        response = logout(base, late, csrf=csrf)
    finally:
        proxy.restore()
    # Either the logout took effect, or it said it could not (and the client retries).
    assert response.status_code in {204, 503}, response.text
    if response.status_code == 503:
        assert logout(base, late, csrf=csrf).status_code == 204

    assert eventually(lambda: login(base, "late", csrf=csrf).status_code == 200)
    response = me(base, late.access)
    assert (response.status_code, code_of(response)) == (401, "session_revoked")
    proxy.stop()


def _stale_entry(port: int, pair: Pair) -> str | None:
    raw = redis.Redis(port=port).get(store.session_key(pair.session_id, claims_of(pair.access)["user_id"]))
    return raw.decode() if raw is not None else None


@pytest.fixture
def partitioned(private_redis, start_servers):
    """Host A reaches Redis through a proxy the test can cut; host B reaches it
    directly. Alice's session is cached alive; then A is cut off and she logs out
    through A: the database ends the session, Redis keeps its "alive" entry."""

    def setup(*, poll_a: str, poll_b: str, workers_a: int = 2):
        proxy = TcpProxy(private_redis.port).start()
        (host_a,) = start_servers(
            1,
            workers=workers_a,
            **THROTTLES_OFF,
            AUTH_REVOCATION_POLL_SECONDS=poll_a,
            REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0",
        )
        (host_b,) = start_servers(
            1, workers=2, **THROTTLES_OFF, AUTH_REVOCATION_POLL_SECONDS=poll_b, REDIS_URL=private_redis.url
        )
        user_create(username="alice")
        csrf = csrf_token(host_a.url)
        pair = login_pair(host_a.url, "alice", csrf=csrf)
        assert me(host_b.url, pair.access).status_code == 200
        assert _stale_entry(private_redis.port, pair) == f"1:{claims_of(pair.access)['user_id']}"

        proxy.cut()
        response = logout(host_a.url, pair, csrf=csrf)
        assert (response.status_code, code_of(response)) == UNAVAILABLE, response.text
        assert Session.objects.get(pk=pair.session_id).revoke_reason == "logout"
        assert revocations.waiting() == 1
        assert _stale_entry(private_redis.port, pair) == f"1:{claims_of(pair.access)['user_id']}"
        # Host A, cut off, answers from the database: refused at once.
        response = me(host_a.url, pair.access)
        assert (response.status_code, code_of(response)) == (401, "session_revoked")
        return proxy, host_a, host_b, pair

    proxies: list[TcpProxy] = []

    def tracked(**polls):
        proxy, *rest = setup(**polls)
        proxies.append(proxy)
        return (proxy, *rest)

    yield tracked
    for proxy in proxies:
        proxy.stop()


def test_partition_during_logout_other_host_refuses_from_its_next_outbox_check(private_redis, partitioned):
    proxy, host_a, host_b, pair = partitioned(poll_a="1", poll_b="1")

    # Host B never lost Redis; within its 1 s outbox check it replays the logout.
    assert eventually(lambda: code_of(me(host_b.url, pair.access)) == "session_revoked", timeout=20)
    assert _stale_entry(private_redis.port, pair) == "0:logout"
    assert revocations.waiting() == 0
    answers = Counter((r.status_code, code_of(r)) for r in (me(host_b.url, pair.access) for _ in range(20)))
    assert answers == Counter({(401, "session_revoked"): 20})

    # Healed, and then flushed: the database still says ended.
    proxy.restore()
    assert eventually(lambda: code_of(me(host_a.url, pair.access)) == "session_revoked")
    redis.Redis(port=private_redis.port).flushall()
    for host in (host_a, host_b):
        response = me(host.url, pair.access)
        assert (response.status_code, code_of(response)) == (401, "session_revoked")


def test_partition_during_logout_without_polling_the_sweep_command_ends_it(private_redis, partitioned):
    _, _, host_b, pair = partitioned(poll_a="0", poll_b="0")
    # No periodic check on B: it believes the stale entry until the sweep runs.
    assert me(host_b.url, pair.access).status_code == 200

    caches = {alias: {**conf, "LOCATION": private_redis.url} for alias, conf in settings.CACHES.items()}
    with override_settings(CACHES=caches):
        call_command("publish_revocations")

    response = me(host_b.url, pair.access)
    assert (response.status_code, code_of(response)) == (401, "session_revoked")
    assert _stale_entry(private_redis.port, pair) == "0:logout"
    assert revocations.waiting() == 0


def test_partition_heals_the_cut_off_host_replays_on_reconnect(private_redis, partitioned):
    # No process polls: only host A's worker, which saw Redis fail, can replay, and
    # it does so on its first request once it can reach Redis again.
    proxy, host_a, host_b, pair = partitioned(poll_a="0", poll_b="0", workers_a=1)
    assert me(host_b.url, pair.access).status_code == 200  # the stale entry, believed

    proxy.restore()

    def a_request_replayed_it() -> bool:
        response = me(host_a.url, pair.access)
        assert (response.status_code, code_of(response)) == (401, "session_revoked")
        return _stale_entry(private_redis.port, pair) == "0:logout"

    assert eventually(a_request_replayed_it)

    response = me(host_b.url, pair.access)
    assert (response.status_code, code_of(response)) == (401, "session_revoked")
    assert revocations.waiting() == 0


# A restored Redis is refused by every process within its outbox check; this is
# the documented bound (AUTH_REVOCATION_POLL_SECONDS), plus the time a loaded
# machine takes to answer the requests that observe it.
RESTORE_POLL_SECONDS = env_float("SYSTEM_RESTORE_POLL_SECONDS", 2)
RESTORE_SLACK_SECONDS = env_float("SYSTEM_RESTORE_SLACK_SECONDS", 5)


@pytest.fixture
def restorable_redis(tmp_path):
    """A private redis-server with RDB persistence in tmp_path (saved when the test says)."""
    server = PrivateRedis(snapshot_dir=tmp_path).start()
    yield server
    server.kill()


def _verify(base: str, access: str) -> requests.Response:
    return requests.get(base + "/api/auth/verify/", cookies={access_name(): access}, timeout=REQUEST_TIMEOUT)


def test_redis_restarted_from_snapshot_refuses_revoked_tokens_on_every_host_within_the_poll(
    restorable_redis, start_servers
):
    servers = start_servers(
        2, **THROTTLES_OFF, REDIS_URL=restorable_redis.url, AUTH_REVOCATION_POLL_SECONDS=str(RESTORE_POLL_SECONDS)
    )
    for name in ("alice", "bob", "carol"):
        user_create(username=name)
    csrf = csrf_token(servers[0].url)
    alice = login_pair(servers[0].url, "alice", csrf=csrf)
    bob = login_pair(servers[1].url, "bob", csrf=csrf)
    carol = login_pair(servers[0].url, "carol", csrf=csrf)
    for server in servers:
        for pair in (alice, bob, carol):
            assert me(server.url, pair.access).status_code == 200
    alive = {pair: _stale_entry(restorable_redis.port, pair) for pair in (alice, bob)}
    assert alive == {pair: f"1:{claims_of(pair.access)['user_id']}" for pair in (alice, bob)}

    restorable_redis.snapshot()
    assert logout(servers[0].url, alice, csrf=csrf).status_code == 204
    response = post(
        servers[1].url,
        "/api/auth/password/change/",
        csrf=csrf,
        cookies={access_name(): bob.access, refresh_name(): bob.refresh},
        json={"old_password": PASSWORD, "new_password": "a brand new passphrase 42"},
    )
    assert response.status_code == 200, response.text
    revoked = {"alice": alice, "bob": bob}
    for server in servers:
        for pair in revoked.values():
            assert code_of(me(server.url, pair.access)) == "session_revoked"

    # A crash: killed, and started again from the snapshot, on the same port.
    restorable_redis.restart()
    assert {pair: _stale_entry(restorable_redis.port, pair) for pair in (alice, bob)} == alive

    def refused_everywhere() -> bool:
        return all(
            code_of(check(server.url, pair.access)) == "session_revoked"
            for server in servers
            for pair in revoked.values()
            for check in (me, _verify)
        )

    assert eventually(refused_everywhere, timeout=RESTORE_POLL_SECONDS + RESTORE_SLACK_SECONDS, interval=0.1)
    assert _stale_entry(restorable_redis.port, alice) == "0:logout"
    assert _stale_entry(restorable_redis.port, bob) == "0:password_change"
    # And from then on, on every worker of every host; the session left alone still works.
    answers = Counter(
        (name, response.status_code, code_of(response))
        for server in servers
        for _ in range(3 * len(server.worker_pids()))
        for name, pair in revoked.items()
        for response in (me(server.url, pair.access), _verify(server.url, pair.access))
    )
    assert set(answers) == {("alice", 401, "session_revoked"), ("bob", 401, "session_revoked")}
    for server in servers:
        assert me(server.url, carol.access).json()["username"] == "carol"
