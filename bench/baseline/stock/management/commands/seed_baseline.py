"""Bench users and credentials for the stock baseline, made the way stock code makes
them: Simple JWT's RefreshToken.for_user (which records an OutstandingToken, as
TokenObtainPairView does) and django.contrib.auth.login into a database session.

Writes into --out-dir: jwt_access.txt and session.txt (one per --users user),
jwt_refresh.txt (--refresh single-use refresh tokens, spread over those users).
"""

import time
from pathlib import Path

from django.contrib.auth import get_user_model, login
from django.contrib.auth.hashers import MD5PasswordHasher, make_password
from django.contrib.sessions.backends.db import SessionStore
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test import RequestFactory
from rest_framework_simplejwt.tokens import RefreshToken

BATCH = 5000


class Command(BaseCommand):
    help = "Create bench users, JWTs and database sessions for the stock baseline."

    def add_arguments(self, parser):
        parser.add_argument("--tag", default="b")
        parser.add_argument("--users", type=int, default=0)
        parser.add_argument("--refresh", type=int, default=0)
        parser.add_argument("--login-users", type=int, default=0)
        parser.add_argument("--password", default="bench-password-1")
        parser.add_argument("--out-dir", type=Path, required=True)

    def handle(self, *args, **opts):
        started = time.monotonic()
        out, tag, password = opts["out_dir"], opts["tag"], opts["password"]
        out.mkdir(parents=True, exist_ok=True)
        if opts["login_users"]:
            encoded = make_password(password)  # the configured hasher, once
            self._users(f"bench-{tag}-login", opts["login_users"], lambda: encoded)
        if opts["users"]:
            fast = MD5PasswordHasher()
            users = self._users(f"bench-{tag}", opts["users"], lambda: make_password(password, hasher=fast))
            factory = RequestFactory()
            access, sessions = [], []
            with transaction.atomic():
                for user in users:
                    access.append(str(RefreshToken.for_user(user).access_token))
                    request = factory.get("/")
                    request.session = SessionStore()
                    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                    request.session.save()
                    sessions.append(f"sessionid={request.session.session_key}")
            (out / "jwt_access.txt").write_text("\n".join(access) + "\n")
            (out / "session.txt").write_text("\n".join(sessions) + "\n")
            if opts["refresh"]:
                tokens = []
                for start in range(0, opts["refresh"], 1000):
                    with transaction.atomic():
                        for i in range(start, min(opts["refresh"], start + 1000)):
                            tokens.append(str(RefreshToken.for_user(users[i % len(users)])))
                (out / "jwt_refresh.txt").write_text("\n".join(tokens) + "\n")
        self.stdout.write(f"done in {time.monotonic() - started:.1f} s")

    def _users(self, prefix, count, encoded_password):
        User = get_user_model()
        users = []
        for start in range(0, count, BATCH):
            users += User.objects.bulk_create(
                User(username=f"{prefix}-{i}", email=f"{prefix}-{i}@bench.invalid", password=encoded_password())
                for i in range(start, min(count, start + BATCH))
            )
        return users
