"""gunicorn reads this file from the working directory. Before any worker starts,
it checks that the database and Redis answer, and says so plainly if not.

Threaded workers with keep-alive (bench/README.md, "Why /me fell at 64
connections"): a sync worker closes the connection after every response and then
waits for the client's FIN (gunicorn's close_graceful) and for each Redis round
trip with nothing else to do. Threads overlap those waits, and keep-alive spares
the accept, the close and the TCP handshake per request. Every thread keeps its own
database connection (CONN_MAX_AGE), so a host holds up to workers x threads of them.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
# gunicorn silently turns "sync" with more than one thread into gthread.
threads = int(os.environ.get("GUNICORN_THREADS", 4)) if worker_class == "gthread" else 1
# Idle keep-alive connections wait in the worker's poller, not in a thread. Behind a
# load balancer, set this above the balancer's own idle timeout.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
timeout = 30


def on_starting(server):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from tokens.preflight import preflight_or_exit

    preflight_or_exit()
