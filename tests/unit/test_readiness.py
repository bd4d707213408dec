"""readiness: one rule per kind, and kstatus-style conditions for every kind without one."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from paless_deploy.core.diagnosis.readiness import (
    FAILED,
    IN_PROGRESS,
    READY,
    RULES,
    WAITED_KINDS,
    conditions_readiness,
    generation_pending,
    hpa_warning,
    ingress_warning,
    is_waited,
    readiness,
    rule_for,
    unsettled_s,
)
from tests.unit.recorded import all_of, load, one


def state(obj: dict, **kw) -> str:
    return readiness(obj, **kw).state


# --- recorded objects -----------------------------------------------------------------------

@pytest.mark.parametrize(("case", "kind", "expected", "reason"), [
    ("slow-rollout", "Deployment", IN_PROGRESS, "0 of 3 replicas available"),
    ("image-pull", "Deployment", IN_PROGRESS, "0 of 1 replicas available"),
    ("progress-deadline", "Deployment", FAILED, "progress deadline exceeded"),
    ("quota", "Deployment", IN_PROGRESS, "1 of 3 replicas updated"),
    ("quota", "ReplicaSet", IN_PROGRESS, "cannot create pods (FailedCreate)"),
    ("slow-rollout", "ReplicaSet", IN_PROGRESS, "0 of 3 replicas available"),
    ("statefulset-quota", "StatefulSet", IN_PROGRESS, "0 of 1 replicas updated"),
    ("job-failed", "Job", FAILED, "BackoffLimitExceeded"),
    ("job-deadline", "Job", FAILED, "DeadlineExceeded"),
    ("pvc-missing-class", "PersistentVolumeClaim", IN_PROGRESS, "waiting for a volume"),
    ("quota", "Pod", READY, "ready"),
    ("never-ready", "Pod", IN_PROGRESS, "Running, not ready"),
    ("quota", "ResourceQuota", READY, "exists"),
])
def test_recorded_objects(case: str, kind: str, expected: str, reason: str) -> None:
    verdict = readiness(one(load(case), kind))
    assert verdict.state == expected
    assert verdict.reason.startswith(reason)


def test_deployment_becomes_ready_when_every_replica_is_available():
    dep = copy.deepcopy(one(load("slow-rollout"), "Deployment"))
    before = readiness(dep)
    dep["status"].update(availableReplicas=3, readyReplicas=3)
    after = readiness(dep)
    assert (after.state, after.reason) == (READY, "3/3 available")
    assert after.progress != before.progress  # the waiter sees progress


def test_deployment_old_replicas_and_stale_generation():
    dep = copy.deepcopy(one(load("slow-rollout"), "Deployment"))
    dep["status"].update(availableReplicas=3, readyReplicas=3, replicas=4)
    assert readiness(dep).reason == "1 old replicas pending termination"
    dep["status"]["replicas"] = 3
    dep["metadata"]["generation"] = 2  # our apply, not yet seen by the controller
    assert readiness(dep).reason == "controller has not observed the new generation yet"
    assert readiness(dep, applied_generation=3).reason == (
        "waiting for the applied change to reach the cache")


def test_pvc_waiting_for_first_consumer_is_ready():
    pvc = one(load("pvc-wffc"), "PersistentVolumeClaim")
    assert state(pvc) == IN_PROGRESS
    assert state(pvc, wait_for_first_consumer=True) == READY
    assert state({**pvc, "status": {"phase": "Bound"}}) == READY
    assert state({**pvc, "status": {"phase": "Lost"}}) == FAILED


def test_statefulset_rolling_update():
    sts = {"kind": "StatefulSet", "metadata": {"generation": 2},
           "spec": {"replicas": 2},
           "status": {"observedGeneration": 2, "readyReplicas": 2, "updatedReplicas": 2,
                      "currentRevision": "a", "updateRevision": "b"}}
    assert readiness(sts).reason == "rolling update in progress"
    sts["status"]["currentRevision"] = "b"
    assert state(sts) == READY
    sts["spec"]["updateStrategy"] = {"type": "OnDelete"}
    sts["status"]["updatedReplicas"] = 0
    assert state(sts) == READY  # OnDelete: old pods stay until deleted by hand


def daemonset(**status) -> dict:
    return {"kind": "DaemonSet", "metadata": {"name": "agent", "generation": 3},
            "status": {"observedGeneration": 3, **status}}


def test_daemonset():
    assert readiness(daemonset()).reason == "controller has not counted its nodes yet"
    assert readiness(daemonset(desiredNumberScheduled=3, updatedNumberScheduled=2,
                               numberAvailable=3)).reason == "2 of 3 pods updated"
    assert readiness(daemonset(desiredNumberScheduled=3, updatedNumberScheduled=3,
                               numberAvailable=1)).reason == "1 of 3 pods available"
    assert state(daemonset(desiredNumberScheduled=3, updatedNumberScheduled=3,
                           numberAvailable=3)) == READY
    assert state(daemonset(desiredNumberScheduled=0)) == READY  # no node matches: nothing to run
    stale = daemonset(desiredNumberScheduled=1, updatedNumberScheduled=1, numberAvailable=1)
    stale["status"]["observedGeneration"] = 2
    assert state(stale) == IN_PROGRESS


def test_replicaset_excess_replicas():
    rs = {"kind": "ReplicaSet", "spec": {"replicas": 1},
          "status": {"replicas": 2, "availableReplicas": 1, "readyReplicas": 1}}
    assert readiness(rs).reason == "1 replicas pending termination"
    rs["status"]["replicas"] = 1
    assert state(rs) == READY


def test_pods_that_ran_to_completion_or_failed():
    pod = {"kind": "Pod", "status": {"phase": "Succeeded", "conditions": [
        {"type": "Ready", "status": "False", "reason": "PodCompleted"}]}}
    assert state(pod) == READY
    assert readiness({"kind": "Pod", "status": {"phase": "Failed", "reason": "Evicted"}}).reason \
        == "pod failed: Evicted"


def test_job_running_and_complete():
    job = {"kind": "Job", "status": {"active": 1}}
    assert readiness(job).reason == "1 pod(s) running, not complete yet"
    job["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
    assert state(job) == READY


# --- kinds without a rule: kstatus' generic judgement -------------------------------------------

def custom(**status) -> dict:
    return {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "tls", "generation": 2}, "status": status}


def cond(type_: str, status: str, reason: str = "", message: str = "") -> dict:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def test_ready_condition_decides():
    assert state(custom(conditions=[cond("Ready", "True")])) == READY
    waiting = readiness(custom(conditions=[cond("Ready", "False", "Issuing", "issuing")]))
    assert (waiting.state, waiting.reason) == (IN_PROGRESS, "Ready=False (Issuing): issuing")
    assert state(custom(conditions=[cond("Ready", "Unknown")])) == IN_PROGRESS


def test_available_condition_when_there_is_no_ready():
    assert state(custom(conditions=[cond("Available", "True")])) == READY
    assert state(custom(conditions=[cond("Available", "False", "MissingEndpoints")])) == IN_PROGRESS


def test_stalled_fails_and_reconciling_waits():
    stalled = readiness(custom(conditions=[cond("Stalled", "True", "BadSpec", "no issuer"),
                                           cond("Ready", "False")]))
    assert (stalled.state, stalled.reason) == (FAILED, "Stalled=True (BadSpec): no issuer")
    assert state(custom(conditions=[cond("Reconciling", "True"), cond("Ready", "True")])) == \
        IN_PROGRESS


def test_observed_generation_behind_is_in_progress():
    assert state(custom(observedGeneration=1, conditions=[cond("Ready", "True")])) == IN_PROGRESS
    assert state(custom(observedGeneration=2, conditions=[cond("Ready", "True")])) == READY
    # no observedGeneration at all: the controller does not report it, so it is not awaited
    assert state(custom(conditions=[cond("Ready", "True")])) == READY


def test_no_conditions_at_all_is_ready_when_it_exists():
    assert readiness(custom()).reason == "exists (no readiness condition)"
    assert state({"kind": "Widget", "metadata": {"name": "w"}}) == READY
    assert state(custom(conditions=[cond("Established", "True")])) == READY  # not a verdict


def test_being_deleted_is_in_progress():
    obj = custom(conditions=[cond("Ready", "True")])
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert readiness(obj).reason == "being deleted"


def test_kinds_that_exist_are_ready_whatever_their_status():
    hpa = {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "generation": 2},
           "status": {"observedGeneration": 1,
                      "conditions": [cond("ScalingActive", "False", "FailedGetResourceMetric")]}}
    assert state(hpa) == READY
    assert not is_waited(hpa)


# --- the table and what the wait stage waits for ---------------------------------------------

def test_rules_table():
    assert rule_for("Certificate") is conditions_readiness
    assert {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Pod",
            "PersistentVolumeClaim", "CustomResourceDefinition", "APIService"} == set(
                WAITED_KINDS)
    assert {"Service", "ConfigMap", "Secret", "Ingress", "HorizontalPodAutoscaler"} <= set(RULES)


@pytest.mark.parametrize(("obj", "waited"), [
    ({"kind": "Deployment"}, True),
    ({"kind": "PersistentVolumeClaim"}, True),
    ({"kind": "ConfigMap", "data": {}}, False),
    ({"kind": "Service", "status": {"loadBalancer": {}}}, False),
    ({"kind": "Certificate", "status": {"conditions": [cond("Ready", "False")]}}, True),
    ({"kind": "Certificate", "status": {"observedGeneration": 1}}, True),
    ({"kind": "Certificate", "status": {}}, False),
    ({"kind": "Certificate"}, False),
    ({"kind": "Widget", "status": {"phase": "Ok"}}, False),
])
def test_is_waited(obj: dict, waited: bool) -> None:
    assert is_waited(obj) is waited


def test_generation_pending():
    dep = one(load("slow-rollout"), "Deployment")
    assert generation_pending(dep, None) is None
    assert generation_pending(dep, 1) is None


def test_warnings_for_ingress_and_hpa():
    ingress = {"kind": "Ingress", "metadata": {"name": "web"}, "spec": {}}
    assert "no controller for class (default)" in (ingress_warning(ingress) or "")
    assert ingress_warning({**ingress, "status": {"loadBalancer": {"ingress": [{"ip": "1"}]}}}) \
        is None
    hpa = {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"}}
    assert "no metrics yet" in (hpa_warning(hpa) or "")
    assert hpa_warning({**hpa, "status": {"currentMetrics": [{"type": "Resource"}]}}) is None


def test_every_pod_of_a_recorded_rollout_is_judged():
    assert [state(p) for p in all_of(load("slow-rollout"), "Pod")] == [IN_PROGRESS] * 3


# --- the settle window of workloads without a readiness probe --------------------------------

def _probe_less(probe: dict | None = None) -> dict:
    container: dict = {"name": "app", "image": "app"}
    if probe:
        container["readinessProbe"] = probe
    return {"kind": "Deployment", "metadata": {"name": "app"},
            "spec": {"template": {"spec": {"containers": [container]}}}}


def _pod_started(at: str | None) -> dict:
    state = {"running": {"startedAt": at}} if at else {"waiting": {"reason": "ContainerCreating"}}
    return {"kind": "Pod", "status": {"containerStatuses": [{"name": "app", "state": state}]}}


NOW = datetime(2026, 11, 30, 12, 0, 10, tzinfo=UTC)


def test_a_probe_less_workload_is_watched_until_its_youngest_container_ran_the_window():
    pods = [_pod_started("2026-11-30T12:00:00Z"), _pod_started("2026-11-30T12:00:08Z")]
    assert unsettled_s(_probe_less(), pods, 5.0, NOW) == pytest.approx(3.0)
    # the restart of a crashing container starts the count again
    assert unsettled_s(_probe_less(), [_pod_started("2026-11-30T12:00:10Z")], 5.0, NOW) == 5.0
    assert unsettled_s(_probe_less(), pods[:1], 5.0, NOW) == 0.0  # ran 10s: settled
    # exited (the Deployment's status has not caught up yet): not settled, whatever ran before
    assert unsettled_s(_probe_less(), pods[:1] + [_pod_started(None)], 5.0, NOW) == 5.0


def test_a_probe_a_zero_window_or_an_unknown_start_never_holds_a_workload_back():
    pods = [_pod_started("2026-11-30T12:00:09Z")]
    assert unsettled_s(_probe_less({"exec": {"command": ["true"]}}), pods, 5.0, NOW) == 0.0
    assert unsettled_s(_probe_less(), pods, 0.0, NOW) == 0.0
    running_since_unknown = {"kind": "Pod", "status": {"containerStatuses": [
        {"name": "app", "state": {"running": {}}}]}}
    assert unsettled_s(_probe_less(), [running_since_unknown], 5.0, NOW) == 0.0
    job = {**_probe_less(), "kind": "Job"}  # a Job's completion is its own proof
    assert unsettled_s(job, pods, 5.0, NOW) == 0.0
