"""Device Bound Session Credentials end to end: a real gunicorn over TLS and
Debian's headless Chromium with DBSC on (software keys: no TPM here), watched
through DevTools' Network.deviceBoundSessionEventOccurred.

Pages are the admin login page of the server (any page of the origin would do),
with a small harness evaluated into it: no request is intercepted, so what
Chromium does with the bound cookie is all its own.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import sync_playwright

from tokens.models import SecurityEvent, Session
from tokens.services import sessions_revoke_by_admin

from ..dbsc_device import Device
from ..factories import PASSWORD, user_create
from ..servers import Gunicorn, free_port
from .conftest import CHROMIUM, CHROMIUM_ARGS, log_in, token_claims
from .dbsc import HOST, chromium_args, make_certificate, watch_dbsc

pytestmark = [
    pytest.mark.browser,
    # The test's own HTTP clients talk to 127.0.0.1, not to the name the certificate is for.
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

ACCESS, REFRESH = "__Host-dt_access", "__Secure-dt_refresh"
AXIOS = Path(__file__).parent / "vendor" / "axios" / "axios.min.js"

HARNESS = """() => {
  const csrf = () => document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1];
  const call = async (path, method = "GET") => {
    const response = await fetch(path, {method, headers: method === "GET" ? {} : {"X-CSRFToken": csrf()}});
    const text = await response.text();
    let code = null;
    try { code = text ? JSON.parse(text).code ?? null : null; } catch (error) { code = "not_json"; }
    return {status: response.status, code};
  };
  window.dt = {
    call,
    async login(username, password) {
      await fetch("/api/auth/csrf/");
      const response = await fetch("/api/auth/login/", {
        method: "POST",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()},
        body: JSON.stringify({username, password}),
      });
      return response.status;
    },
    // `parallel` calls at a time, again and again for `ms`: every answer that is not a 200.
    async run(ms, parallel) {
      const until = Date.now() + ms;
      const result = {ok: 0, failed: []};
      while (Date.now() < until) {
        const answers = await Promise.all(Array.from({length: parallel}, () => call("/api/auth/me/")));
        for (const answer of answers) answer.status === 200 ? result.ok++ : result.failed.push(answer);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return result;
    },
  };
}"""

# README's seed-style axios interceptor: refresh on `access_token_expired` only,
# resend once on `access_token_stale`, every other 401 is a logout.
SEED = """async (source) => {
  const url = URL.createObjectURL(new Blob([source], {type: "text/javascript"}));
  const axios = (await import(url)).default;
  const api = axios.create({withCredentials: true, xsrfCookieName: "csrftoken", xsrfHeaderName: "X-CSRFToken"});
  let refreshing = null;
  let refreshes = 0;
  api.interceptors.response.use(undefined, async (error) => {
    const original = error.config;
    const code = error.response?.status === 401 ? error.response.data?.code : null;
    if (code === "access_token_stale" && !original._staleRetry) {
      original._staleRetry = true;
      return api(original);
    }
    if (code === "access_token_expired" && !original._retry) {
      original._retry = true;
      refreshes += 1;
      refreshing ??= api.post("/api/auth/refresh/").finally(() => { refreshing = null; });
      await refreshing;
      return api(original);
    }
    return Promise.reject(error);
  });
  window.seed = {
    refreshes: () => refreshes,
    async run(ms) {
      const until = Date.now() + ms;
      const result = {ok: 0, logouts: []};
      while (Date.now() < until) {
        try {
          await api.get("/api/auth/me/");
          result.ok += 1;
        } catch (error) {
          result.logouts.push(error.response ? JSON.stringify(error.response.data) : String(error));
        }
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      return result;
    },
  };
}"""


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def playwright_driver():
    # As tests/browser/conftest.py: Playwright's loop runs on this thread.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    driver = sync_playwright().start()
    yield driver
    driver.stop()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def dbsc_browser(playwright_driver, certificate):
    launched = playwright_driver.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS + chromium_args(certificate), headless=True
    )
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def plain_browser(playwright_driver, certificate):
    """Chromium trusting the same certificate, without DBSC (today's browsers)."""
    launched = playwright_driver.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS + chromium_args(certificate, dbsc=False), headless=True
    )
    yield launched
    launched.close()


@pytest.fixture
def server(transactional_db, certificate):
    port = free_port()
    started = Gunicorn(
        workers=2,
        port=port,
        tls=(certificate.certfile, certificate.keyfile),
        # Secure cookies turn DBSC on; short tokens so that expiry happens within a test.
        AUTH_COOKIE_SECURE="true",
        AUTH_ACCESS_TOKEN_LIFETIME="4",
        AUTH_REFRESH_GRACE_SECONDS="2",
        AUTH_THROTTLE_REFRESH="1000/min",
        AUTH_THROTTLE_REFRESH_IP="1000/min",
        DJANGO_ALLOWED_HOSTS=f"{HOST},127.0.0.1",
        AUTH_DEMO_PAGE="true",
    ).start()
    started.origin = f"https://{HOST}:{port}"
    yield started
    started.stop()


@pytest.fixture
def alice(transactional_db):
    return user_create(username="alice")


class Tab:
    def __init__(self, page, origin: str) -> None:
        self.page, self.origin = page, origin
        self.refresh_calls: list[str] = []
        page.on("request", lambda r: self.refresh_calls.append(r.url) if r.url.endswith("/api/auth/refresh/") else None)
        self.dbsc = watch_dbsc(page)
        page.goto(origin + "/admin/login/")
        page.evaluate(HARNESS)

    def login(self) -> None:
        assert self.page.evaluate("([u, p]) => dt.login(u, p)", ["alice", PASSWORD]) == 200

    def call(self, path: str, method: str = "GET") -> dict:
        return self.page.evaluate("([path, method]) => dt.call(path, method)", [path, method])

    def wait_for(self, kind: str, count: int = 1, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.dbsc.succeeded(kind)) < count:
            assert time.monotonic() < deadline, f"no {kind} event: {self.dbsc.events}"
            self.page.wait_for_timeout(100)

    def cookie(self, name: str) -> dict | None:
        return next((c for c in self.page.context.cookies() if c["name"] == name), None)


def _bound_session(timeout: float = 10) -> Session:
    deadline = time.monotonic() + timeout
    while True:
        session = Session.objects.get()
        if session.is_bound or time.monotonic() > deadline:
            return session
        time.sleep(0.1)


def test_fetch_login_registers_and_binds_the_session(dbsc_browser, server, alice):
    tab = Tab(dbsc_browser.new_page(), server.origin)
    tab.login()
    tab.wait_for("creation")
    created = tab.dbsc.succeeded("creation")[0]
    session = _bound_session()
    assert created["sessionId"] == str(session.pk)
    assert created["creationEventDetails"]["newSession"]["refreshUrl"] == f"{server.origin}/api/auth/dbsc/refresh/"
    assert session.is_bound and session.binding_jwk["kty"] == "EC"
    # The jar now holds the bound access cookie: cnf names the device key, and the
    # cookie dies before its token.
    cookie = tab.cookie(ACCESS)
    claims = token_claims(cookie["value"])
    assert claims["cnf"] == {"jkt": session.binding_jkt}
    assert cookie["expires"] < claims["exp"]
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.BINDING_REGISTERED).count() == 1


