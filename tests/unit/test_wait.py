"""stages.wait.PhaseWaiter fed recorded objects through a fake watcher and a fake clock.

The fake has NamespaceWatcher's interface (get, items, events_for, version,
wait_for_change, kube) over a script of snapshots: every wait_for_change moves to the
next snapshot, or, once the script is over, lets the fake clock run for the timeout asked.
No test sleeps.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from paless_deploy.core.diagnosis.findings import Policy
from paless_deploy.core.diagnosis.readiness import CLAIM_NUDGE_AFTER_S, IN_PROGRESS, READY
from paless_deploy.core.reporting.report import ObjectAction
from paless_deploy.stages.apply import Applied
from paless_deploy.stages.wait import PhaseWaiter, Target, deadline_error, not_ready_summary
from tests.unit.recorded import LATER, cluster_policy, load, one


class FakeClock:
    """time.monotonic that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeWatcher:
    """A NamespaceWatcher replaying snapshots ({"items": [...], "events": [...]})."""

    def __init__(self, clock: FakeClock, *snapshots: Mapping[str, Any]) -> None:
        self.clock = clock
        self.snapshots = list(snapshots)
        self.index = 0
        self.kube = None
        self.waits: list[float] = []
        self.mirrored: list[tuple[str, str]] = []

    @property
    def snapshot(self) -> Mapping[str, Any]:
        return self.snapshots[self.index]

    @property
    def version(self) -> int:
        return self.index

    def get(self, kind: str, name: str) -> dict | None:
        return next((o for o in self.items(kind) if o["metadata"]["name"] == name), None)

    def items(self, kind: str) -> list[dict]:
        return [o for o in self.snapshot["items"] if o["kind"] == kind]

    def events_for(self, kind: str, name: str) -> list[dict]:
        return [e for e in self.snapshot.get("events") or []
                if (e.get("involvedObject") or {}).get("kind") == kind
                and (e.get("involvedObject") or {}).get("name") == name]

    def poke(self) -> None:
        pass

    def mirror(self, api_version: str, kind: str) -> None:
        self.mirrored.append((api_version, kind))

    def wait_for_change(self, since: int, timeout: float) -> int:
        self.waits.append(timeout)
        if self.index + 1 < len(self.snapshots):
            self.index += 1
            self.clock.now += 0.1
        else:
            self.clock.now += timeout
        return self.index


def applied(obj: Mapping[str, Any], *, generation: int | None = None, uid: str | None = None,
            action: ObjectAction = ObjectAction.CONFIGURED) -> Applied:
    meta = obj["metadata"]
    return Applied(kind=obj["kind"], name=meta["name"], namespace=meta.get("namespace"),
                   action=action,
                   generation=generation if generation is not None else meta.get("generation"),
                   uid=uid or meta.get("uid", ""), live=dict(obj))


def waiter(watcher: FakeWatcher, targets: list[Applied], *, policy: Policy | None = None,
           deadline_s: float = 600, progress_deadline_s: float = 60,
           **kw: Any) -> PhaseWaiter:
    return PhaseWaiter(watcher, targets, deadline=watcher.clock() + deadline_s,
                       progress_deadline_s=progress_deadline_s, policy=policy or Policy(),
                       storage_classes=kw.pop("storage_classes", {}), clock=watcher.clock,
                       utcnow=lambda: LATER, **kw)


def rolled_out(doc: dict) -> dict:
    """The slow-rollout case a moment later: every replica available, every pod ready."""
    doc = copy.deepcopy(doc)
    for obj in doc["items"]:
        if obj["kind"] in ("Deployment", "ReplicaSet"):
            obj["status"].update(availableReplicas=3, readyReplicas=3)
        if obj["kind"] == "Pod":
            obj["status"]["phase"] = "Running"
            obj["status"]["conditions"].append({"type": "Ready", "status": "True"})
            for cs in obj["status"].get("containerStatuses") or []:
                cs.update(ready=True, state={"running": {"startedAt": "2026-11-26T07:09:29Z"}})
    return doc


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_deployment_goes_from_progressing_to_ready(clock):
    doc = load("slow-rollout")
    watcher = FakeWatcher(clock, doc, doc, rolled_out(doc))
    updates: list[str] = []
    w = waiter(watcher, [applied(one(doc, "Deployment"))],
               on_update=lambda t: updates.append(t.verdict.state))
    outcome = w.run()
    assert (outcome.failed, outcome.timed_out, outcome.findings) == (False, "", [])
    (target,) = outcome.targets
    assert target.verdict.state == READY and target.ready_at == clock()
    assert updates == [IN_PROGRESS, READY]  # reported on change only


