from django.core.management.base import BaseCommand

from tokens.preflight import problems


class Command(BaseCommand):
    help = "Check configuration, database and Redis, with plain messages; exit 1 on any problem."
    requires_system_checks = []

    def handle(self, *args, **options):
        found = problems()
        for line in found:
            self.stderr.write(f"  - {line}")
        if found:
            raise SystemExit(1)
        self.stdout.write("Configuration, database and Redis are all fine.")
