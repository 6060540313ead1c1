"""Worker CPU per /me response by gunicorn threads per worker, on a real server.

    .venv/bin/python bench/me_cost.py prepare --sessions 200   # database, private Redis, sessions
    .venv/bin/python bench/gthread_cost.py [--threads 1 2 4 8] [--connections 16 64]

Our service under bench/gunicorn_bench.py (3 gthread workers, pinned to one core,
wrk on the other), with only `--threads` changed, on the hot set of
`bench/me_cost.py prepare`. For each setting it reports the workers' CPU (user +
system, from /proc) per response: what a response costs the core, which other load
on the machine moves much less than requests/s. Settings are interleaved, round
after round.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from me_cost import RAW, STATE, env  # noqa: E402
from run import WRK, Server, cores, free_port  # noqa: E402

ROOT = BENCH.parent


def start(threads: int, port: int, core: int, extra: dict[str, str]) -> Server:
    server = Server("gthread", ROOT, "config.wsgi:application", port, {"DATABASE_URL": extra["DATABASE_URL"]}, core)
    cmd = ["taskset", "-c", str(core), sys.executable, "-m", "gunicorn", "config.wsgi:application",
           "--config", str(BENCH / "gunicorn_bench.py"), "--threads", str(threads),
           "--bind", f"127.0.0.1:{port}"]  # fmt: skip
    server.log_file = open(RAW / f"gthread-{threads}.log", "ab")  # noqa: SIM115 (closed in stop)
    server.proc = subprocess.Popen(cmd, cwd=ROOT, env=extra, stdout=server.log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/auth/csrf/", timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    sys.exit(f"gunicorn --threads {threads} did not come up; see {RAW / f'gthread-{threads}.log'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    state = json.loads(STATE.read_text())
    extra = env(f"redis://127.0.0.1:{state['redis_port']}/0")
    server_core, load_core = cores()
    servers = {t: start(t, free_port(), server_core, extra) for t in args.threads}
    results: dict[str, list[float]] = {}
    try:
        for _ in range(args.rounds):
            for c in args.connections:
                for threads, server in servers.items():
                    out = RAW / f"gthread-{threads}-c{c}.json"
                    wrk_env = {**extra, "BENCH_WRK_DIR": str(WRK), "BENCH_RESULT": str(out), "BENCH_THREADS": "1",
                               "BENCH_FILE": str(RAW / "me_cost_hot.txt"), "BENCH_ONCE": "0"}  # fmt: skip
                    before = server.cpu_seconds()
                    subprocess.run(["taskset", "-c", str(load_core), "wrk", "-t1", f"-c{c}", f"-d{args.duration:g}s",
                                    "-s", str(WRK / "cookie_get.lua"), f"http://127.0.0.1:{server.port}/api/auth/me/"],
                                   env=wrk_env, capture_output=True, check=True)  # fmt: skip
                    data = json.loads(out.read_text())
                    if set(data["statuses"]) != {"200"}:
                        sys.exit(f"--threads {threads} c{c}: unexpected statuses {data['statuses']}")
                    cpu_us = 1e6 * (server.cpu_seconds() - before) / data["requests"]
                    results.setdefault(f"threads={threads} c{c}", []).append(round(cpu_us))
                    print(f"threads={threads} c{c}: {cpu_us:,.0f} us CPU per response", file=sys.stderr)
    finally:
        for server in servers.values():
            server.stop()
    print(json.dumps({k: {"median_us": sorted(v)[len(v) // 2], "rounds_us": v} for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
