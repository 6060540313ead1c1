#!/usr/bin/env bash
# Start the service on http://127.0.0.1:8000 (SQLite and the local Redis unless
# DATABASE_URL / REDIS_URL say otherwise). A first run writes a development .env
# (DEBUG on, fresh keys, short token lifetimes, a demo password), a development
# signing key for JWT_ALGORITHM (.dev-jwt-key.pem) and the demo user; both files are
# git-ignored. Where nothing answers on a local REDIS_URL, it starts a private
# redis-server there, and stops it when the server stops.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
py=.venv/bin/python

if [ ! -f .env ]; then
  key() { "$py" -c 'import secrets; print(secrets.token_urlsafe(48))'; }
  cat > .env <<ENV
# Written by scripts/serve.sh for local development; see .env.example for every setting.
DJANGO_DEBUG=true
DJANGO_SECRET_KEY=$(key)
JWT_SIGNING_KEY=$(key)
# Development only: 20 s access tokens, so that the demo page shows expiry, refresh
# and the grace window within seconds (default 300). The grace window may be at
# most half of the access lifetime (default 30).
AUTH_ACCESS_TOKEN_LIFETIME=20
AUTH_REFRESH_GRACE_SECONDS=10
ENV
  echo "Wrote .env for local development (DEBUG on, fresh random keys, 20 s access tokens)."
fi
if ! grep -q '^DUOTOKEN_DEMO_PASSWORD=' .env; then
  # The demo user's password: in this git-ignored file and on the terminal, nowhere else.
  echo "DUOTOKEN_DEMO_PASSWORD=$("$py" -c 'import secrets; print(secrets.token_urlsafe(12))')" >> .env
fi

# A development key for whatever JWT_ALGORITHM says (environment first, then .env).
if [ ! -f .dev-jwt-key.pem ]; then
  (umask 077 && "$py" - > .dev-jwt-key.pem.tmp <<'PY'
import os

import environ
from cryptography.hazmat.primitives import serialization as s
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

environ.Env.read_env(".env", overwrite=False)
alg = os.environ.get("JWT_ALGORITHM", "ES256")
curves = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}
if alg == "EdDSA":
    key = ed25519.Ed25519PrivateKey.generate()
elif alg in curves:
    key = ec.generate_private_key(curves[alg]())
elif alg[:2] in ("RS", "PS"):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
else:  # HS*: the shared JWT_SIGNING_KEY signs, there is no key pair
    raise SystemExit(0)
print(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()).decode(), end="")
PY
  )
  if [ -s .dev-jwt-key.pem.tmp ]; then
    mv .dev-jwt-key.pem.tmp .dev-jwt-key.pem
    echo "Wrote .dev-jwt-key.pem (a fresh development signing key)."
  else
    rm -f .dev-jwt-key.pem.tmp
  fi
fi
if [ -f .dev-jwt-key.pem ] && ! grep -q '^JWT_PRIVATE_KEY' .env; then
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

# Redis: the configured one if it answers; else, for a local URL, a private one.
read -r redis_state redis_port < <("$py" - <<'PY'
import os
from urllib.parse import urlsplit

import environ
import redis

environ.Env.read_env(".env", overwrite=False)
url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
try:
    redis.Redis.from_url(url.split(",")[0], socket_connect_timeout=1, socket_timeout=1).ping()
    print("up -")
except (redis.RedisError, ValueError):
    parts = urlsplit(url)
    local = parts.scheme == "redis" and parts.hostname in ("127.0.0.1", "localhost", "::1") and "," not in url
    print(f"down {parts.port or 6379}" if local else "remote -")
PY
)
redis_pid=
gunicorn_pid=
stop_all() {
  if [ -n "$gunicorn_pid" ] && kill -0 "$gunicorn_pid" 2>/dev/null; then
    kill -TERM "$gunicorn_pid" 2>/dev/null || true
    wait "$gunicorn_pid" 2>/dev/null || true
  fi
  if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    echo "Stopped the private redis-server (pid $redis_pid)."
  fi
}
trap stop_all EXIT
if [ "$redis_state" = down ]; then
  if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
    else
      echo "No Redis answers on REDIS_URL and redis-server is missing: install Debian's redis-server package" >&2
      echo "(sudo apt-get install redis-server), or set REDIS_URL to a Redis that runs." >&2
      exit 1
    fi
  fi
  # Keeps nothing on disk and listens on loopback only; it lives as long as this script.
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning &
  redis_pid=$!
  "$py" - "$redis_port" <<'PY'
import sys
import time

import redis

for _ in range(100):
    try:
        redis.Redis(port=int(sys.argv[1]), socket_timeout=0.5).ping()
        break
    except redis.RedisError:
        time.sleep(0.1)
PY
  echo "Started a private redis-server (pid $redis_pid) on 127.0.0.1:$redis_port; it stops with the server."
fi

"$py" manage.py preflight
"$py" manage.py migrate --noinput
bind=${GUNICORN_BIND:-127.0.0.1:8000}
"$py" manage.py dev_setup --url "http://$bind"   # the demo user (with DEBUG on only)

# In the background so that a stop (Ctrl-C, SIGTERM) also stops the private Redis.
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
.venv/bin/gunicorn config.wsgi:application --workers "${GUNICORN_WORKERS:-3}" --bind "$bind" --access-logfile - &
gunicorn_pid=$!
set +e
wait "$gunicorn_pid"
status=$?
gunicorn_pid=
exit "$status"
