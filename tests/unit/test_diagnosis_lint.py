"""diagnosis.lint: duplicate schedulers, :latest images, unreadable policy annotations."""

from __future__ import annotations

import pytest

from paless_deploy.core.configuration.variables import VARIABLES
from paless_deploy.core.diagnosis.lint import check_policy_annotations, manifest_warnings
from paless_deploy.core.errors import ConfigError
from paless_deploy.stages.render import render_overlay

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def scheduler(replicas: int = 1, strategy: str = "Recreate", image: str = "r/s:abc") -> dict:
    return {"kind": "Deployment",
            "metadata": {"name": "scheduler", "labels": {"app.kubernetes.io/component": "scheduler"}},
            "spec": {"replicas": replicas, "strategy": {"type": strategy},
                     "template": {"spec": {"containers": [
                         {"name": "beat", "image": image,
                          "readinessProbe": {"exec": {"command": ["true"]}}}]}}}}


def test_single_recreate_scheduler_with_a_tag_is_fine():
    assert manifest_warnings([scheduler()]) == []


def test_two_scheduler_replicas_warn_about_duplicate_tasks():
    (w,) = manifest_warnings([scheduler(replicas=2)])
    assert "twice" in w and "Deployment/scheduler" in w


def test_rolling_scheduler_warns_about_recreate():
    (w,) = manifest_warnings([scheduler(strategy="RollingUpdate")])
    assert "Recreate" in w


def test_hpa_on_the_scheduler_warns():
    hpa = {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "s"},
           "spec": {"scaleTargetRef": {"name": "scheduler"}}}
    assert any("no HPA" in w for w in manifest_warnings([scheduler(), hpa]))


def test_latest_and_untagged_images_warn_but_digests_do_not():
    assert any(":latest" in w for w in manifest_warnings([scheduler(image="r/s:latest")]))
    assert any("never rolled out" in w for w in manifest_warnings([scheduler(image="r/s")]))
    assert manifest_warnings([scheduler(image="r/s@sha256:" + "a" * 64)]) == []


def test_the_shipped_dev_overlay_has_no_warnings():
    values = {v.name: v.default for v in VARIABLES if v.default is not None}
    values["PALESS_NAMESPACE"] = "paless"
    refs = {app: f"localhost:5000/paless-{app}:0123456789ab" for app in ("web", "worker", "scheduler")}
    objects = render_overlay(REPO, "dev", "paless", values, refs)
    # on a single-node k3s laptop; on several nodes the shared ReadWriteOnce claims warn
    assert manifest_warnings(objects, refs.values(), node_count=1) == []
    shared = manifest_warnings(objects, refs.values(), node_count=3)
    # (the media claim no longer: dev's app pods mount the bucket on volumes of their own)
    assert {w.split(" ")[0] for w in shared} == {"PersistentVolumeClaim/paperless-data-pvc"}


def test_untagged_init_containers_warn_too():
    obj = scheduler()
    obj["spec"]["template"]["spec"]["initContainers"] = [{"name": "wait", "image": "busybox"}]
    (w,) = manifest_warnings(iter([obj]))  # any iterable, read once
    assert "container wait uses busybox" in w


def test_readable_policy_annotations_pass():
    obj = scheduler()
    obj["metadata"]["annotations"] = {"paless.io/allowed-restarts": "5"}
    obj["spec"]["template"]["metadata"] = {"annotations": {"paless.io/failure-grace": "90s"}}
    check_policy_annotations([obj, {"kind": "Service", "metadata": {"name": "web"}}])


@pytest.mark.parametrize(("where", "key", "value"), [
    ("object", "paless.io/allowed-restarts", "many"),
    ("template", "paless.io/allowed-restarts", "-1"),
    ("template", "paless.io/failure-grace", "a while"),
    ("object", "paless.io/failure-grace", "5 minutes"),
])
def test_unreadable_policy_annotations_are_config_errors(where, key, value):
    obj = scheduler()
    if where == "object":
        obj["metadata"]["annotations"] = {key: value}
    else:
        obj["spec"]["template"]["metadata"] = {"annotations": {key: value}}
    with pytest.raises(ConfigError) as err:
        check_policy_annotations([obj])
    assert "Deployment/scheduler" in err.value.message and key in err.value.message
