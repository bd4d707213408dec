"""Put a preview to sleep (every Deployment and StatefulSet scaled to zero, its data kept)
and wake it (each back to its replicas before the sleep).

The scaling is a merge patch by its own field manager (paless-deploy-sleep), recorded on
each workload and on the namespace; waking gives up that manager's ownership of
spec.replicas, so the next apply of the manifests owns it again without a conflict.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import ApiError, cluster_errors, with_retries
from paless_deploy.core.apitypes import ApiObject, JsonDict
from paless_deploy.core.data import sleep
from paless_deploy.core.diagnosis.readiness import readiness
from paless_deploy.core.errors import DeployFailed, LockHeld
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.kinds import Kind, by_kind
from paless_deploy.core.manifests.objects import name_of
from paless_deploy.stages.lock import NamespaceLock, lock_holder

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube

NAMESPACE = by_kind("Namespace")
POD = by_kind("Pod")
RELEASE_TRIES = 5


def _workloads(kube: Kube, namespace: str) -> list[JsonDict]:
    with cluster_errors(kube, f"listing the workloads of {namespace}", namespace):
        return [w for kind in sleep.SLEEP_KINDS
                for w in with_retries(partial(kube.list, by_kind(kind), namespace))[0]]


def put_to_sleep(kube: Kube, namespace: str, reason: str, now: dt.datetime,
                 select: Callable[[Sequence[ApiObject]], list[ApiObject]] = sleep.to_sleep
                 ) -> list[str]:
    """Scale the namespace's running workloads (those `select` picks) to zero and mark the
    namespace asleep, so that `wake` or the next deploy brings them back; the ones scaled."""
    scaled = []
    with cluster_errors(kube, f"putting {namespace} to sleep", namespace):
        with_retries(partial(kube.patch, NAMESPACE, namespace, None,
                             sleep.namespace_sleep_patch(reason, now),
                             manager=labels.SLEEP_MANAGER))
        for workload in select(_workloads(kube, namespace)):
            kind = by_kind(str(workload["kind"]))
            with_retries(partial(kube.patch, kind, name_of(workload), namespace,
                                 sleep.sleep_patch(workload, reason, now),
                                 manager=labels.SLEEP_MANAGER))
            scaled.append(sleep.describe(workload))
    return scaled


@dataclass(frozen=True)
class Woken:
    """One workload brought back, and its replicas."""

    ref: str  # "Deployment/web"
    replicas: int

    def __str__(self) -> str:
        return f"{self.ref} ({self.replicas})"

    def to_json(self) -> dict[str, object]:
        """As the reports of `wake` and of a deploy that woke the namespace say it."""
        return {"workload": self.ref, "replicas": self.replicas}


def wake(kube: Kube, namespace: str, say: Callable[[str], None] = lambda text: None
         ) -> list[Woken]:
    """Bring back every workload put to sleep (to its replicas before), then clear the
    namespace's mark; the ones woken. Nothing to do for a namespace that does not sleep."""
    woken: list[Woken] = []
    with cluster_errors(kube, f"waking {namespace}", namespace):
        for workload in _workloads(kube, namespace):
            patch = sleep.wake_patch(workload)
            if patch is None:
                continue
            kind = by_kind(str(workload["kind"]))
            live = with_retries(partial(kube.patch, kind, name_of(workload), namespace, patch,
                                        manager=labels.SLEEP_MANAGER))
            _release(kube, kind, live, namespace)
            woken.append(Woken(sleep.describe(workload), int(patch["spec"]["replicas"])))
        ns = with_retries(partial(kube.read, NAMESPACE, namespace))
        if ns is not None and (sleep.is_asleep(ns) or woken):
            with_retries(partial(kube.patch, NAMESPACE, namespace, None,
                                 sleep.namespace_wake_patch(), manager=labels.SLEEP_MANAGER))
    if woken:
        say(f"woke {namespace}: {', '.join(map(str, woken))}")
    return woken


