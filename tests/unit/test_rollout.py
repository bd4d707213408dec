"""stages.rollout.Rollout on plain data: a fake apply and a fake namespace mirror. Each
object is applied as soon as what it waits for is ready (no wave or phase barrier), a
failure stops what waits for it, and the report carries when each was applied and ready."""

from __future__ import annotations

import threading
import time
from typing import Any

from paless_deploy.core.diagnosis.findings import Policy
from paless_deploy.core.plan.graph import build_graph
from paless_deploy.core.reporting.report import ObjectAction
from paless_deploy.stages.apply import Applied
from paless_deploy.stages.rollout import Rollout
from paless_deploy.stages.wait import PhaseWaiter

NS = "team"
SETTLE = {"paless.io/settle": "0s"}


class Mirror:
    """The namespace as the fake apply leaves it; pokes and changes wake the waiter."""

    def __init__(self) -> None:
        self.kube = None
        self.objects: dict[tuple[str, str], dict] = {}
        self.version = 0
        self.changed = threading.Condition()

    def put(self, obj: dict) -> None:
        with self.changed:
            self.objects[(obj["kind"], obj["metadata"]["name"])] = obj
            self.version += 1
            self.changed.notify_all()

    def get(self, kind: str, name: str) -> dict | None:
        with self.changed:
            return self.objects.get((kind, name))

    def items(self, kind: str) -> list[dict]:
        with self.changed:
            return [o for (k, _), o in self.objects.items() if k == kind]

    def events_for(self, kind: str, name: str) -> list[dict]:
        return []

    def mirror(self, api_version: str, kind: str) -> None:
        pass

    def poke(self) -> None:
        with self.changed:
            self.version += 1
            self.changed.notify_all()

    def wait_for_change(self, since: int, timeout: float) -> int:
        with self.changed:
            if self.version == since:
                self.changed.wait(timeout)
            return self.version


class View:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def applied(self, a: Any) -> None:
        self.lines.append(f"applied {a.ref}")

    def target_update(self, t: Any) -> None:
        pass

    def group_started(self, name: str, count: int) -> None:
        self.lines.append(f"group {name} started")

    def group_done(self, name: str, ok: bool, took: float) -> None:
        self.lines.append(f"group {name} {'ready' if ok else 'FAILED'}")


def config(name: str, depends_on: str = "") -> dict:
    meta: dict = {"name": name, "namespace": NS}
    if depends_on:
        meta["annotations"] = {"paless.io/depends-on": depends_on}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def job(name: str, outcome: str, depends_on: str = "") -> dict:
    obj: dict[str, Any] = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}",
                        "annotations": {"paless.io/phase": "data-init"}},
           "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x:1"}]}}},
           "status": {"conditions": [{"type": outcome, "status": "True"}]}}
    if depends_on:
        obj["metadata"]["annotations"]["paless.io/depends-on"] = depends_on
    return obj


def rollout_of(objects: list[dict], mirror: Mirror, held: dict[str, threading.Event],
               order: list[str]) -> Rollout:
    def apply(obj: dict) -> Applied:
        name = obj["metadata"]["name"]
        if name in held:
            assert held[name].wait(10), f"{name} was never released"
        mirror.put(obj)
        order.append(name)
        return Applied(obj["kind"], name, NS, ObjectAction.CREATED, None,
                       obj["metadata"].get("uid", ""), dict(obj), body=obj)

    waiter = PhaseWaiter(mirror, [], deadline=time.monotonic() + 30, progress_deadline_s=30,
                         policy=Policy(), storage_classes={})
    return Rollout(None, build_graph(objects), waiter, apply, lambda a: True,  # type: ignore[arg-type]
                   View(), NS)


