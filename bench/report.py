"""Turn one bench run into bench/results/latest.{md,json,png}: figures, ratios, targets."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path


def _fmt(run) -> tuple[str, ...]:
    """req/s, p50, p99, CPU us/response, DB transactions/req, Redis commands/req, Redis misses/req."""
    if run is None:
        return ("-",) * 7
    if not run.valid:
        return (f"INVALID ({run.invalid})",) + ("",) * 6

    def per(value):
        return "-" if value is None else f"{value:.2f}"

    cpu = f"{run.cpu_us:,.0f}" if run.cpu_us else "-"
    return (f"{run.rps:,.1f}", f"{run.p50_ms:.1f}", f"{run.p99_ms:.1f}", cpu, per(run.db_per_req),
            per(run.redis_per_req), per(run.misses_per_req))  # fmt: skip


def _at(runs, connections):
    for run in runs or []:
        if run.connections == connections:
            return run
    return None


def _ratio(a, b, attr="rps"):
    if a is None or b is None or not a.valid or not b.valid:
        return None
    return getattr(a, attr) / getattr(b, attr)


def _cpu_ratio(a, b):
    """Throughput ratio implied by server CPU per response (b's cost over a's)."""
    if a is None or b is None or not a.valid or not b.valid or not a.cpu_us or not b.cpu_us:
        return None
    return b.cpu_us / a.cpu_us


# Authenticated reads, against the no-auth floor (same middleware, same gunicorn).
READS = ("me", "verify", "me_hs256", "me_real", "me_large", "jwt_me", "jwt_me_real", "session_me")
# (traffic, ours, stock, goal as the largest ours/stock ratio): issue 17's goals.
OVERHEAD_GOALS = (("hot set", "me", "jwt_me", 1 / 6), ("realistic", "me_real", "jwt_me_real", 1 / 3))


def _overhead(figures, key, connections) -> float | None:
    """Worker CPU per response above the floor's, in us: what authenticating costs."""
    run, floor = _at(figures.get(key), connections), _at(figures.get("floor"), connections)
    if run is None or floor is None or not run.valid or not floor.valid or not run.cpu_us or not floor.cpu_us:
        return None
    return run.cpu_us - floor.cpu_us


def _overhead_rows(figures) -> list[tuple[str, ...]]:
    rows = []
    for traffic, ours_key, stock_key, goal in OVERHEAD_GOALS:
        for c in (16, 64):
            ours, stock = _overhead(figures, ours_key, c), _overhead(figures, stock_key, c)
            floor = _at(figures.get("floor"), c)
            ratio = ours / stock if ours is not None and stock is not None and stock > 0 else None
            status = "n/a" if ratio is None else ("met" if ratio <= goal else "**missed**")
            rows.append((
                f"/me, {traffic}, c{c}",
                "-" if floor is None or not floor.cpu_us else f"{floor.cpu_us:,.0f}",
                "-" if ours is None else f"{ours:,.0f}",
                "-" if stock is None else f"{stock:,.0f}",
                "-" if ratio is None else f"{ratio:.2f}",
                f"<= 1/{round(1 / goal)} ({goal:.2f})",
                status,
            ))  # fmt: skip
    return rows


def _targets(figures) -> list[tuple[str, ...]]:
    rows = []

    def add(name, value, goal, ok, fmt="{:.2f}x", cpu=None):
        cpu_text = "-" if cpu is None else f"{cpu:.2f}x"
        if value is None:
            rows.append((name, "not measured (invalid run)", cpu_text, goal, "n/a"))
        else:
            status = "-" if ok is None else ("met" if ok(value) else "**missed**")
            rows.append((name, fmt.format(value), cpu_text, goal, status))

    def pair(key_a, key_b, c):
        a, b = _at(figures.get(key_a), c), _at(figures.get(key_b), c)
        return {"value": _ratio(a, b), "cpu": _cpu_ratio(a, b)}

    for c in (16, 64):
        add(f"/me vs stock JWTAuthentication, realistic traffic, c{c}", goal=">= 3x", ok=lambda v: v >= 3,
            **pair("me_real", "jwt_me_real", c))  # fmt: skip
        add(f"/me vs stock JWTAuthentication, hot set, c{c}", goal=">= 3x", ok=lambda v: v >= 3,
            **pair("me", "jwt_me", c))  # fmt: skip
        add(f"/me vs no-auth floor, hot set, c{c}", goal=">= 0.8x", ok=lambda v: v >= 0.8, **pair("me", "floor", c))
    for c in (16, 64):
        run = _at(figures.get("me_real"), c)
        value = run.db_per_req if run is not None and run.valid else None
        add(f"database transactions per /me, realistic traffic, c{c}", value, "0.00", lambda v: v < 0.005, "{:.2f}")
        add(f"verify/ (gateway check) vs /me, hot set, c{c}", goal=">= 0.9x", ok=lambda v: v >= 0.9,
            **pair("verify", "me", c))  # fmt: skip
    for c in (16, 64):
        add(f"refresh vs stock refresh (rotation + blacklist), c{c}", goal=">= 4x", ok=lambda v: v >= 4,
            **pair("refresh", "jwt_refresh", c))  # fmt: skip
    add("refresh p99 / stock refresh p99, c16",
        _ratio(_at(figures.get("refresh"), 16), _at(figures.get("jwt_refresh"), 16), "p99_ms"), "<= 0.25",
        lambda v: v <= 0.25, "{:.3f}")  # fmt: skip
    if figures.get("me_large"):
        for key, name in (("me", "/me"), ("refresh", "refresh")):
            for c in (16, 64):
                add(f"{name} with history vs empty database, c{c}", goal=">= 0.90x", ok=lambda v: v >= 0.9,
                    **pair(f"{key}_large", key, c))  # fmt: skip
    # No target: what ES256 (the default) costs against HS256 on the same code.
    for key, name in (("me", "/me"), ("refresh", "refresh")):
        for c in (16, 64):
            if figures.get(f"{key}_hs256"):
                add(f"{name} ES256 vs HS256, c{c}", goal="none (the cost of asymmetric keys)", ok=None,
                    **pair(key, f"{key}_hs256", c))  # fmt: skip
    add("login throughput vs authenticate() alone (wrk)", goal=">= 0.90x (our work < 10%)", ok=lambda v: v >= 0.9,
        **pair("login", "auth_only", 4))  # fmt: skip
    prof = figures.get("_profile", {}).get("login")
    if prof:
        add("our work around the hasher, per login (in-process)", prof["overhead_pct"], "< 10%",
            lambda v: v < 10, "{:+.1f}%")  # fmt: skip
    return rows


