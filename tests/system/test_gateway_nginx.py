"""A real nginx in front of Duotoken (gunicorn) and of a resource service that is not
Django, with the gateway check (`auth_request` to `GET /api/auth/verify/`) from
`deploy/nginx/duotoken.conf`, the very file the README shows."""

from __future__ import annotations

import time
from urllib.parse import unquote

import pytest
import requests

from tests.browser.conftest import ACCESS_COOKIE, Browsing, log_in, token_claims
from tests.browser.conftest import browser as browser  # the fixture, shared with tests/browser/
from tests.factories import user_create
from tests.servers import ROOT, free_port
from tokens.models import RevokeReason, SecurityEvent, Session
from tokens.services import sessions_revoke_by_admin

from .conftest import REQUEST_TIMEOUT, THROTTLES_OFF, access_name, csrf_token, eventually, login
from .nginx import SNIPPET, Nginx
from .resource_service import ResourceService

pytestmark = pytest.mark.system

TWO_SECOND_TOKENS = {"AUTH_ACCESS_TOKEN_LIFETIME": "2", "AUTH_REFRESH_GRACE_SECONDS": "1"}


@pytest.fixture
def gateway(start_servers, tmp_path, request):
    """Duotoken (2 workers, demo page on), the resource service and nginx in front."""
    env = {**THROTTLES_OFF, "AUTH_DEMO_PAGE": "true", **(getattr(request, "param", {}) or {})}
    (duotoken,) = start_servers(1, workers=2, **env)
    orders = ResourceService(port=free_port()).start()
    nginx = Nginx(tmp_path, duotoken_port=duotoken.port, orders_port=orders.port)
    try:
        nginx.start()
        yield nginx, orders
    finally:
        nginx.stop()
        orders.stop()


def error_of(response: requests.Response) -> tuple[int, dict, str | None]:
    return response.status_code, response.json(), response.headers.get("X-Auth-Error")


def test_gateway_readme_shows_the_tested_nginx_config():
    readme = (ROOT / "README.md").read_text()

    assert SNIPPET.read_text() in readme


def test_gateway_nginx_passes_identity_and_refuses_the_rest_before_the_service(gateway, alice):
    nginx, orders = gateway
    http = requests.Session()
    csrf = csrf_token(nginx.url)
    http.cookies.set("csrftoken", csrf)

    # Nobody: refused by nginx in Duotoken's error shape; the service never hears of it.
    anonymous = http.get(nginx.url + "/orders/", timeout=REQUEST_TIMEOUT)
    assert error_of(anonymous) == (
        401,
        {"detail": "Authentication failed.", "code": "not_authenticated"},
        "not_authenticated",
    )
    assert orders.seen == []

    logged_in = login(nginx.url, "alice", csrf=csrf)
    assert logged_in.status_code == 200, logged_in.text
    http.cookies.set(access_name(), logged_in.cookies[access_name()])
    session_id = logged_in.json()["session"]["id"]

    # A client cannot speak for the gateway: its own X-Auth-* headers are replaced.
    listed = http.get(
        nginx.url + "/orders/",
        headers={"X-Auth-User-Id": "1", "X-Auth-Username": "root", "X-Auth-Session-Id": "forged"},
        timeout=REQUEST_TIMEOUT,
    )
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"orders": [], "user_id": str(alice.pk), "username": "alice", "session_id": session_id}
    (seen,) = orders.seen
    assert "cookie" not in seen.headers and "authorization" not in seen.headers

    # A service-to-service call with the token as a bearer header, no cookies.
    bearer = requests.get(
        nginx.url + "/orders/",
        headers={"Authorization": f"Bearer {logged_in.cookies[access_name()]}"},
        timeout=REQUEST_TIMEOUT,
    )
    assert bearer.json()["user_id"] == str(alice.pk)

    # Unsafe methods with the cookie need the CSRF header, checked at the gateway.
    mark = len(orders.seen)
    forged = http.post(nginx.url + "/orders/", json={"item": 666}, timeout=REQUEST_TIMEOUT)
    assert error_of(forged) == (403, {"detail": "Forbidden.", "code": "csrf_failed"}, "csrf_failed")
    assert orders.requests_since(mark) == []
    created = http.post(
        nginx.url + "/orders/", json={"item": 42}, headers={"X-CSRFToken": csrf}, timeout=REQUEST_TIMEOUT
    )
    assert (created.status_code, created.json()) == (201, {"order": {"item": 42}, "owner": str(alice.pk)})

    # Revoked: refused on the very next request, before the access token expires.
    mark = len(orders.seen)
    root = user_create(username="root", is_staff=True, is_superuser=True)
    assert sessions_revoke_by_admin(admin=root, request=None, session_ids=[session_id]) == [session_id]
    refused = http.get(nginx.url + "/orders/", timeout=REQUEST_TIMEOUT)
    assert error_of(refused) == (
        401,
        {"detail": "Authentication failed.", "code": "session_revoked"},
        "session_revoked",
    )
    assert orders.requests_since(mark) == []


