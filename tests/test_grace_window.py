"""Parallel tabs and reloads replay the token just rotated; within the grace window
they must get the very same successor, and nothing else may happen."""

from datetime import timedelta

from tokens.models import ROTATIONS_KEPT, SecurityEvent, Session

GRACE = timedelta(seconds=30)


def _replay(client, old_refresh):
    client.set_cookie("refresh", old_refresh)
    return client.refresh()


def test_replay_within_grace_gets_byte_identical_cookies_and_no_new_generation(at_noon, make_spa, time_machine):
    old = at_noon.cookie("refresh")
    first = at_noon.refresh()
    other_tab = make_spa()
    other_tab.cookies.load({"csrftoken": at_noon.csrf_token})

    time_machine.shift(timedelta(seconds=10))
    second = _replay(other_tab, old)

    assert first.status_code == second.status_code == 200
    assert second.cookies["dt_refresh"].value == first.cookies["dt_refresh"].value
    assert second.cookies["dt_access"].value == first.cookies["dt_access"].value
    assert second.json() == first.json()
    assert Session.objects.get().generation == 2


def test_replay_exactly_at_the_end_of_the_window_still_succeeds(at_noon, time_machine):
    old = at_noon.cookie("refresh")
    successor = at_noon.refresh().cookies["dt_refresh"].value

    time_machine.shift(GRACE)
    response = _replay(at_noon, old)

    assert response.status_code == 200
    assert response.cookies["dt_refresh"].value == successor


def test_replay_just_after_the_window_is_reuse_and_ends_the_session(at_noon, time_machine):
    old = at_noon.cookie("refresh")
    at_noon.refresh()
    successor_access = at_noon.cookie("access")

    time_machine.shift(GRACE + timedelta(microseconds=1))
    response = _replay(at_noon, old)

    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_reused"
    session = Session.objects.get()
    assert session.revoked_at is not None and session.revoke_reason == "reuse"
    at_noon.set_cookie("access", successor_access)
    assert at_noon.me().json()["code"] == "session_revoked"


def test_window_counts_from_the_rotation_and_does_not_slide(at_noon, time_machine):
    old = at_noon.cookie("refresh")
    at_noon.refresh()

    time_machine.shift(timedelta(seconds=20))
    assert _replay(at_noon, old).status_code == 200
    time_machine.shift(timedelta(seconds=20))  # 40 s after the rotation, 20 s after the last replay
    response = _replay(at_noon, old)

    assert response.json()["code"] == "refresh_token_reused"


def test_token_two_generations_back_inside_its_window_gets_the_current_pair(at_noon, make_spa, time_machine):
    first = at_noon.cookie("refresh")
    at_noon.refresh()
    time_machine.shift(timedelta(seconds=5))
    current = at_noon.refresh()
    slow_tab = make_spa()
    slow_tab.cookies.load({"csrftoken": at_noon.csrf_token})

    time_machine.shift(timedelta(seconds=20))  # 25 s after generation 1 was rotated away
    response = _replay(slow_tab, first)

    assert response.status_code == 200
    assert response["Duotoken-Refresh"] == "replayed"
    assert response.cookies["dt_refresh"].value == current.cookies["dt_refresh"].value
    assert response.cookies["dt_access"].value == current.cookies["dt_access"].value
    assert response.json() == current.json()
    session = Session.objects.get()
    assert (session.generation, session.revoked_at) == (3, None)
    assert slow_tab.me().status_code == 200
    assert not SecurityEvent.objects.filter(kind="refresh_reuse_detected").exists()


def test_each_generation_window_counts_from_its_own_rotation(at_noon, time_machine):
    first = at_noon.cookie("refresh")
    at_noon.refresh()
    second = at_noon.cookie("refresh")
    time_machine.shift(timedelta(seconds=25))
    at_noon.refresh()
    current = at_noon.cookie("refresh")

    time_machine.shift(timedelta(seconds=6))  # generation 2 went 6 s ago, generation 1 31 s ago
    replay = _replay(at_noon, second)
    assert replay.status_code == 200 and replay.cookies["dt_refresh"].value == current
    reuse = _replay(at_noon, first)

    assert reuse.status_code == 401
    assert reuse.json()["code"] == "refresh_token_reused"
    assert Session.objects.get().revoke_reason == "reuse"
    assert SecurityEvent.objects.get(kind="refresh_reuse_detected").data["presented_generation"] == 1


def test_token_older_than_the_kept_rotations_is_reuse_even_inside_the_window(at_noon):
    tokens = [at_noon.cookie("refresh")]
    for _ in range(ROTATIONS_KEPT + 1):  # the oldest falls off the record
        at_noon.refresh()
        tokens.append(at_noon.cookie("refresh"))

    oldest_kept = _replay(at_noon, tokens[1])
    assert oldest_kept.status_code == 200 and oldest_kept.cookies["dt_refresh"].value == tokens[-1]
    forgotten = _replay(at_noon, tokens[0])

    assert forgotten.json()["code"] == "refresh_token_reused"
    assert Session.objects.get().revoke_reason == "reuse"


def test_grace_never_applies_to_a_logged_out_session(at_noon, make_spa, time_machine):
    old = at_noon.cookie("refresh")
    at_noon.refresh()
    at_noon.logout()

    time_machine.shift(timedelta(seconds=1))
    response = _replay(at_noon, old)

    assert response.status_code == 401
    assert response.json()["code"] == "session_revoked"
    assert not SecurityEvent.objects.filter(kind="refresh_reuse_detected").exists()


def test_successor_works_after_a_grace_replay(at_noon, time_machine):
    old = at_noon.cookie("refresh")
    at_noon.refresh()
    _replay(at_noon, old)

    response = at_noon.refresh()

    assert response.status_code == 200
    assert Session.objects.get().generation == 3
