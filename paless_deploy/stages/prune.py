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
from typing import Any

from paless_deploy.core.report import ObjectReport

MANAGED_BY = "app.kubernetes.io/managed-by"
INSTANCE = "app.kubernetes.io/instance"
TOOL = "paless-deploy"

# (apiVersion, kind, namespaced) of everything the tool applies, in deletion order:
# front-ends and workloads before the config and storage they use.
PRUNABLE_KINDS: tuple[tuple[str, str, bool], ...] = (
    ("networking.k8s.io/v1", "Ingress", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler", True),
    ("policy/v1", "PodDisruptionBudget", True),
    ("apps/v1", "Deployment", True),
    ("apps/v1", "StatefulSet", True),
    ("batch/v1", "Job", True),
    ("v1", "Service", True),
    ("networking.k8s.io/v1", "NetworkPolicy", True),
    ("v1", "ConfigMap", True),
    ("v1", "Secret", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", True),
    ("rbac.authorization.k8s.io/v1", "Role", True),
    ("v1", "ServiceAccount", True),
    ("v1", "LimitRange", True),
    ("v1", "ResourceQuota", True),
    ("v1", "PersistentVolumeClaim", True),
    ("v1", "PersistentVolume", False),
)
DATA_KINDS = frozenset({"PersistentVolumeClaim", "PersistentVolume"})


def api_group(api_version: str) -> str:
    """The group of an apiVersion: "" for core `v1`, "apps" for `apps/v1`."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def object_key(api_version: str, kind: str, name: str) -> tuple[str, str, str]:
    """The key of a rendered object in `keep`: (group, kind, name)."""
    return (api_group(api_version), kind, name)


def instance_selector(namespace: str) -> str:
    """The label selector of everything the tool applied for one namespace."""
    return f"{MANAGED_BY}={TOOL},{INSTANCE}={namespace}"


@dataclass(frozen=True)
class PruneRef:
    """One live object that may be deleted."""

    api_version: str
    kind: str
    name: str
    namespace: str | None  # None for cluster-scoped (PersistentVolume)

    @property
    def key(self) -> tuple[str, str, str]:
        """(group, kind, name), comparable with the keys of rendered objects."""
        return object_key(self.api_version, self.kind, self.name)

    @property
    def holds_data(self) -> bool:
        """True for claims and volumes (kept unless data deletion is asked for)."""
        return self.kind in DATA_KINDS

    def describe(self) -> str:
        """`Kind/name` (with the namespace for namespaced objects)."""
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{self.kind}/{self.name}{where}"

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the JSON result."""
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name,
                "namespace": self.namespace}


def managed_objects(kube: Any, namespace: str) -> list[PruneRef]:
    """Every object of a prunable kind the tool applied for `namespace` (data included).

    Kinds the cluster does not serve are skipped; objects with ownerReferences are left
    to their owner.
    """
    from paless_deploy.adapters.kube import cluster_errors, with_retries
    from paless_deploy.core.errors import ClusterError

    selector = instance_selector(namespace)
    found: list[PruneRef] = []
    with cluster_errors(kube, "listing the objects paless-deploy manages", namespace):
        for api_version, kind, namespaced in PRUNABLE_KINDS:
            try:
                resource = kube.resource(api_version, kind)
            except ClusterError:
                continue
            scope = {"namespace": namespace} if namespaced else {}
            listing = with_retries(lambda r=resource, s=scope: r.get(  # type: ignore[misc]
                label_selector=selector, _request_timeout=(5, 30), **s))
            for item in listing.items:
                meta = item.metadata
                if meta.ownerReferences:
                    continue
                found.append(PruneRef(api_version, kind, meta.name,
                                      namespace if namespaced else None))
    return found


def find_prunable(kube: Any, namespace: str, keep: Iterable[tuple[str, str, str]], *,
                  include_data: bool = False) -> list[PruneRef]:
    """Managed objects of `namespace` whose (group, kind, name) is not in `keep`.

    Claims and volumes are returned only with `include_data`; call
    `managed_objects` and filter on `holds_data` to warn about orphaned data.
    """
    kept = set(keep)
    return [ref for ref in managed_objects(kube, namespace)
            if ref.key not in kept and (include_data or not ref.holds_data)]


def prune(kube: Any, refs: Iterable[PruneRef], dry_run: bool = False) -> list[ObjectReport]:
    """Delete each object (background propagation); with dry_run, a server-side dry run.

    An object already gone counts as pruned. Returns one ObjectReport per object with
    action "pruned" (reason "dry run" when nothing was deleted).
    """
    from kubernetes.client.exceptions import ApiException

    from paless_deploy.adapters.kube import cluster_errors, with_retries

    reports: list[ObjectReport] = []
    for ref in refs:
        resource = kube.resource(ref.api_version, ref.kind)
        # The API server reads DeleteOptions from the body when there is one and then
        # ignores query parameters: dryRun must travel in the body.
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions",
                                "propagationPolicy": "Background"}
        if dry_run:
            body["dryRun"] = ["All"]
        with cluster_errors(kube, f"deleting {ref.describe()}", ref.namespace):
            try:
                with_retries(lambda r=resource, b=body, n=ref.name, ns=ref.namespace: r.delete(  # type: ignore[misc]
                    name=n, namespace=ns, body=b, _request_timeout=(5, 30)))
            except ApiException as exc:
                if exc.status != 404:
                    raise
        reports.append(ObjectReport(kind=ref.kind, name=ref.name, action="pruned",
                                    reason="dry run" if dry_run else ""))
    return reports
