"""The same contract through the ecosystem's usual client: axios with the
axios-auth-refresh plugin (vendored, see vendor/README.md), on the server's origin."""

from pathlib import Path

import pytest

from tokens.models import Session

from .conftest import DEMO_SERVER, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("gunicorn", [DEMO_SERVER], indirect=True)]

VENDOR = Path(__file__).parent / "vendor"
PAGE_PATH = "/axios-test/"
SCRIPTS = {
    "axios.js": VENDOR / "axios" / "axios.min.js",
    "axios-auth-refresh.js": VENDOR / "axios-auth-refresh" / "index.esm.js",
}

# A page the way an SPA team would write it: axios reads the CSRF cookie itself, and
# the plugin retries every request whose 401 says the access token is gone, after
# one shared refresh. `deduplicateRefresh: false` makes requests that were already in
# flight wait for that refresh too (the default rejects them and pauses only later
# requests). The plugin forgets its refresh once the first retry is done, so a 401
# that arrives later still (its request left before the refresh) would refresh
# again: the epoch stamp recognises it as stale and just retries, as the README
# advises for any client. The server's `access_token_stale` is retried the same way.
PAGE = f"""<!doctype html>
<html><head><meta charset="utf-8">
<script type="importmap">
{{"imports": {{"axios": "{PAGE_PATH}axios.js", "axios-auth-refresh": "{PAGE_PATH}axios-auth-refresh.js"}}}}
</script>
<script type="module">
import axios from "axios";
import createAuthRefreshInterceptor from "axios-auth-refresh";

const api = axios.create({{withCredentials: true, xsrfCookieName: "csrftoken", xsrfHeaderName: "X-CSRFToken"}});
let epoch = 0;  // bumped by every refresh
let refreshes = 0;
api.interceptors.request.use((config) => {{
  config.sentEpoch ??= epoch;
  return config;
}});
createAuthRefreshInterceptor(
  api,
  async (failed) => {{
    // The cookies were renewed after it left: just retry.
    if (failed.config.sentEpoch !== epoch || failed.response.data?.code === "access_token_stale") return;
    await api.post("/api/auth/refresh/", null, {{skipAuthRefresh: true}});
    epoch += 1;
    refreshes += 1;
  }},
  {{
    deduplicateRefresh: false,
    shouldRefresh: (error) =>
      error.response?.status === 401 &&
      ["access_token_expired", "access_token_stale"].includes(error.response.data?.code),
  }},
);
window.spa = {{
  refreshes: () => refreshes,
  async login(username, password) {{
    await api.get("/api/auth/csrf/");
    return (await api.post("/api/auth/login/", {{username, password}})).data.user.username;
  }},
  async burst(size) {{
    const results = await Promise.allSettled(Array.from({{length: size}}, () => api.get("/api/auth/me/")));
    return results.map((r) =>
      r.status === "fulfilled" ? r.value.status : (r.reason.response?.status ?? String(r.reason)),
    );
  }},
}};
document.body.dataset.ready = "yes";
</script>
</head><body></body></html>"""


def serve_test_page(route) -> None:
    name = route.request.url.rsplit("/", 1)[-1]
    if name in SCRIPTS:
        route.fulfill(status=200, content_type="text/javascript", body=SCRIPTS[name].read_text())
    else:
        route.fulfill(status=200, content_type="text/html", body=PAGE)


def test_axios_auth_refresh_parallel_calls_after_expiry_refresh_once_and_all_succeed(alice, browsing):
    profile = browsing()
    page = profile.new_tab()
    # Served by the browser itself, but on the server's origin, so cookies and
    # CSRF behave exactly as for an SPA deployed next to the API.
    page.route(f"{profile.url}{PAGE_PATH}**", serve_test_page)
    page.goto(profile.url + PAGE_PATH)
    page.wait_for_selector("body[data-ready=yes]", state="attached")
    assert page.evaluate("([u, p]) => spa.login(u, p)", ["alice", PASSWORD]) == "alice"
    profile.wait_for_access_expiry()
    profile.refreshes.clear()

    statuses = page.evaluate("spa.burst(20)")

    assert statuses == [200] * 20
    assert profile.refreshes == ["POST"]
    assert page.evaluate("spa.refreshes()") == 1
    assert Session.objects.get().generation == 2
    assert profile.page_errors == []
