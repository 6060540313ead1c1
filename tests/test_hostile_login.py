"""Login under hostile input: non-JSON, wrong types, huge bodies, odd unicode.
Always a JSON error with a stable code (400 `invalid` with `fields`), never a 500."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.factories import PASSWORD, user_create

LOGIN = "/api/auth/login/"
HYPOTHESIS = hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(autouse=True)
def _no_throttle(settings):
    # Many attempts from one client are the point here; throttles have their own tests.
    settings.DUOTOKEN = {**settings.DUOTOKEN, "THROTTLE_LOGIN": "100000/min", "THROTTLE_LOGIN_IP": "100000/min"}


def _post_raw(client, body: bytes | str, content_type: str):
    return client.post(LOGIN, body, content_type=content_type, HTTP_X_CSRFTOKEN=client.ensure_csrf())


def _assert_invalid(response, *field_names: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"detail", "code", "fields"}
    assert body["code"] == "invalid"
    assert set(field_names) <= set(body["fields"]), body


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"username=alice&password=x", "application/x-www-form-urlencoded"),
        (b"alice:secret", "text/plain"),
        (
            b"--b\r\nContent-Disposition: form-data; name=username\r\n\r\nalice\r\n--b--\r\n",
            "multipart/form-data; boundary=b",
        ),
    ],
)
def test_login_non_json_content_type_gets_415(spa, db, body, content_type):
    response = _post_raw(spa, body, content_type)

    assert response.status_code == 415
    assert response.json() == {
        "detail": "Request bodies must be JSON (Content-Type: application/json).",
        "code": "unsupported_media_type",
    }


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[]", "application/json"),
        (b'["alice", "secret"]', "application/json"),
        (b"null", "application/json"),
        (b'"alice"', "application/json"),
        (b"42", "application/json"),
        (b"\xff\xfe{\x00}", "application/json"),
        (b'{"username": "alice", "password": "x"', "application/json"),
    ],
)
def test_login_malformed_json_body_gets_400_with_body_field(spa, db, body, content_type):
    _assert_invalid(_post_raw(spa, body, content_type), "body")


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data; boundary=b", "text/plain"])
def test_login_empty_body_gets_400_naming_the_missing_fields(spa, alice, content_type):
    # An empty body is no data, whatever its declared type.
    _assert_invalid(_post_raw(spa, b"", content_type), "username", "password")


@pytest.mark.parametrize("wrong", [123, 1.5, True, None, [], ["alice"], {}, {"$ne": ""}])
@pytest.mark.parametrize("field", ["username", "password"])
def test_login_wrongly_typed_field_gets_400_naming_the_field(spa, alice, field, wrong):
    data = {"username": "alice", "password": PASSWORD, field: wrong}
    _assert_invalid(spa.send("post", LOGIN, data), field)


@pytest.mark.parametrize("missing", ["username", "password"])
def test_login_missing_field_gets_400_naming_the_field(spa, alice, missing):
    data = {"username": "alice", "password": PASSWORD}
    del data[missing]
    _assert_invalid(spa.send("post", LOGIN, data), missing)


def test_login_non_standard_json_numbers_get_400_naming_the_fields(spa, db):
    body = b'{"username": NaN, "password": -Infinity}'
    _assert_invalid(_post_raw(spa, body, "application/json"), "username", "password")


def test_login_huge_body_gets_413_without_reading_it(spa, db):
    body = json.dumps({"username": "alice", "password": "x" * (1024 * 1024)})
    response = _post_raw(spa, body, "application/json")

    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is too large.", "code": "request_too_large"}


@pytest.mark.parametrize(("field", "size"), [("username", 151), ("password", 4097)])
def test_login_overlong_field_gets_400_naming_the_field(spa, alice, field, size):
    data = {"username": "alice", "password": PASSWORD, field: "a" * size}
    _assert_invalid(spa.send("post", LOGIN, data), field)


@pytest.mark.parametrize("username", ["ali\x00ce", "\x00"])
def test_login_nul_in_username_gets_400(spa, db, username):
    _assert_invalid(spa.send("post", LOGIN, {"username": username, "password": PASSWORD}), "username")


@pytest.mark.parametrize("escaped", ['"\\ud800"', '"a\\udfffb"', '"\\udc00\\ud800"'])
def test_login_lone_surrogate_username_gets_400(spa, db, escaped):
    body = '{"username": ' + escaped + ', "password": "x"}'
    _assert_invalid(_post_raw(spa, body, "application/json"), "username")


@pytest.mark.parametrize("username", ["Zoë", "用户", "\u202eevil", "😀" * 10, "a\u0301", "ǅ"])
def test_login_unknown_unicode_username_gets_401_invalid_credentials(spa, db, username):
    response = spa.send("post", LOGIN, {"username": username, "password": PASSWORD})
    assert (response.status_code, response.json()["code"]) == (401, "invalid_credentials")


def test_login_existing_unicode_username_succeeds(spa, db):
    user_create(username="Zoë用户😀")
    response = spa.send("post", LOGIN, {"username": "Zoë用户😀", "password": PASSWORD})
    assert response.status_code == 200, response.content
    assert response.json()["user"]["username"] == "Zoë用户😀"


# Encodable text (surrogates are tested above as raw JSON escapes).
texts = st.text(st.characters(exclude_categories=("Cs",)))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)


@HYPOTHESIS
@given(body=st.dictionaries(st.sampled_from(["username", "password", "extra", ""]) | texts, json_values))
def test_login_any_json_object_gets_a_json_4xx_never_500(spa, alice, body):
    response = spa.send("post", LOGIN, body)
    assert response.status_code in {400, 401}, response.content
    payload = response.json()
    if response.status_code == 400:
        assert payload["code"] == "invalid" and payload["fields"]
    else:
        assert payload["code"] == "invalid_credentials"


@HYPOTHESIS
@given(body=st.binary(max_size=300))
def test_login_any_bytes_get_a_json_4xx_never_500(spa, db, body):
    response = _post_raw(spa, body, "application/json")
    assert response.status_code in {400, 401}, response.content
    assert response.json()["code"] in {"invalid", "invalid_credentials"}
