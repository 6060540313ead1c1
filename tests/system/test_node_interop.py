"""Node's most used JOSE libraries, `jose` and `jsonwebtoken`, fed only a real
gunicorn's /.well-known/jwks.json and used with their default options, verify an
access token the moment it is issued and refuse a tampered one
(tests/system/node_interop/verify.mjs; `npm ci` there is run by
scripts/setup.sh --with-browser)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.factories import user_create
from tests.servers import ROOT
from tokens import keys

from .conftest import THROTTLES_OFF, claims_of, csrf_token, login_pair, pair_from, refresh

pytestmark = pytest.mark.system

NODE_INTEROP = ROOT / "tests" / "system" / "node_interop"
LIBRARIES = ["jose", "jsonwebtoken"]


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    assert path, "node is missing: scripts/setup.sh --with-browser installs Debian's nodejs"
    assert (NODE_INTEROP / "node_modules" / "jose").is_dir(), "run `npm ci` in tests/system/node_interop"
    return path


def node_verify(node: str, library: str, jwks_url: str, token: str) -> dict:
    result = subprocess.run(
        [node, "verify.mjs", library, jwks_url, token],
        cwd=NODE_INTEROP,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def duotoken(start_servers):
    (server,) = start_servers(1, workers=2, **THROTTLES_OFF)
    user_create(username="alice")
    return server


@pytest.mark.parametrize("library", LIBRARIES)
def test_node_library_fed_only_the_jwks_verifies_an_access_token_right_after_login(node, duotoken, library):
    pair = login_pair(duotoken.url, "alice", csrf=csrf_token(duotoken.url))

    answer = node_verify(node, library, duotoken.url + "/.well-known/jwks.json", pair.access)

    assert answer == {"ok": True, "claims": claims_of(pair.access)}


@pytest.mark.parametrize("library", LIBRARIES)
def test_node_library_fed_only_the_jwks_verifies_an_access_token_right_after_refresh(node, duotoken, library):
    csrf = csrf_token(duotoken.url)
    pair = login_pair(duotoken.url, "alice", csrf=csrf)
    response = refresh(duotoken.url, pair.refresh, csrf=csrf)
    assert response.status_code == 200
    access = pair_from(response).access

    answer = node_verify(node, library, duotoken.url + "/.well-known/jwks.json", access)

    assert answer == {"ok": True, "claims": claims_of(access)}


@pytest.mark.parametrize("library", LIBRARIES)
def test_node_library_fed_only_the_jwks_refuses_a_tampered_access_token(node, duotoken, library):
    pair = login_pair(duotoken.url, "alice", csrf=csrf_token(duotoken.url))
    header, _, signature = pair.access.split(".")
    claims = claims_of(pair.access)
    tampered = ".".join([header, b64(json.dumps({**claims, "user_id": "1" + claims["user_id"]}).encode()), signature])

    answer = node_verify(node, library, duotoken.url + "/.well-known/jwks.json", tampered)

    assert answer["ok"] is False
    assert "signature" in answer["error"].lower()


def test_jsonwebtoken_cannot_verify_eddsa_which_is_why_es256_is_the_default(node, start_servers):
    # The measurement behind the default (README, "Signing keys"): the most used JWT
    # library on npm refuses an EdDSA server's genuine, fresh token.
    pem = keys.private_pem(ed25519.Ed25519PrivateKey.generate())
    (server,) = start_servers(1, workers=1, JWT_ALGORITHM="EdDSA", JWT_PRIVATE_KEY=pem, **THROTTLES_OFF)
    user_create(username="alice")
    pair = login_pair(server.url, "alice", csrf=csrf_token(server.url))
    jwks_url = server.url + "/.well-known/jwks.json"

    assert node_verify(node, "jose", jwks_url, pair.access) == {"ok": True, "claims": claims_of(pair.access)}
    assert node_verify(node, "jsonwebtoken", jwks_url, pair.access) == {
        "ok": False,
        "error": "JsonWebTokenError: invalid algorithm",
    }
