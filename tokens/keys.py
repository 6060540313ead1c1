"""The JWT key set: which keys verify, which one signs, and their private parts.

HS*: one shared secret from settings (JWT_SIGNING_KEY), nothing in the database, an
empty JWKS. ES256/EdDSA/RS*: `SigningKey` rows, shared by every host. The first
private key comes from the environment (JWT_PRIVATE_KEY / JWT_PRIVATE_KEY_FILE) and
is imported on first use; later ones from `manage.py signing_keys add`.

Each row is bound to the algorithm it was added with: it signs and verifies with
that one only, whatever JWT_ALGORITHM says now, so the key set may hold keys of
several algorithms while a switch is under way (JWT_ALGORITHM names the algorithm
of the configured key and of new keys). A token verifies only if its header's
`alg` is the algorithm of the key its `kid` names.

The development key that DEBUG falls back to is public knowledge: it never enters
the shared table, signs and verifies in a DEBUG process only, and without DEBUG it
neither signs nor verifies, even if an older version left it in the table
(`DEVELOPMENT_KIDS`; check duotoken.E012 refuses to start then).

Who signs is decided by the database, never by a process's view: the refresh
compare-and-set writes the active key's id onto the session row in the same
statement that moves the generation (`tokens.services`), and a grace replay
re-mints with the id the row holds. A process's cached view only serves
verification: an unknown `kid` reloads it at once (keys are published before they
sign), and it is re-read every AUTH_KEYS_RELOAD_SECONDS so that retirements reach
every process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jwt
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from django.conf import settings
from django.core.signals import setting_changed
from django.db import DatabaseError
from django.dispatch import receiver
from django.utils.crypto import salted_hmac
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.utils import der_to_raw_signature

from . import clock
from .errors import AuthError
from .models import SigningKey

logger = logging.getLogger("duotoken.keys")

# Deterministic signatures only: the grace window re-mints byte-identical tokens.
# ES256 signs with RFC 6979 nonces (below); RSA-PSS (PS*) and the other ECDSA
# curves are not offered. ES256 first: the default (see the README for why).
DEFAULT_ALGORITHM = "ES256"
ASYMMETRIC = ("ES256", "EdDSA", "RS256", "RS384", "RS512")
SYMMETRIC = ("HS256", "HS384", "HS512")
ALGORITHMS = ASYMMETRIC + SYMMETRIC
# A forged token with an unknown kid may reload the key set at most this often.
MISS_RELOAD_SECONDS = 1.0
RSA_BITS = 2048
# Every development key that config/settings.py ever shipped, by kid (RFC 7638
# thumbprint). Public knowledge: anyone can sign with them, so they never enter the
# shared key table and count for nothing without DEBUG. Keep old ones here when the
# development key or the default algorithm changes.
DEVELOPMENT_KIDS = frozenset(
    {
        "qP2rwnASrDIA3wKS9Mlh3itEEmAF8lML0X5xR29XhjE",  # Ed25519, the EdDSA default until now
        "bhKLDQYbVx6WxdukPUqJvsjlLhGXi4IyxvmcBc-INMc",  # P-256, the ES256 default
    }
)


class KeyUnusable(Exception):
    """A key that cannot be used: unparsable, of the wrong type, or not decryptable."""


def algorithm() -> str:
    alg: str = settings.SIMPLE_JWT.get("ALGORITHM", DEFAULT_ALGORITHM)
    return alg


def is_symmetric(alg: str | None = None) -> bool:
    return (alg or algorithm()).startswith("HS")


def is_development(kid: str) -> bool:
    """A publicly known development key (see DEVELOPMENT_KIDS)."""
    return kid in DEVELOPMENT_KIDS


def _development_in_process() -> bool:
    """The configured key is the development key and DEBUG is on: it signs and
    verifies in this process only, never through the shared table."""
    return settings.DEBUG and not is_symmetric() and is_development(configured_key()[0])


# --- Key material ------------------------------------------------------------


def parse_private(pem: str, alg: str) -> Any:
    """The private key object of a PEM, checked against the algorithm."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyUnusable(f"the private key is not an unencrypted PEM private key ({exc})") from None
    if alg == "EdDSA" and not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyUnusable("JWT_ALGORITHM=EdDSA needs an Ed25519 private key")
    if alg == "ES256" and not (isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)):
        raise KeyUnusable("JWT_ALGORITHM=ES256 needs an EC private key on the P-256 curve")
    if alg.startswith("RS"):
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyUnusable(f"JWT_ALGORITHM={alg} needs an RSA private key")
        if key.key_size < RSA_BITS:
            raise KeyUnusable(f"RSA keys must have at least {RSA_BITS} bits")
    return key


