#!/usr/bin/env bash
# Install the Debian packages the hermetic platform needs, only when one is missing.
# Used by `make dev`, `make test` and `make bench`; safe to rerun (a no-op when all are present).
set -euo pipefail
packages=(
  slapd ldap-utils          # real OpenLDAP server + client tools for the LDAP fixture
  chromium                  # headless browser for page tests (driven by Playwright, nothing downloaded)
  fonts-dejavu-core         # so screenshots have readable text
  nfs-ganesha nfs-ganesha-vfs libnfs-utils libnfs-dev   # userspace NFS server and client
  docker-registry           # real OCI registry for image-menu tests
  iproute2 procps psmisc util-linux   # ip, unshare, mount: the process kubelet runs pods with them
  python3                   # Debian's Python: the single-user "image" venv is built on it (world-readable)
  buildah podman runc mmdebstrap   # real image builds without a registry (images/build-local.sh, tests/images)
  postgresql                # real PostgreSQL server: the identity ledger and a hub on PostgreSQL
  iptables ipset            # kube-proxy and kube-router's NetworkPolicy controller program them
  libpq-dev gcc libc6-dev   # z2jh's hub set pins psycopg2 (an sdist): `make test`'s second Python set builds it
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "[sysdeps] installing: ${missing[*]}" >&2
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Debian services must not start as a side effect of installing them (slapd, ganesha, registry):
# the platform starts its own instances on random loopback ports.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null; $SUDO chmod +x "$policy"
  trap '$SUDO rm -f "$policy"' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
