#!/usr/bin/env bash
# Idempotent: the virtualenv with pinned packages, and (for the browser tests, as
# root) Debian's chromium and nginx. Every other script calls this first.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

if [ "${1:-}" = "--with-browser" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  else
    echo "chromium is missing: install Debian's chromium package (sudo apt-get install chromium)" >&2
    exit 1
  fi
fi

# nginx for the gateway system test (tests/system/test_gateway_nginx.py), which runs
# it as an unprivileged foreground child on free ports; the service is never started.
if [ "${1:-}" = "--with-browser" ] && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
  else
    echo "nginx is missing: install Debian's nginx package (sudo apt-get install nginx)" >&2
    exit 1
  fi
fi

# Node.js and npm (Debian's) for the SPA client package's tests
# (tests/browser/test_js_package.py) and the Node JOSE interop test
# (tests/system/test_node_interop.py), then each one's locked packages.
if [ "${1:-}" = "--with-browser" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    else
      echo "npm is missing: install Debian's nodejs and npm packages (sudo apt-get install nodejs npm)" >&2
      exit 1
    fi
  fi
  lock=$(sha256sum clients/js/package-lock.json | cut -d' ' -f1)
  if [ "$(cat clients/js/node_modules/.lock.sha 2>/dev/null)" != "$lock" ]; then
    (cd clients/js && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
    echo "$lock" > clients/js/node_modules/.lock.sha
  fi
  node_stamp=tests/system/node_interop/node_modules/.package-lock.sha
  node_want=$(sha256sum tests/system/node_interop/package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$node_stamp" 2>/dev/null)" != "$node_want" ]; then
    (cd tests/system/node_interop && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$node_want" > "$node_stamp"
  fi
fi
