"""Hostile traffic against a real server: parallel password guessing, and broken
cookies as they arrive over the wire (raw bytes, not a test client's strings)."""

from __future__ import annotations

import http.client

import pytest

from tests.factories import user_create

from .conftest import access_name, code_of, csrf_token, env_int, post, refresh_name, storm

pytestmark = pytest.mark.system

BAD_LOGINS = env_int("SYSTEM_BAD_LOGINS", 200)
LOGIN_LIMIT = env_int("SYSTEM_LOGIN_LIMIT", 5)
LOGIN_IP_LIMIT = env_int("SYSTEM_LOGIN_IP_LIMIT", 20)

THROTTLED_SERVER = {
    "AUTH_THROTTLE_LOGIN": f"{LOGIN_LIMIT}/min",
    "AUTH_THROTTLE_LOGIN_IP": f"{LOGIN_IP_LIMIT}/min",
    "AUTH_THROTTLE_LOGIN_USER": f"{LOGIN_LIMIT}/hour",
    # One trusted proxy hop: each request names its client in X-Forwarded-For, so a
    # single test machine can play many IPs.
    "AUTH_NUM_PROXIES": "1",
}


def _bad_login(base: str, csrf: str, *, username: str, ip: str, password: str = "wrong"):
    return post(
        base,
        "/api/auth/login/",
        csrf=csrf,
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": ip},
    )


def _assert_throttled_except(results, limit: int) -> None:
    through = [r for r in results if r.status_code != 429]
    assert [(r.status_code, code_of(r)) for r in through] == [(401, "invalid_credentials")] * limit
    for response in results:
        if response.status_code == 429:
            assert code_of(response) == "throttled"
            assert int(response.headers["Retry-After"]) >= 1


def test_login_throttle_per_username_holds_under_parallel_bad_logins(start_servers):
    (server,) = start_servers(1, **THROTTLED_SERVER)
    user_create(username="victim")
    csrf = csrf_token(server.url)
    # Every guess from its own IP: only the per-username ceiling can stop them.
    results = storm(
        BAD_LOGINS, lambda i: _bad_login(server.url, csrf, username="victim", ip=f"10.1.{i // 250}.{i % 250 + 1}")
    )
    assert all(not isinstance(r, Exception) for r in results), results
    _assert_throttled_except(results, LOGIN_LIMIT)
    # The right password does not get past the throttle either.
    from tests.factories import PASSWORD

    response = _bad_login(server.url, csrf, username="victim", ip="10.9.9.9", password=PASSWORD)
    assert (response.status_code, code_of(response)) == (429, "throttled")


def test_login_throttle_per_ip_holds_under_parallel_bad_logins(start_servers):
    (server,) = start_servers(1, **THROTTLED_SERVER)
    csrf = csrf_token(server.url)
    # Every guess for another username, all from one IP.
    results = storm(BAD_LOGINS, lambda i: _bad_login(server.url, csrf, username=f"user{i}", ip="10.2.0.1"))
    assert all(not isinstance(r, Exception) for r in results), results
    _assert_throttled_except(results, LOGIN_IP_LIMIT)


def _raw_get_me(server, cookie_header: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        conn.putrequest("GET", "/api/auth/me/")
        conn.putheader("Cookie", cookie_header)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_broken_access_cookies_over_the_wire_get_401_access_token_invalid(start_servers):
    import json

    (server,) = start_servers(1, workers=2)
    name = access_name().encode()
    for value in (
        b"\xff\xfe\xfa.\xc3\x28.\x80",  # not UTF-8
        b"onesegment",
        b"a.b.c",
        b"...",
        b'"quoted.\\"value\\".x"',
        b"x" * 7000,  # large, but under gunicorn's 8 KB header field limit
    ):
        status, body = _raw_get_me(server, name + b"=" + value)
        assert (status, json.loads(body)["code"]) == (401, "access_token_invalid"), value[:40]
    # A refresh cookie is never an access token, whatever path it is sent on.
    status, body = _raw_get_me(server, refresh_name().encode() + b"=x.y.z")
    assert (status, json.loads(body)["code"]) == (401, "not_authenticated")
