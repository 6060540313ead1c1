"""Key rotation over two hosts (two gunicorn instances on one database and Redis):
both publish a new key before it signs, both sign with it from the promotion on,
and a promotion in the middle of a refresh storm logs no one out."""

from __future__ import annotations

import threading

import jwt
import pytest
import requests

from tests.factories import user_create
from tokens.key_services import signing_key_add, signing_key_promote
from tokens.models import Session

from .conftest import REQUEST_TIMEOUT, Pair, code_of, csrf_token, env_int, login_pair, me, pair_from, refresh

pytestmark = pytest.mark.system

SESSIONS = env_int("SYSTEM_ROTATION_SESSIONS", 6)
ROUNDS = env_int("SYSTEM_ROTATION_ROUNDS", 6)


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def published_kids(base: str) -> list[str]:
    response = requests.get(base + "/.well-known/jwks.json", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, response.text
    return [key["kid"] for key in response.json()["keys"]]


# A host publishes a key added elsewhere at its next key-set reload (tests/test_jwks.py);
# with no interval, at once, so that what is compared here is the hosts' agreement.
@pytest.mark.parametrize("gunicorn_pair", [{"AUTH_KEYS_RELOAD_SECONDS": "0"}], indirect=True)
def test_hosts_publish_a_new_key_before_it_signs_and_agree_once_it_is_promoted(gunicorn_pair):
    servers = gunicorn_pair
    user_create(username="carol")
    csrf = csrf_token(servers[0].url)
    first = kid_of(login_pair(servers[0].url, "carol", csrf=csrf).access)

    added = signing_key_add()

    assert [published_kids(server.url) for server in servers] == [[first, added.kid]] * 2
    assert [kid_of(login_pair(server.url, "carol", csrf=csrf).access) for server in servers] == [first] * 2

    signing_key_promote(kid=added.kid, force=True)

    assert [kid_of(login_pair(server.url, "carol", csrf=csrf).access) for server in servers] == [added.kid] * 2


def test_grace_replay_on_the_other_host_after_a_promotion_gets_the_same_successor(gunicorn_pair):
    servers = gunicorn_pair
    user_create(username="dave")
    csrf = csrf_token(servers[0].url)
    start = login_pair(servers[0].url, "dave", csrf=csrf)
    response = refresh(servers[0].url, start.refresh, csrf=csrf)
    assert response.status_code == 200, response.text
    successor = pair_from(response)

    signing_key_promote(kid=signing_key_add().kid, force=True)
    replay = refresh(servers[1].url, start.refresh, csrf=csrf)

    assert replay.status_code == 200, replay.text
    assert pair_from(replay) == successor
    assert kid_of(successor.refresh) == kid_of(start.refresh)


def test_a_promotion_in_the_middle_of_a_refresh_storm_over_two_hosts_causes_no_401(gunicorn_pair):
    """Each session has two tabs, one per host, refreshing with the same token at
    once (one wins, the other gets the same pair through the grace window), then
    calling me/ on the other host. The promotion runs while one round is in flight."""
    servers = gunicorn_pair
    csrf = csrf_token(servers[0].url)
    old_key = None
    pairs: list[Pair] = []
    for i in range(SESSIONS):
        user_create(username=f"storm{i}")
        pairs.append(login_pair(servers[i % 2].url, f"storm{i}", csrf=csrf))
        old_key = kid_of(pairs[-1].refresh)
    new_key = signing_key_add().kid
    mid = ROUNDS // 2

    tabs = 2 * SESSIONS
    # Timeouts: a failure in one party breaks the barriers instead of hanging the run.
    start = threading.Barrier(tabs + 1, timeout=REQUEST_TIMEOUT * 3)
    end = threading.Barrier(tabs + 1, timeout=REQUEST_TIMEOUT * 3)
    # results[round][session][tab] = (refresh status, pair or None, me status, code)
    results: list[list[list[tuple]]] = [[[None, None] for _ in range(SESSIONS)] for _ in range(ROUNDS)]

    def tab(session: int, which: int) -> None:
        host, other = servers[which].url, servers[1 - which].url
        for round_ in range(ROUNDS):
            token = pairs[session].refresh
            start.wait()
            try:
                response = refresh(host, token, csrf=csrf)
                got = pair_from(response) if response.status_code == 200 else None
                checked = me(other, got.access) if got else None
                results[round_][session][which] = (
                    response.status_code,
                    got,
                    checked.status_code if checked is not None else None,
                    code_of(checked if checked is not None else response),
                )
            except Exception as exc:  # reported below, never swallowed
                results[round_][session][which] = (repr(exc), None, None, None)
            end.wait()
            end.wait()  # the test thread has picked the next tokens

    threads = [threading.Thread(target=tab, args=(s, w)) for s in range(SESSIONS) for w in (0, 1)]
    for thread in threads:
        thread.start()
    for round_ in range(ROUNDS):
        start.wait()
        if round_ == mid:
            signing_key_promote(kid=new_key, force=True)  # while this round's refreshes are in flight
        end.wait()
        for session in range(SESSIONS):
            first = results[round_][session][0]
            pairs[session] = first[1] or pairs[session]
        end.wait()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT * 4)

    outcomes = [
        (round_, session, which, result[0], result[2], result[3])
        for round_ in range(ROUNDS)
        for session in range(SESSIONS)
        for which, result in enumerate(results[round_][session])
        if (result[0], result[2]) != (200, 200)
    ]
    assert outcomes == []
    for round_ in range(ROUNDS):
        for session in range(SESSIONS):
            (_, a, _, _), (_, b, _, _) = results[round_][session]
            assert a == b, f"round {round_}, session {session}: the two tabs got different pairs"
            if round_ < mid:
                assert kid_of(a.refresh) == old_key
            elif round_ > mid:
                assert kid_of(a.refresh) == new_key
    for session, pair in enumerate(pairs):
        row = Session.objects.get(pk=pair.session_id)
        assert (row.generation, row.signing_kid, row.revoked_at) == (ROUNDS + 1, new_key, None)
        assert me(servers[session % 2].url, pair.access).status_code == 200
