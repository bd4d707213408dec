"""destroy and gc: remove what this tool deployed, and expired branch namespaces.

A namespace the tool created (managed-by label on the Namespace) goes whole, with the
PersistentVolumes labelled for it; its claims are listed as going with it, and the
volumes bound to them that their reclaimPolicy keeps are kept unless `--delete-data`. In
a namespace it did not create only the objects it labelled go, and the claims its
StatefulSets made; claims and their volumes are kept unless `--delete-data` (a kept claim
is labelled, so a second destroy still lists it). Nothing is ever deleted in a namespace
where it manages nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paless_deploy.adapters.kube import cluster_errors, connect_run, with_retries
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.errors import ConfigError, DeployFailed, LockHeld, PalessError
from paless_deploy.core.manifests.kinds import BY_KIND, by_kind, kind_of
from paless_deploy.core.manifests.labels import (
    INSTANCE,
    MANAGED_BY,
    TOOL,
    instance_selector,
    managed_selector,
)
from paless_deploy.core.manifests.namespaces import created_by_tool, namespace_expiry, parse_rfc3339
from paless_deploy.core.manifests.ownership import volume_deletable
from paless_deploy.core.reporting.report import Result
from paless_deploy.core.reporting.reportfile import PriorReport
from paless_deploy.stages.claims import (
    MadeClaim,
    bound_volumes,
    claim_ref,
    claims_in,
    label_kept,
    made_claims,
)
from paless_deploy.stages.lock import NamespaceLock, lock_for, lock_holder
from paless_deploy.stages.prune import PruneRef, managed_objects, prune
from paless_deploy.stages.reports import load_report
from paless_deploy.stages.sleep import sleep_if_idle
from paless_deploy.ui.lines import confirm, say
from paless_deploy.ui.tables import print_table
from paless_deploy.ui.terminal import stdin_is_terminal

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube
    from paless_deploy.core.configuration.context import RunContext

NAMESPACE = by_kind("Namespace")
PERSISTENT_VOLUME = by_kind("PersistentVolume")


@dataclass
class DestroyPlan:
    """What destroy deletes in one namespace and what it keeps (with why)."""

    namespace: str
    created_by_tool: bool
    terminating: bool = False
    delete: list[PruneRef] = field(default_factory=list)
    keep: list[PruneRef] = field(default_factory=list)
    namespace_exists: bool = True  # False: only cluster-scoped objects of a report are left
    # why each kept object is kept, and what goes without a deletion of its own (with the
    # namespace, its StatefulSet, its claim): listed as deleted, not deleted one by one
    reasons: dict[PruneRef, str] = field(default_factory=dict)
    follow: list[PruneRef] = field(default_factory=list)

    def sort(self, refs: list[PruneRef], delete_data: bool) -> None:
        """Objects to delete, and data (claims, volumes) kept unless `delete_data`."""
        for ref in refs:
            if ref in self.delete or ref in self.keep:
                continue
            if delete_data or not ref.holds_data:
                self.delete.append(ref)
            else:
                self.keep.append(ref)
                self.reasons[ref] = KEPT_REASON

    def goes_with(self, ref: PruneRef, reason: str) -> None:
        if ref not in self.follow and ref not in self.delete:
            self.follow.append(ref)
            self.reasons[ref] = reason


KEPT_REASON = "holds data: pass --delete-data to delete it"


def _namespace_ref(name: str) -> PruneRef:
    return PruneRef("v1", "Namespace", name, None)


def _read_namespace(kube: Kube, name: str) -> JsonDict | None:
    with cluster_errors(kube, f"reading namespace {name}", name):
        return with_retries(lambda: kube.read(NAMESPACE, name))


def _volumes_of(kube: Kube, namespace: str) -> list[PruneRef]:
    """PersistentVolumes the tool created for `namespace` (cluster-scoped) that are bound to
    one of its claims, or to none: a volume bound to another namespace's claim is that
    namespace's data, whatever its labels say."""
    with cluster_errors(kube, "listing PersistentVolumes"):
        volumes, _ = with_retries(lambda: kube.list(PERSISTENT_VOLUME,
                                                    labelSelector=instance_selector(namespace)))
    return [PruneRef("v1", "PersistentVolume", pv["metadata"]["name"], None) for pv in volumes
            if volume_deletable(pv, namespace)]


