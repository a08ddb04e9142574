#!/usr/bin/env bash
# Build the hermetic platform's Go components from the Go module proxy, once per version set.
#
#   build.sh core       etcd, kube-apiserver, kube-scheduler, kube-controller-manager, kwok, helm
#   build.sh kube-proxy | coredns | kube-router
#                       one cluster-network component, in a cache directory of its own (so adding or
#                       bumping one never rebuilds the others)
#   build.sh            all of them (what `make test` prepares), printing the core directory last
#
# Binaries land in $HUBKIT_CACHE/tools/<key>/bin, whose path is the last line printed; a rerun with the
# same versions builds nothing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${HUBKIT_CACHE:-$HOME/.cache/hubkit}"
component="${1:-all}"
# One build at a time per cache (two sessions, or two worktrees, would compile everything twice and
# race on the same binaries): the first invocation takes the lock, its nested ones inherit it.
if [ -z "${HUBKIT_TOOLS_LOCKED:-}" ]; then
  mkdir -p "$cache/tools"
  exec 8>"$cache/tools/.build.lock"
  flock 8
  export HUBKIT_TOOLS_LOCKED=1
fi
if [ "$component" = all ]; then
  core_bin="$(bash "${BASH_SOURCE[0]}" core)"  # first: kube-proxy reuses its compiled packages
  for c in kube-proxy coredns kube-router; do bash "${BASH_SOURCE[0]}" "$c" >/dev/null; done
  echo "$core_bin"
  exit 0
fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
export GOPATH="${GOPATH:-$cache/gopath}"

have() { [ -x "$bin/$1" ]; }
log() { printf '[platform-build] %s\n' "$*" >&2; }
k8s_ldflags() {
  local minor vpkg flags
  minor="$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
  vpkg=k8s.io/component-base/version
  flags="-s -w -X $vpkg.gitVersion=$KUBERNETES_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"
  echo "$flags -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"
}

case "$component" in
  core) key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}" ;;
  kube-proxy) key="kube-proxy-${KUBERNETES_VERSION}" ;;
  # The plugin set is in the wrapper module's source, so its hash is part of the key.
  coredns) key="coredns-${COREDNS_VERSION}-$(cat "$here"/coredns/main.go "$here"/coredns/go.sum | sha256sum | cut -c1-12)" ;;
  kube-router) key="kube-router-${KUBE_ROUTER_VERSION}" ;;
  *) echo "build.sh: unknown component '$component' (all, core, kube-proxy, coredns, kube-router)" >&2; exit 2 ;;
esac
bin="$cache/tools/$key/bin"
mkdir -p "$bin"

if [ "$component" = kube-proxy ]; then
  if ! have kube-proxy; then
    log "building kube-proxy $KUBERNETES_VERSION"
    (cd "$here/kubernetes" && go build -trimpath -ldflags "$(k8s_ldflags)" -o "$bin/" k8s.io/kubernetes/cmd/kube-proxy)
  fi
  echo "$bin"
  exit 0
fi

if [ "$component" = coredns ]; then
  if ! have coredns; then
    log "building coredns $COREDNS_VERSION (plugins: see coredns/main.go)"
    (cd "$here/coredns" && go build -trimpath -ldflags "-s -w" -o "$bin/coredns" .)
  fi
  echo "$bin"
  exit 0
fi

# kube-router, for its NetworkPolicy controller only (iptables + ipset): kube-network-policies needs the
# nftables `queue` expression, which this kernel lacks (see docs/platform.md).
if [ "$component" = kube-router ]; then
  if ! have kube-router; then
    log "building kube-router $KUBE_ROUTER_VERSION"
    GOFLAGS= GOBIN="$bin" go install -trimpath -ldflags "-s -w" \
      "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
  fi
  echo "$bin"
  exit 0
fi

if ! have etcd; then
  log "building etcd $ETCD_VERSION"
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin/etcd" .)
fi

if ! have kube-apiserver || ! have kube-scheduler || ! have kube-controller-manager; then
  log "building kubernetes $KUBERNETES_VERSION (kube-apiserver, kube-scheduler, kube-controller-manager); cold: 15-25 min on 2 cores"
  (cd "$here/kubernetes" && go build -trimpath -ldflags "$(k8s_ldflags)" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kube-controller-manager)
fi

if ! have kwok; then
  log "building kwok $KWOK_VERSION"
  GOFLAGS= GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
fi

# kwok ships its default lifecycle Stages inside its module; the binary needs them passed as config.
if [ ! -s "$bin/kwok-stages.yaml" ]; then
  stages="$(GOFLAGS= go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  [ -d "$stages" ] || GOFLAGS= go mod download "sigs.k8s.io/kwok@$KWOK_VERSION"
  for f in "$stages"/node/fast/node-initialize.yaml "$stages"/node/heartbeat-with-lease/*.yaml "$stages"/pod/fast/pod-*.yaml; do
    printf -- '---\n'; cat "$f"
  done > "$bin/kwok-stages.yaml.tmp"
  mv "$bin/kwok-stages.yaml.tmp" "$bin/kwok-stages.yaml"
fi

if ! have helm; then
  log "building helm $HELM_VERSION"
  GOFLAGS= GOBIN="$bin" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
fi

echo "$bin"
