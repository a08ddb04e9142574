#!/usr/bin/env bash
# Build one of HubKit's images for real with buildah, on a machine that reaches no container registry:
# the base images are made here from Debian packages instead of pulled.
#
#   images/build-local.sh services      # or: nfs-ganesha, hub, singleuser-slim, proxy, user-scheduler
#   images/build-local.sh all           # every one of them (`make images`)
#   images/build-local.sh values        # a helm values file pointing the chart at the `local` tags
#
# prints the built image's reference (localhost/hubkit-local/<image>:<key>) on stdout and points the
# image's moving tag `local` (localhost/hubkit-local/<image>:local) at it. Steps, each cached
# in the system's container storage under a key made from its inputs, so an unchanged step is skipped:
#   1. localhost/hubkit-local/debian:bookworm-<key> — a bookworm rootfs from mmdebstrap (minbase, no docs,
#      man pages or locales: what debian:bookworm-slim is), imported as a single-layer image;
#   2. localhost/hubkit-local/python:3.11-bookworm-<key> — images/local/python.Dockerfile over (1), the
#      stand-in for python:3.11-slim-bookworm;
#   3. the image: its own Dockerfile, unchanged, with BASE_IMAGE pointing at (1) or (2).
# The image key covers the base, the Dockerfile and every file the Dockerfile reads (requirements and
# packages), so a changed package rebuilds it; older builds of the same image are removed.
# Needs root, buildah and mmdebstrap (tests/platform/sysdeps.sh installs them), Debian's mirror (apt over
# http) and PyPI. BUILDAH_ISOLATION and STORAGE_DRIVER are honoured as buildah documents them. The runtime
# is runc: crun 1.8 (Debian's other choice) refuses a host with hybrid cgroups ("cgroups in hybrid mode not
# supported, drop all controllers from cgroupv2"), as CI containers often are.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: images/build-local.sh all|values|services|nfs-ganesha|hub|singleuser-slim|proxy|user-scheduler"
image=${1:?$usage}
mirror=${HUBKIT_DEBIAN_MIRROR:-http://deb.debian.org}
repo=localhost/hubkit-local
all=(nfs-ganesha services hub singleuser-slim proxy user-scheduler)
if [ "$image" = all ]; then
  for one in "${all[@]}"; do
    start=$(date +%s%N)
    ref=$("$0" "$one")
    ms=$((($(date +%s%N) - start) / 1000000))
    printf '%s\t%d.%d s\n' "$ref" $((ms / 1000)) $((ms % 1000 / 100))
  done
  exit 0
fi
if [ "$image" = values ]; then
  # What `helm install -f` needs to run every image from the `local` tags: HubKit's own templates follow
  # `images`; zero-to-jupyterhub's take their images from its own keys.
  cat <<VALUES
images:
  registry: $repo
  tag: local
jupyterhub:
  hub:
    image: {name: $repo/hub, tag: local}
  proxy:
    chp:
      image: {name: $repo/proxy, tag: local}
  singleuser:
    image: {name: $repo/singleuser-slim, tag: local}
  scheduling:
    userScheduler:
      image: {name: $repo/user-scheduler, tag: local}
VALUES
  exit 0
fi
log() { echo "[build-local] $*" >&2; }
key() { sha256sum | cut -c1-16; }
exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }
# Remove the older builds of one image: the other tags of its repository in the same family (for the bases,
# the tag minus its key: debian:bookworm-*, debian:trixie-*, python:3.11-bookworm-*), with their layers; one
# still in use by another image stays, and so does the moving tag `local`.
prune() {
  local name=${1%:*} tag=${1##*:} family=""
  case "$tag" in *-*) family="${tag%-*}-" ;; esac
  buildah images --format '{{.Name}}:{{.Tag}}' | grep -x "$name:$family[^-]*" | grep -vx -e "$1" -e "$name:local" \
    | xargs -r -n1 buildah rmi >/dev/null 2>&1 || true
}

case "$image" in
  services) base=python; context=.; inputs=(images/services packages/services) ;;
  nfs-ganesha) base=debian; context=images/nfs-ganesha; inputs=(images/nfs-ganesha) ;;
  hub) base=python; context=.; inputs=(images/hub packages/spawner packages/auth packages/services) ;;
  singleuser-slim) base=python; context=images/singleuser-slim; inputs=(images/singleuser-slim) ;;
  proxy) base=trixie; context=.
    inputs=(images/proxy tests/platform/npm/package.json tests/platform/npm/package-lock.json) ;;
  user-scheduler) base=debian; inputs=(images/user-scheduler)
    # The kube-scheduler tests/platform/go/build.sh builds (cached; built now if it is not).
    context=$(bash tests/platform/go/build.sh core | tail -n1)
    [ -x "$context/kube-scheduler" ] || { echo "images/build-local.sh: no kube-scheduler in $context" >&2; exit 1; } ;;
  *) echo "images/build-local.sh: no local build for '$image' ($usage)" >&2; exit 2 ;;
esac

