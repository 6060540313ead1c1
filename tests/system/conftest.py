"""The system tier: real gunicorn instances, private redis-servers, TCP proxies.

Every count is read from the environment with a default sized for CI on 2 cores
(see the README, "The system tier"). The helpers speak raw HTTP the way an SPA in
a browser does: CSRF cookie echoed in X-CSRFToken, tokens only in cookies.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.servers import ROOT, Gunicorn, PrivateRedis
from tokens.conf import auth_settings


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


WORKERS = env_int("SYSTEM_WORKERS", 4)
# A request that hangs fails the test instead of hanging the run.
REQUEST_TIMEOUT = env_float("SYSTEM_REQUEST_TIMEOUT", 20)

# Storms and loops send far more requests than a person would; the throttles are
# tested on their own (test_login_throttle_*), so here they must not interfere.
THROTTLES_OFF = {
    "AUTH_THROTTLE_LOGIN": "100000/min",
    "AUTH_THROTTLE_LOGIN_IP": "100000/min",
    "AUTH_THROTTLE_LOGIN_USER": "100000/min",
    "AUTH_THROTTLE_PASSWORD_CHANGE": "100000/min",
    "AUTH_THROTTLE_REFRESH": "100000/min",
    "AUTH_THROTTLE_REFRESH_IP": "100000/min",
}


def access_name() -> str:
    return auth_settings().access_cookie_name


def refresh_name() -> str:
    return auth_settings().refresh_cookie_name


def claims_of(token: str) -> dict:
    """The payload of one of our tokens, unverified: only to group what the server sent."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@dataclass(frozen=True)
class Pair:
    access: str
    refresh: str

    @property
    def session_id(self) -> str:
        return claims_of(self.refresh)["sid"]

    @property
    def generation(self) -> int:
        return claims_of(self.refresh)["gen"]


def pair_from(response: requests.Response) -> Pair:
    return Pair(access=response.cookies[access_name()], refresh=response.cookies[refresh_name()])


def sets_token_cookie(response: requests.Response) -> bool:
    """True if the response hands out a non-empty auth cookie."""
    return any(response.cookies.get(name) for name in (access_name(), refresh_name()))


def code_of(response: requests.Response) -> str | None:
    try:
        return response.json().get("code")
    except ValueError:
        return None


