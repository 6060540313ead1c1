#!/usr/bin/env bash
# Start the service on http://127.0.0.1:8000 (SQLite and the local Redis unless
# DATABASE_URL / REDIS_URL say otherwise). First run writes a development .env
# and a development P-256 signing key for ES256 (.dev-jwt-key.pem, never committed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

if [ ! -f .env ]; then
  key() { .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(48))'; }
  cat > .env <<ENV
# Written by scripts/serve.sh for local development; see .env.example for every setting.
DJANGO_DEBUG=true
DJANGO_SECRET_KEY=$(key)
JWT_SIGNING_KEY=$(key)
ENV
  echo "Wrote .env for local development (DEBUG on, fresh random keys)."
fi

if [ ! -f .dev-jwt-key.pem ]; then
  (umask 077 && .venv/bin/python -c '
from cryptography.hazmat.primitives import serialization as s
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
print(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()).decode(), end="")
' > .dev-jwt-key.pem)
  echo "Wrote .dev-jwt-key.pem (a fresh P-256 development signing key)."
fi
if ! grep -q '^JWT_PRIVATE_KEY' .env; then
  echo "JWT_PRIVATE_KEY_FILE=$PWD/.dev-jwt-key.pem" >> .env
fi
# A .dev-jwt-key.pem from before ES256 was the default is an Ed25519 key: keep it, on EdDSA.
if ! grep -q '^JWT_ALGORITHM' .env && grep -q "^JWT_PRIVATE_KEY_FILE=$PWD/.dev-jwt-key.pem$" .env; then
  alg=$(.venv/bin/python -c '
from pathlib import Path
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import load_pem_private_key
key = load_pem_private_key(Path(".dev-jwt-key.pem").read_bytes(), password=None)
print("EdDSA" if isinstance(key, ed25519.Ed25519PrivateKey) else "ES256")
')
  echo "JWT_ALGORITHM=$alg" >> .env
fi

.venv/bin/python manage.py preflight
.venv/bin/python manage.py migrate --noinput
exec .venv/bin/gunicorn config.wsgi:application --workers "${GUNICORN_WORKERS:-3}" --bind "${GUNICORN_BIND:-127.0.0.1:8000}" --access-logfile -