def _shared_objects(kube: Kube, namespace: str, delete_data: bool) -> list[PruneRef]:
    """What the tool applied for `namespace` outside it (cluster-scoped objects, objects
    in other namespaces the tree named), besides the volumes `_volumes_of` judges: these
    do not go with the namespace. Claims elsewhere are data: kept unless asked."""
    return [ref for ref in managed_objects(kube, namespace)
            if ref.namespace != namespace and ref.kind != "PersistentVolume"
            and (delete_data or not ref.holds_data)]


def owned_outside(kube: Kube, namespace: str, delete_data: bool = False) -> list[PruneRef]:
    """Everything destroy deletes besides a namespace the tool created: its volumes and
    its shared objects."""
    return [*_volumes_of(kube, namespace), *_shared_objects(kube, namespace, delete_data)]


def plan_destroy(kube: Kube, namespace: str, delete_data: bool,
                 warn: Callable[[str], None] = lambda text: None) -> DestroyPlan | None:
    """The plan for one namespace; None when the namespace does not exist.

    ConfigError (exit 2) when the tool manages nothing there.
    """
    ns = _read_namespace(kube, namespace)
    if ns is None:
        return None
    terminating = (ns.get("status") or {}).get("phase") == "Terminating"
    if created_by_tool(ns):
        plan = DestroyPlan(namespace, True, terminating,
                           delete=[_namespace_ref(namespace),
                                   *owned_outside(kube, namespace, delete_data)])
        claims = [claim_ref(c["metadata"]["name"], namespace) for c in claims_in(kube, namespace)]
        for ref in claims:
            plan.goes_with(ref, f"with namespace {namespace}")
        _plan_volumes(kube, plan, {c.name for c in claims}, delete_data, warn)
        return plan
    objects = managed_objects(kube, namespace)
    made = made_claims(kube, namespace)
    if not objects and not made:
        raise ConfigError(
            f"paless-deploy manages nothing in namespace {namespace}: the namespace was not "
            f"created by it and no object there carries {instance_selector(namespace)}. "
            "Refusing to delete anything.",
            "Check -n / PALESS_NAMESPACE (`paless-deploy config` shows the effective "
            "namespace); delete objects of other tools with kubectl.",
            code="unmanaged-namespace")
    plan = DestroyPlan(namespace, False, terminating)
    _plan_objects(kube, plan, objects, made, delete_data, warn)
    return plan


def _plan_objects(kube: Kube, plan: DestroyPlan, objects: list[PruneRef],
                  made: list[MadeClaim], delete_data: bool, warn: Callable[[str], None]) -> None:
    """In a namespace the tool did not create: its objects, the claims its StatefulSets
    made (those their retention policy deletes go with them), the volumes bound to the
    claims that go."""
    for claim in made:
        if claim.goes_with_it:
            plan.goes_with(claim.ref, f"with StatefulSet/{claim.statefulset} (its "
                                      "persistentVolumeClaimRetentionPolicy deletes its claims)")
    plan.sort([*objects, *(c.ref for c in made if not c.goes_with_it)], delete_data)
    going = {r.name for r in [*plan.delete, *plan.follow] if r.kind == "PersistentVolumeClaim"}
    _plan_volumes(kube, plan, going, delete_data, warn)


