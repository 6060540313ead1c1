"""Session, auth and message middleware run for the admin and the site, not for /api/."""

import re

from django.contrib.sessions.models import Session as DjangoSession
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tokens.models import Session

from .client import SpaClient
from .factories import PASSWORD, user_create


def admin_login(client: Client, username: str) -> None:
    """Log in through the admin's own form, CSRF token and all, as a browser does."""
    page = client.get("/admin/login/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()
    response = client.post(
        "/admin/login/", {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/admin/"}
    )
    assert response.status_code == 302, response.content
    assert response["Location"] == "/admin/"


def test_api_requests_of_a_browser_with_an_admin_session_never_touch_django_sessions(db):
    user_create(username="root", is_staff=True, is_superuser=True)
    spa = SpaClient()
    admin_login(spa, "root")
    admin_cookie = spa.cookies["sessionid"].value
    session_rows = list(DjangoSession.objects.values_list("session_key", "expire_date"))

    with CaptureQueriesContext(connection) as queries:
        responses = [spa.get("/api/auth/csrf/"), spa.login(username="root"), spa.me(), spa.refresh(), spa.logout()]

    assert [r.status_code for r in responses] == [204, 200, 200, 200, 204]
    assert all("sessionid" not in r.cookies for r in responses)
    assert not [q["sql"] for q in queries if "django_session" in q["sql"]]
    assert list(DjangoSession.objects.values_list("session_key", "expire_date")) == session_rows
    assert spa.cookies["sessionid"].value == admin_cookie


def test_api_request_gets_no_django_session_user_or_message_store(logged_in):
    response = logged_in.me()

    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert not hasattr(response.wsgi_request, "session")
    assert not hasattr(response.wsgi_request, "_messages")
    # request.user on /api/ is the one DRF's authentication set: the session's user.
    assert response.wsgi_request.user.username == "alice"


def test_api_with_only_an_admin_session_cookie_is_unauthenticated(db):
    user_create(username="root", is_staff=True, is_superuser=True)
    client = SpaClient()
    admin_login(client, "root")

    response = client.me()

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"}


def test_admin_login_and_revoke_action_with_its_success_message_still_work(db, alice):
    user_create(username="root", is_staff=True, is_superuser=True)
    spa = SpaClient()
    assert spa.login().status_code == 200
    session_id = str(Session.objects.get().pk)
    admin = Client(enforce_csrf_checks=True)
    admin_login(admin, "root")
    assert DjangoSession.objects.count() == 1
    changelist = admin.get("/admin/tokens/session/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', changelist.content).group(1).decode()

    response = admin.post(
        "/admin/tokens/session/",
        {"action": "revoke_selected", "_selected_action": [session_id], "csrfmiddlewaretoken": token},
        follow=True,
    )

    assert response.status_code == 200
    assert response.redirect_chain == [("/admin/tokens/session/", 302)]
    assert b"1 session ended." in response.content
    assert Session.objects.get().revoked_at is not None
    assert spa.me().json()["code"] == "session_revoked"


def test_admin_post_without_csrf_token_is_refused(db):
    user_create(username="root", is_staff=True, is_superuser=True)
    admin = Client(enforce_csrf_checks=True)
    admin_login(admin, "root")

    response = admin.post("/admin/tokens/session/", {"action": "revoke_selected", "_selected_action": []})

    assert response.status_code == 403


def test_forged_api_post_with_a_wrong_csrf_header_is_refused_and_ends_nothing(logged_in):
    response = logged_in.send("post", "/api/auth/logout/", csrf=False, HTTP_X_CSRFTOKEN="forged" * 6)

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert Session.objects.get().revoked_at is None
    assert logged_in.me().status_code == 200


def test_csrf_cookie_from_the_api_is_set_and_rotated_by_login(spa, alice):
    first = spa.get("/api/auth/csrf/").cookies["csrftoken"]

    response = spa.login()

    assert first.value
    assert first["samesite"] == "Lax"
    assert response.status_code == 200
    assert response.cookies["csrftoken"].value not in ("", first.value)
