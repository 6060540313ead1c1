"""The rules of `duotoken-verify` itself, in process, on the installed wheel: each
key's algorithm comes from its JWK (EdDSA, ES256, RS256 alike), an unknown kid
refetches the key set at most once per interval, iss/aud/token_type are required,
and a revocation verdict is remembered no longer than `cache_seconds`.

Duotoken's side is a small HTTP server here so that the key set and the answers
can be anything a test needs (the real one is in test_downstream_service.py);
time moves through the package's clock seams, never by sleeping."""

from __future__ import annotations

import importlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.servers import free_port

pytestmark = pytest.mark.system

ISSUER, AUDIENCE = "https://auth.example.com", "duotoken"


@pytest.fixture
def dv(duotoken_verify_site, monkeypatch):
    """The package imported from the installed wheel, and only from there."""
    monkeypatch.syspath_prepend(str(duotoken_verify_site))
    module = importlib.import_module("duotoken_verify")
    assert Path(module.__file__).parent == duotoken_verify_site / "duotoken_verify"
    yield module
    for name in [name for name in sys.modules if name.split(".")[0] == "duotoken_verify"]:
        del sys.modules[name]


class FakeDuotoken:
    """Answers GET/POST on a path with what the test set; counts the hits."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], object]] = {}
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                status, headers, body = outer.routes.get(self.path, (404, {}, {"code": "not_found"}))
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.do_GET()

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def publish(self, *jwks: dict) -> None:
        self.routes["/.well-known/jwks.json"] = (200, {"Cache-Control": "public, max-age=300"}, {"keys": list(jwks)})

    @property
    def jwks_fetches(self) -> int:
        return self.hits.get("/.well-known/jwks.json", 0)


@pytest.fixture
def duotoken():
    fake = FakeDuotoken()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
    fake.thread.join(timeout=10)


KEYS = {
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
}


def jwk_of(private, alg: str, kid: str, *, with_alg: bool = True) -> dict:
    jwk = json.loads(jwt.get_algorithm_by_name(alg).to_jwk(private.public_key()))
    return {**jwk, "kid": kid, "use": "sig", **({"alg": alg} if with_alg else {})}


def claims(**overrides) -> dict:
    now = int(time.time())
    base = {
        "token_type": "access",
        "exp": now + 300,
        "iat": now,
        "jti": "j1",
        "user_id": "42",
        "sid": "5b0c0a52-2f6b-4c55-8a57-6c1f3f3d2f11",
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    return {name: value for name, value in {**base, **overrides}.items() if value is not None}


def verifier_for(dv, duotoken, **options):
    return dv.Verifier(url=duotoken.url, issuer=ISSUER, audience=AUDIENCE, **options)


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_package_key_of_any_published_algorithm_verifies_its_tokens(dv, duotoken, alg):
    private = KEYS[alg]()
    duotoken.publish(jwk_of(private, alg, "k1"))

    verified = verifier_for(dv, duotoken).verify_access_token(
        jwt.encode(claims(), private, algorithm=alg, headers={"kid": "k1"})
    )

    assert (verified.user_id, verified.session_id, verified.raw["jti"]) == ("42", claims()["sid"], "j1")


def test_package_algorithm_is_the_jwks_never_the_tokens(dv, duotoken):
    eddsa, es256 = KEYS["EdDSA"](), KEYS["ES256"]()
    public_pem = eddsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    duotoken.publish(
        jwk_of(eddsa, "EdDSA", "ed"),
        jwk_of(es256, "ES256", "no-alg", with_alg=False),  # no `alg`: never used
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hs", "alg": "HS256"},  # symmetric: never used
    )
    verifier = verifier_for(dv, duotoken)
    hs256 = jwt.api_jws.PyJWS()
    hs256._algorithms["HS256"].prepare_key = lambda key: key  # PyJWT refuses a PEM as an HMAC key itself

    forged = {
        "HS256 keyed with the published key": hs256.encode(
            json.dumps(claims()).encode(), public_pem, algorithm="HS256", headers={"kid": "ed"}
        ),
        "ES256 under the EdDSA key's kid": jwt.encode(claims(), es256, algorithm="ES256", headers={"kid": "ed"}),
        "a key published without alg": jwt.encode(claims(), es256, algorithm="ES256", headers={"kid": "no-alg"}),
        "a published symmetric key": jwt.encode(claims(), "s" * 32, algorithm="HS256", headers={"kid": "hs"}),
    }

    for what, token in forged.items():
        with pytest.raises(dv.InvalidToken) as refused:
            verifier.verify_access_token(token)
        assert refused.value.code == "access_token_invalid", what


def test_package_unknown_kid_refetches_the_key_set_at_most_once_per_interval(dv, duotoken):
    first, second, stranger = KEYS["EdDSA"](), KEYS["EdDSA"](), KEYS["EdDSA"]()
    duotoken.publish(jwk_of(first, "EdDSA", "k1"))
    verifier = verifier_for(dv, duotoken, jwks_miss_interval=5)
    now = [1000.0]
    verifier.keys.clock = lambda: now[0]
    verifier.verify_access_token(jwt.encode(claims(), first, algorithm="EdDSA", headers={"kid": "k1"}))
    assert duotoken.jwks_fetches == 1

    # A key added (and promoted) at Duotoken: its first token refetches at once.
    duotoken.publish(jwk_of(first, "EdDSA", "k1"), jwk_of(second, "EdDSA", "k2"))
    verifier.verify_access_token(jwt.encode(claims(), second, algorithm="EdDSA", headers={"kid": "k2"}))
    assert duotoken.jwks_fetches == 2

    # Forged kids within the interval cost no fetch; after it, one.
    forged = jwt.encode(claims(), stranger, algorithm="EdDSA", headers={"kid": "forged"})
    for _ in range(20):
        with pytest.raises(dv.InvalidToken, match="no published key has the kid 'forged'"):
            verifier.verify_access_token(forged)
    assert duotoken.jwks_fetches == 2
    now[0] += 5
    with pytest.raises(dv.InvalidToken):
        verifier.verify_access_token(forged)
    assert duotoken.jwks_fetches == 3


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"aud": None}, "access_token_invalid"),
        ({"iss": None}, "access_token_invalid"),
        ({"aud": "reports"}, "access_token_invalid"),
        ({"iss": "https://evil.example"}, "access_token_invalid"),
        ({"token_type": "refresh"}, "access_token_invalid"),
        ({"sid": None}, "access_token_invalid"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 3900}, "access_token_expired"),
    ],
)
def test_package_claims_are_required_and_checked(dv, duotoken, overrides, code):
    private = KEYS["EdDSA"]()
    duotoken.publish(jwk_of(private, "EdDSA", "k1"))

    with pytest.raises(dv.InvalidToken) as refused:
        verifier_for(dv, duotoken).verify_access_token(
            jwt.encode(claims(**overrides), private, algorithm="EdDSA", headers={"kid": "k1"})
        )

    assert refused.value.code == code


def test_package_unreachable_duotoken_is_unavailable_not_invalid(dv):
    verifier = dv.Verifier(url=f"http://127.0.0.1:{free_port()}", audience=AUDIENCE)
    token = jwt.encode(claims(), KEYS["EdDSA"](), algorithm="EdDSA", headers={"kid": "k1"})

    with pytest.raises(dv.Unavailable) as unavailable:
        verifier.verify_access_token(token)

    assert (unavailable.value.code, unavailable.value.status) == ("service_unavailable", 503)


def test_package_revocation_verdict_is_remembered_at_most_cache_seconds(dv, duotoken):
    private = KEYS["EdDSA"]()
    duotoken.publish(jwk_of(private, "EdDSA", "k1"))
    duotoken.routes["/api/auth/verify/"] = (200, {}, {})
    verifier = verifier_for(dv, duotoken, revocation="verify", cache_seconds=5)
    now = [1000.0]
    verifier.revocation.clock = lambda: now[0]
    token = jwt.encode(claims(), private, algorithm="EdDSA", headers={"kid": "k1"})
    verifier.verify_access_token(token)

    # Logged out at Duotoken: still accepted from the cache until cache_seconds pass.
    duotoken.routes["/api/auth/verify/"] = (401, {"X-Auth-Error": "session_revoked"}, {"code": "session_revoked"})
    now[0] += 4.9
    verifier.verify_access_token(token)
    assert duotoken.hits["/api/auth/verify/"] == 1
    now[0] += 0.1
    with pytest.raises(dv.RevokedToken) as refused:
        verifier.verify_access_token(token)
    assert (refused.value.code, duotoken.hits["/api/auth/verify/"]) == ("session_revoked", 2)


def test_package_revocation_check_that_gets_no_clear_answer_fails_closed(dv, duotoken):
    private = KEYS["EdDSA"]()
    duotoken.publish(jwk_of(private, "EdDSA", "k1"))
    duotoken.routes["/api/auth/verify/"] = (503, {"X-Auth-Error": "service_unavailable"}, {})
    duotoken.routes["/api/auth/introspect/"] = (401, {}, {"code": "invalid_client"})
    token = jwt.encode(claims(), private, algorithm="EdDSA", headers={"kid": "k1"})

    for revocation in ("verify", "introspect"):
        verifier = verifier_for(dv, duotoken, revocation=revocation, client_id="svc_x", client_secret="s")
        with pytest.raises(dv.Unavailable):
            verifier.verify_access_token(token)
