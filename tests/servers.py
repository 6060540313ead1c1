"""Real servers for the tests: gunicorn with several workers, and private
redis-servers that a test may kill, pause or flush (never the shared one)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent

# Every process the suite starts, so that none outlives it (see tests/conftest.py).
_started: list[subprocess.Popen] = []


def spawn(cmd: list[str], **kwargs) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, **kwargs)
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    """Ask a started process to exit with `sig`, and kill it if it has not within `timeout`."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def still_running() -> list[subprocess.Popen]:
    return [proc for proc in _started if proc.poll() is None]


def stop_all() -> list[str]:
    """Kill whatever the suite started and left running; returns their command lines."""
    leftovers = still_running()
    for proc in leftovers:
        proc.kill()
        proc.wait()
    _started[:] = []
    return [" ".join(map(str, proc.args)) for proc in leftovers]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """The URL of the database pytest-django created, for servers in other processes."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def server_env(**overrides: str) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DJANGO_READ_DOT_ENV="false",
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        AUTH_REDIS_PREFIX=settings.DUOTOKEN["REDIS_KEY_PREFIX"],
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


class Gunicorn:
    def __init__(
        self, *, workers: int = 4, port: int | None = None, tls: tuple[str, str] | None = None, **env: str
    ) -> None:
        self.workers = workers
        self.port = port or free_port()
        # (certfile, keyfile): gunicorn terminates TLS itself.
        self.tls = tls
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.log = ROOT / f".gunicorn-{self.port}.log"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Gunicorn:
        cmd = [
            sys.executable, "-m", "gunicorn", "config.wsgi:application",
            "--config", str(ROOT / "gunicorn.conf.py"),
            "--workers", str(self.workers), "--bind", f"127.0.0.1:{self.port}",
            "--timeout", "30", "--graceful-timeout", "5",
        ]  # fmt: skip
        if self.tls:
            cmd += ["--certfile", self.tls[0], "--keyfile", self.tls[1]]
        self._log_file = open(self.log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = spawn(cmd, cwd=ROOT, env=server_env(**self.env), stdout=self._log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-3000:]}")
            try:
                # As a TLS proxy would say, so that a server with SSL redirect on answers too.
                ready = requests.get(
                    self.url + "/api/auth/csrf/", headers={"X-Forwarded-Proto": "https"}, timeout=1, verify=False
                )
                if ready.status_code == 204:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not come up in time")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        # SIGQUIT: gunicorn's quick shutdown; a test server has nothing to drain.
        stop(self.proc, signal.SIGQUIT)
        if getattr(self, "_log_file", None):
            self._log_file.close()
        self.log.unlink(missing_ok=True)


class PrivateRedis:
    """A redis-server of the test's own, on a free port, keeping nothing on disk;
    with `snapshot_dir`, keeping an RDB snapshot there (written by `snapshot()`,
    never on its own) that a restart loads, as Redis's default persistence does."""

    def __init__(self, port: int | None = None, *, snapshot_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.snapshot_dir = snapshot_dir

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        if self.snapshot_dir is not None:
            cmd += ["--dir", str(self.snapshot_dir), "--dbfilename", "dump.rdb"]
        self.proc = spawn(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.5).ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError("private redis-server did not start")

    def restart(self) -> PrivateRedis:
        """A new redis-server on the same port, owned by this object (so that the
        test's own kill() at teardown stops it too): empty, or with `snapshot_dir`
        holding what the last snapshot() saved."""
        self.kill()
        return self.start()

    def snapshot(self) -> None:
        """Write the dataset to disk now (SAVE), as a scheduled RDB save would."""
        import redis

        assert self.snapshot_dir is not None, "this redis-server keeps nothing on disk"
        assert redis.Redis(port=self.port).save()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)
