#!/usr/bin/env bash
# Build the hermetic platform's Go components (etcd, kube-apiserver, kube-scheduler,
# kube-controller-manager, kwok, helm) from the Go module proxy, once per version set.
# Binaries land in $HUBKIT_CACHE/tools/<key>/bin; a rerun with the same versions builds nothing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${HUBKIT_CACHE:-$HOME/.cache/hubkit}"
key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
bin="$cache/tools/$key/bin"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
export GOPATH="${GOPATH:-$cache/gopath}"
mkdir -p "$bin"

have() { [ -x "$bin/$1" ]; }
log() { printf '[platform-build] %s\n' "$*" >&2; }

if ! have etcd; then
  log "building etcd $ETCD_VERSION"
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin/etcd" .)
fi

if ! have kube-apiserver || ! have kube-scheduler || ! have kube-controller-manager; then
  log "building kubernetes $KUBERNETES_VERSION (kube-apiserver, kube-scheduler, kube-controller-manager); cold: 15-25 min on 2 cores"
  minor="$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
  vpkg=k8s.io/component-base/version
  ldflags="-s -w -X $vpkg.gitVersion=$KUBERNETES_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"
  ldflags="$ldflags -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"
  (cd "$here/kubernetes" && go build -trimpath -ldflags "$ldflags" -o "$bin/" \
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
