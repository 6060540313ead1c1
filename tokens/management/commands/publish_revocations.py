import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from tokens import store
from tokens.revocations import sync, waiting


class Command(BaseCommand):
    help = (
        "Write every revocation Redis has not taken yet (the outbox) to Redis, and all recent ones again to a Redis "
        "that went back in time (restarted from a snapshot, failed over). Run once (cron), or with --every N as a "
        "sidecar: then AUTH_REVOCATION_POLL_SECONDS=0 takes the periodic check off the web processes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every", type=float, default=0.0, help="Keep running, publishing every this many seconds (default: once)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        every = options["every"]
        if every < 0:
            raise CommandError("--every must not be negative.")
        while True:
            queued = waiting()
            try:
                published = sync(republish_recent=store.take_outage_seen())
            except store.StoreUnavailable:
                published = False
            if published:
                if queued or not every:
                    self.stdout.write(f"Published {queued} revocation(s); none is waiting.")
            else:
                message = f"Redis could not be written: {waiting()} revocation(s) still waiting."
                if not every:
                    raise CommandError(message)
                self.stderr.write(message)
            if not every:
                return
            close_old_connections()
            time.sleep(every)
