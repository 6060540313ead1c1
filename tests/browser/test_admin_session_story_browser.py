"""The session's story in a real browser: an admin opens a session that met a reuse
and sees its lanes, rotations, the replay and the ending drawn, with the details
of each step in its tooltip."""

import pytest

from ..factories import PASSWORD, user_create
from ..test_session_story import story_told


@pytest.mark.browser
@pytest.mark.parametrize("gunicorn", [{"workers": 2}], indirect=True)
def test_admin_sees_the_story_of_a_session_ended_by_reuse(browser, gunicorn, make_spa, time_machine):
    user_create(username="root", is_staff=True, is_superuser=True)
    user_create(username="alice")
    # The story is told in this process, on a clock it moves (it stays moved: only
    # this process's clock); the admin reads it from the real server.
    time_machine.move_to("2026-11-23 12:00:00+00:00", tick=False)
    owner = make_spa()
    assert owner.login().status_code == 200
    session_id = story_told(owner, make_spa, time_machine)

    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{gunicorn.url}/admin/login/?next=/admin/tokens/session/{session_id}/change/")
        page.fill("input[name=username]", "root")
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"**/admin/tokens/session/{session_id}/change/")
        chart = page.locator("svg.story-chart")
        chart.wait_for()
        box = chart.bounding_box()
        kinds = page.eval_on_selector_all("svg.story-chart g.mark", "els => els.map(e => e.dataset.kind)")
        lanes = page.eval_on_selector_all("svg.story-chart g.lane", "els => els.map(e => e.dataset.lane)")
        tooltips = page.eval_on_selector_all("svg.story-chart g.mark title", "els => els.map(e => e.textContent)")
        replay_style = page.eval_on_selector("svg.story-chart g.mark.replay circle", "el => getComputedStyle(el).fill")
        legend_visible = page.locator(".story-legend").is_visible()
    finally:
        context.close()

    # Drawn, not just present: the stylesheet applies and the chart has a size.
    assert box is not None and box["width"] > 600 and box["height"] > 80
    assert replay_style == "rgb(255, 255, 255)"
    assert kinds == ["login", "rotation", "replay", "rotation", "reuse", "ending"]
    assert lanes == ["Unknown device · 127.0.0.1", "Firefox on Windows · 10.0.0.1", "curl · 203.0.113.9"]
    assert "Rotated to generation 2 · 10.0.0.1, Firefox on Windows" in tooltips[1]
    assert "Grace replay of generation 1: handed generation 2" in tooltips[2]
    assert "Reuse detected · 203.0.113.9, curl" in tooltips[4]
    assert "Ended: Refresh token reuse detected" in tooltips[5]
    assert legend_visible
