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


def copy_of(client, make_spa):
    """Another client holding copies of `client`'s cookies, as a thief would."""
    thief = make_spa()
    thief.cookies.load({"csrftoken": client.ensure_csrf()})
    thief.set_cookie("access", client.cookie("access"))
    thief.set_cookie("refresh", client.cookie("refresh"))
    return thief


def test_password_change_ends_every_session_and_continues_this_device_on_a_new_one(devices, make_spa):
    this, *others = devices
    old_id = Session.objects.order_by("created_at").first().pk
    old_access, old_refresh = this.cookie("access"), this.cookie("refresh")

    response = change(this)

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"session"}
    assert "no-store" in response["Cache-Control"]
    new_id = response.json()["session"]["id"]
    assert new_id != str(old_id)
    new_access, new_refresh = this.cookie("access"), this.cookie("refresh")
    assert new_access and new_refresh
    assert new_access != old_access and new_refresh != old_refresh
    assert this.me().status_code == 200
    assert this.refresh().status_code == 200
    assert this.me().status_code == 200
    for other in others:
        refused = other.me()
        assert refused.status_code == 401
        assert refused.json()["code"] == "session_revoked"
        assert other.refresh().status_code == 401
    new = Session.objects.get(pk=new_id)
    assert (new.revoked_at, new.generation) == (None, 2)
    assert {s.revoke_reason for s in Session.objects.exclude(pk=new_id)} == {RevokeReason.PASSWORD_CHANGE}
    assert Session.objects.exclude(pk=new_id).count() == 3
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.PASSWORD_CHANGED)
    assert (event.user.username, str(event.session_id), event.data) == (
        "alice",
        new_id,
        {"sessions_ended": 3, "previous_session": str(old_id)},
    )


def test_password_change_refuses_every_token_of_the_old_session_held_by_a_thief(devices, make_spa):
    this = devices[0]
    stolen_now = copy_of(this, make_spa)  # copies of the cookies in use at the change
    assert this.refresh().status_code == 200
    stolen_after_refresh = copy_of(this, make_spa)

    assert change(this).status_code == 200

    for thief in (stolen_now, stolen_after_refresh):
        refused = thief.me()
        assert refused.status_code == 401
        assert refused.json() == {"detail": "This session has ended; log in again.", "code": "session_revoked"}
        refused = thief.refresh()
        assert refused.status_code == 401
        assert refused.json()["code"] == "session_revoked"
    assert this.me().status_code == 200
    assert this.refresh().status_code == 200


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