def csrf_token(base: str) -> str:
    response = requests.get(base + "/api/auth/csrf/", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 204, response.text
    return response.cookies["csrftoken"]


def post(base: str, path: str, *, csrf: str, cookies: dict | None = None, **kwargs) -> requests.Response:
    return requests.post(
        base + path,
        headers={"X-CSRFToken": csrf, **kwargs.pop("headers", {})},
        cookies={"csrftoken": csrf, **(cookies or {})},
        timeout=REQUEST_TIMEOUT,
        **kwargs,
    )


def login(base: str, username: str, *, csrf: str, **kwargs) -> requests.Response:
    from tests.factories import PASSWORD

    return post(base, "/api/auth/login/", csrf=csrf, json={"username": username, "password": PASSWORD}, **kwargs)


def login_pair(base: str, username: str, *, csrf: str) -> Pair:
    response = login(base, username, csrf=csrf)
    assert response.status_code == 200, response.text
    return pair_from(response)


def refresh(base: str, token: str, *, csrf: str) -> requests.Response:
    return post(base, "/api/auth/refresh/", csrf=csrf, cookies={refresh_name(): token})


def logout(base: str, pair: Pair, *, csrf: str) -> requests.Response:
    return post(
        base, "/api/auth/logout/", csrf=csrf, cookies={access_name(): pair.access, refresh_name(): pair.refresh}
    )


def me(base: str, access: str) -> requests.Response:
    return requests.get(base + "/api/auth/me/", cookies={access_name(): access}, timeout=REQUEST_TIMEOUT)


def storm(count: int, call: Callable[[int], requests.Response]) -> list[requests.Response | Exception]:
    """Run `call(i)` for i in range(count) in threads released together by a barrier."""
    barrier = threading.Barrier(count)
    results: list[requests.Response | Exception] = [RuntimeError("not run")] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def eventually(check: Callable[[], bool], *, timeout: float = 10, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


class TokenLog:
    """Every pair the server handed out, by session and generation, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.refresh: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.access: dict[str, set[str]] = defaultdict(set)

    def add(self, pair: Pair) -> Pair:
        with self._lock:
            self.refresh[pair.session_id][pair.generation].add(pair.refresh)
            self.access[pair.session_id].add(pair.access)
        return pair

    def assert_no_fork(self, session_id: str) -> None:
        forks = {gen: tokens for gen, tokens in self.refresh[session_id].items() if len(tokens) != 1}
        assert forks == {}, f"generations with more than one refresh token: {forks}"

    def newest(self, session_id: str) -> tuple[int, str]:
        gen = max(self.refresh[session_id])
        return gen, next(iter(self.refresh[session_id][gen]))

    def all_refresh(self, session_id: str) -> list[str]:
        return [token for tokens in self.refresh[session_id].values() for token in tokens]


def assert_all_refused(base: str, log: TokenLog, session_id: str, *, csrf: str) -> None:
    """Every access and refresh token ever minted for the session is refused now."""
    from tokens.models import Session

    assert Session.objects.get(pk=session_id).revoked_at is not None
    for access in log.access[session_id]:
        response = me(base, access)
        assert response.status_code == 401, response.text
        assert code_of(response) in {"session_revoked", "access_token_expired"}, response.text
    for token in log.all_refresh(session_id):
        response = refresh(base, token, csrf=csrf)
        assert response.status_code == 401, response.text
        assert code_of(response) == "session_revoked", response.text
        assert not sets_token_cookie(response)


def assert_one_live_generation(servers: list[Gunicorn], log: TokenLog, session_id: str, *, csrf: str) -> None:
    """Post-run invariant: no fork, the database agrees with the newest token, and
    only the newest refresh token can move the session; presenting an older one
    again once it is past its window ends it, after which every token minted for it
    is refused."""
    from tokens.models import ROTATIONS_KEPT, Session

    log.assert_no_fork(session_id)
    newest_gen, newest = log.newest(session_id)
    session = Session.objects.get(pk=session_id)
    assert (session.generation, session.revoked_at) == (newest_gen, None)

    if newest_gen > 1:
        # The predecessor never starts a new generation: inside the grace window it
        # gets the newest pair again, after it the session ends.
        predecessor = next(iter(log.refresh[session_id][newest_gen - 1]))
        response = refresh(servers[-1].url, predecessor, csrf=csrf)
        if response.status_code == 200:
            assert pair_from(response).refresh == newest
        else:
            assert code_of(response) == "refresh_token_reused", response.text
            assert_all_refused(servers[0].url, log, session_id, csrf=csrf)
            return
        assert Session.objects.get(pk=session_id).generation == newest_gen

    # The newest one is live: it moves the session on, once per generation.
    current = newest
    for step in (1, 2):
        response = refresh(servers[0].url, current, csrf=csrf)
        assert response.status_code == 200, response.text
        current = log.add(pair_from(response)).refresh
        assert Session.objects.get(pk=session_id).generation == newest_gen + step

    # `newest` is two generations back now. Inside the window of its rotation it
    # gets the current pair and moves nothing; once more rotations followed than
    # the session keeps, it is reuse whatever the clock says.
    response = refresh(servers[-1].url, newest, csrf=csrf)
    if response.status_code == 200:
        assert pair_from(response).refresh == current
        assert Session.objects.get(pk=session_id).generation == newest_gen + 2
        for _ in range(ROTATIONS_KEPT - 1):
            response = refresh(servers[0].url, current, csrf=csrf)
            assert response.status_code == 200, response.text
            current = log.add(pair_from(response)).refresh
        response = refresh(servers[-1].url, newest, csrf=csrf)
    assert response.status_code == 401, response.text
    assert code_of(response) == "refresh_token_reused"
    assert_all_refused(servers[0].url, log, session_id, csrf=csrf)


@pytest.fixture
def start_servers(transactional_db):
    """Start gunicorn instances on the test database; all stopped at teardown."""
    started: list[Gunicorn] = []

    def start(count: int = 2, *, workers: int = WORKERS, **env: str) -> list[Gunicorn]:
        servers = [Gunicorn(workers=workers, **env) for _ in range(count)]
        for server in servers:
            started.append(server.start())
        return servers

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def gunicorn_pair(start_servers, request):
    """Two instances (SYSTEM_WORKERS workers each, different ports) sharing the shared
    Redis and the test database; env overrides via indirect parametrization."""
    overrides = {**THROTTLES_OFF, **(getattr(request, "param", {}) or {})}
    return start_servers(2, **overrides)


@pytest.fixture
def private_redis():
    server = PrivateRedis().start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def duotoken_verify_site(tmp_path_factory) -> Path:
    """clients/python as its users get it: built into a wheel, installed from that
    wheel into a directory of its own (its dependencies are the virtualenv's)."""
    work = tmp_path_factory.mktemp("duotoken-verify")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet"]

    def run(*args: str) -> None:
        done = subprocess.run([*pip, *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    run("wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"), str(ROOT / "clients" / "python"))
    (wheel,) = (work / "dist").iterdir()
    assert wheel.name == "duotoken_verify-0.1.0-py3-none-any.whl"
    run("install", "--no-deps", "--no-index", "--target", str(work / "site"), str(wheel))
    return work / "site"
