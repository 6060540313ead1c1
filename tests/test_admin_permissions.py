"""What staff may do in the admin: every action declares the permission it needs, a
user who may only view changes nothing, events name the admin who acted, and no
changelist filters on a secret column."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client

from accounts.models import ServiceClient
from accounts.service_clients import service_client_create
from tokens.key_services import signing_key_add
from tokens.models import SecurityEvent, Session, SigningKey

from .factories import user_create

CLIENTS = "/admin/accounts/serviceclient/"


def staff_client(username: str, *perms: str) -> Client:
    staff = user_create(username=username, is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        staff.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def viewer(db) -> Client:
    """Staff who may view everything in the admin, and change nothing."""
    return staff_client(
        "viewer",
        "accounts.view_user",
        "accounts.view_serviceclient",
        "tokens.view_session",
        "tokens.view_securityevent",
        "tokens.view_signingkey",
    )


@pytest.fixture
def root(db):
    return user_create(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def root_client(root) -> Client:
    client = Client()
    client.force_login(root)
    return client


def test_admin_every_action_declares_the_permissions_it_needs():
    undeclared = [
        f"{model._meta.label}.{name}"
        for model, model_admin in admin.site._registry.items()
        for func, name, _ in model_admin._get_base_actions()
        if not getattr(func, "allowed_permissions", None)
    ]

    assert undeclared == []


def test_admin_view_only_staff_cannot_deactivate_service_clients(viewer):
    orders, _ = service_client_create(name="orders")

    page = viewer.get(CLIENTS)
    response = viewer.post(CLIENTS, {"action": "deactivate_selected", "_selected_action": [orders.pk]})

    assert page.status_code == 200
    assert "deactivate_selected" not in page.content.decode()
    assert response.status_code == 200  # the plain list again: no action ran
    assert [str(m) for m in get_messages(response.wsgi_request)] == []
    assert ServiceClient.objects.get().is_active is True
    assert not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.SERVICE_CLIENT_DEACTIVATED).exists()


def test_admin_view_only_staff_cannot_revoke_sessions_or_delete_users(viewer, logged_in, alice):
    session_id = str(Session.objects.get().pk)

    revoke = viewer.post("/admin/tokens/session/", {"action": "revoke_selected", "_selected_action": [session_id]})
    revoke_all = viewer.post("/admin/accounts/user/", {"action": "revoke_all_sessions", "_selected_action": [alice.pk]})
    delete = viewer.post(
        "/admin/accounts/user/", {"action": "delete_selected", "_selected_action": [alice.pk], "post": "yes"}
    )

    assert [r.status_code for r in (revoke, revoke_all, delete)] == [200, 200, 200]
    assert Session.objects.get().revoked_at is None
    assert logged_in.me().status_code == 200
    assert type(alice).objects.filter(pk=alice.pk).exists()


def test_admin_service_client_events_name_the_acting_admin(root_client, root):
    created = root_client.post(f"{CLIENTS}add/", {"name": "orders"})
    client = ServiceClient.objects.get()
    deactivated = root_client.post(CLIENTS, {"action": "deactivate_selected", "_selected_action": [client.pk]})

    assert (created.status_code, deactivated.status_code) == (302, 302)
    events = SecurityEvent.objects.filter(
        kind__in=[SecurityEvent.Kind.SERVICE_CLIENT_CREATED, SecurityEvent.Kind.SERVICE_CLIENT_DEACTIVATED]
    ).order_by("id")
    acting = {"id": root.pk, "username": "root"}
    assert [(event.kind, event.data) for event in events] == [
        ("service_client_created", {"client": {"id": client.client_id, "name": "orders"}, "admin": acting}),
        ("service_client_deactivated", {"client": {"id": client.client_id, "name": "orders"}, "admin": acting}),
    ]


@pytest.fixture
def key_set(db) -> SigningKey:
    return signing_key_add()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/tokens/signingkey/?private_encrypted__startswith=gAAAAA",
        "/admin/tokens/signingkey/?private_encrypted__regex=%5Eg",
        "/admin/accounts/serviceclient/?secret_hash__startswith=sha256",
        "/admin/accounts/user/?password__startswith=md5",
        "/admin/tokens/session/?user__password__startswith=md5",
        "/admin/tokens/securityevent/?user__password__startswith=md5",
    ],
)
def test_admin_filtering_on_a_secret_column_is_refused(viewer, root_client, key_set, alice, url):
    service_client_create(name="orders")

    assert viewer.get(url).status_code == 400
    assert root_client.get(url).status_code == 400


def test_admin_filtering_on_the_public_key_is_allowed(viewer, key_set):
    response = viewer.get("/admin/tokens/signingkey/?public_pem__contains=BEGIN")

    assert response.status_code == 200
    assert key_set.kid in {row.kid for row in response.context["cl"].result_list}
