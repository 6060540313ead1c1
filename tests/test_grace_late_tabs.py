"""Tabs of one browser share a cookie jar but not a clock: a tab can present a
refresh token that two rotations have left behind, seconds after the first of them.
Inside the grace window of that token's rotation it is the owner, and gets the
session's current pair; after it, it is reuse.

The interleaving is controlled: the slow tab's refresh is sent, then held at its
first query (it has read its cookie, not yet the clock or the row) while the other
tabs rotate, and released when the test says so."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from tokens.conf import auth_settings
from tokens.models import RevokeReason, SecurityEvent, Session

from .factories import user_create
from .test_credential_race import WAIT, InThread


class HeldRefresh:
    """One tab's refresh, sent from its own thread and held before its first read of
    the user row until released."""

    def __init__(self, tab) -> None:
        self.reached, self.release = threading.Event(), threading.Event()
        self.tab = tab
        self.request = InThread(self._send)

    def _hold(self, execute, sql, params, many, context):
        if '"accounts_user"' in sql and not self.reached.is_set():
            self.reached.set()
            assert self.release.wait(WAIT)
        return execute(sql, params, many, context)

    def _send(self):
        with connection.execute_wrapper(self._hold):
            return self.tab.refresh()

    def start(self) -> HeldRefresh:
        self.request.start()
        assert self.reached.wait(WAIT)
        return self

    def finish(self):
        self.release.set()
        return self.request.result()


@pytest.fixture
def browser(transactional_db, make_spa, time_machine):
    """Three tabs on one cookie jar (the last response wins), logged in at noon with
    the clock frozen, then past the access token's lifetime."""
    time_machine.move_to("2026-11-23 12:00:00+00:00", tick=False)
    user_create(username="alice")
    tabs = [make_spa() for _ in range(3)]
    for tab in tabs[1:]:
        tab.cookies = tabs[0].cookies
    assert tabs[0].login().status_code == 200
    time_machine.shift(auth_settings().access_lifetime + timedelta(seconds=1))
    yield tabs
    connection.close()


def refresh_cookie(response) -> str:
    # Read at once: the jar shares its cookie objects with the responses.
    return response.cookies["dt_refresh"].value


def test_slow_tab_two_generations_back_inside_the_window_gets_the_current_pair(browser, time_machine):
    a, b, c = browser
    slow = HeldRefresh(c).start()  # sent with generation 1

    assert a.refresh()["Duotoken-Refresh"] == "rotated"  # 1 -> 2
    time_machine.shift(timedelta(seconds=3))
    late = b.refresh()  # 2 -> 3, from the jar A has just written
    assert late["Duotoken-Refresh"] == "rotated"
    current = refresh_cookie(late)
    time_machine.shift(timedelta(seconds=20))  # generation 1 went 23 s ago
    response = slow.finish()

    assert response.status_code == 200, response.content
    assert response["Duotoken-Refresh"] == "replayed"
    assert refresh_cookie(response) == current
    session = Session.objects.get()
    assert (session.generation, session.revoked_at) == (3, None)
    assert [tab.me().status_code for tab in browser] == [200, 200, 200]
    assert {tab.refresh().json()["session"]["id"] for tab in browser} == {str(session.pk)}
    assert not SecurityEvent.objects.filter(kind="refresh_reuse_detected").exists()


def test_slow_tab_two_generations_back_after_the_window_ends_the_session(browser, time_machine):
    a, b, c = browser
    slow = HeldRefresh(c).start()

    a.refresh()
    current = refresh_cookie(b.refresh())
    time_machine.shift(auth_settings().grace + timedelta(seconds=1))
    response = slow.finish()

    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_reused"
    assert Session.objects.get().revoke_reason == RevokeReason.REUSE
    event = SecurityEvent.objects.get(kind="refresh_reuse_detected")
    assert (event.data["presented_generation"], event.data["current_generation"]) == (1, 3)
    a.set_cookie("refresh", current)  # the reuse answer cleared the jar; the newest token is refused too
    assert a.refresh().json()["code"] == "session_revoked"


def test_late_access_token_expired_rotating_again_keeps_every_tab_logged_in(browser, time_machine):
    a, b, c = browser
    # B's call with the expired access token is answered while generation 1 is
    # current, so it says "refresh" (not "stale"); B acts on it only after A's
    # rotation has landed in the jar. C's refresh with generation 1 is in flight.
    told = b.me()
    assert told.json()["code"] == "access_token_expired"
    slow = HeldRefresh(c).start()
    assert a.refresh()["Duotoken-Refresh"] == "rotated"  # 1 -> 2

    time_machine.shift(timedelta(seconds=1))
    again = b.refresh()  # told to refresh, with the jar's generation 2: 2 -> 3
    assert again["Duotoken-Refresh"] == "rotated"
    current = refresh_cookie(again)
    response = slow.finish()

    assert response.status_code == 200, response.content
    assert refresh_cookie(response) == current
    assert Session.objects.get().generation == 3
    assert [tab.me().status_code for tab in browser] == [200, 200, 200]
    assert not SecurityEvent.objects.filter(kind="refresh_reuse_detected").exists()
