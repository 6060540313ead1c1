"""A device as a DBSC browser is one: a key pair of its own, real ES256 or RS256
proofs over the server's challenges, and the headers Chromium sends."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

REGISTRATION = re.compile(r'^\(ES256 RS256\);path="(?P<path>[^"]+)";challenge="(?P<challenge>[^"]+)"$')
CHALLENGE = re.compile(r'^"(?P<challenge>[^"]+)";id="(?P<id>[^"]+)"$')


def _new_key(alg: str, bits: int):
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@dataclass
class Device:
    alg: str = "ES256"
    bits: int = 2048
    key: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.key is None:
            self.key = _new_key(self.alg, self.bits)

    @property
    def jwk(self) -> dict:
        algorithm = ECAlgorithm if self.alg == "ES256" else RSAAlgorithm
        return json.loads(algorithm.to_jwk(self.key.public_key()))

    def proof(self, challenge, *, jwk: dict | bool | None = True, alg: str | None = None, typ="dbsc+jwt") -> str:
        """A Secure-Session-Response: with its public key as `jwk` (registration) or
        without (refresh), as Chromium 156 signs them."""
        headers: dict = {"typ": typ}
        if jwk is True:
            headers["jwk"] = self.jwk
        elif jwk:
            headers["jwk"] = jwk
        return jwt.encode({"jti": challenge}, self.key, algorithm=alg or self.alg, headers=headers)


def offered_challenge(response) -> str:
    match = REGISTRATION.match(response["Secure-Session-Registration"])
    assert match is not None, response["Secure-Session-Registration"]
    assert match["path"] == "/api/auth/dbsc/register/"
    return match["challenge"]


def refresh_challenge(response) -> tuple[str, str]:
    match = CHALLENGE.match(response["Secure-Session-Challenge"])
    assert match is not None, response["Secure-Session-Challenge"]
    return match["challenge"], match["id"]


REGISTER = "/api/auth/dbsc/register/"
REFRESH_URL = "/api/auth/dbsc/refresh/"


def register(spa, proof: str | None, **extra):
    """POST the registration as the browser does: an empty body, no CSRF header."""
    if proof is not None:
        extra["HTTP_SECURE_SESSION_RESPONSE"] = proof
    return spa.post(REGISTER, **extra)


def dbsc_refresh(spa, session_id: str | None, proof: str | None = None, **extra):
    if session_id is not None:
        extra["HTTP_SEC_SECURE_SESSION_ID"] = session_id
    if proof is not None:
        extra["HTTP_SECURE_SESSION_RESPONSE"] = proof
    return spa.post(REFRESH_URL, **extra)


def bound_refresh(spa, device: Device, session_id: str):
    """Both legs of a device-signed refresh: the challenge, then the proof over it."""
    asked = dbsc_refresh(spa, session_id)
    assert asked.status_code == 403, asked.content
    challenge, named = refresh_challenge(asked)
    assert named == session_id
    return dbsc_refresh(spa, session_id, device.proof(challenge, jwk=False))
