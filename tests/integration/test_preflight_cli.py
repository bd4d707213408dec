"""Preflight through the CLI on the sandbox: problems found before anything is applied.

A pod referencing a Secret key that exists nowhere, and an image the registry does not
have, each exit 1 with the finding's code, resource and hint, and nothing applied.
"""

from __future__ import annotations

import uuid

import pytest

from tests.integration.deploy_helpers import add_overlay, delete_instances, make_project, run_cli

pytestmark = [pytest.mark.cluster, pytest.mark.docker]

MISSING_KEY = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../dev
patches:
- patch: |
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: worker}
    spec:
      template:
        spec:
          containers:
          - name: worker
            env:
            - name: SMTP_PASSWORD
              valueFrom:
                secretKeyRef: {name: paless-secret, key: SMTP_PASSWORD}
"""


def test_a_missing_secret_key_fails_before_anything_is_applied(tmp_path, sandbox):
    project = make_project(tmp_path / "proj")
    add_overlay(project, "missing-key", MISSING_KEY)
    ns = f"t-preflight-key-{uuid.uuid4().hex[:6]}"
    try:
        run = run_cli(project, sandbox.kubeconfig, ns, "--overlay", "missing-key", "all")
        assert run.returncode == 1, run
        finding = run.doc["errors"][0]
        assert finding["code"] == "missing-reference"
        assert finding["resource"] == "Deployment/worker"
        assert "SMTP_PASSWORD" in finding["message"] and "paless-secret" in finding["message"]
        assert "secretKeyRef" in finding["message"]
        assert finding["hint"]
        assert run.doc["errors"][-1]["code"] == "preflight"
        assert run.doc["phases"] == []
        # nothing applied: not even the namespace exists
        missing = sandbox.kubectl("get", "namespace", ns, check=False)
        assert missing.returncode != 0 and "NotFound" in missing.stderr
    finally:
        delete_instances(sandbox, [ns])


def test_an_image_missing_from_the_registry_fails_before_applying(tmp_path, sandbox, namespace):
    project = make_project(tmp_path / "proj")
    try:
        assert run_cli(project, sandbox.kubeconfig, namespace, "all").returncode == 0
        # The registry lost the image the worker runs (wiped, garbage-collected): simulate
        # it by pointing the running worker at a tag that was never pushed.
        gone = f"localhost:5000/paless-worker:gone{uuid.uuid4().hex[:8]}"
        sandbox.kubectl("set", "image", "deployment/worker", f"worker={gone}", "-n", namespace)
        before = sandbox.kubectl("get", "deployment", "web", "-n", namespace, "-o",
                                 "jsonpath={.metadata.resourceVersion}").stdout
        run = run_cli(project, sandbox.kubeconfig, namespace, "deploy", "web")
        assert run.returncode == 1, run
        finding = run.doc["errors"][0]
        assert finding["code"] == "missing-image"
        assert finding["resource"] == "image/worker"
        assert gone in finding["message"]
        # the worker is kept as it runs; building its own immutable tag is the way out
        assert "deploy worker" in finding["hint"], finding
        after = sandbox.kubectl("get", "deployment", "web", "-n", namespace, "-o",
                                "jsonpath={.metadata.resourceVersion}").stdout
        assert after == before, "nothing may be applied after a failed preflight"
    finally:
        delete_instances(sandbox, [namespace])


SIDECAR = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../dev
patches:
- patch: |
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: worker}
    spec:
      template:
        spec:
          containers:
          - name: sidecar
            image: localhost:5000/ghost-sidecar-%s:never-pushed
"""


def test_an_image_of_someone_else_missing_from_our_registry_is_a_warning(tmp_path, sandbox):
    # not ours to build, and a node may have it already: said, but not in the way
    project = make_project(tmp_path / "proj")
    tag = uuid.uuid4().hex[:6]
    add_overlay(project, "sidecar", SIDECAR % tag)
    ns = f"t-preflight-side-{tag}"
    try:
        run = run_cli(project, sandbox.kubeconfig, ns, "--overlay", "sidecar", "all")
        assert run.returncode == 0, (run.document or {}).get("errors") or run.stderr[-2000:]
        ref = f"localhost:5000/ghost-sidecar-{tag}:never-pushed"
        assert f"The image {ref} is not in the registry localhost:5000" in run.stderr, run
        images = sandbox.kubectl("get", "deployment", "worker", "-n", ns, "-o",
                                 "jsonpath={.spec.template.spec.containers[*].image}").stdout
        assert ref in images.split(), images
    finally:
        delete_instances(sandbox, [ns])
