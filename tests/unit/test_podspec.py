"""podspec: one walk of the pod inside every kind that has one."""

from __future__ import annotations

from typing import Any

import pytest

from paless_deploy.core.manifests.podspec import (
    indexed_containers,
    pod_containers,
    pod_spec,
    pod_spec_path,
    spec_container,
    template_annotations,
)

SPEC: dict[str, Any] = {"initContainers": [{"name": "init"}], "containers": [{"name": "app"}, "junk"],
        "ephemeralContainers": [{"name": "debug"}]}
TEMPLATE = {"metadata": {"annotations": {"a": "1"}}, "spec": SPEC}


def workload(kind: str) -> dict:
    if kind == "Pod":
        return {"kind": "Pod", "metadata": {"annotations": {"own": "x"}}, "spec": SPEC}
    if kind == "CronJob":
        return {"kind": kind, "spec": {"jobTemplate": {"spec": {"template": TEMPLATE}}}}
    return {"kind": kind, "spec": {"template": TEMPLATE}}


@pytest.mark.parametrize("kind", ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
                                  "Job", "CronJob"])
def test_every_kind_with_pods(kind: str) -> None:
    obj = workload(kind)
    assert pod_spec(obj) is SPEC
    assert [c["name"] for c in pod_containers(obj)] == ["init", "app", "debug"]
    assert spec_container(obj, "app") == {"name": "app"}
    assert spec_container(obj, "nope") == {}
    assert template_annotations(obj) == ({} if kind == "Pod" else {"a": "1"})


def test_containers_are_the_objects_themselves() -> None:
    obj = workload("Deployment")
    pod_containers(obj)[1]["image"] = "x"
    assert SPEC["containers"][0].pop("image") == "x"


def test_indexed_containers_and_paths() -> None:
    assert [(n, i) for n, i, _ in indexed_containers(workload("Job"))] == [
        ("initContainers", 0), ("containers", 0), ("ephemeralContainers", 0)]
    assert pod_spec_path("CronJob") == "spec.jobTemplate.spec.template.spec"
    assert pod_spec_path("Pod") == "spec"
    assert pod_spec_path("Deployment") == "spec.template.spec"


def test_kinds_without_pods_and_broken_objects() -> None:
    assert pod_spec({"kind": "Service", "spec": {}}) is None
    assert pod_containers({"kind": "ConfigMap"}) == []
    assert template_annotations({"kind": "Service"}) == {}
    assert pod_spec({"kind": "Deployment", "spec": {"template": "oops"}}) is None
    assert pod_containers({"kind": "Deployment"}) == []
