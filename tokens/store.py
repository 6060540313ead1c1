"""Every Redis key and script, and nothing else.

Redis is the hot path, never the record: a missing key means "ask the database",
and any Redis failure raises `StoreUnavailable` so callers can fall back to the
database or answer 503. Nothing here swallows an error.

Keys (all under ``<prefix>:v2:``). The part in braces is a Redis Cluster hash tag:
every command below touches keys of one slot only, so the same layout works on one
Redis, behind Sentinel, and on a cluster.
  {u<user id>}:s:<session id>   "1:<user id>" while the session is alive, "0:<reason>" once revoked
  {u<user id>}:u                JSON snapshot of the user's cached fields
  {u<user id>}:c:<session id>:<challenge digest>  "<purpose>:<issued, ms>": a DBSC challenge, single use
  {t:<scope>:<ident>}           fixed-window throttle counter (":strikes" for its back-off count)
  {t:login_user:<ident>}:k:<ident>  a username has logged in from this IP before (skips the ceiling)
  {revocations}:mark            the run_id of the Redis server the revocation outbox was last
                                replayed into in full (tokens.revocations): any other value, or
                                none, means this Redis may have gone back in time
  {t:introspection_known:<ident>}:k:<ident>  a service client has authenticated from this IP before
The session check is one MGET of the first two, which share their user's slot.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time  # wall clock, not monotonic: tests move it with time-machine
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from django_redis import get_redis_connection
from django_redis.pool import ConnectionFactory, SentinelConnectionFactory
from redis import Redis, RedisCluster
from redis.connection import AbstractConnection
from redis.exceptions import NoScriptError, RedisError

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
-- One bucket per call, so that a call's keys share one cluster slot.
-- KEYS: the counter, its strike counter, the skip marker (the counter itself when
-- there is none). ARGV: limit, window (ms), back-off (0/1), longest block (ms),
-- skip (0/1).
local key, strikes, marker = KEYS[1], KEYS[2], KEYS[3]
local limit, window, backoff = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local max_block, skip = tonumber(ARGV[4]), tonumber(ARGV[5])
if skip == 1 and redis.call('EXISTS', marker) == 1 then return {0, 0} end
local n = redis.call('INCR', key)
if n == 1 then redis.call('PEXPIRE', key, window) end
if n <= limit then return {0, 0} end
local over = 0
if n == limit + 1 then
  over = 1
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
return {ttl, over}
"""


class _Breaker:
    down_until = 0.0
    # Set by every failure and every reconnect, taken by tokens.revocations: a
    # process that has seen Redis fail replays the revocation outbox before it
    # trusts Redis again.
    outage_seen = False
    # How many times a connection of this process had to connect again: redis-py
    # does so silently (its Retry, and a pooled socket found closed), which is how
    # a Redis restarted from a snapshot would otherwise go unnoticed.
    reconnects = 0

    @classmethod
    def check(cls) -> None:
        if time.time() < cls.down_until:
            raise StoreUnavailable("redis marked down")

    @classmethod
    def trip(cls, exc: Exception) -> None:
        cls.down_until = time.time() + BREAKER_SECONDS
        cls.outage_seen = True
        logger.warning("redis unavailable: %s", exc)


def _note_connect(connection: AbstractConnection) -> None:
    if getattr(connection, "_duotoken_connected", False):
        _Breaker.reconnects += 1
        _Breaker.outage_seen = True
        logger.warning("redis connection re-established: checking it before trusting it")
    connection._duotoken_connected = True  # type: ignore[attr-defined]  # our own mark on it


def _connect_and_note(connection: AbstractConnection) -> None:
    # Standing in for redis-py's own handshake (redis_connect_func replaces it).
    connection.on_connect()  # type: ignore[no-untyped-call]  # unannotated in redis-py
    _note_connect(connection)


def is_marked_down() -> bool:
    return time.time() < _Breaker.down_until


def take_outage_seen() -> bool:
    """True once after any Redis failure in this process."""
    seen, _Breaker.outage_seen = _Breaker.outage_seen, False
    return seen


# Script source -> SHA1, loaded into Redis once per process (see _run_script_calls).
_script_shas: dict[str, str] = {}


def _redis(*, respect_breaker: bool = True) -> Redis | RedisCluster:
    if respect_breaker:
        _Breaker.check()
    # A RedisCluster with ClusterConnectionFactory (below), a Redis otherwise.
    client: Redis | RedisCluster = get_redis_connection(auth_settings().redis_alias)
    return client


def disconnect() -> None:
    """Close this process's Redis sockets (before gunicorn forks its workers)."""
    client: Redis | RedisCluster = get_redis_connection(auth_settings().redis_alias)
    if isinstance(client, RedisCluster):
        client.disconnect_connection_pools()  # type: ignore[no-untyped-call]  # unannotated in redis-py
    else:
        client.connection_pool.disconnect()


