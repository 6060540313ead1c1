"""A login racing a password change or a deactivation never leaves a live session
opened with the old credential, in either order. The interleaving is controlled:
a test authentication backend holds the login between `authenticate()` and
`session_start`, and a pre_save hook holds it inside `session_start`, while the
other request commits."""

from __future__ import annotations

import threading
import time

import pytest
from django.conf import settings
from django.db import connection
from django.db.models.signals import pre_save
from django.test import override_settings

from accounts.backends import ThrottledModelBackend
from tokens.models import RevokeReason, SecurityEvent, Session

from .factories import PASSWORD
from .test_admin_users import change_form_data

NEW_PASSWORD = "a brand new passphrase 42"
WAIT = 60  # seconds; generous for a loaded two-core machine, never reached when all is well
BACKEND = "tests.test_credential_race.PausingBackend"
INVALID = {"detail": "Unable to log in with the provided credentials.", "code": "invalid_credentials"}
REVOKED = {"detail": "This session has ended; log in again.", "code": "session_revoked"}


class PausingBackend(ThrottledModelBackend):
    """The project's backend that, once armed, holds the first successful authentication
    until released: the password has been checked, no session exists yet."""

    armed = False
    authenticated = threading.Event()
    release = threading.Event()

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and type(self).armed:
            type(self).armed = False
            type(self).authenticated.set()
            assert type(self).release.wait(WAIT)
        return user


@pytest.fixture
def pausing_backend():
    PausingBackend.armed = False
    PausingBackend.authenticated = threading.Event()
    PausingBackend.release = threading.Event()
    # The usual backends stay listed so that the admin's session (logged in through them) holds.
    with override_settings(AUTHENTICATION_BACKENDS=[BACKEND, *settings.AUTHENTICATION_BACKENDS]):
        yield PausingBackend
    PausingBackend.release.set()


class InThread(threading.Thread):
    """Runs one request in its own thread (and database connection)."""

    def __init__(self, call):
        super().__init__(daemon=True)
        self.call, self.response, self.error = call, None, None

    def run(self):
        try:
            self.response = self.call()
        except BaseException as exc:  # re-raised in the test's thread by result()
            self.error = exc
        finally:
            connection.close()

    def result(self):
        self.join(WAIT)
        assert not self.is_alive(), "the request did not finish"
        if self.error is not None:
            raise self.error
        return self.response


def change_password(owner):
    return owner.send("post", "/api/auth/password/change/", {"old_password": PASSWORD, "new_password": NEW_PASSWORD})


def deactivate(admin_client, user):
    return admin_client.post(f"/admin/accounts/user/{user.pk}/change/", change_form_data(user, is_active=None))


def live_sessions(user) -> set[str]:
    return {str(pk) for pk in Session.objects.filter(user=user, revoked_at__isnull=True).values_list("pk", flat=True)}


def wait_until_a_query_waits_for_a_lock() -> None:
    """Block until another connection waits on a row lock (PostgreSQL). Elsewhere
    (SQLite's IMMEDIATE transactions serialise every writer) there is nothing to
    observe, and the order is still forced: the login holds the write lock."""
    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + WAIT
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the other request never waited for the login's lock")


@pytest.fixture
def owner(transactional_db, alice, make_spa):
    client = make_spa()
    assert client.login().status_code == 200
    return client


def test_login_authenticated_before_a_password_change_commits_is_refused(owner, alice, make_spa, pausing_backend):
    attacker = make_spa()
    attacker.ensure_csrf()
    pausing_backend.armed = True
    login = InThread(attacker.login)
    login.start()
    assert pausing_backend.authenticated.wait(WAIT)

    changed = change_password(owner)  # commits while the login holds the old password's proof
    pausing_backend.release.set()

    assert changed.status_code == 200, changed.content
    response = login.result()
    assert response.status_code == 401
    assert response.json() == INVALID
    assert live_sessions(alice) == {changed.json()["session"]["id"]}
    assert attacker.cookie("refresh") is None
    failed = SecurityEvent.objects.get(kind=SecurityEvent.Kind.LOGIN_FAILED)
    assert (failed.username, failed.session_id) == ("alice", None)


def test_login_authenticated_before_a_deactivation_commits_is_refused(
    owner, alice, make_spa, admin_client, pausing_backend
):
    attacker = make_spa()
    attacker.ensure_csrf()
    pausing_backend.armed = True
    login = InThread(attacker.login)
    login.start()
    assert pausing_backend.authenticated.wait(WAIT)

    deactivated = deactivate(admin_client, alice)
    pausing_backend.release.set()

    assert (deactivated.status_code, deactivated["Location"]) == (302, "/admin/accounts/user/")
    response = login.result()
    assert response.status_code == 401
    assert response.json() == INVALID
    assert live_sessions(alice) == set()
    assert owner.me().json() == REVOKED


@pytest.fixture
def held_in_session_start():
    """Hold the next session insert (inside session_start's transaction, after the
    user row is locked) until released."""
    reached, release = threading.Event(), threading.Event()

    def hold(sender, instance, **kwargs):
        if not reached.is_set():
            reached.set()
            assert release.wait(WAIT)

    pre_save.connect(hold, sender=Session, dispatch_uid="held_in_session_start")
    yield reached, release
    release.set()
    pre_save.disconnect(sender=Session, dispatch_uid="held_in_session_start")


@pytest.mark.parametrize("change", ["password", "deactivation"])
def test_login_holding_the_user_lock_when_a_change_arrives_is_ended_by_it(
    change, owner, alice, make_spa, admin_client, held_in_session_start
):
    reached, release = held_in_session_start
    attacker = make_spa()
    attacker.ensure_csrf()
    login = InThread(attacker.login)
    login.start()
    assert reached.wait(WAIT)
    other = InThread(lambda: change_password(owner) if change == "password" else deactivate(admin_client, alice))
    other.start()

    wait_until_a_query_waits_for_a_lock()  # the change queues behind the login
    release.set()

    response = login.result()
    assert response.status_code == 200  # the login came first: it was valid then
    changed = other.result()
    assert changed.status_code == (200 if change == "password" else 302), changed.content
    if change == "deactivation":
        assert changed["Location"] == "/admin/accounts/user/"
    login_session = response.json()["session"]["id"]
    reason = RevokeReason.PASSWORD_CHANGE if change == "password" else RevokeReason.USER_DEACTIVATED
    assert Session.objects.get(pk=login_session).revoke_reason == reason
    assert attacker.me().json() == REVOKED
    assert attacker.refresh().json() == REVOKED
    expected_live = {changed.json()["session"]["id"]} if change == "password" else set()
    assert live_sessions(alice) == expected_live
