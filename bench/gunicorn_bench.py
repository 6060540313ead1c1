"""The gunicorn settings both projects run under in bench/run.py (the bind address
comes from the command line). Workers are sized for the cores taskset gives the
server: gunicorn's 2 x cores + 1 for sync workers."""

import os

workers = 2 * len(os.sched_getaffinity(0)) + 1
worker_class = "sync"
timeout = 60
graceful_timeout = 5
backlog = 2048
accesslog = None
