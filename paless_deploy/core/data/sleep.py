"""Sleeping previews: which idle branch namespaces `gc --sleep-after` scales to zero, what
it writes on them so that `wake` (or the next `all`) brings them back as they were.

Asleep, a namespace keeps every object and all its data; its Deployments and StatefulSets
run no pod. The namespace carries the label `paless.io/sleeping=true` and annotations
saying since when and why; each workload carries its replica count before the sleep.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from paless_deploy.core.apitypes import ApiObject, JsonDict
from paless_deploy.core.configuration.durations import span
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.components import component_of
from paless_deploy.core.manifests.namespaces import parse_rfc3339, rfc3339
from paless_deploy.core.manifests.objects import name_of, whole_number

SLEEP_KINDS = ("Deployment", "StatefulSet")


@dataclass(frozen=True)
class SleepDecision:
    """Whether gc puts one namespace to sleep, and why (for the report)."""

    sleep: bool
    reason: str


def is_asleep(namespace: ApiObject) -> bool:
    """The namespace carries `paless.io/sleeping=true`."""
    found = ((namespace.get("metadata") or {}).get("labels") or {}).get(labels.SLEEPING)
    return str(found).lower() == "true"


def sleep_decision(namespace: ApiObject, sleep_after_s: float, now: dt.datetime) -> SleepDecision:
    """Idle (since its last deploy, else its creation) longer than `sleep_after_s`, not kept,
    not asleep already, not being deleted."""
    meta = namespace.get("metadata") or {}
    if str((meta.get("labels") or {}).get(labels.KEEP, "")).lower() == "true":
        return SleepDecision(False, f"labelled {labels.KEEP}=true")
    if is_asleep(namespace):
        since = (meta.get("annotations") or {}).get(labels.SLEEPING_SINCE, "?")
        return SleepDecision(False, f"asleep since {since}")
    if (namespace.get("status") or {}).get("phase") == "Terminating":
        return SleepDecision(False, "being deleted")
    annotations = meta.get("annotations") or {}
    deployed = parse_rfc3339(annotations.get(labels.DEPLOYED_AT))
    last = deployed or parse_rfc3339(annotations.get(labels.CREATED_AT)) or parse_rfc3339(
        meta.get("creationTimestamp"))
    if last is None:
        return SleepDecision(False, "no creation time")
    idle = (now - last).total_seconds()
    since = f"last deployed {span(idle)} ago" if deployed else f"created {span(idle)} ago"
    if idle > sleep_after_s:
        return SleepDecision(True, f"idle: {since}, longer than {span(sleep_after_s)}")
    return SleepDecision(False, f"in use: {since}")


def replicas_of(workload: ApiObject) -> int:
    """spec.replicas (1 when absent, as the API server defaults it)."""
    return whole_number((workload.get("spec") or {}).get("replicas"), 1)


def sleep_patch(workload: ApiObject, reason: str, now: dt.datetime) -> JsonDict:
    """The merge patch that puts one workload to sleep: replicas 0, and what it had."""
    return {"metadata": {"annotations": {labels.SLEEP_REPLICAS: str(replicas_of(workload)),
                                         labels.SLEEPING_SINCE: rfc3339(now),
                                         labels.SLEEP_REASON: reason}},
            "spec": {"replicas": 0}}


def wake_patch(workload: ApiObject) -> JsonDict | None:
    """The merge patch that wakes one workload (its replicas before the sleep), None when it
    was not put to sleep by gc."""
    annotations = (workload.get("metadata") or {}).get("annotations") or {}
    recorded = annotations.get(labels.SLEEP_REPLICAS)
    if recorded is None:
        return None
    replicas = whole_number(recorded, 1)
    return {"metadata": {"annotations": {labels.SLEEP_REPLICAS: None,
                                         labels.SLEEPING_SINCE: None,
                                         labels.SLEEP_REASON: None}},
            "spec": {"replicas": replicas}}


def namespace_sleep_patch(reason: str, now: dt.datetime) -> JsonDict:
    return {"metadata": {"labels": {labels.SLEEPING: "true"},
                         "annotations": {labels.SLEEPING_SINCE: rfc3339(now),
                                         labels.SLEEP_REASON: reason}}}


def namespace_wake_patch() -> JsonDict:
    return {"metadata": {"labels": {labels.SLEEPING: None},
                         "annotations": {labels.SLEEPING_SINCE: None,
                                         labels.SLEEP_REASON: None}}}


def to_sleep(workloads: Sequence[ApiObject]) -> list[ApiObject]:
    """The workloads that run pods now (replicas above zero)."""
    return [w for w in workloads if w.get("kind") in SLEEP_KINDS and replicas_of(w) > 0]


# what a restore writes into: these keep running while everything else is stopped
DATA_COMPONENTS = frozenset({"postgres", "minio", "redis"})


def to_stop_for_restore(workloads: Sequence[ApiObject]) -> list[ApiObject]:
    """The running workloads a restore stops: all but the data services it restores into
    (the apps, and anything else that might write or read half-restored data)."""
    return [w for w in to_sleep(workloads)
            if (component_of(w) or ("", ""))[0] not in DATA_COMPONENTS]


def without_manager(managed_fields: Sequence[Mapping[str, object]], manager: str
                    ) -> list[Mapping[str, object]]:
    """managedFields without the entries of `manager`: after a wake, the sleep's manager
    gives up spec.replicas, so the next apply of the manifests owns it without a conflict."""
    return [entry for entry in managed_fields if entry.get("manager") != manager]


def describe(workload: ApiObject) -> str:
    return f"{workload.get('kind')}/{name_of(workload)}"
