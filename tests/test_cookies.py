from datetime import timedelta

from django.conf import settings
from django.test import override_settings

from tests.client import SpaClient


def _settings_with(**ours):
    return override_settings(DUOTOKEN={**settings.DUOTOKEN, **ours})


def test_login_sets_access_cookie_with_its_attributes(logged_in):
    cookie = logged_in.cookies["dt_access"]

    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    # As long as the session can be refreshed, not just the token's 300 s: an expired
    # token is still sent, and answered with `access_token_expired`.
    assert cookie["max-age"] == 7 * 24 * 3600
    assert cookie["secure"] == ""
    assert cookie["domain"] == ""


def test_login_sets_refresh_cookie_scoped_to_auth_endpoints(logged_in):
    cookie = logged_in.cookies["dt_refresh"]

    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/api/auth/"
    assert cookie["max-age"] == 7 * 24 * 3600


def test_refresh_cookie_lifetime_is_capped_by_the_session_absolute_expiry(spa, alice):
    with _settings_with(SESSION_MAX_LIFETIME=timedelta(hours=1)):
        response = spa.login()

    assert response.cookies["dt_refresh"]["max-age"] == 3600
    assert response.cookies["dt_access"]["max-age"] == 3600


def test_token_responses_are_never_cached(logged_in):
    response = logged_in.refresh()

    assert "no-store" in response["Cache-Control"]


def test_secure_cookies_use_host_and_secure_prefixes(alice):
    with _settings_with(COOKIE_SECURE=True):
        spa = SpaClient()
        response = spa.login()

        access = response.cookies["__Host-dt_access"]
        refresh = response.cookies["__Secure-dt_refresh"]
        assert access["secure"] is True and refresh["secure"] is True
        assert access["path"] == "/" and access["domain"] == ""
        assert refresh["path"] == "/api/auth/"


def test_cookie_names_are_configurable(alice):
    with _settings_with(ACCESS_COOKIE_NAME="app_at", REFRESH_COOKIE_NAME="app_rt"):
        spa = SpaClient()
        response = spa.login()

        assert set(response.cookies) >= {"app_at", "app_rt"}
        assert spa.me().status_code == 200


def test_logout_clears_both_cookies_repeating_path_and_attributes(logged_in):
    response = logged_in.logout()

    access, refresh = response.cookies["dt_access"], response.cookies["dt_refresh"]
    assert access.value == "" and refresh.value == ""
    assert access["max-age"] == 0 and refresh["max-age"] == 0
    assert access["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert (access["path"], access["samesite"], access["httponly"]) == ("/", "Lax", True)
    assert (refresh["path"], refresh["samesite"], refresh["httponly"]) == ("/api/auth/", "Strict", True)


def test_clearing_secure_cookies_repeats_secure(alice):
    with _settings_with(COOKIE_SECURE=True):
        spa = SpaClient()
        spa.login()
        response = spa.logout()

        assert response.cookies["__Host-dt_access"]["secure"] is True
        assert response.cookies["__Secure-dt_refresh"]["secure"] is True
        assert response.cookies["__Secure-dt_refresh"]["path"] == "/api/auth/"