def _release(kube: Kube, kind: Kind, live: JsonDict, namespace: str) -> None:
    """Drop the sleep manager's managedFields entries, guarded by the resourceVersion read
    (the controllers write the status meanwhile: read again and retry a few times; a
    change that keeps racing only costs a conflict the next apply names)."""
    for _ in range(RELEASE_TRIES):
        meta = live.get("metadata") or {}
        fields = meta.get("managedFields") or []
        kept = sleep.without_manager(fields, labels.SLEEP_MANAGER)
        if len(kept) == len(fields) or not kept:
            return
        ops = [{"op": "test", "path": "/metadata/resourceVersion",
                "value": meta["resourceVersion"]},
               {"op": "replace", "path": "/metadata/managedFields", "value": kept}]
        try:
            kube.patch(kind, name_of(live), namespace, ops, manager=labels.SLEEP_MANAGER,
                       json_patch=True)
            return
        except ApiError as exc:
            if exc.status not in (409, 422):
                raise
        found = with_retries(partial(kube.read, kind, name_of(live), namespace))
        if found is None:
            return
        live = found


def wait_stopped(kube: Kube, namespace: str, refs: Sequence[str], timeout_s: float
                 ) -> list[str]:
    """Watch the pods of the workloads `refs` (scaled to zero) until they are gone; the
    pods still there when `timeout_s` ran out."""
    deadline = time.monotonic() + timeout_s
    left: list[str] = []
    with cluster_errors(kube, f"waiting for the pods of {namespace} to stop", namespace):
        for ref in refs:
            kind, _, name = ref.partition("/")
            workload = with_retries(partial(kube.read, by_kind(kind), name, namespace))
            match = ((workload or {}).get("spec") or {}).get("selector") or {}
            selector = ",".join(f"{k}={v}" for k, v in (match.get("matchLabels") or {}).items())
            if not selector:
                continue
            pods = with_retries(partial(kube.list, POD, namespace, labelSelector=selector))[0]
            for pod in pods:
                gone = kube.watch_until(POD, name_of(pod), namespace, lambda p: p is None,
                                        max(0.1, deadline - time.monotonic()))
                if gone is not None:
                    left.append(f"Pod/{name_of(pod)}")
    return left


def wait_ready(kube: Kube, namespace: str, ref: str, timeout_s: float) -> None:
    """Watch one workload (`Kind/name`) until it is ready; DeployFailed at the deadline."""
    kind_name, _, name = ref.partition("/")
    kind = by_kind(kind_name)
    with cluster_errors(kube, f"waiting for {ref}", namespace):
        live = kube.watch_until(kind, name, namespace,
                                lambda obj: obj is None or readiness(obj).ready, timeout_s)
    if live is not None and not readiness(live).ready:
        raise DeployFailed(f"{ref} in {namespace} was not ready {timeout_s:.0f}s after it was "
                           f"woken: {readiness(live).reason}.",
                           f"See why: `paless-deploy -n {namespace} status`.",
                           code="wake-timeout", resource=ref)


def namespace_asleep(kube: Kube, namespace: str) -> bool:
    with cluster_errors(kube, f"reading namespace {namespace}", namespace):
        ns = with_retries(partial(kube.read, NAMESPACE, namespace))
    return ns is not None and sleep.is_asleep(ns)


def sleep_if_idle(kube: Kube, namespace: JsonDict, sleep_after_s: float, now: dt.datetime,
                  dry_run: bool, say: Callable[[str], None]) -> tuple[bool, str]:
    """gc --sleep-after for one managed namespace: (put to sleep, why), under its lock taken
    without waiting (a deploy holding it keeps its namespace awake this round)."""
    name = name_of(namespace)
    decision = sleep.sleep_decision(namespace, sleep_after_s, now)
    if not decision.sleep:
        return False, decision.reason
    if dry_run:
        say(f"would put namespace {name} to sleep: {decision.reason}")
        return True, f"dry run: {decision.reason}"
    try:
        with NamespaceLock(kube, name, lock_holder("gc"), 0):
            scaled = put_to_sleep(kube, name, decision.reason, now)
    except LockHeld:
        return False, "locked by a running deploy"
    say(f"put namespace {name} to sleep: {decision.reason} ({len(scaled)} workload(s) "
        "scaled to zero, data kept)")
    return True, decision.reason
