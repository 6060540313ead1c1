"""A service that is not Django verifies access tokens itself, with PyJWT's
PyJWKClient against a real gunicorn's /.well-known/jwks.json: the example in
`deploy/examples/verify_with_jwks.py`, the very file the README shows."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json
from io import StringIO
from types import ModuleType

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from django.core.management import call_command

from accounts.service_clients import service_client_create
from tests.factories import user_create
from tests.servers import ROOT
from tokens import keys
from tokens.conf import auth_settings
from tokens.key_services import signing_key_add, signing_key_promote
from tokens.models import SigningKey

from .conftest import REQUEST_TIMEOUT, THROTTLES_OFF, claims_of, code_of, csrf_token, login_pair, logout

pytestmark = pytest.mark.system

EXAMPLE = ROOT / "deploy" / "examples" / "verify_with_jwks.py"


@pytest.fixture
def duotoken(start_servers, request):
    (server,) = start_servers(1, workers=2, **THROTTLES_OFF, **(getattr(request, "param", {}) or {}))
    user_create(username="alice")
    return server


@pytest.fixture
def service(duotoken, monkeypatch):
    """`service()` starts the example afresh (a new process of the other service,
    with an empty key-set cache), configured for the running Duotoken."""
    conf = auth_settings()
    monkeypatch.setenv("DUOTOKEN_JWKS_URL", duotoken.url + "/.well-known/jwks.json")
    monkeypatch.setenv("DUOTOKEN_ISSUER", conf.issuer)
    monkeypatch.setenv("DUOTOKEN_AUDIENCE", conf.audience)

    def start() -> ModuleType:
        spec = importlib.util.spec_from_file_location("verify_with_jwks", EXAMPLE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return start


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_hmac(claims: dict, *, kid: str, secret: bytes) -> str:
    """An HS256 token built by hand: PyJWT itself refuses to key HMAC with a PEM."""
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def public_pem_of(kid: str) -> bytes:
    return SigningKey.objects.get(pk=kid).public_pem.encode()


def test_jwks_client_readme_shows_the_tested_example():
    readme = (ROOT / "README.md").read_text()

    assert EXAMPLE.read_text() in readme


def test_jwks_client_live_access_token_verifies_with_its_claims(duotoken, service):
    pair = login_pair(duotoken.url, "alice", csrf=csrf_token(duotoken.url))

    claims = service().verify(pair.access)

    assert claims == claims_of(pair.access)
    conf = auth_settings()
    assert (claims["token_type"], claims["iss"], claims["aud"], claims["sid"]) == (
        "access",
        conf.issuer,
        conf.audience,
        pair.session_id,
    )


def _expired(claims: dict, kid: str) -> str:
    return keys.sign({**claims, "iat": claims["iat"] - 3600, "exp": claims["exp"] - 3600}, kid)


def _other_audience(claims: dict, kid: str) -> str:
    return keys.sign({**claims, "aud": "reports"}, kid)


def _other_issuer(claims: dict, kid: str) -> str:
    return keys.sign({**claims, "iss": "https://evil.example"}, kid)


def _unknown_key(claims: dict, kid: str) -> str:
    stranger = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": keys.thumbprint(stranger.public_key())})


def _published_kid_of_another_key(claims: dict, kid: str) -> str:
    return jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": kid})


def _published_kid_with_another_algorithm(claims: dict, kid: str) -> str:
    return jwt.encode(claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})


def _hs256_keyed_with_the_public_key(claims: dict, kid: str) -> str:
    return forge_hmac(claims, kid=kid, secret=public_pem_of(kid))


def _alg_none(claims: dict, kid: str) -> str:
    head = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    return f"{head}.{b64(json.dumps(claims).encode())}."


@pytest.mark.parametrize(
    ("forge", "error", "message"),
    [
        (_expired, jwt.ExpiredSignatureError, "Signature has expired"),
        (_other_audience, jwt.InvalidAudienceError, "Audience doesn't match"),
        (_other_issuer, jwt.InvalidIssuerError, "Invalid issuer"),
        (_unknown_key, jwt.InvalidTokenError, "Unable to find a signing key that matches"),
        (_published_kid_of_another_key, jwt.InvalidSignatureError, "Signature verification failed"),
        (_published_kid_with_another_algorithm, jwt.InvalidAlgorithmError, "The specified alg value is not allowed"),
        (_hs256_keyed_with_the_public_key, jwt.InvalidAlgorithmError, "The specified alg value is not allowed"),
        (_alg_none, jwt.InvalidAlgorithmError, "The specified alg value is not allowed"),
    ],
)
def test_jwks_client_forged_or_stale_access_token_is_refused(duotoken, service, forge, error, message):
    pair = login_pair(duotoken.url, "alice", csrf=csrf_token(duotoken.url))
    claims, kid = claims_of(pair.access), jwt.get_unverified_header(pair.access)["kid"]
    verifier = service()
    assert verifier.verify(pair.access) == claims  # the genuine one passes on the same client

    with pytest.raises(error, match=message):
        verifier.verify(forge(claims, kid))


def test_jwks_client_refresh_token_is_not_an_access_token(duotoken, service):
    pair = login_pair(duotoken.url, "alice", csrf=csrf_token(duotoken.url))

    with pytest.raises(jwt.InvalidTokenError, match="not an access token"):
        service().verify(pair.refresh)


# The server's JWKS drops a retired key at its next key-set reload (tests/test_jwks.py);
# with no interval, at once.
@pytest.mark.parametrize("duotoken", [{"AUTH_KEYS_RELOAD_SECONDS": "0"}], indirect=True)
def test_jwks_client_token_of_a_retired_key_is_refused(duotoken, service):
    csrf = csrf_token(duotoken.url)
    old = login_pair(duotoken.url, "alice", csrf=csrf)
    old_kid = jwt.get_unverified_header(old.access)["kid"]
    signing_key_promote(kid=signing_key_add().kid, force=True)
    new = login_pair(duotoken.url, "alice", csrf=csrf)
    before = service()
    assert before.verify(old.access) == claims_of(old.access)

    out = StringIO()
    call_command("signing_keys", "retire", "--force", "--", old_kid, stdout=out)
    assert out.getvalue() == f"Retired key {old_kid}; 1 session(s) ended.\n"

    # A key-set cache fetched after the retirement (a fresh process, or any cache
    # once its lifespan is over) no longer has the key.
    after = service()
    with pytest.raises(jwt.InvalidTokenError, match=f'Unable to find a signing key that matches: "{old_kid}"'):
        after.verify(old.access)
    assert after.verify(new.access) == claims_of(new.access)


def test_jwks_client_sees_a_revocation_only_through_the_gateway_check_or_introspection(duotoken, service):
    csrf = csrf_token(duotoken.url)
    pair = login_pair(duotoken.url, "alice", csrf=csrf)
    client, secret = service_client_create(name="orders")

    assert logout(duotoken.url, pair, csrf=csrf).status_code == 204

    # The signature and claims are still good: only the expiry ends it here.
    assert service().verify(pair.access) == claims_of(pair.access)
    checked = requests.get(
        duotoken.url + "/api/auth/verify/", headers={"Authorization": f"Bearer {pair.access}"}, timeout=REQUEST_TIMEOUT
    )
    assert (checked.status_code, code_of(checked), checked.headers["X-Auth-Error"]) == (
        401,
        "session_revoked",
        "session_revoked",
    )
    introspected = requests.post(
        duotoken.url + "/api/auth/introspect/",
        auth=(client.client_id, secret),
        data={"token": pair.access},
        timeout=REQUEST_TIMEOUT,
    )
    assert (introspected.status_code, introspected.json()) == (200, {"active": False})
