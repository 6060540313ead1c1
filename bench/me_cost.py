"""What one GET /me costs in-process, in counts a busy machine does not distort.

    .venv/bin/python bench/me_cost.py prepare            # database, private Redis, sessions
    .venv/bin/python bench/me_cost.py cpu [--requests N]  # CPU us per request, each scenario
    .venv/bin/python bench/me_cost.py instructions       # instructions per request (callgrind)

Requests go straight into Django's WSGI handler (the whole middleware stack, no
test client, no sockets to gunicorn), against PostgreSQL and a private
redis-server, with the settings bench/run.py gives our servers (ES256, DEBUG off).
Scenarios:
- floor: a DRF view with no authentication under /api/, behind the same middleware;
- me_hot: /me with 100 sessions used round and round (every token already verified);
- me_real: /me with a session never seen before by this process on every request
  (Redis knows it, the verified-token cache does not), past the cache's size, as a
  worker sees realistic traffic.

`cpu` reads time.process_time() over N requests: the process's own CPU, which
other load on the machine stretches far less than wall time. `instructions` runs
each scenario under valgrind's callgrind twice (W warm-up requests, then W and W +
N) and divides the difference by N: set-up cancels out, and the count is the same
on a loaded machine and a quiet one.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RAW = BENCH / "results" / "raw"
STATE = RAW / "me_cost.json"
PG = "postgres://postgres@127.0.0.1:5432"
_CHECKOUT = re.sub(r"[^a-z0-9]+", "_", ROOT.name.lower()).strip("_")[:20] or "x"
DATABASE = f"bench_{_CHECKOUT}_mecost"
HOT = 100
SCENARIOS = ("floor", "me_hot", "me_real")

sys.path.insert(0, str(BENCH))
from run import BENCH_PRIVATE_KEY, COMMON_ENV, free_port  # noqa: E402


def env(redis_url: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "AUTH_", "DATABASE_", "JWT_"))}
    return {
        **base,
        **COMMON_ENV,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "JWT_ALGORITHM": os.environ.get("ME_COST_ALGORITHM", "ES256"),
        "JWT_PRIVATE_KEY": BENCH_PRIVATE_KEY,
        "DATABASE_URL": f"{PG}/{DATABASE}",
        "REDIS_URL": redis_url,
        "AUTH_REDIS_PREFIX": "duotoken-mecost",
        "PYTHONHASHSEED": "0",
    }


def prepare(args) -> None:
    import psycopg

    RAW.mkdir(parents=True, exist_ok=True)
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    e = env(f"redis://127.0.0.1:{port}/0")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=e, check=True)
    for tag, count in (("hot", HOT), ("real", args.sessions)):
        out = RAW / f"me_cost_{tag}.txt"
        subprocess.run([*manage, "seed_sessions", "--tag", tag, "--sessions", str(count), "--out", str(out)],
                       cwd=ROOT, env=e, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    STATE.write_text(json.dumps({"redis_port": port, "redis_pid": redis.pid}))
    print(f"prepared: database {DATABASE}, redis-server pid {redis.pid} on port {port} (stop it with `stop`)")


def stop(args) -> None:
    state = json.loads(STATE.read_text())
    os.kill(state["redis_pid"], 15)
    STATE.unlink()


def _setup():
    import django
    from django.conf import settings

    sys.path.insert(0, os.environ.get("ME_COST_ROOT") or str(ROOT))
    django.setup()
    settings.ROOT_URLCONF = "me_cost_urls"
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIHandler()


def _environ(path: str, cookie: str | None) -> dict:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    return environ


def _cookies(tag: str) -> list[str]:
    return [line.split("\t")[0] for line in (RAW / f"me_cost_{tag}.txt").read_text().splitlines() if line]


def loop(scenario: str, warmup: int, requests: int) -> float:
    """Run `warmup` then `requests` requests; the CPU seconds of the latter."""
    handler = _setup()
    statuses: dict[str, int] = {}

    def start_response(status, headers, exc_info=None):
        statuses[status] = statuses.get(status, 0) + 1

    if scenario == "floor":
        environs = [_environ("/api/floor/", None)]
        pick = lambda i: environs[0]  # noqa: E731
    elif scenario == "me_hot":
        environs = [_environ("/api/auth/me/", c) for c in _cookies("hot")]
        pick = lambda i: environs[i % len(environs)]  # noqa: E731
    else:
        cookies = _cookies("real")
        if warmup + requests > len(cookies):
            sys.exit(f"me_real needs {warmup + requests} sessions; prepare has {len(cookies)} (prepare --sessions)")
        # Hot sessions for the warm-up (so the process is warm, but none of the
        # measured tokens is in its verified-token cache), then each real one once.
        hot = _cookies("hot")
        pick = lambda i: _environ("/api/auth/me/", hot[i % HOT] if i < warmup else cookies[i])  # noqa: E731

    def one(i: int) -> None:
        environ = pick(i)
        environ["wsgi.input"] = io.BytesIO(b"")
        response = handler(environ, start_response)
        for _ in response:
            pass
        response.close()

    for i in range(warmup):
        one(i)
    if scenario == "me_real":
        environs = [pick(i) for i in range(warmup, warmup + requests)]  # built outside the measured span
        pick = lambda i: environs[i - warmup]  # noqa: E731
    started = time.process_time()
    for i in range(warmup, warmup + requests):
        one(i)
    cpu = time.process_time() - started
    if set(statuses) != {"200 OK"}:
        sys.exit(f"{scenario}: unexpected statuses {statuses}")
    return cpu


def _child(args) -> None:
    cpu = loop(args.scenario, args.warmup, args.requests)
    print(json.dumps({"cpu_s": cpu}))


def _spawn(prefix: list[str], scenario: str, warmup: int, requests: int, root: Path = ROOT) -> dict:
    state = json.loads(STATE.read_text())
    cmd = [*prefix, sys.executable, __file__, "child", scenario, "--warmup", str(warmup), "--requests", str(requests)]
    done = subprocess.run(cmd, cwd=root, env={**env(f"redis://127.0.0.1:{state['redis_port']}/0"),
                          "ME_COST_ROOT": str(root)}, capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _trees(args) -> dict[str, Path]:
    """This checkout, and with --against another one (e.g. `git archive` of the
    commit before a change): both measured in the same run, side by side."""
    return {"before": args.against, "after": ROOT} if args.against else {"this": ROOT}


def cpu(args) -> None:
    """Interleaved: every tree and scenario once per round; the median of the rounds."""
    trees = _trees(args)
    results: dict[str, dict[str, list[float]]] = {t: {s: [] for s in args.scenarios} for t in trees}
    for _ in range(args.rounds):
        for scenario in args.scenarios:
            for tree, root in trees.items():
                out = _spawn([], scenario, args.warmup, args.requests, root)
                results[tree][scenario].append(1e6 * out["cpu_s"] / args.requests)

    def cell(values: list[float]) -> dict:
        return {"median_us": round(sorted(values)[len(values) // 2]), "rounds_us": [round(x) for x in values]}

    report = {tree: {s: cell(v) for s, v in r.items()} for tree, r in results.items()}
    print(json.dumps(report, indent=2))


def instructions(args) -> None:
    out = RAW / "callgrind"
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, dict[str, int]] = {}
    for tree, root in _trees(args).items():
        for scenario in args.scenarios:
            counts = []
            for n in (0, args.requests):
                path = out / f"{tree}-{scenario}-{n}.out"
                prefix = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={path}", "--dump-line=no"]
                _spawn(prefix, scenario, args.warmup, n, root)
                counts.append(_total_instructions(path))
            per = report.setdefault(tree, {})[scenario] = round((counts[1] - counts[0]) / args.requests)
            print(f"{tree} {scenario}: {per:,} instructions per request", file=sys.stderr)
    print(json.dumps(report, indent=2))


def _total_instructions(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--sessions", type=int, default=15_000)
    sub.add_parser("stop")
    for name, default in (("cpu", 2000), ("instructions", 400)):
        p = sub.add_parser(name)
        p.add_argument("--requests", type=int, default=default)
        p.add_argument("--warmup", type=int, default=300)
        p.add_argument("--rounds", type=int, default=3)
        p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
        p.add_argument("--against", type=Path, help="another checkout to measure in the same run (as 'before')")
    p = sub.add_parser("child")
    p.add_argument("scenario", choices=SCENARIOS)
    p.add_argument("--requests", type=int, required=True)
    p.add_argument("--warmup", type=int, required=True)
    args = parser.parse_args()
    {"prepare": prepare, "stop": stop, "cpu": cpu, "instructions": instructions, "child": _child}[args.command](args)


if __name__ == "__main__":
    main()