SHORT = {
    "floor": "floor\n(no auth)",
    "me": "ours,\nhot set",
    "me_real": "ours,\nrealistic",
    "jwt_me_real": "stock JWTAuth,\nrealistic",
    "verify": "ours verify/,\nhot set",
    "me_large": "ours,\nbig DB",
    "me_hs256": "ours,\nHS256",
    "refresh_hs256": "ours,\nHS256",
    "jwt_me": "stock\nJWTAuth",
    "session_me": "stock DB\nsession",
    "refresh": "ours",
    "refresh_large": "ours,\nbig DB",
    "jwt_refresh": "stock\nTokenRefreshView",
    "auth_only": "authenticate()\nonly (stock)",
    "login": "ours login",
    "jwt_login": "stock\nTokenObtainPair",
}


def _chart(figures, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [
        (
            "GET /me (authenticated read)",
            ["floor", "me", "verify", "me_hs256", "me_real", "me_large", "jwt_me", "jwt_me_real", "session_me"],
        ),
        ("POST refresh (rotation)", ["refresh", "refresh_hs256", "refresh_large", "jwt_refresh"]),
        ("POST login (PBKDF2)", ["auth_only", "login", "jwt_login"]),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(19, 5.5), gridspec_kw={"width_ratios": [7, 3, 3]})
    for ax, (title, keys) in zip(axes, groups, strict=True):
        keys = [k for k in keys if figures.get(k)]
        conns = sorted({r.connections for k in keys for r in figures[k]})
        width = 0.8 / max(1, len(conns))
        for j, c in enumerate(conns):
            values = [(_at(figures[k], c).rps if _at(figures[k], c) and _at(figures[k], c).valid else 0) for k in keys]
            bars = ax.bar([i + j * width for i in range(len(keys))], values, width, label=f"{c} connections")
            ax.bar_label(bars, labels=[f"{v:,.0f}" if v >= 10 else f"{v:.1f}" for v in values], fontsize=7)
        ax.set_xticks([i + width * (len(conns) - 1) / 2 for i in range(len(keys))])
        ax.set_xticklabels([SHORT.get(k, k) for k in keys], fontsize=8)
        ax.set_title(title)
        ax.set_ylabel("requests/s (higher is better)")
        ax.legend(fontsize=8)
    fig.suptitle("Duotoken vs stock Django + Simple JWT: one run, same machine, same gunicorn settings")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(figures: dict, *, args, elapsed: float, results: Path) -> None:
    results.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
        commit_id = commit.stdout.strip() or "unknown"
    except OSError:
        commit_id = "unknown"
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    mode = "quick" if args.quick else "full"
    sync = getattr(args, "worker_class", "sync") == "sync"
    workers = "sync workers" if sync else "gthread workers x 4 threads, keep-alive"
    lines = [
        "# Benchmark results",
        "",
        f"{now:%Y-%m-%d %H:%M} UTC, commit {commit_id}, {mode} run ({args.duration:g} s per run after "
        f"{args.warmup:g} s warm-up), {os.cpu_count()} x {cpu}. Servers: gunicorn, 3 "
        f"{workers}, "
        "pinned to one core; wrk (1 thread) pinned to the other; PostgreSQL and Redis unpinned. "
        f"Reproduce: `.venv/bin/python bench/run.py{' --quick' if args.quick else ''}"
        f"{f' --history {args.history}' if args.history not in (20_000, 100_000) else ''}"
        f"{' --worker-class sync' if sync else ''}`.",
        "",
        "| scenario | conns | req/s | p50 ms | p99 ms | CPU us | auth overhead us | DB xact/req | Redis cmd/req "
        "| Redis miss/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = ["floor", "me", "verify", "me_hs256", "me_real", "jwt_me", "jwt_me_real", "session_me", "me_large",
             "refresh", "refresh_hs256", "jwt_refresh", "refresh_large"]  # fmt: skip
    for key in order:
        for run in figures.get(key) or []:
            cells = list(_fmt(run))
            overhead = _overhead(figures, key, run.connections) if key in READS else None
            cells.insert(4, "-" if overhead is None else f"{overhead:,.0f}")
            lines.append(f"| {run.label} | {run.connections} | {' | '.join(cells)} |")
    lines += ["", "Login (4 connections: a login holds a worker for a whole hash):", "",
              "| scenario | req/s | p50 ms | p99 ms | CPU us | DB xact/req | Redis cmd/req | Redis miss/req |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for key in ("auth_only", "login", "jwt_login"):
        runs = figures.get(key)
        if runs:
            lines.append(f"| {runs[0].label} | {' | '.join(_fmt(runs[0]))} |")
    lines += ["", "Each cell is the median of interleaved rounds; the rounds (req/s) show the spread:", ""]
    for key in [*order, "auth_only", "login", "jwt_login"]:
        for run in figures.get(key) or []:
            if run.rounds:
                revisit = f" (every session revisited after >= {run.min_revisit_s:.0f} s)" if run.min_revisit_s else ""
                rounds = ", ".join(f"{v:,.1f}" for v in run.rounds)
                lines.append(f"- {run.label}, c{run.connections}: {rounds}{revisit}")
    lines += [
        "",
        "CPU us: gunicorn workers' user + system CPU per response, from /proc (PostgreSQL and Redis not included).",
        "DB xact/req: the server database's xact_commit + xact_rollback (pg_stat_database) per response; Django",
        "autocommits, so a query outside an atomic block is one transaction (with CONN_HEALTH_CHECKS, the first",
        "query of a request adds Django's `SELECT 1` health check). Redis cmd/req and miss/req: INFO commandstats",
        "calls and INFO stats keyspace_misses of the run's private redis-server, per response.",
        "",
        "Realistic traffic walks its sessions in one fixed order; the runner records when each was last used and",
        f"reports a run as INVALID if any session came back sooner than {getattr(args, 'revisit_after', 65):g} s "
        "(so past the old 60 s cache TTL).",
        "",
        "## Targets (ratios from this run)",
        "",
        "Targets are judged on requests/s. The CPU column is the ratio implied by the servers' own CPU per response:",
        "a cross-check that leaves out PostgreSQL and Redis, though contention on a busy machine inflates it too.",
        "",
        "| target | measured | from CPU/response | goal | |",
        "|---|---:|---:|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _targets(figures)]
    lines += [
        "",
        "## Auth overhead per request (worker CPU above the no-auth floor)",
        "",
        "What authenticating adds to a response: the workers' CPU per response minus the floor's (same middleware,",
        "same gunicorn), ours and stock JWTAuthentication, and ours as a share of stock's. CPU per response is far",
        "less distorted by other load than requests/s, but still read it from a quiet machine.",
        "",
        "| /me | floor CPU us | ours - floor us | stock - floor us | ours / stock | goal | |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _overhead_rows(figures)]
    prof = figures.get("_profile")
    if prof:
        lines += ["", "## Where the time goes (pyinstrument, in-process, share of samples)", ""]
        for key, title in (("me", "GET /api/auth/me/"), ("refresh", "POST /api/auth/refresh/")):
            layers = ", ".join(f"{name} {pct:.0f}%" for name, pct in prof[key]["layers"].items() if pct >= 1)
            lines.append(
                f"- **{title}** ({prof[key]['us_per_request_profiled']} us/request under the profiler): {layers}"
            )
        login = prof["login"]
        lines.append(
            f"- **login**: {login['login_ms']} ms per login vs {login['authenticate_ms']} ms for authenticate() "
            f"alone ({login['overhead_pct']:+.1f}%)"
        )
        lines.append("")
        lines.append("Call trees: `profile_me.txt`, `profile_refresh.txt`.")
    lines += ["", f"Whole run: {elapsed / 60:.1f} min.", ""]
    (results / "latest.md").write_text("\n".join(lines))
    payload = {k: ([asdict(r) for r in v] if isinstance(v, list) else v) for k, v in figures.items()}
    payload["_meta"] = {"when": now.isoformat(), "commit": commit_id, "mode": mode, "duration": args.duration,
                        "warmup": args.warmup, "history": args.history}  # fmt: skip
    (results / "latest.json").write_text(json.dumps(payload, indent=2) + "\n")
    _chart(figures, results / "latest.png")
