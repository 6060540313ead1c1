def test_unknown_api_path_is_json_404(spa, db):
    response = spa.get("/api/auth/nope/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_wrong_method_has_the_error_shape(logged_in):
    response = logged_in.send("put", "/api/auth/me/")

    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "PUT" not allowed.', "code": "method_not_allowed"}


def test_schema_is_served(spa, db):
    response = spa.get("/api/schema/")

    assert response.status_code == 200
    assert b"/api/auth/refresh/" in response.content
