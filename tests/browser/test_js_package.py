"""The SPA client as an npm user gets it: `npm pack` in clients/js, the tarball
installed offline into a scratch project, a TypeScript app type-checked in strict
mode against the package's declarations, then run in Chromium against a real server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import ROOT

from .conftest import DEMO_SERVER, PASSWORD

pytestmark = pytest.mark.browser

PACKAGE = ROOT / "clients" / "js"
TYPESCRIPT = PACKAGE / "node_modules" / "typescript"
EXAMPLE = Path(__file__).parent / "js_package" / "example.ts"
PAGE_PATH = "/js-package-test/"
STRICT = ["--strict", "--target", "ES2022", "--lib", "ES2022,DOM"]
# How bundlers (Vite, webpack, esbuild) resolve the package, and how Node does.
RESOLUTIONS = {
    "bundler": ["--module", "ESNext", "--moduleResolution", "bundler"],
    "nodenext": ["--module", "NodeNext", "--moduleResolution", "NodeNext"],
}


@dataclass
class App:
    """The scratch project, with the packed client and TypeScript installed."""

    path: Path
    tarball: Path

    def tsc(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.path / "node_modules" / ".bin" / "tsc"), *args],
            cwd=self.path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def installed_module(self) -> Path:
        package = self.path / "node_modules" / "@duotoken" / "client"
        manifest = json.loads((package / "package.json").read_text())
        return package / manifest["exports"]["."]["default"]


def npm(*args: str, cwd: Path, cache: Path) -> None:
    env = {**os.environ, "npm_config_cache": str(cache), "npm_config_update_notifier": "false"}
    result = subprocess.run(["npm", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"npm {' '.join(args)}: {result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> App:
    assert TYPESCRIPT.is_dir(), "TypeScript is missing: scripts/setup.sh --with-browser runs npm ci in clients/js"
    cache = tmp_path_factory.mktemp("npm-cache")
    packed = tmp_path_factory.mktemp("packed")
    npm("pack", "--pack-destination", str(packed), cwd=PACKAGE, cache=cache)
    (tarball,) = packed.glob("*.tgz")
    path = tmp_path_factory.mktemp("app")
    (path / "package.json").write_text(json.dumps({"name": "example-app", "private": True, "type": "module"}))
    # Offline: the tarball has no dependencies, and TypeScript comes from the local install.
    npm(
        "install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", str(tarball), str(TYPESCRIPT),
        cwd=path, cache=cache,
    )  # fmt: skip
    shutil.copy(EXAMPLE, path / "example.ts")
    return App(path=path, tarball=tarball)


def test_js_package_tarball_holds_the_module_its_declarations_and_readme(app):
    with tarfile.open(app.tarball) as packed:
        names = sorted(packed.getnames())

    assert names == [
        "package/README.md",
        "package/package.json",
        "package/src/client.d.ts",
        "package/src/client.js",
    ]
    # What npm users get is the file Django serves (tests/test_js_client.py).
    assert app.installed_module().read_bytes() == (PACKAGE / "src" / "client.js").read_bytes()


def test_js_package_declarations_name_every_runtime_export_and_method():
    declarations = (PACKAGE / "src" / "client.d.ts").read_text()
    declared_exports = set(re.findall(r"^export (?:class|function) (\w+)", declarations, re.MULTILINE))
    interface = re.search(r"^export interface DuotokenClient \{(.*?)^\}", declarations, re.MULTILINE | re.DOTALL)
    declared_methods = set(re.findall(r"^  (\w+)(?:<[^>]*>)?\(", interface.group(1), re.MULTILINE))
    script = """
        const module = await import(process.argv[1]);
        const client = module.createClient({ baseUrl: "http://127.0.0.1" });
        client.close();
        console.log(JSON.stringify({ exports: Object.keys(module), methods: Object.keys(client) }));
    """
    result = subprocess.run(
        ["node", "--input-type=module", "-e", script, str(PACKAGE / "src" / "client.js")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    runtime = json.loads(result.stdout)

    assert set(runtime["exports"]) == declared_exports == {"ApiError", "SessionEndedError", "createClient"}
    assert set(runtime["methods"]) == declared_methods


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_js_package_example_in_strict_mode_type_checks(app, resolution):
    result = app.tsc("--noEmit", *STRICT, *RESOLUTIONS[resolution], "example.ts")

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_js_package_misspelt_error_code_in_a_switch_does_not_compile(app):
    source = (app.path / "example.ts").read_text()
    assert source.count('case "session_revoked":') == 1
    (app.path / "misspelt.ts").write_text(source.replace('case "session_revoked":', 'case "session_revokd":'))

    result = app.tsc("--noEmit", *STRICT, *RESOLUTIONS["bundler"], "misspelt.ts")

    assert result.returncode != 0
    errors = result.stdout.strip().splitlines()
    assert len(errors) == 1, result.stdout
    assert "error TS2678" in errors[0]
    assert "\"session_revokd\"' is not comparable to type 'DuotokenErrorCode'" in errors[0]


@pytest.fixture
def app_page(app, browsing):
    """The compiled example on the server's origin, importing the installed package
    by its bare name through an import map, as a bundler would resolve it."""
    result = app.tsc(*STRICT, *RESOLUTIONS["bundler"], "--outDir", "dist", "example.ts")
    assert result.returncode == 0, result.stdout
    files = {"example.js": app.path / "dist" / "example.js", "client.js": app.installed_module()}
    html = f"""<!doctype html><html><head><meta charset="utf-8">
<script type="importmap">{{"imports": {{"@duotoken/client": "{PAGE_PATH}client.js"}}}}</script>
<script type="module" src="{PAGE_PATH}example.js"></script>
</head><body></body></html>"""

    def serve(route) -> None:
        name = route.request.url.rsplit("/", 1)[-1]
        if name in files:
            route.fulfill(status=200, content_type="text/javascript", body=files[name].read_text())
        else:
            route.fulfill(status=200, content_type="text/html", body=html)

    profile = browsing()
    page = profile.new_tab()
    page.route(f"{profile.url}{PAGE_PATH}**", serve)
    page.goto(profile.url + PAGE_PATH)
    page.wait_for_selector("body[data-ready=yes]", state="attached")
    return profile, page


@pytest.mark.parametrize("gunicorn", [DEMO_SERVER], indirect=True)
def test_js_package_example_logs_in_reads_me_and_refreshes_once_on_expiry(alice, app_page):
    profile, page = app_page

    assert page.evaluate("([u, p]) => example.login(u, p)", ["alice", "wrong"]) == "Wrong username or password."
    assert page.evaluate("([u, p]) => example.login(u, p)", ["alice", PASSWORD]) == "welcome alice"
    assert page.evaluate("example.me()") == {"id": alice.pk, "username": "alice", "email": "alice@example.com"}
    profile.wait_for_access_expiry()
    profile.refreshes.clear()

    assert (
        page.evaluate("Promise.all([example.me(), example.me()])")
        == [{"id": alice.pk, "username": "alice", "email": "alice@example.com"}] * 2
    )

    assert profile.refreshes == ["POST"]
    assert page.evaluate("example.events") == ["refresh:rotated"]
    assert len(page.evaluate("example.sessions()")) == 1
    assert profile.page_errors == []
