"""gunicorn reads this file from the working directory. Before any worker starts,
it checks that the database and Redis answer, and says so plainly if not."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
timeout = 30


def on_starting(server):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from config.preflight import preflight_or_exit

    preflight_or_exit()
