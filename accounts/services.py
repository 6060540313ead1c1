"""Login and logout: the account side of a session's life."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.contrib.auth import authenticate, get_user_model, user_logged_in, user_logged_out, user_login_failed
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Case, IntegerField, Q, Value, When
from django.http import HttpRequest
from django.middleware.csrf import rotate_token
from rest_framework.exceptions import ValidationError

from tokens import clock
from tokens.errors import AuthError
from tokens.events import security_event_record
from tokens.models import RevokeReason, SecurityEvent, Session
from tokens.services import (
    IssuedSession,
    Revoked,
    revocation_published_or_503,
    session_from_cookies,
    session_start,
    sessions_live_ids,
    sessions_revoke,
    sessions_revoke_by_admin,
)
from tokens.throttles import throttle_password_change

if TYPE_CHECKING:
    from .models import User

# A position in the sessions list: (rotated_at, id) of the last row shown, or ()
# for "the sessions after the current one, from the top".
SessionsAfter = tuple[datetime, UUID] | tuple[()]


def user_login(*, username: str, password: str, request: HttpRequest) -> tuple[AbstractBaseUser, IssuedSession]:
    # The backend (accounts.backends) throttles before it checks the password, and
    # the user_login_failed / user_logged_in receivers (accounts.signals) write the
    # security log, for this path and the admin's alike. Django's ModelBackend
    # hashes the password for unknown users too, so unknown and wrong answers take
    # similar time; inactive users are refused the same way.
    user = authenticate(request, username=username, password=password)
    if user is None:
        raise AuthError("invalid_credentials")
    try:
        issued = session_start(user=user, request=request)
    except AuthError:
        # The password or the account changed while the password was being checked:
        # a failed login like any other, in the log too.
        user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)
        raise
    rotate_token(request)  # a new CSRF token for the new identity, as django.contrib.auth.login does
    user_logged_in.send(sender=user.__class__, request=request, user=user, session_id=issued.session_id)
    return user, issued


def user_logout(*, request: HttpRequest, raw_access: str | None, raw_refresh: str | None) -> None:
    """End the session the cookies belong to; a no-op without (valid) cookies."""
    found = session_from_cookies(raw_access=raw_access, raw_refresh=raw_refresh)
    if found is None:
        return
    session_id, user_id = found
    ended = sessions_revoke(reason=RevokeReason.LOGOUT, session_ids=[session_id])
    if ended:
        user = get_user_model()._default_manager.filter(pk=user_id).first()
        security_event_record(kind=SecurityEvent.Kind.LOGOUT, request=request, user=user, session_id=session_id)
        user_logged_out.send(sender=user.__class__ if user else None, request=request, user=user)
    revocation_published_or_503(ended)


def user_logout_all(*, request: HttpRequest, user: AbstractBaseUser) -> int:
    ended = sessions_revoke(reason=RevokeReason.LOGOUT_ALL, user=user)
    security_event_record(
        kind=SecurityEvent.Kind.LOGOUT_ALL, request=request, user=user, data={"sessions_ended": len(ended)}
    )
    user_logged_out.send(sender=user.__class__, request=request, user=user)
    revocation_published_or_503(ended)
    return len(ended)


@dataclass(frozen=True)
class SessionsPage:
    sessions: list[Session]
    # Where the next page starts: None for no next page, () for "the sessions
    # after the current one, from the top", else (rotated_at, id) of the last row.
    next_after: SessionsAfter | None


def user_sessions_page(
    *, user: User, current_session_id: str, limit: int, after: SessionsAfter | None = None
) -> SessionsPage:
    """One page of the user's live sessions (neither ended nor expired): the current
    one first, then the most recently used. One query, keyset-paginated on
    (rotated_at, id), so a page costs the same however many sessions exist."""
    now = clock.now()
    live = Session.objects.filter(
        user=user, revoked_at__isnull=True, idle_expires_at__gt=now, absolute_expires_at__gt=now
    )
    rows: list[Session]
    if after is None:
        first = Case(When(pk=current_session_id, then=Value(0)), default=Value(1), output_field=IntegerField())
        rows = list(live.annotate(other=first).order_by("other", "-rotated_at", "-pk")[: limit + 1])
    else:
        rest = live.exclude(pk=current_session_id)
        if after:
            rotated_at, pk = after
            rest = rest.filter(Q(rotated_at__lt=rotated_at) | Q(rotated_at=rotated_at, pk__lt=pk))
        rows = list(rest.order_by("-rotated_at", "-pk")[: limit + 1])
    if len(rows) <= limit:
        return SessionsPage(sessions=rows, next_after=None)
    rows = rows[:limit]
    others = [row for row in rows if str(row.pk) != current_session_id]
    return SessionsPage(sessions=rows, next_after=(others[-1].rotated_at, others[-1].pk) if others else ())


def user_session_end(*, user: AbstractBaseUser, session_id: str, current_session_id: str, request: HttpRequest) -> bool:
    """End one of the user's own live sessions. Returns whether it was the current
    one; raises SessionNotFound for an unknown id and for anybody else's alike."""
    if not sessions_live_ids(session_ids=[session_id], user_ids=[user.pk]):
        raise SessionNotFound(session_id)
    ended = sessions_revoke(reason=RevokeReason.LOGOUT, session_ids=[session_id], user=user)
    if not ended:
        raise SessionNotFound(session_id)  # ended by a concurrent request
    is_current = session_id == current_session_id
    kind = SecurityEvent.Kind.LOGOUT if is_current else SecurityEvent.Kind.SESSION_REVOKED
    security_event_record(kind=kind, request=request, user=user, session_id=session_id)
    if is_current:
        user_logged_out.send(sender=user.__class__, request=request, user=user)
    revocation_published_or_503(ended)
    return is_current


