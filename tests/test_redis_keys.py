"""The key layout works on Redis Cluster: every command's keys share one hash slot."""

from redis.crc import key_slot

from tokens import store
from tokens.conf import Rate


def _slot(key: str) -> int:
    return key_slot(key.encode())


def test_session_and_its_user_share_a_slot_so_the_check_is_one_mget():
    sessions = [store.session_key(f"00000000-0000-0000-0000-00000000000{i}", "42") for i in range(5)]

    assert {_slot(key) for key in sessions} == {_slot(store.user_key("42"))}
    assert _slot(store.user_key("42")) != _slot(store.user_key("43"))


def test_throttle_bucket_its_strikes_and_the_login_marker_share_a_slot():
    key = store._throttle_key("login_user", "alice")

    assert _slot(key) == _slot(key + ":strikes") == _slot(store.login_known_key("Alice", "203.0.113.9"))


def test_keys_are_versioned_v2_under_the_prefix(settings):
    prefix = settings.DUOTOKEN["REDIS_KEY_PREFIX"]

    assert store.session_key("s1", "7") == f"{prefix}:v2:{{u7}}:s:s1"
    assert store.user_key("7") == f"{prefix}:v2:{{u7}}:u"


def test_each_bucket_is_counted_even_when_they_live_in_different_slots(db):
    buckets = [
        store.Bucket("refresh_ip", "203.0.113.9", Rate(1, 60)),
        store.Bucket("refresh_session", "s1", Rate(5, 60)),
    ]
    assert _slot(store._throttle_key("refresh_ip", "203.0.113.9")) != _slot(
        store._throttle_key("refresh_session", "s1")
    )

    assert store.throttle_hit(buckets) == (0.0, 0)
    wait, over = store.throttle_hit(buckets)

    assert over == 1 and 0 < wait <= 60


def test_peek_reads_buckets_in_different_slots_without_counting_them(db):
    buckets = [
        store.Bucket("introspection_failed_ip", "203.0.113.9", Rate(1, 60)),
        store.Bucket("introspection_failed_all", "all", Rate(5, 60)),
    ]
    marker = store.introspection_known_key("svc_a", "203.0.113.9")
    assert store.throttle_peek(buckets, marker=marker) == ([store.Peek(0, 0.0), store.Peek(0, 0.0)], False)

    store.throttle_hit(buckets)
    store.throttle_hit(buckets)
    store.introspection_known_remember("svc_a", "203.0.113.9", ttl=60)
    peeks, known = store.throttle_peek(buckets, marker=marker)

    assert [peek.count for peek in peeks] == [2, 2]
    assert 0 < peeks[0].wait <= 60 and peeks[1].wait == 0.0
    assert known is True
    again, _ = store.throttle_peek(buckets, marker=marker)
    assert [peek.count for peek in again] == [2, 2]  # reading counted nothing
