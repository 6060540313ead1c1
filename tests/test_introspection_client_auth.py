"""How introspection authenticates its service clients: failed attempts are limited
per (client id, IP), per IP and in all before anything is looked up or hashed, a
flood under a client's id never locks that client out, failures are logged once per
window, and unknown, wrong and deactivated clients take one code path."""

import base64
import hashlib
import re
import secrets
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from accounts import service_clients
from accounts.models import ServiceClient
from accounts.service_clients import service_client_create, service_client_deactivate
from tokens.models import SecurityEvent

from .client import SpaClient
from .servers import free_port

INTROSPECT = "/api/auth/introspect/"
SERVICE_IP = "10.0.0.5"
ATTACKER_IP = "198.51.100.7"


def limits(**rates: str):
    """Override the introspection rates, e.g. limits(FAILED_IP="2/min")."""
    ours = {f"THROTTLE_INTROSPECTION_{name}" if name else "THROTTLE_INTROSPECTION": r for name, r in rates.items()}
    return override_settings(DUOTOKEN={**settings.DUOTOKEN, **ours})


def introspect(client_id: str, secret: str, *, ip: str = SERVICE_IP, token: str = "x"):
    authorization = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return SpaClient().post(
        INTROSPECT,
        urlencode({"token": token}),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=authorization,
        REMOTE_ADDR=ip,
    )


def wrong_secret() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture
def orders(db):
    return service_client_create(name="orders")


@pytest.fixture
def digests(monkeypatch):
    """Counts secret digests (the real function runs) and slow password checks."""
    counts = {"digest": 0, "check_password": 0}
    digest, check_password = service_clients.secret_digest, service_clients.check_password

    def counting_digest(secret):
        counts["digest"] += 1
        return digest(secret)

    def counting_check_password(*args, **kwargs):
        counts["check_password"] += 1
        return check_password(*args, **kwargs)

    monkeypatch.setattr(service_clients, "secret_digest", counting_digest)
    monkeypatch.setattr(service_clients, "check_password", counting_check_password)
    return counts


def test_client_secret_is_stored_as_its_sha256_digest_never_itself(orders):
    client, secret = orders

    client.refresh_from_db()

    assert secret not in client.secret_hash
    assert client.secret_hash == "sha256$" + hashlib.sha256(secret.encode()).hexdigest()
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32  # 256 random bits


def test_failed_client_auth_over_the_ip_limit_is_429_before_any_lookup_or_digest(
    db, digests, django_assert_num_queries
):
    with limits(FAILED_IP="2/min"):
        statuses = [introspect(f"svc_guess{n}", wrong_secret(), ip=ATTACKER_IP).status_code for n in range(3)]
        assert statuses == [401, 401, 429]
        digests.update(digest=0, check_password=0)
        with django_assert_num_queries(0):
            refused = introspect("svc_another", wrong_secret(), ip=ATTACKER_IP)

    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert re.fullmatch(r"Too many requests; retry in \d+ s\.", refused.json()["detail"])
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert digests == {"digest": 0, "check_password": 0}
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.THROTTLED)
    assert (event.ip, event.data) == (ATTACKER_IP, {"scope": "introspection_failed_ip", "limit": 2, "seconds": 60})


def test_failed_client_auth_over_the_global_limit_is_429_from_any_new_address(db, digests):
    with limits(FAILED_ALL="3/min"):
        statuses = [introspect("svc_guess", wrong_secret(), ip=f"198.51.100.{n}").status_code for n in range(4)]
        digests.update(digest=0)
        refused = introspect("svc_guess", wrong_secret(), ip="203.0.113.9")

    assert statuses == [401, 401, 401, 429]
    assert refused.status_code == 429
    assert digests["digest"] == 0


def test_flood_under_a_clients_id_from_elsewhere_does_not_lock_the_client_out(orders):
    client, secret = orders
    # The per-client budget counts authenticated calls only: no stranger can spend it.
    with limits(**{"": "5/min", "FAILED": "3/min"}):
        flood = [introspect(client.client_id, wrong_secret(), ip=ATTACKER_IP).status_code for _ in range(10)]
        own = introspect(client.client_id, secret, ip=SERVICE_IP)

    assert flood == [401, 401, 401] + [429] * 7
    assert own.status_code == 200
    assert own.json() == {"active": False}


def test_client_known_at_its_address_is_not_held_back_by_the_ip_and_global_limits(orders):
    client, secret = orders
    assert introspect(client.client_id, secret, ip=SERVICE_IP).status_code == 200

    with limits(FAILED_IP="1/min", FAILED_ALL="2/min"):
        # A flood from the client's own address under other ids, and from everywhere.
        for n in range(3):
            introspect(f"svc_guess{n}", wrong_secret(), ip=SERVICE_IP)
            introspect(f"svc_guess{n}", wrong_secret(), ip=f"198.51.100.{n}")
        stranger = introspect("svc_new", wrong_secret(), ip="203.0.113.9")
        own = introspect(client.client_id, secret, ip=SERVICE_IP)

    assert stranger.status_code == 429
    assert own.status_code == 200


