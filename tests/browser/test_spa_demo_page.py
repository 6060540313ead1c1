"""Serving the demo page and the client module (Django's test client; no browser)."""

import pytest
from django.test import Client

from demo.views import CONTENT_SECURITY_POLICY


@pytest.fixture
def demo_page(settings, request):
    settings.DUOTOKEN = {**settings.DUOTOKEN, "DEMO_PAGE": request.param}
    return Client()


@pytest.mark.parametrize("demo_page", [False], indirect=True)
def test_demo_page_when_setting_off_is_404(demo_page):
    assert demo_page.get("/").status_code == 404
    assert demo_page.get("/static/demo/demo.js").status_code == 404
    assert demo_page.get("/static/demo/demo.css").status_code == 404
    assert demo_page.get("/static/demo/timeline.js").status_code == 404


@pytest.mark.parametrize("demo_page", [True], indirect=True)
def test_demo_page_when_setting_on_is_served_under_strict_csp(demo_page):
    response = demo_page.get("/")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY
    assert "no-store" in response["Cache-Control"]
    assert response.cookies["csrftoken"].value  # the login form's POST needs no extra round trip
    html = response.content.decode()
    assert '<script type="module" src="/static/demo/demo.js"></script>' in html
    assert "<style" not in html and " style=" not in html and "<script>" not in html


@pytest.mark.parametrize("demo_page", [False, True], indirect=True)
def test_client_module_is_served_with_etag_and_revalidates(demo_page):
    response = demo_page.get("/static/duotoken/client.js")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=300"
    assert b"export function createClient(" in response.content
    again = demo_page.get("/static/duotoken/client.js", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize("demo_page", [True], indirect=True)
def test_assets_refuse_unsafe_methods(demo_page):
    assert demo_page.post("/static/duotoken/client.js").status_code == 405
    assert demo_page.post("/").status_code == 405
