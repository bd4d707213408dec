"""Validate stage: one server-side dry run of every rendered object before the first write
(the definitions, CRDs and the tree's Namespaces, are dry-run and applied before the rest).

The API server judges each object exactly as the apply will send it (same field manager,
strict field validation, admission): a kind the cluster does not serve, an invalid value,
an unknown field, an admission refusal. Every bad object is named in one exit-2 report
and nothing is applied; a field another manager owns is reported the same way (exit 1,
as for a conflict found while applying, and named the same way), before any phase
changed the cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import ApiError, cluster_errors, refused_patch, with_retries
from paless_deploy.core.errors import ConfigError, PalessError
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.kinds import api_group
from paless_deploy.core.manifests.objects import ref_of
from paless_deploy.core.manifests.render import hpa_targets
from paless_deploy.stages.apply import ApplyConflict, autoscaler_of, conflict_error

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube

PARALLEL = 8
MAX_SHOWN = 240  # a server's message is cut here (a 100 KB value is not echoed back)


@dataclass(frozen=True)
class Refusal:
    """What the API server said about one object."""

    ref: str
    reason: str  # Invalid, unknown-kind, Conflict, Forbidden, ...
    message: str
    conflict: ApplyConflict | None = None  # the conflict, as the apply would name it
    api_version: str = ""
    kind: str = ""


def dry_run_all(kube: Kube, objects: list[dict], namespace: str, *,
                force_conflicts: bool = False,
                unchanged: Callable[[dict], bool] = lambda obj: False,
                tree_crds: Mapping[tuple[str, str], str] | None = None,
                applied_before: Sequence[str] = ()) -> None:
    """Dry-run every object an apply would change (in parallel; `unchanged` ones would be
    skipped by the apply too); raise one error naming every refusal.

    `tree_crds` ((group, kind) -> the tree's CRD) keeps a kind the manifests define
    themselves from being blamed on a missing CRD; `applied_before` (what the deploy
    applied ahead of this dry run: the definitions) only changes the wording."""
    autoscalers = hpa_targets(objects)  # of the whole tree: an HPA may be unchanged
    changing = [obj for obj in objects if not unchanged(obj)]
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        refusals = [r for r in pool.map(
            lambda obj: _dry_run(kube, obj, force_conflicts, autoscalers.get(
                (obj["kind"], obj["metadata"]["name"]))), changing) if r is not None]
    if not refusals:
        return
    nothing = "Nothing more was applied" if applied_before else "Nothing was applied"
    invalid = [r for r in refusals if r.conflict is None]
    if invalid:
        raise _invalid_error(invalid, namespace, nothing, tree_crds or {})
    conflicts = [r.conflict for r in refusals if r.conflict is not None]
    first = conflicts[0]
    more = f" (and {len(conflicts) - 1} more: " + "; ".join(
        c.message for c in conflicts[1:]) + ")" if len(conflicts) > 1 else ""
    raise ApplyConflict(f"{first.message}{more}. {nothing} to {namespace}.",
                        first.hint, resource=first.resource, reason=first.reason)


def _invalid_error(invalid: list[Refusal], namespace: str, nothing: str,
                   tree_crds: Mapping[tuple[str, str], str]) -> ConfigError:
    listed = "; ".join(f"{r.ref}: {r.message.rstrip('.')}" for r in invalid)
    unknown = [r for r in invalid if r.reason == "unknown-kind"]
    ours = [r for r in unknown if (api_group(r.api_version), r.kind) in tree_crds]
    missing = [r for r in unknown if r not in ours]
    fixes = []
    if missing:
        fixes.append("Install the CRD or controller that serves "
                     + ", ".join(sorted({r.kind for r in missing}))
                     + " (`kubectl api-resources` lists what the cluster serves), or remove "
                     "those objects from the manifests.")
    for r in ours:
        crd = tree_crds[(api_group(r.api_version), r.kind)]
        fixes.append(f"{crd} of the manifests defines {r.kind} but does not serve "
                     f"{r.api_version}: write {r.ref} in a version the CRD serves, or add "
                     "that version to the CRD.")
    if len(unknown) < len(invalid):
        fixes.append("Fix each field named (the server's words say which and why); "
                     "`paless-deploy render` shows what was sent.")
    return ConfigError(
        f"The API server refuses {len(invalid)} object(s) of the manifests: {listed}. "
        f"{nothing} to {namespace}.", " ".join(fixes),
        code="invalid-manifest", resource=invalid[0].ref, reason=invalid[0].reason)


def _dry_run(kube: Kube, obj: dict, force: bool, autoscaler: str | None) -> Refusal | None:
    ref = ref_of(obj)
    try:
        with cluster_errors(kube, f"validating {ref}", obj["metadata"].get("namespace")):
            kind = kube.kind(obj["apiVersion"], obj["kind"])
            namespace = obj["metadata"].get("namespace") if kind.namespaced else None
            with_retries(lambda: kube.apply(kind, obj, namespace, manager=labels.FIELD_MANAGER,
                                            force=force, dry_run=True))
    except PalessError as exc:
        if exc.code == "unknown-kind":
            return Refusal(ref, "unknown-kind", exc.message,
                           api_version=str(obj.get("apiVersion")), kind=str(obj.get("kind")))
        raise
    except ApiError as exc:
        if exc.status == 409:
            conflict = conflict_error(obj, exc, autoscaler or autoscaler_of(kube, obj))
            return Refusal(ref, "Conflict", _short(exc.message), conflict=conflict)
        if exc.status == 422 and obj.get("kind") == "Job" and "immutable" in exc.message:
            return None  # a changed Job is replaced, not patched
        if exc.status in (400, 403, 404, 422) or refused_patch(exc):
            return Refusal(ref, exc.reason or str(exc.status), _short(_with_causes(exc)))
        raise
    return None


def _with_causes(exc: ApiError) -> str:
    fields = [f"{c.get('field')}: {c.get('message')}" for c in exc.causes if c.get("field")]
    return exc.message if not fields or all(f in exc.message for f in fields) else (
        f"{exc.message} ({'; '.join(fields)})")


def _short(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."
