"""Startup checks with plain messages: configuration, database, Redis.

Used by gunicorn's on_starting hook and `manage.py preflight`; exits with a
one-paragraph explanation instead of a traceback.
"""

from __future__ import annotations

import contextlib
import sys

import django
from django.core.exceptions import ImproperlyConfigured


def problems() -> list[str]:
    try:
        django.setup()
    except ImproperlyConfigured as exc:
        return [f"Configuration: {exc}"]
    from django.conf import settings
    from django.core import checks
    from django.db import connection
    from django_redis import get_redis_connection
    from redis.exceptions import RedisError

    found = [
        f"Configuration: {msg.msg} ({msg.id})"
        for msg in checks.run_checks(include_deployment_checks=False)
        if msg.is_serious()
    ]
    try:
        connection.ensure_connection()
    except Exception as exc:  # any driver error: we only report it
        found.append(
            f"Database: cannot connect to {connection.settings_dict['ENGINE'].rsplit('.', 1)[-1]} "
            f"database {connection.settings_dict['NAME']!s}: {str(exc).strip().splitlines()[0]}. "
            "Start it or set DATABASE_URL."
        )
    else:
        _load_signing_keys()
    try:
        get_redis_connection(settings.DUOTOKEN["REDIS_ALIAS"]).ping()
    except RedisError as exc:
        found.append(f"Redis: cannot reach {settings.REDIS_URL}: {exc}. Start redis-server or set REDIS_URL.")
    # gunicorn forks workers from this process: they must not inherit our sockets.
    connection.close()
    from tokens import store

    store.disconnect()
    return found


def _load_signing_keys() -> None:
    """Read the key set once here, so that gunicorn's workers are forked knowing
    it and can verify tokens even if the database is away when they first need to.
    Before the first `migrate` there is no table yet: nothing to read."""
    from django.db import DatabaseError

    from tokens import keys

    # A bad key is reported by check duotoken.E009.
    with contextlib.suppress(DatabaseError, keys.KeyUnusable):
        keys.current()


def preflight_or_exit() -> None:
    found = problems()
    if found:
        sys.stderr.write("Duotoken cannot start:\n" + "".join(f"  - {line}\n" for line in found))
        sys.exit(1)
