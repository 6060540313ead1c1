import time

import pytest
import redis
from django.conf import settings

from tokens import keys as signing_keys
from tokens import revocations, store

from . import servers
from .client import SpaClient
from .factories import user_create
from .servers import Gunicorn


@pytest.fixture(scope="session", autouse=True)
def _no_process_outlives_the_suite():
    """Every server a test starts must be stopped by that test; a leftover is killed
    here and fails the run."""
    yield
    leftovers = servers.stop_all()
    assert leftovers == [], f"processes left running by the tests: {leftovers}"


@pytest.fixture(autouse=True)
def _fresh_redis_state():
    """Each test starts with none of our keys in Redis (only our own prefix is touched)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{settings.DUOTOKEN['REDIS_KEY_PREFIX']}:*", count=1000))
    if keys:
        client.delete(*keys)
    store._Breaker.down_until = 0.0
    store._Breaker.outage_seen = False
    # As if this process had just checked the revocation outbox: query budgets must
    # not meet the periodic check (tests of that check move it themselves).
    revocations._State.pending = revocations._State.republish = False
    revocations._State.next_poll = time.monotonic() + settings.DUOTOKEN["REVOCATION_POLL_SECONDS"]
    revocations._State.retry_at = 0.0
    yield
    # Key rows roll back with the test; this process's view of them must go too.
    signing_keys.forget()


@pytest.fixture
def spa():
    return SpaClient()


@pytest.fixture
def make_spa():
    return SpaClient


@pytest.fixture
def alice(db):
    return user_create(username="alice")


@pytest.fixture
def logged_in(spa, alice):
    response = spa.login()
    assert response.status_code == 200, response.content
    return spa


@pytest.fixture
def gunicorn(transactional_db, request):
    """A real multi-worker server on the test database; pass env overrides with
    @pytest.mark.parametrize('gunicorn', [{...}], indirect=True)."""
    overrides = dict(getattr(request, "param", {}) or {})
    workers = int(overrides.pop("workers", 4))
    server = Gunicorn(workers=workers, **overrides).start()
    yield server
    server.stop()


@pytest.fixture
def at_noon(spa, alice, time_machine):
    """Logged in at a fixed instant, with time frozen so tests move it explicitly."""
    time_machine.move_to("2026-11-23 12:00:00+00:00", tick=False)
    response = spa.login()
    assert response.status_code == 200, response.content
    return spa
