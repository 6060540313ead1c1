"""Benchmarks against the stock stack, side by side in one run.

    .venv/bin/python bench/run.py [--quick] [--history N] [--duration S]

Starts our service and a stock Django + Simple JWT baseline (bench/baseline/) under
the same gunicorn settings, each on its own fresh PostgreSQL database, with a private
redis-server, the servers pinned to one core and wrk to another; warms up, runs each
scenario at 16 and 64 connections, counts every response's status, reads database
transactions (pg_stat_database) and Redis commands (INFO commandstats) around each
run, and writes bench/results/latest.md, latest.json and latest.png. A run with any
unexpected status or socket error, or a realistic-traffic run that revisited a
session too soon, is reported as invalid, never as a number.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BASELINE = BENCH / "baseline"
WRK = BENCH / "wrk"
RESULTS = BENCH / "results"
RAW = RESULTS / "raw"
PYTHON = sys.executable

PG = "postgres://postgres@127.0.0.1:5432"
CSRF = "benchCsrfSecretbenchCsrfSecret32"  # 32 letters: a valid Django CSRF secret
PASSWORD = "bench-password-1"
# Databases are named after the checkout, so runs from two checkouts of the project
# on one PostgreSQL never drop each other's; ports are free ones, picked at start.
_CHECKOUT = re.sub(r"[^a-z0-9]+", "_", ROOT.name.lower()).strip("_")[:20] or "x"
DB_OURS, DB_LARGE, DB_HS, DB_BASE = (
    f"bench_{_CHECKOUT}_{n}" for n in ("duotoken", "duotoken_large", "duotoken_hs", "baseline")
)
# Realistic traffic: a session comes back only after this long, i.e. after the
# alive entry and user snapshot cached at its previous request have expired under
# the old AUTH_SESSION_CACHE_SECONDS (60 s), plus a margin.
REVISIT_AFTER = 65.0
HOT_SESSIONS = 100
CONNECTIONS = (16, 64)
LOGIN_CONNECTIONS = 4  # about one per worker: a login holds a worker for a whole hash

# Same keys and lifetimes on both sides. Access tokens outlive the whole run, so
# /me never measures an expiry. Throttle limits are raised (the scripts act from
# one IP); the throttle itself still runs on every login and refresh.
COMMON_ENV = {
    "DJANGO_READ_DOT_ENV": "false",
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "bench-django-secret-key-0123456789abcdefghijkl",
    "JWT_SIGNING_KEY": "bench-jwt-signing-key-0123456789abcdefghijklmn",
    "AUTH_ACCESS_TOKEN_LIFETIME": "7200",
    "PYTHONUNBUFFERED": "1",
}
# Ours signs with the default ES256 (a fixed P-256 bench key); the HS256 variant beside it
# shows what asymmetric signing costs on /me and refresh.
BENCH_PRIVATE_KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgztZqSbEsPNfZ/8Kb\n"
    "WpDOgeTXIDI8MZiy9UwJYmerP1uhRANCAAQGYXLRJ/wzNor3IwAAp2MFZH4Wc53F\n"
    "I7t2+KcaM5Yz1AdmBNLh8kBhCbBFtnyABWciJWRisJZ7/MGd04g9y0v/\n"
    "-----END PRIVATE KEY-----\n"
)
OURS_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "JWT_ALGORITHM": "ES256",
    "JWT_PRIVATE_KEY": BENCH_PRIVATE_KEY,
    "DATABASE_URL": f"{PG}/{DB_OURS}",
    "REDIS_URL": "",  # the private redis-server's, set in main()
    "AUTH_REDIS_PREFIX": "duotoken-bench",
    "AUTH_THROTTLE_LOGIN": "1000000/min",
    "AUTH_THROTTLE_LOGIN_IP": "1000000/min",
    "AUTH_THROTTLE_REFRESH_IP": "1000000/min",
}
BASE_ENV = {"DJANGO_SETTINGS_MODULE": "baseline.settings", "DATABASE_URL": f"{PG}/{DB_BASE}"}


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", flush=True)


def env_for(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "AUTH_", "DATABASE_"))}
    return {**env, **COMMON_ENV, **extra}


def manage(cwd: Path, extra_env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=cwd, env=env_for(extra_env), capture_output=True, text=True, check=False
    )
    if done.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def fresh_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def cores() -> tuple[int, int]:
    """(server core, load core): different ones, from the cores we may use."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        sys.exit("bench/run.py needs two cores: one for the servers, one for wrk.")
    return allowed[0], allowed[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of the run's own: INFO commandstats then counts only the
    benchmark's commands (not those of anything else using a shared Redis), and
    nothing is written to a Redis someone else relies on."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        import redis

        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.log_file = open(RAW / "redis-server.log", "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT)
        self.client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.1)
        self.stop()
        sys.exit(f"redis-server did not come up on port {self.port}; see {RAW / 'redis-server.log'}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log_file", None):
            self.log_file.close()


class Counters:
    """Work done per request, read from PostgreSQL and Redis themselves.

    Database: xact_commit + xact_rollback of the server's database in
    pg_stat_database. Django runs in autocommit, so every query outside an atomic
    block is one transaction, and an atomic block is one for all its queries. Backends
    publish these counters up to a second or so after the fact, so a reading waits
    until they stop moving. Redis: total calls in INFO commandstats (our INFO calls
    left out) and keyspace misses in INFO stats, of the private redis-server.
    """

    def __init__(self, redis_client) -> None:
        import psycopg

        self.pg = psycopg.connect(f"{PG}/postgres", autocommit=True)
        self.redis = redis_client

    def transactions(self, database: str) -> int:
        row = self.pg.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
        return int(row[0]) if row else 0

    def settled_transactions(self, database: str, timeout: float = 15.0) -> int:
        value, deadline = self.transactions(database), time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(1.1)
            again = self.transactions(database)
            if again == value:
                break
            value = again
        return value

    def redis_calls(self) -> tuple[int, int]:
        stats = self.redis.info("commandstats")
        calls = sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")
        return calls, int(self.redis.info("stats")["keyspace_misses"])

    def close(self) -> None:
        self.pg.close()


class Walk:
    """Sessions used in one fixed order, round and round: the realistic traffic shape,
    where a user comes back only after a pause. Records when each session was last
    used, so every run can say how soon a session was revisited at the least."""

    def __init__(self, name: str, path: Path, *, ready_at: float) -> None:
        self.name = name
        self.lines = [line for line in path.read_text().splitlines() if line]
        self.last = [ready_at] * len(self.lines)  # seeding wrote each one's Redis entries
        self.cursor = 0
        self.rate: float | None = None  # lines per second, from the warm-up

    def slice_file(self) -> Path:
        path = RAW / f"{self.name}-walk.txt"
        path.write_text("\n".join(self.lines[self.cursor :] + self.lines[: self.cursor]) + "\n")
        return path

    def wait_for(self, count: int) -> float:
        """Seconds to wait so that the next `count` sessions were last used long enough ago."""
        n = len(self.lines)
        newest = max(self.last[(self.cursor + k) % n] for k in range(min(count, n)))
        return max(0.0, REVISIT_AFTER - (time.time() - newest))

    def used(self, sent: int, started: float, ended: float) -> float:
        """Mark `sent` sessions as used in [started, ended]; the shortest revisit gap."""
        n = len(self.lines)
        gap = min((started - self.last[(self.cursor + k) % n] for k in range(min(sent, n))), default=float("inf"))
        if sent > n:  # wrapped within this one run
            gap = min(gap, (ended - started) * n / sent)
        for k in range(min(sent, n)):
            self.last[(self.cursor + k) % n] = ended
        self.cursor = (self.cursor + sent) % n
        return gap


class Server:
    def __init__(self, name: str, cwd: Path, app: str, port: int, extra_env: dict[str, str], core: int) -> None:
        self.name, self.cwd, self.app, self.port, self.env, self.core = name, cwd, app, port, extra_env, core
        self.database = urllib.parse.urlsplit(extra_env["DATABASE_URL"]).path.lstrip("/")
        self.log_path = RAW / f"{name}-gunicorn.log"
        self.proc: subprocess.Popen | None = None

    def start(self, probe: str) -> Server:
        # One settings file for both projects (not the service's own gunicorn.conf.py).
        cmd = ["taskset", "-c", str(self.core), PYTHON, "-m", "gunicorn", self.app,
               "--config", str(BENCH / "gunicorn_bench.py"), "--bind", f"127.0.0.1:{self.port}"]  # fmt: skip
        self.log_file = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            cmd, cwd=self.cwd, env=env_for(self.env), stdout=self.log_file, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"{self.name} gunicorn exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{probe}", timeout=1):
                    return self
            except OSError as exc:
                if getattr(exc, "code", None):  # an HTTP answer: it is up
                    return self
                time.sleep(0.2)
        self.stop()
        sys.exit(f"{self.name} gunicorn did not come up; see {self.log_path}")

    def cpu_seconds(self) -> float:
        """User + system CPU of the workers so far: CPU per request from this is not
        skewed by other load on the machine, unlike requests/s."""
        total = 0
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        for pid in [str(self.proc.pid), *children]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log_file", None):
            self.log_file.close()


