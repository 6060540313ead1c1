import pytest

from tokens.models import Session


def test_csrf_endpoint_sets_the_csrf_cookie_readable_by_javascript(spa, db):
    response = spa.get("/api/auth/csrf/")

    assert response.status_code == 204
    cookie = response.cookies["csrftoken"]
    assert cookie.value and cookie["httponly"] == "" and cookie["samesite"] == "Lax"


@pytest.mark.parametrize("header", [None, "wrong-token-wrong-token-wrong-tok"])
def test_refresh_without_a_valid_csrf_header_is_403_and_rotates_nothing(logged_in, header):
    extra = {"HTTP_X_CSRFTOKEN": header} if header else {}

    response = logged_in.send("post", "/api/auth/refresh/", csrf=False, **extra)

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert Session.objects.get().generation == 1
    assert "dt_refresh" not in response.cookies


def test_login_without_csrf_is_403(spa, alice):
    spa.ensure_csrf()

    response = spa.send("post", "/api/auth/login/", {"username": "alice", "password": "x"}, csrf=False)

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert not Session.objects.exists()


def test_logout_without_csrf_is_403_and_ends_nothing(logged_in):
    response = logged_in.send("post", "/api/auth/logout/", csrf=False)

    assert response.status_code == 403
    assert Session.objects.get().revoked_at is None


def test_logout_all_without_csrf_is_403(logged_in):
    response = logged_in.send("post", "/api/auth/logout-all/", csrf=False)

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert Session.objects.get().revoked_at is None


def test_cross_origin_request_with_a_valid_token_is_refused(logged_in):
    response = logged_in.refresh(HTTP_ORIGIN="https://evil.example")

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert Session.objects.get().generation == 1


def test_safe_methods_need_no_csrf_header(logged_in):
    assert logged_in.get("/api/auth/me/").status_code == 200
