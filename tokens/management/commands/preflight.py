from typing import Any

from django.core.management.base import BaseCommand

from tokens.preflight import report


class Command(BaseCommand):
    help = (
        "Check configuration (the stored signing keys included), database and Redis, with plain messages; "
        "exit 1 on any problem. Warnings are shown and do not stop the start."
    )
    requires_system_checks = []

    def handle(self, *args: Any, **options: Any) -> None:
        found, warnings = report()
        for line in found:
            self.stderr.write(f"  - {line}")
        if warnings:
            self.stderr.write("Warnings:")
            for line in warnings:
                self.stderr.write(f"  - {line}")
        if found:
            raise SystemExit(1)
        self.stdout.write(
            "Configuration, database and Redis are fine; see the warnings."
            if warnings
            else "Configuration, database and Redis are all fine."
        )
