"""Asking Duotoken whether a token's session is still alive, with a short cache.

A signature cannot tell that a session was ended: a logged-out session's access
token stays valid until it expires. A revocation check asks Duotoken, and
remembers the answer for at most `cache_seconds` (5 by default): a logout, an
admin's revocation or reuse detection is refused here at most that long after
Duotoken refused it. With `cache_seconds=0` every request asks.

* `GatewayCheck` asks `verify/` with the token as a bearer header (no credentials of
  our own needed).
* `IntrospectionCheck` asks `introspect/` (RFC 7662) as a service client (HTTP
  Basic; `manage.py service_clients create <name>` on the Duotoken side).

Both fail closed: no answer, or one that is neither yes nor no, is Unavailable
(503), never "alive".
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote_plus, urlencode

from ._http import Answer, call
from .errors import DuotokenError, ExpiredToken, InvalidToken, RevokedToken, Unavailable

MAX_CACHE_SECONDS = 60
# Duotoken's 401 codes that mean "the session is over" rather than "bad token".
_ENDED = frozenset({"session_revoked", "session_expired", "refresh_token_reused"})


class RevocationCheck:
    """Base class: a cache of verdicts (by a hash of the token, never the token) in
    front of `ask()`, which subclasses implement."""

    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, *, cache_seconds: float = 5, max_entries: int = 10_000, timeout: float = 5) -> None:
        if not 0 <= cache_seconds <= MAX_CACHE_SECONDS:
            raise ValueError(f"cache_seconds must be between 0 and {MAX_CACHE_SECONDS}")
        if max_entries < 1 or timeout <= 0:
            raise ValueError("max_entries and timeout must be positive")
        self.cache_seconds = cache_seconds
        self.max_entries = max_entries
        self.timeout = timeout
        self.asked = 0  # calls to Duotoken, for operators and tests
        self._cache: OrderedDict[str, tuple[float, DuotokenError | None]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, token: str, claims: Mapping[str, Any]) -> None:
        """Return if the token's session is alive; raise RevokedToken (or another
        InvalidToken) if Duotoken refuses it, Unavailable if it cannot tell."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                verdict = hit[1]
                if verdict is not None:
                    raise verdict
                return
        self.asked += 1
        try:
            self.ask(token, claims)
        except InvalidToken as refused:
            self._remember(key, now, refused)
            raise
        self._remember(key, now, None)

    def ask(self, token: str, claims: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _remember(self, key: str, now: float, verdict: DuotokenError | None) -> None:
        if self.cache_seconds <= 0:
            return
        with self._lock:
            self._cache[key] = (now + self.cache_seconds, verdict)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)


def _code(answer: Answer) -> str | None:
    """The error code of a Duotoken answer: its X-Auth-Error header, else its body."""
    header = answer.headers.get("X-Auth-Error")
    if header:
        return header.strip()
    body = answer.json()
    return body.get("code") if isinstance(body, dict) and isinstance(body.get("code"), str) else None


class GatewayCheck(RevocationCheck):
    """`GET verify/` with `Authorization: Bearer <token>`: 200 is alive. The identity
    headers are not read: the claims already say who it is."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(**options)
        self.url = url

    def ask(self, token: str, claims: Mapping[str, Any]) -> None:
        answer = call(self.url, timeout=self.timeout, headers={"Authorization": f"Bearer {token}"})
        if 200 <= answer.status < 300:
            return
        code = _code(answer)
        if answer.status == 401 and code in _ENDED:
            raise RevokedToken("the session was ended at Duotoken", code=code)
        if answer.status == 401 and code == "access_token_expired":
            raise ExpiredToken("the access token has expired")
        if answer.status == 401 and code:
            raise InvalidToken("Duotoken refuses this token", code=code)
        raise Unavailable(f"GET {self.url} answered {answer.status} ({code or 'no code'})")


class IntrospectionCheck(RevocationCheck):
    """`POST introspect/` (RFC 7662) as a service client: `"active": true` for this
    very session is alive, `"active": false` is ended (the signature and expiry were
    checked here already, so what is left is a session Duotoken no longer accepts)."""

    def __init__(self, url: str, *, client_id: str, client_secret: str, **options: Any) -> None:
        super().__init__(**options)
        if not client_id or not client_secret:
            raise ValueError("introspection needs a service client's id and secret")
        self.url = url
        # RFC 6749 §2.3.1: each part form-urlencoded, then Basic.
        pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
        self._authorization = "Basic " + base64.b64encode(pair).decode("ascii")

    def ask(self, token: str, claims: Mapping[str, Any]) -> None:
        answer = call(
            self.url,
            timeout=self.timeout,
            method="POST",
            headers={
                "Authorization": self._authorization,
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            data=urlencode({"token": token, "token_type_hint": "access_token"}).encode(),
        )
        body = answer.json() if answer.status == 200 else None
        if not isinstance(body, dict) or not isinstance(body.get("active"), bool):
            # 401 invalid_client is our configuration, not the user's token: 503.
            raise Unavailable(f"POST {self.url} answered {answer.status} ({_code(answer) or 'no code'})")
        if not body["active"]:
            raise RevokedToken("Duotoken reports the token inactive")
        if body.get("sid") != claims.get("sid"):
            raise Unavailable(f"POST {self.url} answered for another session")
