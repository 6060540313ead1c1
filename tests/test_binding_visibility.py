"""Which sessions are bound to a device, and since when: the sessions API, the
admin session list and the security log say so."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest
from django.utils.dateparse import parse_datetime

from accounts.service_clients import service_client_create
from demo.services import THIEF_IP
from tokens.models import SecurityEvent, Session

from .dbsc_device import Device, offered_challenge, register

CHANGELIST = "/admin/tokens/session/"


@pytest.fixture(autouse=True)
def dbsc_on(settings):
    settings.DUOTOKEN = {**settings.DUOTOKEN, "DBSC": True}


@pytest.fixture
def bound_and_plain(alice, make_spa):
    """alice on a bound device and on a plain one; returns (bound client, bound id, plain id)."""
    bound, plain = make_spa(), make_spa()
    response = bound.login()
    assert register(bound, Device().proof(offered_challenge(response))).status_code == 200
    plain_id = plain.login().json()["session"]["id"]
    return bound, response.json()["session"]["id"], plain_id


def test_sessions_api_says_which_sessions_are_bound_and_since_when(bound_and_plain):
    client, bound_id, plain_id = bound_and_plain
    rows = {row["id"]: row for row in client.get("/api/auth/sessions/").json()}
    session = Session.objects.get(pk=bound_id)
    assert (rows[bound_id]["bound"], parse_datetime(rows[bound_id]["bound_at"])) == (True, session.bound_at)
    assert (rows[plain_id]["bound"], rows[plain_id]["bound_at"]) == (False, None)


def test_admin_session_list_shows_and_filters_bound_sessions(admin_client, bound_and_plain):
    _, bound_id, plain_id = bound_and_plain
    session = Session.objects.get(pk=bound_id)
    page = admin_client.get(CHANGELIST)
    assert f"since {session.bound_at:%Y-%m-%d %H:%M:%S}" in page.content.decode()
    assert {str(s.pk) for s in admin_client.get(CHANGELIST + "?bound=yes").context["cl"].result_list} == {bound_id}
    assert plain_id in {str(s.pk) for s in admin_client.get(CHANGELIST + "?bound=no").context["cl"].result_list}
    detail = admin_client.get(f"{CHANGELIST}{bound_id}/change/").content.decode()
    assert session.binding_jkt in detail


def test_security_log_lists_binding_and_refused_proofs(admin_client, bound_and_plain):
    client, bound_id, _ = bound_and_plain
    assert client.refresh().json()["code"] == "binding_proof_required"
    page = admin_client.get("/admin/tokens/securityevent/").content.decode()
    assert "Session bound to a device (DBSC)" in page
    assert "Bound session refreshed without a device proof" in page
    assert SecurityEvent.objects.filter(session_id=bound_id).count() >= 2


def test_demo_state_and_thief_of_a_bound_session_refused_and_session_kept(bound_and_plain, settings):
    settings.DUOTOKEN = {**settings.DUOTOKEN, "DEMO_PAGE": True}
    client, bound_id, _ = bound_and_plain
    session = Session.objects.get(pk=bound_id)
    assert client.get("/demo/api/state/").json()["bound_at"] == session.bound_at.timestamp()
    response = client.send("post", "/demo/api/thief/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["outcome"], body["event"]["kind"], body["event"]["ip"]) == (
        "binding_proof_required",
        "binding_proof_missing",
        THIEF_IP,
    )
    assert Session.objects.get(pk=bound_id).revoked_at is None
    assert client.me().status_code == 200


def test_introspection_of_a_bound_access_token_carries_its_cnf(bound_and_plain):
    client, bound_id, _ = bound_and_plain
    service, secret = service_client_create(name="orders")
    token = client.cookie("access")
    response = client.__class__().post(
        "/api/auth/introspect/",
        urlencode({"token": token}),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{service.client_id}:{secret}".encode()).decode(),
    )
    assert response.status_code == 200, response.content
    assert response.json()["cnf"] == {"jkt": Session.objects.get(pk=bound_id).binding_jkt}