def test_an_object_starts_as_soon_as_its_own_needs_are_ready_not_after_a_wave() -> None:
    # a (slow) <- c, and b <- d: d must not wait for a, though a and b share wave 0
    objects = [config("a"), config("b"), config("c", "ConfigMap/a"), config("d", "ConfigMap/b")]
    mirror, order = Mirror(), list[str]()
    release = threading.Event()
    rollout = rollout_of(objects, mirror, {"a": release}, order)
    done: list[Any] = []
    runner = threading.Thread(target=lambda: done.append(rollout.run(range(4))))
    runner.start()
    deadline = time.monotonic() + 10
    while "d" not in order and time.monotonic() < deadline:
        time.sleep(0.01)
    assert order[:2] == ["b", "d"] and "a" not in order and "c" not in order
    release.set()
    runner.join(10)
    assert order == ["b", "d", "a", "c"]
    outcome = done[0]
    assert not outcome.failed and not outcome.timed_out
    reports = {o.name: o for p in rollout.phase_reports() for o in p.objects}
    assert all(o.ready and o.applied_at and o.ready_at for o in reports.values())
    assert str(reports["a"].ready_at) <= str(reports["c"].applied_at)


def test_a_job_is_awaited_before_what_needs_it_and_a_failure_stops_its_dependents() -> None:
    objects = [job("ok", "Complete"), config("after-ok", "Job/ok"),
               job("broken", "Failed"), config("after-broken", "Job/broken")]
    mirror, order = Mirror(), list[str]()
    rollout = rollout_of(objects, mirror, {}, order)
    outcome = rollout.run(range(4))
    assert outcome.failed
    assert "after-broken" not in order
    assert [objects[i]["metadata"]["name"] for i in rollout.not_applied()] == ["after-broken"]
    assert [objects[i]["metadata"]["name"] for i in rollout.failed()] == ["broken"]
    groups = {p.name: p for p in rollout.phase_reports()}
    broken = next(o for o in groups["data-init"].objects if o.name == "broken")
    assert broken.ready is False and broken.ready_at is None


def test_a_second_run_keeps_what_the_first_made_ready() -> None:
    # definitions first, then the rest: needs on the first run's objects are met
    objects = [config("a"), config("b", "ConfigMap/a")]
    mirror, order = Mirror(), list[str]()
    rollout = rollout_of(objects, mirror, {}, order)
    rollout.run([0], scope=[0, 1])
    rollout.run([1], scope=[0, 1])
    assert order == ["a", "b"]
    view = rollout.view
    assert isinstance(view, View)
    assert view.lines.count("group config started") == 1
    assert view.lines[-1] == "group config ready", "done only when both runs' objects are"


def _unprobed(name: str, started: str) -> list[dict]:
    """A ready Deployment without readiness probes, its ReplicaSet and its running pod."""
    revision = {"deployment.kubernetes.io/revision": "1"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "uid": f"d-{name}", "generation": 1,
                     "annotations": revision},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "x:1"}]}}},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                   "availableReplicas": 1, "readyReplicas": 1}}
    owner = [{"uid": f"d-{name}"}]
    rs = {"kind": "ReplicaSet", "metadata": {"name": f"{name}-1", "uid": f"rs-{name}",
                                             "ownerReferences": owner,
                                             "annotations": revision}}
    pod = {"kind": "Pod", "metadata": {"name": f"{name}-1-x", "ownerReferences": [
        {"uid": f"rs-{name}"}]}, "status": {"phase": "Running", "containerStatuses": [
            {"name": "c", "ready": True, "restartCount": 0,
             "state": {"running": {"startedAt": started}}}]}}
    return [deployment, rs, pod]


def test_workloads_without_probes_settle_together() -> None:
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 1, 1, tzinfo=UTC)
    now = [start + timedelta(seconds=1)]
    a, b = _unprobed("a", "2026-01-01T00:00:00Z"), _unprobed("b", "2026-01-01T00:00:00Z")
    mirror, order = Mirror(), list[str]()
    for extra in (*a[1:], *b[1:]):
        mirror.put(extra)
    rollout = rollout_of([a[0], b[0]], mirror, {}, order)
    rollout.waiter.utcnow = lambda: now[0]
    done: list[Any] = []
    runner = threading.Thread(target=lambda: done.append(rollout.run(range(2))))
    runner.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
            len(rollout.waiter.targets) == 2
            and all(t.settling for t in rollout.waiter.targets)):
        time.sleep(0.01)
    # both are held back by their settle window at the same time: neither waits for the other
    assert [t.settling for t in rollout.waiter.targets] == [True, True]
    now[0] = start + timedelta(seconds=10)
    mirror.poke()
    runner.join(10)
    assert not done[0].failed and not done[0].timed_out
    assert [t.verdict.ready for t in rollout.waiter.targets] == [True, True]
