"""The race itself: many tabs refresh with one token at the same instant, against a
real multi-process server. All must succeed with one successor, and the database
must show exactly one new generation per round."""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tokens.models import Session

from .factories import PASSWORD, user_create

THREADS = int(os.environ.get("RACE_THREADS", 24))
ROUNDS = int(os.environ.get("RACE_ROUNDS", 10))
HIGH = "100000/min"


def _login(base: str) -> tuple[dict, str]:
    http = requests.Session()
    http.get(f"{base}/api/auth/csrf/", timeout=10)
    response = http.post(
        f"{base}/api/auth/login/",
        json={"username": "alice", "password": PASSWORD},
        headers={"X-CSRFToken": http.cookies["csrftoken"]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return dict(http.cookies), http.cookies["csrftoken"]


def _storm(base: str, cookies: dict, csrf: str) -> list[requests.Response]:
    barrier = threading.Barrier(THREADS)

    def one(_):
        with requests.Session() as http:
            http.cookies.update(cookies)
            barrier.wait(timeout=30)
            return http.post(f"{base}/api/auth/refresh/", headers={"X-CSRFToken": csrf}, timeout=30)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(one, range(THREADS)))


@pytest.mark.parametrize(
    "gunicorn", [{"workers": 4, "AUTH_THROTTLE_REFRESH": HIGH, "AUTH_THROTTLE_REFRESH_IP": HIGH}], indirect=True
)
def test_concurrent_refreshes_with_one_token_all_get_the_same_successor(gunicorn):
    user_create(username="alice")
    cookies, csrf = _login(gunicorn.url)

    for round_number in range(1, ROUNDS + 1):
        responses = _storm(gunicorn.url, cookies, csrf)

        assert [r.status_code for r in responses] == [200] * THREADS, [
            r.text for r in responses if r.status_code != 200
        ]
        successors = {r.cookies["dt_refresh"] for r in responses}
        accesses = {r.cookies["dt_access"] for r in responses}
        assert len(successors) == 1 and len(accesses) == 1
        session = Session.objects.get()
        assert session.generation == round_number + 1
        assert session.revoked_at is None
        cookies = {**cookies, "dt_refresh": successors.pop(), "dt_access": accesses.pop()}

    me = requests.get(f"{gunicorn.url}/api/auth/me/", cookies=cookies, timeout=10)
    assert me.status_code == 200 and me.json()["username"] == "alice"
