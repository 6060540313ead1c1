"""What the page can and cannot see: HttpOnly tokens, CSRF, no refresh at load."""

import pytest

from tokens.models import RevokeReason, Session

from .conftest import ACCESS_COOKIE, DEMO_SERVER, REFRESH_COOKIE, log_in, page_fetch

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("gunicorn", [DEMO_SERVER], indirect=True)]


def test_login_document_cookie_holds_no_token_yet_api_calls_work(alice, browsing):
    profile = browsing()
    page = profile.open_demo()
    log_in(page)

    visible = dict(part.split("=", 1) for part in page.evaluate("document.cookie").split("; ") if part)
    assert set(visible) == {"csrftoken"}
    # The tokens are there, out of the page's reach.
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        cookie = profile.cookie(name)
        assert cookie is not None and cookie["httpOnly"] is True
        assert cookie["value"] not in page.content()

    page.click("#whoami")
    page.wait_for_selector("#whoami-result:not(:empty)")
    assert '"username": "alice"' in page.inner_text("#whoami-result")
    assert page.inner_text("#signed-in-as") == "alice"
    assert profile.page_errors == []


def test_reload_with_live_access_token_does_not_refresh(alice, browsing):
    profile = browsing()
    page = profile.open_demo()
    log_in(page)
    # (A first visit, with no cookies, asks refresh once and learns there is no session.)
    profile.refreshes.clear()

    page.reload()
    page.wait_for_selector("body:not([data-view=loading])")

    assert page.get_attribute("body", "data-view") == "app"
    assert page.inner_text("#signed-in-as") == "alice"
    assert profile.refreshes == []


def test_post_without_csrf_header_is_refused_and_changes_nothing(alice, browsing):
    profile = browsing()
    page = profile.open_demo()
    log_in(page)
    refresh_before = profile.cookie(REFRESH_COOKIE)["value"]

    for path in ("/api/auth/logout-all/", "/api/auth/refresh/", "/api/auth/logout/"):
        answer = page_fetch(page, path, method="POST")
        assert answer["status"] == 403, path
        assert answer["body"]["code"] == "csrf_failed", path

    assert profile.cookie(REFRESH_COOKIE)["value"] == refresh_before
    session = Session.objects.get()
    assert (session.revoked_at, session.generation) == (None, 1)


def test_unsafe_call_without_csrf_cookie_fetches_one_first(alice, browsing):
    profile = browsing()
    page = profile.open_demo()
    log_in(page)
    profile.context.clear_cookies(name="csrftoken")
    calls = []
    page.on("request", lambda request: calls.append((request.method, request.url.removeprefix(profile.url))))

    page.click("#logout")

    page.wait_for_selector("body[data-view=login]")
    assert calls[:2] == [("GET", "/api/auth/csrf/"), ("POST", "/api/auth/logout/")]
    assert Session.objects.get().revoke_reason == RevokeReason.LOGOUT
    assert profile.cookie(ACCESS_COOKIE) is None and profile.cookie(REFRESH_COOKIE) is None


def test_client_leaves_requests_to_other_origins_alone(browsing):
    profile = browsing()
    page = profile.new_tab()
    elsewhere = "http://elsewhere.test"
    seen = []

    def other_origin(route):
        seen.append((route.request.method, route.request.headers))
        body = '{"detail": "no", "code": "not_authenticated"}'
        route.fulfill(
            status=401, content_type="application/json", body=body, headers={"Access-Control-Allow-Origin": "*"}
        )

    page.route(f"{elsewhere}/**", other_origin)
    page.route(f"{profile.url}/blank/", lambda route: route.fulfill(content_type="text/html", body="<!doctype html>"))
    page.goto(profile.url + "/blank/")
    page_fetch(page, "/api/auth/csrf/")  # a CSRF cookie that must not travel

    status = page.evaluate(
        """async (url) => {
            const { createClient } = await import("/static/duotoken/client.js");
            const client = createClient();
            return (await client.fetch(url, { method: "POST", body: "x" })).status;
        }""",
        f"{elsewhere}/api/",
    )

    assert status == 401  # handed back as is: not ours to refresh
    assert [method for method, _ in seen] == ["POST"]
    assert "x-csrftoken" not in seen[0][1]
    assert profile.refreshes == []
