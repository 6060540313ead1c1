"""Django's own 400s (a SuspiciousOperation: too many form fields, a bad Host) come in
the API's error shape under /api/, and as Django's page elsewhere."""


def test_api_request_for_a_host_not_allowed_is_400_invalid_json(spa, db):
    response = spa.get("/api/auth/me/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Bad request.", "code": "invalid"}


def test_site_request_for_a_host_not_allowed_is_djangos_400_page(client, db):
    response = client.get("/admin/login/", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
