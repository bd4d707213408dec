"""Prune: delete objects this tool applied to a namespace that have left the manifests.

Only objects carrying both `app.kubernetes.io/managed-by=paless-deploy` and
`app.kubernetes.io/instance=<namespace>` (selected server-side) of the kinds the tool
deploys are candidates; anything unlabelled or labelled for another instance is never
touched.

Data policy: PersistentVolumeClaims and PersistentVolumes hold data, so they are not
pruned unless the caller passes `include_data=True` (destroy's `--delete-data`). Objects
owned by another object (ownerReferences, e.g. claims of a StatefulSet's
volumeClaimTemplates) are never pruned: their owner's deletion takes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import ApiError, cluster_errors, with_retries
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.manifests.kinds import PRUNABLE, Kind, api_group, kind_of
from paless_deploy.core.manifests.labels import instance_selector
from paless_deploy.core.reporting.report import ObjectAction, ObjectReport

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube


@dataclass(frozen=True)
class PruneRef:
    """One live object that may be deleted."""

    api_version: str
    kind: str
    name: str
    namespace: str | None  # None for cluster-scoped (PersistentVolume)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(group, kind, namespace, name), comparable with `tree_keys`."""
        return (api_group(self.api_version), self.kind, self.namespace or "", self.name)

    @property
    def holds_data(self) -> bool:
        """True for claims and volumes (kept unless data deletion is asked for)."""
        known = kind_of(self.api_version, self.kind)
        return bool(known and known.holds_data)

    def describe(self) -> str:
        """`Kind/name` (with the namespace for namespaced objects)."""
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{self.kind}/{self.name}{where}"


def managed_objects(kube: Kube, namespace: str) -> list[PruneRef]:
    """Every object of a prunable kind the tool applied for `namespace` (data included),
    wherever it lives: in the namespace, cluster-scoped, or in another namespace the tree
    named (a Role in kube-system). A user who may not list across namespaces gets the
    namespace's own objects and the cluster-scoped ones it may list.

    Kinds the cluster does not serve are skipped; objects with ownerReferences are left
    to their owner.
    """
    selector = instance_selector(namespace)
    found: list[PruneRef] = []
    with cluster_errors(kube, "listing the objects paless-deploy manages", namespace):
        for kind in PRUNABLE:
            items = _labelled(kube, kind, namespace, selector)
            for item in items:
                meta = item.get("metadata") or {}
                if meta.get("ownerReferences"):
                    continue
                found.append(PruneRef(kind.api_version, kind.kind, meta["name"],
                                      str(meta.get("namespace") or namespace)
                                      if kind.namespaced else None))
    return found


def _labelled(kube: Kube, kind: Kind, namespace: str, selector: str) -> list[JsonDict]:
    """The objects of `kind` carrying `selector`: across namespaces (or cluster-wide) when
    we may list them so, else in `namespace`. None when the cluster does not serve the
    kind, or we may not list a cluster-scoped kind (we could not have written it either)."""
    try:
        return with_retries(partial(kube.list, kind, None, labelSelector=selector))[0]
    except ApiError as exc:
        if exc.status == 404:
            return []
        if exc.status != 403:
            raise
    if not kind.namespaced:
        return []
    try:
        return with_retries(partial(kube.list, kind, namespace, labelSelector=selector))[0]
    except ApiError as exc:
        if exc.status == 404:
            return []
        raise


def tree_keys(objects: Iterable[JsonDict]) -> set[tuple[str, str, str, str]]:
    """The keys of the rendered objects (what prune keeps), and of every Namespace one of
    them lives in: a Namespace of the tree is never pruned while it holds any of them."""
    keys = set()
    for obj in objects:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        keys.add((api_group(str(obj.get("apiVersion") or "")), str(obj.get("kind") or ""),
                  namespace, str(meta.get("name") or "")))
        if namespace:
            keys.add(("", "Namespace", "", namespace))
    return keys


def find_prunable(kube: Kube, namespace: str, keep: Iterable[tuple[str, str, str, str]], *,
                  include_data: bool = False) -> list[PruneRef]:
    """Managed objects of `namespace` whose (group, kind, namespace, name) is not in
    `keep` (`tree_keys`).

    Claims and volumes are returned only with `include_data`; call
    `managed_objects` and filter on `holds_data` to warn about orphaned data.
    """
    kept = set(keep)
    return [ref for ref in managed_objects(kube, namespace)
            if ref.key not in kept and (include_data or not ref.holds_data)]


def prune(kube: Kube, refs: Iterable[PruneRef], dry_run: bool = False) -> list[ObjectReport]:
    """Delete each object (background propagation); with dry_run, a server-side dry run.

    An object already gone counts as pruned. Returns one ObjectReport per object with
    action "pruned" (reason "dry run" when nothing was deleted).
    """
    reports: list[ObjectReport] = []
    for ref in refs:
        with cluster_errors(kube, f"deleting {ref.describe()}", ref.namespace):
            kind = kube.kind(ref.api_version, ref.kind)
            with_retries(partial(kube.delete, kind, ref.name, ref.namespace, dry_run=dry_run))
        reports.append(ObjectReport(kind=ref.kind, name=ref.name, action=ObjectAction.PRUNED,
                                    reason="dry run" if dry_run else "",
                                    api_version=ref.api_version,
                                    namespace=ref.namespace or ""))
    return reports
