"""diagnose on objects recorded from the sandbox (tests/fixtures/recorded) and small hand-made ones."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from paless_deploy.core import diagnose as dx
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.report import ErrorReport

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"
LATER = datetime(2030, 1, 1, tzinfo=UTC)  # long after every recording: grace periods passed


def load(case: str) -> dict:
    return json.loads((RECORDED / f"{case}.json").read_text())


def one(doc: dict, kind: str) -> dict:
    (obj,) = [o for o in doc["items"] if o["kind"] == kind]
    return obj


@pytest.fixture(scope="module")
def policy() -> dx.Policy:
    nodes = json.loads((RECORDED / "nodes.json").read_text())["items"]
    return dx.Policy(registry="127.0.0.1:5000").with_nodes(nodes)


def pod_findings(case: str, policy: dx.Policy, now: datetime | None = LATER, **kw) -> list:
    doc = load(case)
    return dx.diagnose_pod(one(doc, "Pod"), doc["events"], policy, now, **kw)


def test_policy_reads_the_cluster_nodes(policy):
    assert policy.node_count == 3
    assert policy.largest_node == dx.NodeCapacity(4000, 16 * 2**30)


def test_image_pull_from_localhost_on_multi_node_cluster(policy):
    (f,) = pod_findings("image-pull", policy)
    assert (f.code, f.reason, f.fatal) == ("image-pull", "ImagePullBackOff", True)
    assert f.resource.startswith("Pod/web-")
    assert "localhost:5000/paless-web:0123abcd" in f.message
    assert "/etc/rancher/k3s/registries.yaml" in f.hint
    assert "3-node" in f.hint
    assert any("NotFound" in e for e in f.evidence)
    assert f"kubectl -n rec-image-pull describe pod {f.resource[4:]}" in f.commands


def test_image_not_found_in_our_registry_is_fatal_at_once(policy):
    doc = load("image-pull")
    pod = one(doc, "Pod")
    status = pod["status"]["containerStatuses"][0]
    status["image"] = "127.0.0.1:5000/paless-web:0123abcd"
    (f,) = dx.diagnose_pod(pod, doc["events"], dx.Policy(node_count=1), now=None)
    assert f.fatal and f.code == "image-pull"
    assert "paless-deploy push" in f.hint and "registries.yaml" not in f.hint


def test_image_pull_unknown_host_gets_registries_hint():
    doc = load("image-pull")
    pod = one(doc, "Pod")
    pod["status"]["containerStatuses"][0]["state"]["waiting"] = {
        "reason": "ErrImagePull", "message": 'failed to resolve reference "reg.example:5000/x:1": '
        "dial tcp: lookup reg.example: no such host"}
    pod["status"]["containerStatuses"][0]["image"] = "reg.example:5000/x:1"
    (f,) = dx.diagnose_pod(pod, [], dx.Policy(), now=None)
    assert "cannot reach the registry reg.example:5000" in f.hint
    assert "registries.yaml" in f.hint and f.fatal


def test_transient_image_pull_error_waits_for_the_grace_period():
    doc = load("image-pull")
    pod = one(doc, "Pod")
    pod["status"]["containerStatuses"][0]["image"] = "127.0.0.1:5000/web:1"
    pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"] = "i/o timeout"
    start = dx.parse_time(pod["status"]["startTime"])
    (early,) = dx.diagnose_pod(pod, [], dx.Policy(), start + timedelta(seconds=2))
    (late,) = dx.diagnose_pod(pod, [], dx.Policy(), start + timedelta(seconds=30))
    assert (early.fatal, late.fatal) == (False, True)


def test_crash_loop_tolerated_up_to_allowed_restarts(policy):
    (f,) = pod_findings("crash-loop", policy, logs="starting\nboom: cannot connect\n")
    assert (f.code, f.reason, f.fatal) == ("crash-loop", "CrashLoopBackOff", False)
    assert "2 restart(s)" in f.message and "exit code 1" in f.message
    assert f.evidence[-1] == "log: boom: cannot connect"
    assert any(c.endswith("-c worker --previous") for c in f.commands)
    (strict,) = pod_findings("crash-loop", dx.Policy(allowed_restarts=1))
    assert strict.fatal


def test_crash_loop_while_data_services_are_not_ready(policy):
    (f,) = pod_findings("crash-loop", policy, unready_services=("postgres",))
    assert "postgres is not ready" in f.hint and "phases" in f.hint


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
    pod = one(load("config-error"), "Pod")
    start = dx.parse_time(pod["status"]["startTime"])
    (early,) = dx.diagnose_pod(pod, [], policy, start + timedelta(seconds=1))
    assert not early.fatal  # the Secret may still arrive in the same apply


def test_config_error_missing_configmap():
    pod = one(load("config-error"), "Pod")
    pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"] = \
        'configmap "paperless-config" not found'
    (f,) = dx.diagnose_pod(pod, [], dx.Policy(), None)
    assert "ConfigMap paperless-config is missing" in f.message
    assert "Create the ConfigMap paperless-config" in f.hint


def test_oom_names_the_memory_limit(policy):
    (f,) = pod_findings("oom", policy)
    assert (f.code, f.reason, f.fatal) == ("oom-killed", "OOMKilled", False)
    assert "256Mi" in f.message and "limits.memory" in f.hint
    (strict,) = pod_findings("oom", dx.Policy(allowed_restarts=0))
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
    (f,) = dx.diagnose_pod(pod, [], policy, LATER)
    assert f.code == "unschedulable" and not f.fatal
    assert "Insufficient cpu" in f.message


def test_requests_in_exponent_form_are_read_exactly(policy):
    pod = one(load("unschedulable-cpu"), "Pod")
    pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "64e3"  # 64000 cores
    (f,) = dx.diagnose_pod(pod, [], policy, LATER)
    assert f.fatal and "64000000m > 4000m" in f.message


def test_node_capacity_in_any_quantity_spelling():
    nodes = [{"status": {"allocatable": {"cpu": "7500m", "memory": "1e9"}}},
             {"status": {"allocatable": {"cpu": "0.5", "memory": "1Pi"}}},
             {"status": {}}]
    assert dx.Policy().with_nodes(nodes).largest_node == dx.NodeCapacity(7500, 2**50)


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
    (f,) = dx.diagnose_pod(pod, events, dx.Policy(), datetime(2026, 1, 1, 0, 1, tzinfo=UTC))
    assert (f.code, f.reason, f.fatal) == ("mount-failed", "FailedMount", True)
    assert "rclone-config" in f.message and "Create the configmap rclone-config" in f.hint
    (early,) = dx.diagnose_pod(pod, events, dx.Policy(), datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC))
    assert not early.fatal


def test_tolerate_all_makes_everything_non_fatal():
    for case in ("image-pull", "config-error", "unschedulable-cpu"):
        assert all(not f.fatal for f in pod_findings(case, dx.Policy(tolerate_all=True)))


def test_annotations_tune_the_policy():
    dep = {"kind": "Deployment", "metadata": {"name": "web", "annotations": {
        dx.ANNOTATION_ALLOWED_RESTARTS: "1"}}, "spec": {"template": {"metadata": {
            "annotations": {dx.ANNOTATION_FAILURE_GRACE: "2m", dx.ANNOTATION_ALLOWED_RESTARTS: "7"}}}}}
    p = dx.Policy().for_object(dep)
    assert (p.allowed_restarts, p.grace_s) == (7, 120.0)
    with pytest.raises(ConfigError, match="paless.io/allowed-restarts"):
        dx.Policy().for_object({"kind": "Pod", "metadata": {"name": "x", "annotations": {
            dx.ANNOTATION_ALLOWED_RESTARTS: "many"}}})


def test_pod_annotation_raises_allowed_restarts(policy):
    doc = load("crash-loop")
    pod = one(doc, "Pod")
    pod["metadata"].setdefault("annotations", {})[dx.ANNOTATION_ALLOWED_RESTARTS] = "0"
    (f,) = dx.diagnose_pod(pod, doc["events"], policy, LATER)
    assert f.fatal


def test_replicaset_quota_failed_create(policy):
    doc = load("quota")
    (f,) = dx.diagnose_replicaset(one(doc, "ReplicaSet"), doc["events"], policy, LATER)
    assert (f.code, f.reason, f.fatal) == ("create-failed", "FailedCreate", True)
    assert f.resource.startswith("ReplicaSet/web-")
    assert "ResourceQuota pods is exhausted" in f.message and "1 of 3" in f.message
    assert "kubectl -n rec-quota describe resourcequota pods" in f.commands
    assert any("exceeded quota" in e for e in f.evidence)


def test_statefulset_quota_failed_create(policy):
    doc = load("statefulset-quota")
    (f,) = dx.diagnose_statefulset(one(doc, "StatefulSet"), doc["events"], policy, LATER)
    assert (f.code, f.resource, f.fatal) == ("create-failed", "StatefulSet/postgres", True)


def test_healthy_replicaset_has_no_findings(policy):
    rs = one(load("slow-rollout"), "ReplicaSet")
    assert dx.diagnose_replicaset(rs, load("slow-rollout")["events"], policy, LATER) == []


def test_progress_deadline_exceeded(policy):
    doc = load("progress-deadline")
    (f,) = dx.diagnose_deployment(one(doc, "Deployment"), doc["events"], policy)
    assert (f.code, f.resource, f.reason, f.fatal) == (
        "progress-deadline", "Deployment/web", "ProgressDeadlineExceeded", True)
    assert "2s" in f.message and "0 of 1" in f.message
    assert "kubectl -n rec-progress-deadline rollout status deployment/web" in f.commands
    assert dx.diagnose_deployment(one(load("never-ready"), "Deployment"), [], policy) == []


def test_job_backoff_limit_exceeded(policy):
    doc = load("job-failed")
    pods = [o for o in doc["items"] if o["kind"] == "Pod"]
    (f,) = dx.diagnose_job(one(doc, "Job"), doc["events"], policy, pods=pods, logs="a\nerror: x\n")
    assert (f.code, f.resource, f.reason, f.fatal) == (
        "job-failed", "Job/migrate", "BackoffLimitExceeded", True)
    assert "immutable" in f.hint and "kubectl -n rec-job-failed delete job migrate" in f.hint
    assert any("exit code 1" in e for e in f.evidence) and f.evidence[-1] == "log: error: x"
    # the Job's pod itself is not reported separately: the Job decides
    assert dx.diagnose_pod(pods[0], doc["events"], policy, LATER) == []


def test_job_deadline_exceeded_is_fatal_even_when_tolerating(policy):
    doc = load("job-deadline")
    (f,) = dx.diagnose_job(one(doc, "Job"), doc["events"], policy)
    assert (f.code, f.reason) == ("job-failed", "DeadlineExceeded")
    assert "activeDeadlineSeconds" in f.message
    (tolerated,) = dx.diagnose_job(one(doc, "Job"), doc["events"], dx.Policy(tolerate_all=True))
    assert not tolerated.fatal  # tolerate_all is absolute; the deadline then decides


def test_pvc_no_matching_pv_is_tolerated(policy):
    doc = load("unschedulable-pvc")
    (f,) = dx.diagnose_pvc(one(doc, "PersistentVolumeClaim"), doc["events"], None, policy, LATER)
    assert (f.code, f.reason, f.fatal) == ("pvc-pending", "FailedBinding", False)
    assert "PersistentVolumeClaim/paperless-data-pvc" == f.resource
    assert "no persistent volumes available" in " ".join(f.evidence)


def test_pvc_missing_storage_class_fails_provisioning(policy):
    doc = load("pvc-missing-class")
    (f,) = dx.diagnose_pvc(one(doc, "PersistentVolumeClaim"), doc["events"], None, policy, LATER)
    assert (f.code, f.reason, f.fatal) == ("provisioning-failed", "ProvisioningFailed", True)
    assert "StorageClass manual" in f.hint


def test_pvc_provisioner_error_hand_made():
    pvc = {"kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "ns"},
           "spec": {"storageClassName": "fast"}, "status": {"phase": "Pending"}}
    events = [{"involvedObject": {"kind": "PersistentVolumeClaim", "name": "data"},
               "reason": "ProvisioningFailed", "type": "Warning",
               "firstTimestamp": "2026-01-01T00:00:00Z",
               "message": "failed to provision volume: quota exceeded on backend"}]
    (f,) = dx.diagnose_pvc(pvc, events, {"volumeBindingMode": "Immediate"}, dx.Policy(), LATER)
    assert f.code == "provisioning-failed" and "provisioner failed" in f.hint


def test_pvc_waiting_for_first_consumer_is_not_a_failure(policy):
    doc = load("pvc-wffc")
    (cls,) = [c for c in doc["storageClasses"] if c["metadata"]["name"] == "local-path"]
    assert dx.diagnose_pvc(one(doc, "PersistentVolumeClaim"), doc["events"], cls, policy,
                           LATER) == []


def test_healthy_pod_has_no_findings(policy):
    doc = load("quota")  # its one pod runs and is ready
    assert dx.diagnose_pod(one(doc, "Pod"), doc["events"], policy, LATER) == []


def test_describe_not_ready_names_replicas_and_pods():
    doc = load("slow-rollout")
    pods = [o for o in doc["items"] if o["kind"] == "Pod"]
    text = dx.describe_not_ready(one(doc, "Deployment"), pods)
    assert text.startswith("Deployment/web: 0 of 3 replicas available")
    assert text.count("pod web-") == 3
    doc = load("unschedulable-cpu")
    text = dx.describe_not_ready(one(doc, "Deployment"), [one(doc, "Pod")])
    assert "not scheduled (Unschedulable: 0/3 nodes are available: 3 Insufficient cpu" in text
    doc = load("image-pull")
    text = dx.describe_not_ready(one(doc, "Deployment"), [one(doc, "Pod")])
    assert "container web waiting (ImagePullBackOff)" in text


def test_deadline_finding_lists_every_resource():
    doc = load("never-ready")
    pods = [o for o in doc["items"] if o["kind"] == "Pod"]
    f = dx.deadline_finding([one(doc, "Deployment")], pods, 600, "rec-never-ready")
    assert (f.code, f.resource, f.fatal) == ("deadline", "Deployment/web", True)
    assert "running, not ready" in f.evidence[0]


def test_to_error_report_matches_the_json_contract(policy):
    (f,) = pod_findings("config-error", policy)
    report = f.to_error_report()
    assert isinstance(report, ErrorReport)
    assert (report.code, report.resource, report.reason) == (f.code, f.resource, f.reason)
    assert report.commands == list(f.commands)


def test_every_code_is_documented():
    for code in dx.CODES:
        assert f"`{code}`" in dx.__doc__


def test_findings_are_deterministic(policy):
    doc = load("image-pull")
    first = dx.diagnose_pod(copy.deepcopy(one(doc, "Pod")), doc["events"], policy, LATER)
    assert first == dx.diagnose_pod(one(doc, "Pod"), list(reversed(doc["events"])), policy, LATER)
