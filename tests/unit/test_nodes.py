"""The one listing of Nodes: what its consumers see when it worked, and when it did not.

Pure: a stand-in for the Kubernetes door answers (or refuses) the listing.
"""

from __future__ import annotations

import pytest

from paless_deploy.adapters.kube import ApiError, TransportError
from paless_deploy.stages.nodes import NodeList, read_nodes

NODE = {"metadata": {"name": "n1"}, "status": {"nodeInfo": {"architecture": "amd64"}}}


class Answers:
    """Lists Nodes as told: the items, or an error; counts how often it was asked."""

    def __init__(self, answer: list[dict] | Exception) -> None:
        self.answer = answer
        self.asked = 0

    def list(self, kind: object, namespace: str | None = None) -> tuple[list[dict], str]:
        self.asked += 1
        assert getattr(kind, "kind", None) == "Node"
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer, "1"


def test_listed_nodes_are_known_and_iterable() -> None:
    kube = Answers([NODE])
    nodes = read_nodes(kube)  # type: ignore[arg-type]
    assert nodes.known and list(nodes) == [NODE] and len(nodes) == 1
    assert nodes.listed() == (NODE,)
    assert kube.asked == 1


@pytest.mark.parametrize("error", [
    ApiError(403, "Forbidden", "nodes is forbidden", {}),
    TransportError("connection refused"),
])
def test_a_refused_listing_is_unknown_and_says_why_when_needed(error: Exception) -> None:
    nodes = read_nodes(Answers(error))  # type: ignore[arg-type]
    assert not nodes.known and list(nodes) == [] and len(nodes) == 0
    with pytest.raises(type(error)) as raised:
        nodes.listed()  # a check that needs them reports the listing's own error
    assert raised.value is error


def test_an_empty_cluster_is_known() -> None:
    assert NodeList().known and NodeList().listed() == ()
