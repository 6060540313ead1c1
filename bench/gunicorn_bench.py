"""The gunicorn settings both projects run under in bench/run.py (the bind address
comes from the command line): those of the service's own gunicorn.conf.py, threaded
workers with keep-alive, sized for the cores taskset gives the server (gunicorn's
2 x cores + 1 workers, 4 threads each). BENCH_WORKER_CLASS=sync measures the old
setting (one request per connection, a worker blocked on each close)."""

import os

workers = 2 * len(os.sched_getaffinity(0)) + 1
worker_class = os.environ.get("BENCH_WORKER_CLASS", "gthread")
threads = 4 if worker_class == "gthread" else 1  # gunicorn turns sync with threads into gthread
keepalive = 5
timeout = 60
graceful_timeout = 5
backlog = 2048
accesslog = None