def test_three_expiries_pass_with_no_401_reaching_the_page(dbsc_browser, server, alice):
    tab = Tab(dbsc_browser.new_page(), server.origin)
    tab.login()
    tab.wait_for("creation")
    # Five parallel calls at a time for over three 4-second lifetimes.
    result = tab.page.evaluate("dt.run(14000, 5)")
    assert result["failed"] == []
    assert result["ok"] > 0
    session = Session.objects.get()
    assert session.generation >= 4  # at least three device-signed rotations
    assert len(tab.dbsc.succeeded("refresh")) >= 3
    assert tab.dbsc.failed("refresh") == []
    assert tab.refresh_calls == []  # the page never needed refresh/
    assert not SecurityEvent.objects.filter(
        kind__in=[SecurityEvent.Kind.BINDING_PROOF_MISSING, SecurityEvent.Kind.BINDING_PROOF_INVALID]
    ).exists()
    assert session.revoked_at is None


def test_four_tabs_with_the_seed_interceptor_never_log_out(dbsc_browser, server, alice):
    context = dbsc_browser.new_context()
    try:
        tabs = [Tab(context.new_page(), server.origin) for _ in range(4)]
        tabs[0].login()
        tabs[0].wait_for("creation")
        source = AXIOS.read_text()
        for tab in tabs:
            tab.page.evaluate(SEED, source)
        runs = [tab.page.evaluate_handle("seed.run(16000)") for tab in tabs]
        results = [run.json_value() for run in runs]
        assert [result["logouts"] for result in results] == [[]] * 4
        assert all(result["ok"] > 0 for result in results)
        # No tab ever met an expiry, so none called refresh/: the browser renewed the
        # bound cookie for all of them.
        assert [tab.page.evaluate("seed.refreshes()") for tab in tabs] == [0] * 4
        session = Session.objects.get()
        assert (session.revoked_at, session.generation >= 4) == (None, True)
        assert not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.BINDING_PROOF_MISSING).exists()
    finally:
        context.close()


