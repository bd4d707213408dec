"""Image warm-up (core.plan.warmup): the pods that pull the later objects' images while the
first ones start, made at the start of a rollout and deleted at its end. Best effort: a
refusal (quota, admission, RBAC) or an unreachable server costs only the warm-up, never
the deploy; what it made is said in the report (`warm_up`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import ApiError, TransportError
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.manifests.kinds import by_kind
from paless_deploy.core.plan.warmup import WARM_UP_LABEL, warm_up_pods

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube
    from paless_deploy.core.apiviews import Node
    from paless_deploy.core.plan.graph import DeployGraph

POD = by_kind("Pod")
QUOTA = by_kind("ResourceQuota")
SELECTOR = f"{WARM_UP_LABEL}=true"


def waiting_objects(graph: DeployGraph, members: Sequence[int]) -> list[tuple[JsonDict, bool]]:
    """(object, waits for another to be ready, directly or through what it needs)."""
    waiting = graph.waiting()
    return [(graph.nodes[i].obj, i in waiting) for i in members]


def start_warm_up(kube: Kube, namespace: str, graph: DeployGraph, members: Sequence[int],
                  nodes: Sequence[Node]) -> list[str]:
    """Delete warm-up pods an earlier run left, then make this rollout's; their names."""
    pods = warm_up_pods(waiting_objects(graph, members), nodes)
    if not pods or under_quota(kube, namespace):
        return []
    clear_warm_up(kube, namespace)
    made = []
    for pod in pods:
        try:
            made.append(str(kube.create(POD, pod, namespace)["metadata"]["name"]))
        except (ApiError, TransportError):
            continue  # a quota, an admission policy, RBAC: the deploy pulls as it would
    return made


def under_quota(kube: Kube, namespace: str) -> bool:
    """A ResourceQuota holds the namespace (or it cannot be told: then as if one did)."""
    try:
        return bool(kube.list(QUOTA, namespace)[0])
    except (ApiError, TransportError):
        return True


def clear_warm_up(kube: Kube, namespace: str) -> None:
    """Delete the namespace's warm-up pods (at once: they run nothing worth a grace)."""
    try:
        kube.request("DELETE", POD.path(namespace), query={"labelSelector": SELECTOR},
                     body={"apiVersion": "v1", "kind": "DeleteOptions",
                           "gracePeriodSeconds": 0, "propagationPolicy": "Background"})
    except (ApiError, TransportError):
        pass  # each ends by itself (activeDeadlineSeconds); the next run deletes it
