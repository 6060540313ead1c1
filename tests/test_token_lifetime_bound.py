"""A token never lives longer than its type's lifetime, whoever signed it: one that
claims decades, even signed by our own key (a leaked or world-known one), is
refused on every path, as an invalid token."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.test import override_settings

from tokens import keys

DECADES = 30 * 365 * 24 * 3600


def claims_of(raw: str) -> dict:
    return jwt.decode(raw, options={"verify_signature": False})


def resigned(raw: str, **changes) -> str:
    """The same token with other claims, signed by our own key under its own kid."""
    return keys.sign({**claims_of(raw), **changes}, jwt.get_unverified_header(raw)["kid"])


def test_access_token_of_our_key_claiming_decades_is_invalid_on_me(logged_in):
    access = logged_in.cookie("access")
    logged_in.set_cookie("access", resigned(access, exp=claims_of(access)["iat"] + DECADES))

    response = logged_in.me()

    assert (response.status_code, response.json()) == (
        401,
        {"detail": "The access token is invalid.", "code": "access_token_invalid"},
    )


def test_access_token_of_our_key_claiming_decades_is_invalid_on_verify(logged_in):
    access = logged_in.cookie("access")
    forged = resigned(access, exp=claims_of(access)["iat"] + DECADES)

    response = logged_in.get("/api/auth/verify/", HTTP_AUTHORIZATION=f"Bearer {forged}")

    assert (response.status_code, response.json()["code"]) == (401, "access_token_invalid")


def test_refresh_token_of_our_key_claiming_decades_is_invalid(logged_in):
    refresh = logged_in.cookie("refresh")
    logged_in.set_cookie("refresh", resigned(refresh, exp=claims_of(refresh)["iat"] + DECADES))

    response = logged_in.refresh()

    assert (response.status_code, response.json()) == (
        401,
        {"detail": "The refresh token is invalid.", "code": "refresh_token_invalid"},
    )


def test_access_token_one_second_longer_than_its_lifetime_is_invalid(logged_in):
    access = logged_in.cookie("access")
    lifetime = int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds())
    logged_in.set_cookie("access", resigned(access, exp=claims_of(access)["iat"] + lifetime + 1))

    assert logged_in.me().json()["code"] == "access_token_invalid"


def test_access_token_of_exactly_its_lifetime_is_accepted(logged_in):
    access = logged_in.cookie("access")
    lifetime = int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds())
    assert claims_of(access)["exp"] - claims_of(access)["iat"] == lifetime
    logged_in.set_cookie("access", resigned(access, jti="another-token-of-the-same-generation"))

    assert logged_in.me().status_code == 200


@pytest.mark.parametrize("kind", ["access", "refresh"])
def test_token_issued_under_a_longer_lifetime_is_invalid_once_it_is_shortened(logged_in, kind):
    name = "ACCESS_TOKEN_LIFETIME" if kind == "access" else "REFRESH_TOKEN_LIFETIME"
    shorter = settings.SIMPLE_JWT[name] - timedelta(seconds=1)

    with override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, name: shorter}):
        response = logged_in.me() if kind == "access" else logged_in.refresh()

    assert (response.status_code, response.json()["code"]) == (401, f"{kind}_token_invalid")
