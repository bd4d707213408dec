#!/usr/bin/env bash
# BuildKit for the sandbox, built from Go modules (no image or release binary can be
# downloaded here):
#  - CACHE_DIR/bin/docker-buildx: the buildx CLI plugin, linked as the user's
#    `docker buildx` when the docker CLI has none (paless-deploy then builds with
#    `docker buildx build`, talking to the engine's BuildKit);
#  - REGISTRY/paless-sandbox/dockerfile:1: the Dockerfile frontend of BUILDKIT_VERSION as an
#    image, for engines whose built-in frontend predates heredocs and COPY --link (Debian's
#    dockerd 20.10): `DOCKERFILE_FRONTEND=REGISTRY/paless-sandbox/dockerfile:1` or
#    `# syntax=REGISTRY/paless-sandbox/dockerfile:1`.
# Usage: build-buildx.sh CACHE_DIR BUILDX_VERSION BUILDKIT_VERSION REGISTRY
# Idempotent: what exists is neither rebuilt nor pushed again.
set -euo pipefail
cache=$1 buildx=$2 buildkit=$3 registry=$4
bin="$cache/bin"
work="$cache/wrapper"
mkdir -p "$bin" "$work"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

step() { printf '[buildx] %s\n' "$*"; }

if [ ! -x "$bin/docker-buildx" ]; then
  step "building docker-buildx $buildx (github.com/docker/buildx/cmd/buildx)"
  pkg=github.com/docker/buildx
  GOBIN="$work/gobin" go install -trimpath \
    -ldflags "-s -w -X $pkg/version.Version=$buildx -X $pkg/version.Package=$pkg" \
    "$pkg/cmd/buildx@$buildx"
  mv "$work/gobin/buildx" "$bin/docker-buildx"
fi

if [ ! -x "$bin/dockerfile-frontend" ]; then
  # BuildKit's go.mod has exclude directives, so `go install pkg@version` refuses it: build
  # from a wrapper module instead.
  step "building the Dockerfile frontend of github.com/moby/buildkit $buildkit"
  mkdir -p "$work/frontend"
  cat > "$work/frontend/go.mod" <<EOF
module paless.io/sandbox-dockerfile-frontend

go 1.24.0

require github.com/moby/buildkit $buildkit
EOF
  cat > "$work/frontend/tools.go" <<'EOF'
//go:build tools

package tools

import _ "github.com/moby/buildkit/frontend/dockerfile/cmd/dockerfile-frontend"
EOF
  rm -f "$work/frontend/go.sum"
  (cd "$work/frontend" && go mod tidy >/dev/null &&
    go build -trimpath -tags "netgo osusergo" -ldflags "-s -w" -o "$bin/dockerfile-frontend.tmp" \
      github.com/moby/buildkit/frontend/dockerfile/cmd/dockerfile-frontend)
  mv "$bin/dockerfile-frontend.tmp" "$bin/dockerfile-frontend"
fi

plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
if ! docker buildx version >/dev/null 2>&1; then
  step "installing $plugins/docker-buildx -> $bin/docker-buildx"
  mkdir -p "$plugins"
  ln -sfn "$bin/docker-buildx" "$plugins/docker-buildx"
fi

image="$registry/paless-sandbox/dockerfile:1"
accept="application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
if ! curl -sfI -H "Accept: $accept" "http://$registry/v2/paless-sandbox/dockerfile/manifests/1" \
    >/dev/null; then
  step "pushing the Dockerfile frontend image $image"
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  cp "$bin/dockerfile-frontend" "$ctx/"
  cat > "$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY dockerfile-frontend /bin/dockerfile-frontend
LABEL moby.buildkit.frontend.network.none="true"
LABEL moby.buildkit.frontend.caps="moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts"
ENTRYPOINT ["/bin/dockerfile-frontend"]
EOF
  docker build -q -t "$image" "$ctx" >/dev/null
  docker push -q "$image" >/dev/null
fi
step "docker buildx $buildx and $image ready"
