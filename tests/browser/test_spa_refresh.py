"""Refresh in a real browser: single flight within a tab, coordination across tabs,
and the ways a session ends (logout elsewhere, an admin)."""

import pytest

from tokens.models import RevokeReason, Session
from tokens.services import sessions_revoke

from .conftest import DEMO_SERVER, fire_burst, log_in

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("gunicorn", [DEMO_SERVER], indirect=True)]


def test_parallel_calls_after_expiry_refresh_once_and_all_succeed(alice, browsing):
    profile = browsing()
    page = profile.open_demo()
    log_in(page)
    profile.wait_for_access_expiry()
    profile.refreshes.clear()

    fire_burst(page)

    assert page.get_attribute("#burst-result", "data-ok") == "20"
    assert page.get_attribute("#burst-result", "data-refreshes") == "1"
    assert profile.refreshes == ["POST"]
    assert page.get_attribute("body", "data-view") == "app"
    assert Session.objects.get().generation == 2
    assert profile.page_errors == []


def test_two_tabs_hitting_expiry_at_once_both_stay_logged_in(alice, browsing):
    profile = browsing()
    first = profile.open_demo()
    log_in(first)
    second = profile.open_demo()
    assert second.get_attribute("body", "data-view") == "app"
    profile.wait_for_access_expiry()
    profile.refreshes.clear()

    # Both tabs fire before either hears back, so both meet the expired token.
    first.click("#burst", no_wait_after=True)
    second.click("#burst", no_wait_after=True)
    first.wait_for_selector("#burst-result[data-ok]")
    second.wait_for_selector("#burst-result[data-ok]")

    for tab in (first, second):
        assert tab.get_attribute("#burst-result", "data-ok") == "20"
        assert tab.get_attribute("body", "data-view") == "app"
    # One tab refreshed; the other waited for the lock and found the new cookies.
    assert profile.refreshes == ["POST"]
    refreshed = [tab.get_attribute("#burst-result", "data-refreshes") for tab in (first, second)]
    assert sorted(refreshed) == ["0", "1"]
    assert Session.objects.get().generation == 2


def test_logout_in_one_tab_sends_other_tab_to_login_on_next_call(alice, browsing):
    profile = browsing()
    first = profile.open_demo()
    log_in(first)
    second = profile.open_demo()
    assert second.get_attribute("body", "data-view") == "app"

    first.click("#logout")
    first.wait_for_selector("body[data-view=login]")
    assert second.get_attribute("body", "data-view") == "app"  # until its next call
    second.click("#whoami")

    second.wait_for_selector("body[data-view=login]")
    assert second.inner_text("#login-message") == "Your session has ended. Please log in again."
    assert Session.objects.get().revoke_reason == RevokeReason.LOGOUT


@pytest.mark.parametrize("access", ["live", "expired"])
def test_admin_revocation_sends_page_to_login_on_next_call(alice, browsing, access):
    profile = browsing()
    page = profile.open_demo()
    log_in(page)
    if access == "expired":
        profile.wait_for_access_expiry()

    sessions_revoke(reason=RevokeReason.ADMIN, user=alice)
    page.click("#whoami")

    page.wait_for_selector("body[data-view=login]")
    assert page.inner_text("#login-message") == "Your session has ended. Please log in again."
    assert page.inner_text("#whoami-result") == ""


def test_two_tabs_without_web_locks_both_stay_logged_in(alice, browsing):
    profile = browsing()
    # Browsers without the Web Locks API coordinate over BroadcastChannel only.
    profile.context.add_init_script("Object.defineProperty(Navigator.prototype, 'locks', {get: () => undefined})")
    first = profile.open_demo()
    log_in(first)
    second = profile.open_demo()
    assert second.evaluate("navigator.locks") is None
    profile.wait_for_access_expiry()
    profile.refreshes.clear()

    first.click("#burst", no_wait_after=True)
    second.click("#burst", no_wait_after=True)
    first.wait_for_selector("#burst-result[data-ok]")
    second.wait_for_selector("#burst-result[data-ok]")

    for tab in (first, second):
        assert tab.get_attribute("#burst-result", "data-ok") == "20"
        assert tab.get_attribute("body", "data-view") == "app"
    # A tab that hears of the other's refresh in time waits for it; if both start at
    # the same instant, the grace window hands both the same successor.
    assert profile.refreshes in (["POST"], ["POST", "POST"])
    session = Session.objects.get()
    assert session.revoked_at is None
    assert session.generation in (2, 3)