def test_image_pull_backoff_fails_the_phase_at_once(clock):
    doc = load("image-pull")
    watcher = FakeWatcher(clock, doc)
    outcome = waiter(watcher, [applied(one(doc, "Deployment"))], policy=cluster_policy()).run()
    assert outcome.failed and not outcome.timed_out
    (finding,) = outcome.findings
    assert (finding.code, finding.reason, finding.fatal) == ("image-pull", "ImagePullBackOff", True)
    assert finding.resource.startswith("Pod/web-")
    assert watcher.waits == []  # decided on the first look


def test_tolerated_failure_runs_into_the_progress_deadline(clock):
    doc = load("never-ready")
    watcher = FakeWatcher(clock, doc)
    w = waiter(watcher, [applied(one(doc, "Deployment"))], progress_deadline_s=5)
    outcome = w.run()
    assert (outcome.failed, outcome.timed_out) == (False, "progress-deadline")
    (finding,) = outcome.findings
    assert (finding.code, finding.fatal) == ("not-ready", False)
    assert sum(watcher.waits) == pytest.approx(5) and max(watcher.waits) <= 1.0  # TICK_S
    err = deadline_error("web", w, outcome, "rec-never-ready", 5)
    assert "Phase web made no progress for 5s" in err.message
    assert "Deployment/web: 0 of 1 replicas available" in err.message
    assert "running, not ready" in err.message


def test_overall_deadline(clock):
    doc = load("slow-rollout")
    watcher = FakeWatcher(clock, doc)
    w = waiter(watcher, [applied(one(doc, "Deployment"))], deadline_s=3,
               progress_deadline_s=100)
    outcome = w.run()
    assert outcome.timed_out == "deadline"
    assert not_ready_summary(w)[0].startswith("Deployment/web: 0 of 3 replicas available")


def test_progress_resets_the_progress_deadline(clock: FakeClock,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    doc = load("slow-rollout")
    halfway = copy.deepcopy(doc)
    one(halfway, "Deployment")["status"]["availableReplicas"] = 1
    watcher = FakeWatcher(clock, doc)
    w = waiter(watcher, [applied(one(doc, "Deployment"))], progress_deadline_s=5)
    # the cluster moves after 4 s: the 5 s without progress start again from there
    original = watcher.wait_for_change

    def moving(since: int, timeout: float) -> int:
        if clock.now >= 1004 and len(watcher.snapshots) == 1:
            watcher.snapshots.append(halfway)
        return original(since, timeout)

    monkeypatch.setattr(watcher, "wait_for_change", moving)
    outcome = w.run()
    assert outcome.timed_out == "progress-deadline"
    assert clock.now >= 1004 + 5


def test_a_stale_generation_is_not_judged(clock):
    failing = load("image-pull")  # what the cache shows before it sees our apply
    fixed = rolled_out(load("image-pull"))
    for obj in fixed["items"]:
        if obj["kind"] == "Deployment":
            obj["metadata"]["generation"] = obj["status"]["observedGeneration"] = 2
            obj["status"].update(availableReplicas=1, readyReplicas=1, updatedReplicas=1)
    watcher = FakeWatcher(clock, failing, failing, fixed)
    target = applied(one(failing, "Deployment"), generation=2)
    w = waiter(watcher, [target], policy=cluster_policy())
    seen: list[str] = []
    w.on_update = lambda t: seen.append(t.verdict.reason)
    outcome = w.run()
    assert (outcome.failed, outcome.findings) == (False, [])  # the old pods' failure is not ours
    assert seen[0] == "waiting for the applied change to reach the cache"
    assert outcome.targets[0].verdict.ready


def test_a_replaced_job_waits_for_the_new_one(clock):
    doc = load("job-failed")
    old = copy.deepcopy(doc)
    one(old, "Job")["metadata"]["uid"] = "the-job-we-replaced"
    watcher = FakeWatcher(clock, old, doc)
    job = one(doc, "Job")
    logs: list[tuple[str, str]] = []

    def fetch_logs(pod: str, container: str) -> str | None:
        logs.append((pod, container))
        return "error: relation does not exist"

    w = waiter(watcher, [applied(job)], fetch_logs=fetch_logs)
    first: list[str] = []
    w.on_update = lambda t: first.append(t.verdict.reason)
    outcome = w.run()
    assert first[0] == "not in the watch cache yet"
    assert outcome.failed
    (finding,) = outcome.findings
    assert (finding.code, finding.resource) == ("job-failed", "Job/migrate")
    assert finding.evidence[-1] == "log: error: relation does not exist"


def test_crash_logs_are_fetched_once_per_restart(clock):
    doc = load("crash-loop")
    watcher = FakeWatcher(clock, doc, doc, doc)
    calls: list[tuple[str, str]] = []

    def fetch_logs(pod: str, container: str) -> str | None:
        calls.append((pod, container))
        return "boom"

    outcome = waiter(watcher, [applied(one(doc, "Deployment"))], fetch_logs=fetch_logs,
                     progress_deadline_s=3).run()
    assert outcome.timed_out == "progress-deadline"
    (finding,) = outcome.findings
    assert finding.code == "crash-loop" and not finding.fatal
    assert "log: boom" in finding.evidence
    assert len(calls) == 1


def test_claim_waiting_for_first_consumer_is_ready_at_once(clock):
    doc = load("pvc-wffc")
    classes = {c["metadata"]["name"]: c for c in doc["storageClasses"]}
    watcher = FakeWatcher(clock, doc)
    outcome = waiter(watcher, [applied(one(doc, "PersistentVolumeClaim"))],
                     storage_classes=classes).run()
    assert outcome.targets[0].verdict.ready and not outcome.timed_out


def test_kinds_that_only_exist_are_not_waited_and_warn(clock):
    ingress = {"kind": "Ingress", "metadata": {"name": "web", "namespace": "ns"}, "spec": {}}
    config = {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}}
    plain_cr = {"kind": "Widget", "metadata": {"name": "w", "namespace": "ns"}}
    watcher = FakeWatcher(clock, {"items": []})
    w = waiter(watcher, [applied(ingress), applied(config), applied(plain_cr)])
    assert w.targets == []
    outcome = w.run()
    assert not outcome.failed and not outcome.timed_out
    (warning,) = outcome.warnings
    assert warning.startswith("Ingress/web has no address")


