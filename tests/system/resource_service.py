"""A resource service that is not Django: plain WSGI (standard library only) that
trusts the identity headers its gateway sets, and nothing else. No cookie, no
token, no database, no Redis: if nginx let a request through, it is answered.

It records every request it served, so a test can tell a request that nginx
refused (never seen here) from one that got through.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


@dataclass
class Seen:
    method: str
    path: str
    user_id: str
    username: str
    session_id: str
    headers: dict[str, str]


@dataclass
class ResourceService:
    port: int
    seen: list[Seen] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: WSGIServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self, environ, start_response):
        identity = {
            "user_id": environ.get("HTTP_X_AUTH_USER_ID", ""),
            "username": environ.get("HTTP_X_AUTH_USERNAME", ""),
            "session_id": environ.get("HTTP_X_AUTH_SESSION_ID", ""),
        }
        headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key[:5] == "HTTP_"}
        seen = Seen(method=environ["REQUEST_METHOD"], path=environ["PATH_INFO"], headers=headers, **identity)
        with self._lock:
            self.seen.append(seen)
        if not identity["user_id"]:
            refused = {"detail": "No identity from the gateway.", "code": "not_authenticated"}
            return self._json(start_response, "401 Unauthorized", refused)
        if environ["REQUEST_METHOD"] == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            order = json.loads(environ["wsgi.input"].read(length) or b"{}")
            return self._json(start_response, "201 Created", {"order": order, "owner": identity["user_id"]})
        return self._json(start_response, "200 OK", {"orders": [], **identity})

    @staticmethod
    def _json(start_response, status: str, body: dict):
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def start(self) -> ResourceService:
        self._server = make_server("127.0.0.1", self.port, self.app, handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="resource-service", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)

    def requests_since(self, mark: int) -> list[Seen]:
        with self._lock:
            return list(self.seen[mark:])


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass
