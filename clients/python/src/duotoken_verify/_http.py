"""One small HTTP call with the standard library: bounded in time and in size."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any

from .errors import Unavailable

MAX_BODY = 64 * 1024  # a key set or a check's answer is a few hundred bytes


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def call(
    url: str, *, timeout: float, method: str = "GET", headers: dict[str, str] | None = None, data: bytes | None = None
) -> Answer:
    """Any HTTP answer as it came; Unavailable when there is none (refused, timed out,
    not http(s), or a body over MAX_BODY)."""
    if not url.startswith(("http://", "https://")):
        raise Unavailable(f"not an http(s) URL: {url!r}")
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310 (checked above)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return Answer(response.status, response.headers, _read(response))
    except urllib.error.HTTPError as exc:
        with exc:
            return Answer(exc.code, exc.headers, _read(exc))
    except (OSError, ValueError) as exc:  # URLError, timeouts, resets, bad status lines
        raise Unavailable(f"{method} {url} got no answer: {exc}") from None


def _read(response: Any) -> bytes:
    body = response.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise Unavailable(f"the answer from {response.geturl()} is larger than {MAX_BODY} bytes")
    return body
