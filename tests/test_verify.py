"""The gateway check, `GET /api/auth/verify/`: the live session check of `me/`,
answered in headers for nginx `auth_request`, Traefik ForwardAuth and Envoy."""

from datetime import timedelta
from email.header import decode_header
from urllib.parse import unquote

import pytest

from tokens.models import RevokeReason, Session
from tokens.services import sessions_revoke

from .client import SpaClient
from .factories import user_create

VERIFY = "/api/auth/verify/"


def identity(response) -> dict:
    return {name: response.get(name) for name in ("X-Auth-User-Id", "X-Auth-Username", "X-Auth-Email")}


def test_verify_with_access_cookie_answers_identity_headers(logged_in, alice):
    response = logged_in.get(VERIFY)

    assert response.status_code == 200
    assert response.content == b""
    assert identity(response) == {
        "X-Auth-User-Id": str(alice.pk),
        "X-Auth-Username": "alice",
        "X-Auth-Email": "alice@example.com",
    }
    assert response["X-Auth-Session-Id"] == str(Session.objects.get().pk)
    assert {"private", "no-store"} <= set(response["Cache-Control"].replace(" ", "").split(","))
    assert not response.has_header("X-Auth-Error")


def test_verify_with_bearer_header_answers_identity_without_cookies(logged_in, alice):
    token = logged_in.cookie("access")
    service = SpaClient()

    response = service.get(VERIFY, HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 200
    assert identity(response)["X-Auth-User-Id"] == str(alice.pk)


def test_verify_without_credentials_is_401_with_error_header(spa, db):
    response = spa.get(VERIFY)

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"}
    assert response["X-Auth-Error"] == "not_authenticated"
    assert {"private", "no-store"} <= set(response["Cache-Control"].replace(" ", "").split(","))
    assert not response.has_header("X-Auth-User-Id")


def test_verify_with_expired_access_token_is_access_token_expired(at_noon, time_machine):
    time_machine.shift(timedelta(seconds=300))

    response = at_noon.get(VERIFY)

    assert response.status_code == 401
    assert response.json() == {
        "detail": "The access token has expired; refresh the session and retry.",
        "code": "access_token_expired",
    }
    assert response["X-Auth-Error"] == "access_token_expired"


def test_verify_with_expired_access_token_of_a_refreshed_session_is_access_token_stale(at_noon, time_machine):
    old_access = at_noon.cookie("access")
    time_machine.shift(timedelta(seconds=300))
    assert at_noon.refresh().status_code == 200
    at_noon.set_cookie("access", old_access)

    response = at_noon.get(VERIFY)

    assert response.status_code == 401
    assert response.json() == {
        "detail": "The access token has expired and the session has been refreshed since; retry with the newer cookie.",
        "code": "access_token_stale",
    }
    assert response["X-Auth-Error"] == "access_token_stale"


def test_verify_after_revocation_is_session_revoked_on_the_next_request(logged_in):
    assert logged_in.get(VERIFY).status_code == 200

    sessions_revoke(reason=RevokeReason.ADMIN, session_ids=[str(Session.objects.get().pk)])
    response = logged_in.get(VERIFY)

    assert response.status_code == 401
    assert response.json() == {"detail": "This session has ended; log in again.", "code": "session_revoked"}
    assert response["X-Auth-Error"] == "session_revoked"


def test_verify_with_tampered_bearer_token_is_access_token_invalid(logged_in):
    header, payload, signature = logged_in.cookie("access").split(".")

    response = SpaClient().get(VERIFY, HTTP_AUTHORIZATION=f"Bearer {header}.{payload}.{signature[::-1]}")

    assert response.status_code == 401
    assert response.json() == {"detail": "The access token is invalid.", "code": "access_token_invalid"}
    assert response["X-Auth-Error"] == "access_token_invalid"


def test_verify_with_refresh_token_as_bearer_is_access_token_invalid(logged_in):
    response = SpaClient().get(VERIFY, HTTP_AUTHORIZATION=f"Bearer {logged_in.cookie('refresh')}")

    assert response.status_code == 401
    assert response["X-Auth-Error"] == "access_token_invalid"


@pytest.mark.parametrize("header", ["HTTP_X_ORIGINAL_METHOD", "HTTP_X_FORWARDED_METHOD"])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_verify_cookie_with_unsafe_original_method_without_csrf_header_is_csrf_failed(logged_in, header, method):
    response = logged_in.get(VERIFY, **{header: method})

    assert response.status_code == 403
    assert response.json() == {
        "detail": "CSRF verification failed: CSRF token missing.",
        "code": "csrf_failed",
    }
    assert response["X-Auth-Error"] == "csrf_failed"
    assert not response.has_header("X-Auth-User-Id")


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_X_ORIGINAL_METHOD": "GET", "HTTP_X_FORWARDED_METHOD": "POST"},
        {"HTTP_X_ORIGINAL_METHOD": "POST", "HTTP_X_FORWARDED_METHOD": "GET"},
    ],
)
def test_verify_a_safe_method_header_from_the_client_cannot_hide_an_unsafe_one(logged_in, headers):
    # A gateway that passes client headers on sets only one of the two itself.
    response = logged_in.get(VERIFY, **headers)

    assert (response.status_code, response["X-Auth-Error"]) == (403, "csrf_failed")


