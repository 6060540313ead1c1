from argparse import ArgumentTypeError
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tokens.services import expired_records_delete


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a whole number.") from None
    if value < 0:
        raise ArgumentTypeError(f"{value} must not be negative.")
    return value


class Command(BaseCommand):
    help = (
        "Delete sessions that expired more than --session-days ago and security events older than "
        "--event-days, in batches of short transactions; safe to run from cron on a live service."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--session-days",
            type=_non_negative_int,
            default=0,
            help="Keep expired sessions this many days after they expire (default 0: delete once expired).",
        )
        parser.add_argument(
            "--event-days",
            type=_non_negative_int,
            default=90,
            help="Delete security events older than this many days (default 90).",
        )
        parser.add_argument("--batch-size", type=_non_negative_int, default=1000, help="Rows per batch (default 1000).")
        parser.add_argument(
            "--pause", type=float, default=0.0, help="Seconds to sleep between batches, to spare a busy database."
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        if options["pause"] < 0:
            raise CommandError("--pause must not be negative.")
        result = expired_records_delete(
            session_age=timedelta(days=options["session_days"]),
            event_age=timedelta(days=options["event_days"]),
            batch_size=options["batch_size"],
            pause=options["pause"],
            dry_run=options["dry_run"],
        )
        verb = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(f"{verb} {result.sessions} expired session(s) and {result.events} security event(s).")