def certificate(ready: str, generation: int = 1) -> dict:
    return {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "tls", "namespace": "ns", "generation": generation},
            "status": {"observedGeneration": generation,
                       "conditions": [{"type": "Ready", "status": ready, "reason": "Issuing"}]}}


def test_kinds_judged_by_conditions_are_watched_until_ready(clock):
    # a custom resource: the watcher is asked to mirror its kind, then it becomes Ready
    watcher = FakeWatcher(clock, {"items": [certificate("False")]},
                          {"items": [certificate("False")]}, {"items": [certificate("True")]})
    w = waiter(watcher, [applied(certificate("False"))])
    outcome = w.run()
    assert watcher.mirrored == [("cert-manager.io/v1", "Certificate")]
    assert outcome.targets[0].verdict.ready and not outcome.timed_out


def test_a_condition_kind_that_never_gets_ready_times_out_with_its_reason(clock):
    watcher = FakeWatcher(clock, {"items": [certificate("False")]})
    w = waiter(watcher, [applied(certificate("False"))], progress_deadline_s=4)
    outcome = w.run()
    assert outcome.timed_out == "progress-deadline"
    assert not_ready_summary(w) == ["Certificate/tls: Ready=False (Issuing)"]


def test_a_condition_kind_not_in_the_cache_says_so(clock):
    watcher = FakeWatcher(clock, {"items": []})
    gone = waiter(watcher, [applied(certificate("False"))], progress_deadline_s=2)
    gone.run()
    assert not_ready_summary(gone) == ["Certificate/tls: not in the watch cache yet"]


def test_daemonset_pods_are_diagnosed(clock):
    doc = load("image-pull")
    pod = copy.deepcopy(one(doc, "Pod"))
    pod["metadata"]["ownerReferences"] = [{"kind": "DaemonSet", "name": "agent", "uid": "ds-1",
                                           "controller": True}]
    pod["metadata"]["labels"]["pod-template-generation"] = "1"
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet",
          "metadata": {"name": "agent", "namespace": "rec-image-pull", "uid": "ds-1",
                       "generation": 1},
          "status": {"observedGeneration": 1, "desiredNumberScheduled": 1}}
    watcher = FakeWatcher(clock, {"items": [pod, ds], "events": doc["events"]})
    outcome = waiter(watcher, [applied(ds)], policy=cluster_policy()).run()
    assert outcome.failed
    assert [f.code for f in outcome.findings] == ["image-pull"]


def test_targets_are_reported_with_their_ref(clock):
    doc = load("slow-rollout")
    target = Target(applied(one(doc, "Deployment")))
    assert target.ref == "Deployment/web" and target.verdict.state == IN_PROGRESS


