"""Keep Redis honest when users change: a cached user snapshot is dropped on every
save; deactivating or deleting a user, or any change of their stored password hash,
ends their sessions at once."""

from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from . import clock, revocations, store
from .models import RevokeReason, Session, credential_fingerprint

# Set on a user instance by a password-hash upgrade at login (accounts.models.User
# .check_password): the previous hash, whose sessions carry over to the new one.
REHASHED_FROM = "_duotoken_rehashed_from"


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _user_saved(
    sender: type[AbstractBaseUser],
    instance: AbstractBaseUser,
    created: bool,
    update_fields: frozenset[str] | None = None,
    **kwargs: Any,
) -> None:
    # last_login (written on every login) is not in the snapshot: keep the cache.
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    store.forget_user(str(instance.pk))
    from .services import sessions_revoke

    if not instance.is_active:
        sessions_revoke(reason=RevokeReason.USER_DEACTIVATED, user=instance)
        return
    if update_fields is not None and "password" not in update_fields:
        return
    # Whatever changed the hash (set_password, set_unusable_password, the admin's
    # "disable password-based authentication", assigning user.password), every
    # session opened with another hash ends. Comparing fingerprints rather than
    # trusting `_password` catches all of them, and costs one indexed query.
    current = credential_fingerprint(instance.password)
    previous = instance.__dict__.pop(REHASHED_FROM, None)
    if previous is not None:
        # The same password stored with a stronger hasher is no credential change.
        Session.objects.filter(
            user_id=instance.pk, revoked_at__isnull=True, credential=credential_fingerprint(previous)
        ).update(credential=current)
    sessions_revoke(reason=RevokeReason.PASSWORD_CHANGE, user=instance, except_credential=current)


@receiver(post_delete, sender=Session)
def _session_deleted(sender: type[Session], instance: Session, **kwargs: Any) -> None:
    # A deleted session (user deleted, or cleanup) must not live on in Redis. Its
    # outbox row (deleted with the session's transaction if that rolls back) is
    # replayed if Redis cannot be told now, and written again to a Redis restored
    # from a snapshot that still holds the session as alive. An expired session
    # needs neither: its Redis entry expired with it.
    now = clock.now()
    if not instance.is_revoked and instance.expires_at > now:
        sid, uid = str(instance.pk), str(instance.user_id)
        revocations.record([(sid, uid, "deleted")], now=now)
        if store.mark_revoked({(sid, uid): "deleted"}, ttl=revocations.revoked_ttl()):
            revocations.mark_published([sid], now=now)
