"""The one seam for time: every expiry and grace decision asks `now()`.

Tests move it with time-machine instead of sleeping.
"""

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()


def whole_second(moment: datetime) -> datetime:
    """Tokens carry whole seconds; a generation is issued at the whole second it
    falls in, rounded down, so that its `iat` is never later than the moment of
    issue (a verifier with no leeway accepts it at once) and every re-mint of it
    (from the stored row) signs to the same bytes."""
    return moment.replace(microsecond=0)
