"""Readiness rules per kind, as data: is this live object ready, failed, or still in progress?

Pure functions over API JSON dicts (camelCase, as the API server returns them), in
the spirit of kstatus: each rule says Current / InProgress / Failed with a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

READY = "ready"
IN_PROGRESS = "in-progress"
FAILED = "failed"


@dataclass(frozen=True)
class Readiness:
    """The verdict on one object: state, why (for people), and a progress signature."""

    state: str
    reason: str = ""
    progress: tuple[Any, ...] = ()  # changes whenever the object moves forward

    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def failed(self) -> bool:
        return self.state == FAILED


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None


def generation_pending(obj: Mapping[str, Any], applied_generation: int | None) -> str | None:
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


def deployment_readiness(obj: Mapping[str, Any], applied_generation: int | None = None) -> Readiness:
    """updated = available = desired replicas, no old replicas, generation observed."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    progress = (updated, available, total, int(status.get("readyReplicas") or 0))
    progressing = _condition(obj, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Readiness(FAILED, f"progress deadline exceeded: {progressing.get('message', '')}",
                         progress)
    waiting = generation_pending(obj, applied_generation)
    if waiting:
        return Readiness(IN_PROGRESS, waiting, progress)
    if updated < desired:
        return Readiness(IN_PROGRESS, f"{updated} of {desired} replicas updated", progress)
    if total > updated:
        return Readiness(IN_PROGRESS, f"{total - updated} old replicas pending termination", progress)
    if available < desired:
        return Readiness(IN_PROGRESS, f"{available} of {desired} replicas available", progress)
    return Readiness(READY, f"{available}/{desired} available", progress)


def statefulset_readiness(obj: Mapping[str, Any], applied_generation: int | None = None) -> Readiness:
    """ready = desired replicas, current revision = update revision, generation observed."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    progress = (ready, updated, status.get("currentRevision"), status.get("updateRevision"))
    waiting = generation_pending(obj, applied_generation)
    if waiting:
        return Readiness(IN_PROGRESS, waiting, progress)
    rolling = ((spec.get("updateStrategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"
    if rolling and updated < desired:
        return Readiness(IN_PROGRESS, f"{updated} of {desired} replicas updated", progress)
    if rolling and desired and status.get("currentRevision") != status.get("updateRevision"):
        return Readiness(IN_PROGRESS, "rolling update in progress", progress)
    if ready < desired:
        return Readiness(IN_PROGRESS, f"{ready} of {desired} replicas ready", progress)
    return Readiness(READY, f"{ready}/{desired} ready", progress)


def job_readiness(obj: Mapping[str, Any], applied_generation: int | None = None) -> Readiness:
    """Complete condition: ready; Failed condition: failed."""
    status = obj.get("status") or {}
    progress = (status.get("active"), status.get("succeeded"), status.get("failed"))
    failed = _condition(obj, "Failed")
    if failed and failed.get("status") == "True":
        return Readiness(FAILED, f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}".rstrip(": "),
                         progress)
    complete = _condition(obj, "Complete")
    if complete and complete.get("status") == "True":
        return Readiness(READY, "complete", progress)
    active = int(status.get("active") or 0)
    return Readiness(IN_PROGRESS, f"{active} pod(s) running, not complete yet" if active
                     else "waiting for its pod", progress)


def pvc_readiness(obj: Mapping[str, Any], wait_for_first_consumer: bool = False) -> Readiness:
    """Bound, or Pending under a WaitForFirstConsumer class (binds when a pod uses it)."""
    phase = (obj.get("status") or {}).get("phase") or "Pending"
    if phase == "Bound":
        return Readiness(READY, "bound", (phase,))
    if phase == "Lost":
        return Readiness(FAILED, "claim lost its volume", (phase,))
    if wait_for_first_consumer:
        return Readiness(READY, "pending until a pod uses it (WaitForFirstConsumer)", (phase,))
    return Readiness(IN_PROGRESS, "waiting for a volume to bind", (phase,))


def exists_readiness(obj: Mapping[str, Any], applied_generation: int | None = None) -> Readiness:
    """Kinds that are ready as soon as the API server has them."""
    return Readiness(READY, "exists", ())


RULES: dict[str, Callable[..., Readiness]] = {
    "Deployment": deployment_readiness,
    "StatefulSet": statefulset_readiness,
    "Job": job_readiness,
}

WAITED_KINDS = frozenset(RULES) | {"PersistentVolumeClaim"}


def readiness(obj: Mapping[str, Any], *, applied_generation: int | None = None,
              wait_for_first_consumer: bool = False) -> Readiness:
    """The one entry point: the verdict for any kind."""
    kind = obj.get("kind", "")
    if kind == "PersistentVolumeClaim":
        return pvc_readiness(obj, wait_for_first_consumer)
    rule = RULES.get(kind, exists_readiness)
    return rule(obj, applied_generation)


def ingress_warning(obj: Mapping[str, Any]) -> str | None:
    """An Ingress without an address: no controller serves its class."""
    lb = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    if lb:
        return None
    cls = (obj.get("spec") or {}).get("ingressClassName") or "(default)"
    name = (obj.get("metadata") or {}).get("name")
    return (f"Ingress/{name} has no address: no controller for class {cls}? "
            "(k3s ships Traefik; elsewhere install the controller or set INGRESS_CLASS)")


def hpa_warning(obj: Mapping[str, Any]) -> str | None:
    """An HPA whose metrics are unavailable: metrics-server missing?"""
    name = (obj.get("metadata") or {}).get("name")
    able = _condition(obj, "ScalingActive")
    if able and able.get("status") == "False":
        return (f"HorizontalPodAutoscaler/{name} has no metrics ({able.get('reason')}): "
                "metrics-server installed? (bundled in k3s)")
    current = (obj.get("status") or {}).get("currentMetrics")
    if not current:
        return (f"HorizontalPodAutoscaler/{name} has no metrics yet: metrics-server installed? "
                "(bundled in k3s)")
    return None
