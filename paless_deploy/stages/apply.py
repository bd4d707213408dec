"""Apply stage: server-side apply of one phase's objects, with the tool's field manager.

Knows the three exceptions to a plain apply: HPA-managed Deployments get their
initial replica count only at creation, Jobs are immutable (a changed or failed Job
is replaced, a completed unchanged one left alone), and conflicts name their owner.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paless_deploy.adapters.kube import (
    Kube,
    RestResource,
    api_message,
    api_status,
    cluster_errors,
    rest_resource,
    with_retries,
)
from paless_deploy.core.errors import DeployFailed

FIELD_MANAGER = "paless-deploy"
INITIAL_REPLICAS_MANAGER = "paless-deploy-initial"
INITIAL_REPLICAS = "paless.io/initial-replicas"

CREATED, CONFIGURED, UNCHANGED, REPLACED, PRUNED = (
    "created", "configured", "unchanged", "replaced", "pruned")


@dataclass(frozen=True)
class Applied:
    """One object after its apply: what happened and what to wait for."""

    kind: str
    name: str
    namespace: str | None
    action: str
    generation: int | None
    uid: str
    live: dict  # the object as the API server returned it
    previous: dict | None = None  # the object before this apply (None when created)
    body: dict | None = None  # what we applied (the rendered object)

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


class ApplyConflict(DeployFailed):
    """Another field manager owns fields we apply."""

    code = "apply-conflict"


def object_ref(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def _get(resource: RestResource, name: str, namespace: str | None) -> dict | None:
    return with_retries(lambda: resource.get(name, namespace))


def _ssa(resource: RestResource, body: dict, namespace: str | None, *, force: bool,
         manager: str = FIELD_MANAGER, dry_run: bool = False) -> dict:
    return with_retries(lambda: resource.apply(body, namespace, manager=manager, force=force,
                                               dry_run=dry_run))


def _conflict(obj: Mapping[str, Any], exc: Exception) -> ApplyConflict:
    message = api_message(exc)
    managers = sorted(set(re.findall(r'conflict with "([^"]+)"', message)))
    who = ", ".join(managers) or "another field manager"
    return ApplyConflict(
        f"{object_ref(obj)}: fields we apply are owned by {who}: {message}",
        "Someone changed them with another tool (e.g. `kubectl edit`/`scale`). Re-run with "
        "--force-conflicts to take them over, or remove them from the manifests.",
    )


def _invalid(obj: Mapping[str, Any], exc: Exception) -> DeployFailed:
    return DeployFailed(
        f"The API server refused {object_ref(obj)}: {api_message(exc)}",
        "Fix the manifest (see `paless-deploy render`), then re-run.", code="invalid-object")


def _immutable(exc: Exception) -> bool:
    return api_status(exc) == 422 and "immutable" in api_message(exc)


def _condition_true(obj: Mapping[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def apply_object(kube: Kube, obj: dict, *, force_conflicts: bool = False) -> Applied:
    """Server-side apply one object and say whether it was created, changed or not."""
    kind = obj["kind"]
    name = obj["metadata"]["name"]
    with cluster_errors(kube, f"applying {kind}/{name}", obj["metadata"].get("namespace")):
        resource = rest_resource(kube, obj["apiVersion"], kind)
        namespace = obj["metadata"].get("namespace") if resource.namespaced else None
        before = _get(resource, name, namespace)
        try:
            if kind == "Job" and before is not None:
                return _apply_job(kube, resource, obj, before, namespace, force_conflicts)
            body = obj
            initial = _initial_replicas(obj) if before is None else None
            if initial is not None:
                body = copy.deepcopy(obj)
                body["spec"]["replicas"] = initial
            live = _ssa(resource, body, namespace, force=force_conflicts)
            if initial is not None:
                live = _hand_replicas_to_initial_manager(resource, obj, initial, namespace)
        except Exception as exc:
            if api_status(exc) == 409:
                raise _conflict(obj, exc) from None
            if api_status(exc) in (400, 422):
                raise _invalid(obj, exc) from None
            raise
    if before is None:
        action = CREATED
    elif before["metadata"].get("resourceVersion") == live["metadata"].get("resourceVersion"):
        action = UNCHANGED
    else:
        action = CONFIGURED
    return _applied(obj, action, live, namespace, before)


def _applied(obj: Mapping[str, Any], action: str, live: dict, namespace: str | None,
             previous: dict | None = None) -> Applied:
    meta = live.get("metadata") or {}
    gen = meta.get("generation")
    return Applied(kind=obj["kind"], name=obj["metadata"]["name"], namespace=namespace,
                   action=action, generation=int(gen) if gen is not None else None,
                   uid=meta.get("uid", ""), live=live, previous=previous, body=dict(obj))


def rollback_object(kube: Kube, applied: Applied) -> dict:
    """Put the pod template this run replaced back (a Deployment/StatefulSet rollback).

    The whole rendered object is applied again with only its template swapped for the
    previous one: a partial apply would drop every other field our manager owns.
    """
    assert applied.previous is not None and applied.body is not None
    resource = rest_resource(kube, applied.body["apiVersion"], applied.kind)
    body = copy.deepcopy(applied.body)
    template = copy.deepcopy(applied.previous["spec"]["template"])
    (template.get("metadata") or {}).pop("creationTimestamp", None)
    body["spec"]["template"] = template
    with cluster_errors(kube, f"rolling back {applied.ref}", applied.namespace):
        try:
            return _ssa(resource, body, applied.namespace, force=True)
        except Exception as exc:
            if api_status(exc) in (400, 409, 422):
                raise _invalid(body, exc) from None
            raise


def _initial_replicas(obj: Mapping[str, Any]) -> int | None:
    """`paless.io/initial-replicas` of an HPA-managed Deployment without spec.replicas."""
    if obj.get("kind") != "Deployment" or "replicas" in (obj.get("spec") or {}):
        return None
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(INITIAL_REPLICAS)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise DeployFailed(f"{object_ref(obj)}: annotation {INITIAL_REPLICAS}={value!r} is not a "
                           "number.", "Set it to the replica count used at creation, e.g. \"3\".",
                           code="invalid-object") from None


def _hand_replicas_to_initial_manager(resource: RestResource, obj: dict, replicas: int,
                                      namespace: str | None) -> dict:
    """Make spec.replicas owned by a second manager only, so our re-applies never reset it.

    Our manager applied the full object with replicas at creation; the initial-replicas
    manager now co-owns replicas, then our manager re-applies without it: the value
    stays (still owned) and later applies of ours leave it to the HPA.
    """
    meta = {"name": obj["metadata"]["name"]}
    if namespace:
        meta["namespace"] = namespace
    _ssa(resource, {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta,
                    "spec": {"replicas": replicas}}, namespace, force=True,
         manager=INITIAL_REPLICAS_MANAGER)
    return _ssa(resource, obj, namespace, force=False)


def _apply_job(kube: Kube, resource: RestResource, obj: dict, before: dict,
               namespace: str | None, force: bool) -> Applied:
    """Jobs are immutable: leave a completed unchanged one, replace a changed or failed one."""
    changed = False
    try:
        _ssa(resource, obj, namespace, force=force, dry_run=True)
    except Exception as exc:
        if not _immutable(exc):
            raise
        changed = True
    if not changed and not _condition_true(before, "Failed"):
        if _condition_true(before, "Complete"):
            return _applied(obj, UNCHANGED, before, namespace)
        live = _ssa(resource, obj, namespace, force=force)
        action = UNCHANGED if live["metadata"]["resourceVersion"] == before["metadata"][
            "resourceVersion"] else CONFIGURED
        return _applied(obj, action, live, namespace)
    _delete_and_wait(resource, before, namespace)
    live = _ssa(resource, obj, namespace, force=force)
    return _applied(obj, REPLACED, live, namespace)


def wait_volume_available(kube: Kube, applied: Applied, timeout: float = 15.0) -> None:
    """Wait (watch) until a new PersistentVolume has a phase.

    A claim created before the PV controller has seen its pre-bound volume stays
    Pending until the controller's next resync (15 s by default); waiting for the
    volume's first status avoids that race.
    """
    if applied.kind != "PersistentVolume" or applied.action != CREATED:
        return
    resource = rest_resource(kube, "v1", "PersistentVolume")
    deadline = time.monotonic() + timeout
    with cluster_errors(kube, f"waiting for {applied.ref}"):
        current = resource.get(applied.name)
        if current is None or (current.get("status") or {}).get("phase"):
            return
        for event in resource.watch(None, field_selector=f"metadata.name={applied.name}",
                                    resource_version=current["metadata"]["resourceVersion"],
                                    timeout_s=max(1, int(deadline - time.monotonic()))):
            phase = ((event.get("object") or {}).get("status") or {}).get("phase")
            if phase or time.monotonic() > deadline:
                return


def _delete_and_wait(resource: RestResource, obj: Mapping[str, Any], namespace: str | None,
                     timeout: float = 60.0) -> None:
    """Delete (foreground: its pods first) and watch until the object is gone."""
    name = obj["metadata"]["name"]
    uid = obj["metadata"].get("uid")
    resource.delete(name, namespace, propagation="Foreground")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = resource.get(name, namespace)
        if current is None or current["metadata"].get("uid") != uid:
            return
        for event in resource.watch(namespace, field_selector=f"metadata.name={name}",
                                    resource_version=current["metadata"]["resourceVersion"],
                                    timeout_s=max(1, int(deadline - time.monotonic()))):
            if event.get("type") == "DELETED":
                return
    raise DeployFailed(f"{object_ref(obj)} was not deleted within {timeout:.0f}s, so it cannot be "
                       "replaced.", f"Look at its finalizers: kubectl get {obj['kind'].lower()} "
                       f"{name} -n {namespace} -o yaml", code="replace-timeout")
