"""Validate stage: one server-side dry run of every rendered object before the first write
(the definitions, CRDs and the tree's Namespaces, are dry-run and applied before the rest).

The API server judges each object exactly as the apply will send it (same field manager,
strict field validation, admission, quotas): each refusal is classified by the table of
`core.diagnosis.refusals` (a quota, a policy, a claim that cannot grow, an immutable
field, an invalid value, an unknown kind), and every one is named in one exit-2 report
(exit 4 when RBAC denies the user) with nothing applied; a field another manager owns
is reported the same way (exit 1, as for a conflict found while applying, and named the
same way), before any phase changed the cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import ApiError, cluster_errors, refused_patch, with_retries
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.diagnosis.refusals import Answer, Refusal, refusal_of
from paless_deploy.core.errors import ClusterError, ExitCode, PalessError, Refused
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.kinds import Kind, api_group
from paless_deploy.core.manifests.objects import ref_of
from paless_deploy.core.manifests.render import hpa_targets
from paless_deploy.stages.apply import ApplyConflict, autoscaler_of, conflict_error

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube

PARALLEL = 8


def dry_run_all(kube: Kube, objects: list[JsonDict], namespace: str, *,
                force_conflicts: bool = False,
                unchanged: Callable[[JsonDict], bool] = lambda obj: False,
                tree_crds: Mapping[tuple[str, str], str] | None = None,
                applied_before: Sequence[str] = ()) -> None:
    """Dry-run every object an apply would change (in parallel; `unchanged` ones would be
    skipped by the apply too); raise one error naming every refusal: exit 4 when RBAC
    denies the user any of them, else exit 2 (1 when every refusal is a conflict).

    `tree_crds` ((group, kind) -> the tree's CRD) keeps a kind the manifests define
    themselves from being blamed on a missing CRD; `applied_before` (what the deploy
    applied ahead of this dry run: the definitions) only changes the wording."""
    autoscalers = hpa_targets(objects)  # of the whole tree: an HPA may be unchanged
    changing = [obj for obj in objects if not unchanged(obj)]
    crds = tree_crds or {}
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        answers = [r for r in pool.map(
            lambda obj: _dry_run(kube, obj, force_conflicts, autoscalers.get(
                (obj["kind"], obj["metadata"]["name"])), crds), changing) if r is not None]
    nothing = "Nothing more was applied" if applied_before else "Nothing was applied"
    refusals = [r for r in answers if isinstance(r, Refusal)]
    denied = [r for r in refusals if r.exit_code == ExitCode.CLUSTER]
    if denied:
        raise _one_error(denied, f"{nothing} to {namespace}.", ClusterError)
    if refusals:
        raise _one_error(refusals, f"{nothing} to {namespace}.", Refused)
    conflicts = [r for r in answers if isinstance(r, ApplyConflict)]
    if conflicts:
        first = conflicts[0]
        more = f" (and {len(conflicts) - 1} more: " + "; ".join(
            c.message for c in conflicts[1:]) + ")" if len(conflicts) > 1 else ""
        raise ApplyConflict(f"{first.message}{more}. {nothing} to {namespace}.",
                            first.hint, resource=first.resource, reason=first.reason)


def _one_error(refusals: list[Refusal], nothing: str,
               kind: type[PalessError]) -> PalessError:
    """Every refusal in one paragraph, with the code of the first (the JSON report's
    errors[0].code) and each different fix once."""
    first = refusals[0]
    listed = "; ".join(r.message.rstrip(".") for r in refusals)
    fixes = " ".join(dict.fromkeys(r.fix for r in refusals))
    return kind(f"The API server refuses {len(refusals)} object(s) of the manifests: {listed}. "
                f"{nothing}", fixes, code=first.code,
                resource=first.resource, reason=first.reason)


def _defined_by_tree(refusal: Refusal, obj: JsonDict, tree_crds: Mapping[tuple[str, str], str]
                     ) -> Refusal:
    """An unknown kind the tree's own CRD defines is never "install the CRD": the CRD was
    applied before this dry run, so it does not serve the object's version."""
    crd = tree_crds.get((api_group(str(obj.get("apiVersion"))), str(obj.get("kind"))))
    if crd is None or refusal.cause != "unknown-kind":
        return refusal
    return replace(refusal, fix=(
        f"{crd} of the manifests defines {obj.get('kind')} but does not serve "
        f"{obj.get('apiVersion')}: write {ref_of(obj)} in a version the CRD serves, or add "
        "that version to the CRD."))


def _dry_run(kube: Kube, obj: JsonDict, force: bool, autoscaler: str | None,
             tree_crds: Mapping[tuple[str, str], str]) -> Refusal | ApplyConflict | None:
    ref = ref_of(obj)
    with cluster_errors(kube, f"validating {ref}", obj["metadata"].get("namespace")):
        try:
            kind = kube.kind(obj["apiVersion"], obj["kind"])
            namespace = obj["metadata"].get("namespace") if kind.namespaced else None
            with_retries(lambda: kube.apply(kind, obj, namespace, manager=labels.FIELD_MANAGER,
                                            force=force, dry_run=True))
        except PalessError as exc:
            if exc.code == "unknown-kind":
                return _defined_by_tree(refusal_of("unknown-kind", Answer(
                    404, "NotFound", exc.message, resource=ref)), obj, tree_crds)
            raise
        except ApiError as exc:
            if exc.status == 409:
                return conflict_error(obj, exc, autoscaler or autoscaler_of(kube, obj))
            if exc.status == 422 and obj.get("kind") == "Job" and "immutable" in exc.message:
                return None  # a changed Job is replaced, not patched
            if exc.status in (400, 403, 404, 422) or refused_patch(exc):
                # the object as it is, to name what changed (a claim's size, a field)
                live = _live(kube, kind, obj, namespace)
                refusal = exc.refusal(sent=obj, live=live, namespace=namespace,
                                      doing=f"validating {ref}")
                if refusal is not None:
                    return _defined_by_tree(refusal, obj, tree_crds)
            raise
    return None


def _live(kube: Kube, kind: Kind, obj: JsonDict, namespace: str | None) -> JsonDict | None:
    try:
        return kube.read(kind, obj["metadata"]["name"], namespace)
    except ApiError:
        return None
