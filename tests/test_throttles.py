from django.conf import settings
from django.test import override_settings

from tokens.models import SecurityEvent


def _rates(**rates):
    return override_settings(DUOTOKEN={**settings.DUOTOKEN, **rates})


def test_login_is_throttled_per_username_and_ip_with_retry_after(spa, alice):
    with _rates(THROTTLE_LOGIN="3/min"):
        statuses = [spa.login(password="wrong").status_code for _ in range(4)]
        response = spa.login()

    assert statuses == [401, 401, 401, 429]
    assert response.status_code == 429
    assert response.json() == {"detail": "Too many requests; retry in 60 s.", "code": "throttled"}
    assert 1 <= int(response["Retry-After"]) <= 60


def test_login_throttle_per_username_ignores_case(spa, alice):
    with _rates(THROTTLE_LOGIN="2/min"):
        spa.login(username="alice", password="wrong")
        spa.login(username="ALICE", password="wrong")

        assert spa.login(username="Alice").status_code == 429


def test_login_is_throttled_per_ip_across_usernames(spa, db):
    with _rates(THROTTLE_LOGIN_IP="3/min"):
        statuses = [spa.login(username=f"user{i}", password="x").status_code for i in range(4)]

    assert statuses == [401, 401, 401, 429]


def test_other_ips_are_not_throttled_by_one_ip(make_spa, alice):
    with _rates(THROTTLE_LOGIN_IP="1/min"):
        make_spa().login(password="wrong", REMOTE_ADDR="203.0.113.1")

        assert make_spa().login(REMOTE_ADDR="203.0.113.2").status_code == 200


def test_throttling_is_logged_once_per_window(spa, alice):
    with _rates(THROTTLE_LOGIN="1/min"):
        for _ in range(4):
            spa.login(password="wrong")

    event = SecurityEvent.objects.get(kind="throttled")
    assert event.username == "alice"
    assert event.data == {"scope": "login_user_ip", "limit": 1, "seconds": 60}


def test_refresh_is_throttled_per_session(logged_in):
    with _rates(THROTTLE_REFRESH="2/min"):
        statuses = [logged_in.refresh().status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_throttle_counters_expire_with_their_window(spa, alice):
    import redis

    with _rates(THROTTLE_LOGIN="1/min"):
        spa.login(password="wrong")
        assert spa.login().status_code == 429

    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{settings.DUOTOKEN['REDIS_KEY_PREFIX']}:v2:{{t:*"))
    assert len(keys) == 3  # per IP, per username and IP, per username
    ttls = sorted(client.pttl(key) for key in keys)
    assert 0 < ttls[0] <= ttls[1] <= 60_000 < ttls[2] <= 3_600_000  # the ceiling counts per hour
