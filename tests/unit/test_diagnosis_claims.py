"""diagnosis.claims: Pending volume claims, on recorded and hand-made claims."""

from __future__ import annotations

from paless_deploy.core.diagnosis.claims import diagnose_pvc
from paless_deploy.core.diagnosis.findings import Policy
from tests.unit.recorded import LATER, load, one


def test_pvc_no_matching_pv_is_tolerated(policy):
    doc = load("unschedulable-pvc")
    (f,) = diagnose_pvc(one(doc, "PersistentVolumeClaim"), doc["events"], None, policy, LATER)
    assert (f.code, f.reason, f.fatal) == ("pvc-pending", "FailedBinding", False)
    assert "PersistentVolumeClaim/paperless-data-pvc" == f.resource
    assert "no persistent volumes available" in " ".join(f.evidence)


def test_pvc_missing_storage_class_fails_provisioning(policy):
    doc = load("pvc-missing-class")
    (f,) = diagnose_pvc(one(doc, "PersistentVolumeClaim"), doc["events"], None, policy, LATER)
    assert (f.code, f.reason, f.fatal) == ("provisioning-failed", "ProvisioningFailed", True)
    assert "StorageClass manual" in f.hint


def test_pvc_provisioner_error_hand_made():
    pvc = {"kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "ns"},
           "spec": {"storageClassName": "fast"}, "status": {"phase": "Pending"}}
    events = [{"involvedObject": {"kind": "PersistentVolumeClaim", "name": "data"},
               "reason": "ProvisioningFailed", "type": "Warning",
               "firstTimestamp": "2026-01-01T00:00:00Z",
               "message": "failed to provision volume: quota exceeded on backend"}]
    (f,) = diagnose_pvc(pvc, events, {"volumeBindingMode": "Immediate"}, Policy(), LATER)
    assert f.code == "provisioning-failed" and "provisioner failed" in f.hint


def test_pvc_waiting_for_first_consumer_is_not_a_failure(policy):
    doc = load("pvc-wffc")
    (cls,) = [c for c in doc["storageClasses"] if c["metadata"]["name"] == "local-path"]
    assert diagnose_pvc(one(doc, "PersistentVolumeClaim"), doc["events"], cls, policy,
                        LATER) == []


def test_young_pending_claim_without_events_is_given_time():
    pvc = {"kind": "PersistentVolumeClaim",
           "metadata": {"name": "data", "creationTimestamp": "2029-12-31T23:59:58Z"},
           "spec": {"volumeName": "pv-data"}, "status": {"phase": "Pending"}}
    assert diagnose_pvc(pvc, [], None, Policy(), LATER) == []
    (f,) = diagnose_pvc(pvc, [], None, Policy(grace_s=1), LATER)
    assert f.code == "pvc-pending" and "PersistentVolume pv-data" in f.hint


def test_bound_claim_has_no_findings():
    pvc = {"kind": "PersistentVolumeClaim", "metadata": {"name": "d"}, "status": {"phase": "Bound"}}
    assert diagnose_pvc(pvc, [], None) == []
