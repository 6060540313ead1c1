import pytest

from tokens.conf import auth_settings
from tokens.models import RevokeReason, SecurityEvent, Session

from .factories import PASSWORD

NEW_PASSWORD = "a brand new passphrase 42"
URL = "/api/auth/password/change/"


@pytest.fixture
def devices(alice, make_spa):
    clients = []
    for _ in range(3):
        client = make_spa()
        assert client.login().status_code == 200
        clients.append(client)
    return clients


def change(client, old=PASSWORD, new=NEW_PASSWORD, **extra):
    return client.send("post", URL, {"old_password": old, "new_password": new}, **extra)


def test_password_change_ends_other_sessions_and_keeps_this_one_with_fresh_cookies(devices, make_spa):
    this, *others = devices
    old_access, old_refresh = this.cookie("access"), this.cookie("refresh")

    response = change(this)

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"session"}
    assert "no-store" in response["Cache-Control"]
    new_access, new_refresh = this.cookie("access"), this.cookie("refresh")
    assert new_access and new_refresh
    assert (new_access, new_refresh) != (old_access, old_refresh)
    assert this.me().status_code == 200
    assert this.refresh().status_code == 200
    assert this.me().status_code == 200
    for other in others:
        refused = other.me()
        assert refused.status_code == 401
        assert refused.json()["code"] == "session_revoked"
        assert other.refresh().status_code == 401
    this_id = response.json()["session"]["id"]
    assert Session.objects.get(pk=this_id).revoked_at is None
    assert {s.revoke_reason for s in Session.objects.exclude(pk=this_id)} == {RevokeReason.PASSWORD_CHANGE}
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.PASSWORD_CHANGED)
    assert (event.user.username, str(event.session_id), event.data) == ("alice", this_id, {"sessions_ended": 2})


def test_password_change_moves_current_session_to_next_generation(devices):
    this = devices[0]

    response = change(this)

    session = Session.objects.get(pk=response.json()["session"]["id"])
    assert session.generation == 2


def test_password_change_then_only_new_password_logs_in(devices, make_spa):
    assert change(devices[0]).status_code == 200

    assert make_spa().login(password=PASSWORD).status_code == 401
    assert make_spa().login(password=NEW_PASSWORD).status_code == 200


def test_password_change_with_wrong_old_password_is_400_and_changes_nothing(devices, make_spa):
    this, other, _ = devices

    response = change(this, old="not my password")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Invalid input.",
        "code": "invalid",
        "fields": {"old_password": ["The old password is not correct."]},
    }
    assert other.me().status_code == 200
    assert make_spa().login(password=PASSWORD).status_code == 200
    assert not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.PASSWORD_CHANGED).exists()


@pytest.mark.parametrize(
    ("new", "message"),
    [
        ("short", "This password is too short. It must contain at least 8 characters."),
        ("password", "This password is too common."),
        ("4815162342", "This password is entirely numeric."),
    ],
)
def test_password_change_with_weak_new_password_is_400_with_validator_messages(devices, new, message):
    this, other, _ = devices

    response = change(this, new=new)

    assert response.status_code == 400
    body = response.json()
    assert (body["code"], list(body["fields"])) == ("invalid", ["new_password"])
    assert message in body["fields"]["new_password"]
    assert other.me().status_code == 200


@pytest.mark.parametrize(
    "body",
    [{}, {"old_password": PASSWORD}, {"old_password": PASSWORD, "new_password": 12345678}, ["not", "an", "object"]],
)
def test_password_change_with_malformed_body_is_400_invalid(devices, body):
    response = devices[0].send("post", URL, body)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_password_change_with_non_json_body_is_415(devices):
    client = devices[0]
    response = client.post(
        URL, "old=x", content_type="application/x-www-form-urlencoded", HTTP_X_CSRFTOKEN=client.csrf_token
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_password_change_guessing_old_password_is_throttled_per_session(devices):
    this = devices[0]
    remaining = auth_settings().throttle_password_change.limit
    answers = [change(this, old=f"guess {n}").status_code for n in range(remaining)]

    throttled = change(this)

    assert answers == [400] * remaining
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    assert int(throttled["Retry-After"]) >= 1


def test_password_change_without_csrf_is_403_and_changes_nothing(devices, make_spa):
    this, other, _ = devices

    response = change(this, csrf=False)

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert other.me().status_code == 200
    assert make_spa().login(password=PASSWORD).status_code == 200


def test_password_change_without_cookies_is_401(spa, db):
    response = change(spa)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
