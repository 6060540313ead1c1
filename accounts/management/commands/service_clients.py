from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from accounts.models import ServiceClient
from accounts.service_clients import service_client_create, service_client_deactivate


class Command(BaseCommand):
    help = "Manage the service clients that may call POST /api/auth/introspect/ (HTTP Basic)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{create,list,revoke}")
        create = sub.add_parser("create", help="Create a client; prints its id and secret, once.")
        create.add_argument("name", help="A unique name, e.g. the service's name.")
        sub.add_parser("list", help="List clients (never their secrets).")
        for alias in ("revoke", "deactivate"):
            revoke = sub.add_parser(alias, help="Refuse a client from now on.")
            revoke.add_argument("client_id")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            try:
                client, secret = service_client_create(name=options["name"])
            except IntegrityError:
                raise CommandError(f"A service client named {options['name']!r} exists already.") from None
            self.stdout.write(f"client_id: {client.client_id}\nclient_secret: {secret}")
            self.stderr.write("The secret is shown only now; only its hash is stored.")
        elif action == "list":
            for client in ServiceClient.objects.order_by("name"):
                status = "active" if client.is_active else "inactive"
                used = client.last_used_at.isoformat(timespec="seconds") if client.last_used_at else "never"
                self.stdout.write(f"{client.client_id}\t{client.name}\t{status}\tlast used {used}")
        elif not service_client_deactivate(client_id=options["client_id"]):
            raise CommandError(f"No active service client {options['client_id']!r}.")
        else:
            self.stdout.write(f"Deactivated {options['client_id']}.")
