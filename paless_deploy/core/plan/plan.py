"""Plan stage: sort rendered objects into the design's ordered phases, and say why.

Pure. Highest first: the `paless.io/phase` annotation; the kind's default (config,
storage, user-facing kinds); the component, recognised from labels, name or image;
for a Service, the workload its selector picks; for a Job, its default or name, moved
after every phase whose Services it addresses or whose claims it mounts. A tree written
without our labels lands in the same order as ours.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from paless_deploy.core.apitypes import ApiObject, JsonDict
from paless_deploy.core.diagnosis.lint import check_policy_annotations
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.components import component_of
from paless_deploy.core.manifests.kinds import PHASE_BY_KIND
from paless_deploy.core.manifests.objects import name_of, ref_of
from paless_deploy.core.plan.references import (
    WORKLOAD_KINDS,
    ConfigKey,
    addresses,
    mounted_claims,
    namespace_in,
    selects,
    service_selector,
    statefulset_claims,
    strings_of,
    template_labels,
)

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
OURS_MIN_COMPONENTS = 2  # distinct components that make a tree look like Paless
JOB_PHASE = "data-init"

# Jobs whose names say what they do (the bucket and migration Jobs of a Paless tree).
JOB_NAME_PHASES: tuple[tuple[str, str], ...] = (("migrat", "migrate"),
                                                 ("bucket", "object-storage-init"))


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
    return Placement(FALLBACK_PHASE, f"no rule matched: labelled {FALLBACK_PHASE}, the last phase")


# ---------------------------------------------------------------------------
# Jobs and Services: placed after what they need, beside what they select


@dataclass
class _Placing:
    """What placing Services and Jobs needs to know about the whole render."""

    objects: Sequence[JsonDict]
    placed: dict[int, Placement] = field(default_factory=dict)

    def workloads(self) -> Iterator[tuple[int, JsonDict]]:
        for i, obj in enumerate(self.objects):
            if obj.get("kind") in WORKLOAD_KINDS:
                yield i, obj

    def configs(self) -> dict[ConfigKey, ApiObject]:
        return {(str(o.get("kind")), namespace_in(o), name_of(o)): o
                for o in self.objects if o.get("kind") in ("ConfigMap", "Secret")}

    def service_phase(self, service: ApiObject) -> tuple[str, str] | None:
        """The phase of the first workload a Service's selector picks, and which."""
        selector = service_selector(service)
        for i, workload in self.workloads():
            if (namespace_in(workload) == namespace_in(service)
                    and selects(selector, template_labels(workload))):
                return self.placed[i].phase, ref_of(workload)
        return None


def _after(phase: str) -> str:
    """The first phase after `phase` (a Job needing `phase` goes there)."""
    index = PHASE_ORDER.index(phase)
    return PHASE_ORDER[min(index + 1, len(PHASE_ORDER) - 1)]


def _later(a: str, b: str) -> str:
    return a if PHASE_ORDER.index(a) >= PHASE_ORDER.index(b) else b


def _place_job(job: ApiObject, placing: _Placing, services: Mapping[tuple[str, str], Placement],
               claim_owners: Mapping[tuple[str, str], tuple[str, str]]) -> Placement:
    name = name_of(job)
    phase, reason = JOB_PHASE, "kind default for Job"
    for word, hinted in JOB_NAME_PHASES:
        if word in name.lower():
            phase, reason = hinted, f"name {name}"
            break
    needs: list[str] = []
    texts = list(strings_of(job, placing.configs()))
    for (namespace, service), placement in services.items():
        if namespace != namespace_in(job):
            continue
        for where, text in texts:
            if addresses(text, service):
                phase = _later(phase, _after(placement.phase))
                needs.append(f"addresses Service {service} ({where}), in phase "
                             f"{placement.phase}")
                break
    for claim in mounted_claims(job):
        owner = claim_owners.get((namespace_in(job), claim))
        if owner is not None:
            owner_phase, owner_ref = owner
            phase = _later(phase, _after(owner_phase))
            needs.append(f"mounts claim {claim} of {owner_ref}, in phase {owner_phase}")
    if needs:
        reason = f"{reason}; after what it needs: " + "; ".join(needs)
    return Placement(phase, reason)


