"""diagnosis.deadline: what each object and pod still waits for when time runs out."""

from __future__ import annotations

from paless_deploy.core.diagnosis.deadline import (
    deadline_finding,
    describe_not_ready,
    pod_waiting_for,
)
from tests.unit.recorded import all_of, load, one


def test_describe_not_ready_names_replicas_and_pods():
    doc = load("slow-rollout")
    text = describe_not_ready(one(doc, "Deployment"), all_of(doc, "Pod"))
    assert text.startswith("Deployment/web: 0 of 3 replicas available")
    assert text.count("pod web-") == 3
    doc = load("unschedulable-cpu")
    text = describe_not_ready(one(doc, "Deployment"), [one(doc, "Pod")])
    assert "not scheduled (Unschedulable: 0/3 nodes are available: 3 Insufficient cpu" in text
    doc = load("image-pull")
    text = describe_not_ready(one(doc, "Deployment"), [one(doc, "Pod")])
    assert "container web waiting (ImagePullBackOff)" in text


def test_describe_not_ready_of_jobs_claims_and_other_kinds():
    doc = load("job-failed")
    text = describe_not_ready(one(doc, "Job"), all_of(doc, "Pod"))
    assert text.startswith("Job/migrate: not complete (0 active, 0 succeeded, ")
    assert "pod migrate-" in text
    doc = load("unschedulable-pvc")
    assert describe_not_ready(one(doc, "PersistentVolumeClaim")) == (
        "PersistentVolumeClaim/paperless-data-pvc: Pending, not bound")
    cert = {"kind": "Certificate", "metadata": {"name": "tls", "generation": 1},
            "status": {"observedGeneration": 1, "conditions": [
                {"type": "Ready", "status": "False", "reason": "Issuing"}]}}
    assert describe_not_ready(cert) == "Certificate/tls: Ready=False (Issuing)"


def test_pod_waiting_for():
    assert pod_waiting_for(one(load("quota"), "Pod")) == ""
    assert pod_waiting_for({"spec": {}}) == "not scheduled yet"
    assert pod_waiting_for({"spec": {"nodeName": "n1"}, "status": {}}) == (
        "scheduled on n1, containers not started yet")


def test_deadline_finding_lists_every_resource():
    doc = load("never-ready")
    f = deadline_finding([one(doc, "Deployment")], all_of(doc, "Pod"), 600, "rec-never-ready")
    assert (f.code, f.resource, f.fatal) == ("deadline", "Deployment/web", True)
    assert "running, not ready" in f.evidence[0]
    assert f.message == "Not ready after 600s: Deployment/web."
