#!/usr/bin/env bash
# Builds Helm 4 from Go modules (helm.sh/helm/v4 on the module proxy) into the sandbox's
# binary cache, keyed by version, once: scripts/bench --peers compares paless-deploy with it.
#
# Usage: benchmarks/build-helm.sh [VERSION]     (default below; prints the binary's path)
# Cache: ${PALESS_SANDBOX_CACHE:-~/.cache/paless-sandbox}/helm-VERSION/bin/helm
# Built as Helm's Makefile builds a release (CGO off, -trimpath, the version stamped in),
# so `helm version` names the release. Idempotent: a cached binary is not rebuilt.
set -euo pipefail
version=${1:-v4.3.2}
cache=${PALESS_SANDBOX_CACHE:-$HOME/.cache/paless-sandbox}/helm-$version
bin=$cache/bin/helm
if [ -x "$bin" ]; then
    echo "$bin"
    exit 0
fi
command -v go >/dev/null || { echo "build-helm: Go is not installed (needed to build Helm)" >&2; exit 1; }
mkdir -p "$cache/bin"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
ld="-s -w -X helm.sh/helm/v4/internal/version.version=$version"
ld="$ld -X helm.sh/helm/v4/internal/version.metadata= -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
echo "[build-helm] building helm $version from helm.sh/helm/v4 (Go modules) into $cache/bin" >&2
start=$(date +%s)
# `go install pkg@version` builds the module with its own go.mod and go.sum (no replace
# directives in Helm's), verified against the checksum database like any module download.
GOBIN="$cache/bin.tmp" go install -trimpath -ldflags "$ld" "helm.sh/helm/v4/cmd/helm@$version" >&2
mv "$cache/bin.tmp/helm" "$bin"
rmdir "$cache/bin.tmp"
echo "[build-helm] built in $(( $(date +%s) - start ))s: $("$bin" version --short)" >&2
echo "$bin"
