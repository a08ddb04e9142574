#!/usr/bin/env bash
# Regenerate images/{hub,services}/requirements.txt from uv.lock (exact pins with hashes, no workspace
# packages: the Dockerfiles install those from packages/ with --no-deps). Run from anywhere; needs uv.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never UV_PYTHON=python3
uv_export() { uv export --frozen --no-dev --no-emit-workspace --no-header "$@"; }
uv_export --package hubkit-spawner --package hubkit-auth --package hubkit-services --extra postgresql \
  -o images/hub/requirements.txt
uv_export --package hubkit-services -o images/services/requirements.txt