def generate_private(alg: str) -> Any:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg.startswith("RS"):
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    raise KeyUnusable(f"no key pair for {alg}")


def private_pem(key: PrivateKeyTypes) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: PublicKeyTypes) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public(pem: str) -> Any:
    return serialization.load_pem_public_key(pem.encode())


def public_jwk(public_key: Any) -> dict[str, str]:
    """The RFC 7517 members of a public key, and never a private one."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        jwk = OKPAlgorithm.to_jwk(public_key, as_dict=True)
        return {"kty": "OKP", "crv": jwk["crv"], "x": jwk["x"]}
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
        return {"kty": "EC", "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"]}
    jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    return {"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}


def thumbprint(public_key: Any) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the same kid on every host."""
    canonical = json.dumps(public_jwk(public_key), sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def _hmac_kid(secret: str) -> str:
    # Names the shared secret without revealing anything about it.
    return "hs-" + salted_hmac("duotoken.kid", "kid", secret=secret).hexdigest()[:16]


def _derived_fernet_key(secret: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(b"duotoken.keys-encryption:" + secret.encode()).digest())


def encryption_keys_source() -> str:
    """Names the settings that the private parts are encrypted under, for messages."""
    if settings.DUOTOKEN.get("KEYS_ENCRYPTION_KEY"):
        return "JWT_KEYS_ENCRYPTION_KEY"
    return "DJANGO_SECRET_KEY (or any of DJANGO_SECRET_KEY_FALLBACKS)"


def _fernet() -> MultiFernet:
    """Encrypts under the first key and decrypts under any: JWT_KEYS_ENCRYPTION_KEY (a
    comma list, newest first), or keys derived from SECRET_KEY and each of
    SECRET_KEY_FALLBACKS, so that rotating DJANGO_SECRET_KEY the way Django documents
    it (the old one kept as a fallback) leaves every stored key usable."""
    configured = [part.strip() for part in (settings.DUOTOKEN.get("KEYS_ENCRYPTION_KEY") or "").split(",")]
    configured = [part for part in configured if part]
    try:
        if configured:
            return MultiFernet([Fernet(part.encode()) for part in configured])
    except ValueError:
        raise KeyUnusable(
            "JWT_KEYS_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes), separated by commas"
        ) from None
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([Fernet(_derived_fernet_key(secret)) for secret in secrets])


def encrypt_private(key: Any) -> str:
    return _fernet().encrypt(private_pem(key).encode()).decode()


def reencrypt_private(token: str) -> str:
    """The same private part, encrypted under the first (newest) encryption key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise KeyUnusable(f"it cannot be decrypted with {encryption_keys_source()}") from None


def decrypt_private(row: SigningKey) -> Any:
    """The private key of a row, decrypted and checked against the row's kid (a key
    that does not match its kid would sign tokens that nothing verifies)."""
    try:
        pem = _fernet().decrypt(row.private_encrypted.encode()).decode()
    except InvalidToken:
        raise KeyUnusable(
            f"the private part of key {row.kid} cannot be decrypted with {encryption_keys_source()}: "
            "it was stored under another key"
        ) from None
    key = parse_private(pem, row.algorithm)
    if thumbprint(key.public_key()) != row.kid:
        raise KeyUnusable(f"the private part of key {row.kid} belongs to another key")
    return key


@lru_cache(maxsize=1)
def configured_key() -> tuple[str, Any]:
    """(kid, key) of the key in the settings: the HMAC secret, or the first private key."""
    alg, secret = algorithm(), settings.SIMPLE_JWT["SIGNING_KEY"]
    if is_symmetric(alg):
        return _hmac_kid(secret), secret
    key = parse_private(secret, alg)
    return thumbprint(key.public_key()), key


# --- The key set as this process sees it ---------------------------------------


@dataclass(frozen=True)
class Verifier:
    algorithm: str  # the one algorithm this key verifies: its row's, never a token's choice
    key: Any  # public key (or HMAC secret)


@dataclass
class KeySet:
    algorithm: str
    verifying: dict[str, Verifier]  # kid -> how to verify: published and active keys, of any algorithm
    jwks: list[dict[str, str]]
    active: str | None = None  # as of `loaded_at`
    loaded_at: float = field(default_factory=time.monotonic)


_miss_lock = threading.Lock()


class _State:
    keyset: KeySet | None = None
    last_miss_reload = 0.0
    private: dict[str, tuple[str, Any]] = {}  # kid -> (its algorithm, private key object), decrypted once
    public: dict[str, Any] = {}  # kid -> parsed public key


def forget() -> None:
    """Drop this process's view (after a change here, in tests, on setting_changed)."""
    _State.keyset = None
    _State.last_miss_reload = 0.0
    _State.private = {}
    _State.public = {}
    configured_key.cache_clear()