def user_password_change(
    *, user: AbstractBaseUser, old_password: str, new_password: str, session_id: str, request: HttpRequest
) -> IssuedSession:
    """Change the password and end every session of the user, this one included,
    then open a new session for the device that made the change.

    Whoever holds a copy of this device's cookies (the reason for changing a
    password, often) is out with everyone else: no token of the old session works
    afterwards, and the new session's tokens exist only in this response."""
    throttle_password_change(request=request, session_id=session_id, username=user.get_username())
    # A fresh row: request.user may be a cached snapshot without the password hash.
    user = get_user_model()._default_manager.get(pk=user.pk)
    if not user.check_password(old_password):
        raise ValidationError({"old_password": ["The old password is not correct."]})
    try:
        validate_password(new_password, user=user)
    except DjangoValidationError as exc:
        raise ValidationError({"new_password": list(exc.messages)}) from None
    ended = sessions_revoke(reason=RevokeReason.PASSWORD_CHANGE, user=user)
    user.set_password(new_password)
    # tokens.signals ends, on this save, any session opened in the meantime with the
    # old password; session_start below binds the new one to the new hash.
    user.save(update_fields=["password"])
    issued = session_start(user=user, request=request)
    rotate_token(request)  # a new session, a new CSRF token, as at login
    security_event_record(
        kind=SecurityEvent.Kind.PASSWORD_CHANGED,
        request=request,
        user=user,
        session_id=issued.session_id,
        data={"sessions_ended": len(ended), "previous_session": session_id},
    )
    return issued


def users_sessions_revoke_by_admin(
    *, admin: AbstractBaseUser, request: HttpRequest | None, user_ids: Iterable[int]
) -> Revoked:
    """The admin action "revoke all sessions of selected users"."""
    return sessions_revoke_by_admin(admin=admin, request=request, session_ids=sessions_live_ids(user_ids=user_ids))


def user_deactivation_record(
    *, user: AbstractBaseUser, admin: AbstractBaseUser | None, request: HttpRequest | None, session_ids: list[str]
) -> None:
    """Log a deactivation; the sessions themselves are ended by the user's post_save
    receiver (tokens.signals), wherever the deactivation happens."""
    data: dict[str, Any] = {"sessions": sorted(session_ids)}
    if admin is not None:
        data["admin"] = {"id": admin.pk, "username": admin.get_username()}
    security_event_record(kind=SecurityEvent.Kind.USER_DEACTIVATED, request=request, user=user, data=data)


class SessionNotFound(Exception):
    """No live session with this id belongs to this user (it may not exist at all)."""
