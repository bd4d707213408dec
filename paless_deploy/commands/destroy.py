"""destroy and gc: remove what this tool deployed, and expired branch namespaces.

A namespace the tool created (managed-by label on the Namespace) goes whole, with the
PersistentVolumes labelled for it. In a namespace it did not create only the objects it
labelled go, claims and volumes kept unless `--delete-data`. Nothing is ever deleted in
a namespace where it manages nothing.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from paless_deploy.core.errors import ConfigError, DeployFailed, LockHeld, PalessError
from paless_deploy.core.report import Result
from paless_deploy.stages.namespaces import MANAGED_BY, TOOL, namespace_expiry
from paless_deploy.stages.prune import PruneRef, instance_selector, managed_objects, prune

NAMESPACE_SELECTOR = f"{MANAGED_BY}={TOOL}"


@dataclass
class DestroyPlan:
    """What destroy deletes in one namespace and what it keeps (with why)."""

    namespace: str
    created_by_tool: bool
    terminating: bool = False
    delete: list[PruneRef] = field(default_factory=list)
    keep: list[PruneRef] = field(default_factory=list)


def _namespace_ref(name: str) -> PruneRef:
    return PruneRef("v1", "Namespace", name, None)


def _read_namespace(kube: Any, name: str) -> Any | None:
    from kubernetes.client.exceptions import ApiException

    from paless_deploy.adapters.kube import cluster_errors, with_retries

    with cluster_errors(kube, f"reading namespace {name}", name):
        try:
            return with_retries(lambda: kube.core.read_namespace(name, _request_timeout=(5, 30)))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise


def _volumes_of(kube: Any, namespace: str) -> list[PruneRef]:
    """PersistentVolumes the tool created for `namespace` (cluster-scoped)."""
    from paless_deploy.adapters.kube import cluster_errors, with_retries

    with cluster_errors(kube, "listing PersistentVolumes"):
        listing = with_retries(lambda: kube.core.list_persistent_volume(
            label_selector=instance_selector(namespace), _request_timeout=(5, 30)))
    return [PruneRef("v1", "PersistentVolume", pv.metadata.name, None) for pv in listing.items]


def plan_destroy(kube: Any, namespace: str, delete_data: bool) -> DestroyPlan | None:
    """The plan for one namespace; None when the namespace does not exist.

    ConfigError (exit 2) when the tool manages nothing there.
    """
    ns = _read_namespace(kube, namespace)
    if ns is None:
        return None
    labels = ns.metadata.labels or {}
    terminating = (ns.status.phase if ns.status else "") == "Terminating"
    if labels.get(MANAGED_BY) == TOOL:
        return DestroyPlan(namespace, True, terminating,
                           delete=[_namespace_ref(namespace), *_volumes_of(kube, namespace)])
    objects = managed_objects(kube, namespace)
    if not objects:
        raise ConfigError(
            f"paless-deploy manages nothing in namespace {namespace}: the namespace was not "
            f"created by it and no object there carries {instance_selector(namespace)}. "
            "Refusing to delete anything.",
            "Check -n / PALESS_NAMESPACE (`paless-deploy config` shows the effective "
            "namespace); delete objects of other tools with kubectl.",
            code="unmanaged-namespace")
    plan = DestroyPlan(namespace, False, terminating)
    for ref in objects:
        (plan.delete if delete_data or not ref.holds_data else plan.keep).append(ref)
    return plan


def _entry(ref: PruneRef, reason: str = "") -> dict[str, Any]:
    entry = {"kind": ref.kind, "name": ref.name, "namespace": ref.namespace}
    if reason:
        entry["reason"] = reason
    return entry


def _say(run_ctx: Any, text: str) -> None:
    if not run_ctx.console.quiet:
        click.echo(text, err=True)


def _show(run_ctx: Any, title: str, rows: Sequence[Sequence[str]]) -> None:
    """The command's own output on stdout in text mode (JSON mode prints the Result)."""
    if run_ctx.json_output:
        return
    if not rows:
        click.echo(f"{title}: nothing.")
        return
    from paless_deploy.core.report import print_table

    print_table(title, ("action", "object", "namespace", "reason"), rows, run_ctx.console.color)


