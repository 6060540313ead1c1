"""Login and logout: the account side of a session's life."""

from __future__ import annotations

from django.contrib.auth import authenticate, get_user_model, user_logged_in, user_logged_out
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from django.middleware.csrf import rotate_token

from tokens.errors import AuthError
from tokens.models import RevokeReason, SecurityEvent
from tokens.services import IssuedSession, security_event_record, session_from_cookies, session_start, sessions_revoke
from tokens.throttles import throttle_login


def user_login(*, username: str, password: str, request: HttpRequest) -> tuple[AbstractBaseUser, IssuedSession]:
    throttle_login(request=request, username=username)
    # Django's ModelBackend hashes the password for unknown users too, so unknown
    # and wrong answers take similar time; inactive users are refused the same way.
    user = authenticate(request, username=username, password=password)
    if user is None:
        security_event_record(kind=SecurityEvent.Kind.LOGIN_FAILED, request=request, username=username)
        raise AuthError("invalid_credentials")
    issued = session_start(user=user, request=request)
    rotate_token(request)  # a new CSRF token for the new identity, as django.contrib.auth.login does
    security_event_record(
        kind=SecurityEvent.Kind.LOGIN_SUCCEEDED, request=request, user=user, session_id=issued.session_id
    )
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    return user, issued


def user_logout(*, request: HttpRequest, raw_access: str | None, raw_refresh: str | None) -> None:
    """End the session the cookies belong to; a no-op without (valid) cookies."""
    found = session_from_cookies(raw_access=raw_access, raw_refresh=raw_refresh)
    if found is None:
        return
    session_id, user_id = found
    if sessions_revoke(reason=RevokeReason.LOGOUT, session_ids=[session_id]):
        user = get_user_model()._default_manager.filter(pk=user_id).first()
        security_event_record(kind=SecurityEvent.Kind.LOGOUT, request=request, user=user, session_id=session_id)
        user_logged_out.send(sender=user.__class__ if user else None, request=request, user=user)


def user_logout_all(*, request: HttpRequest, user: AbstractBaseUser) -> int:
    ended = sessions_revoke(reason=RevokeReason.LOGOUT_ALL, user=user)
    security_event_record(
        kind=SecurityEvent.Kind.LOGOUT_ALL, request=request, user=user, data={"sessions_ended": len(ended)}
    )
    user_logged_out.send(sender=user.__class__, request=request, user=user)
    return len(ended)