# One build at a time on this machine (parallel test sessions share the storage and the tags).
lock=${HUBKIT_CACHE:-$HOME/.cache/hubkit}/build-local.lock
mkdir -p "$(dirname "$lock")"
exec 9>"$lock"
flock 9

# 1. The Debian base: bookworm (every image but the proxy), trixie (the proxy: configurable-http-proxy 5.3
#    needs Node.js 20, which bookworm does not have; localhost/hubkit-local/debian-trixie:<key>).
# Prints the base's reference (its key: the recipe); with "build", makes it first when missing.
debian_base() {
local suite=$1 build=${2:-}
local debootstrap_args=(
  --variant=minbase --aptopt='APT::Install-Recommends "false"'
  # merged /usr by symlinks, as bookworm has it, without the usrmerge package (which pulls in Perl)
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias'
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --customize-hook='copy-in images/local/docker-clean /etc/apt/apt.conf.d'
  # With docker-clean's empty Dir::Cache::pkgcache, mmdebstrap's final `apt-get clean` misses these.
  --customize-hook='rm -f "$1"/var/cache/apt/*.bin'
  "$suite"
)
local sources=(
  "deb $mirror/debian $suite main"
  "deb $mirror/debian $suite-updates main"
  "deb $mirror/debian-security $suite-security main"
)
# bookworm: debian:bookworm-<key>; another suite has a repository of its own (debian-trixie:<key>).
local ref name=debian:$suite-
if [ "$suite" != bookworm ]; then name=debian-$suite:; fi
ref=$repo/$name$( (printf '%s\n' "${debootstrap_args[@]}" "${sources[@]}"
  cat images/local/docker-clean) | key)
if [ -n "$build" ] && ! exists "$ref"; then
  log "making $ref with mmdebstrap"
  local work ctr
  work=$(mktemp -d)
  # shellcheck disable=SC2064  # expanded now: $work is local
  trap "rm -rf '$work'" EXIT
  mmdebstrap --quiet "${debootstrap_args[@]}" "$work/rootfs.tar" "${sources[@]}" >&2
  ctr=$(buildah from scratch)
  buildah add --quiet "$ctr" "$work/rootfs.tar" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd bash --label org.opencontainers.image.description="Debian $suite (mmdebstrap minbase), local" \
    "$ctr"
  buildah commit --quiet --rm "$ctr" "$ref" >/dev/null
  rm -rf "$work"
  trap - EXIT
fi
echo "$ref"
}
debian=$(debian_base bookworm build)
trixie=$(debian_base trixie)
if [ "$base" = trixie ]; then debian_base trixie build >/dev/null; fi

# 2. The Python base.
python=$repo/python:3.11-bookworm-$( (buildah inspect --type image --format '{{.FromImageID}}' "$debian"
  cat images/local/python.Dockerfile) | key)
if [ "$base" = python ] && ! exists "$python"; then
  log "making $python"
  buildah bud --quiet --runtime runc --pull=never --format docker --build-arg BASE_IMAGE="$debian" \
    -f images/local/python.Dockerfile -t "$python" images/local >/dev/null
fi
base_ref=${!base}

# 3. The image.
# What the build context holds of the inputs: tracked and new files (not ignored ones), as they are now.
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- "${inputs[@]}" | LC_ALL=C sort -u)
present=()
for f in "${files[@]}"; do if [ -f "$f" ]; then present+=("$f"); fi; done
extra=()
if [ "$image" = user-scheduler ]; then extra=("$context/kube-scheduler"); fi
ref=$repo/$image:$( (buildah inspect --type image --format '{{.FromImageID}}' "$base_ref"
  sha256sum "${present[@]}"
  if [ "${#extra[@]}" -gt 0 ]; then sha256sum <"${extra[0]}"; fi) | key)
if exists "$ref"; then
  log "$ref is up to date"
else
  log "building $ref from images/$image/Dockerfile"
  volumes=()
  # Where HTTPS is intercepted by a proxy with its own CA, pip in the build must trust what the host
  # trusts. Mounted for the RUN steps only: it is not part of any layer.
  if [ "$base" = python ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    volumes=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  fi
  # npm (the proxy's build stage) is told about it through NODE_EXTRA_CA_CERTS, a build stage ARG.
  if [ "$image" = proxy ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    volumes=(-v /etc/ssl/certs/ca-certificates.crt:/run/hubkit-host-ca.crt:ro
      --build-arg NODE_EXTRA_CA_CERTS=/run/hubkit-host-ca.crt)
  fi
  start=$(date +%s)
  # Docker format: the OCI image config has no HEALTHCHECK, and the Dockerfiles declare one.
  buildah bud --quiet --runtime runc --pull=never --format docker "${volumes[@]}" \
    --build-arg BASE_IMAGE="$base_ref" \
    -f "images/$image/Dockerfile" -t "$ref" "$context" >&2
  log "built $ref in $(($(date +%s) - start)) s"
  prune "$ref"
  case "$base" in
    python) prune "$python"; prune "$debian" ;;
    *) prune "${!base}" ;;
  esac
fi
buildah tag "$ref" "$repo/$image:local"
echo "$ref"
