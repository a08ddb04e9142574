#!/usr/bin/env bash
# Regenerate the images' requirements.txt files (exact pins with hashes, no workspace packages: the
# Dockerfiles install those from packages/ with --no-deps). Run from anywhere; needs uv.
#   hub-jupyterhub6, services: uv.lock's set.
#   hub: what HubKit adds to zero-to-jupyterhub 4.4.0's frozen hub set, resolved with that set as
#        constraints (so nothing of it moves); versions already in the file are kept where they still fit.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never UV_PYTHON=python3
uv_export() { uv export --frozen --no-dev --no-emit-workspace --no-header "$@"; }
uv_export --package hubkit-spawner --package hubkit-auth --package hubkit-services --extra postgresql \
  -o images/hub-jupyterhub6/requirements.txt
uv_export --package hubkit-services -o images/services/requirements.txt
z2jh=images/hub/z2jh-4.4.0/requirements.txt
printf '%s\n' ./packages/spawner ./packages/auth ./packages/services \
  | uv pip compile --quiet --generate-hashes --no-header --python-version 3.12 -c "$z2jh" \
      --no-emit-package hubkit-spawner --no-emit-package hubkit-auth --no-emit-package hubkit-services \
      -o images/hub/requirements.txt -
