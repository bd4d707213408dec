"""--rollback-on-failure on the sandbox: a failed change goes back to the previous template.

The worker Deployment is deployed healthy, then changed so that it crash-loops; the
failed run rolls it back, reports what it rolled back, and still exits 1.
"""

from __future__ import annotations

import pytest

from tests.integration.deploy_helpers import (
    add_overlay,
    delete_instances,
    get_json,
    make_project,
    run_cli,
)

pytestmark = [pytest.mark.cluster, pytest.mark.docker]

CRASHING_WORKER = """\
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
        metadata:
          annotations:
            sandbox.paless.io/fail: crash-loop
            paless.io/allowed-restarts: "0"
"""


def test_rollback_on_failure_restores_the_previous_template(tmp_path, sandbox, namespace):
    project = make_project(tmp_path / "proj")
    add_overlay(project, "crashing", CRASHING_WORKER)
    try:
        first = run_cli(project, sandbox.kubeconfig, namespace, "all")
        assert first.returncode == 0, first
        before = get_json(sandbox, "deployment", "worker", "-n", namespace)
        assert "sandbox.paless.io/fail" not in (
            before["spec"]["template"]["metadata"].get("annotations") or {})

        failed = run_cli(project, sandbox.kubeconfig, namespace, "--overlay", "crashing",
                         "all", "--rollback-on-failure")
        assert failed.returncode == 1, failed
        doc = failed.doc
        assert doc["result"] == "failed"
        assert doc["errors"][0]["code"] == "crash-loop"
        assert doc["rolled_back"] == ["Deployment/worker"]
        assert any("Rolled back: Deployment/worker" in w for w in doc["warnings"])

        after = get_json(sandbox, "deployment", "worker", "-n", namespace)
        annotations = after["spec"]["template"]["metadata"].get("annotations") or {}
        assert "sandbox.paless.io/fail" not in annotations
        assert after["metadata"]["generation"] > before["metadata"]["generation"]
        assert (after["spec"]["template"]["spec"]["containers"][0]["image"]
                == before["spec"]["template"]["spec"]["containers"][0]["image"])
    finally:
        delete_instances(sandbox, [namespace])


def test_without_rollback_the_failed_template_stays(tmp_path, sandbox, namespace):
    project = make_project(tmp_path / "proj")
    add_overlay(project, "crashing", CRASHING_WORKER)
    try:
        assert run_cli(project, sandbox.kubeconfig, namespace, "all").returncode == 0
        failed = run_cli(project, sandbox.kubeconfig, namespace, "--overlay", "crashing", "all")
        assert failed.returncode == 1, failed
        assert "rolled_back" not in failed.doc
        after = get_json(sandbox, "deployment", "worker", "-n", namespace)
        assert after["spec"]["template"]["metadata"]["annotations"][
            "sandbox.paless.io/fail"] == "crash-loop"
    finally:
        delete_instances(sandbox, [namespace])


def test_redeploying_the_fix_after_a_failure_succeeds(tmp_path, sandbox, namespace):
    """The old, failing ReplicaSet's pods are going away: they must not fail the fix."""
    project = make_project(tmp_path / "proj")
    add_overlay(project, "crashing", CRASHING_WORKER)
    try:
        assert run_cli(project, sandbox.kubeconfig, namespace, "all").returncode == 0
        for _ in range(3):
            failed = run_cli(project, sandbox.kubeconfig, namespace, "--overlay", "crashing", "all")
            assert failed.returncode == 1, failed
            fixed = run_cli(project, sandbox.kubeconfig, namespace, "all")
            assert fixed.returncode == 0, fixed
            assert fixed.doc["errors"] == []
    finally:
        delete_instances(sandbox, [namespace])
