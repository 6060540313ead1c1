"""Token introspection (RFC 7662), `POST /api/auth/introspect/`: service clients with
HTTP Basic credentials learn whether an access token is live right now."""

import base64
import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import override_settings

from accounts.models import ServiceClient
from accounts.service_clients import service_client_create, service_client_deactivate
from tokens.models import RevokeReason, SecurityEvent, Session
from tokens.services import sessions_revoke

from .client import SpaClient

INTROSPECT = "/api/auth/introspect/"
INACTIVE = {"active": False}
INVALID_CLIENT = {"detail": "Service client authentication failed.", "code": "invalid_client"}
CHALLENGE = 'Basic realm="introspection", charset="UTF-8"'


@pytest.fixture
def orders(db):
    client, secret = service_client_create(name="orders")
    return client, secret


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def introspect(credentials: tuple[ServiceClient, str] | None, data: dict | None, **extra):
    if credentials is not None:
        client, secret = credentials
        extra.setdefault("HTTP_AUTHORIZATION", basic(client.client_id, secret))
    # A fresh client with CSRF enforced and no cookies: a service, not a browser.
    return SpaClient().post(
        INTROSPECT, urlencode(data or {}), content_type="application/x-www-form-urlencoded", **extra
    )


def test_introspect_live_access_token_is_active_with_its_claims(orders, logged_in, alice):
    token = logged_in.cookie("access")
    claims = claims_of(token)

    response = introspect(orders, {"token": token, "token_type_hint": "access_token"})

    assert response.status_code == 200
    assert response.json() == {
        "active": True,
        "sub": str(alice.pk),
        "sid": str(Session.objects.get().pk),
        "exp": claims["exp"],
        "iat": claims["iat"],
        "username": "alice",
        "token_type": "access",
        "iss": settings.SIMPLE_JWT["ISSUER"],
        "aud": settings.SIMPLE_JWT["AUDIENCE"],
    }
    assert "no-store" in response["Cache-Control"]


def test_introspect_active_answer_is_audited_with_the_client(orders, logged_in, alice):
    client, _ = orders

    introspect(orders, {"token": logged_in.cookie("access")})

    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.INTROSPECTION)
    assert (event.user_id, str(event.session_id)) == (alice.pk, str(Session.objects.get().pk))
    assert event.data == {"client": {"id": client.client_id, "name": "orders"}}


def test_introspect_revoked_sessions_token_is_inactive(orders, logged_in):
    token = logged_in.cookie("access")
    assert introspect(orders, {"token": token}).json()["active"] is True

    sessions_revoke(reason=RevokeReason.ADMIN, session_ids=[str(Session.objects.get().pk)])
    response = introspect(orders, {"token": token})

    assert response.status_code == 200
    assert response.json() == INACTIVE


def test_introspect_refresh_token_is_not_an_access_token(orders, logged_in):
    response = introspect(orders, {"token": logged_in.cookie("refresh"), "token_type_hint": "refresh_token"})

    assert response.status_code == 200
    assert response.json() == INACTIVE


def test_introspect_expired_access_token_is_inactive(orders, at_noon, time_machine):
    token = at_noon.cookie("access")
    time_machine.shift(timedelta(seconds=300))

    assert introspect(orders, {"token": token}).json() == INACTIVE


@pytest.mark.parametrize("garbage", ["", "garbage", "a.b.c", "x" * 5000])
def test_introspect_garbage_is_inactive(orders, garbage):
    response = introspect(orders, {"token": garbage})

    assert response.status_code == 200
    assert response.json() == INACTIVE


def test_introspect_inactive_answer_is_not_audited_as_introspection(orders, logged_in):
    introspect(orders, {"token": logged_in.cookie("refresh")})

    assert not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.INTROSPECTION).exists()


def test_introspect_wrong_client_secret_is_401_with_basic_challenge(orders, logged_in):
    client, _ = orders

    response = introspect((client, "wrong-secret"), {"token": logged_in.cookie("access")})

    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT
    assert response["WWW-Authenticate"] == CHALLENGE
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.INTROSPECTION_CLIENT_FAILED)
    assert event.username == client.client_id
    assert event.data == {"client": {"id": client.client_id, "name": "orders"}, "reason": "wrong_secret"}
    assert not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.INTROSPECTION).exists()


