from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from tokens import clock
from tokens.models import RevokeReason, SecurityEvent, Session

from .factories import user_create

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
CHANGELIST = "/admin/tokens/session/"


def login(make_spa, username, agent, ip):
    client = make_spa()
    response = client.login(username=username, HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    assert response.status_code == 200, response.content
    return client, response.json()["session"]["id"]


def staff_client(*perms: str) -> Client:
    staff = user_create(username=f"staff-{len(perms)}", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        staff.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = Client()
    client.force_login(staff)
    return client


def listed(response) -> set[str]:
    assert response.status_code == 200, response.status_code
    return {str(s.pk) for s in response.context["cl"].result_list}


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def sessions(alice, make_spa):
    """alice on Firefox (live), alice on an iPhone (logged out), bob (expired)."""
    user_create(username="bob", email="bob@corp.example")
    firefox, firefox_id = login(make_spa, "alice", FIREFOX, "10.0.0.1")
    iphone, iphone_id = login(make_spa, "alice", IPHONE, "10.0.0.2")
    bob, bob_id = login(make_spa, "bob", FIREFOX, "192.168.7.7")
    assert iphone.logout().status_code == 204
    past = clock.now() - timedelta(days=40)
    Session.objects.filter(pk=bob_id).update(created_at=past, rotated_at=past, idle_expires_at=past)
    return {"firefox": (firefox, firefox_id), "iphone": (iphone, iphone_id), "bob": (bob, bob_id)}


def test_session_admin_changelist_shows_device_ip_and_status_of_each(admin_client, sessions):
    response = admin_client.get(CHANGELIST)

    assert listed(response) == {sid for _, sid in sessions.values()}
    html = response.content.decode()
    for text in ("Firefox on Windows", "Mobile Safari on iOS", "10.0.0.1", "192.168.7.7"):
        assert text in html
    assert '<td class="field-status">active</td>' in html
    assert '<td class="field-status">revoked (Logout)</td>' in html
    assert '<td class="field-status">expired</td>' in html


def test_session_admin_pages_never_show_a_raw_token(admin_client, sessions):
    client, session_id = sessions["firefox"]
    tokens = [client.cookie("access"), client.cookie("refresh")]

    pages = [admin_client.get(CHANGELIST), admin_client.get(f"{CHANGELIST}{session_id}/change/")]

    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert session_id in html or session_id[:8] in html
        for token in tokens:
            assert token not in html
            assert token.split(".")[2] not in html  # not even the signature


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("alice", {"firefox", "iphone"}),
        ("bob@corp", {"bob"}),
        ("10.0.0.2", {"iphone"}),
        ("192.168", {"bob"}),
        ("nobody%_'", set()),
    ],
)
def test_session_admin_search_by_username_email_or_ip_finds_matches(admin_client, sessions, query, expected):
    response = admin_client.get(CHANGELIST, {"q": query})

    assert listed(response) == {sessions[name][1] for name in expected}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "active"}, {"firefox"}),
        ({"status": "revoked"}, {"iphone"}),
        ({"status": "expired"}, {"bob"}),
        ({"revoke_reason__exact": "logout"}, {"iphone"}),
        ({"revoke_reason__exact": "admin"}, set()),
    ],
)
def test_session_admin_filters_by_status_and_reason(admin_client, sessions, params, expected):
    response = admin_client.get(CHANGELIST, params)

    assert listed(response) == {sessions[name][1] for name in expected}


def test_session_admin_filters_by_creation_date(admin_client, sessions):
    # The parameters of the "Past 7 days" link, as DateFieldListFilter builds them.
    today = timezone.localtime(clock.now()).replace(hour=0, minute=0, second=0, microsecond=0)
    recent = {"created_at__gte": str(today - timedelta(days=7)), "created_at__lt": str(today + timedelta(days=1))}

    response = admin_client.get(CHANGELIST, recent)

    assert listed(response) == {sessions["firefox"][1], sessions["iphone"][1]}


