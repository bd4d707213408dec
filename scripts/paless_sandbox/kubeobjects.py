"""Typed views of the Kubernetes JSON the sandbox reads back (Nodes only), so the code that
reasons about them does not guess at dict shapes."""

from __future__ import annotations

from typing import TypedDict


class Condition(TypedDict, total=False):
    type: str
    status: str
    message: str
    lastHeartbeatTime: str


class Taint(TypedDict):
    key: str
    value: str
    effect: str


class NodeMeta(TypedDict, total=False):
    name: str
    labels: dict[str, str]


class NodeSpec(TypedDict, total=False):
    taints: list[Taint]


class NodeStatus(TypedDict, total=False):
    conditions: list[Condition]
    nodeInfo: dict[str, str]


class Node(TypedDict, total=False):
    metadata: NodeMeta
    spec: NodeSpec
    status: NodeStatus


def ready_condition(node: Node | None) -> Condition:
    """The node's Ready condition ({} when it has none, or there is no node)."""
    status = (node or Node()).get("status") or NodeStatus()
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"),
                Condition())


def is_ready(node: Node) -> bool:
    """Whether the node's Ready condition is True."""
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in node.get("status", {}).get("conditions", []))


def runtime_version(node: Node) -> str:
    """The container runtime the node's kubelet reports ("?" when it reports none)."""
    return node.get("status", {}).get("nodeInfo", {}).get("containerRuntimeVersion", "?")