def test_gateway_nginx_passes_percent_encoded_identity_to_the_service_unchanged(gateway):
    nginx, orders = gateway
    # A valid address whose local part is an RFC 2047 encoded word for another one.
    email = "=?utf-8?q?admin=40corp.example?=@evil.example"
    user = user_create(username="zoë", email=email)
    logged_in = login(nginx.url, "zoë", csrf=csrf_token(nginx.url))
    assert logged_in.status_code == 200, logged_in.text

    response = requests.get(
        nginx.url + "/orders/", cookies={access_name(): logged_in.cookies[access_name()]}, timeout=REQUEST_TIMEOUT
    )

    assert response.status_code == 200, response.text
    assert (response.json()["user_id"], response.json()["username"]) == (str(user.pk), "zo%C3%AB")
    (seen,) = orders.seen
    assert seen.headers["x-auth-email"] == "%3D%3Futf-8%3Fq%3Fadmin%3D40corp.example%3F%3D@evil.example"
    assert unquote(seen.headers["x-auth-email"]) == email


def open_page(browser, nginx: Nginx) -> tuple[Browsing, object]:
    profile = Browsing(context=browser.new_context(), url=nginx.url)
    page = profile.open_demo()
    log_in(page)
    # The SPA's own client module, as an app behind the gateway would import it.
    page.evaluate(
        """async () => {
            const { createClient } = await import("/static/duotoken/client.js");
            window.gw = { refreshes: 0, logouts: 0 };
            window.gwApi = createClient({
                onRefresh: () => { window.gw.refreshes += 1; },
                onLogout: () => { window.gw.logouts += 1; },
            });
        }"""
    )
    return profile, page


def wait_until_access_expired(profile: Browsing, timeout: float = 30) -> None:
    """Until the browser holds no live access token (dropped, or kept but expired)."""
    deadline = time.monotonic() + timeout
    while (cookie := profile.cookie(ACCESS_COOKIE)) is not None and token_claims(cookie["value"])["exp"] >= time.time():
        assert time.monotonic() < deadline, "the access token never expired"
        time.sleep(0.1)


def call(page, path: str, *, method: str = "GET", body: dict | None = None) -> dict:
    """One call through the client: the answer, or the error it threw."""
    return page.evaluate(
        """async ([path, method, body]) => {
            const init = { method };
            if (body) {
                init.headers = { "Content-Type": "application/json" };
                init.body = JSON.stringify(body);
            }
            try {
                const response = await window.gwApi.fetch(path, init);
                return { status: response.status, body: await response.json() };
            } catch (error) {
                return { error: error.name, status: error.status, code: error.code };
            }
        }""",
        [path, method, body],
    )


