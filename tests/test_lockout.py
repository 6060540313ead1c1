"""A stranger guessing passwords cannot lock the owner out: the strict login limit
counts a username and an address together, the per-username ceiling spares
addresses the owner has logged in from, and password change has its own limit."""

import redis
from django.conf import settings
from django.test import override_settings

from tokens import store

from .factories import PASSWORD

STRANGER, OWNER, OTHER = "203.0.113.66", "198.51.100.10", "192.0.2.44"
NEW_PASSWORD = "a brand new passphrase 42"


def _rates(**rates):
    return override_settings(DUOTOKEN={**settings.DUOTOKEN, **rates})


def test_login_stranger_exhausting_the_limit_does_not_stop_the_owner_elsewhere(make_spa, alice):
    stranger = make_spa()
    limit = 10
    answers = [stranger.login(password="guess", REMOTE_ADDR=STRANGER).status_code for _ in range(limit + 5)]

    owner = make_spa().login(REMOTE_ADDR=OWNER)

    assert answers == [401] * limit + [429] * 5
    assert owner.status_code == 200, owner.content
    assert owner.json()["user"]["username"] == "alice"


def test_password_change_is_not_stopped_by_a_stranger_guessing_logins(make_spa, alice):
    owner = make_spa()
    assert owner.login(REMOTE_ADDR=OWNER).status_code == 200
    stranger = make_spa()
    for _ in range(15):
        stranger.login(password="guess", REMOTE_ADDR=STRANGER)

    response = owner.send(
        "post",
        "/api/auth/password/change/",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        REMOTE_ADDR=OWNER,
    )

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"session"}


def test_login_ceiling_across_addresses_refuses_new_addresses_but_not_the_owners(make_spa, alice):
    with _rates(THROTTLE_LOGIN_USER="5/hour"):
        assert make_spa().login(REMOTE_ADDR=OWNER).status_code == 200  # the owner's usual address
        answers = [make_spa().login(password="guess", REMOTE_ADDR=f"203.0.113.{n}").status_code for n in range(5)]
        # Now the ceiling is full: even the right password from a new address waits...
        refused = make_spa().login(REMOTE_ADDR=OTHER)
        # ...but the owner's known address is not held back by it.
        owner = make_spa().login(REMOTE_ADDR=OWNER)

    assert answers == [401] * 4 + [429]
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) == 3600
    assert owner.status_code == 200, owner.content


def test_login_ceiling_block_doubles_each_time_it_is_reached_again(make_spa, alice):
    client = redis.Redis.from_url(settings.REDIS_URL)
    retry_after = []
    with _rates(THROTTLE_LOGIN_USER="3/hour"):
        for _round in range(3):
            for n in range(3):
                make_spa().login(password="guess", REMOTE_ADDR=f"203.0.113.{n}")
            response = make_spa().login(password="guess", REMOTE_ADDR=OTHER)
            assert response.json()["code"] == "throttled"
            retry_after.append(int(response["Retry-After"]))
            # The block ends (as if its time had passed); the strikes are remembered.
            client.delete(store._throttle_key("login_user", "alice"))

    assert retry_after == [3600, 7200, 14400]
