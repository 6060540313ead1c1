"""PostgreSQL unreachable: the service answers 503 and issues no token, then
recovers by itself.

This needs PostgreSQL whatever the suite runs on: there is no honest SQLite
equivalent of a database server going away (a locked or unreadable file is a
different failure). The test creates a scratch database of its own on the local
server (SYSTEM_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres), migrates
it, and puts a TCP proxy between gunicorn and PostgreSQL that it can cut.
"""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlparse

import psycopg
import pytest
from psycopg import sql

from tests.servers import ROOT, Gunicorn, server_env

from .conftest import (
    THROTTLES_OFF,
    WORKERS,
    code_of,
    csrf_token,
    eventually,
    login,
    login_pair,
    me,
    pair_from,
    refresh,
    sets_token_cookie,
    storm,
)
from .proxy import TcpProxy

pytestmark = pytest.mark.system

UNAVAILABLE = (503, "service_unavailable")


def _admin_url() -> str:
    explicit = os.environ.get("SYSTEM_PG_URL")
    if explicit:
        return explicit
    configured = os.environ.get("DATABASE_URL", "")
    if configured.startswith(("postgres://", "postgresql://")):
        return configured
    return "postgres://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def scratch_postgres():
    """A migrated database of this test's own, with one user; dropped afterwards."""
    admin = urlparse(_admin_url())
    name = f"duotoken_system_{os.getpid()}"
    conninfo = {
        "host": admin.hostname or "127.0.0.1",
        "port": admin.port or 5432,
        "user": admin.username or "postgres",
        "password": admin.password,
        "dbname": admin.path.lstrip("/") or "postgres",
    }
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    auth = conninfo["user"] + (f":{conninfo['password']}" if conninfo["password"] else "")
    url = f"postgres://{auth}@{conninfo['host']}:{conninfo['port']}/{name}"
    setup = (
        "import django; django.setup();"
        "from django.core.management import call_command; call_command('migrate', verbosity=0);"
        "from tests.factories import user_create; user_create(username='pg')"
    )
    subprocess.run([sys.executable, "-c", setup], cwd=ROOT, env=server_env(DATABASE_URL=url), check=True)
    try:
        yield {**conninfo, "dbname": name}
    finally:
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _generation(conninfo: dict, session_id: str) -> int:
    with psycopg.connect(**conninfo) as conn:
        return conn.execute("SELECT generation FROM tokens_session WHERE id = %s", [session_id]).fetchone()[0]


def test_postgres_unreachable_login_and_refresh_answer_503_and_service_recovers(scratch_postgres):
    proxy = TcpProxy(scratch_postgres["port"], target_host=scratch_postgres["host"]).start()
    auth = scratch_postgres["user"] + (f":{scratch_postgres['password']}" if scratch_postgres["password"] else "")
    server = Gunicorn(
        workers=WORKERS,
        DATABASE_URL=f"postgres://{auth}@127.0.0.1:{proxy.port}/{scratch_postgres['dbname']}",
        **THROTTLES_OFF,
    )
    try:
        server.start()
        base = server.url
        csrf = csrf_token(base)
        first = login_pair(base, "pg", csrf=csrf)
        pair = pair_from(refresh(base, first.refresh, csrf=csrf))
        assert _generation(scratch_postgres, pair.session_id) == 2
        assert me(base, pair.access).status_code == 200  # the user is cached from here on

        proxy.cut()
        calls = [lambda: login(base, "pg", csrf=csrf), lambda: refresh(base, pair.refresh, csrf=csrf)]
        results = storm(4 * WORKERS, lambda i: calls[i % 2]())
        for response in results:
            assert (response.status_code, code_of(response)) == UNAVAILABLE, response.text
            assert not sets_token_cookie(response)
        # A live session is still known to Redis: the hot path answers without the database.
        response = me(base, pair.access)
        assert response.status_code == 200 and response.json()["username"] == "pg", response.text
        assert _generation(scratch_postgres, pair.session_id) == 2

        proxy.restore()
        assert eventually(lambda: login(base, "pg", csrf=csrf).status_code == 200, timeout=20)
        response = refresh(base, pair.refresh, csrf=csrf)
        assert response.status_code == 200, response.text
        assert pair_from(response).generation == 3
        assert _generation(scratch_postgres, pair.session_id) == 3
        assert me(base, pair_from(response).access).status_code == 200
    finally:
        server.stop()
        proxy.stop()
