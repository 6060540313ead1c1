"""The sessions panel: a user sees their sessions and ends them from the page."""

import pytest
from django.test import RequestFactory

from tokens.models import RevokeReason, Session
from tokens.services import session_start

from .conftest import DEMO_SERVER, log_in

pytestmark = pytest.mark.browser

# Room for more sessions than one page of the list holds (50 by default).
MANY_SESSIONS = 60
MANY_SESSIONS_SERVER = {**DEMO_SERVER, "AUTH_MAX_SESSIONS_PER_USER": "100"}


@pytest.mark.parametrize("gunicorn", [DEMO_SERVER], indirect=True)
def test_sessions_panel_revokes_another_device_which_lands_on_login(alice, browsing):
    laptop, phone = browsing(), browsing()
    laptop_page = laptop.open_demo()
    log_in(laptop_page)
    phone_page = phone.open_demo()
    log_in(phone_page)
    laptop_session, phone_session = (str(s.pk) for s in Session.objects.order_by("created_at"))

    laptop_page.click("#sessions-reload")
    laptop_page.wait_for_selector("#sessions li:nth-child(2)")
    listed = laptop_page.eval_on_selector_all("#sessions li", "items => items.map(i => i.dataset.sessionId)")
    assert listed == [laptop_session, phone_session]  # the current one first
    assert laptop_page.get_attribute("#sessions li:nth-child(1)", "class") == "current"

    laptop_page.click(f"#sessions button[data-revoke='{phone_session}']")
    laptop_page.wait_for_selector("#sessions li:only-child")
    assert laptop_page.get_attribute("#sessions li", "data-session-id") == laptop_session
    assert Session.objects.get(pk=phone_session).revoke_reason == RevokeReason.LOGOUT

    phone_page.click("#whoami")
    phone_page.wait_for_selector("body[data-view=login]")
    assert phone_page.inner_text("#login-message") == "Your session has ended. Please log in again."
    assert laptop_page.get_attribute("body", "data-view") == "app"


@pytest.mark.parametrize("gunicorn", [DEMO_SERVER], indirect=True)
def test_sessions_panel_revoking_own_session_shows_login(alice, browsing):
    profile = browsing()
    page = profile.open_demo()
    log_in(page)
    page.wait_for_selector("#sessions li.current")

    page.click("#sessions li.current button[data-revoke]")

    page.wait_for_selector("body[data-view=login]")
    assert page.inner_text("#login-message") == "This session was revoked."
    assert Session.objects.get().revoked_at is not None
    page.reload()
    page.wait_for_selector("body[data-view=login]")
    assert profile.cookie("dt_access") is None


@pytest.mark.parametrize("gunicorn", [MANY_SESSIONS_SERVER], indirect=True)
def test_sessions_panel_with_more_sessions_than_a_page_follows_the_link_and_lists_them_all(alice, browsing, settings):
    settings.DUOTOKEN = {**settings.DUOTOKEN, "MAX_SESSIONS_PER_USER": 100}
    for _ in range(MANY_SESSIONS):
        session_start(user=alice, request=RequestFactory().post("/api/auth/login/"))
    profile = browsing()
    page = profile.open_demo()
    listed_pages: list[str] = []
    page.on("request", lambda request: listed_pages.append(request.url) if "/sessions/" in request.url else None)

    log_in(page)

    current = Session.objects.latest("created_at")
    others = Session.objects.exclude(pk=current.pk).order_by("-rotated_at", "-pk")
    listed = page.eval_on_selector_all("#sessions li", "items => items.map(i => i.dataset.sessionId)")
    assert listed == [str(current.pk), *(str(s.pk) for s in others)]
    assert len(listed) == MANY_SESSIONS + 1
    assert len(listed_pages) == 2
    assert listed_pages[0] == f"{profile.url}/api/auth/sessions/"
    assert listed_pages[1].startswith(f"{profile.url}/api/auth/sessions/?limit=50&cursor=")
    assert profile.page_errors == []


@pytest.mark.parametrize("gunicorn", [DEMO_SERVER], indirect=True)
@pytest.mark.parametrize(
    "link",
    [
        # Another origin (here the same server by another name): cookies and CSRF stay home.
        "http://localhost:{port}/api/auth/sessions/?cursor=x",
        # Back to the first page: a loop.
        "/api/auth/sessions/",
    ],
)
def test_client_sessions_when_link_leaves_the_api_or_loops_refuses_to_follow(browsing, gunicorn, link):
    profile = browsing()
    page = profile.open_demo()
    requested: list[str] = []

    def one_page(route) -> None:
        requested.append(route.request.url)
        next_url = link.format(port=gunicorn.port)
        route.fulfill(status=200, json=[], headers={"Link": f'<{next_url}>; rel="next"'})

    page.route(lambda url: "/api/auth/sessions/" in url, one_page)

    outcome = page.evaluate(
        """async () => {
            const { createClient } = await import("/static/duotoken/client.js");
            try {
                return await createClient().sessions();
            } catch (error) {
                return [error.name, error.status, error.code];
            }
        }"""
    )

    assert outcome == ["ApiError", 0, "pagination_link_invalid"]
    assert requested == [f"{profile.url}/api/auth/sessions/"]
