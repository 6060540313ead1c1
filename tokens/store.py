"""Every Redis key and script, and nothing else.

Redis is the hot path, never the record: a missing key means "ask the database",
and any Redis failure raises `StoreUnavailable` so callers can fall back to the
database or answer 503. Nothing here swallows an error.

Keys (all under ``<prefix>:v1:``):
  s:<session id>      "1:<user id>" while the session is alive, "0:<reason>" once revoked
  u:<user id>         JSON snapshot of the user's cached fields
  t:<scope>:<ident>   fixed-window throttle counter (":strikes" for its back-off count)
  k:<ident>           a username has logged in from this IP before (skips the ceiling)
"""

from __future__ import annotations

import hashlib
import json
import logging
import time  # wall clock, not monotonic: tests move it with time-machine
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from django_redis import get_redis_connection
from redis import Redis
from redis.commands.core import Script
from redis.exceptions import RedisError

from .conf import Rate, auth_settings

logger = logging.getLogger("duotoken.store")

ALIVE = "1"
REVOKED = "0"
# After a Redis failure, skip it for this long and go straight to the database,
# instead of paying a connect timeout on every request while it is down.
BREAKER_SECONDS = 1.0


class StoreUnavailable(Exception):
    """Redis could not answer; the caller must not treat this as a yes."""


@dataclass(frozen=True)
class SessionEntry:
    alive: bool
    user_id: str | None = None
    reason: str = ""


_THROTTLE_LUA = """
-- KEYS: per bucket its counter and its strike counter, then the skip marker.
-- ARGV: bucket count, index of the bucket the marker skips (0: none), longest
-- block (ms), then per bucket: limit, window (ms), back-off (0/1).
local count, skip, max_block = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if skip > 0 and redis.call('EXISTS', KEYS[2 * count + 1]) == 0 then skip = 0 end
local wait, over = 0, 0
for i = 1, count do
  if i ~= skip then
    local key, strikes = KEYS[2 * i - 1], KEYS[2 * i]
    local limit = tonumber(ARGV[3 * i + 1])
    local window = tonumber(ARGV[3 * i + 2])
    local backoff = tonumber(ARGV[3 * i + 3])
    local n = redis.call('INCR', key)
    if n == 1 then redis.call('PEXPIRE', key, window) end
    if n > limit then
      if n == limit + 1 then
        over = i
        if backoff == 1 then
          -- Each time the ceiling is reached again the block doubles.
          local k = redis.call('INCR', strikes)
          redis.call('PEXPIRE', strikes, max_block)
          local block = math.min(window * math.pow(2, k - 1), max_block)
          redis.call('PEXPIRE', key, string.format('%d', block))
        end
      end
      local ttl = redis.call('PTTL', key)
      if ttl < 0 then redis.call('PEXPIRE', key, window); ttl = window end
      if ttl > wait then wait = ttl end
    end
  end
end
return {wait, over}
"""


class _Breaker:
    down_until = 0.0

    @classmethod
    def check(cls) -> None:
        if time.time() < cls.down_until:
            raise StoreUnavailable("redis marked down")

    @classmethod
    def trip(cls, exc: Exception) -> None:
        cls.down_until = time.time() + BREAKER_SECONDS
        logger.warning("redis unavailable: %s", exc)


_scripts: dict[str, Script] = {}


def _redis(*, respect_breaker: bool = True) -> Redis:
    if respect_breaker:
        _Breaker.check()
    return get_redis_connection(auth_settings().redis_alias)


def _key(*parts: str) -> str:
    return ":".join((auth_settings().key_prefix, "v1", *parts))


def session_key(session_id: str) -> str:
    return _key("s", session_id)


def user_key(user_id: str) -> str:
    return _key("u", user_id)


def _parse_session(raw: bytes | None) -> SessionEntry | None:
    if raw is None:
        return None
    state, _, rest = raw.decode().partition(":")
    if state == ALIVE:
        return SessionEntry(alive=True, user_id=rest)
    return SessionEntry(alive=False, reason=rest)


def read_session(session_id: str, user_id: str) -> tuple[SessionEntry | None, list | None]:
    """The hot path: one round trip for the session's liveness and the user snapshot."""
    try:
        raw_session, raw_user = _redis().mget(session_key(session_id), user_key(user_id))
    except RedisError as exc:
        _Breaker.trip(exc)
        raise StoreUnavailable(str(exc)) from exc
    return _parse_session(raw_session), (json.loads(raw_user) if raw_user is not None else None)


