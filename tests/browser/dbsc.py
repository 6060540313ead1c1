"""What the DBSC browser tests share: a certificate made at test time, a gunicorn
that terminates TLS with it, and Chromium started with DBSC on and that one
certificate trusted.

DBSC needs HTTPS with a certificate Chromium finds error-free:
--ignore-certificate-errors turns it off silently, so the test certificate is
trusted by its key instead (--ignore-certificate-errors-spki-list) and the
name it is issued for is mapped to 127.0.0.1 (--host-resolver-rules).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "dbsc.test"

# Chromium keeps only the last --enable-features, so Playwright's own features
# (its chromiumSwitches) are repeated in ours.
PLAYWRIGHT_FEATURES = ["CDPScreenshotNewSurface", "SkipListAccountsWithoutGaiaCookies"]
DBSC_FEATURES = [
    # chrome://flags "Device Bound Session Credentials (Standard)": Enabled - For developers.
    "DeviceBoundSessions:RequireOriginTrialTokens/false/RefreshQuota/false",
    # Software keys: this machine has no TPM.
    "EnableBoundSessionCredentialsSoftwareKeysForManualTesting",
]


@dataclass
class Certificate:
    certfile: str
    keyfile: str
    spki_sha256: str  # base64 of the SHA-256 of its SubjectPublicKeyInfo


def make_certificate(directory: Path) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Certificate(str(certfile), str(keyfile), base64.b64encode(hashlib.sha256(spki).digest()).decode())


def chromium_args(cert: Certificate, *, dbsc: bool = True) -> list[str]:
    features = PLAYWRIGHT_FEATURES + (DBSC_FEATURES if dbsc else [])
    return [
        f"--enable-features={','.join(features)}",
        f"--ignore-certificate-errors-spki-list={cert.spki_sha256}",
        f"--host-resolver-rules=MAP {HOST} 127.0.0.1",
    ]


@dataclass
class DbscEvents:
    """Network.deviceBoundSessionEventOccurred, as Chromium reports them over CDP."""

    events: list[dict] = field(default_factory=list)

    def of(self, kind: str) -> list[dict]:
        # Each event has one of creationEventDetails, refreshEventDetails, ...
        return [e for e in self.events if f"{kind}EventDetails" in e]

    def succeeded(self, kind: str) -> list[dict]:
        return [e for e in self.of(kind) if e.get("succeeded")]

    def failed(self, kind: str) -> list[dict]:
        return [e for e in self.of(kind) if not e.get("succeeded")]


def watch_dbsc(page) -> DbscEvents:
    found = DbscEvents()
    cdp = page.context.new_cdp_session(page)
    cdp.on("Network.deviceBoundSessionEventOccurred", lambda event: found.events.append(event))
    cdp.send("Network.enable")
    cdp.send("Network.enableDeviceBoundSessions", {"enable": True})
    return found