def _plan_volumes(kube: Kube, plan: DestroyPlan, claims: set[str], delete_data: bool,
                  warn: Callable[[str], None]) -> None:
    """The volumes bound to claims that go: what their reclaimPolicy does, said."""
    for pv in bound_volumes(kube, plan.namespace, claims, warn):
        ref = PruneRef("v1", "PersistentVolume", pv["metadata"]["name"], None)
        if ref in plan.delete:
            continue
        claim = (pv.get("spec") or {}).get("claimRef", {}).get("name")
        policy = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Delete"
        if policy == "Delete":
            plan.goes_with(ref, f"with claim {claim} (reclaimPolicy Delete)")
        elif delete_data:
            plan.delete.append(ref)
        else:
            plan.keep.append(ref)
            plan.reasons[ref] = (f"was bound to claim {claim}; reclaimPolicy {policy} keeps its "
                                 "data: pass --delete-data to delete it")


def read_destroy_report(path: Path) -> PriorReport:
    """`destroy --from-report`: the report of a deploy (it must name its namespace)."""
    report = load_report(path, "--from-report")
    if not report.namespace:
        raise ConfigError(
            f"{report.source} names no namespace (command {report.command!r}): it is not the "
            "report of a deploy.",
            "Pass the report that `paless-deploy --output json all` (or `deploy`) wrote.",
            code="bad-report")
    return report


def plan_from_report(kube: Kube, report: PriorReport, delete_data: bool,
                     warn: Callable[[str], None]) -> DestroyPlan | None:
    """Exactly what a deploy's report names: its namespace (whole, when the tool created
    it; else the managed objects the report lists) and the objects it applied outside
    the namespace that still carry this instance's labels. None when nothing of it is left."""
    namespace = str(report.namespace)
    cluster = _reported_shared_objects(kube, report, warn)
    ns = _read_namespace(kube, namespace)
    if ns is None:
        if not cluster:
            return None
        return DestroyPlan(namespace, False, delete=cluster, namespace_exists=False)
    terminating = (ns.get("status") or {}).get("phase") == "Terminating"
    if created_by_tool(ns):
        return DestroyPlan(namespace, True, terminating,
                           delete=[_namespace_ref(namespace), *cluster])
    named = {(o.kind, o.name) for o in report.objects}
    objects = [r for r in managed_objects(kube, namespace)
               if (r.kind, r.name) in named and r.namespace == namespace]
    made = made_claims(kube, namespace, {name for kind, name in named if kind == "StatefulSet"})
    if not objects and not cluster and not made:
        raise ConfigError(
            f"paless-deploy manages none of the objects {report.source} names in namespace "
            f"{namespace} (the tool did not create that namespace). Refusing to delete anything.",
            "Check that the report belongs to this cluster (--kubeconfig, --context).",
            code="unmanaged-namespace")
    plan = DestroyPlan(namespace, False, terminating)
    _plan_objects(kube, plan, [*objects, *cluster], made, delete_data, warn)
    return plan


def _reported_shared_objects(kube: Kube, report: PriorReport,
                              warn: Callable[[str], None]) -> list[PruneRef]:
    """The report's objects outside its namespace (cluster-scoped, or in a namespace the
    tree named) that exist and are labelled for its instance (one relabelled by another
    deploy since is not ours to delete)."""
    found: list[PruneRef] = []
    for obj in report.objects:
        if obj.kind == "Namespace" and obj.name == report.namespace:
            continue
        kind = kind_of(obj.api_version, obj.kind) if obj.api_version else BY_KIND.get(obj.kind)
        if kind is None and obj.api_version:
            try:
                with cluster_errors(kube, f"looking up {obj.kind}"):
                    kind = kube.kind(obj.api_version, obj.kind)
            except ConfigError:  # the cluster no longer serves it (CRD removed): none left
                continue
        if kind is None:
            warn(f"{obj.kind}/{obj.name}: the report gives no apiVersion for this kind; not "
                 "deleted (delete it with kubectl if it was ours).")
            continue
        where = obj.namespace or None if kind.namespaced else None
        if kind.namespaced and where in (None, report.namespace):
            continue  # in the namespace: found among its managed objects
        with cluster_errors(kube, f"reading {obj.kind}/{obj.name}", where):
            live = with_retries(partial(kube.read, kind, obj.name, where))
        if live is None:
            continue
        labels = (live.get("metadata") or {}).get("labels") or {}
        if labels.get(INSTANCE) != report.namespace or labels.get(MANAGED_BY) != TOOL:
            warn(f"{obj.kind}/{obj.name} is no longer labelled for {report.namespace}: "
                 "not deleted.")
            continue
        found.append(PruneRef(kind.api_version, kind.kind, obj.name, where))
    return found


