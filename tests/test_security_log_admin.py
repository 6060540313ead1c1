from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from tokens import clock
from tokens.models import SecurityEvent

from .factories import user_create

CHANGELIST = "/admin/tokens/securityevent/"
TRIED_PASSWORD = "Tr0ub4dor&3-not-the-password"
LAPTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
THIEF = "curl/8.5.0"


def listed(response) -> list[str]:
    assert response.status_code == 200, response.status_code
    return sorted(event.kind for event in response.context["cl"].result_list)


@pytest.fixture
def history(alice, make_spa):
    """A failed login, a login, a refresh, a reuse of the first refresh token from
    elsewhere after the grace window, and bob's login and logout."""
    bob = user_create(username="bob")
    assert make_spa().login(password=TRIED_PASSWORD, REMOTE_ADDR="10.0.0.66").status_code == 401
    laptop = make_spa()
    assert laptop.login(HTTP_USER_AGENT=LAPTOP, REMOTE_ADDR="10.0.0.1").status_code == 200
    first_refresh = laptop.cookie("refresh")
    assert laptop.refresh(HTTP_USER_AGENT=LAPTOP, REMOTE_ADDR="10.0.0.1").status_code == 200
    thief = make_spa()
    thief.set_cookie("refresh", first_refresh)
    with time_machine.travel(clock.now() + timedelta(minutes=2)):
        reused = thief.refresh(HTTP_USER_AGENT=THIEF, REMOTE_ADDR="203.0.113.9")
    assert reused.json()["code"] == "refresh_token_reused"
    bob_client = make_spa()
    assert bob_client.login(username="bob").status_code == 200
    assert bob_client.logout().status_code == 204
    return alice, bob


def test_security_log_admin_lists_every_event(admin_client, history):
    response = admin_client.get(CHANGELIST)

    assert listed(response) == [
        "login_failed",
        "login_succeeded",
        "login_succeeded",
        "login_succeeded",  # the admin's own
        "logout",
        "refresh_reuse_detected",
    ]


def test_security_log_admin_never_shows_a_tried_password(admin_client, history):
    failed = SecurityEvent.objects.get(kind=SecurityEvent.Kind.LOGIN_FAILED)

    pages = [admin_client.get(CHANGELIST), admin_client.get(f"{CHANGELIST}{failed.pk}/change/")]

    assert (failed.username, failed.ip) == ("alice", "10.0.0.66")
    for page in pages:
        assert page.status_code == 200
        assert "10.0.0.66" in page.content.decode()
        assert TRIED_PASSWORD not in page.content.decode()


def test_security_log_admin_reuse_event_shows_both_requests(admin_client, history):
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.REFRESH_REUSE)

    html = admin_client.get(f"{CHANGELIST}{event.pk}/change/").content.decode()

    assert event.data["first_rotation"] == {"ip": "10.0.0.1", "user_agent": LAPTOP}
    assert event.data["replay"] == {"ip": "203.0.113.9", "user_agent": THIEF}
    for text in ("10.0.0.1", LAPTOP, "203.0.113.9", THIEF):
        assert text in html


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("login_failed", ["login_failed"]), ("refresh_reuse_detected", ["refresh_reuse_detected"]), ("throttled", [])],
)
def test_security_log_admin_filters_by_event_type(admin_client, history, kind, expected):
    assert listed(admin_client.get(CHANGELIST, {"kind__exact": kind})) == expected


def test_security_log_admin_filters_by_user(admin_client, history):
    alice, bob = history

    alice_events = listed(admin_client.get(CHANGELIST, {"user": alice.pk}))
    bob_events = listed(admin_client.get(CHANGELIST, {"user": bob.pk}))

    # The failed login names the username tried, not a user: it is not alice's event.
    assert alice_events == ["login_succeeded", "refresh_reuse_detected"]
    assert bob_events == ["login_succeeded", "logout"]
    assert listed(admin_client.get(CHANGELIST, {"user": "nobody"})) == []
    assert listed(admin_client.get(CHANGELIST, {"user": "9" * 30})) == []  # beyond any integer column


def test_security_log_admin_filters_by_date(admin_client, history):
    SecurityEvent.objects.filter(kind=SecurityEvent.Kind.LOGIN_FAILED).update(
        created_at=clock.now() - timedelta(days=30)
    )
    today = timezone.localtime(clock.now()).replace(hour=0, minute=0, second=0, microsecond=0)
    past_week = {"created_at__gte": str(today - timedelta(days=7)), "created_at__lt": str(today + timedelta(days=1))}

    response = admin_client.get(CHANGELIST, past_week)

    assert "login_failed" not in listed(response)
    assert len(listed(response)) == 5  # with the admin's own login


def test_security_log_admin_is_read_only(admin_client, history):
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.LOGIN_FAILED)
    url = f"{CHANGELIST}{event.pk}/change/"

    page = admin_client.get(url)

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert admin_client.post(url, {"kind": "logout", "username": "x"}).status_code == 403
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client.post(f"{CHANGELIST}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert "delete_selected" not in admin_client.get(CHANGELIST).content.decode()
    event.refresh_from_db()
    assert (event.kind, event.username) == ("login_failed", "alice")


def test_security_log_admin_for_staff_without_view_permission_is_forbidden(history):
    staff = user_create(username="staff", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(content_type__app_label="tokens", codename="view_session"))
    client = Client()
    client.force_login(staff)

    assert client.get(CHANGELIST).status_code == 403
