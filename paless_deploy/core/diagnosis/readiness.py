"""Readiness rules per kind, as data: is this live object ready, failed, or still in progress?

Pure functions over API JSON dicts (camelCase, as the API server returns them), in the
spirit of kstatus: `RULES` maps a kind to its rule; a kind without one is judged by the
conditions every well-behaved controller writes (`observedGeneration`, `Ready` /
`Available`, `Reconciling` / `Stalled`), and is ready as soon as it exists when it carries
none of them. To add a kind: write its rule here and give it a row in `RULES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from paless_deploy.core.apitypes import ApiObject, JsonValue
from paless_deploy.core.apiviews import PodView, Replicas
from paless_deploy.core.diagnosis.eventlog import age
from paless_deploy.core.manifests.objects import condition, nested
from paless_deploy.core.manifests.podspec import pod_spec


class State(StrEnum):
    """Where an object stands (`status`'s workloads name it)."""

    READY = "ready"
    IN_PROGRESS = "in-progress"
    FAILED = "failed"


READY, IN_PROGRESS, FAILED = State  # the short names the rules below are written with


@dataclass(frozen=True)
class Readiness:
    """The verdict on one object: state, why (for people), and a progress signature."""

    state: State
    reason: str = ""
    progress: tuple[JsonValue, ...] = ()  # changes whenever the object moves forward

    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def failed(self) -> bool:
        return self.state == FAILED


@dataclass(frozen=True)
class Facts:
    """What a rule may need besides the object itself."""

    applied_generation: int | None = None  # metadata.generation our apply produced
    wait_for_first_consumer: bool = False  # the claim's StorageClass binds on first use


Rule = Callable[[ApiObject, Facts], Readiness]


def generation_pending(obj: ApiObject, applied_generation: int | None) -> str | None:
    """Why the controller has not yet looked at the applied spec, or None when it has.

    Until it has, the object's status (and its pods) describe the previous revision.
    """
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    generation = int(meta.get("generation") or 0)
    if applied_generation is not None and generation < applied_generation:
        return "waiting for the applied change to reach the cache"
    if int(status.get("observedGeneration") or 0) < generation:
        return "controller has not observed the new generation yet"
    return None


def _int(obj: ApiObject, *path: str) -> int:
    return int(nested(obj, *path) or 0)


# --- rules, one per kind ----------------------------------------------------------------------

def deployment_readiness(obj: ApiObject, facts: Facts = Facts()) -> Readiness:
    """updated = available = desired replicas, no old replicas, generation observed."""
    r = Replicas.of(obj)
    desired, updated, available, total = r.desired, r.updated, r.available, r.total
    progress = (updated, available, total, r.ready)
    progressing = condition(obj, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Readiness(FAILED, f"progress deadline exceeded: {progressing.get('message', '')}",
                         progress)
    waiting = generation_pending(obj, facts.applied_generation)
    if waiting:
        return Readiness(IN_PROGRESS, waiting, progress)
    if updated < desired:
        return Readiness(IN_PROGRESS, f"{updated} of {desired} replicas updated", progress)
    if total > updated:
        return Readiness(IN_PROGRESS, f"{total - updated} old replicas pending termination", progress)
    if available < desired:
        return Readiness(IN_PROGRESS, f"{available} of {desired} replicas available", progress)
    return Readiness(READY, f"{available}/{desired} available", progress)


def statefulset_readiness(obj: ApiObject, facts: Facts = Facts()) -> Readiness:
    """ready = desired replicas, current revision = update revision, generation observed."""
    r = Replicas.of(obj)
    desired, ready, updated = r.desired, r.ready, r.updated
    progress = (ready, updated, r.current_revision, r.update_revision)
    waiting = generation_pending(obj, facts.applied_generation)
    if waiting:
        return Readiness(IN_PROGRESS, waiting, progress)
    strategy = nested(obj, "spec", "updateStrategy", "type") or "RollingUpdate"
    rolling = strategy == "RollingUpdate"
    if rolling and updated < desired:
        return Readiness(IN_PROGRESS, f"{updated} of {desired} replicas updated", progress)
    if rolling and desired and r.current_revision != r.update_revision:
        return Readiness(IN_PROGRESS, "rolling update in progress", progress)
    if ready < desired:
        return Readiness(IN_PROGRESS, f"{ready} of {desired} replicas ready", progress)
    return Readiness(READY, f"{ready}/{desired} ready", progress)


def daemonset_readiness(obj: ApiObject, facts: Facts = Facts()) -> Readiness:
    """Every node that should run a pod runs an updated, available one; generation observed."""
    desired = nested(obj, "status", "desiredNumberScheduled")
    updated = _int(obj, "status", "updatedNumberScheduled")
    available = _int(obj, "status", "numberAvailable")
    progress = (desired, updated, available, _int(obj, "status", "numberReady"))
    waiting = generation_pending(obj, facts.applied_generation)
    if waiting:
        return Readiness(IN_PROGRESS, waiting, progress)
    if desired is None:
        return Readiness(IN_PROGRESS, "controller has not counted its nodes yet", progress)
    if updated < int(desired):
        return Readiness(IN_PROGRESS, f"{updated} of {desired} pods updated", progress)
    if available < int(desired):
        return Readiness(IN_PROGRESS, f"{available} of {desired} pods available", progress)
    return Readiness(READY, f"{available}/{desired} available", progress)


def replicaset_readiness(obj: ApiObject, facts: Facts = Facts()) -> Readiness:
    """available = ready = desired replicas, none in excess, generation observed."""
    r = Replicas.of(obj)
    desired, available, total = r.desired, r.available, r.total
    progress = (total, r.ready, available)
    waiting = generation_pending(obj, facts.applied_generation)
    if waiting:
        return Readiness(IN_PROGRESS, waiting, progress)
    failure = condition(obj, "ReplicaFailure")
    if failure and failure.get("status") == "True":
        # Quota or admission: may clear by itself; the diagnosis says why and when to stop.
        return Readiness(IN_PROGRESS, f"cannot create pods ({failure.get('reason', '')})",
                         progress)
    if available < desired:
        return Readiness(IN_PROGRESS, f"{available} of {desired} replicas available", progress)
    if total > desired:
        return Readiness(IN_PROGRESS, f"{total - desired} replicas pending termination", progress)
    return Readiness(READY, f"{available}/{desired} available", progress)


def job_readiness(obj: ApiObject, facts: Facts = Facts()) -> Readiness:
    """Complete condition: ready; Failed condition: failed."""
    status = obj.get("status") or {}
    progress = (status.get("active"), status.get("succeeded"), status.get("failed"))
    failed = condition(obj, "Failed")
    if failed and failed.get("status") == "True":
        return Readiness(FAILED, f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}".rstrip(": "),
                         progress)
    complete = condition(obj, "Complete")
    if complete and complete.get("status") == "True":
        return Readiness(READY, "complete", progress)
    active = int(status.get("active") or 0)
    return Readiness(IN_PROGRESS, f"{active} pod(s) running, not complete yet" if active
                     else "waiting for its pod", progress)


def pod_readiness(obj: ApiObject, facts: Facts = Facts()) -> Readiness:
    """Ready condition True, or run to completion; failed when the pod failed for good."""
    phase = nested(obj, "status", "phase") or "Pending"
    ready = condition(obj, "Ready")
    progress = (phase, (ready or {}).get("status"))
    if phase == "Succeeded":
        return Readiness(READY, "completed", progress)
    if phase == "Failed":
        return Readiness(FAILED, f"pod failed: {nested(obj, 'status', 'reason') or 'Failed'}",
                         progress)
    if ready and ready.get("status") == "True":
        return Readiness(READY, "ready", progress)
    return Readiness(IN_PROGRESS, f"{phase}, not ready", progress)


def pvc_readiness(obj: ApiObject, facts: Facts = Facts()) -> Readiness:
    """Bound, or Pending under a WaitForFirstConsumer class (binds when a pod uses it)."""
    phase = nested(obj, "status", "phase") or "Pending"
    if phase == "Bound":
        return Readiness(READY, "bound", (phase,))
    if phase == "Lost":
        return Readiness(FAILED, "claim lost its volume", (phase,))
    if facts.wait_for_first_consumer:
        return Readiness(READY, "pending until a pod uses it (WaitForFirstConsumer)", (phase,))
    return Readiness(IN_PROGRESS, "waiting for a volume to bind", (phase,))


CLAIM_NUDGE_AFTER_S = 1.0


def claim_needs_nudge(claim: ApiObject, pending_s: float) -> bool:
    """A claim that names its volume (`spec.volumeName`, a static volume pre-bound to it)
    and is still Pending `CLAIM_NUDGE_AFTER_S` after it was applied: the PV controller
    missed it (it synced the claim before the volume was in its cache) and would bind it
    only at its next periodic resync, up to 15 s later. Any update of the claim makes the
    controller sync it again at once (measured on the sandbox: 15 s down to 1 s)."""
    return (bool(nested(claim, "spec", "volumeName"))
            and nested(claim, "status", "phase") in (None, "Pending")
            and pending_s >= CLAIM_NUDGE_AFTER_S)


def crd_readiness(obj: ApiObject, facts: Facts = Facts()) -> Readiness:
    """Established: the API server serves the kind; NamesAccepted False: another CRD holds
    its names, which will not clear by itself."""
    names = condition(obj, "NamesAccepted")
    progress = tuple((c.get("type"), c.get("status")) for c in
                     nested(obj, "status", "conditions") or [] if isinstance(c, Mapping))
    if names and names.get("status") == "False":
        return Readiness(FAILED, _condition_text(names), progress)
    established = condition(obj, "Established")
    if established and established.get("status") == "True":
        return Readiness(READY, "established", progress)
    return Readiness(IN_PROGRESS, "not established yet: the API server does not serve it",
                     progress)


def apiservice_readiness(obj: ApiObject, facts: Facts = Facts()) -> Readiness:
    """Available: the aggregated API answers through its Service."""
    available = condition(obj, "Available")
    progress = ((available or {}).get("status"), (available or {}).get("reason"))
    if available and available.get("status") == "True":
        return Readiness(READY, "available", progress)
    return Readiness(IN_PROGRESS, _condition_text(available) if available
                     else "not available yet", progress)


def exists_readiness(obj: ApiObject, facts: Facts = Facts()) -> Readiness:
    """Kinds that are ready as soon as the API server has them."""
    return Readiness(READY, "exists", ())


def conditions_readiness(obj: ApiObject, facts: Facts = Facts()) -> Readiness:
    """Any other kind, as kstatus judges it: by the generation and the standard conditions.

    In progress while being deleted, while `status.observedGeneration` (when the
    controller writes it) is behind `metadata.generation`, or while `Reconciling` is True;
    failed when `Stalled` is True; then `Ready` (else `Available`) decides, True meaning
    ready and anything else in progress (a False condition with a reason is a controller
    still working: the progress deadline decides). No such condition: ready.
    """
    conditions = nested(obj, "status", "conditions") or []
    progress = (nested(obj, "status", "observedGeneration"),
                tuple((c.get("type"), c.get("status"), c.get("reason"))
                      for c in conditions if isinstance(c, Mapping)))
    if nested(obj, "metadata", "deletionTimestamp"):
        return Readiness(IN_PROGRESS, "being deleted", progress)
    if nested(obj, "status", "observedGeneration") is not None:
        waiting = generation_pending(obj, facts.applied_generation)
        if waiting:
            return Readiness(IN_PROGRESS, waiting, progress)
    stalled = condition(obj, "Stalled")
    if stalled and stalled.get("status") == "True":
        return Readiness(FAILED, _condition_text(stalled), progress)
    reconciling = condition(obj, "Reconciling")
    if reconciling and reconciling.get("status") == "True":
        return Readiness(IN_PROGRESS, _condition_text(reconciling), progress)
    verdict = condition(obj, "Ready") or condition(obj, "Available")
    if verdict is None:
        return Readiness(READY, "exists (no readiness condition)", progress)
    if verdict.get("status") == "True":
        return Readiness(READY, f"{verdict.get('type')}", progress)
    return Readiness(IN_PROGRESS, _condition_text(verdict), progress)


def _condition_text(cond: ApiObject) -> str:
    """ "Ready=False (Reason): message", for people."""
    head = f"{cond.get('type')}={cond.get('status', 'Unknown')}"
    if cond.get("reason"):
        head += f" ({cond['reason']})"
    return f"{head}: {cond['message']}" if cond.get("message") else head


# --- the table ---------------------------------------------------------------------------------

RULES: Mapping[str, Rule] = {
    "Deployment": deployment_readiness,
    "StatefulSet": statefulset_readiness,
    "DaemonSet": daemonset_readiness,
    "ReplicaSet": replicaset_readiness,
    "Job": job_readiness,
    "Pod": pod_readiness,
    "PersistentVolumeClaim": pvc_readiness,
    "CustomResourceDefinition": crd_readiness,
    "APIService": apiservice_readiness,
    # Ready when they exist; what can still be wrong with them is a warning, not a wait
    # (Ingress without a controller, HPA without metrics: see the warnings below).
    **{kind: exists_readiness for kind in (
        "Namespace", "ServiceAccount", "Role", "RoleBinding", "ClusterRole",
        "ClusterRoleBinding", "Secret", "ConfigMap", "NetworkPolicy", "LimitRange",
        "ResourceQuota", "StorageClass", "PersistentVolume", "Service", "Endpoints",
        "Ingress", "IngressClass", "HorizontalPodAutoscaler", "PodDisruptionBudget",
        "CronJob", "Lease", "PriorityClass")},
}

# Kinds whose rule is more than "exists": the wait stage always waits for them.
WAITED_KINDS = frozenset(kind for kind, rule in RULES.items() if rule is not exists_readiness)


def rule_for(kind: str) -> Rule:
    """The readiness rule of a kind: its row in RULES, else the conditions rule."""
    return RULES.get(kind, conditions_readiness)


def is_waited(obj: ApiObject) -> bool:
    """Whether the wait stage must watch `obj` (as the API server returned it) become ready.

    Kinds with a rule of their own are always waited for; kinds without one only when
    they carry status conditions or an observedGeneration, since an object with no status
    at all (nor a controller writing one) would otherwise be waited on forever.
    """
    kind = str(obj.get("kind") or "")
    if kind in RULES:
        return kind in WAITED_KINDS
    status = obj.get("status")
    return isinstance(status, Mapping) and bool(
        status.get("conditions") or status.get("observedGeneration") is not None)


def readiness(obj: ApiObject, *, applied_generation: int | None = None,
              wait_for_first_consumer: bool = False) -> Readiness:
    """The one entry point: the verdict for any kind."""
    facts = Facts(applied_generation, wait_for_first_consumer)
    return rule_for(str(obj.get("kind") or ""))(obj, facts)


SETTLED_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod"})


def unsettled_s(obj: ApiObject, pods: Sequence[ApiObject], settle_s: float,
                now: datetime | None) -> float:
    """Seconds still to watch a ready workload none of whose containers has a readiness
    probe, before calling it ready; 0 when it has one, or has settled.

    Without a probe a container counts as ready the moment it starts: an app that exits a
    second later, once it has read its configuration, would pass. So the youngest running
    container of its pods must have run `settle_s` seconds; a restart starts the count
    again, and the diagnosis meanwhile sees the crash it is.
    """
    if settle_s <= 0 or obj.get("kind") not in SETTLED_KINDS:
        return 0.0
    containers = (pod_spec(obj) or {}).get("containers") or []
    if not containers or any(c.get("readinessProbe") for c in containers):
        return 0.0
    statuses = [cs for pod in pods for cs in PodView.of(pod).main_statuses]
    if any(not cs.running for cs in statuses):
        return settle_s  # exited or waiting again: the count starts over once it runs
    ran = [age(cs.started_at, now) for cs in statuses]
    known = [r for r in ran if r != float("inf")]
    return max(0.0, settle_s - min(known)) if known else 0.0


def ingress_warning(obj: ApiObject) -> str | None:
    """An Ingress without an address: no controller serves its class."""
    lb = nested(obj, "status", "loadBalancer", "ingress") or []
    if lb:
        return None
    cls = nested(obj, "spec", "ingressClassName") or "(default)"
    name = nested(obj, "metadata", "name")
    return (f"Ingress/{name} has no address: no controller for class {cls}? "
            "(k3s ships Traefik; elsewhere install the controller or set INGRESS_CLASS)")


def hpa_warning(obj: ApiObject) -> str | None:
    """An HPA whose metrics are unavailable: metrics-server missing?"""
    name = nested(obj, "metadata", "name")
    able = condition(obj, "ScalingActive")
    if able and able.get("status") == "False":
        return (f"HorizontalPodAutoscaler/{name} has no metrics ({able.get('reason')}): "
                "metrics-server installed? (bundled in k3s)")
    current = nested(obj, "status", "currentMetrics")
    if not current:
        return (f"HorizontalPodAutoscaler/{name} has no metrics yet: metrics-server installed? "
                "(bundled in k3s)")
    return None
