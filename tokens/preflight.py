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
    return report()[0]


def report() -> tuple[list[str], list[str]]:
    """(problems that refuse the start, warnings to show): configuration (the system
    checks, the database ones included: the stored signing keys), database, Redis."""
    try:
        django.setup()
    except ImproperlyConfigured as exc:
        return [f"Configuration: {exc}"], []
    from django.conf import settings
    from django.core import checks
    from django.db import connection
    from django_redis import get_redis_connection
    from redis.exceptions import RedisError

    try:
        connection.ensure_connection()
    except Exception as exc:  # any driver error: we only report it
        unreachable = (
            f"Database: cannot connect to {connection.settings_dict['ENGINE'].rsplit('.', 1)[-1]} "
            f"database {connection.settings_dict['NAME']!s}: {str(exc).strip().splitlines()[0]}. "
            "Start it or set DATABASE_URL."
        )
    else:
        unreachable = ""
    messages = checks.run_checks(include_deployment_checks=False, databases=None if unreachable else [connection.alias])
    found = [f"Configuration: {msg.msg} ({msg.id})" for msg in messages if msg.is_serious()]
    warnings = [f"Configuration: {msg.msg} ({msg.id})" for msg in messages if not msg.is_serious()]
    if unreachable:
        found.append(unreachable)
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
    return found, warnings


def _load_signing_keys() -> None:
    """Read the key set once here, so that gunicorn's workers are forked knowing
    it and can verify tokens even if the database is away when they first need to.
    Before the first `migrate` there is no table yet: nothing to read."""
    from django.db import DatabaseError

    from tokens import keys

    # A bad key is reported by checks duotoken.E009 and E012-E014.
    with contextlib.suppress(DatabaseError, keys.KeyUnusable):
        keys.current()


def preflight_or_exit() -> None:
    found, warnings = report()
    if found:
        sys.stderr.write("Duotoken cannot start:\n" + "".join(f"  - {line}\n" for line in found + warnings))
        sys.exit(1)
    if warnings:
        sys.stderr.write("Duotoken starts, with warnings:\n" + "".join(f"  - {line}\n" for line in warnings))
