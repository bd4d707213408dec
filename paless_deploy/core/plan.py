"""Plan stage: sort rendered objects into the design's ordered phases.

Pure: `paless.io/phase` decides first, then a table of defaults by kind and component.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.diagnosis.lint import check_policy_annotations
from paless_deploy.core.errors import ConfigError

PHASE_ANNOTATION = "paless.io/phase"
COMPONENT_LABEL = "app.kubernetes.io/component"

PHASE_ORDER: tuple[str, ...] = (
    "namespace",
    "config",
    "storage",
    "object-storage",
    "object-storage-init",
    "data",
    "data-init",
    "migrate",
    "scheduler",
    "worker",
    "web",
)

# Defaults, first match wins: kind, then (for the rest) the component label.
PHASE_BY_KIND: Mapping[str, str] = {
    "Namespace": "namespace",
    "ServiceAccount": "config",
    "Role": "config",
    "RoleBinding": "config",
    "Secret": "config",
    "ConfigMap": "config",
    "NetworkPolicy": "config",
    "LimitRange": "config",
    "ResourceQuota": "config",
    "StorageClass": "storage",
    "PersistentVolume": "storage",
    "PersistentVolumeClaim": "storage",
    # Jobs without an annotation are the database role/extensions Job; the bucket and
    # migration Jobs say their phase in an annotation.
    "Job": "data-init",
    # Whatever component they belong to, these face users or follow a workload.
    "Ingress": "web",
    "HorizontalPodAutoscaler": "web",
    "PodDisruptionBudget": "web",
}
PHASE_BY_COMPONENT: Mapping[str, str] = {
    "minio": "object-storage",
    "postgres": "data",
    "redis": "data",
    "scheduler": "scheduler",
    "worker": "worker",
    "web": "web",
}
FALLBACK_PHASE = "web"


@dataclass(frozen=True)
class Phase:
    """One phase of a deploy: its name and the objects applied (and waited on) in it."""

    name: str
    objects: tuple[dict, ...]


def phase_of(obj: ApiObject) -> str:
    """The phase an object belongs to: its annotation, else the defaults table.

    An annotation naming no known phase is a ConfigError: silently falling back would
    apply the object in the wrong order.
    """
    metadata = obj.get("metadata") or {}
    annotated = (metadata.get("annotations") or {}).get(PHASE_ANNOTATION)
    if annotated is not None:
        if annotated not in PHASE_ORDER:
            raise ConfigError(
                f"{obj.get('kind', '?')}/{metadata.get('name', '?')} has annotation "
                f"{PHASE_ANNOTATION}={annotated!r}, which is not a phase.",
                f"Use one of: {', '.join(PHASE_ORDER)}.",
            )
        return str(annotated)
    kind = str(obj.get("kind") or "")
    if kind in PHASE_BY_KIND:
        return PHASE_BY_KIND[kind]
    component = str((metadata.get("labels") or {}).get(COMPONENT_LABEL) or "")
    return PHASE_BY_COMPONENT.get(component, FALLBACK_PHASE)


def plan_phases(objects: list[dict]) -> list[Phase]:
    """Group `objects` into phases in PHASE_ORDER, keeping their order within a phase.

    Empty phases are omitted, so the apply stage never waits on nothing. The objects'
    annotations are checked here, before anything is built or applied: a phase that does
    not exist, or a policy annotation (`paless.io/allowed-restarts`, `paless.io/failure-grace`)
    that cannot be read, is a ConfigError.
    """
    check_policy_annotations(objects)
    members: dict[str, list[dict]] = {name: [] for name in PHASE_ORDER}
    for obj in objects:
        members[phase_of(obj)].append(obj)
    return [Phase(name, tuple(members[name])) for name in PHASE_ORDER if members[name]]
