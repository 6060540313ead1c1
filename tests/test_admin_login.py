"""The admin's login form goes through the same throttled backend and the same
security log as the API's login."""

import re

import pytest
from django.test import Client

from tokens.conf import auth_settings
from tokens.models import SecurityEvent

from .factories import PASSWORD, user_create

LOGIN = "/admin/login/"


@pytest.fixture
def root(db):
    return user_create(username="root", is_staff=True, is_superuser=True)


def admin_login(client: Client, password: str, **extra):
    if "csrftoken" not in client.cookies:
        client.get(LOGIN)
    token = client.cookies["csrftoken"].value
    return client.post(
        LOGIN, {"username": "root", "password": password, "csrfmiddlewaretoken": token, "next": "/admin/"}, **extra
    )


def form_errors(response) -> list[str]:
    return [re.sub(r"\s+", " ", error) for error in response.context["form"].non_field_errors()]


def test_admin_login_after_too_many_wrong_passwords_is_refused_with_a_message(root):
    client = Client(enforce_csrf_checks=True)
    limit = auth_settings().throttle_login.limit
    wrong = [admin_login(client, "wrong").status_code for _ in range(limit)]

    response = admin_login(client, PASSWORD)

    assert wrong == [200] * limit  # the form again, with an error
    assert response.status_code == 200
    [error] = form_errors(response)
    assert re.fullmatch(r"Too many attempts; try again in \d+ seconds\.", error), error
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still sent to the login page


def test_admin_login_failures_and_throttling_are_in_the_security_log(root):
    client = Client(enforce_csrf_checks=True)
    limit = auth_settings().throttle_login.limit
    for _ in range(limit + 2):
        admin_login(client, "wrong", REMOTE_ADDR="198.51.100.7")

    events = list(SecurityEvent.objects.order_by("id").values_list("kind", "username", "ip", "data"))
    failed = ("login_failed", "root", "198.51.100.7", {})
    throttled = ("throttled", "root", "198.51.100.7", {"scope": "login_user_ip", "limit": limit, "seconds": 60})
    assert events == [failed] * limit + [throttled]


def test_admin_login_success_is_in_the_security_log(root):
    client = Client(enforce_csrf_checks=True)

    response = admin_login(client, PASSWORD, REMOTE_ADDR="198.51.100.8")

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    event = SecurityEvent.objects.get()
    assert (event.kind, event.user_id, event.username, event.ip, event.session_id) == (
        "login_succeeded",
        root.pk,
        "root",
        "198.51.100.8",
        None,
    )


def test_api_login_is_logged_once_with_its_session(spa, alice):
    response = spa.login()

    event = SecurityEvent.objects.get()
    assert (event.kind, event.user_id, event.username, str(event.session_id)) == (
        "login_succeeded",
        alice.pk,
        "alice",
        response.json()["session"]["id"],
    )
