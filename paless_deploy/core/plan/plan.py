"""Plan stage: sort rendered objects into the design's ordered phases, and say why.

Pure. Highest first: the `paless.io/phase` annotation; the kind's default (config,
storage, user-facing kinds); the component, recognised from labels, name or image;
for a Service, the workload its selector picks; for a Job, its default or name, moved
after every phase whose Services it addresses or whose claims it mounts. A tree written
without our labels lands in the same order as ours.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from paless_deploy.core.apitypes import ApiObject, JsonDict, JsonValue
from paless_deploy.core.diagnosis.lint import check_policy_annotations
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.components import component_of
from paless_deploy.core.manifests.kinds import PHASE_BY_KIND
from paless_deploy.core.manifests.objects import ref_of, whole_number
from paless_deploy.core.manifests.podspec import pod_containers, pod_spec

PHASE_ANNOTATION = labels.PHASE
COMPONENT_LABEL = labels.COMPONENT

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
PHASE_BY_COMPONENT: Mapping[str, str] = {
    "minio": "object-storage",
    "postgres": "data",
    "redis": "data",
    "scheduler": "scheduler",
    "worker": "worker",
    "web": "web",
}
FALLBACK_PHASE = "web"
JOB_PHASE = "data-init"

# Jobs whose names say what they do (the bucket and migration Jobs of a Paless tree).
JOB_NAME_PHASES: tuple[tuple[str, str], ...] = (("migrat", "migrate"),
                                                 ("bucket", "object-storage-init"))
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod"})


@dataclass(frozen=True)
class Phase:
    """One phase of a deploy: its objects (applied, then awaited together) and why each
    landed here (parallel to `objects`)."""

    name: str
    objects: tuple[JsonDict, ...]
    reasons: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Placement:
    """Where one object goes and why."""

    phase: str
    reason: str


def _annotation(obj: ApiObject) -> str | None:
    metadata = obj.get("metadata") or {}
    annotated = (metadata.get("annotations") or {}).get(PHASE_ANNOTATION)
    if annotated is None:
        return None
    if annotated not in PHASE_ORDER:
        raise ConfigError(
            f"{obj.get('kind', '?')}/{metadata.get('name', '?')} has annotation "
            f"{PHASE_ANNOTATION}={annotated!r}, which is not a phase.",
            f"Use one of: {', '.join(PHASE_ORDER)}.", code="bad-phase")
    return str(annotated)


def _place_alone(obj: ApiObject) -> Placement:
    annotated = _annotation(obj)
    if annotated is not None:
        return Placement(annotated, f"annotation {PHASE_ANNOTATION}")
    kind = str(obj.get("kind") or "")
    if kind in PHASE_BY_KIND:
        return Placement(PHASE_BY_KIND[kind], f"kind default for {kind}")
    found = component_of(obj)
    if found is not None:
        component, where = found
        return Placement(PHASE_BY_COMPONENT[component], f"component {component} ({where})")
    return Placement(FALLBACK_PHASE, "no rule matched: the last phase")


# ---------------------------------------------------------------------------
# dependencies: which Services a Job addresses, which claims it mounts


def _selects(selector: Mapping[str, str], pod_labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items())


def _template_labels(obj: ApiObject) -> dict[str, str]:
    if obj.get("kind") == "Pod":
        return dict((obj.get("metadata") or {}).get("labels") or {})
    template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return dict(template.get("labels") or {})


def _decoded(obj: ApiObject) -> Iterator[str]:
    """The values of a ConfigMap or Secret (Secret data decoded, in memory only)."""
    for key in ("data", "stringData"):
        for value in (obj.get(key) or {}).values():
            if not isinstance(value, str):
                continue
            if obj.get("kind") == "Secret" and key == "data":
                try:
                    yield base64.b64decode(value, validate=True).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    continue
            else:
                yield value


def _strings_of(obj: ApiObject, configs: Mapping[tuple[str, str], ApiObject]
                ) -> Iterator[tuple[str, str]]:
    """(where, text) for every env value, argument and command word of a pod template,
    with the values of the ConfigMaps and Secrets it reads."""
    for container in pod_containers(obj):
        name = container.get("name", "?")
        for word in [*(container.get("command") or []), *(container.get("args") or [])]:
            if isinstance(word, str):
                yield f"container {name} command", word
        for env in container.get("env") or []:
            if isinstance(env.get("value"), str):
                yield f"env {env.get('name')}", env["value"]
            source = env.get("valueFrom") or {}
            for ref_key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                ref = source.get(ref_key) or {}
                target = configs.get((kind, str(ref.get("name"))))
                if target is not None:
                    for value in _decoded(_only_key(target, str(ref.get("key")))):
                        yield f"env {env.get('name')}", value
        for env_from in container.get("envFrom") or []:
            for ref_key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                ref = env_from.get(ref_key) or {}
                target = configs.get((kind, str(ref.get("name"))))
                if target is not None:
                    for value in _decoded(target):
                        yield f"envFrom {kind} {ref.get('name')}", value


def _only_key(obj: ApiObject, key: str) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {"kind": obj.get("kind")}
    for field_name in ("data", "stringData"):
        values = obj.get(field_name) or {}
        if key in values:
            out[field_name] = {key: values[key]}
    return out


def addresses(text: str, service: str) -> bool:
    """True when `text` names Service `service` as a host: the whole value (`postgres`,
    `minio:9000`, `postgres.ns.svc.cluster.local`), a URL's host (`http://minio:9000/x`,
    `postgresql://u:p@db/paperless`), `host:port` inside a command, or the word after a
    host flag (`-h db`, `--host=db`). A mere word in a sentence (`CREATE ROLE paperless`)
    is not an address."""
    host = rf"{re.escape(service)}(?:\.[a-z0-9-]+)*"
    end = r"(?![A-Za-z0-9_.-])"
    patterns = (
        rf"^\s*{host}(?::\d+)?\s*$",  # the whole value
        rf"(?:://|@){host}(?::\d+)?{end}",  # a URL's or user@host's host
        rf"(?<![A-Za-z0-9_./-]){host}:\d+{end}",  # host:port
        rf"(?:^|\s)(?:-h|--host(?:name)?[= ]|host=)\s*{host}{end}",  # a host flag
    )
    return any(re.search(p, text, re.IGNORECASE if i == 3 else 0)
               for i, p in enumerate(patterns))


@dataclass
class _Graph:
    """What the dependency rules need to know about the whole render."""

    objects: Sequence[JsonDict]
    placed: dict[int, Placement] = field(default_factory=dict)

    def workloads(self) -> Iterator[tuple[int, JsonDict]]:
        for i, obj in enumerate(self.objects):
            if obj.get("kind") in WORKLOAD_KINDS:
                yield i, obj

    def configs(self) -> dict[tuple[str, str], ApiObject]:
        return {(str(o.get("kind")), str((o.get("metadata") or {}).get("name"))): o
                for o in self.objects if o.get("kind") in ("ConfigMap", "Secret")}

    def service_phase(self, service: ApiObject) -> tuple[str, str] | None:
        """The phase of the first workload a Service's selector picks, and which."""
        selector = (service.get("spec") or {}).get("selector") or {}
        for i, workload in self.workloads():
            if _selects(selector, _template_labels(workload)):
                return self.placed[i].phase, ref_of(workload)
        return None


