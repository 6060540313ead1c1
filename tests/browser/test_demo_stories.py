"""The demo page's three stories in Chromium, checked by what the page shows: the
timeline's marks and counts, the generation, the views and the security log."""

import json
import os

import pytest

from tokens.models import RevokeReason, SecurityEvent, Session

from .conftest import DEMO_SERVER, fire_burst, log_in

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("gunicorn", [DEMO_SERVER], indirect=True)]

OWN_LANE = "#timeline g.lane[data-tab=self]"
OTHER_LANE = "#timeline g.lane[data-tab=other]"
# Set to a directory to keep pictures of the stories (the README's is made so).
SCREENSHOTS = os.environ.get("DEMO_SCREENSHOTS")


def lane_counts(page, lane: str = OWN_LANE) -> dict[str, int]:
    return page.eval_on_selector(
        lane,
        """g => Object.fromEntries(
            ["calls", "ok", "unauthorized", "retries", "rotated", "replayed", "thief", "ended"]
                .map(name => [name, Number(g.dataset[name])]))""",
    )


def test_timeline_after_expiry_shows_expired_call_one_rotation_and_the_retry(alice, browsing):
    profile = browsing()
    page = profile.open_demo()
    log_in(page)
    page.wait_for_selector("#generation:text('1')")
    profile.wait_for_access_expiry()
    page.wait_for_selector("#token-left:text('expired')")
    before = lane_counts(page)
    profile.refreshes.clear()

    page.click("#whoami")
    page.wait_for_selector("#whoami-result:not(:empty)")
    page.wait_for_selector(f"{OWN_LANE} [data-kind=refresh][data-outcome=rotated][data-generation='2']")

    # The page's next call after expiry was answered access_token_expired: that is
    # the body it received, as it shows it.
    assert json.loads(page.inner_text("#last-error")) == {
        "detail": "The access token has expired; refresh the session and retry.",
        "code": "access_token_expired",
    }
    assert page.locator(f"{OWN_LANE} [data-kind=call][data-code=access_token_expired]").count() == 1
    assert page.locator(f"{OWN_LANE} [data-kind=call][data-retry][data-status='200']").count() == 1
    after = lane_counts(page)
    assert after["unauthorized"] - before["unauthorized"] == 1
    assert after["retries"] - before["retries"] == 1
    assert (after["rotated"], after["replayed"], after["ended"]) == (1, 0, 0)
    assert page.inner_text("#generation") == "2"
    assert page.inner_text("#refresh-count") == "1"
    assert profile.refreshes == ["POST"]
    assert page.get_attribute("body", "data-view") == "app"
    assert Session.objects.get().generation == 2
    assert profile.page_errors == []


def test_fresh_browser_without_cookies_is_not_authenticated_and_never_refreshes(alice, browsing):
    profile = browsing()

    page = profile.open_demo()

    assert page.get_attribute("body", "data-view") == "login"
    assert page.inner_text("#login-message") == ""
    answered = page.locator(f"{OWN_LANE} [data-kind=call][data-status='401']")
    assert answered.count() == 1
    assert answered.get_attribute("data-code") == "not_authenticated"
    assert json.loads(page.inner_text("#last-error")) == {
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
    }
    assert profile.refreshes == []
    assert profile.page_errors == []


def test_a_new_tab_draws_every_open_tab_at_once_so_its_buttons_never_move(alice, browsing):
    profile = browsing()
    first = profile.open_demo()
    log_in(first)
    second = profile.open_demo()

    # The first tab has made no call since the second opened: it answered its hello.
    second.wait_for_selector(OTHER_LANE, state="attached")
    burst = second.locator("#burst").bounding_box()
    fire_burst(first)

    assert second.locator("#burst").bounding_box() == burst


