"""Any tree, item by item through the CLI on the sandbox, on small hand-written overlays.

The whole hand-written tree is tests/integration/test_any_tree.py; these are the
cases it cannot show: an HPA made outside the tree, a volume another namespace owns, a
tree whose components nothing names, the waiting line, --strict, images of another
PROJECT_NAME, status as a gate, doctor reading the classes the manifests name.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.deploy_helpers import clean_env, delete_instances
from tests.integration.test_failures_cli import claim, deployment, write_overlay
from tests.integration.test_failures_cli import tiny as tiny  # noqa: PLC0414 - the fixture

pytestmark = [pytest.mark.cluster, pytest.mark.docker]


def cli(tiny: Path, sandbox, ns: str, overlay: str, *args: str, json_output: bool = True,
        timeout: float = 180) -> tuple[subprocess.CompletedProcess, dict | None]:
    argv = [sys.executable, "-m", "paless_deploy", "--project-dir", str(tiny), "--kubeconfig",
            str(sandbox.kubeconfig), "-n", ns, "--overlay", overlay,
            *(["--output", "json"] if json_output else []), *args]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                         env=clean_env({"PROJECT_NAME": "tiny"}))
    assert "Traceback" not in res.stderr, res.stderr
    return res, json.loads(res.stdout) if json_output else None


@pytest.fixture
def ns(sandbox):
    name = f"t-tree-{uuid.uuid4().hex[:6]}"
    yield name
    delete_instances(sandbox, [name])


def probed(**kw: object) -> dict:
    obj = deployment(**kw)  # type: ignore[arg-type]
    obj["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["true"]}}
    return obj


def test_an_hpa_made_outside_the_tree_is_named_in_the_conflict(tiny, sandbox, ns):
    write_overlay(tiny, "scaled", [probed()])
    res, doc = cli(tiny, sandbox, ns, "scaled", "all")
    assert res.returncode == 0, res.stderr
    sandbox.kubectl("autoscale", "deployment", "tiny", "--min=2", "--max=3", "-n", ns)
    sandbox.kubectl("wait", "--for=jsonpath={.spec.replicas}=2", "deployment/tiny", "-n", ns,
                    "--timeout=60s")
    res, doc = cli(tiny, sandbox, ns, "scaled", "all")
    assert res.returncode == 1, res.stderr
    error = doc["errors"][-1]
    assert error["code"] == "apply-conflict"
    assert "spec.replicas is owned by kube-controller-manager" in error["message"]
    assert "HorizontalPodAutoscaler/tiny" in error["message"]
    assert "remove it from the manifest" in error["hint"]


def test_destroy_keeps_a_volume_bound_to_another_namespace(tiny, sandbox, ns):
    other = f"t-tree-owner-{uuid.uuid4().hex[:6]}"
    volume = f"shared-{uuid.uuid4().hex[:6]}"
    write_overlay(tiny, "plain", [probed()])
    res, _ = cli(tiny, sandbox, ns, "plain", "all")
    assert res.returncode == 0, res.stderr
    # a volume labelled for `ns` (as an older version of the tool did) but bound to a claim
    # of another namespace: that namespace's data
    sandbox.kubectl("create", "namespace", other)
    pv = {"apiVersion": "v1", "kind": "PersistentVolume",
          "metadata": {"name": volume, "labels": {"app.kubernetes.io/managed-by": "paless-deploy",
                                                  "app.kubernetes.io/instance": ns}},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                   "hostPath": {"path": f"/tmp/{volume}"}, "storageClassName": "manual",
                   "claimRef": {"namespace": other, "name": "data"}}}
    sandbox.kubectl("apply", "-f", "-", input=json.dumps(pv))
    try:
        res, doc = cli(tiny, sandbox, ns, "plain", "destroy", "--yes")
        assert res.returncode == 0, res.stderr
        deleted = {(d["kind"], d["name"]) for d in doc["deleted"]}
        assert ("PersistentVolume", volume) not in deleted
        assert sandbox.kubectl("get", "pv", volume, check=False).returncode == 0
    finally:
        sandbox.kubectl("delete", "namespace", other, "--wait=false", check=False)
        sandbox.kubectl("delete", "pv", volume, "--wait=false", check=False)


def test_components_nothing_names_are_a_warning_only_in_a_tree_like_ours(tiny, sandbox, ns):
    objects = []
    for name in ("svc0", "svc1", "svc2", "postgres", "redis"):
        obj = probed()
        obj["metadata"] = {"name": name}
        obj["spec"]["selector"]["matchLabels"] = {"x": name}
        obj["spec"]["template"]["metadata"]["labels"] = {"x": name}
        objects.append(obj)
    write_overlay(tiny, "anonymous", objects)
    res, doc = cli(tiny, sandbox, ns, "anonymous", "plan")
    assert res.returncode == 0, res.stderr
    assert any("3 of 5 workloads" in w and "fell into the last phase" in w
               for w in doc["warnings"])
    # without a Paless component, nothing to advise: the tree is ordered by references
    write_overlay(tiny, "anonymous", objects[:3])
    res, doc = cli(tiny, sandbox, ns, "anonymous", "plan")
    assert res.returncode == 0, res.stderr
    assert not any("fell into the last phase" in w for w in doc["warnings"])


def test_the_waiting_line_names_what_blocks(tiny, sandbox, ns):
    stuck = probed(extra_spec={})
    stuck["spec"]["template"]["spec"]["nodeSelector"] = {"no-such-label": "x"}
    write_overlay(tiny, "stuck", [stuck])
    res, _ = cli(tiny, sandbox, ns, "stuck", "--progress-deadline", "4s", "all",
                 "--tolerate-failures", json_output=False)
    assert res.returncode == 1, res.stderr
    waiting = [line for line in res.stderr.splitlines() if "waiting" in line and
               "Deployment/tiny" in line]
    assert any("not scheduled" in line and "node affinity/selector" in line
               for line in waiting), res.stderr


def test_strict_makes_lint_warnings_exit_2_before_anything_is_built(tiny, sandbox, ns):
    write_overlay(tiny, "unprobed", [deployment()])
    res, doc = cli(tiny, sandbox, ns, "unprobed", "all", "--strict")
    assert res.returncode == 2, res.stderr
    assert doc["errors"][-1]["code"] == "strict"
    assert "has no readiness probe" in doc["errors"][-1]["message"]
    assert doc["images"] == [] and doc["phases"] == []
    assert sandbox.kubectl("get", "namespace", ns, check=False).returncode != 0


def test_a_tree_for_project_name_app_is_told_so(tiny, sandbox, ns):
    obj = probed()
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = "localhost:5000/app-tiny:latest"
    write_overlay(tiny, "oldname", [obj])
    res, doc = cli(tiny, sandbox, ns, "oldname", "all")
    assert res.returncode == 2, res.stderr
    error = doc["errors"][-1]
    assert error["code"] == "unknown-app-image" and "PROJECT_NAME=app" in error["hint"]


def test_status_is_a_gate(tiny, sandbox, ns):
    write_overlay(tiny, "pull", [probed(annotations={"sandbox.paless.io/fail": "image-pull"})])
    res, _ = cli(tiny, sandbox, ns, "pull", "all")
    assert res.returncode == 1
    res, doc = cli(tiny, sandbox, ns, "pull", "status")
    assert res.returncode == 1 and doc["result"] == "failed" and not doc["status"]["healthy"]


def test_doctor_checks_the_classes_the_manifests_name(tiny, sandbox, ns):
    write_overlay(tiny, "classes", [claim("no-such-class")])
    res, doc = cli(tiny, sandbox, ns, "classes", "doctor")
    checks = {c["name"]: c for c in doc["checks"]}
    check = checks["StorageClass no-such-class"]
    assert check["status"] == "FAIL" and "PersistentVolumeClaim/orphan" in check["detail"]
    assert "storageClassName" in check["fix"]
    assert res.returncode == 1


@pytest.mark.parametrize(("case", "extra", "words"), [
    ("unknown-kind", {"apiVersion": "example.com/v1", "kind": "Widget",
                      "metadata": {"name": "w"}, "spec": {}},
     "does not serve Widget in example.com/v1"),
    ("bad-value", "three", "replicas"),
    ("unknown-field", {"replicaz": 2}, ".spec.replicaz"),
])
def test_every_object_is_validated_before_anything_is_applied(tiny, sandbox, ns, case, extra,
                                                              words):
    good = probed()
    good["metadata"]["name"] = "early"
    good["metadata"]["annotations"] = {"paless.io/phase": "config"}
    bad = probed()
    if case == "bad-value":
        bad["spec"]["replicas"] = extra
        objects = [good, bad]
    elif case == "unknown-field":
        bad["spec"].update(extra)
        objects = [good, bad]
    else:
        objects = [good, bad, extra]
    write_overlay(tiny, f"invalid-{case}", objects)
    res, doc = cli(tiny, sandbox, ns, f"invalid-{case}", "all")
    assert res.returncode == 2, res.stderr
    error = doc["errors"][-1]
    code = "unknown-kind" if case == "unknown-kind" else "invalid-manifest"
    assert error["code"] == code and words in error["message"]
    assert "Nothing was applied" in error["message"]
    # the object of the first phase was not applied either
    assert sandbox.kubectl("get", "deployment", "early", "-n", ns, check=False).returncode != 0