def _after(phase: str) -> str:
    """The first phase after `phase` (a Job needing `phase` goes there)."""
    index = PHASE_ORDER.index(phase)
    return PHASE_ORDER[min(index + 1, len(PHASE_ORDER) - 1)]


def _later(a: str, b: str) -> str:
    return a if PHASE_ORDER.index(a) >= PHASE_ORDER.index(b) else b


def _place_job(job: ApiObject, graph: _Graph, services: Mapping[str, Placement],
               claim_owners: Mapping[str, tuple[str, str]]) -> Placement:
    name = str((job.get("metadata") or {}).get("name") or "")
    phase, reason = JOB_PHASE, "kind default for Job"
    for word, hinted in JOB_NAME_PHASES:
        if word in name.lower():
            phase, reason = hinted, f"name {name}"
            break
    needs: list[str] = []
    for service, placement in services.items():
        for where, text in _strings_of(job, graph.configs()):
            if addresses(text, service):
                if PHASE_ORDER.index(_after(placement.phase)) > PHASE_ORDER.index(phase):
                    phase = _after(placement.phase)
                needs.append(f"addresses Service {service} ({where}), in phase "
                             f"{placement.phase}")
                break
    spec = pod_spec(job) or {}
    for volume in spec.get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        owner = claim_owners.get(str(claim)) if claim else None
        if owner is not None:
            owner_phase, owner_ref = owner
            phase = _later(phase, _after(owner_phase))
            needs.append(f"mounts claim {claim} of {owner_ref}, in phase {owner_phase}")
    if needs:
        reason = f"{reason}; after what it needs: " + "; ".join(needs)
    return Placement(phase, reason)


