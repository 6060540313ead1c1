import uuid

import pytest

from tokens.models import RevokeReason, SecurityEvent, Session

from .factories import user_create

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
NOT_FOUND = {"detail": "Not found.", "code": "not_found"}


def login(make_spa, username="alice", agent=FIREFOX, ip="127.0.0.1"):
    client = make_spa()
    response = client.login(username=username, HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    assert response.status_code == 200, response.content
    return client, response.json()["session"]["id"]


@pytest.fixture
def two_devices(alice, make_spa):
    laptop, laptop_id = login(make_spa, agent=FIREFOX, ip="10.0.0.1")
    phone, phone_id = login(make_spa, agent=IPHONE, ip="10.0.0.2")
    return laptop, laptop_id, phone, phone_id


def test_sessions_list_with_two_devices_shows_both_and_marks_current(two_devices):
    laptop, laptop_id, _, phone_id = two_devices

    response = laptop.get("/api/auth/sessions/")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    rows = {row["id"]: row for row in response.json()}
    assert set(rows) == {laptop_id, phone_id}
    laptop_row, phone_row = rows[laptop_id], rows[phone_id]
    assert set(laptop_row) == {"id", "device", "ip", "created_at", "last_used_at", "current", "bound", "bound_at"}
    assert (laptop_row["bound"], laptop_row["bound_at"]) == (False, None)
    assert (laptop_row["device"], laptop_row["ip"], laptop_row["current"]) == ("Firefox on Windows", "10.0.0.1", True)
    assert (phone_row["device"], phone_row["ip"], phone_row["current"]) == ("Mobile Safari on iOS", "10.0.0.2", False)
    assert response.json()[0]["id"] == laptop_id  # the current one first


def test_sessions_list_costs_one_query(two_devices, django_assert_num_queries):
    laptop = two_devices[0]
    assert laptop.me().status_code == 200  # the user snapshot is back in Redis after login's last_login save

    with django_assert_num_queries(1):  # the session check itself is answered by Redis
        assert laptop.get("/api/auth/sessions/").status_code == 200


def test_sessions_list_after_logout_and_for_other_users_excludes_them(two_devices, make_spa, db):
    laptop, laptop_id, phone, _ = two_devices
    user_create(username="bob")
    login(make_spa, username="bob")
    assert phone.logout().status_code == 204

    response = laptop.get("/api/auth/sessions/")

    assert [row["id"] for row in response.json()] == [laptop_id]


def test_sessions_list_without_cookies_is_401(spa, db):
    response = spa.get("/api/auth/sessions/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_session_delete_of_other_device_ends_it_and_keeps_current(two_devices):
    laptop, _, phone, phone_id = two_devices

    response = laptop.send("delete", f"/api/auth/sessions/{phone_id}/")

    assert response.status_code == 204
    assert "dt_access" not in response.cookies  # this device's cookies are untouched
    assert laptop.me().status_code == 200
    refused = phone.me()
    assert refused.status_code == 401
    assert refused.json()["code"] == "session_revoked"
    assert phone.refresh().status_code == 401
    session = Session.objects.get(pk=phone_id)
    assert session.revoke_reason == RevokeReason.LOGOUT
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.SESSION_REVOKED)
    assert (str(event.session_id), event.user.username) == (phone_id, "alice")


def test_session_delete_of_current_behaves_like_logout(two_devices):
    laptop, laptop_id, phone, _ = two_devices

    response = laptop.send("delete", f"/api/auth/sessions/{laptop_id}/")

    assert response.status_code == 204
    for name in ("dt_access", "dt_refresh"):
        assert response.cookies[name].value == ""
        assert response.cookies[name]["max-age"] == 0
    assert response.cookies["dt_access"]["path"] == "/"
    assert response.cookies["dt_refresh"]["path"] == "/api/auth/"
    assert laptop.me().status_code == 401
    assert phone.me().status_code == 200
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.LOGOUT, session_id=laptop_id).count() == 1


def test_session_delete_of_someone_elses_session_is_404_like_unknown_and_ends_nothing(two_devices, make_spa, db):
    laptop, _, _, _ = two_devices
    user_create(username="bob")
    bob, bob_session = login(make_spa, username="bob")

    foreign = laptop.send("delete", f"/api/auth/sessions/{bob_session}/")
    unknown = laptop.send("delete", f"/api/auth/sessions/{uuid.uuid4()}/")
    malformed = laptop.send("delete", "/api/auth/sessions/not-a-uuid/")

    assert (foreign.status_code, unknown.status_code, malformed.status_code) == (404, 404, 404)
    assert foreign.json() == unknown.json() == malformed.json() == NOT_FOUND
    assert bob.me().status_code == 200
    assert Session.objects.get(pk=bob_session).revoked_at is None


def test_session_delete_of_already_ended_session_is_404(two_devices):
    laptop, _, phone, phone_id = two_devices
    assert phone.logout().status_code == 204

    response = laptop.send("delete", f"/api/auth/sessions/{phone_id}/")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_session_delete_without_csrf_is_403_and_ends_nothing(two_devices):
    laptop, _, phone, phone_id = two_devices

    response = laptop.send("delete", f"/api/auth/sessions/{phone_id}/", csrf=False)

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert phone.me().status_code == 200


def test_session_delete_without_cookies_is_401(spa, db):
    response = spa.send("delete", f"/api/auth/sessions/{uuid.uuid4()}/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
