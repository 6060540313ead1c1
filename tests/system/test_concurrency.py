"""Two gunicorn instances sharing one Redis and one database, under concurrent load:
refresh storms, many tabs on one cookie jar, a thief racing the owner, and workers
killed mid-storm."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest
import requests

from tests.factories import user_create
from tokens.models import RevokeReason, SecurityEvent, Session

from .conftest import (
    Pair,
    TokenLog,
    assert_all_refused,
    assert_one_live_generation,
    claims_of,
    code_of,
    csrf_token,
    env_float,
    env_int,
    login_pair,
    logout,
    me,
    pair_from,
    refresh,
    storm,
)

pytestmark = pytest.mark.system

STORM_THREADS = env_int("SYSTEM_STORM_THREADS", 50)
STORM_ROUNDS = env_int("SYSTEM_STORM_ROUNDS", 30)
TABS = env_int("SYSTEM_TABS", 6)
TABS_SECONDS = env_float("SYSTEM_TABS_SECONDS", 30)
THIEF_OWNER_REFRESHES = env_int("SYSTEM_THIEF_OWNER_REFRESHES", 20)
KILL_ROUNDS = env_int("SYSTEM_KILL_ROUNDS", 5)
KILL_THREADS = env_int("SYSTEM_KILL_THREADS", 24)


def test_refresh_storm_over_two_instances_mints_one_successor_per_round(gunicorn_pair):
    servers = gunicorn_pair
    user_create(username="storm")
    csrf = csrf_token(servers[0].url)
    log = TokenLog()
    pair = log.add(login_pair(servers[0].url, "storm", csrf=csrf))
    sid = pair.session_id

    for _ in range(STORM_ROUNDS):
        before = Session.objects.get(pk=sid).generation
        token = pair.refresh
        results = storm(STORM_THREADS, lambda i, token=token: refresh(servers[i % 2].url, token, csrf=csrf))

        statuses = [r.status_code if isinstance(r, requests.Response) else repr(r) for r in results]
        assert statuses == [200] * STORM_THREADS
        successors = {pair_from(r) for r in results}
        assert len(successors) == 1
        pair = log.add(successors.pop())
        assert pair.generation == before + 1
        assert Session.objects.get(pk=sid).generation == before + 1

    assert me(servers[1].url, pair.access).json()["username"] == "storm"
    assert_one_live_generation(servers, log, sid, csrf=csrf)


class SharedJar:
    """One browser's cookie jar, shared by its tabs: the last response wins."""

    def __init__(self, pair: Pair) -> None:
        self._lock = threading.Lock()
        self.pair = pair

    def get(self) -> Pair:
        with self._lock:
            return self.pair

    def store(self, pair: Pair) -> None:
        with self._lock:
            self.pair = pair