def place(objects: Sequence[JsonDict]) -> list[Placement]:
    """Where each object goes and why (parallel to `objects`)."""
    graph = _Graph(objects)
    jobs: list[int] = []
    for i, obj in enumerate(objects):
        annotated = _annotation(obj)
        if annotated is not None:
            graph.placed[i] = Placement(annotated, f"annotation {PHASE_ANNOTATION}")
        elif obj.get("kind") == "Job":
            jobs.append(i)
        elif obj.get("kind") != "Service":
            graph.placed[i] = _place_alone(obj)
    services: dict[str, Placement] = {}
    for i, obj in enumerate(objects):
        if obj.get("kind") != "Service":
            continue
        if i not in graph.placed:
            picked = graph.service_phase(obj)
            graph.placed[i] = (Placement(picked[0], f"selects the pods of {picked[1]}")
                               if picked else _place_alone(obj))
        services[str(obj["metadata"]["name"])] = graph.placed[i]
    claim_owners = _claims_of_statefulsets(graph)
    for i in jobs:
        graph.placed[i] = _place_job(objects[i], graph, services, claim_owners)
    return [graph.placed[i] for i in range(len(objects))]


def _claims_of_statefulsets(graph: _Graph) -> dict[str, tuple[str, str]]:
    """Claims a StatefulSet creates (`<template>-<name>-<ordinal>`) -> its phase and ref."""
    owners: dict[str, tuple[str, str]] = {}
    for i, obj in graph.workloads():
        if obj.get("kind") != "StatefulSet":
            continue
        spec = obj.get("spec") or {}
        replicas = whole_number(spec.get("replicas"), 1)
        for template in spec.get("volumeClaimTemplates") or []:
            base = f"{(template.get('metadata') or {}).get('name')}-{obj['metadata']['name']}"
            for ordinal in range(max(1, replicas)):
                owners[f"{base}-{ordinal}"] = (graph.placed[i].phase, ref_of(obj))
    return owners


def plan_phases(objects: list[JsonDict]) -> list[Phase]:
    """Group `objects` into phases in PHASE_ORDER, keeping their order within a phase.

    Empty phases are omitted, so the apply stage never waits on nothing. The objects'
    annotations are checked here, before anything is built or applied: a phase that does
    not exist, or a policy annotation (`paless.io/allowed-restarts`, `paless.io/failure-grace`)
    that cannot be read, is a ConfigError.
    """
    check_policy_annotations(objects)
    placements = place(objects)
    members: dict[str, list[tuple[JsonDict, str]]] = {name: [] for name in PHASE_ORDER}
    for obj, placement in zip(objects, placements, strict=True):
        members[placement.phase].append((obj, placement.reason))
    return [Phase(name, tuple(o for o, _ in members[name]), tuple(r for _, r in members[name]))
            for name in PHASE_ORDER if members[name]]


def fallback_warning(phases: Sequence[Phase]) -> str | None:
    """A warning when most workloads landed in the last phase only because no rule matched:
    the tree names its components in a way the plan does not recognise."""
    workloads = [(o, r) for p in phases for o, r in zip(p.objects, p.reasons, strict=True)
                 if o.get("kind") in WORKLOAD_KINDS]
    fallen = [ref_of(o) for o, r in workloads if r.startswith("no rule matched")]
    if len(workloads) >= 2 and len(fallen) * 2 > len(workloads):
        return (f"{len(fallen)} of {len(workloads)} workloads ({', '.join(fallen[:5])}) fell "
                "into the last phase because nothing names their component: label them "
                f"{labels.COMPONENT}=<postgres|redis|minio|web|worker|scheduler> or annotate "
                f"{PHASE_ANNOTATION}; `paless-deploy plan` shows where each object goes.")
    return None
