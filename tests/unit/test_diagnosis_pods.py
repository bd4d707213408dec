"""diagnosis.pods on pods recorded from the sandbox (tests/fixtures/recorded) and hand-made ones."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from paless_deploy.core.diagnosis.eventlog import parse_time
from paless_deploy.core.diagnosis.findings import (
    ANNOTATION_ALLOWED_RESTARTS,
    NodeCapacity,
    Policy,
)
from paless_deploy.core.diagnosis.pods import (
    diagnose_pod,
    image_registry_host,
    pod_owner,
    pod_requests,
)
from tests.unit.recorded import LATER, load, one


def pod_findings(case: str, policy: Policy, now: datetime | None = LATER, **kw) -> list:
    doc = load(case)
    return diagnose_pod(one(doc, "Pod"), doc["events"], policy, now, **kw)


def test_a_registry_that_answered_not_found_was_reachable(policy):
    # on a 3-node cluster too: the registry answered, so the image is what is missing
    (f,) = pod_findings("image-pull", policy)
    assert (f.code, f.reason, f.fatal) == ("image-pull", "ImagePullBackOff", True)
    assert f.resource.startswith("Pod/web-")
    assert "localhost:5000/paless-web:0123abcd" in f.message
    assert "is not in the registry" in f.hint and "3-node" not in f.hint
    assert any("NotFound" in e for e in f.evidence)
    assert f"kubectl -n rec-image-pull describe pod {f.resource[4:]}" in f.commands


def test_image_pull_from_localhost_on_multi_node_cluster(policy):
    doc = load("image-pull")
    for event in doc["events"]:
        if "not found" in event.get("message", ""):
            event["message"] = ('Failed to pull image "localhost:5000/paless-web:0123abcd": '
                                "dial tcp 127.0.0.1:5000: connect: connection refused")
    (f,) = diagnose_pod(one(doc, "Pod"), doc["events"], policy, LATER)
    assert "3-node" in f.hint and "/etc/rancher/k3s/registries.yaml" in f.hint and f.fatal


def test_image_not_found_in_our_registry_is_fatal_at_once(policy):
    doc = load("image-pull")
    pod = one(doc, "Pod")
    status = pod["status"]["containerStatuses"][0]
    status["image"] = "127.0.0.1:5000/paless-web:0123abcd"
    (f,) = diagnose_pod(pod, doc["events"], Policy(node_count=1), now=None)
    assert f.fatal and f.code == "image-pull"
    assert "paless-deploy push" in f.hint and "registries.yaml" not in f.hint
    # a deploy knows its apps' images: one of them is pushed by name...
    ours = Policy(node_count=1, app_images=(("127.0.0.1:5000/paless-web:0123abcd", "web"),))
    (f,) = diagnose_pod(pod, doc["events"], ours, now=None)
    assert "`paless-deploy push web`" in f.hint
    # ...and an image that is no app's is not the push command's to fix
    status["image"] = "ghcr.io/acme/other:1.0"
    (f,) = diagnose_pod(pod, doc["events"], ours, now=None)
    assert "paless-deploy push" not in f.hint
    assert "is not one of this project's apps" in f.hint and "correct its name" in f.hint


def test_image_pull_unknown_host_gets_registries_hint():
    doc = load("image-pull")
    pod = one(doc, "Pod")
    pod["status"]["containerStatuses"][0]["state"]["waiting"] = {
        "reason": "ErrImagePull", "message": 'failed to resolve reference "reg.example:5000/x:1": '
        "dial tcp: lookup reg.example: no such host"}
    pod["status"]["containerStatuses"][0]["image"] = "reg.example:5000/x:1"
    (f,) = diagnose_pod(pod, [], Policy(), now=None)
    assert "cannot reach the registry reg.example:5000" in f.hint
    assert "registries.yaml" in f.hint and f.fatal


def test_transient_image_pull_error_waits_for_the_grace_period():
    doc = load("image-pull")
    pod = one(doc, "Pod")
    pod["status"]["containerStatuses"][0]["image"] = "127.0.0.1:5000/web:1"
    pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"] = "i/o timeout"
    start = parse_time(pod["status"]["startTime"])
    assert start is not None
    (early,) = diagnose_pod(pod, [], Policy(), start + timedelta(seconds=2))
    (late,) = diagnose_pod(pod, [], Policy(), start + timedelta(seconds=30))
    assert (early.fatal, late.fatal) == (False, True)


def test_crash_loop_tolerated_up_to_allowed_restarts(policy):
    (f,) = pod_findings("crash-loop", policy, logs="starting\nboom: cannot connect\n")
    assert (f.code, f.reason, f.fatal) == ("crash-loop", "CrashLoopBackOff", False)
    assert "2 restart(s)" in f.message and "exit code 1" in f.message
    assert f.evidence[-1] == "log: boom: cannot connect"
    assert any(c.endswith("-c worker --previous") for c in f.commands)
    (strict,) = pod_findings("crash-loop", Policy(allowed_restarts=1))
    assert strict.fatal


def test_crash_loop_while_data_services_are_not_ready(policy):
    (f,) = pod_findings("crash-loop", policy, unready_services=("postgres",))
    assert "postgres is not ready" in f.hint and "phases" in f.hint
    assert "app.kubernetes.io/component=postgres" in f.hint


def test_rclone_sidecar_crash_gets_paless_hints(policy):
    (f,) = pod_findings("rclone-crash", policy)
    assert f.code == "crash-loop" and "Container rclone" in f.message
    assert "privileged" in f.hint and "MinIO" in f.hint
    (fuse,) = pod_findings("rclone-crash", policy,
                           logs={"rclone": "mount helper error: fusermount: permission denied"})
    assert "privileged: true" in fuse.hint and "MinIO" not in fuse.hint
    (minio,) = pod_findings("rclone-crash", policy, unready_services=("minio",))
    assert "minio:9000" in minio.hint


def test_config_error_names_the_missing_key_after_grace(policy):
    (f,) = pod_findings("config-error", policy)
    assert (f.code, f.reason, f.fatal) == ("config-error", "CreateContainerConfigError", True)
    assert "key PAPERLESS_SECRET_KEY in Secret paless-secret" in f.message
    assert "kubectl -n rec-config-error describe secret paless-secret" in f.commands
    assert "rendered from k8s/base/config.yaml" in f.hint
    pod = one(load("config-error"), "Pod")
    start = parse_time(pod["status"]["startTime"])
    assert start is not None
    (early,) = diagnose_pod(pod, [], policy, start + timedelta(seconds=1))
    assert not early.fatal  # the Secret may still arrive in the same apply


def test_config_error_missing_configmap():
    pod = one(load("config-error"), "Pod")
    pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"] = \
        'configmap "paperless-config" not found'
    (f,) = diagnose_pod(pod, [], Policy(), None)
    assert "ConfigMap paperless-config is missing" in f.message
    assert "Create the ConfigMap paperless-config" in f.hint


def test_oom_names_the_memory_limit(policy):
    (f,) = pod_findings("oom", policy)
    assert (f.code, f.reason, f.fatal) == ("oom-killed", "OOMKilled", False)
    assert "256Mi" in f.message and "limits.memory" in f.hint
    assert "PAPERLESS_TASK_WORKERS" in f.hint
    (strict,) = pod_findings("oom", Policy(allowed_restarts=0))
    assert strict.fatal


def test_never_ready_is_tolerated_with_probe_evidence(policy):
    (f,) = pod_findings("never-ready", policy)
    assert (f.code, f.reason, f.fatal) == ("not-ready", "Unhealthy", False)
    assert any("Readiness probe failed" in e for e in f.evidence)


def test_unschedulable_requests_larger_than_any_node_is_fatal(policy):
    (f,) = pod_findings("unschedulable-cpu", policy)
    assert (f.code, f.reason, f.fatal) == ("unschedulable", "Unschedulable", True)
    assert "64000m > 4000m" in f.message
    assert any("Insufficient cpu" in e for e in f.evidence)


def test_insufficient_cpu_that_a_node_could_hold_is_tolerated(policy):
    pod = one(load("unschedulable-cpu"), "Pod")
    pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "3"
    (f,) = diagnose_pod(pod, [], policy, LATER)
    assert f.code == "unschedulable" and not f.fatal
    assert "Insufficient cpu" in f.message


def test_requests_in_exponent_form_are_read_exactly(policy):
    pod = one(load("unschedulable-cpu"), "Pod")
    pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "64e3"  # 64000 cores
    (f,) = diagnose_pod(pod, [], policy, LATER)
    assert f.fatal and "64000000m > 4000m" in f.message


def test_unschedulable_node_selector_after_grace(policy):
    (f,) = pod_findings("unschedulable-selector", policy)
    assert f.code == "unschedulable" and f.fatal
    assert "disktype" in f.message and "kubectl label node" in f.hint


def test_unschedulable_unbound_claim_points_at_the_claim(policy):
    (f,) = pod_findings("unschedulable-pvc", policy)
    assert f.code == "unschedulable" and not f.fatal
    assert "paperless-data-pvc" in f.message
    assert "kubectl -n rec-unschedulable-pvc describe pvc paperless-data-pvc" in f.commands


def test_failed_mount_of_missing_configmap():
    pod = {"kind": "Pod", "metadata": {"name": "web-1", "namespace": "ns", "uid": "u1"},
           "spec": {"nodeName": "n1", "containers": [{"name": "rclone"}]},
           "status": {"phase": "Pending", "startTime": "2026-01-01T00:00:00Z",
                      "containerStatuses": [{"name": "rclone", "ready": False, "restartCount": 0,
                                             "state": {"waiting": {"reason": "ContainerCreating"}}}]}}
    events = [{"involvedObject": {"kind": "Pod", "name": "web-1", "uid": "u1"}, "type": "Warning",
               "reason": "FailedMount", "firstTimestamp": "2026-01-01T00:00:01Z",
               "lastTimestamp": "2026-01-01T00:00:20Z",
               "message": 'MountVolume.SetUp failed for volume "rclone-config" : configmap '
                          '"rclone-config" not found'}]
    (f,) = diagnose_pod(pod, events, Policy(), datetime(2026, 1, 1, 0, 1, tzinfo=UTC))
    assert (f.code, f.reason, f.fatal) == ("mount-failed", "FailedMount", True)
    assert "rclone-config" in f.message and "Create the configmap rclone-config" in f.hint
    (early,) = diagnose_pod(pod, events, Policy(), datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC))
    assert not early.fatal


def test_tolerate_all_makes_everything_non_fatal():
    for case in ("image-pull", "config-error", "unschedulable-cpu"):
        assert all(not f.fatal for f in pod_findings(case, Policy(tolerate_all=True)))


def test_pod_annotation_lowers_allowed_restarts(policy):
    doc = load("crash-loop")
    pod = one(doc, "Pod")
    pod["metadata"].setdefault("annotations", {})[ANNOTATION_ALLOWED_RESTARTS] = "0"
    (f,) = diagnose_pod(pod, doc["events"], policy, LATER)
    assert f.fatal


def test_healthy_pod_has_no_findings(policy):
    doc = load("quota")  # its one pod runs and is ready
    assert diagnose_pod(one(doc, "Pod"), doc["events"], policy, LATER) == []


def test_findings_are_deterministic(policy):
    doc = load("image-pull")
    first = diagnose_pod(copy.deepcopy(one(doc, "Pod")), doc["events"], policy, LATER)
    assert first == diagnose_pod(one(doc, "Pod"), list(reversed(doc["events"])), policy, LATER)


def test_pod_owner_names_the_deployment_behind_a_replicaset():
    pod = one(load("image-pull"), "Pod")
    assert pod_owner(pod) == "Deployment/web"
    assert pod_owner({"metadata": {"ownerReferences": [
        {"kind": "Job", "name": "migrate", "controller": True}]}}) == "Job/migrate"
    assert pod_owner({"metadata": {}}) == ""


def test_pod_requests_sum_containers_or_take_the_largest_init():
    pod = {"kind": "Pod", "spec": {
        "initContainers": [{"resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}],
        "containers": [{"resources": {"requests": {"cpu": "500m", "memory": "1e9"}}},
                       {"resources": {"requests": {"cpu": "0.25"}}}]}}
    assert pod_requests(pod) == NodeCapacity(2000, 2**30)


@pytest.mark.parametrize(("image", "host"), [
    ("web", "docker.io"), ("library/redis:7", "docker.io"), ("localhost/x", "localhost"),
    ("127.0.0.1:5000/paless-web:1", "127.0.0.1:5000"), ("ghcr.io/a/b:1", "ghcr.io")])
def test_image_registry_host(image, host):
    assert image_registry_host(image) == host
