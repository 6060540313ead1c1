"""One SPA client: the npm package's source (clients/js) is the file Django serves,
and its declared error codes keep up with the server's."""

import json
import re
from pathlib import Path

from django.contrib.staticfiles import finders
from django.test import Client

from tokens.errors import ERRORS

PACKAGE = Path(__file__).resolve().parent.parent / "clients" / "js"
SOURCE = PACKAGE / "src" / "client.js"
DECLARATIONS = PACKAGE / "src" / "client.d.ts"

# Codes the API answers with besides tokens.errors.ERRORS: config.exceptions (DRF's
# own errors and Django's handlers) and the demo page's thief.
OTHER_SERVER_CODES = {
    "invalid",
    "permission_denied",
    "not_found",
    "method_not_allowed",
    "not_acceptable",
    "server_error",
    "grace_window_open",
    "nothing_to_steal",
}


def declared_union(name: str) -> set[str]:
    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", DECLARATIONS.read_text(), flags=re.DOTALL)
    match = re.search(rf"export type {name} =([^;]*);", text)
    assert match, f"{name} is not declared in {DECLARATIONS}"
    return set(re.findall(r'\|\s*"([a-z0-9_]+)"', match.group(1)))


def test_static_client_module_is_the_npm_package_source_and_nothing_else():
    assert finders.find("duotoken/client.js", find_all=True) == [str(SOURCE)]


def test_static_client_module_served_by_django_is_byte_for_byte_the_package_source(db):
    response = Client().get("/static/duotoken/client.js")

    assert response.status_code == 200
    assert response.content == SOURCE.read_bytes()


def test_declared_error_codes_when_server_has_a_code_include_it():
    declared = declared_union("DuotokenServerErrorCode")

    missing = (set(ERRORS) | OTHER_SERVER_CODES) - declared
    assert not missing, f"add these codes to DuotokenServerErrorCode in {DECLARATIONS}: {sorted(missing)}"


def test_declared_client_error_codes_are_the_ones_the_client_raises():
    raised = set(re.findall(r'code: "([a-z_]+)"', SOURCE.read_text()))

    assert raised == declared_union("DuotokenClientErrorCode") == {"csrf_cookie_missing", "pagination_link_invalid"}


def test_package_manifest_exports_the_module_with_its_declarations():
    manifest = json.loads((PACKAGE / "package.json").read_text())
    lock = json.loads((PACKAGE / "package-lock.json").read_text())

    assert manifest["type"] == "module"
    assert manifest["exports"]["."] == {"types": "./src/client.d.ts", "default": "./src/client.js"}
    assert manifest["types"] == "./src/client.d.ts"
    assert lock["packages"][""]["devDependencies"] == manifest["devDependencies"]
    # Pinned exactly, so that every machine type-checks with the same compiler.
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", version) for version in manifest["devDependencies"].values())