def _entry(ref: PruneRef, reason: str = "") -> dict[str, Any]:
    entry = {"kind": ref.kind, "name": ref.name, "namespace": ref.namespace}
    if reason:
        entry["reason"] = reason
    return entry


def _say(run_ctx: RunContext, text: str) -> None:
    if not run_ctx.console.quiet:
        say(text, err=True)


def _show(run_ctx: RunContext, title: str, rows: Sequence[Sequence[str]]) -> None:
    """The command's own output on stdout in text mode (JSON mode prints the Result)."""
    if run_ctx.json_output:
        return
    if not rows:
        say(f"{title}: nothing.")
        return
    print_table(title, ("action", "object", "namespace", "reason"), rows, run_ctx.console.color)


def _confirm(plan: DestroyPlan, yes: bool) -> None:
    if yes:
        return
    what = (f"namespace {plan.namespace} with everything in it"
            + (f" and {len(plan.delete) - 1} object(s) outside it (volumes, shared objects)"
               if len(plan.delete) > 1 else "")
            if plan.created_by_tool else
            f"{len(plan.delete)} object(s) paless-deploy manages in namespace {plan.namespace}")
    if not stdin_is_terminal():
        raise ConfigError(
            f"destroy would delete {what}, and asks for confirmation, but stdin is not a "
            "terminal.",
            "Pass --yes to confirm (CI), or --dry-run to see what would be deleted.",
            code="confirmation-required")
    if not confirm(f"Delete {what}?"):
        raise PalessError("Not confirmed: nothing was deleted.", code="aborted")


def delete_plan(kube: Kube, plan: DestroyPlan) -> None:
    """Issue the deletions of a plan (namespace first, then its volumes)."""
    refs = list(plan.delete)
    if plan.created_by_tool:
        with cluster_errors(kube, f"deleting namespace {plan.namespace}", plan.namespace):
            kube.delete(NAMESPACE, plan.namespace)
        refs = [r for r in refs if r.kind != "Namespace"]
    prune(kube, refs)


def wait_gone(kube: Kube, refs: list[PruneRef], timeout_s: float) -> None:
    """Watch each object until it is deleted; DeployFailed (exit 1) at the deadline."""
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=timeout_s)
    for ref in refs:
        left = (deadline - dt.datetime.now(dt.UTC)).total_seconds()
        with cluster_errors(kube, f"waiting for {ref.describe()} to go", ref.namespace):
            live = kube.watch_until(kube.kind(ref.api_version, ref.kind), ref.name,
                                    ref.namespace, lambda obj: obj is None, max(0.1, left))
        if live is not None:
            raise _still_there(ref, live, timeout_s)


def _still_there(ref: PruneRef, live: Mapping[str, Any], timeout_s: float) -> DeployFailed:
    meta = live.get("metadata") or {}
    finalizers = list(meta.get("finalizers") or [])
    if ref.kind == "Namespace":
        finalizers += list((live.get("spec") or {}).get("finalizers") or [])
    blocked = f" (finalizers: {', '.join(finalizers)})" if finalizers else ""
    command = f"kubectl get {ref.kind.lower()} {ref.name} -o yaml" + (
        f" -n {ref.namespace}" if ref.namespace else "")
    return DeployFailed(
        f"{ref.describe()} was still there {timeout_s:.0f}s after its deletion{blocked}.",
        f"Its deletion continues in the cluster; look at what blocks it ({command}: "
        "status.conditions, finalizers) and run the command again to wait.",
        code="delete-timeout", resource=f"{ref.kind}/{ref.name}", commands=[command])