def test_second_tab_race_at_one_expiry_makes_one_rotation_and_one_grace_replay(alice, browsing):
    profile = browsing()
    first = profile.open_demo()
    log_in(first)
    with profile.context.expect_page() as opened:
        first.click("#open-tab")
    second = opened.value
    second.wait_for_selector("body[data-view=app]")

    # Each tab draws its own lane and the other's, from what they broadcast.
    for tab in (first, second):
        tab.wait_for_selector("#race-status:text('Done'), body[data-view=login]", timeout=30000)
    shown = [
        (tab.get_attribute("body", "data-view"), tab.inner_text("#race-status"), tab.inner_text("#status"))
        for tab in (first, second)
    ]
    assert all(view == "app" and race.startswith("Done") for view, race, _ in shown), (shown, lane_counts(first))
    refreshes_drawn = "g => [Number(g.dataset.rotated), Number(g.dataset.replayed)]"
    for tab, other in ((first, second), (second, first)):
        # What a tab draws of the other arrives over BroadcastChannel, a moment later.
        mine = other.eval_on_selector(OWN_LANE, refreshes_drawn)
        tab.wait_for_function(
            f"(mine) => JSON.stringify(({refreshes_drawn})(document.querySelector('{OTHER_LANE}'))) === "
            "JSON.stringify(mine)",
            arg=mine,
        )

    own = [lane_counts(tab) for tab in (first, second)]
    # The race itself: both tabs met the expired token and both refreshed with the
    # same refresh token; the server rotated once and replayed once. (A tab may also
    # have refreshed alone before the race, while loading: those are rotations too.)
    rotated = sum(counts["rotated"] for counts in own)
    replayed = sum(counts["replayed"] for counts in own)
    assert replayed == 1
    assert rotated >= 1
    assert Session.objects.get().generation == 1 + rotated
    for tab in (first, second):
        assert tab.get_attribute("body", "data-view") == "app"
        # The other tab's replay is drawn when its broadcast arrives: wait for the mark.
        tab.wait_for_function(
            "() => document.querySelectorAll('[data-kind=refresh][data-outcome=replayed]').length >= 1", timeout=10000
        )
        assert tab.locator("[data-kind=refresh][data-outcome=replayed]").count() == 1
        assert tab.locator("[data-kind=ended]").count() == 0
    session = Session.objects.get()
    assert session.revoked_at is None
    assert profile.page_errors == []
    if SCREENSHOTS:
        keep_picture(first, "#live", "demo-timeline.png")


def keep_picture(page, selector: str, name: str) -> None:
    page.set_viewport_size({"width": 1000, "height": 900})
    page.locator(selector).screenshot(path=os.path.join(SCREENSHOTS, name))


def test_play_the_thief_ends_the_session_in_every_tab_and_shows_the_log_line(alice, browsing):
    profile = browsing()
    first = profile.open_demo()
    log_in(first)
    second = profile.open_demo()
    assert second.get_attribute("body", "data-view") == "app"

    first.click("#thief")

    for tab in (first, second):
        tab.wait_for_selector("body[data-view=login]", timeout=20000)
        assert tab.inner_text("#login-message") == "Your session has ended. Please log in again."
        tab.wait_for_selector("#security-log li[data-kind=refresh_reuse_detected]")
        assert tab.locator("#security-log li").count() == 1
        line = tab.inner_text("#security-log li")
        assert "refresh_reuse_detected" in line
        assert "replayed from 203.0.113.66 (curl/8.5.0 (demo thief))" in line
        assert "first rotated from 127.0.0.1" in line
    assert first.locator(f"{OWN_LANE} [data-kind=thief]").count() == 1
    assert lane_counts(second, OTHER_LANE)["thief"] == 1
    for tab in (first, second):
        assert lane_counts(tab)["ended"] == 1
    session = Session.objects.get()
    assert session.revoke_reason == RevokeReason.REUSE
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.REFRESH_REUSE)
    assert event.session_id == session.pk
    assert (event.ip, event.user_agent) == ("203.0.113.66", "curl/8.5.0 (demo thief)")
    assert event.data["presented_generation"] == session.generation - 1
    # The generations in the line are the ones the database recorded.
    assert f"generation {session.generation - 1} presented while generation {session.generation}" in line
    assert profile.page_errors == []
    if SCREENSHOTS:
        keep_picture(first, "main", "demo-thief.png")
