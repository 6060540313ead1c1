"""Service clients (the callers of introspection): created by a command or in the
admin with the secret shown once and stored hashed, listed, and deactivated."""

from io import StringIO

import pytest
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import ServiceClient
from accounts.service_clients import secret_digest, service_client_create
from tokens.models import SecurityEvent

from .factories import user_create


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("service_clients", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_service_clients_create_prints_id_and_secret_once_and_stores_a_digest(db):
    out, err = run("create", "orders")

    lines = dict(line.split(": ", 1) for line in out.splitlines())
    client = ServiceClient.objects.get()
    assert (client.name, client.client_id, client.is_active) == ("orders", lines["client_id"], True)
    assert lines["client_secret"] not in client.secret_hash
    assert client.secret_hash == secret_digest(lines["client_secret"])
    assert err == "The secret is shown only now; only its hash is stored.\n"
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.SERVICE_CLIENT_CREATED)
    assert event.data == {"client": {"id": client.client_id, "name": "orders"}}


def test_service_clients_create_with_a_taken_name_is_an_error(db):
    run("create", "orders")

    with pytest.raises(CommandError, match=r"A service client named 'orders' exists already\."):
        run("create", "orders")
    assert ServiceClient.objects.count() == 1


def test_service_clients_list_shows_clients_without_secrets(db):
    orders, orders_secret = service_client_create(name="orders")
    reports, _ = service_client_create(name="reports")
    ServiceClient.objects.filter(pk=reports.pk).update(is_active=False)

    out, _ = run("list")

    assert out.splitlines() == [
        f"{orders.client_id}\torders\tactive\tlast used never",
        f"{reports.client_id}\treports\tinactive\tlast used never",
    ]
    assert orders_secret not in out


@pytest.mark.parametrize("verb", ["revoke", "deactivate"])
def test_service_clients_revoke_deactivates_and_logs(db, verb):
    client, _ = service_client_create(name="orders")

    out, _ = run(verb, client.client_id)

    assert out == f"Deactivated {client.client_id}.\n"
    client.refresh_from_db()
    assert client.is_active is False
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.SERVICE_CLIENT_DEACTIVATED)
    assert event.data == {"client": {"id": client.client_id, "name": "orders"}}


def test_service_clients_revoke_unknown_or_inactive_is_an_error(db):
    client, _ = service_client_create(name="orders")
    run("revoke", client.client_id)

    for client_id in (client.client_id, "svc_nobody"):
        with pytest.raises(CommandError, match=rf"No active service client '{client_id}'\."):
            run("revoke", client_id)


@pytest.fixture
def admin_client(db) -> Client:
    client = Client()
    client.force_login(user_create(username="root", is_staff=True, is_superuser=True))
    return client


def test_admin_add_service_client_shows_the_secret_once(admin_client):
    response = admin_client.post("/admin/accounts/serviceclient/add/", {"name": "orders"})

    assert response.status_code == 302
    client = ServiceClient.objects.get()
    prefix = f"Client id: {client.client_id} Secret: "
    (message,) = [str(m) for m in get_messages(response.wsgi_request) if str(m).startswith(prefix)]
    secret = message[len(prefix) :].split(" ", 1)[0]
    assert client.secret_hash == secret_digest(secret)
    assert secret in admin_client.get(response.url).content.decode()  # the message, once
    page = admin_client.get(f"/admin/accounts/serviceclient/{client.pk}/change/")
    assert page.status_code == 200
    assert secret not in page.content.decode()
    assert client.secret_hash not in page.content.decode()


def test_admin_deactivate_action_deactivates_selected_clients(admin_client):
    orders, _ = service_client_create(name="orders")
    service_client_create(name="reports")

    response = admin_client.post(
        "/admin/accounts/serviceclient/",
        {"action": "deactivate_selected", "_selected_action": [orders.pk]},
    )

    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["1 service client(s) deactivated."]
    assert dict(ServiceClient.objects.values_list("name", "is_active")) == {"orders": False, "reports": True}


def test_admin_cannot_delete_service_clients(admin_client):
    client, _ = service_client_create(name="orders")

    response = admin_client.get(f"/admin/accounts/serviceclient/{client.pk}/delete/")

    assert response.status_code == 403