def run_destroy(run_ctx: RunContext, yes: bool = False, delete_data: bool = False,
                dry_run: bool = False, report: PriorReport | None = None) -> Result:
    """Remove what this tool deployed into the run's namespace (see the module docstring);
    with `report`, exactly what that deploy's report names."""
    namespace = run_ctx.config.namespace
    kube = connect_run(run_ctx)
    result = Result(command="destroy", namespace=namespace)

    def warn(text: str) -> None:
        result.warnings.append(text)
        _say(run_ctx, f"warning: {text}")

    def make_plan() -> DestroyPlan | None:
        if report is not None:
            return plan_from_report(kube, report, delete_data, warn)
        return plan_destroy(kube, namespace, delete_data, warn)

    plan = make_plan()
    if plan is None:
        result.warnings.append(f"Namespace {namespace} does not exist: nothing to destroy.")
        result.extra = {"deleted": [], "kept": [], "dry_run": dry_run}
        _say(run_ctx, f"Namespace {namespace} does not exist: nothing to destroy.")
        return result
    if not dry_run:
        _confirm(plan, yes)
        if plan.terminating:
            _say(run_ctx, f"Namespace {namespace} is already being deleted; waiting.")
        elif not plan.namespace_exists:  # no namespace, no lock: what the report left
            _say(run_ctx, f"Namespace {namespace} is gone; deleting {len(plan.delete)} "
                          "cluster-scoped object(s) its report names...")
            delete_plan(kube, plan)
        else:
            with lock_for(kube, run_ctx, "destroy"):
                # Re-plan under the lock: a deploy that held it may have added objects.
                plan = make_plan() or plan
                _say(run_ctx, f"Deleting {len(plan.delete)} object(s) in {namespace}...")
                delete_plan(kube, plan)
                if not plan.created_by_tool:
                    label_kept(kube, namespace, plan.keep)
        wait_gone(kube, plan.delete, max(1.0, run_ctx.remaining_s(time.monotonic())))
    done = "dry run" if dry_run else ""
    result.extra = {
        "deleted": [_entry(r, done) for r in plan.delete]
        + [_entry(r, plan.reasons[r]) for r in plan.follow],
        "kept": [_entry(r, plan.reasons.get(r, KEPT_REASON)) for r in plan.keep],
        "dry_run": dry_run,
    }
    if plan.keep:
        result.warnings.append(
            f"Kept {len(plan.keep)} claim(s)/volume(s) holding data in {namespace}; "
            "pass --delete-data to delete them.")
    action = "would delete" if dry_run else "deleted"
    rows = [(action, f"{r.kind}/{r.name}", r.namespace or "", "") for r in plan.delete]
    rows += [(action, f"{r.kind}/{r.name}", r.namespace or "", plan.reasons[r])
             for r in plan.follow]
    rows += [("kept", f"{r.kind}/{r.name}", r.namespace or "", plan.reasons.get(r, KEPT_REASON))
             for r in plan.keep]
    _show(run_ctx, f"destroy {namespace}" + (" (dry run)" if dry_run else ""), rows)
    return result


def _maybe_asleep(run_ctx: RunContext, kube: Kube, ns: JsonDict, sleep_after: float | None,
                  now: dt.datetime, dry_run: bool) -> tuple[bool, str]:
    """gc --sleep-after for a namespace gc keeps: (put to sleep, why); (False, "") without
    the option."""
    if sleep_after is None:
        return False, ""
    return sleep_if_idle(kube, ns, sleep_after, now, dry_run, partial(_say, run_ctx))


