"""Upgrading to credential-bound sessions logs nobody out: migration 0004 stamps
existing sessions with their user's current password fingerprint."""

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tokens.models import Session, credential_fingerprint


def migrate_tokens(target: str | None) -> None:
    executor = MigrationExecutor(connection)
    if target is None:
        target = next(node for node in executor.loader.graph.leaf_nodes() if node[0] == "tokens")[1]
    executor.migrate([("tokens", target)])


def test_upgrade_backfills_credentials_so_existing_sessions_keep_working(transactional_db, alice, logged_in):
    migrate_tokens("0002_session_revoke_permission")  # the schema before credentials existed

    migrate_tokens(None)

    session = Session.objects.get()
    alice.refresh_from_db()
    assert session.credential == credential_fingerprint(alice.password)
    assert logged_in.refresh().status_code == 200
    assert logged_in.me().status_code == 200
