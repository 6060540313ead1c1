#!/usr/bin/env bash
# Run the whole suite: unit and API tests, the system tier (real gunicorn, private
# redis-servers) and the browser tier (headless Chromium). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-browser
exec .venv/bin/python -m pytest "$@"
