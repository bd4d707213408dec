"""Prune against the sandbox: only managed objects of this instance that left the set go."""

from __future__ import annotations

import json

import pytest

from paless_deploy.stages.prune import find_prunable, managed_objects, prune

pytestmark = pytest.mark.cluster


def labels(instance: str | None) -> dict:
    if instance is None:
        return {}
    return {"app.kubernetes.io/managed-by": "paless-deploy", "app.kubernetes.io/instance": instance}


def configmap(name: str, instance: str | None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels(instance)}, "data": {"k": "v"}}


def claim(name: str, instance: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "labels": labels(instance)},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}}


def apply(sandbox, namespace: str, *objects: dict) -> None:
    sandbox.kubectl("apply", "-n", namespace, "-f", "-",
                    input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def exists(sandbox, namespace: str, kind: str, name: str) -> bool:
    return sandbox.kubectl("get", "-n", namespace, kind, name, check=False).returncode == 0


@pytest.fixture
def kube(sandbox):
    from paless_deploy.adapters.kube import connect

    return connect(str(sandbox.kubeconfig))


def test_prune_deletes_only_managed_objects_of_this_instance(sandbox, kube, namespace):
    apply(sandbox, namespace,
          configmap("kept", namespace), configmap("removed", namespace),
          configmap("unmanaged", None), configmap("other-instance", "some-other-namespace"),
          claim("data", namespace))
    keep = {("", "ConfigMap", namespace, "kept")}  # (group, kind, namespace, name)

    refs = find_prunable(kube, namespace, keep)
    assert [(r.kind, r.name) for r in refs] == [("ConfigMap", "removed")]

    reports = prune(kube, refs, dry_run=True)
    assert [(r.name, r.action, r.reason) for r in reports] == [("removed", "pruned", "dry run")]
    assert exists(sandbox, namespace, "configmap", "removed"), "a dry run deletes nothing"

    prune(kube, refs)
    assert not exists(sandbox, namespace, "configmap", "removed")
    for name in ("kept", "unmanaged", "other-instance"):
        assert exists(sandbox, namespace, "configmap", name), name
    assert exists(sandbox, namespace, "pvc", "data"), "claims are kept unless data is asked for"


def test_claims_are_pruned_only_with_include_data(kube, sandbox, namespace):
    apply(sandbox, namespace, claim("data", namespace))
    assert find_prunable(kube, namespace, set()) == []
    with_data = find_prunable(kube, namespace, set(), include_data=True)
    assert [(r.kind, r.name, r.holds_data) for r in with_data] == [
        ("PersistentVolumeClaim", "data", True)]
    assert [r.name for r in managed_objects(kube, namespace)] == ["data"]