def _copied(tab: Tab, server) -> requests.Session:
    """A plain HTTP client on another machine holding copies of every cookie."""
    http = requests.Session()
    for cookie in tab.page.context.cookies():
        http.cookies.set(cookie["name"], cookie["value"])
    http.headers.update({"Host": f"{HOST}:{server.port}", "Origin": server.origin, "Referer": server.origin + "/"})
    return http


def test_copied_cookie_jar_cannot_refresh_and_dies_with_the_access_token(dbsc_browser, server, alice):
    tab = Tab(dbsc_browser.new_page(), server.origin)
    tab.login()
    tab.wait_for("creation")
    assert tab.page.evaluate("dt.run(5000, 1)")["failed"] == []  # through a device-signed refresh or more
    thief = _copied(tab, server)
    base = server.url
    exp = token_claims(thief.cookies[ACCESS])["exp"]
    # The copy works while its token lives.
    assert thief.get(f"{base}/api/auth/me/", timeout=10, verify=False).status_code == 200
    csrf = {"X-CSRFToken": thief.cookies["csrftoken"]}
    refused = thief.post(f"{base}/api/auth/refresh/", headers=csrf, timeout=10, verify=False)
    assert (refused.status_code, refused.json()["code"]) == (401, "binding_proof_required")
    sid = str(Session.objects.get().pk)
    named = {"Sec-Secure-Session-Id": sid}
    asked = thief.post(f"{base}/api/auth/dbsc/refresh/", headers=named, timeout=10, verify=False)
    assert asked.status_code == 403
    challenge = asked.headers["Secure-Session-Challenge"].split('"')[1]
    forged = thief.post(
        f"{base}/api/auth/dbsc/refresh/",
        headers={"Sec-Secure-Session-Id": sid, "Secure-Session-Response": Device().proof(challenge, jwk=False)},
        timeout=10,
        verify=False,
    )
    assert (forged.status_code, forged.json()["code"]) == (401, "binding_proof_invalid")
    while time.time() <= exp:
        time.sleep(0.1)
    expired = thief.get(f"{base}/api/auth/me/", timeout=10, verify=False)
    assert (expired.status_code, expired.json()["code"]) == (401, "access_token_expired")
    # The owner's page goes on, and the log names the thief's attempts.
    assert tab.call("/api/auth/me/")["status"] == 200
    kinds = set(SecurityEvent.objects.values_list("kind", flat=True))
    assert {SecurityEvent.Kind.BINDING_PROOF_MISSING, SecurityEvent.Kind.BINDING_PROOF_INVALID} <= kinds
    assert Session.objects.get().revoked_at is None


def test_logout_of_a_bound_session_lands_the_page_on_the_login_screen(dbsc_browser, server, alice):
    tab = Tab(dbsc_browser.new_page(), server.origin)
    tab.login()
    tab.wait_for("creation")
    assert tab.call("/api/auth/logout/", "POST")["status"] == 204
    assert Session.objects.get().is_revoked
    assert tab.call("/api/auth/me/") == {"status": 401, "code": "not_authenticated"}
    # Past what would have been the next renewal, still nothing comes back.
    tab.page.wait_for_timeout(5000)
    assert tab.call("/api/auth/me/") == {"status": 401, "code": "not_authenticated"}
    assert tab.cookie(ACCESS) is None and tab.cookie(REFRESH) is None


