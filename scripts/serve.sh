#!/usr/bin/env bash
# Start the service on http://127.0.0.1:8000 (SQLite and the local Redis unless
# DATABASE_URL / REDIS_URL say otherwise). First run writes a development .env.
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

.venv/bin/python manage.py preflight
.venv/bin/python manage.py migrate --noinput
exec .venv/bin/gunicorn config.wsgi:application --workers "${GUNICORN_WORKERS:-3}" --bind "${GUNICORN_BIND:-127.0.0.1:8000}" --access-logfile -
