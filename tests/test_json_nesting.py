"""Deeply nested JSON is refused as malformed (400 `invalid`) before json.loads
recurses into it: about a kilobyte of `[[[[` used to raise a RecursionError, a 500."""

from __future__ import annotations

import pytest

from config.parsers import MAX_DEPTH, nesting_exceeds

# About 1 KB, well under the 16 KiB cap, and deep enough to exhaust Python's recursion limit.
DEEP = "[" * 1000 + "]" * 1000
TOO_DEEP = {
    "detail": "Malformed request body.",
    "code": "invalid",
    "fields": {"body": [f"JSON nested deeper than {MAX_DEPTH} levels."]},
}
# Every endpoint that reads a JSON body (introspect/ takes a form; the others ignore bodies).
JSON_ENDPOINTS = ["/api/auth/login/", "/api/auth/password/change/"]
OTHER_UNSAFE = [
    ("post", "/api/auth/refresh/"),
    ("post", "/api/auth/logout/"),
    ("post", "/api/auth/logout-all/"),
    ("delete", "/api/auth/sessions/00000000-0000-0000-0000-000000000000/"),
]


def _send(client, method: str, path: str, body: str):
    return getattr(client, method)(path, body, content_type="application/json", HTTP_X_CSRFTOKEN=client.ensure_csrf())


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize("body", [DEEP, '{"username": ' + DEEP + "}", '{"a":' * 1000 + "1" + "}" * 1000])
def test_json_endpoint_with_deeply_nested_body_is_400_invalid(logged_in, path, body):
    response = _send(logged_in, "post", path, body)

    assert response.status_code == 400
    assert response.json() == TOO_DEEP


@pytest.mark.parametrize(("method", "path"), OTHER_UNSAFE)
def test_endpoint_ignoring_bodies_with_deeply_nested_body_never_answers_500(logged_in, method, path):
    response = _send(logged_in, method, path, DEEP)

    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert set(response.json()) >= {"detail", "code"}


def test_login_nested_as_deep_as_allowed_is_read_as_json(spa, alice):
    body = '{"username": "alice", "password": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}"

    response = _send(spa, "post", "/api/auth/login/", body)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert set(response.json()["fields"]) == {"password"}  # a shape error, not a parse error


@pytest.mark.parametrize(
    ("text", "exceeds"),
    [
        ("[" * MAX_DEPTH + "]" * MAX_DEPTH, False),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), True),
        ('{"a": "' + "[" * 100 + '"}', False),  # brackets inside a string are text
        ('{"a": "\\"' + "[" * 100 + '"}', False),  # an escaped quote does not end the string
        ('{"a": "\\\\"' + ", " + "[" * (MAX_DEPTH + 1), True),  # an escaped backslash does not escape the quote
    ],
)
def test_nesting_scan_counts_levels_outside_strings_only(text, exceeds):
    assert nesting_exceeds(text) is exceeds