@dataclass
class Run:
    label: str
    connections: int
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int = 0
    statuses: dict = field(default_factory=dict)
    invalid: str = ""
    rounds: list = field(default_factory=list)  # req/s of each round
    cpu_us: float | None = None  # server worker CPU per response
    db_per_req: float | None = None  # database transactions per response (pg_stat_database)
    redis_per_req: float | None = None  # Redis commands per response (INFO commandstats)
    misses_per_req: float | None = None  # Redis keyspace misses per response
    min_revisit_s: float | None = None  # realistic traffic: shortest gap before a session came back

    @property
    def valid(self) -> bool:
        return not self.invalid and self.rps is not None


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def combine(runs: list[Run]) -> Run:
    """One cell from its rounds: the median, and invalid if any round was."""
    out = Run(label=runs[0].label, connections=runs[0].connections)
    for run in runs:
        out.requests += run.requests
        for status, n in run.statuses.items():
            out.statuses[status] = out.statuses.get(status, 0) + n
    bad = [r.invalid for r in runs if not r.valid]
    if bad:
        out.invalid = bad[0]
        return out
    out.rounds = [round(r.rps, 1) for r in runs]
    out.rps = median([r.rps for r in runs])
    out.p50_ms = median([r.p50_ms for r in runs])
    out.p99_ms = median([r.p99_ms for r in runs])
    for name in ("cpu_us", "db_per_req", "redis_per_req", "misses_per_req"):
        values = [getattr(r, name) for r in runs if getattr(r, name) is not None]
        setattr(out, name, median(values) if values else None)
    gaps = [r.min_revisit_s for r in runs if r.min_revisit_s is not None]
    out.min_revisit_s = min(gaps) if gaps else None
    return out


