"""The work one authenticated read may cost, as exact counts (issue 17): GET /me makes
no database query and one Redis command, and the shortcuts that keep it cheap
(the verified-token cache, the CSRF check on safe methods, the never-cache headers)
change no answer."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from django.utils.cache import add_never_cache_headers

from config.middleware import never_cache
from tokens import tokens
from tokens.csrf import enforce_csrf
from tokens.errors import AuthError

from .servers import PrivateRedis


def _caches_at(url):
    return {alias: {**conf, "LOCATION": url} for alias, conf in settings.CACHES.items()}


@pytest.fixture
def counted_redis():
    """The service on a redis-server of its own, so INFO commandstats counts only
    what the requests under test send."""
    server = PrivateRedis().start()
    try:
        with override_settings(CACHES=_caches_at(server.url)):
            yield redis.Redis(port=server.port)
    finally:
        server.kill()


def _commands(client) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items() if name != "cmdstat_info"}


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: n - before.get(name, 0) for name, n in after.items() if n != before.get(name, 0)}


def test_me_on_the_hot_path_makes_one_redis_command_and_no_query(counted_redis, logged_in, django_assert_num_queries):
    assert logged_in.me().status_code == 200  # the login cached the session; this caches nothing more
    before = _commands(counted_redis)

    with django_assert_num_queries(0):
        response = logged_in.me()

    assert response.status_code == 200
    assert _delta(before, _commands(counted_redis)) == {"mget": 1}


def test_me_with_a_token_this_process_never_verified_makes_one_redis_command_and_no_query(
    counted_redis, logged_in, django_assert_num_queries
):
    assert logged_in.me().status_code == 200
    tokens._VERIFIED.clear()  # as a worker that has not seen this token yet
    before = _commands(counted_redis)

    with django_assert_num_queries(0):
        response = logged_in.me()

    assert response.status_code == 200
    assert _delta(before, _commands(counted_redis)) == {"mget": 1}


@pytest.fixture
def small_verified_cache(monkeypatch):
    tokens._VERIFIED.clear()
    monkeypatch.setattr(tokens._VERIFIED, "size", 3)
    yield tokens._VERIFIED
    tokens._VERIFIED.clear()


def _raw_tokens(make_spa, alice, count: int) -> list[str]:
    raws = []
    for _ in range(count):
        spa = make_spa()
        assert spa.login().status_code == 200
        raws.append(spa.cookie("access"))
    return raws


def test_verified_token_cache_when_full_drops_the_least_recently_used_only(small_verified_cache, make_spa, alice):
    first, second, third, fourth = _raw_tokens(make_spa, alice, 4)
    for raw in (first, second, third):
        tokens.decode(raw, tokens.ACCESS)
    tokens.decode(first, tokens.ACCESS)  # used again: now the most recent

    tokens.decode(fourth, tokens.ACCESS)

    assert len(small_verified_cache) == 3
    assert [raw in small_verified_cache for raw in (first, second, third, fourth)] == [True, False, True, True]


def test_verified_token_cache_never_holds_more_than_its_size(small_verified_cache, make_spa, alice):
    for raw in _raw_tokens(make_spa, alice, 7):
        tokens.decode(raw, tokens.ACCESS)

        assert 1 <= len(small_verified_cache) <= 3


def test_cached_token_of_a_revoked_session_is_refused_on_the_next_request(logged_in, make_spa):
    captured = logged_in.cookie("access")
    assert logged_in.me().status_code == 200
    assert captured in tokens._VERIFIED
    logged_in.logout()
    attacker = make_spa()
    attacker.set_cookie("access", captured)

    response = attacker.me()

    assert response.status_code == 401
    assert response.json()["code"] == "session_revoked"


@pytest.mark.parametrize("method", ["get", "head", "options", "trace"])
def test_enforce_csrf_on_a_safe_method_accepts_and_marks_the_request_as_django_does(method):
    request = getattr(RequestFactory(), method)("/api/auth/me/")

    enforce_csrf(request)

    assert request.csrf_processing_done is True


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_enforce_csrf_on_an_unsafe_method_without_a_token_is_csrf_failed(method):
    request = getattr(RequestFactory(), method)("/api/auth/logout/")
    request._dont_enforce_csrf_checks = False

    with pytest.raises(AuthError) as refused:
        enforce_csrf(request)

    assert refused.value.code == "csrf_failed"


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_unsafe_method_with_the_access_cookie_and_no_csrf_header_is_403(logged_in, method):
    response = getattr(logged_in, method)("/api/auth/me/")

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"


@pytest.mark.parametrize(
    "existing",
    [
        {},
        {"Cache-Control": "public, max-age=300"},
        {"Cache-Control": "no-cache"},
        {"Expires": "Thu, 01 Jan 1970 00:00:00 GMT"},
    ],
)
def test_never_cache_writes_what_add_never_cache_headers_writes(time_machine, existing):
    time_machine.move_to("2026-11-23 12:00:00.75+00:00", tick=False)
    ours, django = HttpResponse(headers=existing), HttpResponse(headers=existing)

    never_cache(ours)
    add_never_cache_headers(django)

    assert dict(ours.headers) == dict(django.headers)
