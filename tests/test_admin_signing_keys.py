"""The signing keys in Django admin: a read-only list of kid, algorithm, state and
dates. The private part is never on the page, in any form."""

from __future__ import annotations

import json

import jwt
import pytest
from django.test import Client

from tokens import keys
from tokens.key_services import signing_key_add, signing_key_promote, signing_key_retire
from tokens.models import SigningKey

from .factories import user_create

CHANGELIST = "/admin/tokens/signingkey/"


@pytest.fixture
def admin_client(db) -> Client:
    client = Client()
    client.force_login(user_create(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def key_set(db) -> dict[str, SigningKey]:
    """The configured key (published again), a second one (active) and a third (retired)."""
    first = keys.configured_key()[0]
    second = signing_key_add()
    signing_key_promote(kid=second.kid, force=True)
    third = signing_key_add()
    signing_key_retire(kid=third.kid)
    return {row.state: row for row in SigningKey.objects.all()} | {"first": SigningKey.objects.get(pk=first)}


def private_material(row: SigningKey) -> list[str]:
    """Every form the private part of a key could take on a page."""
    private = keys.decrypt_private(row)
    pem_lines = [line for line in keys.private_pem(private).splitlines() if "PRIVATE KEY" not in line]
    jwk = json.loads(jwt.get_algorithm_by_name(row.algorithm).to_jwk(private))
    return [row.private_encrypted, row.private_encrypted[:40], jwk["d"], *pem_lines, "PRIVATE KEY", "private_encrypted"]


def test_admin_signing_keys_list_shows_kid_algorithm_state_and_dates(admin_client, key_set):
    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    shown = [
        (row.kid, row.algorithm, row.state, row.promoted_at is not None, row.retired_at is not None)
        for row in response.context["cl"].result_list
    ]
    assert sorted(shown) == sorted(
        [
            (key_set["first"].kid, "ES256", "published", True, False),
            (key_set["active"].kid, "ES256", "active", True, False),
            (key_set["retired"].kid, "ES256", "retired", False, True),
        ]
    )
    page = response.content.decode()
    for label in ("Active (signing)", "Published", "Retired", "Kid", "Algorithm", "Retired at"):
        assert label in page


@pytest.mark.parametrize("state", ["first", "active", "retired"])
def test_admin_signing_keys_pages_show_no_private_material(admin_client, key_set, state):
    row = key_set[state]
    pages = [
        admin_client.get(CHANGELIST),
        admin_client.get(CHANGELIST, {"q": row.kid}),
        admin_client.get(f"{CHANGELIST}{row.kid}/change/"),
    ]

    assert [page.status_code for page in pages] == [200, 200, 200]
    assert row.kid in pages[2].content.decode() and row.public_pem.splitlines()[1] in pages[2].content.decode()
    leaked = [secret for page in pages for secret in private_material(row) if secret in page.content.decode()]
    assert leaked == []


def test_admin_signing_keys_cannot_be_added_changed_or_deleted(admin_client, key_set):
    row = key_set["active"]

    add = admin_client.get(f"{CHANGELIST}add/")
    change = admin_client.post(f"{CHANGELIST}{row.kid}/change/", {"state": "retired"})
    delete = admin_client.post(f"{CHANGELIST}{row.kid}/delete/", {"post": "yes"})

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert SigningKey.objects.get(pk=row.kid).state == "active"
    assert SigningKey.objects.count() == 3
