import getpass
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tokens import keys
from tokens.key_services import (
    KeyRefused,
    signing_key_add,
    signing_key_promote,
    signing_key_retire,
    signing_keys_list,
    signing_keys_reencrypt,
)


def operator() -> str:
    """Who ran the command, for the security log: the OS user (and, under sudo, who
    called sudo), or "" when the process has no name for its user."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (some containers)
        user = ""
    sudo_user = os.environ.get("SUDO_USER", "")
    if sudo_user and sudo_user != user:
        return f"{sudo_user} (sudo as {user or '?'})"
    return user


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"


class Command(BaseCommand):
    help = (
        "Manage the JWT signing keys: list them, add a new (published) key, promote a published key to sign, "
        "retire a key (--force when live sessions depend on it: they are ended), re-encrypt the private parts "
        "under the newest encryption key."
    )
    # This command is how an operator fixes what the checks report (a development
    # key, a key that cannot be decrypted): it must run while they fail.
    requires_system_checks = []

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="Every key, its state and the live sessions whose current tokens it signed.")
        add = sub.add_parser("add", help="Add a published key: in the JWKS and verifying, not yet signing.")
        add.add_argument("--private-key-file", help="Import this PEM private key instead of generating one.")
        add.add_argument(
            "--algorithm",
            choices=keys.ASYMMETRIC,
            default="",
            help="The key's algorithm, for ever (default: JWT_ALGORITHM). Promoting a key of another "
            "algorithm switches algorithm without logging anyone out.",
        )
        promote = sub.add_parser("promote", help="Make a published key the one that signs, on every host.")
        promote.add_argument("kid")
        promote.add_argument(
            "--force", action="store_true", help="Do not wait for JWKS caches (AUTH_JWKS_MAX_AGE) to see the key."
        )
        retire = sub.add_parser("retire", help="Stop accepting tokens signed by a key.")
        retire.add_argument("kid")
        retire.add_argument(
            "--force", action="store_true", help="Also end the live sessions whose current tokens it signed."
        )
        sub.add_parser(
            "reencrypt",
            help="Store every usable private part under the newest encryption key (after rotating "
            "DJANGO_SECRET_KEY or JWT_KEYS_ENCRYPTION_KEY), so that the old one can be dropped.",
        )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            getattr(self, f"_{action}")(**options)
        except KeyRefused as exc:
            raise CommandError(str(exc)) from None

    def _list(self, **options: Any) -> None:
        listing = signing_keys_list()
        if not listing:
            self.stdout.write(f"JWT_ALGORITHM={keys.algorithm()}: tokens are signed with JWT_SIGNING_KEY, no key set.")
            return
        self.stdout.write(f"{'KID':<44}  {'ALG':<6}  {'STATE':<9}  {'CREATED':<19}  {'PROMOTED':<19}  LIVE SESSIONS")
        for item in listing:
            key = item.key
            self.stdout.write(
                f"{key.kid:<44}  {key.algorithm:<6}  {key.state:<9}  {_when(key.created_at):<19}  "
                f"{_when(key.promoted_at):<19}  {item.live_sessions}"
            )

    def _add(self, *, private_key_file: str | None = None, algorithm: str = "", **options: Any) -> None:
        pem = None
        if private_key_file:
            try:
                pem = Path(private_key_file).read_text()
            except OSError as exc:
                raise CommandError(f"{private_key_file} cannot be read: {exc.strerror}.") from None
        key = signing_key_add(private_pem=pem, algorithm=algorithm, operator=operator())
        self.stdout.write(f"Added {key.algorithm} key {key.kid} (published; promote it to sign).")

    def _promote(self, *, kid: str, force: bool = False, **options: Any) -> None:
        key = signing_key_promote(kid=kid, force=force, operator=operator())
        self.stdout.write(f"Key {key.kid} now signs every new token.")

    def _retire(self, *, kid: str, force: bool = False, **options: Any) -> None:
        retired = signing_key_retire(kid=kid, force=force, operator=operator())
        self.stdout.write(f"Retired key {retired.key.kid}; {retired.sessions_ended} session(s) ended.")

    def _reencrypt(self, **options: Any) -> None:
        kids = signing_keys_reencrypt()
        self.stdout.write(f"Re-encrypted {len(kids)} key(s) under the newest encryption key.")
