from datetime import timedelta

from django.conf import settings
from django.test import override_settings

from tokens.models import Session


def test_idle_timeout_ends_a_session_nobody_refreshed(at_noon, time_machine):
    time_machine.shift(timedelta(days=7, seconds=1))

    response = at_noon.refresh()

    assert response.status_code == 401
    assert response.json() == {
        "detail": "The refresh token has expired; log in again.",
        "code": "refresh_token_expired",
    }
    assert response.cookies["dt_refresh"].value == ""


def test_each_refresh_pushes_the_idle_timeout_back(at_noon, time_machine):
    for _ in range(3):
        time_machine.shift(timedelta(days=6))
        assert at_noon.refresh().status_code == 200

    assert Session.objects.get().generation == 4


def test_absolute_cap_ends_the_session_however_often_it_refreshed(at_noon, time_machine):
    for _ in range(4):
        time_machine.shift(timedelta(days=6))
        assert at_noon.refresh().status_code == 200
    time_machine.shift(timedelta(days=6))  # day 30 since login: the cap

    response = at_noon.refresh()

    assert response.status_code == 401
    assert response.json() == {
        "detail": "This session has reached its maximum lifetime; log in again.",
        "code": "session_expired",
    }


def test_rotation_never_extends_the_absolute_cap(at_noon, time_machine):
    absolute = Session.objects.get().absolute_expires_at
    for _ in range(4):
        time_machine.shift(timedelta(days=6))
        at_noon.refresh()
    time_machine.shift(timedelta(days=5, hours=23))  # an hour before the 30-day cap

    response = at_noon.refresh()

    assert Session.objects.get().absolute_expires_at == absolute
    assert response.cookies["dt_refresh"]["max-age"] == 3600
    assert response.cookies["dt_access"]["max-age"] == 3600


def test_access_token_never_outlives_the_session(spa, alice, time_machine):
    time_machine.move_to("2026-11-23 12:00:00+00:00", tick=False)
    with override_settings(DUOTOKEN={**settings.DUOTOKEN, "SESSION_MAX_LIFETIME": timedelta(seconds=120)}):
        response = spa.login()
        assert response.cookies["dt_access"]["max-age"] == 120

        time_machine.shift(timedelta(seconds=121))
        assert spa.me().json()["code"] == "session_expired"
        assert spa.refresh().json()["code"] == "session_expired"
