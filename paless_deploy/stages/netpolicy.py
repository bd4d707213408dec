"""Whether the cluster enforces NetworkPolicies: the evidence read from the cluster (its
Nodes, the pods of known controllers), judged by core.diagnosis.netpolicy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.diagnosis.netpolicy import (
    KNOWN_CONTROLLERS,
    Enforcement,
    judge_enforcement,
)
from paless_deploy.core.manifests.kinds import by_kind

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube
    from paless_deploy.stages.nodes import NodeList


def read_enforcement(kube: Kube, nodes: NodeList) -> Enforcement:
    """The verdict on NetworkPolicy enforcement. Raises the API's error when the Nodes or
    the pods of every namespace may not be listed (doctor says it could not check)."""
    node_items = nodes.listed()
    pods: dict[str, list[JsonDict]] = {}
    for controller in KNOWN_CONTROLLERS:
        pods[controller.name] = kube.list(by_kind("Pod"), None,
                                          labelSelector=controller.label)[0]
        if any((p.get("status") or {}).get("phase") == "Running" for p in pods[controller.name]):
            break  # one running controller is evidence enough
    return judge_enforcement(node_items, pods)
