"""Headers a browser and the caches between it and us act on: per-user answers are
never stored, TLS is insisted on behind a TLS proxy, and the docs page runs only
this project's scripts."""

import re

import pytest
import requests

REDOC = "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"


def assert_private(response) -> None:
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"private", "no-store"} <= directives, response["Cache-Control"]


@pytest.mark.parametrize("path", ["/api/auth/me/", "/api/auth/sessions/"])
def test_per_user_answers_are_private_and_not_stored(logged_in, path):
    response = logged_in.get(path)

    assert response.status_code == 200
    assert_private(response)


def test_refused_per_user_answers_are_private_and_not_stored_too(spa, db):
    response = spa.me()

    assert response.status_code == 401
    assert_private(response)


def test_docs_page_loads_only_this_projects_scripts_under_a_csp(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert re.findall(r'<script[^>]*src="([^"]+)"', html) == [REDOC]
    assert "<script>" not in html  # nothing inline
    assert "https://" not in html and "//fonts" not in html
    csp = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert csp["script-src"] == "'self'"
    assert csp["default-src"] == "'none'"
    bundle = client.get(REDOC)
    assert bundle.status_code == 200
    assert bundle["Content-Type"] == "text/javascript; charset=utf-8"


@pytest.mark.parametrize("gunicorn", [{"workers": 1, "DJANGO_BEHIND_TLS_PROXY": "true"}], indirect=True)
def test_behind_a_tls_proxy_hsts_and_ssl_redirect_are_on_by_default(gunicorn):
    plain = requests.get(gunicorn.url + "/api/auth/csrf/", allow_redirects=False, timeout=30)
    secure = requests.get(gunicorn.url + "/api/auth/csrf/", headers={"X-Forwarded-Proto": "https"}, timeout=30)

    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://127.0.0.1:{gunicorn.port}/api/auth/csrf/"
    assert secure.status_code == 204
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.parametrize("gunicorn", [{"workers": 1}], indirect=True)
def test_without_a_tls_proxy_there_is_no_hsts_and_no_redirect(gunicorn):
    response = requests.get(gunicorn.url + "/api/auth/csrf/", allow_redirects=False, timeout=30)

    assert response.status_code == 204
    assert "Strict-Transport-Security" not in response.headers
