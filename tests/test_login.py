from django.contrib.auth.signals import user_logged_in

from tokens.models import SecurityEvent, Session

from .factories import PASSWORD, user_create


def test_login_with_valid_credentials_returns_user_and_session_and_no_token(spa, alice):
    response = spa.login()

    assert response.status_code == 200
    body = response.json()
    session = Session.objects.get()
    assert body == {
        "user": {"id": alice.pk, "username": "alice", "email": "alice@example.com"},
        "session": {
            "id": str(session.pk),
            "expiry": session.idle_expires_at.isoformat().replace("+00:00", "Z"),
            "absolute_expiry": session.absolute_expires_at.isoformat().replace("+00:00", "Z"),
        },
    }
    assert spa.cookie("access") not in response.content.decode()
    assert spa.cookie("refresh") not in response.content.decode()
    assert session.generation == 1 and session.user == alice


def test_login_with_wrong_password_is_invalid_credentials(spa, alice):
    response = spa.login(password="wrong")

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Unable to log in with the provided credentials.",
        "code": "invalid_credentials",
    }
    assert "dt_access" not in response.cookies


def test_login_with_unknown_user_gets_the_same_answer_as_wrong_password(spa, alice):
    wrong_password = spa.login(password="wrong").json()
    unknown_user = spa.login(username="nobody").json()

    assert unknown_user == wrong_password


def test_login_of_inactive_user_is_invalid_credentials(spa, db):
    user_create(username="bob", is_active=False)

    response = spa.login(username="bob")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert not Session.objects.exists()


def test_login_failure_is_logged_with_username_and_never_the_password(spa, alice):
    spa.login(password="hunter2-secret")

    event = SecurityEvent.objects.get(kind="login_failed")
    assert event.username == "alice"
    assert "hunter2-secret" not in str(event.data) and "hunter2-secret" not in event.username


def test_login_success_is_logged_and_fires_user_logged_in(spa, alice):
    received = []

    def on_login(sender, user, **kwargs):
        received.append(user.pk)

    user_logged_in.connect(on_login)
    try:
        spa.login()
    finally:
        user_logged_in.disconnect(on_login)

    assert received == [alice.pk]
    event = SecurityEvent.objects.get(kind="login_succeeded")
    assert event.user == alice and event.session_id == Session.objects.get().pk


def test_login_rotates_the_csrf_token(spa, alice):
    before = spa.ensure_csrf()

    spa.login()

    assert spa.csrf_token and spa.csrf_token != before


def test_login_records_ip_and_user_agent_on_the_session(spa, alice):
    spa.login(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", REMOTE_ADDR="203.0.113.7")

    session = Session.objects.get()
    assert session.ip == "203.0.113.7"
    assert session.user_agent == "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


def test_login_with_missing_fields_is_invalid_with_fields(spa, db):
    response = spa.send("post", "/api/auth/login/", {"username": "alice"})

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Invalid input.",
        "code": "invalid",
        "fields": {"password": ["This field is required."]},
    }


def test_login_with_non_string_fields_is_invalid_with_fields(spa, db):
    response = spa.send("post", "/api/auth/login/", {"username": 123, "password": ["x"]})

    assert response.status_code == 400
    assert response.json()["fields"] == {"username": ["Must be a string."], "password": ["Must be a string."]}


def test_login_with_malformed_json_is_invalid(spa, db):
    response = spa.post(
        "/api/auth/login/", "{not json", content_type="application/json", HTTP_X_CSRFTOKEN=spa.ensure_csrf()
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "body" in response.json()["fields"]


def test_login_with_form_encoded_body_is_415(spa, db):
    response = spa.post(
        "/api/auth/login/",
        "username=alice&password=x",
        content_type="application/x-www-form-urlencoded",
        HTTP_X_CSRFTOKEN=spa.ensure_csrf(),
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_login_with_huge_body_is_413(spa, db):
    response = spa.send("post", "/api/auth/login/", {"username": "a" * 100_000, "password": PASSWORD})

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


def test_login_with_lone_surrogate_username_is_invalid_not_500(spa, db):
    response = spa.post(
        "/api/auth/login/",
        '{"username": "\\ud800", "password": "x"}',
        content_type="application/json",
        HTTP_X_CSRFTOKEN=spa.ensure_csrf(),
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {"username": ["Must be valid Unicode text."]}


def test_login_with_unicode_username_works(spa, db):
    user_create(username="zoë_日本")

    response = spa.login(username="zoë_日本")

    assert response.status_code == 200
    assert response.json()["user"]["username"] == "zoë_日本"
