#!/usr/bin/env bash
# Builds the sandbox's control plane and its real node (kubelet, kube-proxy, pause and
# the node's helpers) from Go modules into a version-keyed cache dir.
# Usage: build-binaries.sh CACHE_DIR K8S_VERSION ETCD_VERSION KWOK_VERSION SRC_DIR
# Idempotent: a binary already in CACHE_DIR/bin is not rebuilt.
set -euo pipefail
cache=$1 k8s=$2 etcd=$3 kwok=$4 src=$5
bin="$cache/bin"
work="$cache/wrapper"
mkdir -p "$bin" "$work"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

step() { printf '[build] %s\n' "$*"; }

staging_minor="v0.${k8s#v1.}"   # v1.34.4 -> v0.34.4
if [ ! -f "$work/go.mod" ] || ! grep -q "k8s.io/kubernetes $k8s" "$work/go.mod"; then
  step "downloading k8s.io/kubernetes@$k8s"
  kdir=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$k8s" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  [ -d "$kdir" ] || { echo "cannot download k8s.io/kubernetes@$k8s" >&2; exit 1; }
  godebug=$(grep -E '^godebug ' "$kdir/go.mod" || true)
  # Every staging module is required at v0.0.0 and replaced by a local path in
  # Kubernetes' own go.mod; a dependency's replace lines are ignored, so ours
  # points each one at its published v0.X.Y release instead.
  staging=$(awk '/^\t*k8s\.io\/[a-z0-9-]+ v0\.0\.0$/ {print $1}' "$kdir/go.mod" | sort -u)
  {
    echo "module paless.io/sandbox-binaries"
    echo
    echo "go 1.24.0"
    echo
    [ -n "$godebug" ] && echo "$godebug" && echo
    echo "require ("
    echo "	k8s.io/kubernetes $k8s"
    echo "	go.etcd.io/etcd/server/v3 $etcd"
    for m in $staging; do echo "	$m $staging_minor"; done
    echo ")"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m $staging_minor"; done
    echo ")"
  } > "$work/go.mod"
  rm -f "$work/go.sum"
fi
rm -rf "$work/cmd" && mkdir -p "$work/cmd"
cp -r "$src/cmd/." "$work/cmd/"
cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
GO
(cd "$work" && step "resolving modules (go mod tidy)" && go mod tidy >/dev/null)

date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
major=${k8s#v}; major=${major%%.*}
minor=${k8s#v*.}; minor=${minor%%.*}
ld="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld="$ld -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date -X $pkg.gitCommit=paless-sandbox"
done

build() { # name package [ldflags]
  local name=$1 pkg=$2 flags=${3:-$ld}
  if [ -x "$bin/$name" ]; then step "$name: cached"; return; fi
  step "building $name ($pkg)"
  (cd "$work" && go build -trimpath -ldflags "$flags" -o "$bin/$name.tmp" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
}
build etcd ./cmd/etcd "-s -w"
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build kubectl k8s.io/kubernetes/cmd/kubectl
build local-path-provisioner ./cmd/local-path-provisioner "-s -w"
build kubelet k8s.io/kubernetes/cmd/kubelet
build kube-proxy k8s.io/kubernetes/cmd/kube-proxy
build pause ./cmd/pause "-s -w"
build realnode-sweep ./cmd/realnode-sweep "-s -w"
if [ ! -x "$bin/kwok" ]; then
  step "building kwok $kwok"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$kwok"
fi
step "all binaries present in $bin"
