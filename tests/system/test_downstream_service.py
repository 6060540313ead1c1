"""A second Django project (tests/system/downstream/) trusts Duotoken's access tokens
through `duotoken-verify`, installed from the wheel its users would install, and
runs in its own gunicorn against a real Duotoken gunicorn: a live token is
accepted, a key rotation is followed, and a logout is refused within the stated
bound when the service asks Duotoken, or only at the token's expiry when it does not."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
import requests

from accounts.service_clients import service_client_create
from tests.factories import user_create
from tests.servers import ROOT, free_port, server_env, spawn, stop
from tokens.conf import auth_settings

from .conftest import (
    REQUEST_TIMEOUT,
    THROTTLES_OFF,
    access_name,
    claims_of,
    code_of,
    csrf_token,
    login_pair,
    logout,
)

pytestmark = pytest.mark.system

HERE = Path(__file__).resolve().parent  # tests/system, holding the downstream project
# The package's default revocation cache: the bound on how long a logout is missed.
CACHE_SECONDS = 5
# The package's default clock-skew allowance on `exp`.
LEEWAY = 5


class Downstream:
    """The downstream project in gunicorn (one worker, threads), with the package on
    its path from the installed wheel only."""

    def __init__(self, *, site: Path, duotoken_url: str, client: tuple[str, str]) -> None:
        self.port = free_port()
        conf = auth_settings()
        self.env = {
            "PATH": "/usr/bin:/bin",
            # The installed wheel and this project; never the checkout's clients/python.
            "PYTHONPATH": f"{site}:{HERE}",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "downstream.settings",
            "DUOTOKEN_URL": duotoken_url,
            "DUOTOKEN_ISSUER": conf.issuer,
            "DUOTOKEN_AUDIENCE": conf.audience,
            "DUOTOKEN_COOKIE_NAME": access_name(),
            "DUOTOKEN_CLIENT_ID": client[0],
            "DUOTOKEN_CLIENT_SECRET": client[1],
            "DOWNSTREAM_ORIGIN": self.url,
        }
        self.log = site.parent / f"downstream-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Downstream:
        cmd = [
            sys.executable, "-m", "gunicorn", "downstream.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", "1", "--worker-class", "gthread", "--threads", "4", "--timeout", "30",
            "--no-control-socket",
        ]  # fmt: skip
        # From tests/system, where no gunicorn.conf.py is: Duotoken's is not this project's.
        self._log_file = open(self.log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = spawn(cmd, cwd=HERE, env=self.env, stdout=self._log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"downstream gunicorn exited: {self.log.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/orders/", timeout=1).status_code == 401:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"downstream gunicorn did not come up in time: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        stop(self.proc)
        if getattr(self, "_log_file", None):
            self._log_file.close()

    def get(self, path: str, token: str) -> requests.Response:
        return requests.get(self.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT)


@pytest.fixture
def start_downstream(duotoken_verify_site):
    started: list[Downstream] = []

    def start(duotoken_url: str, client: tuple[str, str]) -> Downstream:
        started.append(Downstream(site=duotoken_verify_site, duotoken_url=duotoken_url, client=client).start())
        return started[-1]

    yield start
    for service in started:
        service.stop()


def _start(start_servers, start_downstream, **env: str):
    (duotoken,) = start_servers(1, workers=2, **THROTTLES_OFF, **env)
    user_create(username="alice")
    client, secret = service_client_create(name="orders")
    return duotoken, start_downstream(duotoken.url, (client.client_id, secret))


@pytest.fixture
def services(start_servers, start_downstream):
    """(Duotoken, the downstream service), with alice and a service client."""
    return _start(start_servers, start_downstream)


def manage(*args: str) -> str:
    """`manage.py ...` on the Duotoken side, as an operator runs it."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=server_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def poll(check, *, deadline: float) -> requests.Response:
    """Call `check()` until it answers something other than 200, or the deadline."""
    while True:
        response = check()
        if response.status_code != 200 or time.monotonic() >= deadline:
            return response
        time.sleep(0.2)


def test_downstream_service_runs_the_package_from_the_installed_wheel(services, duotoken_verify_site):
    duotoken, downstream = services
    pair = login_pair(duotoken.url, "alice", csrf=csrf_token(duotoken.url))

    body = downstream.get("/orders/", pair.access).json()

    assert Path(body["package"]).parent == duotoken_verify_site / "duotoken_verify"
    assert body["version"] == "0.1.0"


@pytest.mark.parametrize("path", ["/orders/", "/orders/checked-by-verify/", "/orders/checked-by-introspect/"])
def test_downstream_logged_in_users_access_token_is_accepted(services, path):
    duotoken, downstream = services
    pair = login_pair(duotoken.url, "alice", csrf=csrf_token(duotoken.url))

    by_header = downstream.get(path, pair.access)
    by_cookie = requests.get(downstream.url + path, cookies={access_name(): pair.access}, timeout=REQUEST_TIMEOUT)

    expected = {"user_id": claims_of(pair.access)["user_id"], "session_id": pair.session_id}
    for response in (by_header, by_cookie):
        assert response.status_code == 200, response.text
        assert {name: response.json()[name] for name in expected} == expected


