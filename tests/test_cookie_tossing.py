"""Cookie tossing: a sibling subdomain plants a second auth cookie of the same name.
A request carrying any auth cookie name twice is refused, its cookies cleared, and
the attempt logged, instead of running as whichever copy Django kept."""

import pytest

from tokens.models import SecurityEvent, Session

from .factories import user_create

CONFLICT = {"detail": "An auth cookie was sent more than once; log in again.", "code": "auth_cookie_conflict"}


@pytest.fixture
def victim(logged_in):
    return logged_in


@pytest.fixture
def attacker(make_spa, db):
    user_create(username="mallory")
    client = make_spa()
    assert client.login(username="mallory").status_code == 200
    return client


def cookie_header(client, **tokens: str) -> str:
    """The Cookie header a browser would send: the client's own cookies, then the
    tossed ones (same name, another Domain) after them."""
    own = [f"{name}={morsel.value}" for name, morsel in client.cookies.items() if morsel.value]
    return "; ".join(own + [f"{name}={value}" for name, value in tokens.items()])


def assert_cleared(response) -> None:
    for name in ("dt_access", "dt_refresh"):
        cookie = response.cookies[name]
        assert (cookie.value, cookie["max-age"]) == ("", 0)


def test_refresh_with_a_tossed_refresh_cookie_is_refused_cleared_and_logged(victim, attacker):
    header = cookie_header(victim, dt_refresh=attacker.cookie("refresh"))

    response = victim.refresh(HTTP_COOKIE=header, REMOTE_ADDR="198.51.100.3")

    assert response.status_code == 401
    assert response.json() == CONFLICT
    assert_cleared(response)
    assert sorted(Session.objects.values_list("generation", flat=True)) == [1, 1]  # nobody rotated
    event = SecurityEvent.objects.get(kind="auth_cookie_conflict")
    assert (event.ip, event.data, event.user_id) == ("198.51.100.3", {"cookies": ["dt_refresh"]}, None)


def test_me_with_a_tossed_access_cookie_is_refused_not_switched(victim, attacker):
    header = cookie_header(victim, dt_access=attacker.cookie("access"))

    response = victim.me(HTTP_COOKIE=header)

    assert response.status_code == 401
    assert response.json() == CONFLICT
    assert_cleared(response)
    assert SecurityEvent.objects.filter(kind="auth_cookie_conflict").count() == 1


def test_logout_with_a_tossed_cookie_is_refused_and_ends_nothing(victim, attacker):
    header = cookie_header(victim, dt_refresh=attacker.cookie("refresh"))

    response = victim.logout(HTTP_COOKIE=header)

    assert response.status_code == 401
    assert response.json() == CONFLICT
    assert_cleared(response)
    assert list(Session.objects.values_list("revoked_at", flat=True)) == [None, None]


def test_one_copy_of_each_auth_cookie_is_fine(victim):
    assert victim.me(HTTP_COOKIE=cookie_header(victim)).status_code == 200
    assert victim.refresh(HTTP_COOKIE=cookie_header(victim)).status_code == 200
