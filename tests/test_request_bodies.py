"""Bodies on /api/ are refused before anything reads them: a non-JSON type gets
415, one over the cap 413, whatever the CSRF check would have said."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from tokens.models import SecurityEvent

from .factories import PASSWORD, user_create

CAP = 16 * 1024
TWENTY_MIB = 20 * 1024 * 1024


def _raw(server, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send request head (and maybe part of a body) and read the whole answer. The
    server must answer without waiting for the rest of a body we never send."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        received = b""
        while b"\r\n\r\n" not in received or not _complete(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    status = int(received.split(b" ", 2)[1])
    return status, received.partition(b"\r\n\r\n")[2]


def _complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _head(path: str, content_type: str, *extra: str) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}", "Connection: close", *extra]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize("gunicorn", [{"workers": 1}], indirect=True)
def test_login_with_20_mib_multipart_body_gets_415_before_it_is_sent(gunicorn):
    # No CSRF token either: the CSRF check would read (and spool) the body first.
    head = _head("/api/auth/login/", "multipart/form-data; boundary=b", f"Content-Length: {TWENTY_MIB}")

    status, body = _raw(gunicorn, head, b"--b\r\n")

    assert status == 415
    assert body == (
        b'{"detail": "Request bodies must be JSON (Content-Type: application/json).", "code": "unsupported_media_type"}'
    )
    assert not SecurityEvent.objects.exists()


@pytest.mark.parametrize("gunicorn", [{"workers": 1}], indirect=True)
def test_login_with_json_over_the_cap_gets_413_before_it_is_sent(gunicorn):
    head = _head("/api/auth/login/", "application/json", f"Content-Length: {TWENTY_MIB}")

    status, body = _raw(gunicorn, head, b'{"username": "')

    assert status == 413
    assert body == b'{"detail": "The request body is too large.", "code": "request_too_large"}'


@pytest.mark.parametrize("gunicorn", [{"workers": 1}], indirect=True)
def test_login_with_chunked_json_over_the_cap_gets_413(gunicorn):
    # A chunk announced as twice the cap, of which only cap + 1 bytes are sent: the
    # server must answer from those alone (and leaves nothing unread to reset on).
    head = _head("/api/auth/login/", "application/json", "Transfer-Encoding: chunked")

    status, body = _raw(gunicorn, head, b"%x\r\n" % (2 * CAP) + b"x" * (CAP + 1))

    assert status == 413
    assert body == b'{"detail": "The request body is too large.", "code": "request_too_large"}'


def test_refresh_with_form_body_gets_415(spa, alice):
    response = spa.post(
        "/api/auth/refresh/", "a=b", content_type="application/x-www-form-urlencoded", HTTP_X_CSRFTOKEN="x"
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_admin_forms_are_not_affected(admin_client):
    assert admin_client.post("/admin/logout/").status_code == 200


@pytest.mark.parametrize("gunicorn", [{"workers": 1}], indirect=True)
def test_login_with_chunked_json_under_the_cap_is_read(gunicorn):
    user_create(username="alice")
    csrf = requests.get(gunicorn.url + "/api/auth/csrf/", timeout=30).cookies["csrftoken"]
    payload = json.dumps({"username": "alice", "password": PASSWORD}).encode()
    head = _head(
        "/api/auth/login/",
        "application/json",
        "Transfer-Encoding: chunked",
        f"X-CSRFToken: {csrf}",
        f"Cookie: csrftoken={csrf}",
    )

    status, body = _raw(gunicorn, head, b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload))

    assert status == 200, body
    assert json.loads(body)["user"]["username"] == "alice"