def test_admin_revocation_of_a_bound_session_is_seen_by_the_page(dbsc_browser, server, alice):
    root = user_create(username="root", is_staff=True, is_superuser=True)
    tab = Tab(dbsc_browser.new_page(), server.origin)
    tab.login()
    tab.wait_for("creation")
    session = _bound_session()
    assert sessions_revoke_by_admin(admin=root, request=None, session_ids=[str(session.pk)]) == [str(session.pk)]
    first = tab.call("/api/auth/me/")
    # The live access cookie is refused at once; once it expires, the device-signed
    # refresh is refused too, the browser ends its bound session and the page has no cookie.
    assert first["status"] == 401 and first["code"] in {"session_revoked", "not_authenticated"}
    tab.page.wait_for_timeout(5000)
    assert tab.call("/api/auth/me/") == {"status": 401, "code": "not_authenticated"}
    assert tab.dbsc.failed("refresh") or first["code"] == "not_authenticated"


def test_browser_without_dbsc_keeps_the_plain_flow(plain_browser, server, alice):
    page = plain_browser.new_page()
    page.goto(server.origin + "/admin/login/")
    page.evaluate(HARNESS)
    assert page.evaluate("([u, p]) => dt.login(u, p)", ["alice", PASSWORD]) == 200
    page.wait_for_timeout(1000)
    session = Session.objects.get()
    assert not session.is_bound
    cookie = next(c for c in page.context.cookies() if c["name"] == ACCESS)
    claims = token_claims(cookie["value"])
    assert "cnf" not in claims
    while time.time() <= claims["exp"]:
        page.wait_for_timeout(100)
    call = "([path, method]) => dt.call(path, method)"
    assert page.evaluate(call, ["/api/auth/me/", "GET"]) == {"status": 401, "code": "access_token_expired"}
    assert page.evaluate(call, ["/api/auth/refresh/", "POST"]) == {"status": 200, "code": None}
    assert page.evaluate(call, ["/api/auth/me/", "GET"])["status"] == 200


def test_demo_page_shows_the_binding_and_its_thief_is_refused(dbsc_browser, server, alice):
    page = dbsc_browser.new_page()
    events = watch_dbsc(page)
    page.goto(server.origin + "/")
    page.wait_for_selector("body:not([data-view=loading])")
    log_in(page)
    deadline = time.monotonic() + 20
    while not [e for e in events.events if e.get("succeeded") and "creationEventDetails" in e]:
        assert time.monotonic() < deadline, events.events
        page.wait_for_timeout(100)
    page.click("#sessions-reload")  # the binding came just after the login's own calls
    page.wait_for_selector("#bound:not([hidden])")
    assert "bound to its device since" in page.inner_text("#sessions li.current")
    assert page.inner_text("#bound") == "bound to this device"
    page.click("#thief")
    page.wait_for_selector("#security-log li[data-kind=binding_proof_missing]")
    assert "Refused" in page.inner_text("#thief-status")
    assert "203.0.113.66" in page.inner_text("#security-log li")
    # The owner is still in, across the next expiry too.
    page.wait_for_timeout(5000)
    page.eval_on_selector("#whoami-result", "node => { node.textContent = ''; }")
    page.click("#whoami")
    page.wait_for_selector("#whoami-result:has-text('alice')")
    assert page.get_attribute("body", "data-view") == "app"
    assert Session.objects.get().revoked_at is None


def test_client_meeting_binding_proof_required_retries_instead_of_logging_out(dbsc_browser, server, alice):
    tab = Tab(dbsc_browser.new_page(), server.origin)
    tab.login()
    tab.wait_for("creation")
    _bound_session()
    # An explicit refresh of a bound session (what a call meeting an expiry would
    # do): the server refuses it without the device key, and the client carries on.
    outcome = tab.page.evaluate(
        """async () => {
          const { createClient } = await import("/static/duotoken/client.js");
          let logouts = 0;
          const api = createClient({ onLogout: () => { logouts += 1; } });
          let refresh = "resolved";
          try { await api.refresh(); } catch (error) { refresh = error.name; }
          const me = await api.me();
          return { refresh, logouts, username: me.username };
        }"""
    )
    assert outcome == {"refresh": "resolved", "logouts": 0, "username": "alice"}
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.BINDING_PROOF_MISSING).count() == 1
    assert Session.objects.get().revoked_at is None