def test_client_known_at_its_address_is_still_held_by_its_own_failures_there(orders):
    client, secret = orders
    assert introspect(client.client_id, secret, ip=SERVICE_IP).status_code == 200

    with limits(FAILED="2/min"):
        statuses = [introspect(client.client_id, wrong_secret(), ip=SERVICE_IP).status_code for _ in range(4)]

    assert statuses == [401, 401, 429, 429]


def test_failed_client_auth_is_logged_once_per_client_address_and_window(orders):
    client, _ = orders

    for _ in range(5):
        assert introspect(client.client_id, wrong_secret(), ip=ATTACKER_IP).status_code == 401
    introspect(client.client_id, wrong_secret(), ip="203.0.113.9")

    events = SecurityEvent.objects.filter(kind=SecurityEvent.Kind.INTROSPECTION_CLIENT_FAILED).order_by("id")
    assert [(event.ip, event.username) for event in events] == [
        (ATTACKER_IP, client.client_id),
        ("203.0.113.9", client.client_id),
    ]
    assert events[0].data == {"client": {"id": client.client_id, "name": "orders"}, "reason": "wrong_secret"}


def test_unknown_wrong_and_deactivated_clients_take_one_code_path(orders, digests):
    client, _ = orders
    retired, retired_secret = service_client_create(name="reports")
    assert service_client_deactivate(client_id=retired.client_id) is True
    attempts = {
        "unknown_client": ("svc_nobody", wrong_secret()),
        "wrong_secret": (client.client_id, wrong_secret()),
        "inactive_client": (retired.client_id, retired_secret),
    }

    paths = {}
    for reason, (client_id, secret) in attempts.items():
        digests.update(digest=0, check_password=0)
        with CaptureQueriesContext(connection) as queries:
            response = introspect(client_id, secret)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_client"
        statements = [re.match(r'(\w+)[^"]*"(\w+)"', query["sql"]).groups() for query in queries]
        paths[reason] = (statements, dict(digests))

    assert paths["unknown_client"] == paths["wrong_secret"] == paths["inactive_client"]
    assert paths["unknown_client"] == (
        [("SELECT", "accounts_serviceclient"), ("INSERT", "tokens_securityevent")],
        {"digest": 1, "check_password": 0},
    )
    reasons = SecurityEvent.objects.filter(kind=SecurityEvent.Kind.INTROSPECTION_CLIENT_FAILED)
    assert sorted(reasons.values_list("data__reason", flat=True)) == sorted(attempts)


def legacy_client(name: str) -> tuple[ServiceClient, str]:
    """A client whose secret was stored before digests: as a Django password hash."""
    client, _ = service_client_create(name=name)
    secret = secrets.token_urlsafe(32)
    ServiceClient.objects.filter(pk=client.pk).update(secret_hash=make_password(secret))
    client.refresh_from_db()
    return client, secret


def test_legacy_password_hashed_secret_works_once_then_is_stored_as_a_digest(db, digests):
    client, secret = legacy_client("orders")

    first = introspect(client.client_id, secret)
    client.refresh_from_db()
    digests.update(digest=0, check_password=0)
    second = introspect(client.client_id, secret)

    assert (first.status_code, second.status_code) == (200, 200)
    assert client.secret_hash == "sha256$" + hashlib.sha256(secret.encode()).hexdigest()
    assert digests == {"digest": 1, "check_password": 0}


def test_legacy_password_hashed_secret_is_not_checked_over_the_failure_limit(db, digests):
    client, secret = legacy_client("orders")

    with limits(FAILED="1/min"):
        statuses = [introspect(client.client_id, wrong_secret(), ip=ATTACKER_IP).status_code for _ in range(2)]
        digests.update(digest=0, check_password=0)
        refused = introspect(client.client_id, secret, ip=ATTACKER_IP)

    assert statuses == [401, 429]
    assert refused.status_code == 429
    assert digests == {"digest": 0, "check_password": 0}


@pytest.fixture
def dead_redis():
    caches = {
        alias: {**conf, "LOCATION": f"redis://127.0.0.1:{free_port()}/0"} for alias, conf in settings.CACHES.items()
    }
    with override_settings(CACHES=caches):
        yield


def test_without_redis_digest_secrets_still_authenticate(orders, dead_redis):
    client, secret = orders

    assert introspect(client.client_id, secret).status_code == 200
    assert introspect(client.client_id, wrong_secret()).status_code == 401


def test_without_redis_a_legacy_password_hash_is_not_checked_503(db, dead_redis, digests):
    client, secret = legacy_client("orders")

    response = introspect(client.client_id, secret)

    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert digests["check_password"] == 0
