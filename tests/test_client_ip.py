"""Forwarded client addresses are parsed, never stored or keyed as raw text."""

import pytest
from django.conf import settings
from django.test import override_settings

from tokens.models import SecurityEvent, Session

PEER = "10.0.0.2"


@pytest.fixture
def behind_one_proxy():
    with override_settings(DUOTOKEN={**settings.DUOTOKEN, "NUM_PROXIES": 1}):
        yield


@pytest.mark.parametrize(
    ("forwarded", "stored"),
    [
        ("198.51.100.1:4711", "198.51.100.1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:4711", "2001:db8::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("unknown", PEER),
        ("not an address, at all", PEER),
        ("", PEER),
    ],
)
def test_login_with_odd_forwarded_value_succeeds_and_stores_a_valid_ip(behind_one_proxy, spa, alice, forwarded, stored):
    response = spa.login(HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR=PEER)

    assert response.status_code == 200, response.content
    session = Session.objects.get()
    assert (session.ip, session.last_ip) == (stored, stored)
    assert SecurityEvent.objects.get(kind="login_succeeded").ip == stored


def test_failed_login_with_a_port_in_the_forwarded_value_logs_the_address(behind_one_proxy, spa, alice):
    response = spa.login(password="wrong", HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.1:4711", REMOTE_ADDR=PEER)

    assert response.status_code == 401
    assert SecurityEvent.objects.get(kind="login_failed").ip == "198.51.100.1"
