from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import AbstractUser

from tokens.signals import REHASHED_FROM


class User(AbstractUser):
    """Our own user model from day one, so it can grow without a painful swap."""

    def check_password(self, raw_password: str) -> bool:
        # Django's own check, with one addition: a hash upgrade on login (more
        # iterations, a new preferred hasher) is marked, so that tokens.signals
        # carries the sessions over to the new hash instead of ending them.
        def setter(raw: str) -> None:
            previous = self.password
            self.set_password(raw)
            self._password = None  # a hash upgrade is not a password change
            setattr(self, REHASHED_FROM, previous)
            self.save(update_fields=["password"])

        return check_password(raw_password, self.password, setter)
