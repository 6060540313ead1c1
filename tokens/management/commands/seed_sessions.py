"""Pre-create bench users and sessions, and write their cookies to a file.

Sessions that a benchmark will use (`--sessions`) are opened exactly as login opens
them: `session_start` with a request, the login security event, the Redis entry.
Their cookies are written one session a line, "<access cookie>\\t<refresh cookie>"
(name=value, ready for a Cookie header), so that refresh can be measured with
single-use tokens.

`--history` bulk-inserts sessions that have lived a while (rotated many times,
some logged out) with their login events, to measure with a database of that size;
no tokens are minted for them.

Bench users get a fast hasher (MD5, chosen explicitly here and nowhere else): their
passwords are never used to log in. `--login-users` creates users that a login
benchmark does use, with the project's real hasher, hashed once and shared.

Never run this against a database with real users: it is for bench/ only.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.hashers import MD5PasswordHasher, make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.test import RequestFactory

from tokens import clock
from tokens.conf import auth_settings
from tokens.events import security_event_record
from tokens.models import RevokeReason, SecurityEvent, Session
from tokens.services import session_start

BATCH = 5000
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


class Command(BaseCommand):
    help = "Create bench users and sessions as login does, and write their cookies to a file (bench/ only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tag", default="b", help="Usernames are bench-<tag>-<n>; use a new tag per call.")
        parser.add_argument("--sessions", type=int, default=0, help="Sessions to open as login does.")
        parser.add_argument("--users", type=int, default=0, help="Users they belong to (default: one each).")
        parser.add_argument("--out", type=Path, help="Where to write their cookies, one session a line.")
        parser.add_argument("--history", type=int, default=0, help="Older sessions to bulk-insert, no tokens.")
        parser.add_argument("--history-per-user", type=int, default=10)
        parser.add_argument("--login-users", type=int, default=0, help="Users with the real hasher, for login.")
        parser.add_argument("--password", default="bench-password-1")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["sessions"] and not opts["out"]:
            raise CommandError("--sessions needs --out.")
        tag, password = opts["tag"], opts["password"]
        started = time.monotonic()
        if opts["login_users"]:
            # The project's own first hasher, computed once: logins pay it, seeding does not.
            encoded = make_password(password)
            self._users(f"bench-{tag}-login", opts["login_users"], lambda: encoded)
            self.stdout.write(f"{opts['login_users']} login users bench-{tag}-login-<n>")
        if opts["sessions"]:
            n_users = opts["users"] or opts["sessions"]
            fast = MD5PasswordHasher()
            users = self._users(f"bench-{tag}", n_users, lambda: make_password(password, hasher=fast))
            self._sessions(users, opts["sessions"], opts["out"])
            self.stdout.write(f"{opts['sessions']} sessions -> {opts['out']}")
        if opts["history"]:
            self._history(tag, opts["history"], opts["history_per_user"], password)
            self.stdout.write(f"{opts['history']} sessions of history")
        self.stdout.write(f"done in {time.monotonic() - started:.1f} s")

    def _users(self, prefix: str, count: int, encoded_password: Callable[[], str]) -> list[AbstractBaseUser]:
        User = get_user_model()
        users: list[AbstractBaseUser] = []
        for start in range(0, count, BATCH):
            batch = [
                User(username=f"{prefix}-{i}", email=f"{prefix}-{i}@bench.invalid", password=encoded_password())
                for i in range(start, min(count, start + BATCH))
            ]
            users += User.objects.bulk_create(batch)
        if users and users[0].pk is None:  # backends that cannot return ids
            users = list(User.objects.filter(username__startswith=f"{prefix}-").order_by("pk"))
        return users

    def _sessions(self, users: list[AbstractBaseUser], count: int, out: Path) -> None:
        conf = auth_settings()
        factory = RequestFactory()
        lines = []
        for start in range(0, count, 1000):
            # One transaction per batch only saves commits; each session is still
            # written by session_start itself, with its Redis entry and login event.
            with transaction.atomic():
                for i in range(start, min(count, start + 1000)):
                    user = users[i % len(users)]
                    request = factory.post("/api/auth/login/", REMOTE_ADDR="127.0.0.1", HTTP_USER_AGENT=USER_AGENT)
                    issued = session_start(user=user, request=request)
                    security_event_record(
                        kind=SecurityEvent.Kind.LOGIN_SUCCEEDED,
                        request=request,
                        user=user,
                        session_id=issued.session_id,
                    )
                    lines.append(
                        f"{conf.access_cookie_name}={issued.pair.access}\t{conf.refresh_cookie_name}={issued.pair.refresh}"
                    )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n")

    def _history(self, tag: str, count: int, per_user: int, password: str) -> None:
        """Sessions as months of use leave them: rotated many times, a tenth logged
        out, all with their login event. Bulk-inserted straight into the tables."""
        conf = auth_settings()
        fast = MD5PasswordHasher()
        users = self._users(
            f"bench-{tag}-h", max(1, -(-count // per_user)), lambda: make_password(password, hasher=fast)
        )
        rng = random.Random(6)
        now = clock.now()
        for start in range(0, count, BATCH):
            sessions, events = [], []
            for i in range(start, min(count, start + BATCH)):
                created = now - timedelta(seconds=rng.randint(3600, 25 * 24 * 3600))
                rotated = created + timedelta(seconds=rng.randint(60, int((now - created).total_seconds())))
                absolute = created.replace(microsecond=0) + conf.max_lifetime
                revoked = rng.random() < 0.1
                session = Session(
                    id=uuid.uuid4(),
                    user_id=users[i // per_user].pk,
                    generation=rng.randint(2, 2000),
                    created_at=created,
                    rotated_at=rotated,
                    idle_expires_at=min(rotated + conf.refresh_lifetime, absolute),
                    absolute_expires_at=absolute,
                    revoked_at=rotated if revoked else None,
                    revoke_reason=RevokeReason.LOGOUT if revoked else "",
                    ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                    user_agent=USER_AGENT,
                    last_ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                    last_user_agent=USER_AGENT,
                )
                sessions.append(session)
                events.append(
                    SecurityEvent(
                        kind=SecurityEvent.Kind.LOGIN_SUCCEEDED,
                        created_at=created,
                        user_id=session.user_id,
                        session_id=session.id,
                        ip=session.ip,
                        user_agent=USER_AGENT,
                    )
                )
            with transaction.atomic():
                Session.objects.bulk_create(sessions)
                SecurityEvent.objects.bulk_create(events)
            if (start // BATCH) % 20 == 19:
                self.stdout.write(f"  {start + len(sessions)} / {count}")
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {Session._meta.db_table}")
                cursor.execute(f"ANALYZE {SecurityEvent._meta.db_table}")