def _confirm(plan: DestroyPlan, yes: bool) -> None:
    if yes:
        return
    what = (f"namespace {plan.namespace} with everything in it"
            + (f" and {len(plan.delete) - 1} PersistentVolume(s)" if len(plan.delete) > 1 else "")
            if plan.created_by_tool else
            f"{len(plan.delete)} object(s) paless-deploy manages in namespace {plan.namespace}")
    try:
        interactive = sys.stdin.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if not interactive:
        raise ConfigError(
            f"destroy would delete {what}, and asks for confirmation, but stdin is not a "
            "terminal.",
            "Pass --yes to confirm (CI), or --dry-run to see what would be deleted.",
            code="confirmation-required")
    if not click.confirm(f"Delete {what}?", default=False, err=True):
        raise PalessError("Not confirmed: nothing was deleted.", code="aborted")


def delete_plan(kube: Any, plan: DestroyPlan) -> None:
    """Issue the deletions of a plan (namespace first, then its volumes)."""
    from kubernetes.client.exceptions import ApiException

    from paless_deploy.adapters.kube import cluster_errors

    refs = list(plan.delete)
    if plan.created_by_tool:
        with cluster_errors(kube, f"deleting namespace {plan.namespace}", plan.namespace):
            try:
                kube.core.delete_namespace(plan.namespace, _request_timeout=(5, 30))
            except ApiException as exc:
                if exc.status != 404:
                    raise
        refs = [r for r in refs if r.kind != "Namespace"]
    prune(kube, refs)


def wait_gone(kube: Any, refs: list[PruneRef], timeout_s: float) -> None:
    """Watch each object until it is deleted; DeployFailed (exit 1) at the deadline."""
    from kubernetes.client.exceptions import ApiException

    from paless_deploy.adapters.kube import cluster_errors

    deadline = time.monotonic() + timeout_s
    for ref in refs:
        resource = kube.resource(ref.api_version, ref.kind)
        scope = {"namespace": ref.namespace} if ref.namespace else {}
        with cluster_errors(kube, f"waiting for {ref.describe()} to go", ref.namespace):
            while True:
                try:
                    live = resource.get(name=ref.name, _request_timeout=(5, 30), **scope)
                except ApiException as exc:
                    if exc.status == 404:
                        break
                    raise
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _still_there(ref, live, timeout_s)
                for event in resource.watch(
                        field_selector=f"metadata.name={ref.name}",
                        resource_version=live.metadata.resourceVersion,
                        timeout=max(1, int(min(left, 60))), **scope):
                    if event["type"] == "DELETED":
                        break


def _still_there(ref: PruneRef, live: Any, timeout_s: float) -> DeployFailed:
    finalizers = list(live.metadata.finalizers or [])
    if ref.kind == "Namespace" and live.spec:
        finalizers += list(live.spec.finalizers or [])
    blocked = f" (finalizers: {', '.join(finalizers)})" if finalizers else ""
    command = f"kubectl get {ref.kind.lower()} {ref.name} -o yaml" + (
        f" -n {ref.namespace}" if ref.namespace else "")
    error = DeployFailed(
        f"{ref.describe()} was still there {timeout_s:.0f}s after its deletion{blocked}.",
        f"Its deletion continues in the cluster; look at what blocks it ({command}: "
        "status.conditions, finalizers) and run the command again to wait.",
        code="delete-timeout")
    error.resource = f"{ref.kind}/{ref.name}"  # type: ignore[attr-defined]
    error.commands = [command]  # type: ignore[attr-defined]
    return error


