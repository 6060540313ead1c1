import os
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.dev import DEMO_USERNAME, demo_password_generate, demo_user_ensure


class Command(BaseCommand):
    help = (
        "Development only (DJANGO_DEBUG on): create the demo user if it does not exist, with the password in "
        "DUOTOKEN_DEMO_PASSWORD (which `make serve` writes to the local .env) or a generated one, and print how "
        "to log in."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where the server will answer.")

    def handle(self, *args: Any, url: str, **options: Any) -> None:
        if not settings.DEBUG:
            self.stdout.write("DJANGO_DEBUG is off: no demo user (create users with manage.py createsuperuser).")
            return
        password = os.environ.get("DUOTOKEN_DEMO_PASSWORD") or demo_password_generate()
        try:
            user, created = demo_user_ensure(username=DEMO_USERNAME, password=password)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        if created or user.check_password(password):
            # Only to this terminal; the password lives in the local .env at most (git-ignored).
            self.stdout.write(f"Log in at {url}/ as {DEMO_USERNAME} / {password} (also an admin: {url}/admin/)")
        else:
            self.stdout.write(
                f"Log in at {url}/ as {DEMO_USERNAME} (its password was changed since it was created), "
                "or create a user: .venv/bin/python manage.py createsuperuser"
            )
