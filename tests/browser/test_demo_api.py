"""The demo page's own endpoints (Django's test client; no browser): they exist only
while the demo page is on, act only on the caller's session, and hand out no token."""

from datetime import timedelta

import pytest
from django.conf import settings

from demo.services import THIEF_IP, THIEF_USER_AGENT
from tokens.errors import ERRORS
from tokens.models import RevokeReason, SecurityEvent, Session

GRACE = timedelta(seconds=30)


@pytest.fixture
def demo_on(settings):
    settings.DUOTOKEN = {**settings.DUOTOKEN, "DEMO_PAGE": True}


@pytest.fixture
def refreshed(at_noon, demo_on, time_machine):
    """Logged in, then refreshed once: generation 1 is a used token."""
    time_machine.shift(timedelta(seconds=60))
    assert at_noon.refresh().status_code == 200
    return at_noon


def test_demo_endpoints_when_setting_off_are_404_before_authentication(logged_in):
    assert not settings.DUOTOKEN["DEMO_PAGE"]

    state = logged_in.get("/demo/api/state/")
    thief = logged_in.send("post", "/demo/api/thief/")

    assert (state.status_code, state.json()["code"]) == (404, "not_found")
    assert (thief.status_code, thief.json()["code"]) == (404, "not_found")
    assert Session.objects.get().revoked_at is None


def test_state_reports_generation_and_expiry_times_and_no_token(refreshed):
    response = refreshed.get("/demo/api/state/")

    assert response.status_code == 200
    session = Session.objects.get()
    expected_exp = int(session.rotated_at.timestamp()) + 300
    assert response.json() == {
        "generation": 2,
        "token_generation": 2,
        "access_expires_at": expected_exp,
        "access_lifetime": 300.0,
        "grace_seconds": 30.0,
        "rotated_at": session.rotated_at.timestamp(),
        "server_time": response.json()["server_time"],
        "bound_at": None,
    }
    assert refreshed.cookie("access") not in response.content.decode()


def test_state_without_a_session_is_not_authenticated(spa, demo_on):
    response = spa.get("/demo/api/state/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_thief_before_any_refresh_has_nothing_to_steal(at_noon, demo_on):
    response = at_noon.send("post", "/demo/api/thief/")

    assert response.status_code == 409
    assert response.json() == {
        "detail": "This session has not been refreshed yet, so there is no used refresh token to replay.",
        "code": "nothing_to_steal",
    }
    assert Session.objects.get().revoked_at is None


def test_thief_inside_the_grace_window_waits_and_changes_nothing(refreshed, time_machine):
    time_machine.shift(GRACE - timedelta(seconds=10))

    response = refreshed.send("post", "/demo/api/thief/")

    assert response.status_code == 409
    assert response.json()["code"] == "grace_window_open"
    assert response.json()["detail"].startswith("The grace window is open for 1")
    session = Session.objects.get()
    assert (session.revoked_at, session.generation) == (None, 2)
    assert not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.REFRESH_REUSE).exists()


def test_thief_conflicts_are_codes_of_the_error_contract(refreshed, make_spa):
    nothing = make_spa()
    assert nothing.login().status_code == 200
    early = refreshed.send("post", "/demo/api/thief/")
    before_any_refresh = nothing.send("post", "/demo/api/thief/")

    assert (early.status_code, early.json()["code"]) == (ERRORS["grace_window_open"][0], "grace_window_open")
    assert (before_any_refresh.status_code, before_any_refresh.json()) == (
        ERRORS["nothing_to_steal"][0],
        {"detail": ERRORS["nothing_to_steal"][1], "code": "nothing_to_steal"},
    )


def test_thief_after_the_window_is_detected_and_ends_the_session(refreshed, time_machine):
    time_machine.shift(GRACE + timedelta(seconds=1))

    response = refreshed.send("post", "/demo/api/thief/")

    assert response.status_code == 200
    session = Session.objects.get()
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.REFRESH_REUSE)
    assert response.json() == {
        "outcome": "refresh_token_reused",
        "event": {
            "kind": "refresh_reuse_detected",
            "created_at": event.created_at.isoformat(),
            "session_id": str(session.pk),
            "ip": THIEF_IP,
            "user_agent": THIEF_USER_AGENT,
            "data": {
                "presented_generation": 1,
                "current_generation": 2,
                "first_rotation": {"ip": "127.0.0.1", "user_agent": ""},
                "replay": {"ip": THIEF_IP, "user_agent": THIEF_USER_AGENT},
            },
        },
    }
    assert session.revoke_reason == RevokeReason.REUSE
    assert dict(response.cookies) == {}  # no token travels to the page
    assert refreshed.me().json()["code"] == "session_revoked"
    assert refreshed.refresh().json()["code"] == "session_revoked"


def test_thief_needs_the_csrf_header(refreshed, time_machine):
    time_machine.shift(GRACE + timedelta(seconds=1))

    response = refreshed.send("post", "/demo/api/thief/", csrf=False)

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert Session.objects.get().revoked_at is None