# The grace window may be at most half the access lifetime (duotoken.E011).
@pytest.mark.parametrize(
    "gunicorn_pair", [{"AUTH_ACCESS_TOKEN_LIFETIME": "2", "AUTH_REFRESH_GRACE_SECONDS": "1"}], indirect=True
)
def test_many_tabs_sharing_one_cookie_jar_never_see_an_unexpected_401(gunicorn_pair):
    servers = gunicorn_pair
    user_create(username="tabs")
    csrf = csrf_token(servers[0].url)
    log = TokenLog()
    jar = SharedJar(log.add(login_pair(servers[0].url, "tabs", csrf=csrf)))
    sid = jar.get().session_id
    unexpected: list[str] = []
    counts = {"calls": 0, "refreshes": 0}
    counts_lock = threading.Lock()
    deadline = time.monotonic() + TABS_SECONDS

    def tab(i: int) -> None:
        base = servers[i % 2].url
        expired_in_a_row = 0
        while time.monotonic() < deadline and not unexpected:
            try:
                used = jar.get()
                response = me(base, used.access)
                with counts_lock:
                    counts["calls"] += 1
                if response.status_code == 200:
                    expired_in_a_row = 0
                    time.sleep(0.05)
                    continue
                code = code_of(response)
                if response.status_code != 401 or code not in {"access_token_expired", "access_token_stale"}:
                    unexpected.append(f"me: {response.status_code} {response.text}")
                    return
                if code == "access_token_stale":
                    # Another tab's refresh has committed: retry once its cookies are in.
                    time.sleep(0.05)
                    continue
                # A pair replayed in the grace window may itself be nearly expired;
                # the next refresh then uses the newest token. It never loops long.
                expired_in_a_row += 1
                if expired_in_a_row > 5:
                    unexpected.append("access_token_expired five times in a row")
                    return
                if jar.get().access != used.access:
                    # The client contract (README, "Using it from a single-page app"): a
                    # 401 for a token the jar no longer holds is stale; another tab has
                    # refreshed already, so retry instead of rotating once more.
                    continue
                presented = used.refresh
                answer = refresh(base, presented, csrf=csrf)
                with counts_lock:
                    counts["refreshes"] += 1
                if answer.status_code != 200:
                    gen = claims_of(presented)["gen"]
                    newest = max(log.refresh[sid])
                    unexpected.append(
                        f"refresh with gen {gen} (newest seen {newest}): {answer.status_code} {answer.text}"
                    )
                    return
                jar.store(log.add(pair_from(answer)))
            except requests.RequestException as exc:
                unexpected.append(f"transport: {exc!r}")
                return

    threads = [threading.Thread(target=tab, args=(i,)) for i in range(TABS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert unexpected == []
    # Several access lifetimes passed, so the tabs really did refresh, and keep going.
    assert counts["refreshes"] >= TABS_SECONDS / 2 - 1
    assert counts["calls"] > counts["refreshes"]
    log.assert_no_fork(sid)
    assert Session.objects.get(pk=sid).generation == max(log.refresh[sid])

    # Post-run invariant: after logout, nothing minted for this session works.
    assert logout(servers[1].url, jar.get(), csrf=csrf).status_code == 204
    assert Session.objects.get(pk=sid).revoke_reason == RevokeReason.LOGOUT
    assert_all_refused(servers[0].url, log, sid, csrf=csrf)


@pytest.mark.parametrize("gunicorn_pair", [{"AUTH_REFRESH_GRACE_SECONDS": "1"}], indirect=True)
def test_thief_replaying_an_old_refresh_token_ends_the_session_for_owner_and_thief(gunicorn_pair):
    servers = gunicorn_pair
    user_create(username="owner")
    csrf = csrf_token(servers[0].url)
    log = TokenLog()
    pair = log.add(login_pair(servers[0].url, "owner", csrf=csrf))
    sid = pair.session_id
    stolen = pair.refresh
    pair = log.add(pair_from(refresh(servers[0].url, stolen, csrf=csrf)))
    time.sleep(1.5)  # the stolen token is now past its grace window

    owner_end: list[requests.Response] = []
    thief_go = threading.Event()

    def owner() -> None:
        # Keeps refreshing until the session is taken from under it.
        current = pair
        for n in range(THIEF_OWNER_REFRESHES * 100):
            if n == THIEF_OWNER_REFRESHES:
                thief_go.set()
            response = refresh(servers[n % 2].url, current.refresh, csrf=csrf)
            if response.status_code != 200:
                owner_end.append(response)
                return
            current = log.add(pair_from(response))
        thief_go.set()

    thief_answer: list[requests.Response] = []
    owner_thread = threading.Thread(target=owner)
    owner_thread.start()
    assert thief_go.wait(timeout=60)
    thief_answer.append(refresh(servers[1].url, stolen, csrf=csrf))
    owner_thread.join(timeout=60)
    assert not owner_thread.is_alive()

    assert thief_answer[0].status_code == 401
    assert code_of(thief_answer[0]) == "refresh_token_reused"
    assert [(r.status_code, code_of(r)) for r in owner_end] == [(401, "session_revoked")]
    session = Session.objects.get(pk=sid)
    assert session.revoke_reason == RevokeReason.REUSE
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.REFRESH_REUSE, session_id=sid).count() == 1
    log.assert_no_fork(sid)
    assert_all_refused(servers[0].url, log, sid, csrf=csrf)


def test_worker_killed_during_refresh_storm_leaves_no_half_rotated_session(gunicorn_pair):
    servers = gunicorn_pair
    user_create(username="killed")
    csrf = csrf_token(servers[0].url)
    log = TokenLog()
    pair = log.add(login_pair(servers[0].url, "killed", csrf=csrf))
    sid = pair.session_id
    interrupted = 0

    for _ in range(KILL_ROUNDS):
        assert all(len(server.worker_pids()) == server.workers for server in servers) or _wait_for_workers(servers)
        before = Session.objects.get(pk=sid).generation
        token = pair.refresh
        victim_server = random.choice(servers)
        victim = random.choice(victim_server.worker_pids())

        def call(i: int, token=token) -> requests.Response:
            if i == 0:
                # One thread is the killer: it fires while the others are in flight.
                time.sleep(random.uniform(0.01, 0.05))
                os.kill(victim, signal.SIGKILL)
                return None
            return refresh(servers[i % 2].url, token, csrf=csrf)

        results = storm(KILL_THREADS + 1, call)[1:]
        failed = [r for r in results if not isinstance(r, requests.Response)]
        interrupted += len(failed)
        answered = [r for r in results if isinstance(r, requests.Response)]
        # A killed worker drops its connections: before the response, or halfway
        # through its body.
        dropped = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)
        assert all(isinstance(exc, dropped) for exc in failed), failed
        assert [r.status_code for r in answered] == [200] * len(answered), [r.text for r in answered]

        # The clients whose request died retry with the same token, inside the window.
        retries = [refresh(servers[0].url, token, csrf=csrf) for _ in failed]
        assert [r.status_code for r in retries] == [200] * len(retries), [r.text for r in retries]
        successors = {pair_from(r) for r in answered + retries}
        assert len(successors) == 1
        pair = log.add(successors.pop())
        session = Session.objects.get(pk=sid)
        assert (session.generation, session.revoked_at) == (before + 1, None)
        assert pair.generation == before + 1

    # The kill must have hit requests in flight, or this proved nothing.
    assert interrupted > 0
    assert_one_live_generation(servers, log, sid, csrf=csrf)


def _wait_for_workers(servers) -> bool:
    from .conftest import eventually

    return eventually(lambda: all(len(s.worker_pids()) == s.workers for s in servers), timeout=30)