def remember_session(
    session_id: str, user_id: str, *, session_ttl: int, user_snapshot: list | None = None, user_ttl: int = 0
) -> None:
    """Cache a live session (and optionally its user). Best effort by design: a
    missing entry only costs a database query, it never grants anything."""
    try:
        pipe = _redis().pipeline(transaction=False)
        # NX: never overwrite a revocation that raced ahead of us.
        pipe.set(session_key(session_id), f"{ALIVE}:{user_id}", ex=max(1, session_ttl), nx=True)
        if user_snapshot is not None:
            pipe.set(user_key(user_id), json.dumps(user_snapshot, separators=(",", ":")), ex=max(1, user_ttl))
        pipe.execute()
    except (RedisError, StoreUnavailable) as exc:
        if isinstance(exc, RedisError):
            _Breaker.trip(exc)
        logger.info("could not cache session %s: %s", session_id, exc)


def remember_user(user_id: str, snapshot: list, *, ttl: int) -> None:
    try:
        _redis().set(user_key(user_id), json.dumps(snapshot, separators=(",", ":")), ex=max(1, ttl))
    except (RedisError, StoreUnavailable) as exc:
        if isinstance(exc, RedisError):
            _Breaker.trip(exc)
        logger.info("could not cache user %s: %s", user_id, exc)


def mark_revoked(entries: Mapping[str, str], *, ttl: int) -> bool:
    """Write revocations ({session id: reason}) after the database has committed them.

    Tried even while the breaker is open, and once more on failure: a stale "alive"
    entry is the one Redis state that could grant access. Returns False when Redis
    could not be written; the entry then expires within AUTH_SESSION_CACHE_SECONDS.
    """
    if not entries:
        return True
    for attempt in (1, 2):
        try:
            pipe = _redis(respect_breaker=False).pipeline(transaction=False)
            for sid, reason in entries.items():
                pipe.set(session_key(sid), f"{REVOKED}:{reason}", ex=max(1, ttl))
            pipe.execute()
            return True
        except RedisError as exc:
            if attempt == 2:
                _Breaker.trip(exc)
                logger.error("could not record revocation of %d session(s) in redis: %s", len(entries), exc)
    return False


def forget_user(user_id: str) -> None:
    try:
        _redis(respect_breaker=False).delete(user_key(user_id))
    except RedisError as exc:
        _Breaker.trip(exc)
        logger.warning("could not drop cached user %s: %s", user_id, exc)


def _ident(value: str) -> str:
    # Hashed so that arbitrary usernames (long, unicode, with colons) make safe keys.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class Bucket(NamedTuple):
    """One throttle counter: at most `rate` hits per window for `ident` in `scope`.
    With `backoff`, the block after the limit is reached doubles each time it is
    reached again (remembered for MAX_BLOCK_SECONDS)."""

    scope: str
    ident: str
    rate: Rate
    backoff: bool = False


# The longest a back-off block grows to, and how long its strikes are remembered.
MAX_BLOCK_SECONDS = 24 * 3600


def _throttle_key(scope: str, ident: str) -> str:
    return _key("t", scope, _ident(ident))


def login_known_key(username: str, ip: str) -> str:
    return _key("k", _ident(f"{username.casefold()}|{ip}"))


def throttle_hit(buckets: Sequence[Bucket], *, skip: tuple[int, str] | None = None) -> tuple[float, int]:
    """Count one hit in each bucket, atomically, in one round trip.

    `skip` is (1-based bucket index, key): that bucket is not counted at all when the
    key exists. Returns (seconds to wait, 0) when allowed, (seconds > 0, n) when
    refused, where n is the 1-based index of a bucket that has just gone over its
    limit (0 if it was already over), so the caller logs one event per window rather
    than one per hit.
    """
    keys: list[str] = []
    args: list[int] = [len(buckets), skip[0] if skip else 0, MAX_BLOCK_SECONDS * 1000]
    for bucket in buckets:
        key = _throttle_key(bucket.scope, bucket.ident)
        keys += [key, key + ":strikes"]
        args += [bucket.rate.limit, bucket.rate.seconds * 1000, int(bucket.backoff)]
    keys.append(skip[1] if skip else _key("none"))
    try:
        client = _redis()
        script = _scripts.get("throttle")
        if script is None:
            script = _scripts["throttle"] = client.register_script(_THROTTLE_LUA)
        wait_ms, over = script(keys=keys, args=args, client=client)
    except RedisError as exc:
        _Breaker.trip(exc)
        raise StoreUnavailable(str(exc)) from exc
    return int(wait_ms) / 1000.0, int(over)


def login_known_remember(username: str, ip: str, *, ttl: int) -> None:
    """Remember that `username` logged in from `ip`: later logins from there are not
    held back by the per-username ceiling that strangers elsewhere can fill. Best
    effort: without the mark the owner is merely treated like anyone else."""
    try:
        _redis().set(login_known_key(username, ip), "1", ex=max(1, ttl))
    except (RedisError, StoreUnavailable) as exc:
        if isinstance(exc, RedisError):
            _Breaker.trip(exc)
        logger.info("could not remember a known login address: %s", exc)
