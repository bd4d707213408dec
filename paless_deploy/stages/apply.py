"""Apply stage: server-side apply of one object, with the tool's field manager.

Knows the exceptions to a plain apply: HPA-managed Deployments get their initial
replica count only at creation, Jobs are immutable (a changed or failed Job is
replaced, a completed unchanged one left alone), and conflicts name their owner.
`diff` calls the same function with `dry_run=True`, so it sees what `all` would do.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeGuard

from paless_deploy.adapters.kube import (
    ApiError,
    TransportError,
    cluster_errors,
    refused_patch,
    with_retries,
)
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.errors import DeployFailed, PalessError
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.kinds import Kind, by_kind
from paless_deploy.core.manifests.objdiff import apply_changes_nothing, same
from paless_deploy.core.reporting.report import ObjectAction

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube

@dataclass(frozen=True)
class Applied:
    """One object after its apply: what happened and what to wait for."""

    kind: str
    name: str
    namespace: str | None
    action: ObjectAction
    generation: int | None
    uid: str
    live: JsonDict  # the object as the API server returned it (dry run: as it would be)
    previous: JsonDict | None = None  # the object before this apply (None when created)
    body: JsonDict | None = None  # what we applied (the rendered object)

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


class ApplyConflict(DeployFailed):
    """Another field manager owns fields we apply."""

    code = "apply-conflict"


def object_ref(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def _ssa(kube: Kube, kind: Kind, body: Mapping[str, Any], namespace: str | None, *,
         force: bool, manager: str = labels.FIELD_MANAGER, dry_run: bool = False) -> JsonDict:
    return with_retries(lambda: kube.apply(kind, body, namespace, manager=manager, force=force,
                                           dry_run=dry_run))


def conflict_error(obj: Mapping[str, Any], exc: ApiError, autoscaler: str | None = None
                   ) -> ApplyConflict:
    """The one description of an apply conflict (the refusal table's `conflict` row): who
    owns the fields, and the fix (an autoscaler's replicas are named as such)."""
    refusal = exc.refusal(sent=obj, autoscaler=autoscaler)
    assert refusal is not None
    return ApplyConflict(refusal.message, refusal.fix, resource=object_ref(obj),
                         reason="Conflict")


def autoscaler_of(kube: Kube, obj: Mapping[str, Any]) -> str | None:
    """The name of an HPA in the cluster that scales `obj` (one made outside the tree)."""
    namespace = (obj.get("metadata") or {}).get("namespace")
    try:
        hpas, _ = kube.list(by_kind("HorizontalPodAutoscaler"), namespace)
    except (ApiError, TransportError):
        return None  # the conflict is still named, only without the HPA
    for hpa in hpas:
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("kind") == obj.get("kind") and ref.get("name") == (
                obj.get("metadata") or {}).get("name"):
            return str(hpa["metadata"]["name"])
    return None


def refused(obj: Mapping[str, Any], exc: ApiError, *, live: Mapping[str, Any] | None = None,
            applying: bool, doing: str = "") -> PalessError:
    """The error for an object the API server refused, classified by what it said
    (`core.diagnosis.refusals`): RBAC is exit 4, the rest exit 2 in a dry run and 1 while
    applying (other objects of the run are applied already)."""
    namespace = (obj.get("metadata") or {}).get("namespace")
    refusal = exc.refusal(sent=obj, live=live, namespace=namespace, doing=doing)
    if refusal is None:  # not a refusal (a 5xx after the retries): cluster_errors says it
        raise exc
    return refusal.error(applying=applying)


def _immutable(exc: ApiError) -> bool:
    return exc.status == 422 and "immutable" in exc.message


def _condition_true(obj: Mapping[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def apply_object(kube: Kube, obj: JsonDict, *, force_conflicts: bool = False,
                 dry_run: bool = False, autoscaler: str | None = None,
                 listed: LiveObjects | None = None) -> Applied:
    """Server-side apply one object and say whether it was created, changed or not.

    With `dry_run` nothing is written: the server answers with the object as the apply
    would leave it (a Job that would be replaced comes back as rendered). `listed` (the
    phase's `LiveObjects`) saves reading the object first; when it shows that the apply would change
    nothing (`apply_changes_nothing`), no request is sent at all.
    """
    name = obj["metadata"]["name"]
    with cluster_errors(kube, f"applying {obj['kind']}/{name}", obj["metadata"].get("namespace")):
        kind = kube.kind(obj["apiVersion"], obj["kind"])
        namespace = obj["metadata"].get("namespace") if kind.namespaced else None
        before = listed.get(kind, name, namespace) if listed is not None else None
        if before is None:
            before = with_retries(lambda: kube.read(kind, name, namespace))
        if not dry_run and holds(before, obj):
            return _applied(obj, ObjectAction.UNCHANGED, before, namespace, before)
        try:
            if kind.kind == "Job" and before is not None:
                return _apply_job(kube, kind, obj, before, namespace, force_conflicts, dry_run)
            body = obj
            initial = _initial_replicas(obj) if before is None else None
            if initial is not None:
                body = copy.deepcopy(obj)
                body["spec"]["replicas"] = initial
            live = _ssa(kube, kind, body, namespace, force=force_conflicts, dry_run=dry_run)
            if initial is not None and not dry_run:
                live = _hand_replicas_to_initial_manager(kube, kind, obj, initial, namespace)
        except ApiError as exc:
            if exc.status == 409:
                raise conflict_error(obj, exc, autoscaler or autoscaler_of(kube, obj)) from None
            if exc.status in (400, 403, 422) or refused_patch(exc):
                raise refused(obj, exc, live=before, applying=not dry_run,
                              doing=f"applying {obj['kind']}/{name}") from None
            raise
    if before is None:
        action = ObjectAction.CREATED
    elif dry_run:
        action = ObjectAction.UNCHANGED if same(before, live) else ObjectAction.CONFIGURED
    elif before["metadata"].get("resourceVersion") == live["metadata"].get("resourceVersion"):
        action = ObjectAction.UNCHANGED
    else:
        action = ObjectAction.CONFIGURED
    return _applied(obj, action, live, namespace, before)


class LiveObjects:
    """The objects this tool applied to a namespace, as listed just now: one LIST per kind
    instead of one GET per object (a thousand objects, a thousand round trips fewer)."""

    def __init__(self, kube: Kube, objects: list[JsonDict]) -> None:
        self._objects: dict[tuple[str, str, str, str | None], JsonDict] = {}
        self._unchanged: dict[int, bool] = {}  # id(obj) -> holds (the objects outlive us)
        lists: dict[tuple[str, str, str | None, str], Kind] = {}
        for obj in objects:
            instance = ((obj.get("metadata") or {}).get("labels") or {}).get(labels.INSTANCE)
            if instance:  # objects render did not label are read on their own
                try:
                    kind = kube.kind(obj["apiVersion"], obj["kind"])
                except PalessError as exc:
                    if exc.code != "unknown-kind":
                        raise
                    continue  # the dry run names every kind the cluster does not serve
                namespace = obj["metadata"].get("namespace") if kind.namespaced else None
                lists[(kind.api_version, kind.kind, namespace, instance)] = kind
        for (_, _, namespace, instance), kind in lists.items():
            with cluster_errors(kube, f"listing {kind.kind}", namespace):
                items, _ = with_retries(partial(kube.list, kind, namespace,
                                                labelSelector=labels.instance_selector(instance)))
            for item in items:
                self._objects[(kind.api_version, kind.kind, item["metadata"]["name"],
                               namespace)] = item

    def get(self, kind: Kind, name: str, namespace: str | None) -> JsonDict | None:
        """The listed object, None when the list did not have it (then read it alone)."""
        return self._objects.get((kind.api_version, kind.kind, name, namespace))

    def unchanged(self, kube: Kube, obj: JsonDict) -> bool:
        """The listed object `holds` what an apply of `obj` would set (asked once per
        object: the dry run and its phase both ask)."""
        key = id(obj)
        if key not in self._unchanged:
            try:
                kind = kube.kind(obj["apiVersion"], obj["kind"])
            except PalessError:
                self._unchanged[key] = False
            else:
                namespace = obj["metadata"].get("namespace") if kind.namespaced else None
                self._unchanged[key] = holds(self.get(kind, obj["metadata"]["name"],
                                                      namespace), obj)
        return self._unchanged[key]


def holds(live: JsonDict | None, obj: Mapping[str, Any]) -> TypeGuard[JsonDict]:
    """The live object already holds everything an apply of `obj` would set, so the apply
    can be skipped (a Job never: it may have to be replaced)."""
    return (live is not None and obj.get("kind") != "Job"
            and apply_changes_nothing(live, obj, labels.FIELD_MANAGER))


def _applied(obj: Mapping[str, Any], action: ObjectAction, live: JsonDict, namespace: str | None,
             previous: JsonDict | None = None) -> Applied:
    meta = live.get("metadata") or {}
    gen = meta.get("generation")
    return Applied(kind=obj["kind"], name=obj["metadata"]["name"], namespace=namespace,
                   action=action, generation=int(gen) if gen is not None else None,
                   uid=meta.get("uid", ""), live=live, previous=previous, body=dict(obj))


def rollback_object(kube: Kube, applied: Applied) -> JsonDict:
    """Put the pod template this run replaced back (a Deployment/StatefulSet rollback).

    The whole rendered object is applied again with only its template swapped for the
    previous one: a partial apply would drop every other field our manager owns.
    """
    assert applied.previous is not None and applied.body is not None
    kind = kube.kind(applied.body["apiVersion"], applied.kind)
    body = copy.deepcopy(applied.body)
    template = copy.deepcopy(applied.previous["spec"]["template"])
    (template.get("metadata") or {}).pop("creationTimestamp", None)
    body["spec"]["template"] = template
    with cluster_errors(kube, f"rolling back {applied.ref}", applied.namespace):
        try:
            return _ssa(kube, kind, body, applied.namespace, force=True)
        except ApiError as exc:
            if exc.status in (400, 403, 409, 422):
                raise refused(body, exc, live=applied.live, applying=True,
                              doing=f"rolling back {applied.ref}") from None
            raise


def _initial_replicas(obj: Mapping[str, Any]) -> int | None:
    """`paless.io/initial-replicas` of an HPA-managed workload without spec.replicas."""
    if obj.get("kind") not in ("Deployment", "StatefulSet") or "replicas" in (
            obj.get("spec") or {}):
        return None
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(labels.INITIAL_REPLICAS)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise DeployFailed(f"{object_ref(obj)}: annotation {labels.INITIAL_REPLICAS}={value!r} "
                           "is not a number.",
                           "Set it to the replica count used at creation, e.g. \"3\".",
                           code="invalid-manifest") from None


def _hand_replicas_to_initial_manager(kube: Kube, kind: Kind, obj: JsonDict, replicas: int,
                                      namespace: str | None) -> JsonDict:
    """Make spec.replicas owned by a second manager only, so our re-applies never reset it.

    Our manager applied the full object with replicas at creation; the initial-replicas
    manager now co-owns replicas, then our manager re-applies without it: the value
    stays (still owned) and later applies of ours leave it to the HPA.
    """
    meta = {"name": obj["metadata"]["name"]}
    if namespace:
        meta["namespace"] = namespace
    _ssa(kube, kind, {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta,
                      "spec": {"replicas": replicas}}, namespace, force=True,
         manager=labels.INITIAL_REPLICAS_MANAGER)
    return _ssa(kube, kind, obj, namespace, force=False)


def _apply_job(kube: Kube, kind: Kind, obj: JsonDict, before: JsonDict, namespace: str | None,
               force: bool, dry_run: bool) -> Applied:
    """Jobs are immutable: leave a completed unchanged one, replace a changed or failed one."""
    changed = False
    try:
        _ssa(kube, kind, obj, namespace, force=force, dry_run=True)
    except ApiError as exc:
        if not _immutable(exc):
            raise
        changed = True
    if not changed and not _condition_true(before, "Failed"):
        if _condition_true(before, "Complete"):
            return _applied(obj, ObjectAction.UNCHANGED, before, namespace, before)
        live = _ssa(kube, kind, obj, namespace, force=force, dry_run=dry_run)
        unchanged = (same(before, live) if dry_run else
                     live["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"])
        action = ObjectAction.UNCHANGED if unchanged else ObjectAction.CONFIGURED
        return _applied(obj, action, live, namespace, before)
    if dry_run:
        return _applied(obj, ObjectAction.REPLACED, obj, namespace, before)
    _delete_and_wait(kube, kind, before, namespace)
    live = _ssa(kube, kind, obj, namespace, force=force)
    return _applied(obj, ObjectAction.REPLACED, live, namespace, before)


def wait_volume_available(kube: Kube, applied: Applied, timeout: float = 15.0) -> None:
    """Wait (watch) until a new PersistentVolume has a phase.

    A claim created before the PV controller has seen its pre-bound volume stays
    Pending until the controller's next resync (15 s by default); waiting for the
    volume's first status avoids that race.
    """
    if applied.kind != "PersistentVolume" or applied.action != ObjectAction.CREATED:
        return
    with cluster_errors(kube, f"waiting for {applied.ref}"):
        kube.watch_until(kube.kind("v1", "PersistentVolume"), applied.name, None,
                         lambda pv: pv is None or bool((pv.get("status") or {}).get("phase")),
                         timeout)


def _delete_and_wait(kube: Kube, kind: Kind, obj: Mapping[str, Any], namespace: str | None,
                     timeout: float = 60.0) -> None:
    """Delete (foreground: its pods first) and watch until the object is gone."""
    name = obj["metadata"]["name"]
    uid = obj["metadata"].get("uid")
    kube.delete(kind, name, namespace, propagation="Foreground")
    left = kube.watch_until(kind, name, namespace,
                            lambda o: o is None or o["metadata"].get("uid") != uid, timeout)
    if left is not None and left["metadata"].get("uid") == uid:
        raise DeployFailed(
            f"{object_ref(obj)} was not deleted within {timeout:.0f}s, so it cannot be replaced.",
            f"Look at its finalizers: kubectl get {obj['kind'].lower()} {name} -n {namespace} "
            "-o yaml", code="replace-timeout")


BIND_NUDGE_LABEL = "paless.io/bind-nudge"


def nudge_claim(kube: Kube, namespace: str, name: str) -> None:
    """Make the PV controller sync a claim again now (`core.readiness.claim_needs_nudge`):
    a label set, then removed, by a field manager of its own, so the claim is left as it
    was. A label, not an annotation: our labels map always exists, so the nudge owns only
    its key and no managedFields entry remains (the controller adds annotations while
    binding, and a map the nudge had created would stay owned by it). Best effort: the
    controller's own resync binds the claim anyway."""
    path = by_kind("PersistentVolumeClaim").path(namespace, name)
    for value in ("1", None):
        try:
            kube.request("PATCH", path, query={"fieldManager": "paless-deploy-bind"},
                         body={"metadata": {"labels": {BIND_NUDGE_LABEL: value}}},
                         content_type="application/merge-patch+json")
        except (ApiError, TransportError):
            return
