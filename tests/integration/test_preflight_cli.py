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
        assert "push worker" in finding["hint"]
        after = sandbox.kubectl("get", "deployment", "web", "-n", namespace, "-o",
                                "jsonpath={.metadata.resourceVersion}").stdout
        assert after == before, "nothing may be applied after a failed preflight"
    finally:
        delete_instances(sandbox, [namespace])