def _key(*parts: str) -> str:
    return ":".join((auth_settings().key_prefix, "v2", *parts))


def _user_tag(user_id: str) -> str:
    # The hash tag that puts a user's sessions and snapshot in one cluster slot.
    return f"{{u{user_id}}}"


def session_key(session_id: str, user_id: str) -> str:
    return _key(_user_tag(user_id), "s", session_id)


def user_key(user_id: str) -> str:
    return _key(_user_tag(user_id), "u")


def _parse_session(raw: bytes | None) -> SessionEntry | None:
    if raw is None:
        return None
    state, _, rest = raw.decode().partition(":")
    if state == ALIVE:
        return SessionEntry(alive=True, user_id=rest)
    return SessionEntry(alive=False, reason=rest)


def _dump(snapshot: list[Any]) -> str:
    return json.dumps(snapshot, separators=(",", ":"))


def read_session(session_id: str, user_id: str) -> tuple[SessionEntry | None, list[Any] | None]:
    """The hot path: one round trip (one slot) for the session's liveness and the user snapshot.

    An answer read over a connection that had to reconnect is not believed: the
    server may be a new one, restored from a snapshot older than some revocation,
    and only the outbox check (at the next session check) can tell."""
    reconnects = _Breaker.reconnects
    try:
        raw_session, raw_user = _redis().mget(session_key(session_id, user_id), user_key(user_id))
    except RedisError as exc:
        _Breaker.trip(exc)
        raise StoreUnavailable(str(exc)) from exc
    if _Breaker.reconnects != reconnects:
        raise StoreUnavailable("redis reconnected during the session check")
    # Replies are bytes: no client of ours sets decode_responses (the stubs allow str).
    return _parse_session(cast("bytes | None", raw_session)), (json.loads(raw_user) if raw_user is not None else None)


def _mark_key() -> str:
    # Its own slot: on a cluster this watches the node that holds it.
    return _key("{revocations}", "mark")


def server_identity() -> tuple[str, bool]:
    """(run_id of the Redis server answering, whether the outbox was last replayed
    in full into this very server). Redis draws a new run_id at every start, and a
    promoted replica has its own, so a restart from a snapshot, an AOF that lost its
    tail or a failover all read False until the outbox is replayed; a publish made
    after the restart cannot hide it, as it would a high-water mark."""
    try:
        client = _redis(respect_breaker=False)
        if isinstance(client, RedisCluster):
            node = client.get_node_from_key(_mark_key())  # type: ignore[no-untyped-call]  # unannotated in redis-py
            info = client.info("server", target_nodes=node)
            if "run_id" not in info:  # {node name: info} on some versions
                info = next(iter(info.values()))
        else:
            info = client.info("server")
        run_id = str(info["run_id"])
        mark = cast("bytes | None", client.get(_mark_key()))  # bytes: see read_session
    except RedisError as exc:
        _Breaker.trip(exc)
        raise StoreUnavailable(str(exc)) from exc
    return run_id, mark is not None and mark.decode() == run_id


def vouch_for(run_id: str) -> None:
    """Record that the outbox has been replayed in full into the server `run_id`."""
    try:
        _redis(respect_breaker=False).set(_mark_key(), run_id)
    except RedisError as exc:
        _Breaker.trip(exc)
        raise StoreUnavailable(str(exc)) from exc


def remember_session(
    session_id: str, user_id: str, *, session_ttl: int, user_snapshot: list[Any] | None = None, user_ttl: int = 0
) -> None:
    """Cache a live session (and optionally its user). Best effort by design: a
    missing entry only costs a database query, it never grants anything.

    An existing entry keeps its value (NX: never overwrite a revocation that raced
    ahead of us) but gets the longer of the two lifetimes (GT), so that a refresh,
    which moves the idle expiry on, keeps the entry as long as the session."""
    try:
        pipe = _redis().pipeline(transaction=False)
        key = session_key(session_id, user_id)
        pipe.set(key, f"{ALIVE}:{user_id}", ex=max(1, session_ttl), nx=True)
        pipe.expire(key, max(1, session_ttl), gt=True)
        if user_snapshot is not None:
            pipe.set(user_key(user_id), _dump(user_snapshot), ex=max(1, user_ttl))
        pipe.execute()
    except (RedisError, StoreUnavailable) as exc:
        if isinstance(exc, RedisError):
            _Breaker.trip(exc)
        logger.info("could not cache session %s: %s", session_id, exc)


