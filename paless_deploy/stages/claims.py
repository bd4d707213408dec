"""The data a deploy left in a namespace: claims (those a StatefulSet made included) and
the volumes bound to them, for `destroy` to list as kept or deleted.

A StatefulSet's claims carry its template's labels, not this tool's: they are found by
name (`core.manifests.ownership.statefulset_claims`). A claim destroy keeps is labelled
for the instance, so that the next destroy still finds it once its StatefulSet is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import ApiError, cluster_errors, with_retries
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.errors import ClusterError
from paless_deploy.core.manifests.kinds import by_kind
from paless_deploy.core.manifests.labels import INSTANCE, MANAGED_BY, TOOL, instance_selector
from paless_deploy.core.manifests.ownership import bound_claim, owned_by, statefulset_claims
from paless_deploy.stages.prune import PruneRef

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube

CLAIM = by_kind("PersistentVolumeClaim")
VOLUME = by_kind("PersistentVolume")
STATEFULSET = by_kind("StatefulSet")


@dataclass(frozen=True)
class MadeClaim:
    """A claim a StatefulSet's volumeClaimTemplates made."""

    ref: PruneRef
    statefulset: str
    goes_with_it: bool  # an ownerReference to it (persistentVolumeClaimRetentionPolicy Delete)


def claim_ref(name: str, namespace: str) -> PruneRef:
    return PruneRef("v1", "PersistentVolumeClaim", name, namespace)


def claims_in(kube: Kube, namespace: str) -> list[JsonDict]:
    """Every claim of the namespace."""
    with cluster_errors(kube, "listing PersistentVolumeClaims", namespace):
        return with_retries(partial(kube.list, CLAIM, namespace))[0]


def made_claims(kube: Kube, namespace: str, statefulsets: Iterable[str] | None = None
                ) -> list[MadeClaim]:
    """The claims the StatefulSets this tool applied to `namespace` made (only those named
    in `statefulsets`, when given)."""
    wanted = None if statefulsets is None else set(statefulsets)
    with cluster_errors(kube, "listing StatefulSets", namespace):
        found, _ = with_retries(partial(kube.list, STATEFULSET, namespace,
                                        labelSelector=instance_selector(namespace)))
    found = [s for s in found if wanted is None or s["metadata"]["name"] in wanted]
    if not found:
        return []
    claims = claims_in(kube, namespace)
    made: list[MadeClaim] = []
    for sts in found:
        name = sts["metadata"]["name"]
        made += [MadeClaim(claim_ref(c["metadata"]["name"], namespace), name,
                           owned_by(c, "StatefulSet", name))
                 for c in statefulset_claims(sts, claims)]
    return made


def bound_volumes(kube: Kube, namespace: str, claims: set[str],
                  warn: Callable[[str], None]) -> list[JsonDict]:
    """The PersistentVolumes bound to these claims of `namespace` (a user who may not list
    volumes is told what stays, and gets none)."""
    if not claims:
        return []
    try:
        with cluster_errors(kube, "listing PersistentVolumes"):
            volumes, _ = with_retries(partial(kube.list, VOLUME))
    except ClusterError as exc:  # a restricted user: the claims are still listed
        if exc.code != "forbidden":
            raise
        warn("Not allowed to list PersistentVolumes: the volumes of the claims are left as "
             "their reclaimPolicy says (`kubectl get pv` as an admin shows them).")
        return []
    return [pv for pv in volumes if (bound_claim(pv) or ("", ""))[0] == namespace
            and (bound_claim(pv) or ("", ""))[1] in claims]


def label_kept(kube: Kube, namespace: str, refs: Iterable[PruneRef]) -> None:
    """Label kept claims for the instance (a merge patch of two labels), so that the next
    destroy finds them after their StatefulSet is gone; best effort."""
    labels = {MANAGED_BY: TOOL, INSTANCE: namespace}
    for ref in refs:
        if ref.kind != "PersistentVolumeClaim":
            continue
        try:
            with_retries(partial(kube.request, "PATCH", CLAIM.path(namespace, ref.name),
                                 body={"metadata": {"labels": labels}},
                                 content_type="application/merge-patch+json"))
        except ApiError:
            continue  # gone meanwhile, or not ours to label: it is listed as kept anyway
