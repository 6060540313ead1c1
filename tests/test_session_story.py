"""The admin's session page tells the session's story: its login, every rotation and
grace replay with address and device, and the reuse or revocation that ended it."""

import re
from datetime import timedelta

import pytest
from django.test import Client

from tokens.models import Rotation, Session

from .factories import user_create

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
CURL = "curl/8.5.0"


def admin_page(session_id: str) -> str:
    root = user_create(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    response = client.get(f"/admin/tokens/session/{session_id}/change/")
    assert response.status_code == 200
    return response.content.decode()


def story_rows(html: str) -> list[list[str]]:
    """The cells of the story's table: time, step, generation, IP, device, details."""
    body = html.split('<table class="story-steps">', 1)[1].split("</tbody>", 1)[0]
    return [
        [re.sub(r"\s+", " ", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in body.split("<tr")[2:]
    ]


@pytest.fixture
def story(at_noon, make_spa, time_machine):
    return story_told(at_noon, make_spa, time_machine)


def story_told(owner, make_spa, time_machine) -> str:
    """alice's session: two rotations from her Firefox, a grace replay from her other
    tab, then a refresh from curl on another address with a token two rotations old."""
    old_refresh = owner.cookie("refresh")
    session_id = str(Session.objects.get().pk)
    time_machine.shift(timedelta(seconds=10))
    assert owner.refresh(HTTP_USER_AGENT=FIREFOX, REMOTE_ADDR="10.0.0.1").status_code == 200
    other_tab = make_spa()
    other_tab.set_cookie("refresh", old_refresh)
    time_machine.shift(timedelta(seconds=1))
    assert other_tab.refresh(HTTP_USER_AGENT=FIREFOX, REMOTE_ADDR="10.0.0.1").status_code == 200
    time_machine.shift(timedelta(seconds=100))
    assert owner.refresh(HTTP_USER_AGENT=FIREFOX, REMOTE_ADDR="10.0.0.1").status_code == 200
    thief = make_spa()
    thief.set_cookie("refresh", old_refresh)
    time_machine.shift(timedelta(seconds=200))
    response = thief.refresh(HTTP_USER_AGENT=CURL, REMOTE_ADDR="203.0.113.9")
    assert response.json()["code"] == "refresh_token_reused"
    return session_id


def test_refresh_records_each_rotation_and_replay_with_address_and_device(story):
    rows = Rotation.objects.filter(session_id=story).values_list("kind", "presented", "generation", "ip")
    assert list(rows) == [
        ("rotated", 1, 2, "10.0.0.1"),
        ("replayed", 1, 2, "10.0.0.1"),
        ("rotated", 2, 3, "10.0.0.1"),
    ]


def test_admin_session_page_lists_the_story_in_order(story):
    rows = story_rows(admin_page(story))
    titles = [row[1] for row in rows]
    assert titles == [
        "Login",
        "Rotated to generation 2",
        "Grace replay of generation 1: handed generation 2",
        "Rotated to generation 3",
        "Reuse detected",
        "Ended: Refresh token reuse detected",
    ]
    reuse = rows[4]
    assert reuse[3:5] == ["203.0.113.9", "curl"]
    assert reuse[5] == (
        "generation 1 presented after generation 3 was issued; rotated first from 10.0.0.1 "
        "(Firefox on Windows), replayed from 203.0.113.9 (curl)"
    )
    assert rows[1][2:5] == ["2", "10.0.0.1", "Firefox on Windows"]


def test_admin_session_page_draws_one_lane_per_device_and_marks_each_step(story):
    html = admin_page(story)
    svg = html.split('<svg class="story-chart"', 1)[1].split("</svg>", 1)[0]
    kinds = re.findall(r'data-kind="([a-z]+)"', svg)
    assert kinds == ["login", "rotation", "replay", "rotation", "reuse", "ending"]
    # The login came from the test client's default agent and address, the rotations
    # from Firefox at 10.0.0.1, the refused replay from curl elsewhere: three lanes.
    lanes = re.findall(r'data-lane="([^"]+)"', svg)
    assert lanes == ["Unknown device · 127.0.0.1", "Firefox on Windows · 10.0.0.1", "curl · 203.0.113.9"]


def test_admin_session_page_of_a_fresh_session_shows_only_its_login(alice, spa):
    assert spa.login().status_code == 200
    rows = story_rows(admin_page(str(Session.objects.get().pk)))
    assert [row[1:4] for row in rows] == [["Login", "1", "127.0.0.1"]]
