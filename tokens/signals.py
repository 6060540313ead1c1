"""Keep Redis honest when users change: a cached user snapshot is dropped on every
save, and deactivating or deleting a user ends all their sessions at once."""

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from . import store
from .models import RevokeReason, Session


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _user_saved(sender, instance, created, update_fields=None, **kwargs):
    # last_login (written on every login) is not in the snapshot: keep the cache.
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    store.forget_user(str(instance.pk))
    if not instance.is_active:
        from .services import sessions_revoke

        sessions_revoke(reason=RevokeReason.USER_DEACTIVATED, user=instance)


@receiver(post_delete, sender=Session)
def _session_deleted(sender, instance, **kwargs):
    # A deleted session (user deleted, or cleanup) must not live on in Redis.
    if not instance.is_revoked:
        from .selectors import revoked_ttl

        store.mark_revoked([str(instance.pk)], reason="deleted", ttl=revoked_ttl())
