"""The production rule for volumes: data must outlive its claim.

A PersistentVolume whose reclaim policy is `Delete` is deleted (with its data) when its
claim is; dynamically provisioned volumes take the policy of their StorageClass (k3s's
`local-path` is `Delete`). A prod deploy whose claims would bind through such a class, or
to such volumes, is refused before anything is applied, unless the user accepts it with
--allow-reclaim-delete or PALESS_ALLOW_RECLAIM_DELETE=true.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.manifests.objects import name_of, ref_of, whole_number

DELETE = "Delete"
PROD_OVERLAY = "prod"
ALLOW_FLAG = "--allow-reclaim-delete"
ALLOW_VARIABLE = "PALESS_ALLOW_RECLAIM_DELETE"
DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")


@dataclass(frozen=True)
class StorageFacts:
    """What the rule reads from the cluster: StorageClasses, PersistentVolumes and the
    namespace's claims, as the API server has them (lists may be empty when unreadable)."""

    classes: Sequence[ApiObject] = ()
    volumes: Sequence[ApiObject] = ()
    claims: Sequence[ApiObject] = ()


@dataclass(frozen=True)
class Doomed:
    """One claim whose data would go with it: the claim, through what, and the fix's target."""

    claim: str  # "PersistentVolumeClaim/x" or "StatefulSet/postgres claim postgres-data"
    through: str  # "StorageClass local-path" or "PersistentVolume pv-1"
    storage_class: str | None = None
    volume: str | None = None


def _default_class(classes: Sequence[ApiObject]) -> str | None:
    for sc in classes:
        annotations = (sc.get("metadata") or {}).get("annotations") or {}
        if any(str(annotations.get(a)).lower() == "true" for a in DEFAULT_CLASS_ANNOTATIONS):
            return name_of(sc)
    return None


def _claims_of(objects: Sequence[ApiObject]) -> list[tuple[str, list[str], ApiObject]]:
    """(description, live claim names it may have, claim spec) of every rendered claim,
    StatefulSet templates included (their claims are `<template>-<set>-<ordinal>`)."""
    found: list[tuple[str, list[str], ApiObject]] = []
    for obj in objects:
        if obj.get("kind") == "PersistentVolumeClaim":
            found.append((ref_of(obj), [name_of(obj)], obj.get("spec") or {}))
        if obj.get("kind") == "StatefulSet":
            spec = obj.get("spec") or {}
            replicas = whole_number(spec.get("replicas"), 1)
            for template in spec.get("volumeClaimTemplates") or []:
                claim = name_of(template)
                live = [f"{claim}-{name_of(obj)}-{i}" for i in range(max(1, replicas))]
                found.append((f"{ref_of(obj)} claim {claim}", live, template.get("spec") or {}))
    return found


def doomed_claims(objects: Sequence[ApiObject], facts: StorageFacts) -> list[Doomed]:
    """The rendered claims whose volume would be deleted with them: bound (or pre-bound) to
    a PersistentVolume with reclaim policy Delete, else provisioned through a StorageClass
    whose reclaimPolicy is Delete (its default). A class or volume the cluster does not
    have is another check's business."""
    classes = {name_of(sc): sc for sc in facts.classes}
    volumes: dict[str, ApiObject] = {name_of(pv): pv for pv in facts.volumes}
    volumes.update({name_of(o): o for o in objects if o.get("kind") == "PersistentVolume"})
    live = {name_of(c): c for c in facts.claims}
    default = _default_class(facts.classes)
    doomed: list[Doomed] = []
    for what, names, spec in _claims_of(objects):
        bound = [str((live[n].get("spec") or {}).get("volumeName") or "") for n in names
                 if n in live]
        volume_names = [v for v in [str(spec.get("volumeName") or ""), *bound] if v]
        if volume_names:
            for volume in dict.fromkeys(volume_names):
                pv = volumes.get(volume)
                policy = ((pv or {}).get("spec") or {}).get("persistentVolumeReclaimPolicy")
                if policy == DELETE:
                    doomed.append(Doomed(what, f"PersistentVolume {volume}", volume=volume))
            continue
        class_name = spec.get("storageClassName")
        if class_name == "":
            continue  # static volumes only: bound later, judged then
        name = str(class_name) if class_name is not None else default
        sc = classes.get(name or "")
        if sc is not None and (sc.get("reclaimPolicy") or DELETE) == DELETE:
            doomed.append(Doomed(what, f"StorageClass {name}", storage_class=name))
    return doomed


def allowed(flag: bool, variable: str | None) -> bool:
    """Accepted explicitly: the flag, or PALESS_ALLOW_RECLAIM_DELETE=true (1, yes)."""
    return flag or (variable or "").strip().lower() in ("1", "true", "yes")


def refusal(doomed: Sequence[Doomed], overlay: str) -> ConfigError:
    """Exit 2 before anything is applied: which claims, through which class or volume, the
    fix, and how to accept it."""
    lines = "; ".join(f"{d.claim} binds through {d.through} (reclaim policy Delete)"
                      for d in doomed[:6])
    more = f"; and {len(doomed) - 6} more" if len(doomed) > 6 else ""
    classes = sorted({d.storage_class for d in doomed if d.storage_class})
    volumes = sorted({d.volume for d in doomed if d.volume})
    fixes = []
    if classes:
        fixes.append(f"use a StorageClass with reclaimPolicy Retain (a copy of "
                     f"{', '.join(classes)} with `reclaimPolicy: Retain`, named in "
                     "STORAGE_CLASS or the claims' storageClassName)")
    if volumes:
        fixes.append("keep the bound volumes (`kubectl patch pv "
                     f"{volumes[0]} -p '{{\"spec\":{{\"persistentVolumeReclaimPolicy\":"
                     "\"Retain\"}}'`" + (f", and {len(volumes) - 1} more" if len(volumes) > 1
                                          else "") + ")")
    return ConfigError(
        f"The {overlay} overlay refuses volumes that are deleted with their claims (their "
        f"data would go when a claim or namespace is deleted): {lines}{more}. Nothing was "
        "applied.",
        "Make the data outlive its claims: " + "; or ".join(fixes) + f". To accept it "
        f"knowingly, pass {ALLOW_FLAG} or set {ALLOW_VARIABLE}=true.",
        code="reclaim-delete", resource=doomed[0].claim if doomed else "")


def volumes_by_class(facts: StorageFacts) -> Mapping[str, str]:
    """StorageClass name -> its reclaim policy (for doctor's table)."""
    return {name_of(sc): str(sc.get("reclaimPolicy") or DELETE) for sc in facts.classes}
