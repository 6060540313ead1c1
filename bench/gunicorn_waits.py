"""bench/gunicorn_bench.py plus timers, for bench/worker_waits.py: per request, the
wall time inside the app, the wall time of Redis calls, and the wall time gunicorn
spends in close_graceful (half-close, then wait for the client's FIN). Each worker
writes its totals to $WAITS_OUT-<pid>.json when it exits."""

import json
import os
import threading
import time
from pathlib import Path

# The same settings as every benchmark server, then the timing hooks below.
exec(Path(__file__).with_name("gunicorn_bench.py").read_text())

_lock = threading.Lock()
_local = threading.local()
_totals = {"requests": 0, "app_wall": 0.0, "redis_wall": 0.0, "close_wall": 0.0, "first": 0.0, "last": 0.0}


def _add(name, value):
    with _lock:
        _totals[name] += value


def post_worker_init(worker):
    import redis.client
    from gunicorn import util

    close_graceful, execute_command = util.close_graceful, redis.client.Redis.execute_command

    def timed_close(sock, *args, **kwargs):
        started = time.perf_counter()
        try:
            return close_graceful(sock, *args, **kwargs)
        finally:
            _add("close_wall", time.perf_counter() - started)

    def timed_command(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return execute_command(self, *args, **kwargs)
        finally:
            _add("redis_wall", time.perf_counter() - started)

    util.close_graceful = timed_close
    redis.client.Redis.execute_command = timed_command
    _totals["cpu_at_start"] = time.process_time()


def pre_request(worker, req):
    _local.started = time.perf_counter()
    with _lock:
        _totals["first"] = _totals["first"] or _local.started


def post_request(worker, req, environ, resp):
    now = time.perf_counter()
    with _lock:
        _totals["requests"] += 1
        _totals["app_wall"] += now - _local.started
        _totals["last"] = now


def worker_exit(server, worker):
    _totals["cpu"] = time.process_time() - _totals.get("cpu_at_start", 0.0)
    with open(f"{os.environ['WAITS_OUT']}-{os.getpid()}.json", "w") as out:
        json.dump(_totals, out)
