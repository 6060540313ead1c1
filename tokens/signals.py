"""Keep Redis honest when users change: a cached user snapshot is dropped on every
save; deactivating or deleting a user, or changing their password, ends their
sessions at once."""

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
    from .services import sessions_revoke

    if not instance.is_active:
        sessions_revoke(reason=RevokeReason.USER_DEACTIVATED, user=instance)
    elif getattr(instance, "_password", None) is not None:
        # set_password() then save(), wherever it happens (the admin's password
        # form, a shell, our API): every session ends, except the one our own
        # password-change endpoint keeps and rotates (it marks the instance).
        keep = getattr(instance, "_duotoken_keep_session_id", None)
        sessions_revoke(reason=RevokeReason.PASSWORD_CHANGE, user=instance, keep_session_id=keep)


@receiver(post_delete, sender=Session)
def _session_deleted(sender, instance, **kwargs):
    # A deleted session (user deleted, or cleanup) must not live on in Redis.
    if not instance.is_revoked:
        from .selectors import revoked_ttl

        store.mark_revoked({str(instance.pk): "deleted"}, ttl=revoked_ttl())
