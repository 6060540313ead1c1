from django.contrib.auth.signals import user_logged_out

from tokens.models import SecurityEvent, Session


def test_logout_ends_the_session_and_answers_204(logged_in):
    response = logged_in.logout()

    assert response.status_code == 204
    assert response.content == b""
    session = Session.objects.get()
    assert session.revoked_at is not None and session.revoke_reason == "logout"
    assert SecurityEvent.objects.filter(kind="logout", session_id=session.pk).count() == 1


def test_access_token_captured_before_logout_is_refused_on_the_very_next_request(logged_in, make_spa):
    captured = logged_in.cookie("access")
    logged_in.logout()
    attacker = make_spa()
    attacker.set_cookie("access", captured)

    response = attacker.me()

    assert response.status_code == 401
    assert response.json() == {"detail": "This session has ended; log in again.", "code": "session_revoked"}


def test_refresh_token_captured_before_logout_is_refused(logged_in, make_spa):
    captured = logged_in.cookie("refresh")
    logged_in.logout()
    attacker = make_spa()
    attacker.set_cookie("refresh", captured)

    response = attacker.refresh()

    assert response.status_code == 401
    assert response.json()["code"] == "session_revoked"
    assert Session.objects.get().generation == 1


def test_logout_is_idempotent(logged_in):
    captured = logged_in.cookie("refresh")
    assert logged_in.logout().status_code == 204
    logged_in.set_cookie("refresh", captured)

    assert logged_in.logout().status_code == 204
    assert SecurityEvent.objects.filter(kind="logout").count() == 1


def test_logout_without_any_cookie_answers_204(spa, db):
    response = spa.logout()

    assert response.status_code == 204
    assert response.cookies["dt_access"].value == ""


def test_logout_works_with_an_expired_access_token_alone(at_noon, time_machine):
    from datetime import timedelta

    time_machine.shift(timedelta(minutes=10))
    at_noon.cookies.pop("dt_refresh")
    assert at_noon.me().json()["code"] == "access_token_expired"

    response = at_noon.logout()

    assert response.status_code == 204
    assert Session.objects.get().revoke_reason == "logout"


def test_logout_fires_user_logged_out(logged_in, alice):
    received = []

    def on_logout(sender, user, **kwargs):
        received.append(user.pk)

    user_logged_out.connect(on_logout)
    try:
        logged_in.logout()
    finally:
        user_logged_out.disconnect(on_logout)

    assert received == [alice.pk]


def test_logout_only_ends_its_own_session(alice, make_spa):
    laptop, phone = make_spa(), make_spa()
    laptop.login()
    phone.login()

    laptop.logout()

    assert phone.me().status_code == 200


def test_logout_all_ends_every_session_of_the_user_at_once(alice, make_spa):
    laptop, phone, tablet = make_spa(), make_spa(), make_spa()
    for client in (laptop, phone, tablet):
        client.login()

    response = laptop.send("post", "/api/auth/logout-all/")

    assert response.status_code == 204
    assert response.cookies["dt_access"].value == ""
    assert not Session.objects.filter(revoked_at__isnull=True).exists()
    assert set(Session.objects.values_list("revoke_reason", flat=True)) == {"logout_all"}
    assert phone.me().json()["code"] == "session_revoked"
    assert tablet.refresh().json()["code"] == "session_revoked"
    assert SecurityEvent.objects.get(kind="logout_all").data == {"sessions_ended": 3}


def test_logout_all_leaves_other_users_alone(alice, make_spa, db):
    from .factories import user_create

    user_create(username="bob")
    alices, bobs = make_spa(), make_spa()
    alices.login()
    bobs.login(username="bob")

    alices.send("post", "/api/auth/logout-all/")

    assert bobs.me().status_code == 200


def test_logout_all_needs_authentication(spa, db):
    response = spa.send("post", "/api/auth/logout-all/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