@pytest.mark.browser
@pytest.mark.parametrize("gateway", [TWO_SECOND_TOKENS], indirect=True)
def test_gateway_browser_refreshes_once_on_expiry_and_is_refused_at_once_after_revocation(browser, gateway, alice):
    nginx, orders = gateway
    profile, page = open_page(browser, nginx)
    try:
        session_id = str(Session.objects.get().pk)
        first = call(page, "/orders/")
        assert first == {
            "status": 200,
            "body": {"orders": [], "user_id": str(alice.pk), "username": "alice", "session_id": session_id},
        }

        # The access token expires: the call is refused at the gateway, the client
        # refreshes once and retries, and the retry is the only request the service sees.
        root = user_create(username="root", is_staff=True, is_superuser=True)
        wait_until_access_expired(profile)
        profile.refreshes.clear()
        refreshed_before = page.evaluate("window.gw.refreshes")
        generation_before = Session.objects.get().generation
        mark = len(orders.seen)
        after_expiry = call(page, "/orders/")

        assert after_expiry["status"] == 200
        assert after_expiry["body"]["user_id"] == str(alice.pk)
        assert profile.refreshes == ["POST"]
        assert page.evaluate("window.gw.refreshes") == refreshed_before + 1
        assert [(s.method, s.path, s.user_id, s.session_id) for s in orders.requests_since(mark)] == [
            ("GET", "/orders/", str(alice.pk), session_id)
        ]
        assert Session.objects.get().generation == generation_before + 1

        # An admin ends the session: the next call is refused before it reaches the
        # service, and the client reports the session as ended.
        sessions_revoke_by_admin(admin=root, request=None, session_ids=[session_id])
        profile.refreshes.clear()
        mark = len(orders.seen)
        revoked = call(page, "/orders/")

        # (Had the access token expired meanwhile, the refresh is refused the same way.)
        assert revoked == {"error": "SessionEndedError", "status": 401, "code": "session_revoked"}
        assert orders.requests_since(mark) == []
        assert page.evaluate("window.gw.logouts") == 1
        assert Session.objects.get().revoke_reason == RevokeReason.ADMIN
        assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.ADMIN_REVOKED).count() == 1
        assert profile.page_errors == []
    finally:
        profile.context.close()


@pytest.mark.browser
def test_gateway_browser_cross_site_post_is_refused_at_the_gateway(browser, gateway, alice):
    nginx, orders = gateway
    profile, page = open_page(browser, nginx)
    try:
        # The app's own POST carries the CSRF header and goes through.
        created = call(page, "/orders/", method="POST", body={"item": 42})
        assert created == {"status": 201, "body": {"order": {"item": 42}, "owner": str(alice.pk)}}

        # Another origin of the same site: the browser sends alice's cookies along.
        elsewhere = profile.context.new_page()
        elsewhere.goto(nginx.elsewhere_url + "/")
        mark = len(orders.seen)
        with elsewhere.expect_response(lambda r: r.url == nginx.url + "/orders/") as answer:
            elsewhere.evaluate(
                """async (url) => {
                    await fetch(url, {
                        method: "POST", mode: "no-cors", credentials: "include", body: '{"item": 666}',
                    }).catch(() => null);
                }""",
                nginx.url + "/orders/",
            )
        response = answer.value

        assert (response.request.method, response.status) == ("POST", 403)
        # csrf_failed, not not_authenticated: the access cookie was sent, and refused.
        # nginx logs a request once it is done, and the page may fetch its favicon meanwhile.
        verdict = f'POST /orders/ 403 "csrf_failed" "{nginx.elsewhere_url}"'
        assert eventually(lambda: verdict in nginx.access_log()), nginx.access_log()

        assert orders.requests_since(mark) == []
        assert Session.objects.get().revoked_at is None  # refused, not a reason to end the session
    finally:
        profile.context.close()


@pytest.mark.browser
def test_gateway_browser_logout_in_another_tab_is_refused_on_the_next_request(browser, gateway, alice):
    nginx, orders = gateway
    profile, page = open_page(browser, nginx)
    try:
        assert call(page, "/orders/")["status"] == 200
        token = profile.cookie(ACCESS_COOKIE)["value"]

        # The user logs out in another tab of the same browser.
        other = profile.open_demo()
        other.click("#logout")
        other.wait_for_selector("body[data-view=login]")
        mark = len(orders.seen)
        profile.refreshes.clear()
        after = call(page, "/orders/")

        # This tab's next call is refused at the gateway: its cookies are gone, so the
        # answer is not_authenticated, which the client takes as the end of the
        # session without trying a refresh; the service never hears of it.
        assert after == {"error": "SessionEndedError", "status": 401, "code": "not_authenticated"}
        assert profile.refreshes == []
        assert page.evaluate("window.gw.logouts") == 1
        # The access token itself (a copy kept from before the logout) is refused as
        # revoked, long before it expires.
        copied = requests.get(
            nginx.url + "/orders/", headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT
        )
        assert error_of(copied) == (
            401,
            {"detail": "Authentication failed.", "code": "session_revoked"},
            "session_revoked",
        )
        assert token_claims(token)["exp"] > time.time()
        assert orders.requests_since(mark) == []
        assert Session.objects.get().revoke_reason == RevokeReason.LOGOUT
        assert profile.page_errors == []
    finally:
        profile.context.close()
