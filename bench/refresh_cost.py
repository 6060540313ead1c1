"""What a device-bound refresh costs beside a plain one, and whether binding touches /me.

    .venv/bin/python bench/refresh_cost.py [--quick] [--sqlite] [--rounds N] [--batch N] [--out FILE]

In-process, through Django's test client over HTTPS (`secure=True`: the full
middleware stack, CSRF enforced with the Origin a browser's fetch sends), with
AUTH_DBSC on and Secure cookies (the binding needs both, see tokens/checks.py W030),
on a throwaway PostgreSQL database (`bench_<checkout>_refresh_<pid>`, created here
and dropped at the end; `--sqlite`: a temporary SQLite file) and the Redis of
REDIS_URL under a key prefix of this run only, whose keys are deleted at the end.

Operations, measured side by side in the same process and the same run, in
interleaved rounds (each round runs every operation `--batch` times, in an order
that rotates from round to round, so that a load spike elsewhere on the machine
does not land on one side only):

- refresh, plain: POST /api/auth/refresh/ with the refresh cookie (and CSRF header).
- refresh, device-bound: POST /api/auth/dbsc/refresh/ with Sec-Secure-Session-Id
  (403 and a challenge), then again with Secure-Session-Response, the device's
  ES256 proof over that challenge (tests/dbsc_device.py). The device's signing is
  the browser's work, not the server's: it is timed apart and left out.
- /me for an unbound and for a bound session, each with one steady access token
  (the hot set: its claims are remembered per process after the first request).
- /me with the access token a refresh just set, unbound and bound (the first
  request of each new token, which verifies it).

Per operation: CPU µs (time.process_time around the request(s): the server's work
plus the test client's, and the client side of the PostgreSQL and Redis calls, not
their servers' CPU), wall µs (time.perf_counter), HTTP round trips, database
queries (CaptureQueriesContext) and Redis round trips (calls of redis-py's
send_packed_command: one per command or per pipeline). Times are the median over
rounds of each round's median (a load spike elsewhere moves a mean, rarely a
median); counts are means over every request (they should be whole numbers).
Every response's status is checked; any other status aborts.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PG = "postgres://postgres@127.0.0.1:5432"
PASSWORD = "bench-password-1"
ORIGIN = "https://testserver"
_CHECKOUT = re.sub(r"[^a-z0-9]+", "_", ROOT.name.lower()).strip("_")[:20] or "x"
DB_NAME = f"bench_{_CHECKOUT}_refresh_{os.getpid()}"
PREFIX = f"duotoken-bench-refresh-{_CHECKOUT}-{os.getpid()}"
# The same ES256 (P-256) key as bench/run.py's service.
BENCH_PRIVATE_KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgztZqSbEsPNfZ/8Kb\n"
    "WpDOgeTXIDI8MZiy9UwJYmerP1uhRANCAAQGYXLRJ/wzNor3IwAAp2MFZH4Wc53F\n"
    "I7t2+KcaM5Yz1AdmBNLh8kBhCbBFtnyABWciJWRisJZ7/MGd04g9y0v/\n"
    "-----END PRIVATE KEY-----\n"
)


def environment(database_url: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_READ_DOT_ENV": "false",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-django-secret-key-0123456789abcdefghijkl",
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "JWT_ALGORITHM": "ES256",
        "JWT_PRIVATE_KEY": BENCH_PRIVATE_KEY,
        "JWT_SIGNING_KEY": "bench-jwt-signing-key-0123456789abcdefghijklmn",
        "DATABASE_URL": database_url,
        "AUTH_REDIS_PREFIX": PREFIX,
        "AUTH_COOKIE_SECURE": "true",
        "AUTH_DBSC": "true",
        # Access tokens outlive the run, so /me never measures an expiry.
        "AUTH_ACCESS_TOKEN_LIFETIME": "7200",
        # Every refresh comes from one IP and a few sessions: the limits are raised,
        # the throttle itself still runs on every refresh and challenge.
        "AUTH_THROTTLE_LOGIN": "1000000/min",
        "AUTH_THROTTLE_LOGIN_IP": "1000000/min",
        "AUTH_THROTTLE_REFRESH": "1000000/min",
        "AUTH_THROTTLE_REFRESH_IP": "1000000/min",
        # The periodic key-set reload and revocation-outbox check would land on one
        # random request of one side; they are per process, not per request.
        "AUTH_KEYS_RELOAD_SECONDS": "3600",
        "AUTH_REVOCATION_POLL_SECONDS": "3600",
    }


# The first element of each command array in a packed RESP request: its name.
_COMMAND_NAME = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")


class Counters:
    """Redis round trips: every command and every pipeline goes through
    send_packed_command once (as tests/test_refresh_budget.py counts them)."""

    def __init__(self) -> None:
        import redis.connection

        self.redis = 0
        self.commands: list[str] = []  # of the current request, for the report's listing
        send = redis.connection.AbstractConnection.send_packed_command

        def counted(conn, command, check_health=True):
            self.redis += 1
            packed = b"".join(command) if isinstance(command, list) else command
            names = [m.decode().upper() for m in _COMMAND_NAME.findall(packed)]
            self.commands.append(names[0] if len(names) == 1 else f"pipeline({', '.join(names)})")
            return send(conn, command, check_health)

        redis.connection.AbstractConnection.send_packed_command = counted


class Op:
    def __init__(self, label: str) -> None:
        self.label = label
        self.round_cpu: list[float] = []  # per round: median µs per operation
        self.round_wall: list[float] = []
        self.n = self.http = self.queries = self.redis = 0
        # What the last measured request did: query shapes and Redis round trips.
        self.sql: list[str] = []
        self.commands: list[str] = []

    def row(self) -> dict:
        return {
            "cpu": statistics.median(self.round_cpu),
            "cpu_lo": min(self.round_cpu),
            "cpu_hi": max(self.round_cpu),
            "wall": statistics.median(self.round_wall),
            "http": self.http / self.n,
            "queries": self.queries / self.n,
            "redis": self.redis / self.n,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="6 rounds of 40 (under half a minute)")
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file instead of PostgreSQL")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--out", type=Path, help="also write the report (markdown) to this file")
    parser.add_argument("--note", default="", help="a line about the machine, printed under the title")
    args = parser.parse_args()
    rounds = args.rounds or (6 if args.quick else 15)
    batch = args.batch or (40 if args.quick else 100)

    tmpdir = None
    if args.sqlite:
        tmpdir = tempfile.TemporaryDirectory(prefix="bench-refresh-")
        database_url = f"sqlite:///{tmpdir.name}/bench.sqlite3"
    else:
        import psycopg

        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        database_url = f"{PG}/{DB_NAME}"
    for key in [k for k in os.environ if k.startswith(("DJANGO_", "AUTH_", "JWT_", "DATABASE_"))]:
        del os.environ[key]
    os.environ.update(environment(database_url))
    sys.path.insert(0, str(ROOT))
    try:
        report = run(rounds=rounds, batch=batch, quick=args.quick, sqlite=args.sqlite, note=args.note)
    finally:
        cleanup(tmpdir)
    print(report)
    if args.out:
        args.out.write_text(report)


def cleanup(tmpdir) -> None:
    try:
        import redis
        from django.conf import settings

        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = list(client.scan_iter(match=f"{PREFIX}:*", count=1000))
        if keys:
            client.delete(*keys)
        from django.db import connections

        connections.close_all()
    except Exception as exc:  # best effort: the database is dropped all the same
        print(f"cleanup: {exc}", file=sys.stderr)
    if tmpdir is not None:
        tmpdir.cleanup()
    else:
        import psycopg

        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def run(*, rounds: int, batch: int, quick: bool, sqlite: bool, note: str) -> str:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tests.dbsc_device import Device, offered_challenge, refresh_challenge
    from tokens.conf import auth_settings
    from tokens.tokens import decode

    call_command("migrate", verbosity=0)
    conf = auth_settings()
    assert conf.dbsc and conf.cookie_secure, "AUTH_DBSC and Secure cookies must both be on"
    user = get_user_model().objects.create(username="bench-refresh", password=make_password(PASSWORD))
    counters = Counters()

    def browser() -> Client:
        client = Client(enforce_csrf_checks=True)
        response = client.get("/api/auth/csrf/", secure=True)
        assert response.status_code == 204, (response.status_code, response.content[:300])
        return client

    def post(client: Client, path: str, **headers: str):
        """A POST with no body, as a browser's fetch() and its DBSC refresh send."""
        return client.generic("POST", path, b"", secure=True, **headers)

    def csrf(client: Client) -> dict[str, str]:
        return {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value, "HTTP_ORIGIN": ORIGIN}

    def login(client: Client):
        response = client.post(
            "/api/auth/login/",
            {"username": user.username, "password": PASSWORD},
            content_type="application/json",
            secure=True,
            **csrf(client),
        )
        assert response.status_code == 200, response.content
        return response

    def bind(client: Client, device: Device, response) -> str:
        proof = device.proof(offered_challenge(response))
        registered = post(client, "/api/auth/dbsc/register/", HTTP_SECURE_SESSION_RESPONSE=proof)
        assert registered.status_code == 200, registered.content
        return registered.json()["session_identifier"]

    def access_claims(client: Client) -> dict:
        return decode(client.cookies[conf.access_cookie_name].value, "access")

    # Four sessions of one user: two refreshed over and over (as a browser does,
    # the jar keeps the newest cookies), two that only call /me with one token.
    device = Device()
    plain = browser()
    login(plain)
    bound = browser()
    bound_sid = bind(bound, device, login(bound))
    me_plain = browser()
    login(me_plain)
    me_bound = browser()
    bind(me_bound, Device(), login(me_bound))
    assert "cnf" not in access_claims(plain) and "cnf" not in access_claims(me_plain)
    assert "cnf" in access_claims(bound) and "cnf" in access_claims(me_bound)

    def expect(response, status: int, what: str) -> None:
        if response.status_code != status:
            sys.exit(f"{what}: {response.status_code} (wanted {status}): {response.content[:300]!r}")

    ops = {
        key: Op(label)
        for key, label in [
            ("refresh_plain", "refresh, plain (`/api/auth/refresh/`)"),
            ("refresh_bound", "refresh, device-bound (challenge + proof)"),
            ("bound_challenge", "  ↳ leg 1: challenge (403)"),
            ("bound_proof", "  ↳ leg 2: proof, rotation (200)"),
            ("me_plain", "/me, unbound session"),
            ("me_bound", "/me, bound session"),
            ("me_new_plain", "/me, first request of a new token, unbound"),
            ("me_new_bound", "/me, first request of a new token, bound"),
        ]
    }
    sign_us: list[float] = []

    def measured(op: Op, call: Callable[[], object], http: int) -> tuple[object, float, float]:
        counters.commands = []
        # CaptureQueriesContext counts by index into a log capped at 9,000 entries:
        # emptied before each request, it never reaches the cap.
        connection.queries_log.clear()
        r0, c0, w0 = counters.redis, time.process_time(), time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            result = call()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        op.n += 1
        op.http += http
        op.queries += len(queries.captured_queries)
        op.redis += counters.redis - r0
        op.sql = [q["sql"].split()[0] for q in queries.captured_queries]
        op.commands = counters.commands
        return result, cpu, wall

    # Per round, per operation: (cpu, wall) sums, then the round's mean.
    def refresh_plain(acc: dict) -> None:
        response, cpu, wall = measured(
            ops["refresh_plain"], lambda: post(plain, "/api/auth/refresh/", **csrf(plain)), 1
        )
        expect(response, 200, "plain refresh")
        acc["refresh_plain"].append((cpu, wall))
        response, cpu, wall = measured(ops["me_new_plain"], lambda: plain.get("/api/auth/me/", secure=True), 1)
        expect(response, 200, "/me after plain refresh")
        acc["me_new_plain"].append((cpu, wall))

    def refresh_bound(acc: dict) -> None:
        def ask():
            return post(bound, "/api/auth/dbsc/refresh/", HTTP_SEC_SECURE_SESSION_ID=bound_sid)

        asked, cpu1, wall1 = measured(ops["bound_challenge"], ask, 1)
        expect(asked, 403, "bound refresh, challenge leg")
        challenge, named = refresh_challenge(asked)
        assert named == bound_sid
        t = time.process_time()
        proof = device.proof(challenge, jwk=False)
        sign_us.append(1e6 * (time.process_time() - t))

        def answer():
            return post(
                bound,
                "/api/auth/dbsc/refresh/",
                HTTP_SEC_SECURE_SESSION_ID=bound_sid,
                HTTP_SECURE_SESSION_RESPONSE=proof,
            )

        response, cpu2, wall2 = measured(ops["bound_proof"], answer, 1)
        expect(response, 200, "bound refresh, proof leg")
        if response["Duotoken-Refresh"] != "rotated":
            sys.exit(f"bound refresh did not rotate: {response['Duotoken-Refresh']}")
        acc["bound_challenge"].append((cpu1, wall1))
        acc["bound_proof"].append((cpu2, wall2))
        acc["refresh_bound"].append((cpu1 + cpu2, wall1 + wall2))
        # The total's counts are the two legs' counts together.
        whole = ops["refresh_bound"]
        whole.n += 1
        whole.http += 2
        response, cpu, wall = measured(ops["me_new_bound"], lambda: bound.get("/api/auth/me/", secure=True), 1)
        expect(response, 200, "/me after bound refresh")
        acc["me_new_bound"].append((cpu, wall))

    def me(key: str, client: Client) -> Callable[[dict], None]:
        def one(acc: dict) -> None:
            response, cpu, wall = measured(ops[key], lambda: client.get("/api/auth/me/", secure=True), 1)
            expect(response, 200, key)
            acc[key].append((cpu, wall))

        return one

    schedule = [refresh_plain, refresh_bound, me("me_plain", me_plain), me("me_bound", me_bound)]

    # Warm-up: scripts loaded, connections open, every code path imported once.
    for _ in range(5):
        for step in schedule:
            step({key: [] for key in ops})
    for op in ops.values():
        op.n = op.http = op.queries = op.redis = 0
    sign_us.clear()

    started = datetime.now(UTC)
    load_before = os.getloadavg()
    for r in range(rounds):
        acc: dict[str, list[tuple[float, float]]] = {key: [] for key in ops}
        order = schedule[r % len(schedule) :] + schedule[: r % len(schedule)]
        if r % 2:
            order.reverse()
        for step in order:
            for _ in range(batch):
                step(acc)
        for key, samples in acc.items():
            ops[key].round_cpu.append(1e6 * statistics.median(s[0] for s in samples))
            ops[key].round_wall.append(1e6 * statistics.median(s[1] for s in samples))
    # The whole bound refresh's database and Redis counts: both legs.
    whole = ops["refresh_bound"]
    whole.queries = ops["bound_challenge"].queries + ops["bound_proof"].queries
    whole.redis = ops["bound_challenge"].redis + ops["bound_proof"].redis
    whole.sql = ops["bound_challenge"].sql + ops["bound_proof"].sql
    whole.commands = ops["bound_challenge"].commands + ops["bound_proof"].commands
    load_after = os.getloadavg()

    return render(
        ops={key: op.row() for key, op in ops.items()},
        labels={key: op.label for key, op in ops.items()},
        shapes={key: (op.sql, op.commands) for key, op in ops.items()},
        sign_us=statistics.median(sign_us),
        rounds=rounds,
        batch=batch,
        quick=quick,
        sqlite=sqlite,
        note=note,
        started=started,
        load=(load_before, load_after),
        vendor=connection.vendor,
    )


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{os.cpu_count()} \u00d7 {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def render(*, ops, labels, shapes, sign_us, rounds, batch, quick, sqlite, note, started, load, vendor) -> str:
    def n(x: float) -> str:
        return f"{x:,.0f}"

    def c(x: float) -> str:
        return f"{x:.2f}".rstrip("0").rstrip(".") if x != int(x) else f"{int(x)}"

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}\u00d7" if b else "—"

    lines = [
        "# Device-bound refresh: what it costs beside a plain one",
        "",
        f"{started:%Y-%m-%d %H:%M} UTC, commit {_commit()}, {'quick run, ' if quick else ''}"
        f"{rounds} interleaved rounds \u00d7 {batch} of each operation, {_cpu_model()}, "
        f"{'SQLite' if sqlite else 'PostgreSQL'} ({vendor}) and Redis on localhost. "
        f"Load average {load[0][0]:.1f} before, {load[1][0]:.1f} after.",
    ]
    if note:
        lines += ["", f"**{note}**"]
    lines += [
        "",
        "In-process through Django's test client over HTTPS (`secure=True`), AUTH_DBSC on, Secure cookies, "
        "CSRF enforced. Reproduce: `.venv/bin/python bench/refresh_cost.py"
        f"{' --quick' if quick else ''}{' --sqlite' if sqlite else ''}`.",
        "",
        "| operation | CPU µs | CPU µs, rounds' range | wall µs | HTTP round trips | DB queries | Redis round trips |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, row in ops.items():
        lines.append(
            f"| {labels[key]} | {n(row['cpu'])} | {n(row['cpu_lo'])}\u2013{n(row['cpu_hi'])} | {n(row['wall'])} "
            f"| {c(row['http'])} | {c(row['queries'])} | {c(row['redis'])} |"
        )
    lines += [
        "",
        f"Not in the table: the device's ES256 signature over the challenge, {n(sign_us)} µs of CPU per refresh "
        "in this process (the browser's work, timed apart and left out of the bound rows).",
        "",
        "| ratio | CPU | wall | HTTP | DB queries | Redis |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    pairs = [
        ("refresh: bound / plain", "refresh_bound", "refresh_plain"),
        ("/me: bound / unbound session", "me_bound", "me_plain"),
        ("/me, new token: bound / unbound", "me_new_bound", "me_new_plain"),
    ]
    for label, a, b in pairs:
        x, y = ops[a], ops[b]
        lines.append(
            f"| {label} | {ratio(x['cpu'], y['cpu'])} | {ratio(x['wall'], y['wall'])} | {ratio(x['http'], y['http'])} "
            f"| {ratio(x['queries'], y['queries'])} | {ratio(x['redis'], y['redis'])} |"
        )
    lines += [
        "",
        "What one request of each did (the last one measured): the statements Django ran, then the Redis round trips.",
        "",
    ]
    for key, (sql, commands) in shapes.items():
        if key in ("bound_challenge", "bound_proof"):
            continue
        lines.append(f"- {labels[key].strip()}: SQL {' '.join(sql) or 'none'}; Redis {', '.join(commands) or 'none'}.")
    lines += [
        "",
        "Times are per operation: the median over rounds of each round's median. "
        "CPU is this process's (time.process_time): the server's work plus the test client's and the client "
        "side of the database and Redis calls, not PostgreSQL's or Redis's own CPU. Wall time includes their "
        "round trips. Counts are per operation over every measured request; database queries are those "
        "Django ran (CaptureQueriesContext), Redis round trips are calls of redis-py's send_packed_command "
        "(a command or a whole pipeline each).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