def run_gc(run_ctx: RunContext, older_than: float | None = None, dry_run: bool = False, *,
           selector: str | None = None, now: dt.datetime | None = None,
           sleep_after: float | None = None) -> Result:
    """Delete managed namespaces idle (since their last deploy) longer than `older_than`
    seconds or past their TTL; each deletion is said with its reason as it happens.

    Only namespaces labelled managed-by paless-deploy are considered (`selector`, extra
    label selector terms, narrows that further: `gc -l team=a`). One labelled
    `paless.io/keep=true` is never deleted. A namespace whose lock is held by a running
    deploy is skipped with a warning, never deleted under it. With `sleep_after` (seconds),
    one kept but idle that long is put to sleep (stages.sleep: scaled to zero, data kept).
    """
    kube = connect_run(run_ctx)
    now = now or dt.datetime.now(dt.UTC)
    label_selector = managed_selector() + (f",{selector}" if selector else "")
    with cluster_errors(kube, "listing namespaces"):
        namespaces, _ = with_retries(lambda: kube.list(NAMESPACE, labelSelector=label_selector))
    result = Result(command="gc", namespace=None)
    deleted: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    gone: list[PruneRef] = []
    slept: list[dict[str, Any]] = []
    for ns in sorted(namespaces, key=lambda n: n["metadata"]["name"]):
        name = ns["metadata"]["name"]
        ref = _namespace_ref(name)
        if (ns.get("status") or {}).get("phase") == "Terminating":
            kept.append(_entry(ref, "already being deleted"))
            continue
        expiry = namespace_expiry(ns["metadata"].get("annotations"),
                                  parse_rfc3339(ns["metadata"].get("creationTimestamp")),
                                  older_than, now, namespace_labels=ns["metadata"].get("labels"))
        if not expiry.expired:
            asleep, why = _maybe_asleep(run_ctx, kube, ns, sleep_after, now, dry_run)
            (slept if asleep else kept).append(_entry(ref, why or expiry.reason))
            continue
        if dry_run:
            _say(run_ctx, f"would delete namespace {name}: {expiry.reason}")
            deleted.append(_entry(ref, f"dry run: {expiry.reason}"))
            continue
        _say(run_ctx, f"deleting namespace {name}: {expiry.reason}")
        plan = DestroyPlan(name, True, delete=[ref, *owned_outside(kube, name)])
        try:
            # Timeout 0: a deploy holding the lock right now keeps its namespace this round.
            with NamespaceLock(kube, name, lock_holder("gc"), 0):
                delete_plan(kube, plan)
        except LockHeld as exc:
            kept.append(_entry(ref, "locked by a running deploy"))
            result.warnings.append(f"Skipped {name}: {exc.message}")
            continue
        gone.extend(plan.delete)
        deleted.extend(_entry(r, expiry.reason) for r in plan.delete)
    if gone:
        _say(run_ctx, f"Waiting for {len(gone)} object(s) to be deleted...")
        wait_gone(kube, gone, max(1.0, run_ctx.remaining_s(time.monotonic())))
    result.extra = {"deleted": deleted, "kept": kept, "slept": slept, "dry_run": dry_run}
    _show_gc(run_ctx, deleted, slept, kept, dry_run)
    return result


def _show_gc(run_ctx: RunContext, deleted: list[dict[str, Any]], slept: list[dict[str, Any]],
             kept: list[dict[str, Any]], dry_run: bool) -> None:
    rows = [("would delete" if dry_run else "deleted", f"{d['kind']}/{d['name']}",
             d["namespace"] or "", d.get("reason", "")) for d in deleted]
    rows += [("would sleep" if dry_run else "asleep", f"{s['kind']}/{s['name']}", "",
              s.get("reason", "")) for s in slept]
    rows += [("kept", f"{k['kind']}/{k['name']}", "", k.get("reason", "")) for k in kept]
    _show(run_ctx, "gc" + (" (dry run)" if dry_run else ""), rows)
