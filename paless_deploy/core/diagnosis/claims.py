"""Rules for volume claims: a PVC that stays Pending (no volume matches, provisioning failed).

Pending under a WaitForFirstConsumer StorageClass is normal until a pod uses the claim.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.diagnosis import eventlog
from paless_deploy.core.diagnosis.findings import Finding, Policy
from paless_deploy.core.diagnosis.kubectl import PVS_CMD, describe_cmd
from paless_deploy.core.manifests.objects import name_of, namespace_of, nested


def diagnose_pvc(pvc: ApiObject, events: Iterable[ApiObject],
                 storage_class: ApiObject | None = None,
                 policy: Policy | None = None, now: datetime | None = None) -> list[Finding]:
    """A claim that is Pending: ProvisioningFailed, or no PV matching (FailedBinding).

    `storage_class` is the claim's class (or the default class when it names none);
    Pending under WaitForFirstConsumer is normal until a pod uses the claim.
    """
    policy = policy or Policy()
    if nested(pvc, "status", "phase") != "Pending" or nested(pvc, "metadata", "deletionTimestamp"):
        return []
    if storage_class and storage_class.get("volumeBindingMode") == "WaitForFirstConsumer":
        return []
    mine = eventlog.about(pvc, events)
    ns, name = namespace_of(pvc), name_of(pvc)
    spec = pvc.get("spec") or {}
    class_name = spec.get("storageClassName")
    size = nested(spec, "resources", "requests", "storage") or "?"
    modes = ",".join(spec.get("accessModes") or [])
    commands = (describe_cmd(ns, "pvc", name), PVS_CMD, "kubectl get storageclass")
    provisioning = eventlog.with_reason(mine, "ProvisioningFailed")
    if provisioning:
        text = eventlog.message(provisioning[-1])
        if "not found" in text and "storageclass" in text.lower():
            hint = (f"Create the StorageClass {class_name}, or, for statically provisioned "
                    f"volumes, create a PersistentVolume of class {class_name} ({size}, {modes}) "
                    "in the storage phase; STORAGE_CLASS selects the class.")
        else:
            hint = ("The provisioner failed: check its logs and that the class's parameters "
                    "are valid on this cluster.")
        return [policy.decide(Finding(
            code="provisioning-failed", resource=f"PersistentVolumeClaim/{name}",
            reason="ProvisioningFailed",
            message=f"No volume can be provisioned for claim {name}: {text}.".replace("..", "."),
            hint=hint, commands=commands, evidence=eventlog.unique_messages(provisioning)),
            policy.past_grace(eventlog.first_seen(provisioning[0]), now))]
    binding = eventlog.with_reason(mine, "FailedBinding")
    volume = spec.get("volumeName")
    created = nested(pvc, "metadata", "creationTimestamp")
    if not binding and not policy.past_grace(created, now):
        return []
    if volume:
        hint = f"The claim asks for the PersistentVolume {volume}: create it (storage phase)."
    elif class_name in (None, "") and not storage_class:
        hint = (f"Nothing can bind it: no PV matches ({size}, {modes}, no class) and no default "
                "StorageClass exists. Create a matching PersistentVolume or set a StorageClass "
                "(STORAGE_CLASS).")
    else:
        hint = (f"Create a PersistentVolume of class {class_name!s} with at least {size} and "
                f"access mode {modes}, or use a class that provisions volumes.")
    return [policy.decide(Finding(
        code="pvc-pending", resource=f"PersistentVolumeClaim/{name}",
        reason="FailedBinding" if binding else "Pending",
        message=f"Claim {name} ({size}, {modes or 'no access mode'}) is not bound to a volume.",
        hint=hint, commands=commands,
        evidence=eventlog.unique_messages(binding) or ("phase Pending",)), False)]