class Pool:
    """Single-use credential lines, handed out in order, never twice."""

    def __init__(self, name: str, top_up) -> None:
        self.name, self.lines, self.cursor, self.top_up = name, [], 0, top_up

    def add(self, path: Path) -> None:
        self.lines += [line for line in path.read_text().splitlines() if line]

    @property
    def left(self) -> int:
        return len(self.lines) - self.cursor

    def slice_file(self) -> Path:
        path = RAW / f"{self.name}-slice.txt"
        path.write_text("\n".join(self.lines[self.cursor :]) + "\n")
        return path

    def used(self, sent: int) -> None:
        self.cursor += sent

    def ensure(self, count: int) -> None:
        if self.left < count:
            log(f"{self.name}: seeding {count - self.left} more single-use tokens")
            self.add(self.top_up(count - self.left))


@dataclass
class Target:
    key: str
    label: str
    url: str
    script: str
    creds: Path | None = None
    pool: Pool | None = None
    walk: Walk | None = None
    extra: dict = field(default_factory=dict)
    timeout: int = 10


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server_core, self.load_core = cores()
        self.seq = 0
        self.servers: dict[int, Server] = {}  # by port
        self.counters: Counters | None = None

    def wrk(self, target: Target, connections: int, duration: float, *, warm_up: bool = False) -> Run:
        self.seq += 1
        result = RAW / f"{self.seq:03d}-{target.key}-c{connections}{'-warmup' if warm_up else ''}.json"
        if target.walk:
            walk = target.walk
            wait = walk.wait_for(int((walk.rate or 3000) * duration * 1.5))
            if wait:
                log(f"{target.label}: waiting {wait:.0f} s (no session back sooner than {REVISIT_AFTER:g} s)")
                time.sleep(wait)
        creds = target.walk.slice_file() if target.walk else target.pool.slice_file() if target.pool else target.creds
        env = {
            **os.environ,
            "BENCH_WRK_DIR": str(WRK),
            "BENCH_RESULT": str(result),
            "BENCH_THREADS": "1",
            "BENCH_FILE": str(creds or ""),
            "BENCH_ONCE": "1" if target.pool else "0",
            "BENCH_CSRF": CSRF,
            "BENCH_PASSWORD": PASSWORD,
            **target.extra,
        }
        cmd = ["taskset", "-c", str(self.load_core), "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s",
               f"--timeout={target.timeout}s", "-s", str(WRK / target.script), target.url]  # fmt: skip
        server = self.servers.get(urllib.parse.urlsplit(target.url).port)
        counters = self.counters if server and not warm_up else None
        if counters:
            db_before, redis_before = counters.settled_transactions(server.database), counters.redis_calls()
        cpu_before = server.cpu_seconds() if server else None
        started = time.time()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        ended = time.time()
        run = Run(label=target.label, connections=connections)
        answered = json.loads(result.read_text())["requests"] if result.exists() else 0
        if cpu_before is not None and answered:
            run.cpu_us = 1e6 * (server.cpu_seconds() - cpu_before) / answered
        if counters and answered:
            (calls, misses), db_after = counters.redis_calls(), counters.settled_transactions(server.database)
            run.db_per_req = (db_after - db_before) / answered
            run.redis_per_req = (calls - redis_before[0]) / answered
            run.misses_per_req = (misses - redis_before[1]) / answered
        if done.returncode or not result.exists():
            run.invalid = f"wrk failed: {done.stderr.strip()[:200]}"
        else:
            data = json.loads(result.read_text())
            if target.pool:
                target.pool.used(data["sent"])
            if target.walk:
                run.min_revisit_s = target.walk.used(data["sent"], started, ended)
                if warm_up:
                    target.walk.rate = data["sent"] / max(0.1, ended - started)
            run.requests, run.statuses = data["requests"], data["statuses"]
            errors = {k: v for k, v in data["errors"].items() if v and k != "status"}
            unexpected = {s: n for s, n in data["statuses"].items() if s != "200"}
            if data["exhausted"]:
                run.invalid = f"ran out of single-use tokens ({data['exhausted']} reused)"
            elif unexpected:
                run.invalid = f"unexpected statuses {unexpected}"
            elif errors:
                run.invalid = f"socket errors {errors}"
            elif data["requests"] == 0:
                run.invalid = "no responses"
            elif target.walk and not warm_up and run.min_revisit_s < REVISIT_AFTER:
                run.invalid = f"a session came back after only {run.min_revisit_s:.0f} s (needs {REVISIT_AFTER:g} s)"
            else:
                run.rps = data["requests"] / (data["duration_us"] / 1e6)
                run.p50_ms = data["latency_us"]["p50"] / 1000
                run.p99_ms = data["latency_us"]["p99"] / 1000
        what = run.invalid
        if run.valid:
            what = f"{run.rps:8.1f} req/s  p50 {run.p50_ms:7.1f} ms  p99 {run.p99_ms:7.1f} ms"
            what += f"  server CPU {run.cpu_us or 0:6.0f} us/response"
            if run.db_per_req is not None:
                what += f"  db {run.db_per_req:.2f}/req  redis {run.redis_per_req:.2f}/req"
                what += f" ({run.misses_per_req:.2f} misses)"
            if run.min_revisit_s is not None:
                what += f"  revisits >= {run.min_revisit_s:.0f} s"
        log(f"{'(warm-up) ' if warm_up else ''}{target.label} c{connections}: {what}")
        return run

    def group(self, targets: list[Target], connections: tuple[int, ...], duration: float) -> dict[str, list[Run]]:
        """Warm every target up, then measure them interleaved (round after round,
        target after target), so that a load spike from elsewhere on the machine
        hits all of them alike rather than one scenario."""
        rounds = self.args.rounds
        for target in targets:
            warm = self.wrk(target, connections[0], self.args.warmup, warm_up=True)
            if target.pool:
                rate = warm.rps or max(50.0, warm.requests / self.args.warmup)
                target.pool.ensure(int(rate * 1.6 * duration * len(connections) * rounds) + 500)
        raw: dict[tuple[str, int], list[Run]] = {}
        for _ in range(rounds):
            for c in connections:
                for target in targets:
                    raw.setdefault((target.key, c), []).append(self.wrk(target, c, duration))
        return {t.key: [combine(raw[(t.key, c)]) for c in connections] for t in targets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs, one round, a small database")
    parser.add_argument("--duration", type=float, help="seconds per measured run (default 10, quick 4)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per target (default 5, quick 2)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds; cells are medians (default 3, quick 1)")
    parser.add_argument(
        "--history", type=int, help="sessions in the 'flat with size' database (default 100000, quick 20000)"
    )
    parser.add_argument(
        "--realistic", type=int, default=20_000,
        help=f"sessions in the realistic /me traffic, each revisited only after {REVISIT_AFTER:g} s (default 20000)",
    )  # fmt: skip
    parser.add_argument(
        "--worker-class", default="gthread", choices=("gthread", "sync"),
        help="gunicorn workers for both sides: gthread with keep-alive (default, as deployed) or sync",
    )  # fmt: skip
    parser.add_argument("--no-profile", action="store_true", help="skip the pyinstrument profiles")
    args = parser.parse_args()
    args.duration = args.duration or (4 if args.quick else 10)
    args.warmup = args.warmup or (2 if args.quick else 5)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.revisit_after = REVISIT_AFTER
    COMMON_ENV["BENCH_WORKER_CLASS"] = args.worker_class
    args.history = args.history if args.history is not None else (20_000 if args.quick else 100_000)
    for tool in ("wrk", "taskset", "redis-server"):
        if not shutil.which(tool):
            sys.exit(f"bench/run.py needs {tool} on PATH (scripts/bench-setup.sh installs it).")

    RAW.mkdir(parents=True, exist_ok=True)
    for old in RAW.glob("*"):
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
    bench = Bench(args)
    started = time.monotonic()
    log(f"servers on core {bench.server_core}, wrk on core {bench.load_core}; "
        f"{args.rounds} x {args.duration:g} s runs; history {args.history:,} sessions")  # fmt: skip

    redis_server = PrivateRedis().start()
    atexit.register(redis_server.stop)  # also on sys.exit(): never leave it running
    OURS_ENV["REDIS_URL"] = redis_server.url
    log(f"private redis-server on port {redis_server.port}")
    large_env = {**OURS_ENV, "DATABASE_URL": f"{PG}/{DB_LARGE}", "AUTH_REDIS_PREFIX": "duotoken-bench-large"}
    hs_env = {**OURS_ENV, "JWT_ALGORITHM": "HS256", "DATABASE_URL": f"{PG}/{DB_HS}",
              "AUTH_REDIS_PREFIX": "duotoken-bench-hs"}  # fmt: skip
    log(f"fresh databases {DB_OURS}, {DB_LARGE}, {DB_HS}, {DB_BASE}")
    for name in (DB_OURS, DB_LARGE, DB_HS, DB_BASE):
        fresh_database(name)
    manage(ROOT, OURS_ENV, "migrate", "--noinput", "-v0")
    manage(ROOT, large_env, "migrate", "--noinput", "-v0")
    manage(ROOT, hs_env, "migrate", "--noinput", "-v0")
    manage(BASELINE, BASE_ENV, "migrate", "--noinput", "-v0")

    # First, so that the other seeding counts towards the pause before their first use.
    log(f"seeding {args.realistic:,} realistic-traffic sessions (one user each) on each side")
    manage(ROOT, OURS_ENV, "seed_sessions", "--tag", "real", "--sessions", str(args.realistic),
           "--out", str(RAW / "ours_real.txt"))  # fmt: skip
    ours_walk = Walk("ours_real", RAW / "ours_real.txt", ready_at=time.time())
    manage(BASELINE, BASE_ENV, "seed_baseline", "--tag", "real", "--users", str(args.realistic),
           "--out-dir", str(RAW / "base_real"))  # fmt: skip
    base_walk = Walk("base_real", RAW / "base_real" / "jwt_access.txt", ready_at=time.time())

    # The hot set: each session comes back every fraction of a second, so after its
    # first request it is always in Redis (the warm-up touches every one of them).
    me_users, first_refresh = HOT_SESSIONS, (2000 if args.quick else 5000)
    log(f"seeding {me_users} hot /me sessions, {first_refresh} refresh sessions and 64 login users on each side")
    manage(ROOT, OURS_ENV, "seed_sessions", "--tag", "me", "--sessions", str(me_users),
           "--out", str(RAW / "ours_me.txt"), "--login-users", "64", "--password", PASSWORD)  # fmt: skip
    manage(ROOT, hs_env, "seed_sessions", "--tag", "me", "--sessions", str(me_users), "--out", str(RAW / "hs_me.txt"))
    manage(BASELINE, BASE_ENV, "seed_baseline", "--tag", "b", "--users", str(me_users), "--refresh", str(first_refresh),
           "--login-users", "64", "--password", PASSWORD, "--out-dir", str(RAW / "base"))  # fmt: skip
    log(f"seeding the large database: {args.history:,} sessions of rotation history, then the measured sessions")
    if args.history:
        manage(ROOT, large_env, "seed_sessions", "--tag", "hist", "--history", str(args.history))
    manage(ROOT, large_env, "seed_sessions", "--tag", "me", "--sessions", str(me_users),
           "--out", str(RAW / "large_me.txt"))  # fmt: skip
    (RAW / "ours_login.txt").write_text("".join(f"bench-me-login-{i}\n" for i in range(64)))
    (RAW / "base_login.txt").write_text("".join(f"bench-b-login-{i}\n" for i in range(64)))

    batches = {"n": 0}

    def ours_seed(env: dict[str, str], name: str):
        def top_up(count: int) -> Path:
            batches["n"] += 1
            out = RAW / f"{name}_{batches['n']}.txt"
            manage(ROOT, env, "seed_sessions", "--tag", f"rf{batches['n']}", "--sessions", str(count),
                   "--users", str(min(count, 2000)), "--out", str(out))  # fmt: skip
            return out

        return top_up

    def base_seed(count: int) -> Path:
        batches["n"] += 1
        out = RAW / f"base{batches['n']}"
        manage(BASELINE, BASE_ENV, "seed_baseline", "--tag", f"b{batches['n']}", "--users", "200",
               "--refresh", str(count), "--out-dir", str(out))  # fmt: skip
        return out / "jwt_refresh.txt"

    ours_pool = Pool("ours_refresh", ours_seed(OURS_ENV, "ours_refresh"))
    large_pool = Pool("large_refresh", ours_seed(large_env, "large_refresh"))
    base_pool = Pool("base_refresh", base_seed)
    hs_pool = Pool("hs_refresh", ours_seed(hs_env, "hs_refresh"))
    ours_pool.add(ours_pool.top_up(first_refresh))
    hs_pool.add(hs_pool.top_up(first_refresh))
    large_pool.add(large_pool.top_up(first_refresh))
    base_pool.add(RAW / "base" / "jwt_refresh.txt")

    ours_port, large_port, base_port, hs_port = free_port(), free_port(), free_port(), free_port()
    servers = [
        Server("ours", ROOT, "config.wsgi:application", ours_port, OURS_ENV, bench.server_core),
        Server("ours-large", ROOT, "config.wsgi:application", large_port, large_env, bench.server_core),
        Server("baseline", BASELINE, "baseline.wsgi:application", base_port, BASE_ENV, bench.server_core),
        Server("ours-hs256", ROOT, "config.wsgi:application", hs_port, hs_env, bench.server_core),
    ]
    bench.servers = {server.port: server for server in servers}
    bench.counters = Counters(redis_server.client)
    probes = ("/api/auth/csrf/", "/api/auth/csrf/", "/api/floor/", "/api/auth/csrf/")
    for server, probe in zip(servers, probes, strict=True):
        server.start(probe)
    o, big, b, hs = (f"http://127.0.0.1:{port}" for port in (ours_port, large_port, base_port, hs_port))
    plus = f"+{args.history:,} sessions"
    no_csrf = {"BENCH_CSRF": ""}
    figures: dict = {}
    try:
        figures |= bench.group([
            Target("floor", "floor (DRF, no auth)", f"{b}/api/floor/", "plain_get.lua"),
            Target("me", f"ours /me, hot set ({HOT_SESSIONS} sessions)", f"{o}/api/auth/me/", "cookie_get.lua",
                   RAW / "ours_me.txt"),
            Target("verify", f"ours /verify (gateway check, cookie), hot set ({HOT_SESSIONS})", f"{o}/api/auth/verify/",
                   "cookie_get.lua", RAW / "ours_me.txt"),
            Target("me_hs256", f"ours /me, HS256, hot set ({HOT_SESSIONS})", f"{hs}/api/auth/me/", "cookie_get.lua",
                   RAW / "hs_me.txt"),
            Target("me_real", f"ours /me, realistic ({args.realistic:,} sessions)", f"{o}/api/auth/me/",
                   "cookie_get.lua", walk=ours_walk),
            Target("me_large", f"ours /me, {plus}", f"{big}/api/auth/me/", "cookie_get.lua", RAW / "large_me.txt"),
            Target("jwt_me", f"stock JWTAuthentication /me, hot set ({HOT_SESSIONS})", f"{b}/api/jwt/me/",
                   "bearer_get.lua", RAW / "base" / "jwt_access.txt"),
            Target("jwt_me_real", f"stock JWTAuthentication /me, realistic ({args.realistic:,})", f"{b}/api/jwt/me/",
                   "bearer_get.lua", walk=base_walk),
            Target("session_me", "stock DB session /me", f"{b}/api/session/me/", "session_get.lua",
                   RAW / "base" / "session.txt"),
        ], CONNECTIONS, args.duration)  # fmt: skip
        figures |= bench.group([
            Target("refresh", "ours refresh", f"{o}/api/auth/refresh/", "cookie_refresh.lua", pool=ours_pool),
            Target("refresh_large", f"ours refresh, {plus}", f"{big}/api/auth/refresh/", "cookie_refresh.lua",
                   pool=large_pool),
            Target("refresh_hs256", "ours refresh, HS256", f"{hs}/api/auth/refresh/", "cookie_refresh.lua",
                   pool=hs_pool),
            Target("jwt_refresh", "stock TokenRefreshView", f"{b}/api/token/refresh/", "body_refresh.lua",
                   pool=base_pool),
        ], CONNECTIONS, args.duration)  # fmt: skip
        figures |= bench.group([
            Target("auth_only", "stock authenticate() only", f"{b}/api/authenticate/", "login.lua",
                   RAW / "base_login.txt", extra=no_csrf, timeout=30),
            Target("login", "ours login", f"{o}/api/auth/login/", "login.lua", RAW / "ours_login.txt", timeout=30),
            Target("jwt_login", "stock TokenObtainPairView", f"{b}/api/token/", "login.lua", RAW / "base_login.txt",
                   extra=no_csrf, timeout=30),
        ], (LOGIN_CONNECTIONS,), max(args.duration, 8 if args.quick else 20))  # fmt: skip
    finally:
        for server in servers:
            server.stop()
        bench.counters.close()

    if not args.no_profile:
        log("profiling /me, refresh and login in-process (pyinstrument)")
        done = subprocess.run(
            [PYTHON, str(BENCH / "profile_hotpaths.py"), "--out", str(RESULTS)] + (["--quick"] if args.quick else []),
            cwd=ROOT, env=env_for(OURS_ENV), capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode:
            log(f"profiling failed:\n{done.stderr[-2000:]}")
        else:
            figures["_profile"] = json.loads((RESULTS / "profile.json").read_text())

    from report import write_report  # bench/report.py

    write_report(figures, args=args, elapsed=time.monotonic() - started, results=RESULTS)
    log(f"wrote {RESULTS / 'latest.md'}, latest.json and latest.png")


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    main()
