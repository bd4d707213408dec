"""Whose is a live object: ours for this namespace, ours for another one, or someone else's.

Pure rules over the API's JSON, shared by preflight (never take over another namespace's
cluster-scoped objects) and destroy (never delete another namespace's volumes).
"""

from __future__ import annotations

from dataclasses import dataclass

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.manifests import labels


@dataclass(frozen=True)
class Owner:
    """The verdict on one live cluster-scoped object for a deploy into a namespace."""

    refusal: str = ""  # why it must not be touched from this namespace ("" when it may)
    foreign: bool = False  # exists, made by someone else: leave it as it is


def instance_of(obj: ApiObject) -> str | None:
    """The namespace this tool applied the object for, None when it did not."""
    meta_labels = (obj.get("metadata") or {}).get("labels") or {}
    if meta_labels.get(labels.MANAGED_BY) != labels.TOOL:
        return None
    return str(meta_labels.get(labels.INSTANCE) or "") or None


def bound_claim(volume: ApiObject) -> tuple[str, str] | None:
    """(namespace, name) of the claim a PersistentVolume is bound or reserved for."""
    ref = (volume.get("spec") or {}).get("claimRef") or {}
    if ref.get("namespace") and ref.get("name"):
        return str(ref["namespace"]), str(ref["name"])
    return None


def cluster_object_owner(live: ApiObject | None, namespace: str) -> Owner:
    """May a deploy into `namespace` apply this cluster-scoped object (its live state)?"""
    if live is None:
        return Owner()
    owner = instance_of(live)
    claim = bound_claim(live) if live.get("kind") == "PersistentVolume" else None
    if owner is not None and owner != namespace:
        where = f"; bound to claim {claim[0]}/{claim[1]}" if claim else ""
        return Owner(refusal=f"belongs to namespace {owner} (labelled "
                             f"{labels.INSTANCE}={owner}{where})")
    if claim is not None and claim[0] != namespace:
        return Owner(refusal=f"is bound to claim {claim[0]}/{claim[1]} of namespace "
                             f"{claim[0]}")
    if owner is None:
        return Owner(foreign=True)
    return Owner()


def volume_deletable(volume: ApiObject, namespace: str) -> bool:
    """destroy of `namespace` deletes a PersistentVolume only when it is bound to a claim
    of that namespace, or unbound and labelled by this tool for it."""
    claim = bound_claim(volume)
    if claim is not None:
        return claim[0] == namespace
    return instance_of(volume) == namespace
