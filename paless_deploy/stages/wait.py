"""Wait stage: watch one phase's objects until each is ready, failed, or out of time.

Readiness comes from `core.readiness` (rules per kind), failures from `core.diagnosis`
(pods, ReplicaSets, Jobs, claims and their events), all read from a NamespaceWatcher's
mirror, so a failure is seen as soon as the API server records it. Kinds the watcher
does not mirror (a DaemonSet, a custom resource with conditions) are read again at most
once a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.apiviews import PodView
from paless_deploy.core.configuration.durations import short
from paless_deploy.core.diagnosis.claims import diagnose_pvc
from paless_deploy.core.diagnosis.deadline import describe_not_ready
from paless_deploy.core.diagnosis.eventlog import last_seen, parse_time
from paless_deploy.core.diagnosis.findings import ANNOTATION_SETTLE, Finding, Policy
from paless_deploy.core.diagnosis.hints import DATA_SERVICES
from paless_deploy.core.diagnosis.pods import diagnose_pod
from paless_deploy.core.diagnosis.readiness import (
    IN_PROGRESS,
    Readiness,
    claim_needs_nudge,
    generation_pending,
    hpa_warning,
    ingress_warning,
    is_waited,
    readiness,
    unsettled_s,
)
from paless_deploy.core.diagnosis.workloads import (
    diagnose_deployment,
    diagnose_job,
    diagnose_replicaset,
    diagnose_statefulset,
)
from paless_deploy.core.errors import DeployFailed
from paless_deploy.core.reporting.report import ObjectAction
from paless_deploy.stages.apply import Applied

EVENT_SKEW_S = 2.0  # how far this machine's clock may lag the API server's
TICK_S = 1.0  # re-evaluate time-based policies (grace periods) at least this often

# Controllers whose status describes the previous spec until they observe ours.
_GENERATION_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")


class WatchedNamespace(Protocol):
    """What the waiter reads from a NamespaceWatcher (and what a test's fake provides)."""

    kube: Any

    def get(self, kind: str, name: str) -> JsonDict | None: ...

    def items(self, kind: str) -> list[JsonDict]: ...

    def events_for(self, kind: str, name: str) -> list[JsonDict]: ...

    def wait_for_change(self, since: int, timeout: float) -> int: ...

    def mirror(self, api_version: str, kind: str) -> None: ...

    def poke(self) -> None: ...


@dataclass
class Target:
    """One applied object the phase waits for."""

    applied: Applied
    verdict: Readiness = field(default_factory=lambda: Readiness(IN_PROGRESS, "not seen yet"))
    ready_at: float | None = None
    waiting_for: str = ""  # while not ready: what blocks it, down to its pods (for the view)
    settling: bool = False  # ready, but watched a while longer (no readiness probe)
    nudged: bool = False  # a pre-bound claim the PV controller missed was touched once
    added_at: float = 0.0  # when the wait began (clock reading), for the claim nudge

    @property
    def ref(self) -> str:
        return self.applied.ref


@dataclass(frozen=True)
class Step:
    """What the rollout did between two rounds of the wait."""

    more: bool = False  # objects are still to be applied (or being applied)
    progressed: bool = False  # something was applied since the last round
    failed: bool = False  # an apply failed: stop waiting


@dataclass
class PhaseOutcome:
    """What the wait of one phase found."""

    targets: list[Target]
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed: bool = False
    timed_out: Literal["", "progress-deadline", "deadline"] = ""  # the reason in the report


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _owned_by(obj: Mapping[str, Any], uid: str | None) -> bool:
    return bool(uid) and any(o.get("uid") == uid
                             for o in (obj.get("metadata") or {}).get("ownerReferences") or [])


class PhaseWaiter:
    """Waits for the targets of one phase; the decisions live in readiness and diagnosis.

    `deadline` is a reading of `clock` (time.monotonic unless a test gives its own);
    `utcnow` measures the diagnosis' grace periods. The watcher is asked to mirror every
    kind awaited (CRDs included), so each is judged from a watch, never by polling.
    """

    def __init__(self, watcher: WatchedNamespace, targets: list[Applied], *,
                 deadline: float, progress_deadline_s: float, policy: Policy,
                 storage_classes: Mapping[str, JsonDict],
                 on_update: Callable[[Target], None] | None = None,
                 fetch_logs: Callable[[str, str], str | None] | None = None,
                 nudge_claim: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 utcnow: Callable[[], datetime] = _utcnow) -> None:
        self.watcher = watcher
        self.targets = [Target(a, added_at=clock()) for a in targets if _waited(a)]
        self.others = [a for a in targets if not _waited(a)]
        self.deadline = deadline
        self.progress_deadline_s = progress_deadline_s
        self.policy = policy  # for the cluster; tuned per object
        self.storage_classes = storage_classes
        self.on_update = on_update or (lambda t: None)
        self.fetch_logs = fetch_logs or (lambda pod, container: None)
        self.nudge_claim = nudge_claim
        self.clock = clock
        self.utcnow = utcnow
        # events older than this (less a little clock skew) belong to an earlier apply
        self.since = utcnow() - timedelta(seconds=EVENT_SKEW_S)
        self._logs_cache: dict[tuple[str, str, int], str | None] = {}
        for t in self.targets:
            self._mirror(t)

    def _mirror(self, t: Target) -> None:
        api_version = str(t.applied.live.get("apiVersion")
                          or (t.applied.body or {}).get("apiVersion") or "")
        self.watcher.mirror(api_version, t.applied.kind)

    def add(self, applied: Applied) -> Target | None:
        """Wait for one more applied object too (the rollout adds each as it is applied);
        None when its kind is ready once it exists (an Ingress, a ConfigMap)."""
        if not _waited(applied):
            self.others.append(applied)
            return None
        target = Target(applied, added_at=self.clock())
        self._mirror(target)
        self.targets.append(target)
        return target

    # -- evaluation ----------------------------------------------------------

    def _live(self, t: Target) -> JsonDict | None:
        live = self.watcher.get(t.applied.kind, t.applied.name)
        if live is None:
            return None
        if t.applied.kind == "Job" and live["metadata"].get("uid") != t.applied.uid:
            return None  # the replaced Job, not ours yet
        return live

    def _verdict(self, t: Target, live: JsonDict | None) -> Readiness:
        if live is None:
            return Readiness(IN_PROGRESS, "not in the watch cache yet")
        if t.applied.kind == "PersistentVolumeClaim":
            cls = (live.get("spec") or {}).get("storageClassName")
            sc = self.storage_classes.get(cls or "") or {}
            wffc = sc.get("volumeBindingMode") == "WaitForFirstConsumer"
            return readiness(live, wait_for_first_consumer=wffc)
        verdict = readiness(live, applied_generation=t.applied.generation)
        t.settling = False
        if verdict.ready:
            settle_s = self.policy.for_object(live).settle_s
            left = unsettled_s(live, self.pods_of(t, live), settle_s, self.utcnow())
            if left > 0:
                t.settling = True
                return Readiness(IN_PROGRESS, f"no readiness probe: watching its containers "
                                 f"run {short(settle_s)} before calling it ready "
                                 f"({left:.0f}s left; annotation {ANNOTATION_SETTLE})",
                                 verdict.progress)
        return verdict

    def pods_of(self, t: Target, live: JsonDict) -> list[JsonDict]:
        """The pods of the target's current revision (old revisions' pods are going away)."""
        kind = t.applied.kind
        uid = live["metadata"].get("uid")
        if kind == "Pod":
            return [live]
        pods = self.watcher.items("Pod")
        if kind in ("Job", "ReplicaSet"):
            return [p for p in pods if _owned_by(p, uid)]
        if kind == "StatefulSet":
            rev = (live.get("status") or {}).get("updateRevision")
            return [p for p in pods if _owned_by(p, uid) and (
                not rev or (p["metadata"].get("labels") or {}).get("controller-revision-hash") == rev)]
        if kind == "DaemonSet":
            generation = str(live["metadata"].get("generation") or "")
            return [p for p in pods if _owned_by(p, uid) and (p["metadata"].get("labels") or {})
                    .get("pod-template-generation", generation) == generation]
        if kind == "Deployment":
            rs = self.current_replicaset(live)
            return [] if rs is None else [p for p in pods if _owned_by(p, rs["metadata"].get("uid"))]
        return []

    def current_replicaset(self, deployment: JsonDict) -> JsonDict | None:
        uid = deployment["metadata"].get("uid")
        revision = ((deployment["metadata"].get("annotations") or {})
                    .get("deployment.kubernetes.io/revision"))
        owned = [rs for rs in self.watcher.items("ReplicaSet") if _owned_by(rs, uid)]
        for rs in owned:
            if (rs["metadata"].get("annotations") or {}).get(
                    "deployment.kubernetes.io/revision") == revision:
                return rs
        if revision:
            return None  # the new ReplicaSet is not in the cache yet: never judge the old one
        return max(owned, key=lambda rs: rs["metadata"].get("creationTimestamp", ""), default=None)

    def diagnose(self, t: Target, live: JsonDict | None) -> list[Finding]:
        """Findings for the target, its pods, its ReplicaSet and its claim."""
        if live is None:
            return []
        if (t.applied.kind in _GENERATION_KINDS
                and generation_pending(live, t.applied.generation)):
            # The cache still shows the spec before our apply: its pods are the old
            # revision's (perhaps the failure this apply fixes). Judge the new ones.
            return []
        policy = self.policy.for_object(live)
        now = self.utcnow()
        kind, name = t.applied.kind, t.applied.name
        pods = self.pods_of(t, live)
        findings: list[Finding] = []
        if kind == "Deployment":
            findings += diagnose_deployment(live, self._events(kind, name), policy)
            rs = self.current_replicaset(live)
            if rs is not None:
                findings += diagnose_replicaset(
                    rs, self._events("ReplicaSet", rs["metadata"]["name"]), policy, now,
                    self.since)
        elif kind == "ReplicaSet":
            findings += diagnose_replicaset(live, self._events(kind, name), policy, now,
                                            self.since)
        elif kind == "StatefulSet":
            findings += diagnose_statefulset(live, self._events(kind, name), policy, now,
                                             self.since)
        elif kind == "Job":
            failed_logs = next((self._crash_logs(p) for p in pods if self._crash_logs(p)), None)
            findings += diagnose_job(live, self._events(kind, name), policy, pods=pods,
                                     logs=failed_logs)
        elif kind == "PersistentVolumeClaim":
            cls = (live.get("spec") or {}).get("storageClassName")
            findings += diagnose_pvc(live, self._events(kind, name),
                                     self.storage_classes.get(cls or ""), policy, now)
        unready = self._unready_data_services()
        for pod in pods:
            pname = pod["metadata"]["name"]
            findings += diagnose_pod(pod, self._events("Pod", pname), policy, now,
                                     logs=self._crash_logs(pod), unready_services=unready)
        return findings

    def _unready_data_services(self) -> tuple[str, ...]:
        """postgres, redis, minio StatefulSets not ready (for the dependency hints)."""
        out = []
        for sts in self.watcher.items("StatefulSet"):
            name = sts["metadata"]["name"]
            if name in DATA_SERVICES and not readiness(sts).ready:
                out.append(name)
        return tuple(out)

    def _crash_logs(self, pod: JsonDict) -> str | None:
        """Last lines of the previous instance of a restarting container (once per restart)."""
        view = PodView.of(pod)
        for cs in view.main_statuses:
            restarted = cs.restarts > 0 and cs.last_terminated is not None
            if cs.waiting_reason == "CrashLoopBackOff" or (
                    cs.terminated and cs.terminated.exit_code) or restarted:
                key = (view.name, cs.name, cs.restarts)
                if key not in self._logs_cache:
                    self._logs_cache[key] = self.fetch_logs(view.name, cs.name)
                return self._logs_cache[key]
        return None

    # -- the loop ------------------------------------------------------------

    def run(self, between: Callable[[], Step] | None = None) -> PhaseOutcome:
        """Wait until every target is ready, one failed, or time ran out.

        `between` runs before each round (the rollout starts what became startable there,
        and adds the objects it applied): while it says work is left the wait goes on even
        when every target so far is ready, and what it did counts as progress."""
        outcome = PhaseOutcome(targets=self.targets)
        last_progress = self.clock()
        signatures: dict[str, tuple[Any, ...]] = {}
        version = -1
        while True:
            step = between() if between is not None else Step()
            now_m = self.clock()
            if step.progressed:
                last_progress = now_m
            all_ready, progressed = self._round(outcome, signatures, now_m)
            if progressed:
                last_progress = now_m
            if (all_ready and not step.more) or outcome.failed or step.failed:
                break
            if now_m >= self.deadline:
                outcome.timed_out = "deadline"
                break
            if now_m - last_progress >= self.progress_deadline_s:
                outcome.timed_out = "progress-deadline"
                break
            wake = min(self.deadline, last_progress + self.progress_deadline_s) - now_m
            version = self.watcher.wait_for_change(version, max(0.05, min(TICK_S, wake)))
        outcome.targets = list(self.targets)
        outcome.warnings = self._warnings()
        return outcome

    def _round(self, outcome: PhaseOutcome, signatures: dict[str, tuple[Any, ...]], now_m: float
               ) -> tuple[bool, bool]:
        """Judge every target once: (all ready, anything moved)."""
        all_ready, progressed = True, False
        findings: list[Finding] = []
        for t in list(self.targets):
            live = self._live(t)
            verdict = self._verdict(t, live)
            if (self.nudge_claim is not None and live is not None and not verdict.ready
                    and not t.nudged and t.applied.kind == "PersistentVolumeClaim"
                    and claim_needs_nudge(live, now_m - t.added_at)):
                t.nudged = True
                self.nudge_claim(t.applied.name)
            sig = (verdict.state, verdict.progress)
            if signatures.get(t.ref) != sig:
                signatures[t.ref] = sig
                progressed = True
            detail = "" if verdict.ready else self._waiting_for(t, live, verdict)
            if verdict != t.verdict or detail != t.waiting_for:
                t.verdict, t.waiting_for = verdict, detail
                if verdict.ready and t.ready_at is None:
                    t.ready_at = now_m
                self.on_update(t)
            if not verdict.ready:
                all_ready = False
                findings += [replace(f, workload=t.ref) for f in self.diagnose(t, live)]
            if verdict.failed:
                outcome.failed = True
        outcome.findings = _dedupe(findings)
        if any(f.fatal for f in outcome.findings):
            outcome.failed = True
        return all_ready, progressed

    def _events(self, kind: str, name: str) -> list[JsonDict]:
        """The object's events of this phase: an event last seen before the apply (a quota
        refusal of the previous run, fixed since) is no evidence of a failure now."""
        return [e for e in self.watcher.events_for(kind, name)
                if (seen := parse_time(last_seen(e))) is None or seen >= self.since]

    def _waiting_for(self, t: Target, live: JsonDict | None, verdict: Readiness) -> str:
        """What blocks a target, down to its pods: `1 of 3 replicas available, 1 updated;
        pod web-5d8-x: not scheduled (Unschedulable: 0/4 nodes are available: ...)`."""
        if live is None or t.settling:
            return verdict.reason
        text = describe_not_ready(live, self.pods_of(t, live))
        return text.removeprefix(f"{t.ref}: ")

    def _warnings(self) -> list[str]:
        out = []
        for a in self.others:
            if a.kind == "Ingress":
                w = ingress_warning(a.live)
            elif a.kind == "HorizontalPodAutoscaler":
                w = hpa_warning(a.live) if a.action != ObjectAction.CREATED else None
            else:
                w = None
            if w:
                out.append(w)
        return out


def _waited(applied: Applied) -> bool:
    return is_waited({"kind": applied.kind, **(applied.live or {})})


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for f in findings:
        key = (f.code, f.resource, f.reason)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def not_ready_summary(waiter: PhaseWaiter) -> list[str]:
    """Each target still not ready and what it waits for (for the deadline message)."""
    lines = []
    for t in waiter.targets:
        if t.verdict.ready:
            continue
        live = waiter._live(t)
        lines.append(describe_not_ready(live, waiter.pods_of(t, live)) if live is not None
                     else f"{t.ref}: {t.verdict.reason}")
    return lines


def deadline_error(phase: str, waiter: PhaseWaiter, outcome: PhaseOutcome, namespace: str,
                   progress_deadline_s: float) -> DeployFailed:
    """The message of a phase that ran out of time: every resource still not ready, and why."""
    waiting = not_ready_summary(waiter)
    what = ("made no progress for " + _secs(progress_deadline_s)
            if outcome.timed_out == "progress-deadline" else "ran out of time (--timeout)")
    err = DeployFailed(
        f"Phase {phase} {what}. Still not ready: " + " | ".join(waiting),
        "See the findings above; raise --progress-deadline/--timeout if the cluster is just slow. "
        f"Look further: kubectl get pods -n {namespace}; kubectl get events -n {namespace} "
        "--sort-by=.lastTimestamp",
        code="deadline")
    err.resource = ", ".join(t.ref for t in waiter.targets if not t.verdict.ready)
    err.reason = outcome.timed_out
    err.commands = [f"kubectl get pods -n {namespace}",
                    f"kubectl get events -n {namespace} --sort-by=.lastTimestamp"]
    return err


def _secs(s: float) -> str:
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.1f}m"
