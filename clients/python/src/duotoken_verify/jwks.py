"""Duotoken's public keys, as one process sees them (PyJWKClient-style caching).

The set is fetched on first use and kept for `lifespan` seconds (never longer than
the `Cache-Control: max-age` Duotoken sends: its AUTH_JWKS_MAX_AGE). A token that
names a kid the cache does not hold (a key added since) refetches the set at once,
but at most once per `miss_interval` seconds: forged kids cost nothing to send.

Each key's algorithm is its JWK's `alg`, never the token's header: a key without
one, or with a symmetric or unknown algorithm, is not used at all.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt

from ._http import call
from .errors import InvalidToken, Unavailable

# Every algorithm a key set may name. HS* and `none` are absent on purpose: a
# published key is public, so a MAC keyed with it proves nothing.
ALGORITHMS = ("EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)


class KeySet:
    # The clock is a class attribute so that tests can move time instead of sleeping.
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(
        self,
        url: str,
        *,
        lifespan: float = 300,
        miss_interval: float = 5,
        timeout: float = 5,
        algorithms: tuple[str, ...] = ALGORITHMS,
    ) -> None:
        if lifespan <= 0 or miss_interval < 0 or timeout <= 0:
            raise ValueError("lifespan and timeout must be positive, miss_interval not negative")
        unknown = set(algorithms) - set(ALGORITHMS)
        if unknown or not algorithms:
            raise ValueError(f"algorithms must be a non-empty subset of {ALGORITHMS}, not {sorted(unknown)}")
        self.url = url
        self.lifespan = lifespan
        self.miss_interval = miss_interval
        self.timeout = timeout
        self.algorithms = tuple(algorithms)
        self.fetches = 0  # how many times the set was fetched, for operators and tests
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._expires_at = 0.0
        self._last_miss_fetch: float | None = None
        # One fetch at a time: threads that miss together wait, then look again.
        self._lock = threading.Lock()

    def key_for(self, kid: str) -> jwt.PyJWK:
        """The published key named `kid`; InvalidToken if there is none, Unavailable
        if the set cannot be fetched when it must be."""
        with self._lock:
            now = self.clock()
            fresh = self._keys is None or now >= self._expires_at
            if fresh:
                self._fetch(now)
            key = self._keys.get(kid) if self._keys is not None else None
            # A set fetched just now cannot know more; otherwise a new key may be out.
            missed_long_ago = self._last_miss_fetch is None or now - self._last_miss_fetch >= self.miss_interval
            if key is None and not fresh and missed_long_ago:
                self._last_miss_fetch = now
                self._fetch(now)
                key = self._keys.get(kid) if self._keys is not None else None
        if key is None:
            raise InvalidToken(f"no published key has the kid {kid!r}")
        return key

    def _fetch(self, now: float) -> None:
        answer = call(self.url, timeout=self.timeout, headers={"Accept": "application/json"})
        self.fetches += 1
        document = answer.json() if answer.status == 200 else None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise Unavailable(f"GET {self.url} answered {answer.status} without a JWK Set")
        self._keys = self._usable(document["keys"])
        lifespan = self.lifespan
        match = _MAX_AGE.search(answer.headers.get("Cache-Control", "") or "")
        if match:
            lifespan = min(lifespan, int(match.group(1)))
        self._expires_at = now + lifespan

    def _usable(self, jwks: list[Any]) -> dict[str, jwt.PyJWK]:
        keys: dict[str, jwt.PyJWK] = {}
        for jwk in jwks:
            if not isinstance(jwk, dict):
                continue
            kid, alg = jwk.get("kid"), jwk.get("alg")
            if not isinstance(kid, str) or not kid or alg not in self.algorithms or jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[kid] = jwt.PyJWK(jwk, algorithm=alg)
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                continue  # a key of another type than its alg says, or malformed: never used
        return keys
