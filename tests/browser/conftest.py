"""Headless Chromium (Debian's package, never a downloaded build) driven by
Playwright, against a real gunicorn serving the demo page."""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, sync_playwright

from tests.factories import PASSWORD

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The server every browser test runs against: the demo page on, 4-second access
# tokens so that expiry happens within a test, a grace window of half that (the most
# duotoken.E011 allows: parallel refreshes in a busy test still land inside it), and
# refresh throttles out of the way.
DEMO_SERVER = {
    "AUTH_DEMO_PAGE": "true",
    "AUTH_ACCESS_TOKEN_LIFETIME": "4",
    "AUTH_REFRESH_GRACE_SECONDS": "2",
    "AUTH_THROTTLE_REFRESH": "1000/min",
    "AUTH_THROTTLE_REFRESH_IP": "1000/min",
}
ACCESS_COOKIE = "dt_access"
REFRESH_COOKIE = "dt_refresh"
REFRESH_PATH = "/api/auth/refresh/"


@pytest.fixture(scope="module")
def browser() -> Browser:
    # Playwright's sync API keeps an asyncio loop running on this thread, which
    # Django's async-safety guard would take for async code calling the ORM. The
    # test's own ORM calls are plain sync code, so the guard is lifted while the
    # browser lives, and only then.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class Browsing:
    """One browser profile (context) on the test server, watching its network."""

    context: BrowserContext
    url: str
    refreshes: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.context.on("request", self._on_request)
        self.context.on("page", self._watch)  # tabs the test opens, and those the page opens

    def _on_request(self, request: Request) -> None:
        if request.url.endswith(REFRESH_PATH):
            self.refreshes.append(request.method)

    def _watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        # Content-Security-Policy violations are reported on the console only.
        page.on(
            "console",
            lambda message: (
                self.page_errors.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )

    def new_tab(self) -> Page:
        return self.context.new_page()

    def open_demo(self, page: Page | None = None) -> Page:
        page = page or self.new_tab()
        page.goto(self.url + "/")
        page.wait_for_selector("body:not([data-view=loading])")
        return page

    def cookie(self, name: str) -> dict | None:
        return next((c for c in self.context.cookies() if c["name"] == name), None)

    def wait_for_access_expiry(self, timeout: float = 20) -> dict:
        """Wait until the access token in the jar has expired; returns its cookie. The
        cookie itself stays (it lives as long as the session), so the browser goes on
        presenting the expired token."""
        cookie = self.cookie(ACCESS_COOKIE)
        assert cookie is not None, "not logged in"
        expires_at = token_claims(cookie["value"])["exp"]
        deadline = time.monotonic() + timeout
        while time.time() <= expires_at:
            assert time.monotonic() < deadline, "the access token never expired"
            time.sleep(0.1)
        assert self.cookie(ACCESS_COOKIE) == cookie
        return cookie


def token_claims(raw: str) -> dict:
    payload = raw.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture
def browsing(browser, gunicorn):
    contexts: list[BrowserContext] = []

    def open_profile() -> Browsing:
        context = browser.new_context()
        contexts.append(context)
        return Browsing(context=context, url=gunicorn.url)

    yield open_profile
    for context in contexts:
        context.close()


def log_in(page: Page, username: str = "alice", password: str = PASSWORD) -> None:
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("body[data-view=app]")
    # The page has loaded what it shows after login (state, then the sessions), so
    # no call of its own is still in flight when the test acts.
    page.wait_for_selector("#sessions li.current")


def fire_burst(page: Page) -> None:
    page.click("#burst")
    page.wait_for_selector("#burst-result[data-ok]")


def page_fetch(page: Page, path: str, *, method: str = "GET", headers: dict | None = None) -> dict:
    """A raw window.fetch from the page (no client, no CSRF header unless given)."""
    return page.evaluate(
        """async ([path, method, headers]) => {
            const response = await fetch(path, {method, headers, credentials: "same-origin"});
            const text = await response.text();
            return {status: response.status, body: text ? JSON.parse(text) : null};
        }""",
        [path, method, headers or {}],
    )