@receiver(setting_changed)
def _forget_on_change(*, setting: str, **kwargs: object) -> None:
    if setting in {"SIMPLE_JWT", "DUOTOKEN", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "DEBUG"}:
        forget()


def import_configured_key() -> None:
    """Put the key from the settings into the shared set, once: active if no key is
    active yet, published otherwise (promote it to sign). A key already there keeps
    its state, so a retired key stays retired however long the setting names it."""
    alg = algorithm()
    if is_symmetric(alg):
        return
    kid, key = configured_key()
    if is_development(kid):
        return  # public knowledge: never a key of the shared set
    if SigningKey.objects.filter(pk=kid).exists():
        return
    active = SigningKey.objects.filter(state=SigningKey.State.ACTIVE, algorithm=alg).exists()
    row = SigningKey(
        kid=kid,
        algorithm=alg,
        state=SigningKey.State.PUBLISHED if active else SigningKey.State.ACTIVE,
        public_pem=public_pem(key.public_key()),
        private_encrypted=encrypt_private(key),
        created_at=clock.now(),
        promoted_at=None if active else clock.now(),
    )
    # Several hosts may start at once: the first insert wins, the others change nothing.
    SigningKey.objects.bulk_create([row], ignore_conflicts=True)
    if not SigningKey.objects.filter(pk=kid).exists():  # lost the race for "active"
        row.state, row.promoted_at = SigningKey.State.PUBLISHED, None
        SigningKey.objects.bulk_create([row], ignore_conflicts=True)


def _rows() -> list[tuple[str, str, str, str]]:
    return list(SigningKey.objects.values_list("kid", "algorithm", "state", "public_pem"))


def _load() -> KeySet:
    alg = algorithm()
    if is_symmetric(alg):
        kid, secret = configured_key()
        return KeySet(algorithm=alg, verifying={kid: Verifier(alg, secret)}, jwks=[], active=kid)
    configured_kid = configured_key()[0]
    try:
        # Every algorithm's keys: tokens of the one we switch from keep verifying
        # until their keys are retired.
        rows = _rows()
        if configured_kid not in {row[0] for row in rows} and not is_development(configured_kid):
            import_configured_key()
            rows = _rows()
    except DatabaseError as exc:
        if _State.keyset is None:
            raise
        # Keep verifying with what we knew; try again after the usual interval.
        logger.warning("key set not reloaded, the database did not answer: %s", exc)
        _State.keyset.loaded_at = time.monotonic()
        return _State.keyset
    verifying: dict[str, Verifier] = {}
    jwks = []
    active = None
    for kid, key_alg, state, pem in rows:
        if state == SigningKey.State.ACTIVE:
            # Even a development key: then nothing signs (503), just as the refresh
            # UPDATE, which reads the same row, would have it.
            active = kid
        if state == SigningKey.State.RETIRED or key_alg not in ASYMMETRIC or is_development(kid):
            # A development key left in the table by an older version verifies
            # nothing; check duotoken.E012 refuses to start with it.
            _State.private.pop(kid, None)
            continue
        public = _State.public.get(kid)
        if public is None:
            public = _State.public[kid] = serialization.load_pem_public_key(pem.encode())
        verifying[kid] = Verifier(key_alg, public)
        jwks.append({**public_jwk(public), "kid": kid, "use": "sig", "alg": key_alg})
    if _development_in_process():
        public = configured_key()[1].public_key()
        verifying[configured_kid] = Verifier(alg, public)
        jwks.append({**public_jwk(public), "kid": configured_kid, "use": "sig", "alg": alg})
    return KeySet(algorithm=alg, verifying=verifying, jwks=jwks, active=active)


def reload() -> KeySet:
    _State.keyset = _load()
    return _State.keyset


def current() -> KeySet:
    keyset = _State.keyset
    if keyset is None or time.monotonic() - keyset.loaded_at >= settings.DUOTOKEN.get("KEYS_RELOAD_SECONDS", 5):
        keyset = reload()
    return keyset


