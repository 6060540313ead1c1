"""The sessions panel: a user sees their sessions and ends them from the page."""

import pytest

from tokens.models import RevokeReason, Session

from .conftest import DEMO_SERVER, log_in

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("gunicorn", [DEMO_SERVER], indirect=True)]


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
