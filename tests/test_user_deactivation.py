from tokens.models import RevokeReason, Session


def assert_signed_out(client):
    response = client.me()
    assert response.status_code == 401
    assert response.json()["code"] == "session_revoked"
    assert client.refresh().status_code == 401


def login_twice(alice, make_spa):
    clients = [make_spa(), make_spa()]
    for client in clients:
        assert client.login().status_code == 200
        assert client.me().status_code == 200  # the session and user are now cached in Redis
    return clients


def test_user_deactivated_ends_every_session_at_once(alice, make_spa):
    clients = login_twice(alice, make_spa)

    alice.is_active = False
    alice.save()

    for client in clients:
        assert_signed_out(client)
    assert {(s.revoke_reason, s.revoked_at is not None) for s in Session.objects.all()} == {
        (RevokeReason.USER_DEACTIVATED, True)
    }


def test_user_deactivated_then_reactivated_sessions_stay_ended(alice, make_spa):
    clients = login_twice(alice, make_spa)
    alice.is_active = False
    alice.save()

    alice.is_active = True
    alice.save()

    for client in clients:
        assert_signed_out(client)
    assert make_spa().login().status_code == 200


def test_user_deleted_ends_every_session_at_once(alice, make_spa):
    clients = login_twice(alice, make_spa)

    alice.delete()

    assert not Session.objects.exists()
    for client in clients:
        assert_signed_out(client)
