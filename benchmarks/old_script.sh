#!/usr/bin/env bash
# What the old scripts/deploy-to-k3s.sh did on `all`, defects included, so that scripts/bench
# can time it. Our own lines, written from the behaviour described in ../shared/baseline.md.
#
# Inputs (environment), run from the project root:
#   PROJECT_NAME, REGISTRY  image names {PROJECT_NAME}-{app}:latest, pushed as {REGISTRY}/...
#   NAMESPACE               where the manifests go and the waits look
#   MANIFESTS               the manifests file (see below)
#   APPS                    "scheduler web worker": the root Dockerfile.<app> images
#   WAIT_TIMEOUT            kubectl wait timeout, 120s in the old script
#   KUBECONFIG, PATH        the sandbox's (pinned kubectl first)
#
# Where this differs from the old script, and why it does not flatter it:
# - The old script applied `kubectl apply -k k8s/overlays/<overlay>` to manifests that were
#   real YAML after envsubst. Our overlay holds ${VAR} placeholders and bare app image names
#   that only `paless-deploy render` resolves, so MANIFESTS is `paless-deploy render
#   --show-secrets` output (app images rewritten to :latest, as the old manifests named them),
#   applied the same way: one client-side apply of everything at once, no ordering.
# - Its discovery (`find -maxdepth 2 -name Dockerfile`) would find none of the root
#   Dockerfile.<app> files and build nothing; APPS names them so the images are built as a
#   user of the old script had to have them built: always, sequentially, as :latest.
# Defects kept: no tag but :latest (a re-push rolls nothing out); always rebuild and push;
# one apply; waits on `app=<app>`, a label our pods do not carry (they have
# app.kubernetes.io/component), so each wait fails ("no matching resources found") or times
# out; a failed wait prints pods and events and the run still ends "Deployment complete!", 0.
set -e

: "${PROJECT_NAME:?}" "${REGISTRY:?}" "${NAMESPACE:?}" "${MANIFESTS:?}" "${APPS:?}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-120s}"

for app in $APPS; do
    echo "Building ${app}..."
    docker build -t "${PROJECT_NAME}-${app}:latest" -f "Dockerfile.${app}" .
    docker tag "${PROJECT_NAME}-${app}:latest" "${REGISTRY}/${PROJECT_NAME}-${app}:latest"
    echo "Pushing ${app}..."
    docker push "${REGISTRY}/${PROJECT_NAME}-${app}:latest"
done

echo "Applying manifests..."
kubectl apply -f "${MANIFESTS}"

for app in $APPS; do
    echo "Waiting for ${app}..."
    if ! kubectl wait --for=condition=ready pod -l "app=${app}" -n "${NAMESPACE}" \
            --timeout="${WAIT_TIMEOUT}"; then
        echo "Warning: ${app} pods are not ready yet"
        kubectl get pods -n "${NAMESPACE}"
        kubectl get events -n "${NAMESPACE}" --sort-by=.lastTimestamp | tail -10
    fi
done

echo "Deployment complete!"
kubectl get pods -n "${NAMESPACE}" -o wide
echo "Logs:   kubectl logs -n ${NAMESPACE} -l app=web -f"
echo "Status: kubectl get pods -n ${NAMESPACE}"