def run_destroy(run_ctx: Any, yes: bool = False, delete_data: bool = False,
                dry_run: bool = False) -> Result:
    """Remove what this tool deployed into the run's namespace (see the module docstring)."""
    from paless_deploy.adapters.kube import connect
    from paless_deploy.stages.lock import lock_for

    namespace = run_ctx.config.namespace
    kube = connect(run_ctx.kubeconfig, run_ctx.context)
    result = Result(command="destroy", namespace=namespace)
    plan = plan_destroy(kube, namespace, delete_data)
    if plan is None:
        result.warnings.append(f"Namespace {namespace} does not exist: nothing to destroy.")
        result.extra = {"deleted": [], "kept": [], "dry_run": dry_run}
        _say(run_ctx, f"Namespace {namespace} does not exist: nothing to destroy.")
        return result
    if not dry_run:
        _confirm(plan, yes)
        if plan.terminating:
            _say(run_ctx, f"Namespace {namespace} is already being deleted; waiting.")
        else:
            with lock_for(kube, run_ctx, "destroy"):
                # Re-plan under the lock: a deploy that held it may have added objects.
                plan = plan_destroy(kube, namespace, delete_data) or plan
                _say(run_ctx, f"Deleting {len(plan.delete)} object(s) in {namespace}...")
                delete_plan(kube, plan)
        wait_gone(kube, plan.delete, max(1.0, run_ctx.remaining_s()))
    kept_reason = "holds data: pass --delete-data to delete it"
    result.extra = {
        "deleted": [_entry(r, "dry run" if dry_run else "") for r in plan.delete],
        "kept": [_entry(r, kept_reason) for r in plan.keep],
        "dry_run": dry_run,
    }
    if plan.keep:
        result.warnings.append(
            f"Kept {len(plan.keep)} claim(s)/volume(s) holding data in {namespace}; "
            "pass --delete-data to delete them.")
    action = "would delete" if dry_run else "deleted"
    rows = [(action, f"{r.kind}/{r.name}", r.namespace or "", "") for r in plan.delete]
    rows += [("kept", f"{r.kind}/{r.name}", r.namespace or "", kept_reason) for r in plan.keep]
    _show(run_ctx, f"destroy {namespace}" + (" (dry run)" if dry_run else ""), rows)
    return result


def run_gc(run_ctx: Any, older_than: float | None = None, dry_run: bool = False, *,
           selector: str | None = None, now: dt.datetime | None = None) -> Result:
    """Delete managed namespaces older than `older_than` seconds or past their TTL.

    Only namespaces labelled managed-by paless-deploy are considered (`selector`, extra
    label selector terms, narrows that further; tests use it). A namespace whose lock is
    held by a running deploy is skipped with a warning, never deleted under it.
    """
    from paless_deploy.adapters.kube import cluster_errors, connect, with_retries
    from paless_deploy.stages.lock import NamespaceLock, holder_identity

    kube = connect(run_ctx.kubeconfig, run_ctx.context)
    now = now or dt.datetime.now(dt.UTC)
    label_selector = NAMESPACE_SELECTOR + (f",{selector}" if selector else "")
    with cluster_errors(kube, "listing namespaces"):
        listing = with_retries(lambda: kube.core.list_namespace(
            label_selector=label_selector, _request_timeout=(5, 30)))
    result = Result(command="gc", namespace=None)
    deleted: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    gone: list[PruneRef] = []
    for ns in sorted(listing.items, key=lambda n: n.metadata.name):
        name = ns.metadata.name
        ref = _namespace_ref(name)
        if ns.status and ns.status.phase == "Terminating":
            kept.append(_entry(ref, "already being deleted"))
            continue
        expiry = namespace_expiry(ns.metadata.annotations, ns.metadata.creation_timestamp,
                                  older_than, now)
        if not expiry.expired:
            kept.append(_entry(ref, expiry.reason))
            continue
        if dry_run:
            deleted.append(_entry(ref, f"dry run: {expiry.reason}"))
            continue
        plan = DestroyPlan(name, True, delete=[ref, *_volumes_of(kube, name)])
        try:
            # Timeout 0: a deploy holding the lock right now keeps its namespace this round.
            with NamespaceLock(kube, name, holder_identity("gc"), 0):
                delete_plan(kube, plan)
        except LockHeld as exc:
            kept.append(_entry(ref, "locked by a running deploy"))
            result.warnings.append(f"Skipped {name}: {exc.message}")
            continue
        gone.extend(plan.delete)
        deleted.extend(_entry(r, expiry.reason) for r in plan.delete)
    if gone:
        _say(run_ctx, f"Waiting for {len(gone)} object(s) to be deleted...")
        wait_gone(kube, gone, max(1.0, run_ctx.remaining_s()))
    result.extra = {"deleted": deleted, "kept": kept, "dry_run": dry_run}
    action = "would delete" if dry_run else "deleted"
    rows = [(action, f"{d['kind']}/{d['name']}", d["namespace"] or "", d.get("reason", ""))
            for d in deleted]
    rows += [("kept", f"{k['kind']}/{k['name']}", "", k.get("reason", "")) for k in kept]
    _show(run_ctx, "gc" + (" (dry run)" if dry_run else ""), rows)
    return result
