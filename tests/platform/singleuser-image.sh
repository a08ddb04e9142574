#!/usr/bin/env bash
# The "image" the process kubelet runs jupyter single-user containers from: a world-readable venv of
# Debian's Python with the pinned single-user stack (singleuser-requirements.txt), keyed by its hash.
# Pods run as their own uid, so this must live outside any root-only directory.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
reqs="$here/singleuser-requirements.txt"
key="$(sha256sum "$reqs" | cut -c1-16)"
root="${HUBKIT_IMAGE_ROOT:-/var/cache/hubkit/images}"
env="$root/singleuser-$key"
uv="${UV:-$(command -v uv || echo "${HUBKIT_CACHE:-$HOME/.cache/hubkit}/bootstrap/bin/uv")}"
mkdir -p "$root"
# Two test sessions run at once (`make test`): one builds, the other waits for it.
exec 9>"$root/.build.lock"
flock 9
if [ ! -e "$env/.complete" ]; then
  echo "[singleuser-image] building $env" >&2
  rm -rf "$env"
  mkdir -p "$root"
  UV_PYTHON_DOWNLOADS=never "$uv" venv -q --python /usr/bin/python3 "$env"
  # Copies, not links into uv's cache (which lives in a root-only home).
  UV_PYTHON_DOWNLOADS=never "$uv" pip install -q --link-mode=copy --python "$env/bin/python" -r "$reqs"
  chmod -R a+rX "$env"
  touch "$env/.complete"
fi
echo "$env"
