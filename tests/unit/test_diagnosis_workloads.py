"""diagnosis.workloads: FailedCreate, progress deadline and failed Jobs, on recorded objects."""

from __future__ import annotations

from paless_deploy.core.diagnosis.eventlog import parse_time
from paless_deploy.core.diagnosis.findings import Policy
from paless_deploy.core.diagnosis.pods import diagnose_pod
from paless_deploy.core.diagnosis.workloads import (
    diagnose_deployment,
    diagnose_job,
    diagnose_replicaset,
    diagnose_statefulset,
)
from tests.unit.recorded import LATER, all_of, load, one


def test_replicaset_quota_failed_create(policy):
    doc = load("quota")
    (f,) = diagnose_replicaset(one(doc, "ReplicaSet"), doc["events"], policy, LATER)
    assert (f.code, f.reason, f.fatal) == ("create-failed", "FailedCreate", True)
    assert f.resource.startswith("ReplicaSet/web-")
    assert "ResourceQuota pods is exhausted" in f.message and "1 of 3" in f.message
    assert "kubectl -n rec-quota describe resourcequota pods" in f.commands
    assert any("exceeded quota" in e for e in f.evidence)


def test_failed_create_is_tolerated_during_the_grace_period(policy):
    doc = load("quota")
    (f,) = diagnose_replicaset(one(doc, "ReplicaSet"), doc["events"], policy, now=None)
    assert f.fatal  # no clock: judged on state alone, as after the grace period
    first = min(e.get("firstTimestamp") or "" for e in doc["events"]
                if e.get("reason") == "FailedCreate")
    start = parse_time(first)
    assert start is not None
    (early,) = diagnose_replicaset(one(doc, "ReplicaSet"), doc["events"], policy, start)
    assert not early.fatal


def test_failed_create_refusals_by_admission():
    rs = {"kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "ns"},
          "spec": {"replicas": 1}, "status": {"replicas": 0}}

    def refused(message: str):
        event = {"involvedObject": {"kind": "ReplicaSet", "name": "web-1"}, "type": "Warning",
                 "reason": "FailedCreate", "message": message}
        (f,) = diagnose_replicaset(rs, [event], Policy(), None)
        return f

    assert "ServiceAccount does not exist" in refused(
        'Error creating: pods "web-1-x" is forbidden: error looking up service account '
        "ns/paless: serviceaccount \"paless\" not found").message
    podsec = refused('pods "web-1-x" is forbidden: violates PodSecurity "restricted:latest"')
    assert "Pod Security" in podsec.message and "rclone sidecar needs privileged" in podsec.hint
    other = refused("admission webhook denied the request")
    assert "refuses its pods" in other.message


def test_statefulset_quota_failed_create(policy):
    doc = load("statefulset-quota")
    (f,) = diagnose_statefulset(one(doc, "StatefulSet"), doc["events"], policy, LATER)
    assert (f.code, f.resource, f.fatal) == ("create-failed", "StatefulSet/postgres", True)


def test_healthy_replicaset_has_no_findings(policy):
    rs = one(load("slow-rollout"), "ReplicaSet")
    assert diagnose_replicaset(rs, load("slow-rollout")["events"], policy, LATER) == []


def test_progress_deadline_exceeded(policy):
    doc = load("progress-deadline")
    (f,) = diagnose_deployment(one(doc, "Deployment"), doc["events"], policy)
    assert (f.code, f.resource, f.reason, f.fatal) == (
        "progress-deadline", "Deployment/web", "ProgressDeadlineExceeded", True)
    assert "2s" in f.message and "0 of 1" in f.message
    assert "kubectl -n rec-progress-deadline rollout status deployment/web" in f.commands
    assert diagnose_deployment(one(load("never-ready"), "Deployment"), [], policy) == []


def test_job_backoff_limit_exceeded(policy):
    doc = load("job-failed")
    pods = all_of(doc, "Pod")
    (f,) = diagnose_job(one(doc, "Job"), doc["events"], policy, pods=pods, logs="a\nerror: x\n")
    assert (f.code, f.resource, f.reason, f.fatal) == (
        "job-failed", "Job/migrate", "BackoffLimitExceeded", True)
    assert "immutable" in f.hint and "kubectl -n rec-job-failed delete job migrate" in f.hint
    assert f.hint.startswith("The migration fails")  # the Paless hint for the migrate Job
    assert any("exit code 1" in e for e in f.evidence) and f.evidence[-1] == "log: error: x"
    # the Job's pod itself is not reported separately: the Job decides
    assert diagnose_pod(pods[0], doc["events"], policy, LATER) == []


def test_job_deadline_exceeded_is_fatal_unless_every_failure_is_tolerated(policy):
    doc = load("job-deadline")
    (f,) = diagnose_job(one(doc, "Job"), doc["events"], policy)
    assert (f.code, f.reason, f.fatal) == ("job-failed", "DeadlineExceeded", True)
    assert "activeDeadlineSeconds" in f.message
    (tolerated,) = diagnose_job(one(doc, "Job"), doc["events"], Policy(tolerate_all=True))
    assert not tolerated.fatal  # tolerate_all is absolute; the deadline then decides


def test_running_job_has_no_findings(policy):
    job = {"kind": "Job", "metadata": {"name": "migrate"}, "status": {"active": 1}}
    assert diagnose_job(job, [], policy) == []
