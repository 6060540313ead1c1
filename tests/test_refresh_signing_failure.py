"""A refresh whose new pair cannot be signed moves nothing: the generation, the
row and Redis stay as they were, so the client's retry, whenever it comes, is
still the current generation and never taken for a replay, let alone for theft."""

from contextlib import contextmanager
from datetime import timedelta

import jwt
import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from tokens import keys, store
from tokens.key_services import signing_key_add, signing_key_promote
from tokens.models import SecurityEvent, Session, SigningKey

GRACE = timedelta(seconds=30)


@contextmanager
def another_encryption_key(settings, kid):
    """A host started with another JWT_KEYS_ENCRYPTION_KEY than the key was stored under."""
    with override_settings(DUOTOKEN={**settings.DUOTOKEN, "KEYS_ENCRYPTION_KEY": Fernet.generate_key().decode()}):
        keys.forget()
        yield


@contextmanager
def corrupted_private_part(settings, kid):
    """The key's private part damaged in the table, then put back."""
    stored = SigningKey.objects.get(pk=kid).private_encrypted
    SigningKey.objects.filter(pk=kid).update(private_encrypted="gAAAAA-not-a-fernet-token")
    keys.forget()
    yield
    SigningKey.objects.filter(pk=kid).update(private_encrypted=stored)
    keys.forget()


def redis_entries(session):
    client = store._redis()
    uid = str(session.user_id)
    return client.exists(store.session_key(str(session.pk), uid)), client.exists(store.user_key(uid))


def row(session_id):
    session = Session.objects.get(pk=session_id)
    return (
        session.generation,
        session.rotated_at,
        session.idle_expires_at,
        session.recent_rotations,
        session.signing_kid,
        session.revoked_at,
    )


@pytest.mark.parametrize("failure", [another_encryption_key, corrupted_private_part])
def test_refresh_whose_key_cannot_sign_leaves_the_session_unmoved_and_a_later_retry_rotates(
    failure, at_noon, settings, time_machine
):
    session = Session.objects.get()
    promoted = signing_key_add()
    signing_key_promote(kid=promoted.kid, force=True)
    before = row(session.pk)
    uid = str(session.user_id)
    store._redis().delete(store.session_key(str(session.pk), uid), store.user_key(uid))  # to see what is written
    token = at_noon.cookie("refresh")

    time_machine.shift(timedelta(seconds=1))
    with failure(settings, promoted.kid):
        failed = at_noon.refresh()

    assert failed.status_code == 503
    assert failed.json() == {
        "detail": "The service cannot sign tokens right now; retry later.",
        "code": "signing_key_unavailable",
    }
    assert "dt_refresh" not in failed.cookies and "dt_access" not in failed.cookies
    assert row(session.pk) == before
    assert redis_entries(session) == (0, 0)

    time_machine.shift(GRACE + timedelta(seconds=1))  # the client retries after the window
    at_noon.set_cookie("refresh", token)
    retry = at_noon.refresh()

    assert retry.status_code == 200, retry.content
    assert retry["Duotoken-Refresh"] == "rotated"
    assert jwt.get_unverified_header(retry.cookies["dt_refresh"].value)["kid"] == promoted.kid
    session.refresh_from_db()
    assert (session.generation, session.revoked_at, session.signing_kid) == (2, None, promoted.kid)
    assert redis_entries(session) == (1, 1)
    assert at_noon.me().status_code == 200
    assert not SecurityEvent.objects.filter(kind="refresh_reuse_detected").exists()
