"""`scripts/sandbox status` as text, the real node's readiness as the API reports it, and the
restart targets."""

from __future__ import annotations

import pytest

from paless_sandbox import commands, status
from paless_sandbox.components import Component
from paless_sandbox.docker import manifest_url
from paless_sandbox.kubeobjects import Node, ready_condition, runtime_version
from paless_sandbox.layout import REAL_KEY, REAL_NODE
from paless_sandbox.realnode import REAL_TAINT, Unavailable, freshly_ready, marking_needed


def component(name: str = "etcd", *, external_ok: bool = False) -> Component:
    return Component(name, [f"/bin/{name}"], "http://127.0.0.1:1/health", external_ok=external_ok)


def state_and_pid(row: status.Row) -> tuple[str, str]:
    return row.state, row.pid


def test_a_component_is_healthy_unhealthy_external_or_stopped() -> None:
    c = component()
    assert status.component_row(c, 42, True) == status.Row("etcd", "healthy", "42", str(c.log),
                                                           True)
    assert state_and_pid(status.component_row(c, 42, False)) == ("unhealthy", "42")
    assert state_and_pid(status.component_row(c, None, True)) == ("healthy", "external")
    assert state_and_pid(status.component_row(c, None, False)) == ("stopped", "-")


def test_the_table_aligns_its_columns() -> None:
    rows = [status.Row("etcd", "healthy", "12", "/l/etcd.log", True),
            status.Row("kube-controller-manager", "stopped", "-", "/l/kcm.log", False)]
    assert status.table(rows).splitlines() == [
        "component                state      pid       log",
        "etcd                     healthy    12        /l/etcd.log",
        "kube-controller-manager  stopped    -         /l/kcm.log",
    ]


@pytest.mark.parametrize(("recorded", "expected"), [
    (None, False),
    ({"why": "kubelet: node not Ready within 120s", "kernel": False}, False),
    ({"why": "this machine lacks veth pairs", "kernel": True}, True),
    ({"why": "turned off (PALESS_SANDBOX_REAL_NODE=0)", "kernel": False}, True),
])
def test_only_the_kernel_or_turning_it_off_excuses_the_real_node(
        recorded: Unavailable | None, expected: bool) -> None:
    assert status.excused(recorded) is expected


def ready_node(ready: str, message: str = "", heartbeat: str = "2026-01-01T00:00:10Z") -> Node:
    return {"metadata": {"name": REAL_NODE, "labels": {REAL_KEY: "true"}},
            "spec": {"taints": [REAL_TAINT]},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": ready, "message": message,
                                       "lastHeartbeatTime": heartbeat}],
                       "nodeInfo": {"containerRuntimeVersion": "containerd://1.6.20"}}}


def test_the_real_node_lines_say_ready_or_why_not() -> None:
    lines = status.real_node_lines(ready_node("True"), True, None)
    assert lines[0].startswith(f"real node: {REAL_NODE} Ready, containerd://1.6.20; pods need")
    assert "containerd socket:" in lines[-1]
    not_ready = status.real_node_lines(ready_node("False", "PLEG is not healthy"), True, None)
    assert not_ready[0].startswith(f"real node: {REAL_NODE} NotReady (PLEG is not healthy)")


def test_the_real_node_lines_without_a_node() -> None:
    assert status.real_node_lines(None, True, None)[0] == f"real node: {REAL_NODE} not registered"
    assert status.real_node_lines(None, False, None)[0] == (
        f"real node: {REAL_NODE} unknown (the API server does not answer)")
    off = status.real_node_lines(None, True, {"why": "turned off", "kernel": False})
    assert off[0] == "real node: not running: turned off" and len(off) == 2


def test_ready_condition_and_runtime_of_sparse_nodes() -> None:
    assert ready_condition(None) == {}
    assert ready_condition({"metadata": {"name": "n"}}) == {}
    assert ready_condition(ready_node("True"))["status"] == "True"
    assert runtime_version({"metadata": {"name": "n"}}) == "?"


def test_ready_counts_only_when_reported_by_the_kubelet_just_started() -> None:
    node = ready_node("True", heartbeat="2026-01-01T00:00:10Z")
    assert freshly_ready(node, "")
    assert freshly_ready(node, "2026-01-01T00:00:10Z")
    assert not freshly_ready(node, "2026-01-01T00:00:11Z")  # the stopped kubelet's report
    assert not freshly_ready(ready_node("False"), "")
    assert not freshly_ready(None, "")


def test_marking_is_needed_for_what_a_hand_edit_removed() -> None:
    assert marking_needed(ready_node("True")) == (False, False)
    bare: Node = {"metadata": {"name": REAL_NODE}}
    assert marking_needed(bare) == (True, True)
    other_taint: Node = {"metadata": {"name": REAL_NODE, "labels": {REAL_KEY: "false"}},
                         "spec": {"taints": [{**REAL_TAINT, "effect": "NoExecute"}]}}
    assert marking_needed(other_taint) == (True, True)


def test_restart_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "registry_component", lambda: component("registry"))
    assert commands.restart_target("dockerd") is None
    targets = {name: commands.restart_target(name) for name in ("apiserver", "etcd", "registry")}
    assert {name: c.name if c else None for name, c in targets.items()} == {
        "apiserver": "kube-apiserver", "etcd": "etcd", "registry": "registry"}


def test_down_stops_the_control_plane_backwards_then_the_registry() -> None:
    names = [c.name for c in commands.all_components()]
    assert names == ["local-path-provisioner", "kwok", "kube-scheduler",
                     "kube-controller-manager", "kube-apiserver", "etcd", "registry"]


def test_an_image_manifest_url() -> None:
    assert manifest_url("127.0.0.1:5000/paless-sandbox/pause:abc") == (
        "http://127.0.0.1:5000/v2/paless-sandbox/pause/manifests/abc")
