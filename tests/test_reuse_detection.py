from datetime import timedelta

from tokens.models import SecurityEvent, Session


def test_reuse_after_the_window_revokes_the_family_and_logs_both_parties(at_noon, make_spa, time_machine):
    stolen = at_noon.cookie("refresh")
    at_noon.refresh(HTTP_USER_AGENT="Owner/1.0", REMOTE_ADDR="198.51.100.1")
    thief = make_spa()
    thief.cookies.load({"csrftoken": at_noon.ensure_csrf()})
    thief.set_cookie("refresh", stolen)

    time_machine.shift(timedelta(minutes=1))
    response = thief.refresh(HTTP_USER_AGENT="Thief/6.6", REMOTE_ADDR="203.0.113.66")

    assert response.status_code == 401
    assert response.json() == {
        "detail": "This refresh token was already used; the session has been ended.",
        "code": "refresh_token_reused",
    }
    event = SecurityEvent.objects.get(kind="refresh_reuse_detected")
    assert event.data == {
        "presented_generation": 1,
        "current_generation": 2,
        "first_rotation": {"ip": "198.51.100.1", "user_agent": "Owner/1.0"},
        "replay": {"ip": "203.0.113.66", "user_agent": "Thief/6.6"},
    }
    assert event.ip == "203.0.113.66" and event.session_id == Session.objects.get().pk


def test_owner_is_logged_out_after_reuse_on_refresh_and_api(at_noon, make_spa, time_machine):
    stolen = at_noon.cookie("refresh")
    at_noon.refresh()
    thief = make_spa()
    thief.cookies.load({"csrftoken": at_noon.ensure_csrf()})
    thief.set_cookie("refresh", stolen)
    time_machine.shift(timedelta(minutes=1))
    thief.refresh()

    assert at_noon.me().json()["code"] == "session_revoked"
    assert at_noon.refresh().json()["code"] == "session_revoked"


def test_reuse_revokes_only_that_session(alice, make_spa, time_machine):
    time_machine.move_to("2026-11-23 12:00:00+00:00", tick=False)
    laptop, phone = make_spa(), make_spa()
    laptop.login()
    phone.login()
    stolen = laptop.cookie("refresh")
    laptop.refresh()
    time_machine.shift(timedelta(minutes=1))
    laptop.set_cookie("refresh", stolen)
    laptop.refresh()

    assert phone.me().status_code == 200
    assert Session.objects.filter(revoked_at__isnull=True).count() == 1
