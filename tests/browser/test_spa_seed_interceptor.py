"""The interceptor an SPA team writes first (a 401 handler with one refresh promise
per tab, no coordination between tabs), adapted to the error codes: it refreshes on
`access_token_expired` and just retries on `access_token_stale` (refreshing on a second
one). Four such tabs stay logged in across many expiries, with nothing but the server
to keep them apart."""

from pathlib import Path

import pytest

from tokens.models import SecurityEvent, Session

from .conftest import DEMO_SERVER, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("gunicorn", [DEMO_SERVER], indirect=True)]

TABS = 4
RUN_MS = 24000  # five 4-second access lifetimes or more (each lasts up to a second longer)
PAGE_PATH = "/seed-test/"
AXIOS = Path(__file__).parent / "vendor" / "axios" / "axios.min.js"

PAGE = f"""<!doctype html>
<html><head><meta charset="utf-8">
<script type="importmap">{{"imports": {{"axios": "{PAGE_PATH}axios.js"}}}}</script>
<script type="module">
import axios from "axios";

const api = axios.create({{withCredentials: true, xsrfCookieName: "csrftoken", xsrfHeaderName: "X-CSRFToken"}});
let refreshing = null;  // this tab's one refresh in flight
let refreshes = 0;

api.interceptors.response.use(
  (response) => response,
  async (error) => {{
    const original = error.config;
    const code = error.response?.status === 401 ? error.response.data?.code : null;
    if (code === "access_token_stale" && !original._staleRetry) {{
      original._staleRetry = true;  // the session was refreshed after it left: resend
      return api(original);
    }}
    // A second `access_token_stale` for one request: the newer cookies never reached
    // this tab's jar (another tab's refresh answered, its cookies still on the way),
    // so refresh; the grace window makes that safe.
    const expired = code === "access_token_expired" || code === "access_token_stale";
    if (expired && !original._retry) {{
      original._retry = true;
      if (!refreshing) {{
        refreshes += 1;
        refreshing = api.post("/api/auth/refresh/").finally(() => {{ refreshing = null; }});
      }}
      await refreshing;
      return api(original);
    }}
    return Promise.reject(error);
  }},
);

const result = {{done: false, ok: 0, failed: []}};
window.spa = {{
  result,
  refreshes: () => refreshes,
  async login(username, password) {{
    await api.get("/api/auth/csrf/");
    return (await api.post("/api/auth/login/", {{username, password}})).data.user.username;
  }},
  start(ms) {{
    const until = Date.now() + ms;
    (async () => {{
      while (Date.now() < until) {{
        try {{
          await api.get("/api/auth/me/");
          result.ok += 1;
        }} catch (error) {{
          result.failed.push(error.response ? JSON.stringify(error.response.data) : String(error));
        }}
        await new Promise((resolve) => setTimeout(resolve, 150));
      }}
      result.done = true;
    }})();
  }},
}};
document.body.dataset.ready = "yes";
</script>
</head><body></body></html>"""


def serve_test_page(route) -> None:
    if route.request.url.endswith("/axios.js"):
        route.fulfill(status=200, content_type="text/javascript", body=AXIOS.read_text())
    else:
        route.fulfill(status=200, content_type="text/html", body=PAGE)


def test_seed_interceptor_refreshing_on_expired_keeps_four_tabs_logged_in(alice, browsing):
    profile = browsing()
    profile.context.route(f"{profile.url}{PAGE_PATH}**", serve_test_page)
    tabs = []
    for _ in range(TABS):
        tab = profile.new_tab()
        tab.goto(profile.url + PAGE_PATH)
        tab.wait_for_selector("body[data-ready=yes]", state="attached")
        tabs.append(tab)
    assert tabs[0].evaluate("([u, p]) => spa.login(u, p)", ["alice", PASSWORD]) == "alice"
    profile.refreshes.clear()

    for tab in tabs:
        tab.evaluate(f"spa.start({RUN_MS})")
    for tab in tabs:
        tab.wait_for_function("spa.result.done", timeout=RUN_MS + 60000)

    results = [tab.evaluate("spa.result") for tab in tabs]
    reuse = list(SecurityEvent.objects.filter(kind=SecurityEvent.Kind.REFRESH_REUSE).values_list("data", flat=True))
    assert reuse == []
    assert [result["failed"] for result in results] == [[]] * TABS
    assert all(result["ok"] > 0 for result in results)
    session = Session.objects.get()
    assert session.revoked_at is None
    # Several expiries passed, and each one cost at least one rotation.
    assert session.generation >= 4
    # A tab refreshes at most once per generation (a tab that only ever met
    # `access_token_stale` never refreshed at all), and the browser sent exactly
    # the refreshes the tabs started.
    refreshes = [tab.evaluate("spa.refreshes()") for tab in tabs]
    assert all(count <= session.generation - 1 for count in refreshes)
    assert len(profile.refreshes) == sum(refreshes) >= session.generation - 1
    assert profile.page_errors == []