def test_session_admin_revoke_action_ends_sessions_at_once_and_says_how_many(admin_client, admin_user, sessions):
    firefox, firefox_id = sessions["firefox"]
    selected = [sid for _, sid in sessions.values()]  # one live, one logged out, one expired

    response = admin_client.post(CHANGELIST, {"action": "revoke_selected", "_selected_action": selected})

    assert response.status_code == 302
    assert messages_of(response) == ["1 session ended."]
    refused = firefox.me()
    assert refused.status_code == 401
    assert refused.json()["code"] == "session_revoked"
    assert firefox.refresh().status_code == 401
    assert Session.objects.get(pk=firefox_id).revoke_reason == RevokeReason.ADMIN
    assert Session.objects.get(pk=sessions["iphone"][1]).revoke_reason == RevokeReason.LOGOUT


def test_session_admin_revoke_action_records_which_admin_ended_which_sessions(admin_client, admin_user, sessions):
    _, firefox_id = sessions["firefox"]

    admin_client.post(
        CHANGELIST, {"action": "revoke_selected", "_selected_action": [firefox_id]}, REMOTE_ADDR="10.9.9.9"
    )

    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.ADMIN_REVOKED)
    assert (event.user.username, str(event.session_id), event.ip) == ("alice", firefox_id, "10.9.9.9")
    assert event.data == {"admin": {"id": admin_user.pk, "username": "admin"}, "sessions": [firefox_id]}


def test_session_admin_revoke_action_on_ended_sessions_says_none_ended(admin_client, sessions):
    response = admin_client.post(CHANGELIST, {"action": "revoke_selected", "_selected_action": [sessions["iphone"][1]]})

    assert messages_of(response) == ["0 sessions ended."]
    assert not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.ADMIN_REVOKED).exists()


def test_session_admin_staff_with_revoke_permission_can_revoke(sessions, db):
    client = staff_client("tokens.view_session", "tokens.revoke_session")
    firefox, firefox_id = sessions["firefox"]

    response = client.post(CHANGELIST, {"action": "revoke_selected", "_selected_action": [firefox_id]})

    assert messages_of(response) == ["1 session ended."]
    assert firefox.me().status_code == 401


def test_session_admin_staff_without_revoke_permission_can_look_but_not_revoke(sessions, db):
    client = staff_client("tokens.view_session")
    firefox, firefox_id = sessions["firefox"]

    page = client.get(CHANGELIST)
    response = client.post(CHANGELIST, {"action": "revoke_selected", "_selected_action": [firefox_id]})

    assert page.status_code == 200
    assert "revoke_selected" not in page.content.decode()
    assert response.status_code == 200  # the plain list again: no action ran
    assert messages_of(response) == []
    assert firefox.me().status_code == 200
    assert Session.objects.get(pk=firefox_id).revoked_at is None


def test_session_admin_nothing_can_be_added_edited_or_deleted(admin_client, sessions):
    _, firefox_id = sessions["firefox"]
    before = Session.objects.get(pk=firefox_id)
    change_url = f"{CHANGELIST}{firefox_id}/change/"

    change_page = admin_client.get(change_url)
    posted = admin_client.post(change_url, {"generation": 99, "revoked_at": "", "ip": "1.2.3.4"})

    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client.post(f"{CHANGELIST}{firefox_id}/delete/", {"post": "yes"}).status_code == 403
    assert change_page.status_code == 200
    html = change_page.content.decode()
    for field in ("generation", "ip", "revoked_at", "revoke_reason", "user"):
        assert f'name="{field}"' not in html
    assert 'name="_save"' not in html
    assert posted.status_code == 403
    after = Session.objects.get(pk=firefox_id)
    assert (after.generation, after.ip, after.revoked_at) == (before.generation, before.ip, None)
    assert "delete_selected" not in admin_client.get(CHANGELIST).content.decode()


def test_admin_for_non_staff_user_redirects_to_login(alice, sessions):
    client = Client()
    client.force_login(alice)

    for url in ("/admin/", CHANGELIST, "/admin/tokens/securityevent/", "/admin/accounts/user/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