def remember_user(user_id: str, snapshot: list[Any], *, ttl: int) -> None:
    try:
        _redis().set(user_key(user_id), _dump(snapshot), ex=max(1, ttl))
    except (RedisError, StoreUnavailable) as exc:
        if isinstance(exc, RedisError):
            _Breaker.trip(exc)
        logger.info("could not cache user %s: %s", user_id, exc)


def mark_revoked(entries: Mapping[tuple[str, str], str], *, ttl: int) -> bool:
    """Write revocations ({(session id, user id): reason}) after the database has
    committed them.

    Tried even while the breaker is open, and once more on failure: a stale "alive"
    entry is the one Redis state that could grant access. Returns False when Redis
    could not be written; the caller's outbox rows (tokens.revocations) then stay
    and are replayed until Redis takes them.
    """
    if not entries:
        return True
    for attempt in (1, 2):
        try:
            pipe = _redis(respect_breaker=False).pipeline(transaction=False)
            for (sid, uid), reason in entries.items():
                pipe.set(session_key(sid, uid), f"{REVOKED}:{reason}", ex=max(1, ttl))
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
    return _key(f"{{t:{scope}:{_ident(ident)}}}")


def login_known_key(username: str, ip: str) -> str:
    # In the slot of the per-username login ceiling, whose count it skips.
    tag = f"{{t:login_user:{_ident(username.casefold())}}}"
    return _key(tag, "k", _ident(f"{username.casefold()}|{ip}"))


def throttle_hit(buckets: Sequence[Bucket], *, skip: tuple[int, str] | None = None) -> tuple[float, int]:
    """Count one hit in each bucket, each atomically, one script call per bucket
    (a bucket's keys share a cluster slot; different buckets need not), all of them
    in one non-transactional pipeline: one round trip however many buckets (on a
    Redis Cluster, one per bucket, since their slots differ).

    `skip` is (1-based bucket index, key): that bucket is not counted at all when the
    key exists (the key must be in the bucket's slot). Returns (seconds to wait, 0)
    when allowed, (seconds > 0, n) when refused, where n is the 1-based index of a
    bucket that has just gone over its limit (0 if it was already over), so the
    caller logs one event per window rather than one per hit.
    """
    calls: list[tuple[list[str], list[str | int]]] = []
    for index, bucket in enumerate(buckets, start=1):
        key = _throttle_key(bucket.scope, bucket.ident)
        skips = skip is not None and skip[0] == index
        marker = skip[1] if skip is not None and skips else key
        args = [bucket.rate.limit, bucket.rate.seconds * 1000, int(bucket.backoff), MAX_BLOCK_SECONDS * 1000]
        calls.append(([key, key + ":strikes", marker], [*args, int(skips)]))
    try:
        replies = _run_script_calls(_THROTTLE_LUA, calls)
    except RedisError as exc:
        _Breaker.trip(exc)
        raise StoreUnavailable(str(exc)) from exc
    wait_ms, over = 0, 0
    for index, (bucket_wait, bucket_over) in enumerate(replies, start=1):
        wait_ms = max(wait_ms, int(bucket_wait))
        if int(bucket_over) and not over:
            over = index
    return wait_ms / 1000.0, over


def _run_script_calls(source: str, calls: Sequence[tuple[list[str], list[str | int]]]) -> list[Any]:
    """EVALSHA each (keys, args) call of one script in one pipeline. redis-py's own
    pipelined scripts ask SCRIPT EXISTS first, a second round trip on every call;
    here the script is loaded once per process and again only when Redis says it
    does not know it (a restarted or failed-over server)."""
    client = _redis()
    sha = _script_shas.get(source)
    for attempt in (1, 2):
        if sha is None:
            sha = _script_shas[source] = client.script_load(source)
        try:
            if isinstance(client, RedisCluster):
                # A cluster pipeline refuses EVALSHA: one call per bucket, each to the
                # node of its own slot.
                return [client.evalsha(sha, len(keys), *keys, *args) for keys, args in calls]
            pipe = client.pipeline(transaction=False)
            for keys, args in calls:
                pipe.evalsha(sha, len(keys), *keys, *args)
            return pipe.execute()
        except NoScriptError:
            if attempt == 2:
                raise
            sha = None
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Peek:
    count: int  # hits so far in the current window (0: no window open)
    wait: float  # seconds until the bucket takes hits again; 0 while it is not over its limit


