"""The one seam for time: every expiry and grace decision asks `now()`.

Tests move it with time-machine instead of sleeping.
"""

from datetime import datetime, timedelta

from django.utils import timezone


def now() -> datetime:
    return timezone.now()


def next_whole_second(moment: datetime) -> datetime:
    """Tokens carry whole seconds; a generation is issued at the next whole second
    so that its tokens live at least their full lifetime and every re-mint of it
    (from the stored row) signs to the same bytes."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)
