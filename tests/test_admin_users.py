import re

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from tokens.models import RevokeReason, SecurityEvent, Session

from .factories import user_create

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
CHANGELIST = "/admin/accounts/user/"


def login(make_spa, username, agent=FIREFOX):
    client = make_spa()
    response = client.login(username=username, HTTP_USER_AGENT=agent)
    assert response.status_code == 200, response.content
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def people(alice, make_spa):
    bob, carol = user_create(username="bob"), user_create(username="carol")
    clients = {
        "alice": [login(make_spa, "alice", FIREFOX), login(make_spa, "alice", IPHONE)],
        "bob": [login(make_spa, "bob")],
        "carol": [login(make_spa, "carol")],
    }
    return {"alice": alice, "bob": bob, "carol": carol}, clients


def test_user_admin_revoke_all_sessions_action_ends_every_session_of_selected_users(admin_client, admin_user, people):
    users, clients = people

    response = admin_client.post(
        CHANGELIST,
        {"action": "revoke_all_sessions", "_selected_action": [users["alice"].pk, users["bob"].pk]},
    )

    assert response.status_code == 302
    assert messages_of(response) == ["3 sessions ended."]
    for client in clients["alice"] + clients["bob"]:
        refused = client.me()
        assert refused.status_code == 401
        assert refused.json()["code"] == "session_revoked"
    assert clients["carol"][0].me().status_code == 200
    assert set(Session.objects.filter(revoked_at__isnull=False).values_list("revoke_reason", flat=True)) == {
        RevokeReason.ADMIN
    }
    events = SecurityEvent.objects.filter(kind=SecurityEvent.Kind.ADMIN_REVOKED).order_by("user__username")
    assert [(e.user.username, len(e.data["sessions"]), e.data["admin"]["username"]) for e in events] == [
        ("alice", 2, "admin"),
        ("bob", 1, "admin"),
    ]
    alice_ids = {str(pk) for pk in Session.objects.filter(user=users["alice"]).values_list("pk", flat=True)}
    assert set(events[0].data["sessions"]) == alice_ids


def test_user_admin_revoke_all_sessions_for_user_without_sessions_says_none_ended(admin_client, people):
    dave = user_create(username="dave")

    response = admin_client.post(CHANGELIST, {"action": "revoke_all_sessions", "_selected_action": [dave.pk]})

    assert messages_of(response) == ["0 sessions ended."]


def test_user_admin_staff_without_revoke_permission_cannot_revoke(people):
    users, clients = people
    staff = user_create(username="staff", is_staff=True)
    for codename in ("view_user", "change_user"):
        staff.user_permissions.add(Permission.objects.get(content_type__app_label="accounts", codename=codename))
    client = Client()
    client.force_login(staff)

    page = client.get(CHANGELIST)
    client.post(CHANGELIST, {"action": "revoke_all_sessions", "_selected_action": [users["alice"].pk]})

    assert page.status_code == 200
    assert "revoke_all_sessions" not in page.content.decode()
    for client in clients["alice"]:
        assert client.me().status_code == 200
    assert not Session.objects.filter(revoked_at__isnull=False).exists()


def test_user_admin_change_page_shows_the_users_live_sessions_inline(admin_client, people):
    users, clients = people
    assert clients["alice"][1].logout().status_code == 204

    response = admin_client.get(f"{CHANGELIST}{users['alice'].pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Firefox on Windows" in html
    assert "Mobile Safari on iOS" not in html  # ended sessions are in the session list, not here
    assert re.findall(r'field-status">\s*<p>(.*?)</p>', html) == ["active"]
    assert (
        f'<a href="/admin/tokens/session/?user__id__exact={users["alice"].pk}">All sessions of alice</a> (1 live)'
        in html
    )
    for session in Session.objects.filter(user=users["bob"]):
        assert str(session.pk)[:8] not in html
    assert f"/admin/tokens/securityevent/?user={users['alice'].pk}" in html


def change_form_data(user, **overrides):
    joined = timezone.localtime(user.date_joined)
    data = {
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": "on",
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        # The sessions inline is read-only: an empty management form is all it needs.
        "auth_sessions-TOTAL_FORMS": "0",
        "auth_sessions-INITIAL_FORMS": "0",
        "auth_sessions-MIN_NUM_FORMS": "0",
        "auth_sessions-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_user_admin_deactivating_a_user_ends_their_sessions_and_logs_the_admin(admin_client, admin_user, people):
    users, clients = people
    alice = users["alice"]

    response = admin_client.post(f"{CHANGELIST}{alice.pk}/change/", change_form_data(alice, is_active=None))

    assert response.status_code == 302, response.context["adminform"].form.errors
    alice.refresh_from_db()
    assert alice.is_active is False
    for client in clients["alice"]:
        refused = client.me()
        assert refused.status_code == 401
        assert refused.json()["code"] == "session_revoked"
    assert clients["bob"][0].me().status_code == 200
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.USER_DEACTIVATED)
    alice_ids = sorted(str(pk) for pk in Session.objects.filter(user=alice).values_list("pk", flat=True))
    assert (event.user, event.data) == (
        alice,
        {"sessions": alice_ids, "admin": {"id": admin_user.pk, "username": "admin"}},
    )


def test_user_admin_saving_an_active_user_ends_nothing(admin_client, people):
    users, clients = people
    alice = users["alice"]

    response = admin_client.post(f"{CHANGELIST}{alice.pk}/change/", change_form_data(alice, first_name="Alice"))

    assert response.status_code == 302, response.context["adminform"].form.errors
    for client in clients["alice"]:
        assert client.me().status_code == 200
    assert not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.USER_DEACTIVATED).exists()


def test_user_admin_deleting_a_user_ends_their_sessions(admin_client, people):
    users, clients = people

    response = admin_client.post(f"{CHANGELIST}{users['alice'].pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Session.objects.filter(user_id=users["alice"].pk).exists()
    for client in clients["alice"]:
        refused = client.me()
        assert refused.status_code == 401
        assert refused.json()["code"] == "session_revoked"


def test_user_admin_changing_a_password_ends_every_session_of_that_user(admin_client, people):
    users, clients = people
    alice = users["alice"]

    response = admin_client.post(
        f"{CHANGELIST}{alice.pk}/password/",
        {"password1": "a brand new passphrase 42", "password2": "a brand new passphrase 42", "usable_password": "true"},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    for client in clients["alice"]:
        assert client.me().json()["code"] == "session_revoked"
    assert set(Session.objects.filter(user=alice).values_list("revoke_reason", flat=True)) == {"password_change"}
    assert clients["bob"][0].me().status_code == 200


def test_set_password_anywhere_ends_the_users_sessions(people):
    users, clients = people
    alice = users["alice"]

    alice.set_password("changed from a shell 123")
    alice.save()

    for client in clients["alice"]:
        assert client.me().json()["code"] == "session_revoked"
