"""The API schema and docs page are public, and authenticate nobody: a browser that
still holds an expired or invalid access cookie gets them like anyone else."""

from datetime import timedelta

import pytest

PAGES = ["/api/schema/", "/api/docs/"]


@pytest.mark.parametrize("path", PAGES)
def test_api_docs_with_an_expired_access_cookie_are_served(at_noon, time_machine, path):
    time_machine.shift(timedelta(seconds=301))
    assert at_noon.me().json()["code"] == "access_token_expired"

    response = at_noon.get(path)

    assert response.status_code == 200


@pytest.mark.parametrize("path", PAGES)
def test_api_docs_with_an_invalid_access_cookie_are_served(spa, db, path):
    spa.set_cookie("access", "not.a.token")
    assert spa.me().json()["code"] == "access_token_invalid"

    response = spa.get(path)

    assert response.status_code == 200


@pytest.mark.parametrize("path", PAGES)
def test_api_docs_without_any_cookie_are_served(spa, db, path):
    assert spa.get(path).status_code == 200