def throttle_peek(buckets: Sequence[Bucket], *, marker: str) -> tuple[list[Peek], bool]:
    """Read, without counting: each bucket's count and wait, and whether `marker`
    exists. One round trip (a non-transactional pipeline, so the keys may live in
    different cluster slots)."""
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.exists(marker)
        for bucket in buckets:
            key = _throttle_key(bucket.scope, bucket.ident)
            pipe.get(key)
            pipe.pttl(key)
        found, *replies = pipe.execute()
    except RedisError as exc:
        _Breaker.trip(exc)
        raise StoreUnavailable(str(exc)) from exc
    peeks = []
    for bucket, raw, ttl in zip(buckets, replies[::2], replies[1::2], strict=True):
        count = int(raw) if raw is not None else 0
        # A counter without an expiry (the script never leaves one) blocks one window.
        wait = (ttl / 1000.0 if ttl > 0 else float(bucket.rate.seconds)) if count > bucket.rate.limit else 0.0
        peeks.append(Peek(count, wait))
    return peeks, bool(found)


def introspection_known_key(client_id: str, ip: str) -> str:
    return _key(f"{{t:introspection_known:{_ident(client_id)}}}", "k", _ident(f"{client_id}|{ip}"))


def introspection_known_remember(client_id: str, ip: str, *, ttl: int) -> None:
    """Remember that a service client authenticated from `ip` (see
    tokens.throttles.throttle_introspection_failures). Best effort, as for logins."""
    try:
        _redis().set(introspection_known_key(client_id, ip), "1", ex=max(1, ttl))
    except (RedisError, StoreUnavailable) as exc:
        if isinstance(exc, RedisError):
            _Breaker.trip(exc)
        logger.info("could not remember a known service client address: %s", exc)


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


class NoticingConnectionFactory(ConnectionFactory):  # type: ignore[misc]  # django-redis is untyped
    """django-redis's factory, for the security alias: every connection reports
    when it connects again (see `_note_connect`). Its own pools, so that the cache
    alias on the same URL never hands it a connection without the hook."""

    _pools: dict[str, Any] = {}

    def make_connection_params(self, url: str) -> dict[str, Any]:
        return {**super().make_connection_params(url), "redis_connect_func": _connect_and_note}


class NoticingSentinelConnectionFactory(SentinelConnectionFactory):  # type: ignore[misc]  # as above
    _pools: dict[str, Any] = {}

    def make_connection_params(self, url: str) -> dict[str, Any]:
        return {**super().make_connection_params(url), "redis_connect_func": _connect_and_note}


def challenge_key(session_id: str, user_id: str, challenge: str) -> str:
    # In the user's slot; the session id in the key ties the challenge to it.
    return _key(_user_tag(user_id), "c", session_id, _ident(challenge))


def challenge_remember(
    session_id: str, user_id: str, challenge: str, *, purpose: str, issued_ms: int, ttl: int
) -> None:
    """Keep a device-binding challenge issued for one session. Raises
    StoreUnavailable: a challenge that was never stored can never be answered."""
    try:
        _redis().set(challenge_key(session_id, user_id, challenge), f"{purpose}:{issued_ms}", ex=max(1, ttl))
    except RedisError as exc:
        _Breaker.trip(exc)
        raise StoreUnavailable(str(exc)) from exc


def challenge_take(session_id: str, user_id: str, challenge: str) -> tuple[str, int] | None:
    """Consume a challenge of this session (GETDEL: one answer only, even across
    racing requests); (purpose, issued ms), or None if it is unknown or used.
    Fails closed: Redis away raises StoreUnavailable, never a yes."""
    try:
        raw = cast("bytes | None", _redis().getdel(challenge_key(session_id, user_id, challenge)))  # see read_session
    except RedisError as exc:
        _Breaker.trip(exc)
        raise StoreUnavailable(str(exc)) from exc
    if raw is None:
        return None
    purpose, _, issued = raw.decode().partition(":")
    return purpose, int(issued) if issued.isdigit() else 0


class ClusterConnectionFactory(ConnectionFactory):  # type: ignore[misc]  # django-redis is untyped
    """django-redis has no cluster client: this factory hands it a redis-py
    RedisCluster for a ``redis+cluster://host:port`` (or ``rediss+cluster://``)
    location. One client per location and process; it learns the other nodes and
    follows slot moves and failovers by itself."""

    _clusters: dict[str, RedisCluster] = {}

    def connect(self, url: str) -> RedisCluster:
        client = self._clusters.get(url)
        if client is None:
            params = self.make_connection_params(url)
            params.pop("url")
            params.pop("parser_class", None)
            retry = self.pool_cls_kwargs.get("retry")
            if retry is not None:
                params["retry"] = retry
            # RedisCluster runs its own handshake first, then this.
            params["redis_connect_func"] = _note_connect
            plain = url.replace("+cluster://", "://", 1)
            client = self._clusters[url] = RedisCluster.from_url(plain, **params)
        return client

    def disconnect(self, connection: RedisCluster) -> None:
        connection.disconnect_connection_pools()  # type: ignore[no-untyped-call]  # unannotated in redis-py
