"""diagnose on live sandbox objects: each real failure (or marker state) gives its code.

The situations are the ones tests/fixtures/recorded/record.py records; here they are
created fresh in a test namespace, waited for with a watch on the namespace's events,
and the diagnosis of the live objects is asserted.
"""

from __future__ import annotations

import json
import time

import pytest

from paless_deploy.core.apiviews import Node
from paless_deploy.core.diagnosis.claims import diagnose_pvc
from paless_deploy.core.diagnosis.findings import Finding, Policy
from paless_deploy.core.diagnosis.pods import diagnose_pod
from paless_deploy.core.diagnosis.workloads import (
    diagnose_deployment,
    diagnose_job,
    diagnose_replicaset,
    diagnose_statefulset,
)
from tests.fixtures.recorded import record

pytestmark = pytest.mark.cluster

# case -> (code expected among the findings or None for "no finding", fatal?)
EXPECTED: dict[str, tuple[str | None, bool]] = {
    "image-pull": ("image-pull", True),
    "crash-loop": ("crash-loop", False),
    "config-error": ("config-error", True),
    "oom": ("oom-killed", False),
    "never-ready": ("not-ready", False),
    "unschedulable-cpu": ("unschedulable", True),
    "unschedulable-pvc": ("pvc-pending", False),
    "pvc-missing-class": ("provisioning-failed", True),
    "pvc-wffc": (None, False),
    "quota": ("create-failed", True),
    "progress-deadline": ("progress-deadline", True),
    "job-failed": ("job-failed", True),
}

LISTS = {
    "Deployment": ("AppsV1Api", "list_namespaced_deployment"),
    "ReplicaSet": ("AppsV1Api", "list_namespaced_replica_set"),
    "StatefulSet": ("AppsV1Api", "list_namespaced_stateful_set"),
    "Job": ("BatchV1Api", "list_namespaced_job"),
    "Pod": ("CoreV1Api", "list_namespaced_pod"),
    "PersistentVolumeClaim": ("CoreV1Api", "list_namespaced_persistent_volume_claim"),
}


def snapshot(api, namespace: str) -> dict:
    """The namespace's workloads, pods, claims and events as plain API JSON."""
    from kubernetes import client

    items = []
    for kind, (group, method) in LISTS.items():
        for obj in getattr(getattr(client, group)(api), method)(namespace).items:
            items.append({**api.sanitize_for_serialization(obj), "kind": kind})
    events = [api.sanitize_for_serialization(e)
              for e in client.CoreV1Api(api).list_namespaced_event(namespace).items]
    return {"items": items, "events": events}


def wait_for_state(api, namespace: str, ready, timeout: float = 20.0) -> dict:
    """Re-read the namespace on every event (and at least every 2 s) until `ready`."""
    from kubernetes import client, watch

    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    while True:
        snap = snapshot(api, namespace)
        if ready(snap):
            return snap
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"state not reached in {timeout}s: {json.dumps(snap)[:2000]}")
        w = watch.Watch()
        for _ in w.stream(core.list_namespaced_event, namespace, timeout_seconds=2):
            w.stop()


def diagnose_all(snap: dict, policy: Policy, classes: dict[str, dict]) -> list[Finding]:
    events, findings = snap["events"], []
    pods = [o for o in snap["items"] if o["kind"] == "Pod"]
    for obj in snap["items"]:
        kind = obj["kind"]
        if kind == "Pod":
            findings += diagnose_pod(obj, events, policy, None)
        elif kind == "ReplicaSet":
            findings += diagnose_replicaset(obj, events, policy, None)
        elif kind == "Deployment":
            findings += diagnose_deployment(obj, events, policy)
        elif kind == "StatefulSet":
            findings += diagnose_statefulset(obj, events, policy, None)
        elif kind == "Job":
            findings += diagnose_job(obj, events, policy, pods=pods)
        elif kind == "PersistentVolumeClaim":
            name = obj["spec"].get("storageClassName")
            findings += diagnose_pvc(obj, events, classes.get(name or ""), policy, None)
    return findings


@pytest.fixture(scope="module")
def cluster_policy(kube_api):
    from kubernetes import client

    nodes = [kube_api.sanitize_for_serialization(n)
             for n in client.CoreV1Api(kube_api).list_node().items]
    return Policy(registry="127.0.0.1:5000").with_nodes(Node.of(n) for n in nodes)


@pytest.fixture(scope="module")
def storage_classes(kube_api):
    from kubernetes import client

    return {c.metadata.name: kube_api.sanitize_for_serialization(c)
            for c in client.StorageV1Api(kube_api).list_storage_class().items}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_live_failure_is_diagnosed(sandbox, kube_api, namespace, cluster_policy,
                                   storage_classes, case):
    manifests, ready = record.CASES[case]
    for manifest in manifests:
        sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
        if manifest["kind"] == "ResourceQuota":
            wait_for_quota(sandbox, namespace)
    snap = wait_for_state(kube_api, namespace, ready)
    findings = diagnose_all(snap, cluster_policy, storage_classes)
    code, fatal = EXPECTED[case]
    if code is None:
        assert findings == []
        return
    matching = [f for f in findings if f.code == code]
    assert matching, [(f.code, f.message) for f in findings]
    assert matching[0].fatal is fatal
    assert f"-n {namespace} " in " ".join(matching[0].commands)
    assert all(not f.fatal for f in diagnose_all(snap, Policy(tolerate_all=True),
                                                 storage_classes))


def wait_for_quota(sandbox, namespace: str, timeout: float = 10.0) -> None:
    """Pods are counted against a quota only once the controller has filled its status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = sandbox.kubectl("get", "resourcequota", "pods", "-n", namespace, "-o", "json").stdout
        if json.loads(out).get("status", {}).get("used"):
            return
        time.sleep(0.2)
    raise AssertionError("ResourceQuota status not filled in")
