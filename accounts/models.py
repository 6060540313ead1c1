from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """Our own user model from day one, so it can grow without a painful swap."""


class ServiceClient(models.Model):
    """A service that may introspect tokens (RFC 7662), with HTTP Basic credentials.

    The secret is stored only as a Django password hash and shown once, when the
    client is created (admin or `manage.py service_clients create`).
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
