#!/usr/bin/env bash
# Idempotent: what bench/run.py needs beyond the test setup. Debian's wrk (the load
# generator), util-linux's taskset (pins servers and load to their own cores) and
# redis-server (the run's private Redis), installed as root; then the chart and
# profiler packages of bench/requirements.txt into the virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "bench needs: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

.venv/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
