"""Every failure the diagnosis knows, through the CLI on the sandbox: code, resource, hint, exit 1.

A tiny project (one app, one Deployment) keeps each case to a few seconds; container
states a simulated node cannot produce come from the sandbox's failure markers, the
rest (unschedulable, quota, progress deadline, failed Job, unbound claim) are real.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.deploy_helpers import (
    clean_env,
    delete_instances,
    tiny_project,
    write_overlay,
)

pytestmark = [pytest.mark.cluster, pytest.mark.docker]


def deployment(annotations: dict | None = None, resources: dict | None = None,
               extra_spec: dict | None = None) -> dict:
    container: dict[str, Any] = {"name": "app", "image": "tiny"}
    if resources:
        container["resources"] = resources
    spec = {"replicas": 1, "selector": {"matchLabels": {"app": "tiny"}},
            "template": {"metadata": {"labels": {"app": "tiny"},
                                      "annotations": annotations or {}},
                         "spec": {"containers": [container]}}}
    spec.update(extra_spec or {})
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "tiny", "labels": {"app.kubernetes.io/component": "web"}},
            "spec": spec}


def job(annotations: dict) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
            "spec": {"backoffLimit": 0, "template": {
                "metadata": {"annotations": annotations},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "app", "image": "tiny"}]}}}}


def claim(storage_class: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "orphan"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                     "resources": {"requests": {"storage": "1Gi"}}}}


QUICK = {"paless.io/failure-grace": "1s", "paless.io/allowed-restarts": "0"}

CASES = {
    "image-pull": ([deployment({"sandbox.paless.io/fail": "image-pull"})], "image-pull", "Pod/tiny-"),
    "crash-loop": ([deployment({"sandbox.paless.io/fail": "crash-loop", **QUICK})], "crash-loop",
                   "Pod/tiny-"),
    "config-error": ([deployment({"sandbox.paless.io/fail": "config-error",
                                  "sandbox.paless.io/message":
                                      "couldn't find key API_TOKEN in Secret t/app-secret",
                                  **QUICK})], "config-error", "Pod/tiny-"),
    "oom": ([deployment({"sandbox.paless.io/fail": "oom", **QUICK},
                        resources={"limits": {"memory": "64Mi"}})], "oom-killed", "Pod/tiny-"),
    "unschedulable": ([deployment(resources={"requests": {"cpu": "64"}})], "unschedulable",
                      "Pod/tiny-"),
    "quota": ([{"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods"},
                "spec": {"hard": {"pods": "0"}}},
               deployment(QUICK, extra_spec={})], "create-failed", "ReplicaSet/tiny-"),
    "progress-deadline": ([deployment({"sandbox.paless.io/fail": "never-ready"},
                                      extra_spec={"progressDeadlineSeconds": 2})],
                          "progress-deadline", "Deployment/tiny"),
    "job-failed": ([job({"sandbox.paless.io/fail": "crash-loop"})], "job-failed", "Job/once"),
    "never-ready": ([deployment({"sandbox.paless.io/fail": "never-ready"})], "not-ready",
                    "Pod/tiny-"),
    "pvc-unknown-class": ([claim("no-such-class")], "provisioning-failed",
                          "PersistentVolumeClaim/orphan"),
    "pvc-no-volume": ([claim("")], "pvc-pending", "PersistentVolumeClaim/orphan"),
}


TOLERATED = {"not-ready", "pvc-pending"}
WAITED = {"never-ready": "Deployment/tiny", "pvc-no-volume": "PersistentVolumeClaim/orphan"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_project(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_failure_is_reported_with_code_resource_hint_and_exit_1(tiny, sandbox, case):
    objects, code, resource = CASES[case]
    write_overlay(tiny, case, objects)
    ns = f"t-fail-{case}-{uuid.uuid4().hex[:5]}"
    try:
        res = subprocess.run(
            [sys.executable, "-m", "paless_deploy", "--project-dir", str(tiny), "--kubeconfig",
             str(sandbox.kubeconfig), "-n", ns, "--overlay", case, "--progress-deadline", "6s",
             "--output", "json", "all"],
            capture_output=True, text=True, env=clean_env({"PROJECT_NAME": "tiny"}),
            timeout=180, check=False)
        assert "Traceback" not in res.stderr, res.stderr
        assert res.returncode == 1, res.stderr
        doc = json.loads(res.stdout)
        assert doc["result"] == "failed" and doc["exit_code"] == 1
        codes = [e["code"] for e in doc["errors"]]
        assert codes[0] == code, (codes, res.stderr[-3000:])
        first = doc["errors"][0]
        assert first["resource"].startswith(resource)
        assert first["hint"] and first["message"]
        assert any(ns in c for c in first["commands"]), first["commands"]
        if code in TOLERATED:
            # tolerated until the progress deadline, whose message names every resource
            # still not ready and what it waits for
            assert codes[-1] == "deadline"
            assert WAITED[case] in doc["errors"][-1]["message"]
    finally:
        delete_instances(sandbox, [ns])