def place(objects: Sequence[JsonDict]) -> list[Placement]:
    """Where each object goes and why (parallel to `objects`)."""
    placing = _Placing(objects)
    jobs: list[int] = []
    for i, obj in enumerate(objects):
        annotated = _annotation(obj)
        if annotated is not None:
            placing.placed[i] = Placement(annotated, f"annotation {PHASE_ANNOTATION}")
        elif obj.get("kind") == "Job":
            jobs.append(i)
        elif obj.get("kind") != "Service":
            placing.placed[i] = _place_alone(obj)
    services: dict[tuple[str, str], Placement] = {}
    for i, obj in enumerate(objects):
        if obj.get("kind") != "Service":
            continue
        if i not in placing.placed:
            picked = placing.service_phase(obj)
            placing.placed[i] = (Placement(picked[0], f"selects the pods of {picked[1]}")
                                 if picked else _place_alone(obj))
        services[(namespace_in(obj), name_of(obj))] = placing.placed[i]
    claim_owners = {(namespace_in(obj), claim): (placing.placed[i].phase, ref_of(obj))
                    for i, obj in placing.workloads() for claim in statefulset_claims(obj)}
    for i in jobs:
        placing.placed[i] = _place_job(objects[i], placing, services, claim_owners)
    return [placing.placed[i] for i in range(len(objects))]


def plan_phases(objects: list[JsonDict]) -> list[Phase]:
    """Group `objects` into phases in PHASE_ORDER, keeping their order within a phase.

    Empty phases are omitted, so the apply stage never waits on nothing. The objects'
    annotations are checked here, before anything is built or applied: a phase that does
    not exist, or a policy annotation (`paless.io/allowed-restarts`, `paless.io/failure-grace`)
    that cannot be read, is a ConfigError.
    """
    check_policy_annotations(objects)
    return group_phases(objects, place(objects))


def group_phases(objects: Sequence[JsonDict], placements: Sequence[Placement]) -> list[Phase]:
    """The placed objects grouped by phase, in PHASE_ORDER (render order within one)."""
    members: dict[str, list[tuple[JsonDict, str]]] = {name: [] for name in PHASE_ORDER}
    for obj, placement in zip(objects, placements, strict=True):
        members[placement.phase].append((obj, placement.reason))
    return [Phase(name, tuple(o for o, _ in members[name]), tuple(r for _, r in members[name]))
            for name in PHASE_ORDER if members[name]]


def looks_like_ours(objects: Sequence[ApiObject]) -> bool:
    """A tree shaped like Paless: its workloads name at least two of our components (a
    database and the web app, say). Only such a tree gets Paless advice and the Paless
    startup order inferred; any other tree is ordered by its references alone."""
    found = {c[0] for o in objects
             if o.get("kind") in WORKLOAD_KINDS and (c := component_of(o)) is not None}
    return len(found) >= OURS_MIN_COMPONENTS


def fallback_warning(phases: Sequence[Phase]) -> str | None:
    """A warning when most workloads of a tree that looks like ours landed in the last
    phase only because no rule matched: the tree names its components in a way the plan
    does not recognise. Trees of other software get no such advice."""
    workloads = [(o, r) for p in phases for o, r in zip(p.objects, p.reasons, strict=True)
                 if o.get("kind") in WORKLOAD_KINDS]
    if not looks_like_ours([o for o, _ in workloads]):
        return None
    fallen = [ref_of(o) for o, r in workloads if r.startswith("no rule matched")]
    if len(workloads) >= 2 and len(fallen) * 2 > len(workloads):
        return (f"{len(fallen)} of {len(workloads)} workloads ({', '.join(fallen[:5])}) fell "
                "into the last phase because nothing names their component: label them "
                f"{labels.COMPONENT}=<postgres|redis|minio|web|worker|scheduler> or annotate "
                f"{PHASE_ANNOTATION}; `paless-deploy plan` shows where each object goes.")
    return None
