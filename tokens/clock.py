"""The one seam for time: every expiry and grace decision asks `now()`.

Tests move it with time-machine instead of sleeping.
"""

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
