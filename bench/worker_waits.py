"""Where a gunicorn worker waits on /me: sync workers against threaded keep-alive ones.

    .venv/bin/python bench/worker_waits.py [--rounds N] [--duration S]

Our service alone, on its own database and private Redis, pinned to one core with
wrk on the other, as in bench/run.py. For each worker class, path (/me on the hot
set; /api/auth/csrf/, which does no Redis or database work) and connection count,
interleaved round after round, it starts a fresh server with bench/gunicorn_waits.py
and reports req/s, the workers' CPU per response, and per request the wall time in
the app, in Redis calls and in gunicorn's close_graceful. Writes
bench/results/worker_waits.md. Not part of the test run; figures need a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run as bench  # noqa: E402 (bench/run.py: servers, Redis, databases)

DATABASE = f"bench_{bench._CHECKOUT}_waits"


def measure(worker_class, path, script, creds, connections, duration, env, core, load_core):
    port = bench.free_port()
    out = bench.RAW / f"waits-{worker_class}-{path.strip('/').replace('/', '_')}-c{connections}"
    for old in out.parent.glob(out.name + "-*.json"):
        old.unlink()
    server_env = bench.env_for({**env, "BENCH_WORKER_CLASS": worker_class, "WAITS_OUT": str(out)})
    cmd = ["taskset", "-c", str(core), bench.PYTHON, "-m", "gunicorn", "config.wsgi:application",
           "--config", str(BENCH / "gunicorn_waits.py"), "--bind", f"127.0.0.1:{port}"]  # fmt: skip
    with open(bench.RAW / "waits-gunicorn.log", "ab") as log_file:
        proc = subprocess.Popen(cmd, cwd=bench.ROOT, env=server_env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            for _ in range(150):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/auth/csrf/", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            result = bench.RAW / "waits-wrk.json"
            wrk_env = {**os.environ, "BENCH_WRK_DIR": str(bench.WRK), "BENCH_RESULT": str(result),
                       "BENCH_THREADS": "1", "BENCH_FILE": str(creds or ""), "BENCH_ONCE": "0"}  # fmt: skip

            def wrk(c, seconds):
                subprocess.run(["taskset", "-c", str(load_core), "wrk", "-t1", f"-c{c}", f"-d{seconds:g}s",
                                "-s", str(bench.WRK / script), f"http://127.0.0.1:{port}{path}"],
                               env=wrk_env, capture_output=True, check=True)  # fmt: skip
                return json.loads(result.read_text())

            wrk(4, 1)  # warm-up: every hot session into Redis, every worker importing
            data = wrk(connections, duration)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    # Totals from the measured run only would need a reset hook; the 1 s warm-up at
    # 4 connections is small next to it and the same for every cell.
    totals: dict[str, float] = {}
    for part in out.parent.glob(out.name + "-*.json"):
        for key, value in json.loads(part.read_text()).items():
            totals[key] = totals.get(key, 0.0) + value
    n = max(1, totals.get("requests", 0))
    bad = {s: k for s, k in data["statuses"].items() if s not in ("200", "204")}
    return {
        "rps": data["requests"] / (data["duration_us"] / 1e6),
        "invalid": bad or None,
        "cpu_ms": 1000 * totals.get("cpu", 0) / n,
        "app_ms": 1000 * totals.get("app_wall", 0) / n,
        "redis_ms": 1000 * totals.get("redis_wall", 0) / n,
        "close_ms": 1000 * totals.get("close_wall", 0) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=8)
    args = parser.parse_args()
    bench.RAW.mkdir(parents=True, exist_ok=True)
    core, load_core = bench.cores()
    redis_server = bench.PrivateRedis().start()
    try:
        env = {**bench.OURS_ENV, "REDIS_URL": redis_server.url, "DATABASE_URL": f"{bench.PG}/{DATABASE}"}
        bench.fresh_database(DATABASE)
        bench.manage(bench.ROOT, env, "migrate", "--noinput", "-v0")
        creds = bench.RAW / "waits_me.txt"
        bench.manage(bench.ROOT, env, "seed_sessions", "--tag", "waits", "--sessions", str(bench.HOT_SESSIONS),
                     "--out", str(creds))  # fmt: skip
        cells: dict[tuple, list[dict]] = {}
        for _ in range(args.rounds):
            for worker_class in ("sync", "gthread"):
                for path, script, file in (("/api/auth/me/", "cookie_get.lua", creds),
                                           ("/api/auth/csrf/", "plain_get.lua", None)):  # fmt: skip
                    for c in (16, 64):
                        cell = measure(worker_class, path, script, file, c, args.duration, env, core, load_core)
                        cells.setdefault((worker_class, path, c), []).append(cell)
                        bench.log(f"{worker_class:7s} {path:16s} c{c}: {cell}")
    finally:
        redis_server.stop()
    lines = [
        "# Where a worker waits: sync against gthread + keep-alive",
        "",
        f"`bench/worker_waits.py --rounds {args.rounds} --duration {args.duration:g}`, "
        f"{time.strftime('%Y-%m-%d %H:%M')} UTC, load average at the end {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores. Each cell: the rounds, in order. Per-request figures are averages over all",
        "requests of the cell's server (warm-up included).",
        "",
        "| workers | path | conns | req/s | worker CPU ms/resp | app wall ms/req | Redis wall ms/req | "
        "close_graceful ms/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (worker_class, path, c), runs in cells.items():

        def col(key, fmt, runs=runs):
            return " / ".join(fmt.format(r[key]) for r in runs)

        rps = " / ".join("INVALID" if r["invalid"] else f"{r['rps']:,.0f}" for r in runs)
        waits = " | ".join(col(key, "{:.2f}") for key in ("cpu_ms", "app_ms", "redis_ms", "close_ms"))
        lines.append(f"| {worker_class} | `{path}` | {c} | {rps} | {waits} |")
    (bench.RESULTS / "worker_waits.md").write_text("\n".join(lines) + "\n")
    bench.log(f"wrote {bench.RESULTS / 'worker_waits.md'}")


if __name__ == "__main__":
    main()
