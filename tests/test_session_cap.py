"""Sessions are bounded: a cap on live sessions per user (login ends the oldest and
logs it), a keyset-paginated sessions API, and a bounded admin inline."""

import re

import pytest
from django.core.checks import Error
from django.test import RequestFactory

from tokens.checks import check_duotoken_settings
from tokens.models import RevokeReason, SecurityEvent, Session
from tokens.services import session_start

REVOKED = {"detail": "This session has ended; log in again.", "code": "session_revoked"}


@pytest.fixture
def cap(settings):
    def set_cap(value: int) -> None:
        settings.DUOTOKEN = {**settings.DUOTOKEN, "MAX_SESSIONS_PER_USER": value}

    return set_cap


def logged_in_devices(make_spa, count: int) -> list:
    clients = []
    for _ in range(count):
        client = make_spa()
        assert client.login().status_code == 200
        clients.append(client)
    return clients


def session_id(client) -> str:
    return client.get("/api/auth/sessions/").json()[0]["id"]


def test_login_beyond_the_session_limit_ends_the_oldest_and_logs_it(alice, make_spa, cap):
    cap(3)
    oldest, *kept = logged_in_devices(make_spa, 3)
    oldest_id = session_id(oldest)

    newest = make_spa()
    response = newest.login()

    assert response.status_code == 200
    assert oldest.me().json() == REVOKED
    assert oldest.refresh().json() == REVOKED
    for client in (*kept, newest):
        assert client.me().status_code == 200
    assert Session.objects.get(pk=oldest_id).revoke_reason == RevokeReason.SESSION_LIMIT
    assert Session.objects.filter(user=alice, revoked_at__isnull=True).count() == 3
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.SESSION_LIMIT)
    assert (event.user, str(event.session_id), event.data) == (
        alice,
        response.json()["session"]["id"],
        {"limit": 3, "sessions": [oldest_id]},
    )


def test_login_under_the_limit_after_a_logout_ends_nothing(alice, make_spa, cap):
    cap(3)
    devices = logged_in_devices(make_spa, 3)
    assert devices[0].logout().status_code == 204

    assert make_spa().login().status_code == 200

    for client in devices[1:]:
        assert client.me().status_code == 200
    assert not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.SESSION_LIMIT).exists()


def test_session_limit_defaults_to_50(alice, make_spa):
    assert Session.objects.count() == 0
    request = RequestFactory().post("/api/auth/login/")
    first = session_start(user=alice, request=request).session_id
    for _ in range(49):
        session_start(user=alice, request=request)
    assert Session.objects.filter(revoked_at__isnull=True).count() == 50

    assert make_spa().login().status_code == 200

    assert Session.objects.filter(revoked_at__isnull=True).count() == 50
    assert Session.objects.get(pk=first).revoke_reason == RevokeReason.SESSION_LIMIT


@pytest.mark.parametrize("value", [0, -1, 1001])
def test_session_limit_out_of_range_is_a_system_check_error(cap, value):
    cap(value)

    errors = check_duotoken_settings()

    assert Error("AUTH_MAX_SESSIONS_PER_USER must be between 1 and 1000.", id="duotoken.E020") in errors


@pytest.fixture
def many_sessions(alice, spa, cap, time_machine):
    """130 live sessions of alice (several per second, so that the keyset's id
    tie-break matters), plus the one `spa` logs in with, which is the newest."""
    cap(1000)
    time_machine.move_to("2026-11-23 12:00:00+00:00", tick=False)
    request = RequestFactory().post("/api/auth/login/")
    for n in range(130):
        if n % 4 == 0:
            time_machine.shift(1)
        session_start(user=alice, request=request)
    time_machine.shift(1)
    assert spa.login().status_code == 200
    return spa


def next_link(response) -> str | None:
    match = re.fullmatch(r'<(http://testserver/api/auth/sessions/\?[^>]+)>; rel="next"', response.get("Link", ""))
    return match.group(1) if match else None


def test_sessions_list_pages_through_every_live_session_once_current_first(many_sessions, alice):
    expected = list(
        Session.objects.filter(user=alice, revoked_at__isnull=True)
        .order_by("-rotated_at", "-pk")
        .values_list("pk", flat=True)
    )
    current = str(expected[0])  # the newest is the current one here

    pages, url = [], "/api/auth/sessions/"
    while url:
        response = many_sessions.get(url)
        assert response.status_code == 200
        pages.append([row["id"] for row in response.json()])
        url = next_link(response)

    assert [len(page) for page in pages] == [50, 50, 31]
    assert pages[0][0] == current
    assert [pk for page in pages for pk in page] == [str(pk) for pk in expected]


def test_sessions_list_pages_cost_one_query_each(many_sessions, django_assert_num_queries):
    assert many_sessions.me().status_code == 200  # the user snapshot is back in Redis
    first = many_sessions.get("/api/auth/sessions/?limit=100")

    with django_assert_num_queries(1):
        second = many_sessions.get(next_link(first))

    assert (len(first.json()), len(second.json()), next_link(second)) == (100, 31, None)


def test_sessions_list_with_limit_one_shows_current_then_the_others(many_sessions):
    first = many_sessions.get("/api/auth/sessions/?limit=1")
    second = many_sessions.get(next_link(first))

    assert [row["current"] for row in first.json()] == [True]
    assert [row["current"] for row in second.json()] == [False]
    assert first.json()[0]["id"] != second.json()[0]["id"]
    assert next_link(second) is not None


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("limit=0", {"limit": ["Ensure this value is greater than or equal to 1."]}),
        ("limit=101", {"limit": ["Ensure this value is less than or equal to 100."]}),
        ("limit=ten", {"limit": ["A valid integer is required."]}),
        ("cursor=not-a-cursor", {"cursor": ["Invalid cursor."]}),
        ("cursor=WyJ5ZXN0ZXJkYXkiLCAiMSJd", {"cursor": ["Invalid cursor."]}),
    ],
)
def test_sessions_list_with_bad_parameters_is_400_invalid(logged_in, query, fields):
    response = logged_in.get(f"/api/auth/sessions/?{query}")

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid input.", "code": "invalid", "fields": fields}


def test_user_admin_page_lists_a_bounded_number_of_sessions_and_links_to_all(many_sessions, alice, admin_client):
    response = admin_client.get(f"/admin/accounts/user/{alice.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert re.findall(r'field-status">\s*<p>(.*?)</p>', html) == ["active"] * 20
    assert f'<a href="/admin/tokens/session/?user__id__exact={alice.pk}">All sessions of alice</a> (131 live)' in html
    listed = admin_client.get(f"/admin/tokens/session/?user__id__exact={alice.pk}")
    assert listed.status_code == 200
    assert "131 sessions" in listed.content.decode()