def test_downstream_without_credentials_is_401_not_authenticated(services):
    _, downstream = services

    response = requests.get(downstream.url + "/orders/", timeout=REQUEST_TIMEOUT)

    assert (response.status_code, response.json()) == (
        401,
        {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"},
    )
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("path", ["/orders/", "/orders/checked-by-verify/", "/orders/checked-by-introspect/"])
def test_downstream_refresh_token_or_garbage_is_401_access_token_invalid(services, path):
    duotoken, downstream = services
    pair = login_pair(duotoken.url, "alice", csrf=csrf_token(duotoken.url))

    for token in (pair.refresh, "not-a-token", pair.access[:-4] + "AAAA"):
        response = downstream.get(path, token)
        assert (response.status_code, code_of(response)) == (401, "access_token_invalid"), response.text


def test_downstream_cookie_post_without_csrf_is_403_and_with_it_201(services):
    duotoken, downstream = services
    pair = login_pair(duotoken.url, "alice", csrf=csrf_token(duotoken.url))
    cookies = {access_name(): pair.access, "csrftoken": "a" * 32}

    refused = requests.post(downstream.url + "/orders/", cookies=cookies, timeout=REQUEST_TIMEOUT)
    accepted = requests.post(
        downstream.url + "/orders/",
        cookies=cookies,
        headers={"X-CSRFToken": "a" * 32, "Origin": downstream.url},
        timeout=REQUEST_TIMEOUT,
    )
    by_bearer = requests.post(
        downstream.url + "/orders/", headers={"Authorization": f"Bearer {pair.access}"}, timeout=REQUEST_TIMEOUT
    )

    assert (refused.status_code, code_of(refused)) == (403, "csrf_failed"), refused.text
    assert accepted.status_code == 201, accepted.text
    assert by_bearer.status_code == 201, by_bearer.text


def test_downstream_follows_a_key_rotation_without_a_restart(services):
    duotoken, downstream = services
    csrf = csrf_token(duotoken.url)
    old = login_pair(duotoken.url, "alice", csrf=csrf)
    assert downstream.get("/orders/", old.access).status_code == 200  # the key set is cached now

    added = re.fullmatch(r"Added \S+ key (\S+) \(published; promote it to sign\)\.\n", manage("signing_keys", "add"))
    assert added, "unexpected output of signing_keys add"
    manage("signing_keys", "promote", added[1], "--force")
    new = login_pair(duotoken.url, "alice", csrf=csrf)

    assert kid_of(new.access) == added[1] != kid_of(old.access)
    for pair in (new, old):
        response = downstream.get("/orders/", pair.access)
        assert response.status_code == 200, response.text
        assert response.json()["session_id"] == pair.session_id


@pytest.mark.parametrize("path", ["/orders/checked-by-verify/", "/orders/checked-by-introspect/"])
def test_downstream_asking_duotoken_refuses_a_logout_within_the_cache_bound(services, path):
    duotoken, downstream = services
    csrf = csrf_token(duotoken.url)
    pair = login_pair(duotoken.url, "alice", csrf=csrf)
    assert downstream.get(path, pair.access).status_code == 200  # and remembered as alive

    assert logout(duotoken.url, pair, csrf=csrf).status_code == 204
    response = poll(lambda: downstream.get(path, pair.access), deadline=time.monotonic() + CACHE_SECONDS + 5)

    assert (response.status_code, code_of(response)) == (401, "session_revoked"), response.text


def test_downstream_not_asking_duotoken_accepts_a_logged_out_token_until_it_expires(start_servers, start_downstream):
    # Short access tokens (and a grace window of at most half of them) so that the expiry comes quickly.
    duotoken, downstream = _start(
        start_servers, start_downstream, AUTH_ACCESS_TOKEN_LIFETIME="4", AUTH_REFRESH_GRACE_SECONDS="2"
    )
    csrf = csrf_token(duotoken.url)
    pair = login_pair(duotoken.url, "alice", csrf=csrf)
    assert logout(duotoken.url, pair, csrf=csrf).status_code == 204

    # The documented trade-off: the signature and claims are still good, so the
    # service that does not ask accepts it, while the one that asks refuses it.
    accepted = downstream.get("/orders/", pair.access)
    asked = downstream.get("/orders/checked-by-verify/", pair.access)
    assert accepted.status_code == 200, accepted.text
    assert (asked.status_code, code_of(asked)) == (401, "session_revoked"), asked.text

    exp = claims_of(pair.access)["exp"]
    response = poll(lambda: downstream.get("/orders/", pair.access), deadline=time.monotonic() + 4 + LEEWAY + 10)
    assert (response.status_code, code_of(response)) == (401, "access_token_expired"), response.text
    assert time.time() >= exp  # refused by its expiry, not before
