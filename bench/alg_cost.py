"""What one token costs to sign and to verify, per algorithm, in-process.

    .venv/bin/python bench/alg_cost.py            # CPU us per operation (time.process_time)
    .venv/bin/python bench/alg_cost.py --callgrind  # instructions per operation (valgrind)

The verify is what a /me cache miss pays: PyJWT's header parse and decode with the
options tokens.tokens uses (aud, iss, required claims), on a token of our shape.
The sign is what login and refresh pay per token. Algorithms: EdDSA (Ed25519, the
default), ES256 (P-256) signed with RFC 6979 deterministic nonces (cryptography's
deterministic_signing; PyJWT itself signs with random ones), RS256 (RSA-2048) and
HS256 as the symmetric reference. A deterministic ES256 signature is an ordinary
ES256 signature: any verifier, and the JWKS, are unchanged.

With --callgrind each (algorithm, operation) runs under valgrind twice, with 0 and
N operations after the same set-up (fixed keys, so key generation is not counted),
and the difference over N is the count: the same on a loaded machine as on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ALGORITHMS = ("EdDSA", "ES256", "RS256", "HS256")
HMAC_SECRET = "bench-jwt-signing-key-0123456789abcdefghijklmn"
PAYLOAD = {
    "iss": "https://auth.example",
    "aud": "duotoken",
    "token_type": "access",
    "iat": 1_800_000_000,
    "exp": 4_000_000_000,
    "jti": "0123456789abcdef0123456789abcdef",
    "user_id": "42",
    "sid": "6f1c1f4e-8a4e-4a59-9a8e-6b8f1f0c2d3e",
    "gen": 3,
    "sx": 4_000_000_000,
}


def _keys_file() -> Path:
    """Fixed private keys (PEM) for the whole comparison, generated once per run."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    keys = {
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }
    pems = {
        alg: key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption()).decode()
        for alg, key in keys.items()
    }  # fmt: skip
    path = Path(tempfile.mkstemp(prefix="alg_cost_", suffix=".json")[1])
    path.write_text(json.dumps(pems))
    return path


def _ops(alg: str, keys_path: Path):
    """(sign, verify) callables for one algorithm."""
    import jwt
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.utils import base64url_encode, der_to_raw_signature

    if alg == "HS256":
        private = public = HMAC_SECRET
    else:
        private = serialization.load_pem_private_key(json.loads(keys_path.read_text())[alg].encode(), None)
        public = private.public_key()
    headers = {"kid": "bench"}

    if alg == "ES256":
        curve = ec.SECP256R1()

        def sign() -> str:
            # PyJWT's framing (compact JSON, sorted header), signed with an RFC 6979 nonce.
            header = json.dumps({"alg": "ES256", "kid": "bench", "typ": "JWT"}, separators=(",", ":"), sort_keys=True)
            body = json.dumps(PAYLOAD, separators=(",", ":"))
            signing_input = b".".join(base64url_encode(part.encode()) for part in (header, body))
            der = private.sign(signing_input, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
            return (signing_input + b"." + base64url_encode(der_to_raw_signature(der, curve))).decode()

    else:

        def sign() -> str:
            return jwt.encode(PAYLOAD, private, algorithm=alg, headers=headers)

    token = sign()
    if alg == "ES256":
        assert sign() == token, "RFC 6979: the same payload signs to the same bytes"

    def verify() -> dict:
        header = jwt.get_unverified_header(token)
        assert header["alg"] == alg
        return jwt.decode(
            token, public, algorithms=[alg], audience=PAYLOAD["aud"], issuer=PAYLOAD["iss"],
            options={"verify_exp": False, "verify_iat": False, "require": ["exp", "iat", "iss", "aud"]},
        )  # fmt: skip

    assert verify()["sid"] == PAYLOAD["sid"]
    return sign, verify


def _child(args) -> None:
    sign, verify = _ops(args.alg, Path(args.keys))
    fn = sign if args.op == "sign" else verify
    started = time.process_time()
    for _ in range(args.n):
        fn()
    print(json.dumps({"cpu_s": time.process_time() - started}))


def _run(prefix: list[str], alg: str, op: str, n: int, keys: Path) -> dict:
    cmd = [*prefix, sys.executable, __file__, "child", alg, op, str(n), str(keys)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _instructions(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("-n", type=int, help="operations per measurement (default 2000, callgrind 200)")
    parser.add_argument("--rounds", type=int, default=3)
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child = argparse.ArgumentParser()
        child.add_argument("child")
        child.add_argument("alg")
        child.add_argument("op")
        child.add_argument("n", type=int)
        child.add_argument("keys")
        _child(child.parse_args())
        return
    args = parser.parse_args()
    n = args.n or (200 if args.callgrind else 2000)
    keys = _keys_file()
    report: dict[str, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for alg in ALGORITHMS:
                for op in ("verify", "sign"):
                    if args.callgrind:
                        counts = []
                        for count in (0, n):
                            out = Path(tmp) / f"{alg}-{op}-{count}.out"
                            _run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"], alg, op, count, keys)
                            counts.append(_instructions(out))
                        value = round((counts[1] - counts[0]) / n)
                    else:
                        rounds = sorted(1e6 * _run([], alg, op, n, keys)["cpu_s"] / n for _ in range(args.rounds))
                        value = round(rounds[len(rounds) // 2], 1)
                    report.setdefault(alg, {})[op] = value
                    unit = "instructions" if args.callgrind else "us CPU"
                    print(f"{alg} {op}: {value:,} {unit} per operation", file=sys.stderr)
    finally:
        keys.unlink()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
