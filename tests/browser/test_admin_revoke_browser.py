"""A real browser in the admin: Chromium logs in, ticks a session and runs "Revoke
selected sessions"; the access cookie captured before is refused right after."""

import pytest
import requests

from tokens.models import RevokeReason, SecurityEvent, Session

from ..factories import PASSWORD, user_create


def spa_login(base_url: str, username: str) -> tuple[requests.Session, str]:
    """Log in the way the SPA does, over HTTP against the real server."""
    http = requests.Session()
    assert http.get(f"{base_url}/api/auth/csrf/", timeout=10).status_code == 204
    response = http.post(
        f"{base_url}/api/auth/login/",
        json={"username": username, "password": PASSWORD},
        headers={"X-CSRFToken": http.cookies["csrftoken"]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return http, response.json()["session"]["id"]


@pytest.mark.browser
@pytest.mark.parametrize("gunicorn", [{"workers": 2}], indirect=True)
def test_admin_revoke_in_browser_refuses_captured_access_cookie_on_next_request(browser, gunicorn):
    user_create(username="root", is_staff=True, is_superuser=True)
    user_create(username="alice")
    http, session_id = spa_login(gunicorn.url, "alice")
    captured = http.cookies["dt_access"]
    assert http.get(f"{gunicorn.url}/api/auth/me/", timeout=10).status_code == 200

    # `browser` (tests/browser/conftest.py) is Debian's Chromium, headless, via Playwright.
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{gunicorn.url}/admin/login/?next=/admin/tokens/session/")
        page.fill("input[name=username]", "root")
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/tokens/session/")
        page.check(f"input[name=_selected_action][value='{session_id}']")
        page.select_option("select[name=action]", "revoke_selected")
        page.click("button[name=index]")
        message = page.inner_text("ul.messagelist li.success")
    finally:
        context.close()

    assert message == "1 session ended."
    refused = requests.get(f"{gunicorn.url}/api/auth/me/", cookies={"dt_access": captured}, timeout=10)
    assert refused.status_code == 401
    assert refused.json() == {"detail": "This session has ended; log in again.", "code": "session_revoked"}
    assert Session.objects.get(pk=session_id).revoke_reason == RevokeReason.ADMIN
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.ADMIN_REVOKED)
    assert (event.data["admin"]["username"], event.data["sessions"]) == ("root", [session_id])
