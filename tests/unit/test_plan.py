"""Unit tests of the plan stage: defaults, annotation override, order, errors."""

from __future__ import annotations

import pytest

from paless_deploy.core.errors import ConfigError
from paless_deploy.core.plan import PHASE_ORDER, Phase, phase_of, plan_phases


def obj(kind: str, name: str = "x", component: str | None = None,
        phase: str | None = None) -> dict:
    metadata: dict = {"name": name}
    if component:
        metadata["labels"] = {"app.kubernetes.io/component": component}
    if phase:
        metadata["annotations"] = {"paless.io/phase": phase}
    return {"apiVersion": "v1", "kind": kind, "metadata": metadata}


@pytest.mark.parametrize(("o", "expected"), [
    (obj("Namespace"), "namespace"),
    (obj("ServiceAccount"), "config"),
    (obj("Role"), "config"),
    (obj("RoleBinding"), "config"),
    (obj("Secret"), "config"),
    (obj("ConfigMap"), "config"),
    (obj("NetworkPolicy"), "config"),
    (obj("LimitRange"), "config"),
    (obj("ResourceQuota"), "config"),
    (obj("StorageClass"), "storage"),
    (obj("PersistentVolume"), "storage"),
    (obj("PersistentVolumeClaim"), "storage"),
    (obj("StatefulSet", component="minio"), "object-storage"),
    (obj("Service", component="minio"), "object-storage"),
    (obj("StatefulSet", component="postgres"), "data"),
    (obj("Service", component="redis"), "data"),
    (obj("Job", component="postgres-init"), "data-init"),
    (obj("Job", component="minio"), "data-init"),
    (obj("Deployment", component="scheduler"), "scheduler"),
    (obj("Deployment", component="worker"), "worker"),
    (obj("Deployment", component="web"), "web"),
    (obj("Ingress", component="minio"), "web"),
    (obj("HorizontalPodAutoscaler", component="worker"), "web"),
    (obj("PodDisruptionBudget", component="postgres"), "web"),
    (obj("Deployment", component="something-new"), "web"),
    (obj("Lease"), "web"),
], ids=lambda v: v if isinstance(v, str) else f"{v['kind']}-{v['metadata'].get('labels')}")
def test_defaults(o: dict, expected: str) -> None:
    assert phase_of(o) == expected


def test_annotation_overrides_defaults() -> None:
    assert phase_of(obj("Job", phase="migrate")) == "migrate"
    assert phase_of(obj("Job", component="minio", phase="object-storage-init")) == \
        "object-storage-init"
    assert phase_of(obj("ConfigMap", phase="web")) == "web"


def test_unknown_phase_is_an_error_naming_object_and_valid_phases() -> None:
    with pytest.raises(ConfigError) as err:
        plan_phases([obj("Job", name="migrate", phase="migration")])
    assert "Job/migrate" in err.value.message and "'migration'" in err.value.message
    for name in PHASE_ORDER:
        assert name in err.value.hint


def test_phases_in_design_order_and_empty_ones_skipped() -> None:
    web = obj("Deployment", "web", component="web")
    objects = [
        web,
        obj("Job", "migrate", phase="migrate"),
        obj("Secret", "s"),
        obj("ConfigMap", "c"),
        obj("StatefulSet", "redis", component="redis"),
        obj("Namespace", "ns"),
    ]
    phases = plan_phases(objects)
    assert [p.name for p in phases] == ["namespace", "config", "data", "migrate", "web"]
    assert phases[1] == Phase("config", (objects[2], objects[3]))  # input order kept
    assert phases[-1].objects == (web,)


def test_plan_of_nothing_is_empty() -> None:
    assert plan_phases([]) == []


def test_phase_order_is_the_design_table() -> None:
    assert PHASE_ORDER == (
        "namespace", "config", "storage", "object-storage", "object-storage-init", "data",
        "data-init", "migrate", "scheduler", "worker", "web",
    )


def test_unreadable_policy_annotation_is_an_error_at_plan_time() -> None:
    job = obj("Job", name="migrate", phase="migrate")
    job["spec"] = {"template": {"metadata": {"annotations": {"paless.io/failure-grace": "soon"}}}}
    with pytest.raises(ConfigError) as err:
        plan_phases([obj("ConfigMap", "c"), job])
    assert "Job/migrate: annotation paless.io/failure-grace" in err.value.message


def test_objects_of_a_tree_not_written_for_the_tool() -> None:
    # other labels, no annotations: only kinds and the component label decide
    objects = [
        {"kind": "Deployment", "metadata": {"name": "api", "labels": {"app": "api"}}},
        {"kind": "StatefulSet", "metadata": {"name": "db", "labels": {"tier": "db"}}},
        {"kind": "Service", "metadata": {"name": "api"}},
        {"kind": "PersistentVolumeClaim", "metadata": {"name": "data"}},
        {"kind": "Job", "metadata": {"name": "seed"}},
    ]
    assert [(p.name, [o["metadata"]["name"] for o in p.objects])
            for p in plan_phases(objects)] == [
        ("storage", ["data"]), ("data-init", ["seed"]), ("web", ["api", "db", "api"])]
