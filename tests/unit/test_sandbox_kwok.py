"""The simulated nodes: kwok's configuration, its stages and failure markers, the bootstrap
objects, and which nodes count as Ready."""

from __future__ import annotations

from typing import Any

import yaml

from paless_sandbox import kwok
from paless_sandbox.kubeobjects import Condition, Node
from paless_sandbox.layout import KWOK_FORWARD_PORT, REAL_NODE, RESTRICTED_NAMESPACE, SUPPORT

# The failure markers README "Sandbox" documents (sandbox.paless.io/fail values).
FAILURE_MARKERS = {"image-pull", "crash-loop", "config-error", "oom", "never-ready"}
FAIL_KEY = '.metadata.annotations["sandbox.paless.io/fail"]'


def stages() -> list[dict[str, Any]]:
    docs = yaml.safe_load_all((SUPPORT / "stages.yaml").read_text())
    return [d for d in docs if d and d["kind"] == "Stage"]


def marker_values(stage: dict[str, Any]) -> set[str]:
    """The fail markers a stage selects ({} when it does not look at the annotation)."""
    return {v for e in stage["spec"]["selector"].get("matchExpressions", [])
            if e["key"] == FAIL_KEY and e["operator"] == "In" for v in e["values"]}


def test_every_documented_marker_has_stages_and_no_stage_serves_another() -> None:
    selected = set().union(*(marker_values(s) for s in stages()))
    assert selected == FAILURE_MARKERS


def test_unmarked_pods_become_ready_and_marked_ones_do_not() -> None:
    by_name = {s["metadata"]["name"]: s for s in stages()}
    ready = by_name["pod-ready"]["spec"]["selector"]["matchExpressions"]
    assert {"key": FAIL_KEY, "operator": "DoesNotExist"} in ready
    names = [s["metadata"]["name"] for s in stages()]
    assert len(names) == len(set(names)), "stage names must be unique"


def test_the_stages_file_starts_kwoks_pod_workers() -> None:
    # without a KwokConfiguration kwok starts no worker that syncs pods
    first = next(d for d in yaml.safe_load_all((SUPPORT / "stages.yaml").read_text()) if d)
    assert first["kind"] == "KwokConfiguration"


def test_kwok_config_adds_logs_and_port_forwards_after_the_stages() -> None:
    text = kwok.kwok_config("kind: Stage\nmetadata: {name: only}\n")
    docs = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in docs] == ["Stage", "ClusterLogs", "ClusterPortForward"]
    logs = docs[1]["spec"]["logs"][0]
    # the state directory's copies: the same path whichever checkout ran `up`
    assert logs["logsFile"] == str(kwok.KWOK_LOGS / "container.log")
    assert logs["previousLogsFile"] == str(kwok.KWOK_LOGS / "previous.log")
    assert not logs["logsFile"].startswith(str(SUPPORT))
    assert (SUPPORT / "container.log").is_file() and (SUPPORT / "previous.log").is_file()
    assert docs[2]["spec"]["forwards"] == [{"target": {"port": KWOK_FORWARD_PORT,
                                                       "address": "127.0.0.1"}}]


def test_node_names() -> None:
    assert kwok.node_names(2) == ("sandbox-node-1", "sandbox-node-2")
    assert kwok.node_names(-3) == ("sandbox-node-1",)


def test_bootstrap_nodes_are_kwoks_with_room_for_several_stacks() -> None:
    objects: list[Any] = kwok.bootstrap_objects(kwok.node_names(3))
    nodes = [o for o in objects if o["kind"] == "Node"]
    assert [n["metadata"]["name"] for n in nodes] == [
        "sandbox-node-1", "sandbox-node-2", "sandbox-node-3"]
    for node in nodes:
        meta = node["metadata"]
        assert meta["annotations"]["kwok.x-k8s.io/node"] == "fake"
        assert meta["labels"]["type"] == "kwok"
        assert node["status"] == {"capacity": kwok.NODE_CAPACITY,
                                  "allocatable": kwok.NODE_CAPACITY}
    assert kwok.NODE_CAPACITY["cpu"] == "8" and kwok.NODE_CAPACITY["pods"] == "110"


def test_bootstrap_has_k3s_defaults_and_the_users_bindings() -> None:
    objects: list[Any] = kwok.bootstrap_objects(())
    by_kind = {o["kind"]: o for o in objects}
    assert by_kind["StorageClass"]["metadata"]["name"] == "local-path"
    assert by_kind["StorageClass"]["volumeBindingMode"] == "WaitForFirstConsumer"
    assert by_kind["IngressClass"]["metadata"]["name"] == "traefik"
    assert by_kind["Namespace"]["metadata"]["name"] == RESTRICTED_NAMESPACE
    assert by_kind["RoleBinding"]["subjects"][0]["name"] == "restricted"
    assert by_kind["RoleBinding"]["roleRef"]["name"] == "admin"
    assert by_kind["ClusterRoleBinding"]["subjects"][0]["name"] == f"system:node:{REAL_NODE}"
    assert "Node" not in by_kind


def node(name: str, ready: str | None) -> Node:
    conditions: list[Condition] = [] if ready is None else [{"type": "Ready", "status": ready}]
    return {"metadata": {"name": name}, "status": {"conditions": conditions}}


def test_ready_nodes_counts_only_ours_that_are_ready() -> None:
    items = [node("sandbox-node-1", "True"), node("sandbox-node-2", "False"),
             node("sandbox-node-3", None), node("someone-elses", "True")]
    ready = kwok.ready_nodes(items, kwok.node_names(3))
    assert [n["metadata"]["name"] for n in ready] == ["sandbox-node-1"]


def test_a_node_counts_as_held_once_its_lease_was_renewed_after_kwok_started() -> None:
    from paless_sandbox.kwok import nodes_not_renewed

    def node(name: str, fake: bool = True) -> dict[str, object]:
        return {"metadata": {"name": name, "annotations": {
            "kwok.x-k8s.io/node": "fake"} if fake else {}}}

    def lease(name: str, renewed: str) -> dict[str, object]:
        return {"metadata": {"name": name}, "spec": {"renewTime": renewed}}

    since = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    nodes = [node("sandbox-node-0"), node("sandbox-node-1"), node("sandbox-node-2"),
             node("sandbox-real", fake=False)]
    leases = [lease("sandbox-node-0", "2027-01-15T08:00:05.000000Z"),  # the new kwok's
              lease("sandbox-node-1", "2027-01-15T07:59:50.000000Z"),  # its predecessor's
              lease("sandbox-real", "2027-01-15T07:00:00.000000Z")]  # a kubelet's: not ours
    assert nodes_not_renewed(nodes, leases, since) == ["sandbox-node-1", "sandbox-node-2"]
