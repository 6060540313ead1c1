"""Any change of the stored password hash ends the user's sessions, whatever the
path: the admin's "disable password-based authentication", set_unusable_password(),
assigning user.password, even QuerySet.update(). A hash upgrade at login (same
password, stronger hasher) is not a change."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.test import override_settings

from tokens.models import RevokeReason, Session

from .factories import user_create

REVOKED = {"detail": "This session has ended; log in again.", "code": "session_revoked"}


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """The production hasher's algorithm, with test-sized work."""

    iterations = 1000


@pytest.fixture
def devices(alice, make_spa):
    clients = [make_spa(), make_spa()]
    for client in clients:
        assert client.login().status_code == 200
        assert client.me().status_code == 200  # the session and the user are cached in Redis
    return clients


def assert_signed_out(clients, user) -> None:
    for client in clients:
        cookies = client.cookie("access"), client.cookie("refresh")
        assert client.me().json() == REVOKED
        assert client.refresh().json() == REVOKED
        # A 401 from refresh clears the cookies; copies of them stay refused too.
        client.set_cookie("access", cookies[0])
        client.set_cookie("refresh", cookies[1])
        assert client.me().json() == REVOKED
        assert client.refresh().json() == REVOKED
    assert {(s.revoked_at is not None, s.revoke_reason) for s in Session.objects.filter(user=user)} == {
        (True, RevokeReason.PASSWORD_CHANGE)
    }


def test_admin_disabling_password_based_authentication_ends_every_session(devices, alice, admin_client):
    bob = user_create(username="bob")
    bobs = type(devices[0])()
    assert bobs.login(username="bob").status_code == 200

    response = admin_client.post(
        f"/admin/accounts/user/{alice.pk}/password/",
        {"usable_password": "false", "unset-password": "Disable password-based authentication"},
    )

    assert response.status_code == 302, response.context["form"].errors
    alice.refresh_from_db()
    assert not alice.has_usable_password()
    assert_signed_out(devices, alice)
    assert bobs.me().status_code == 200
    assert Session.objects.get(user=bob).revoked_at is None


def test_set_unusable_password_ends_every_session(devices, alice):
    alice.set_unusable_password()
    alice.save()

    assert_signed_out(devices, alice)


def test_assigning_a_password_hash_directly_ends_every_session(devices, alice):
    alice.password = make_password("assigned in a shell 42")
    alice.save(update_fields=["password"])

    assert_signed_out(devices, alice)


def test_password_hash_changed_by_queryset_update_ends_the_session_on_its_next_refresh(devices, alice):
    get_user_model().objects.filter(pk=alice.pk).update(password=make_password("written by a script 42"))
    laptop, phone = devices

    response = laptop.refresh()

    assert response.status_code == 401
    assert response.json() == REVOKED
    assert Session.objects.filter(user=alice, revoke_reason=RevokeReason.PASSWORD_CHANGE).count() == 1
    assert phone.refresh().json() == REVOKED
    assert {(s.revoked_at is not None, s.revoke_reason) for s in Session.objects.filter(user=alice)} == {
        (True, RevokeReason.PASSWORD_CHANGE)
    }


def test_password_hash_upgraded_at_login_keeps_the_other_sessions(devices, alice, make_spa):
    hashers = [
        "tests.test_credential_changes.FastPBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    with override_settings(PASSWORD_HASHERS=hashers):
        tablet = make_spa()
        assert tablet.login().status_code == 200

    alice.refresh_from_db()
    assert alice.password.startswith("pbkdf2_sha256$1000$")  # upgraded from MD5 by the login
    for client in (*devices, tablet):
        assert client.refresh().status_code == 200
        assert client.me().status_code == 200
    assert not Session.objects.filter(revoked_at__isnull=False).exists()
