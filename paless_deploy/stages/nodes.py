"""The cluster's Nodes, listed once where a command needs them.

The delivery decision (which way images go), the failure rules (node capacity, registry
reach), `dev`'s imports and doctor's checks all take this one list instead of each
asking the API server again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import ApiError, TransportError
from paless_deploy.core.manifests.kinds import by_kind

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube

NODE = by_kind("Node")


@dataclass(frozen=True)
class NodeList:
    """The Node objects as listed, or why they could not be (a user who may not list
    nodes, a server that stopped answering): then it is empty and `error` says why.
    Iterates over the Nodes (API JSON)."""

    items: tuple[dict, ...] = ()
    error: ApiError | TransportError | None = None

    @property
    def known(self) -> bool:
        """True when the Nodes were listed (an empty cluster included)."""
        return self.error is None

    def __iter__(self) -> Iterator[dict]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def listed(self) -> tuple[dict, ...]:
        """The Nodes; the listing's error raised again when it failed (a check that needs
        them reports why it could not look)."""
        if self.error is not None:
            raise self.error
        return self.items


def read_nodes(kube: Kube) -> NodeList:
    """List the cluster's Nodes once."""
    try:
        return NodeList(tuple(kube.list(NODE)[0]))
    except (ApiError, TransportError) as exc:
        return NodeList(error=exc)