def test_the_waiting_reason_names_what_blocks_down_to_the_pod(clock):
    doc = load("unschedulable-cpu")
    deployment = one(doc, "Deployment")
    updates: list[str] = []
    watcher = FakeWatcher(clock, doc)
    w = waiter(watcher, [applied(deployment)], policy=Policy(tolerate_all=True),
               progress_deadline_s=2, on_update=lambda t: updates.append(t.waiting_for))
    w.run()
    (target,) = w.targets
    assert "not scheduled" in target.waiting_for and "Insufficient cpu" in target.waiting_for
    assert not target.waiting_for.startswith("Deployment/"), "the view names the target"
    assert updates and updates[-1] == target.waiting_for


def test_events_from_before_the_apply_are_no_evidence(clock):
    from datetime import UTC, datetime, timedelta

    doc = load("quota")
    seen = datetime(2026, 11, 26, 7, 9, 33, tzinfo=UTC)

    def run_at(now: datetime) -> list[str]:
        watcher = FakeWatcher(clock, doc)
        w = PhaseWaiter(watcher, [applied(one(doc, "Deployment"))], deadline=clock() + 2,
                        progress_deadline_s=2, policy=Policy(grace_s=0),
                        storage_classes={}, clock=clock, utcnow=lambda: now)
        return [f.code for f in w.run().findings]

    assert "create-failed" in run_at(seen + timedelta(seconds=1))
    # the quota was fixed and the deploy runs again a minute later: the old refusals stay
    # in the API for an hour, but they are not this run's
    assert "create-failed" not in run_at(seen + timedelta(seconds=60))


def test_a_ready_workload_without_a_probe_is_watched_a_while_before_it_counts(clock):
    # kwok-like: the Deployment is available the moment its container starts
    doc = rolled_out(load("slow-rollout"))
    started = LATER.isoformat().replace("+00:00", "Z")
    for obj in doc["items"]:
        if obj["kind"] == "Deployment":
            for c in obj["spec"]["template"]["spec"]["containers"]:
                c.pop("readinessProbe", None)
        if obj["kind"] == "Pod":
            obj["status"]["containerStatuses"] = [
                {"name": "web", "restartCount": 0, "ready": True,
                 "state": {"running": {"startedAt": started}}}]
    watcher = FakeWatcher(clock, doc)
    begin = clock()
    reasons: list[str] = []
    w = waiter(watcher, [applied(one(doc, "Deployment"))],
               on_update=lambda t: reasons.append(t.verdict.reason))
    w.utcnow = lambda: LATER + timedelta(seconds=clock() - begin)
    outcome = w.run()
    assert (outcome.failed, outcome.timed_out) == (False, "")
    assert 5 <= clock() - begin <= 6, watcher.waits  # held back the 5s of the default window
    assert any("no readiness probe" in r and "paless.io/settle" in r for r in reasons), reasons
    # a settle window of 0: ready on the first look
    doc2 = copy.deepcopy(doc)
    one(doc2, "Deployment")["metadata"].setdefault("annotations", {})["paless.io/settle"] = "0s"
    watcher2 = FakeWatcher(clock, doc2)
    assert waiter(watcher2, [applied(one(doc2, "Deployment"))]).run().timed_out == ""
    assert watcher2.waits == []


def _claim(phase: str, volume: str | None) -> dict:
    spec = {"storageClassName": "manual", **({"volumeName": volume} if volume else {})}
    return {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
            "metadata": {"name": "data", "namespace": "ns", "uid": "c1"},
            "spec": spec, "status": {"phase": phase}}


def test_a_pre_bound_claim_the_pv_controller_missed_is_nudged_once_after_a_second(clock):
    pending, bound = _claim("Pending", "pv-data"), _claim("Bound", "pv-data")
    # pending for 15 ticks of 0.1 s (1.5 s), then bound
    watcher = FakeWatcher(clock, *[{"items": [pending]}] * 15, {"items": [bound]})
    nudged: list[tuple[str, float]] = []
    outcome = waiter(watcher, [applied(pending)],
                     nudge_claim=lambda name: nudged.append((name, clock.now))).run()
    assert outcome.targets[0].verdict.ready
    assert len(nudged) == 1 and nudged[0][0] == "data"
    assert nudged[0][1] - 1000.0 >= CLAIM_NUDGE_AFTER_S  # not before the controller had its go


def test_a_claim_without_a_named_volume_is_never_nudged(clock):
    """A dynamically provisioned claim waits for its provisioner: touching it helps nothing."""
    pending = _claim("Pending", None)
    watcher = FakeWatcher(clock, *[{"items": [pending]}] * 30, {"items": [_claim("Bound", None)]})
    nudged: list[str] = []
    waiter(watcher, [applied(pending)], nudge_claim=nudged.append).run()
    assert nudged == []
