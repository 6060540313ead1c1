"""The security log keeps saying whose events they were after the user is deleted."""

from tokens.models import SecurityEvent

CHANGELIST = "/admin/tokens/securityevent/"


def test_security_events_keep_user_id_and_name_after_the_user_is_deleted(make_spa, alice):
    alice_id = alice.pk
    make_spa().login(password="wrong")
    owner = make_spa()
    assert owner.login().status_code == 200
    assert owner.send("post", "/api/auth/logout-all/").status_code == 204

    alice.delete()

    events = SecurityEvent.objects.order_by("id").values_list("kind", "user_id", "account_id", "username")
    assert list(events) == [
        ("login_failed", None, None, "alice"),  # the name tried; no user is looked up
        ("login_succeeded", None, alice_id, "alice"),
        ("logout_all", None, alice_id, "alice"),
    ]


def test_security_log_admin_still_lists_a_deleted_users_events_by_name(admin_client, make_spa, alice):
    assert make_spa().login().status_code == 200
    alice.delete()

    response = admin_client.get(CHANGELIST, {"q": "alice"})

    assert response.status_code == 200
    assert [(event.kind, event.username) for event in response.context["cl"].result_list] == [
        ("login_succeeded", "alice")
    ]
