"""The OpenAPI schema at /api/schema/ (docs at /api/docs/), and schemathesis run
against a real server from it: no 5xx, and every response matches the schema."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from tests.factories import user_create

from .conftest import THROTTLES_OFF, access_name, csrf_token, env_int, login_pair, refresh_name

pytestmark = pytest.mark.system

SCHEMA_EXAMPLES = env_int("SYSTEM_SCHEMA_EXAMPLES", 30)
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


def test_schema_and_docs_are_served(start_servers):
    (server,) = start_servers(1, workers=2)
    schema = requests.get(server.url + "/api/schema/?format=json", timeout=20)
    assert schema.status_code == 200
    paths = set(schema.json()["paths"])
    assert paths >= {f"/api/auth/{name}/" for name in ("login", "refresh", "logout", "logout-all", "me", "csrf")}
    docs = requests.get(server.url + "/api/docs/", timeout=20)
    assert docs.status_code == 200
    assert "text/html" in docs.headers["Content-Type"]


@pytest.mark.parametrize("credentials", ["anonymous", "logged_in"])
def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(start_servers, tmp_path, credentials):
    (server,) = start_servers(1, **THROTTLES_OFF)
    csrf = csrf_token(server.url)
    cookies = [f"csrftoken={csrf}"]
    if credentials == "logged_in":
        user_create(username="schema")
        pair = login_pair(server.url, "schema", csrf=csrf)
        cookies += [f"{access_name()}={pair.access}", f"{refresh_name()}={pair.refresh}"]
    result = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "run", server.url + "/api/schema/?format=json",
            "--checks", CHECKS,
            "--max-examples", str(SCHEMA_EXAMPLES),
            "--seed", "4",
            "--workers", "1",
            "--request-timeout", "20",
            "--suppress-health-check", "all",
            "-H", f"Cookie: {'; '.join(cookies)}",
            "-H", f"X-CSRFToken: {csrf}",
            "--report-dir", str(tmp_path),
        ],
        cwd=tmp_path,  # schemathesis keeps a cache in the working directory
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
