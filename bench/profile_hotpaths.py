"""Where the time goes on the hot paths: /me, refresh, and login around the hasher.

Runs requests in-process through Django's test client (full middleware stack, CSRF
enforced, real PostgreSQL and Redis from the environment bench/run.py sets) under
pyinstrument, and attributes every sample to the innermost layer it belongs to
(Redis, database, JWT, CSRF, DRF, Django, our code). Writes profile_me.txt,
profile_refresh.txt (pyinstrument's call trees) and profile.json.

Login is timed without the profiler: N logins against N bare authenticate() calls
with the same user and hasher, so the difference is our work around the hasher.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CSRF = "benchCsrfSecretbenchCsrfSecret32"
PASSWORD = "bench-password-1"

# Innermost match wins: a socket read inside redis-py counts as Redis.
LAYERS = [
    ("Redis", ("/redis/", "/django_redis/")),
    ("database", ("/psycopg", "/django/db/")),
    ("JWT sign/verify", ("/jwt/", "/rest_framework_simplejwt/", "hmac.py")),
    ("CSRF check", ("/django/middleware/csrf.py", "/tokens/csrf.py")),
    ("password hasher", ("/django/contrib/auth/hashers.py",)),
    ("DRF", ("/rest_framework/",)),
    ("our code", (str(ROOT / "tokens"), str(ROOT / "accounts"), str(ROOT / "config"))),
    ("Django", ("/django/",)),
]


def layer_of(frame) -> str:
    while frame is not None:
        path = frame.file_path or ""
        for name, needles in LAYERS:
            if any(n in path for n in needles):
                return name
        frame = frame.parent
    return "other (test client, stdlib)"


def breakdown(root) -> dict[str, float]:
    totals: dict[str, float] = {}
    stack = [root]
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        own = frame.total_self_time
        if own > 0:
            name = layer_of(frame)
            totals[name] = totals.get(name, 0.0) + own
    whole = sum(totals.values()) or 1.0
    return {k: round(100 * v / whole, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def profile(label: str, fn, count: int, out: Path) -> dict:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002)
    started = time.perf_counter()
    profiler.start()
    for i in range(count):
        fn(i)
    profiler.stop()
    elapsed = time.perf_counter() - started
    (out / f"profile_{label}.txt").write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    root = profiler.last_session.root_frame()
    return {"requests": count, "us_per_request_profiled": round(1e6 * elapsed / count), "layers": breakdown(root)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth import authenticate, get_user_model
    from django.contrib.auth.hashers import make_password
    from django.test import Client, RequestFactory

    from tokens.conf import auth_settings
    from tokens.services import session_start

    n_me, n_refresh, n_login = (500, 300, 7) if args.quick else (3000, 1500, 25)
    conf = auth_settings()
    User = get_user_model()
    stamp = int(time.time())
    user = User.objects.create(username=f"bench-prof-{stamp}", password=make_password(PASSWORD))
    factory = RequestFactory()

    def login_request():
        return factory.post("/api/auth/login/", REMOTE_ADDR="127.0.0.1")

    client = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
    client.cookies["csrftoken"] = CSRF

    # /me: one session, as one SPA tab polling.
    me_pair = session_start(user=user, request=login_request()).pair
    client.cookies[conf.access_cookie_name] = me_pair.access
    assert client.get("/api/auth/me/").status_code == 200
    result = {"me": profile("me", lambda i: client.get("/api/auth/me/"), n_me, args.out)}

    # refresh: a fresh single-use token per request, each its own session.
    pairs = [session_start(user=user, request=login_request()).pair for _ in range(n_refresh + 1)]
    statuses: dict[int, int] = {}

    def refresh(i: int) -> None:
        c = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
        c.cookies["csrftoken"] = CSRF
        c.cookies[conf.refresh_cookie_name] = pairs[i].refresh
        status = c.post("/api/auth/refresh/", HTTP_X_CSRFTOKEN=CSRF).status_code
        statuses[status] = statuses.get(status, 0) + 1

    result["refresh"] = profile("refresh", refresh, n_refresh, args.out)
    result["refresh"]["statuses"] = statuses

    # Login versus authenticate() alone, same user, same hasher, alternated; medians,
    # so that a load spike elsewhere on the machine does not land on one side only.
    login_s, auth_s, login_statuses = [], [], {}
    for _ in range(n_login):
        c = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
        c.cookies["csrftoken"] = CSRF
        t = time.perf_counter()
        status = c.post(
            "/api/auth/login/",
            data={"username": user.username, "password": PASSWORD},
            content_type="application/json",
            HTTP_X_CSRFTOKEN=CSRF,
        ).status_code
        login_s.append(time.perf_counter() - t)
        login_statuses[status] = login_statuses.get(status, 0) + 1
        t = time.perf_counter()
        assert authenticate(login_request(), username=user.username, password=PASSWORD) is not None
        auth_s.append(time.perf_counter() - t)
    login_ms, auth_ms = 1000 * statistics.median(login_s), 1000 * statistics.median(auth_s)
    result["login"] = {
        "logins": n_login,
        "statuses": login_statuses,
        "login_ms": round(login_ms, 1),
        "authenticate_ms": round(auth_ms, 1),
        "overhead_pct": round(100 * (login_ms - auth_ms) / auth_ms, 1),
    }
    (args.out / "profile.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