def test_verify_cookie_with_unsafe_original_method_and_csrf_header_is_allowed(logged_in, alice):
    response = logged_in.get(VERIFY, HTTP_X_ORIGINAL_METHOD="POST", HTTP_X_CSRFTOKEN=logged_in.csrf_token)

    assert response.status_code == 200
    assert identity(response)["X-Auth-User-Id"] == str(alice.pk)


def test_verify_cookie_with_unsafe_original_method_from_another_origin_is_csrf_failed(logged_in):
    response = logged_in.get(
        VERIFY,
        HTTP_X_ORIGINAL_METHOD="POST",
        HTTP_X_CSRFTOKEN=logged_in.csrf_token,
        HTTP_ORIGIN="http://evil.example",
    )

    assert response.status_code == 403
    assert response.json() == {
        "detail": "CSRF verification failed: Origin checking failed - http://evil.example does not match any "
        "trusted origins.",
        "code": "csrf_failed",
    }
    assert response["X-Auth-Error"] == "csrf_failed"


def test_verify_cookie_with_wrong_csrf_header_is_csrf_failed(logged_in):
    response = logged_in.get(VERIFY, HTTP_X_ORIGINAL_METHOD="DELETE", HTTP_X_CSRFTOKEN="x" * 64)

    assert response.status_code == 403
    assert response["X-Auth-Error"] == "csrf_failed"


def test_verify_with_form_content_type_and_no_body_still_checks_the_header(logged_in):
    # The gateway forwards the original headers without the body.
    response = logged_in.get(
        VERIFY,
        HTTP_X_ORIGINAL_METHOD="POST",
        CONTENT_TYPE="multipart/form-data; boundary=xyz",
        HTTP_X_CSRFTOKEN=logged_in.csrf_token,
    )

    assert response.status_code == 200


def test_verify_bearer_with_unsafe_original_method_needs_no_csrf(logged_in, alice):
    token = logged_in.cookie("access")

    response = SpaClient().get(VERIFY, HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_ORIGINAL_METHOD="POST")

    assert response.status_code == 200
    assert identity(response)["X-Auth-User-Id"] == str(alice.pk)


def test_verify_bearer_header_wins_over_the_access_cookie(logged_in, alice, make_spa):
    user_create(username="bob")
    bob = make_spa()
    assert bob.login(username="bob").status_code == 200

    response = logged_in.get(VERIFY, HTTP_AUTHORIZATION=f"Bearer {bob.cookie('access')}", HTTP_X_ORIGINAL_METHOD="POST")

    assert response.status_code == 200
    assert identity(response)["X-Auth-Username"] == "bob"


def test_verify_safe_original_method_needs_no_csrf(logged_in):
    response = logged_in.get(VERIFY, HTTP_X_ORIGINAL_METHOD="GET")

    assert response.status_code == 200


def test_verify_sent_with_the_unsafe_method_itself_checks_csrf(logged_in):
    # Envoy's HTTP ext_authz forwards the original method instead of a header.
    refused = logged_in.post(VERIFY)
    allowed = logged_in.post(VERIFY, HTTP_X_CSRFTOKEN=logged_in.csrf_token)

    assert (refused.status_code, refused["X-Auth-Error"]) == (403, "csrf_failed")
    assert allowed.status_code == 200


def verified_identity(username: str, email: str) -> dict:
    user_create(username=username, email=email)
    spa = SpaClient()
    assert spa.login(username=username).status_code == 200
    response = spa.get(VERIFY)
    assert response.status_code == 200
    return identity(response)


def test_verify_non_ascii_identity_is_percent_encoded_utf8(db):
    headers = verified_identity("zoë", "zoë@exämple.com")

    assert headers["X-Auth-Username"] == "zo%C3%AB"
    assert headers["X-Auth-Email"] == "zo%C3%AB@ex%C3%A4mple.com"
    assert {unquote(headers["X-Auth-Username"]), unquote(headers["X-Auth-Email"])} == {"zoë", "zoë@exämple.com"}


def test_verify_email_that_is_an_rfc2047_encoded_word_decodes_only_to_itself(db):
    # A valid address whose local part is an encoded word for "admin@corp.example".
    email = "=?utf-8?q?admin=40corp.example?=@evil.example"

    value = verified_identity("mallory", email)["X-Auth-Email"]

    assert "=?" not in value
    assert decode_header(value) == [(value, None)]  # nothing for an RFC 2047 decoder
    assert unquote(value) == email


@pytest.mark.parametrize(
    ("email", "header"),
    [
        ("a%40b@x.example", "a%2540b@x.example"),  # a literal %XX stays literal
        ("alice+orders@x.example", "alice%2Borders@x.example"),  # form decoders read + as a space
        ("o'brien@x.example", "o%27brien@x.example"),
    ],
)
def test_verify_identity_encoding_is_unambiguous(db, email, header):
    value = verified_identity("someone", email)["X-Auth-Email"]

    assert value == header
    assert unquote(value) == email


def test_verify_in_steady_state_makes_no_database_query(logged_in, django_assert_num_queries):
    assert logged_in.get(VERIFY).status_code == 200

    with django_assert_num_queries(0):
        response = logged_in.get(VERIFY)

    assert response.status_code == 200
