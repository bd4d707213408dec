"""Rollout stage: apply a deploy graph, each object as soon as what it waits for is ready,
and await everything together.

Nothing waits for a phase or a wave to finish, only for its own needs (core.plan.graph):
applies run in parallel, and readiness comes from one PhaseWaiter over the namespace's
mirror, so workloads without readiness probes settle at the same time. A waited object
outside the namespace (an APIService, a CRD, a workload in another namespace) is watched
on its own. A failed object or apply stops new applies; what is in flight finishes. The
named phases stay as labels: each group is announced when its first object is applied
and done when its last is ready, and the report keeps one entry per group.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from paless_deploy.adapters.kube import cluster_errors
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.diagnosis.readiness import (
    IN_PROGRESS,
    Readiness,
    State,
    is_waited,
    readiness,
)
from paless_deploy.core.errors import PalessError
from paless_deploy.core.plan.graph import DeployGraph
from paless_deploy.core.plan.plan import PHASE_ORDER
from paless_deploy.core.reporting.report import ObjectAction, ObjectReport, PhaseReport
from paless_deploy.stages.apply import Applied
from paless_deploy.stages.wait import PhaseOutcome, PhaseWaiter, Step, Target

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube

APPLY_PARALLELISM = 8
PENDING, APPLYING, WAITING, READY, FAILED = "pending", "applying", "waiting", "ready", "failed"


def now_iso() -> str:
    """The time now as the report writes it (UTC, microseconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class ObjectRun:
    """One object of the rollout: where it is, what its apply did, and when."""

    state: str = PENDING
    applied: Applied | None = None
    applied_at: str | None = None
    ready_at: str | None = None
    verdict: Readiness | None = None


@dataclass
class GroupRun:
    """One phase label: when its first object started, when its last became ready."""

    started_at: str
    started: float
    took: float | None = None


@dataclass(frozen=True)
class Shown:
    """An applied object as the view names it (with its namespace when not the target)."""

    ref: str
    action: ObjectAction


class RolloutView(Protocol):
    """What the rollout tells the user (ui.view.DeployView)."""

    def applied(self, a: Shown) -> None: ...

    def target_update(self, t: Target) -> None: ...

    def group_started(self, name: str, count: int) -> None: ...

    def group_done(self, name: str, ok: bool, took: float) -> None: ...


@dataclass
class Rollout:
    """Applies the objects of a deploy graph and awaits them (see the module docstring).

    `apply` applies one object (and returns what happened); `awaited` says whether an
    applied object is waited for at all (`deploy APP` skips the unchanged others);
    `waiter` judges readiness inside the namespace. `run` may be called more than once
    (definitions first, then the rest): what earlier runs made ready stays ready.
    """

    kube: Kube
    graph: DeployGraph
    waiter: PhaseWaiter
    apply: Callable[[JsonDict], Applied]
    awaited: Callable[[Applied], bool]
    view: RolloutView
    namespace: str
    parallel: int = APPLY_PARALLELISM
    clock: Callable[[], float] = time.monotonic
    runs: list[ObjectRun] = field(default_factory=list)
    groups: dict[str, GroupRun] = field(default_factory=dict)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.runs = [ObjectRun() for _ in self.graph.nodes]
        self._members: set[int] = set()
        self._scope: set[int] = set()
        self._futures: dict[Future[Applied], int] = {}
        self._outside: dict[int, Readiness] = {}  # finished watches of objects outside
        self._lock = threading.Lock()
        self._by_target: dict[int, int] = {}  # id(Target) -> index
        self._targets: dict[int, Target] = {}  # index -> its Target in the waiter
        self._forward = self.waiter.on_update
        self.waiter.on_update = self._target_update

    # -- running ---------------------------------------------------------------

    def run(self, members: Iterable[int], scope: Iterable[int] = ()) -> PhaseOutcome:
        """Apply and await these objects of the graph; the wait's outcome. A failed apply
        is raised (after what was in flight finished). `scope`: every object this rollout
        will apply over its runs (a phase label's group is done when all of its are)."""
        self._members = set(members)
        self._scope |= set(scope) | self._members
        pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="apply")
        self._pool = pool
        try:
            outcome = self.waiter.run(between=self._step)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        self._collect()
        self._close_groups()
        if self.error is not None:
            raise self.error
        return outcome

    def _step(self) -> Step:
        progressed = self._collect()
        if self.error is None and not self._failed():
            progressed = self._start() or progressed
        more = any(self.runs[i].state in (PENDING, APPLYING) or
                   (self.runs[i].state == WAITING and i not in self._waited_here())
                   for i in self._members)
        return Step(more=more, progressed=progressed,
                    failed=self.error is not None or self._failed())

    def _failed(self) -> bool:
        return any(self.runs[i].state == FAILED for i in self._members)

    def _waited_here(self) -> set[int]:
        return set(self._targets)

    def _start(self) -> bool:
        started = False
        for i in sorted(self._members):
            if self.runs[i].state == PENDING and self._needs_met(i):
                self.runs[i].state = APPLYING
                self._group_start(i)
                future = self._pool.submit(self._apply_one, i)
                self._futures[future] = i
                started = True
        return started

    def _needs_met(self, i: int) -> bool:
        for need in self.graph.nodes[i].needs:
            state = self.runs[need.on].state
            if need.on not in self._members and state == PENDING:
                continue  # not part of this rollout: there already
            if state != READY and not (not need.ready and state == WAITING):
                return False
        return True

    def _apply_one(self, i: int) -> Applied:
        try:
            return self.apply(self.graph.nodes[i].obj)
        finally:
            self.waiter.watcher.poke()

    def _collect(self) -> bool:
        """Take in finished applies and finished outside watches; True when any."""
        progressed = False
        for future in [f for f in self._futures if f.done()]:
            i = self._futures.pop(future)
            progressed = True
            try:
                applied = future.result()
            except BaseException as exc:  # noqa: BLE001 - raised again at the end of run
                self.runs[i].state = FAILED
                self.error = self.error or exc
                continue
            self._applied(i, applied)
        with self._lock:
            finished, self._outside = self._outside, {}
        for i, verdict in finished.items():
            progressed = True
            self._judged(i, verdict)
        return progressed

    def _applied(self, i: int, applied: Applied) -> None:
        run = self.runs[i]
        run.applied, run.applied_at, run.state = applied, now_iso(), WAITING
        self.view.applied(Shown(applied.ref + (
            f" in {applied.namespace}" if applied.namespace not in (None, self.namespace)
            else ""), applied.action))
        if not self.awaited(applied):
            self._judged(i, Readiness(State.READY, ""))
        elif applied.namespace not in (None, self.namespace) or (
                applied.namespace is None and is_waited({"kind": applied.kind,
                                                         **applied.live})):
            self._watch_outside(i, applied)
        else:
            target = self.waiter.add(applied)
            if target is None:
                self._judged(i, Readiness(State.READY, ""))
            else:
                self._by_target[id(target)] = i
                self._targets[i] = target

    def _watch_outside(self, i: int, applied: Applied) -> None:
        """Watch an object outside the namespace until it is ready or failed."""
        def watch() -> None:
            kind = self.kube.kind(str(applied.live.get("apiVersion") or ""), applied.kind)
            left = max(1.0, self.waiter.deadline - self.clock())
            try:
                with cluster_errors(self.kube, f"waiting for {applied.ref}", applied.namespace):
                    live = self.kube.watch_until(
                        kind, applied.name, applied.namespace,
                        lambda o: o is not None and readiness(o).state != IN_PROGRESS, left)
                verdict = (readiness(live) if live is not None
                           else Readiness(IN_PROGRESS, "not found"))
            except PalessError as exc:
                verdict = Readiness(State.FAILED, exc.message)
            with self._lock:
                self._outside[i] = verdict
            self.waiter.watcher.poke()

        if not is_waited({"kind": applied.kind, **applied.live}):
            self._judged(i, Readiness(State.READY, ""))
            return
        threading.Thread(target=watch, name=f"wait-{applied.ref}", daemon=True).start()

    def _target_update(self, t: Target) -> None:
        i = self._by_target.get(id(t))
        if i is not None and (t.verdict.ready or t.verdict.failed):
            self._judged(i, t.verdict)
            self.waiter.watcher.poke()  # what waited for it may start at once
        self._forward(t)

    def _judged(self, i: int, verdict: Readiness) -> None:
        run = self.runs[i]
        run.verdict = verdict
        if verdict.ready and run.state != READY:
            run.state, run.ready_at = READY, now_iso()
            self._group_check(self.graph.nodes[i].phase)
        elif verdict.failed:
            run.state = FAILED

    # -- groups (the phase labels) --------------------------------------------

    def _group_start(self, i: int) -> None:
        name = self.graph.nodes[i].phase
        if name not in self.groups:
            self.groups[name] = GroupRun(now_iso(), self.clock())
            count = sum(1 for j in self._scope if self.graph.nodes[j].phase == name)
            self.view.group_started(name, count)

    def _group_check(self, name: str) -> None:
        group = self.groups.get(name)
        members = [j for j in self._scope if self.graph.nodes[j].phase == name]
        if group is not None and group.took is None and all(
                self.runs[j].state == READY for j in members):
            group.took = self.clock() - group.started
            self.view.group_done(name, True, group.took)

    def _close_groups(self) -> None:
        """At the end of a run that stopped: the groups it left unfinished are not ready."""
        if not self._failed() and self.error is None:
            return
        for name, group in self.groups.items():
            if group.took is None:
                group.took = self.clock() - group.started
                self.view.group_done(name, False, group.took)

    # -- what the report and the messages need --------------------------------

    def in_progress(self) -> str:
        """The earliest phase label with an object being applied or awaited ("" none)."""
        busy = {self.graph.nodes[i].phase for i, r in enumerate(self.runs)
                if r.state in (APPLYING, WAITING)}
        return next((p for p in PHASE_ORDER if p in busy), "")

    def not_applied(self) -> list[int]:
        return [i for i in sorted(self._members) if self.runs[i].applied is None]

    def failed(self) -> list[int]:
        return [i for i, r in enumerate(self.runs) if r.state == FAILED]

    def waiting(self) -> list[int]:
        return [i for i, r in enumerate(self.runs) if r.state == WAITING]

    def waiting_outside(self) -> list[str]:
        """What is still awaited outside the namespace (the waiter does not know it)."""
        out = []
        for i in self.waiting():
            applied = self.runs[i].applied
            if i not in self._targets and applied is not None:
                out.append(applied.ref + (f" in {applied.namespace}" if applied.namespace
                                          else ""))
        return out

    def phase_reports(self) -> list[PhaseReport]:
        """One entry per phase label with anything applied, in the phases' order."""
        reports = []
        for name, members in self.graph.groups():
            group = self.groups.get(name)
            objects = [self._object_report(j) for j in members if self.runs[j].applied]
            if group is None or not objects:
                continue
            took = group.took if group.took is not None else self.clock() - group.started
            reports.append(PhaseReport(name, group.started_at, round(took, 3), objects))
        return reports

    def _object_report(self, i: int) -> ObjectReport:
        run = self.runs[i]
        applied = run.applied
        assert applied is not None
        target = self._targets.get(i)
        verdict = target.verdict if target is not None else run.verdict
        ready = run.state == READY if verdict is not None or run.state != WAITING else None
        return ObjectReport(
            applied.kind, applied.name, applied.action, ready,
            verdict.reason if verdict is not None and not verdict.ready else "",
            api_version=str((applied.body or applied.live or {}).get("apiVersion") or ""),
            applied_at=run.applied_at, ready_at=run.ready_at,
            namespace=applied.namespace or "")


def members_of(graph: DeployGraph, definitions: bool) -> list[int]:
    """The objects applied before the dry run (definitions) or after it (the rest)."""
    return [i for i, node in enumerate(graph.nodes) if node.definition == definitions]


def refs(graph: DeployGraph, indices: Sequence[int]) -> list[str]:
    return [graph.nodes[i].ref for i in indices]
