"""`make serve` on a fresh checkout: scripts/serve.sh in a copy of this checkout (the
files git knows of, as on disk, without .env, databases or keys), sharing the
virtualenv, with REDIS_URL naming a port where nothing listens. It starts, writes a
development .env with short token lifetimes, starts a private redis-server,
prints a demo login that works through the API, and stops that redis-server when
it is stopped itself."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
import requests

from tests.servers import ROOT, free_port, spawn, stop

from .conftest import REQUEST_TIMEOUT

pytestmark = pytest.mark.system

STARTED_REDIS = re.compile(r"Started a private redis-server \(pid (\d+)\) on 127\.0\.0\.1:(\d+)")
LOGIN = re.compile(r"Log in at (\S+)/ as (\S+) / (\S+) \(also an admin")


def fresh_checkout(target: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to((ROOT / ".venv").resolve())
    return target


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_script_on_a_fresh_checkout_starts_redis_logs_in_the_demo_user_and_cleans_up(tmp_path, sig):
    checkout = fresh_checkout(tmp_path / "checkout")
    redis_port, http_port = free_port(), free_port()
    assert not answers(redis_port)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "GUNICORN_BIND": f"127.0.0.1:{http_port}",
        "GUNICORN_WORKERS": "1",
    }
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = spawn(["scripts/serve.sh"], cwd=checkout, env=env, stdout=out, stderr=subprocess.STDOUT)
    redis_pid = None
    try:
        base = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(base + "/api/auth/csrf/", timeout=1).status_code == 204:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        output = log.read_text()
        assert proc.poll() is None, output
        started = STARTED_REDIS.search(output)
        assert started, output
        redis_pid = int(started[1])
        assert (int(started[2]), answers(redis_port)) == (redis_port, True)

        # The printed login works through the API.
        (url, username, password) = LOGIN.search(output).groups()
        assert url == base
        csrf = requests.get(base + "/api/auth/csrf/", timeout=REQUEST_TIMEOUT).cookies["csrftoken"]
        response = requests.post(
            base + "/api/auth/login/",
            json={"username": username, "password": password},
            headers={"X-CSRFToken": csrf},
            cookies={"csrftoken": csrf},
            timeout=REQUEST_TIMEOUT,
        )
        assert response.status_code == 200, response.text
        assert response.json()["user"]["username"] == "demo"

        # Development defaults: short lifetimes, said so; the password only in the git-ignored .env.
        dot_env = (checkout / ".env").read_text()
        assert "AUTH_ACCESS_TOKEN_LIFETIME=20\n" in dot_env
        assert "AUTH_REFRESH_GRACE_SECONDS=10\n" in dot_env
        assert f"DUOTOKEN_DEMO_PASSWORD={password}\n" in dot_env
        ignored = subprocess.run(["git", "check-ignore", ".env", ".dev-jwt-key.pem"], cwd=ROOT, capture_output=True)
        assert ignored.stdout.decode().split() == [".env", ".dev-jwt-key.pem"]

        proc.send_signal(sig)
        proc.wait(timeout=60)
        assert "Stopped the private redis-server" in log.read_text()
        assert not alive(redis_pid)
        assert not answers(redis_port)
    finally:
        stop(proc)
        if redis_pid is not None and alive(redis_pid):
            os.kill(redis_pid, signal.SIGKILL)