def test_introspect_unknown_client_is_401_and_logged(db, logged_in):
    response = introspect(None, {"token": logged_in.cookie("access")}, HTTP_AUTHORIZATION=basic("svc_nobody", "x"))

    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.INTROSPECTION_CLIENT_FAILED)
    assert event.data == {"client": None, "reason": "unknown_client"}


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer abc", "Basic !!!not-base64", "Basic " + base64.b64encode(b"no-colon").decode()],
)
def test_introspect_without_basic_credentials_is_401(orders, logged_in, authorization):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = introspect(None, {"token": logged_in.cookie("access")}, **extra)

    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT
    assert response["WWW-Authenticate"] == CHALLENGE


def test_introspect_never_reads_cookies(orders, logged_in):
    # A browser's cookies are no credential here, with or without the CSRF header.
    response = logged_in.post(
        INTROSPECT,
        urlencode({"token": logged_in.cookie("access")}),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_CSRFTOKEN=logged_in.csrf_token,
    )

    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT


def test_introspect_deactivated_client_is_refused_at_once(orders, logged_in):
    client, _ = orders
    assert introspect(orders, {"token": logged_in.cookie("access")}).status_code == 200

    assert service_client_deactivate(client_id=client.client_id) is True
    response = introspect(orders, {"token": logged_in.cookie("access")})

    assert response.status_code == 401
    assert response.json() == INVALID_CLIENT


def test_introspect_records_last_use_of_the_client(orders, logged_in):
    client, _ = orders
    assert client.last_used_at is None

    introspect(orders, {"token": logged_in.cookie("access")})

    client.refresh_from_db()
    assert client.last_used_at is not None


def test_introspect_client_id_and_secret_may_be_form_urlencoded(db, logged_in):
    client, secret = service_client_create(name="reports")
    ServiceClient.objects.filter(pk=client.pk).update(client_id="svc_a:b")
    client.refresh_from_db()

    response = introspect(None, {"token": logged_in.cookie("access")}, HTTP_AUTHORIZATION=basic("svc_a%3Ab", secret))

    assert response.json()["active"] is True


def test_introspect_without_token_field_is_400_invalid(orders):
    response = introspect(orders, {})

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Invalid input.",
        "code": "invalid",
        "fields": {"token": ["This field is required."]},
    }


def test_introspect_json_body_is_415_unsupported_media_type(orders, logged_in):
    client, secret = orders

    response = SpaClient().post(
        INTROSPECT,
        {"token": logged_in.cookie("access")},
        format="json",
        HTTP_AUTHORIZATION=basic(client.client_id, secret),
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_introspect_is_rate_limited_per_client(orders, logged_in):
    other = service_client_create(name="reports")
    token = logged_in.cookie("access")
    with override_settings(DUOTOKEN={**settings.DUOTOKEN, "THROTTLE_INTROSPECTION": "2/min"}):
        statuses = [introspect(orders, {"token": token}).status_code for _ in range(3)]
        refused = introspect(orders, {"token": token})
        other_client = introspect(other, {"token": token})

    assert statuses == [200, 200, 429]
    assert refused.json() == {"detail": "Too many requests; retry in 60 s.", "code": "throttled"}
    assert other_client.status_code == 200
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.THROTTLED)
    assert event.data == {"scope": "introspection_client", "limit": 2, "seconds": 60}
    assert event.username == orders[0].client_id


def test_introspect_form_with_more_fields_than_django_allows_is_400_invalid_json(orders):
    client, secret = orders
    body = "token=x&" + "&".join(f"f{n}=" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS))

    response = SpaClient().post(
        INTROSPECT,
        body,
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=basic(client.client_id, secret),
    )

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "Malformed request body.",
        "code": "invalid",
        "fields": {"body": ["More than 1000 fields."]},
    }