def verifying_key(kid: str) -> Verifier | None:
    """The key that verifies tokens of `kid`, with its algorithm, or None (unknown or retired)."""
    key = current().verifying.get(kid)
    if key is not None:
        return key
    # Threads of one worker share the key set: one reloads on a miss while the others
    # wait and then look again, so none refuses a key that the reload just found.
    with _miss_lock:
        key = _State.keyset.verifying.get(kid) if _State.keyset is not None else None
        if key is None and time.monotonic() - _State.last_miss_reload >= MISS_RELOAD_SECONDS:
            # A key added on another host since our last look; bounded, since forged
            # kids cost nothing to send.
            _State.last_miss_reload = time.monotonic()
            key = reload().verifying.get(kid)
    return key


def still_verifying(kid: str) -> bool:
    """For tokens verified earlier: is their key still published? (No reload on a miss.)"""
    return kid in current().verifying


def jwks() -> dict[str, list[dict[str, str]]]:
    """The JWK Set of this process's key set: no query per request. A key added on
    another host is published here within AUTH_KEYS_RELOAD_SECONDS, well before it
    may sign (`promote` waits AUTH_JWKS_MAX_AGE); a retirement leaves it as fast."""
    return {"keys": list(current().jwks)}


# --- Signing -----------------------------------------------------------------


def fallback_kid() -> str:
    """The kid to sign with when the database names none (HS*, or before any import)."""
    return configured_key()[0]


def active_kid() -> str:
    """The kid that signs new sessions, read from the database: one query, which
    also refreshes this process's view of the key set. Its private key is made ready
    here (503 `signing_key_unavailable` otherwise), so that a login never opens a
    session that it cannot sign tokens for."""
    if is_symmetric():
        return fallback_kid()
    kid = reload().active or fallback_kid()
    _signing_key(kid)
    return kid


def _private_key(kid: str) -> tuple[str, Any]:
    configured_kid, configured = configured_key()
    if is_development(kid) and not (kid == configured_kid and _development_in_process()):
        raise KeyUnusable(f"key {kid} is the public development key, which signs nothing without DJANGO_DEBUG")
    if is_symmetric() or (kid == configured_kid and _development_in_process()):
        if kid != configured_kid:
            raise KeyUnusable(f"no usable signing key {kid!r}")
        return algorithm(), configured
    # The row decides, for the configured key too: a retired key never signs, even
    # after a JWT_ALGORITHM switch made the refresh UPDATE fall back to its kid.
    row = SigningKey.objects.filter(pk=kid).exclude(state=SigningKey.State.RETIRED).first()
    if row is None or row.algorithm not in ASYMMETRIC:
        raise KeyUnusable(f"no usable signing key {kid!r}")
    return row.algorithm, configured if kid == configured_kid else decrypt_private(row)


def _signing_key(kid: str) -> tuple[str, Any]:
    """(algorithm, private key) of `kid`, decrypted once per process. The algorithm is
    the one its row was added with. A key that cannot be used answers 503
    `signing_key_unavailable` (an operator must act: see check duotoken.E013), never
    a 500, and says which key in the log."""
    cached = _State.private.get(kid)
    if cached is not None:
        return cached
    try:
        cached = _private_key(kid)
    except KeyUnusable as exc:
        logger.error("signing key %s cannot be used: %s", kid, exc)
        raise AuthError("signing_key_unavailable") from None
    _State.private[kid] = cached
    if _State.keyset is not None and kid not in _State.keyset.verifying:
        # Promoted on another host since this process last looked: publish it here
        # too before anything it signs leaves (a verifier refetches our JWKS on an
        # unknown kid).
        reload()
    return cached


class _DeterministicES256(ECAlgorithm):
    """ES256 with RFC 6979 nonces (cryptography's `deterministic_signing`), so that a
    grace replay re-mints the same bytes; PyJWT's own ES256 signs with a random
    nonce. The signatures are ordinary ES256: every verifier accepts them."""

    def __init__(self) -> None:
        super().__init__(ECAlgorithm.SHA256, ec.SECP256R1)

    def sign(self, msg: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
        der = key.sign(msg, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        return der_to_raw_signature(der, key.curve)


# Our signer: PyJWT's JWS encoding with only the algorithms we offer, ES256 made
# deterministic. (Verification stays PyJWT's own.)
_JWS = jwt.PyJWS(algorithms=[alg for alg in ALGORITHMS if alg != "ES256"])
_JWS.register_algorithm("ES256", _DeterministicES256())


def sign(payload: dict[str, Any], kid: str) -> str:
    """Deterministic: the same payload and kid always give the same bytes."""
    kid = kid or fallback_kid()  # sessions from before keys had ids
    alg, key = _signing_key(kid)
    # The bytes jwt.encode() would sign: compact JSON, the header's members sorted.
    body = json.dumps(payload, separators=(",", ":")).encode()
    return _JWS.encode(body, key, algorithm=alg, headers={"kid": kid})
