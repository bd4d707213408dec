"""Whose is a live object: ours for this namespace, ours for another one, or someone else's.

Pure rules over the API's JSON, shared by preflight (never take over another namespace's
cluster-scoped objects) and destroy (never delete another namespace's volumes; the claims
a StatefulSet made).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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


def statefulset_claims(statefulset: ApiObject, claims: Iterable[ApiObject]) -> list[ApiObject]:
    """The claims a StatefulSet's volumeClaimTemplates made (`<template>-<name>-<ordinal>`,
    the StatefulSet controller's names): they carry the template's labels, not this tool's,
    so they are found by name."""
    name = str((statefulset.get("metadata") or {}).get("name") or "")
    templates = [str((t.get("metadata") or {}).get("name") or "")
                 for t in (statefulset.get("spec") or {}).get("volumeClaimTemplates") or []]
    templates = [t for t in templates if t]
    if not name or not templates:
        return []
    made = re.compile(rf"^(?:{'|'.join(map(re.escape, templates))})-{re.escape(name)}-\d+$")
    return [c for c in claims if made.match(str((c.get("metadata") or {}).get("name") or ""))]


def owned_by(obj: ApiObject, kind: str, name: str) -> bool:
    """`obj` has an ownerReference to `kind/name` (it is deleted with its owner)."""
    return any(ref.get("kind") == kind and ref.get("name") == name
               for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])
