from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import AbstractUser
from django.db import models

from tokens.signals import REHASHED_FROM


class User(AbstractUser):
    """Our own user model from day one, so it can grow without a painful swap."""

    def check_password(self, raw_password: str | None) -> bool:
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


class ServiceClient(models.Model):
    """A service that may introspect tokens (RFC 7662), with HTTP Basic credentials.

    The secret (256 random bits) is shown once, when the client is created (admin or
    `manage.py service_clients create`), and stored only as `sha256$<hex digest>`
    (accounts.service_clients); older rows hold a Django password hash until their
    first successful use replaces it.
    """

    name = models.CharField(max_length=100, unique=True)
    client_id = models.CharField(max_length=64, unique=True, editable=False)
    secret_hash = models.CharField(max_length=256, editable=False)
    is_active = models.BooleanField(default=True, help_text="Inactive clients are refused at once.")
    created_at = models.DateTimeField(editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Authenticated principal of an introspection request (DRF's request.user).
    is_authenticated = True
    is_anonymous = False

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"
