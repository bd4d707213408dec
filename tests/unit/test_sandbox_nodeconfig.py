"""The real node's configuration: what each file says, and which component a change to it
restarts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from paless_sandbox import nodeconfig
from paless_sandbox.layout import (
    BRIDGE,
    BRIDGE_IP,
    CONTAINERD_SOCK,
    HOSTS_DIR,
    POD_CIDR,
    REAL_KEY,
    REALNODE,
    REGISTRY_ADDR,
)


def test_containerd_config_carries_the_pause_image_runc_and_oom_choice() -> None:
    text = nodeconfig.containerd_config("reg/pause:abc", True, "/usr/sbin/runc")
    assert 'sandbox_image = "reg/pause:abc"' in text
    assert "restrict_oom_score_adj = true" in text
    assert 'BinaryName = "/usr/sbin/runc"' in text
    assert f'address = "{CONTAINERD_SOCK}"' in text
    assert f'config_path = "{HOSTS_DIR}"' in text
    assert "restrict_oom_score_adj = false" in nodeconfig.containerd_config("p", False, "runc")


def test_the_registry_is_plain_http_under_both_names() -> None:
    hosts = nodeconfig.registry_hosts()
    assert set(hosts) == {REGISTRY_ADDR, REGISTRY_ADDR.replace("127.0.0.1", "localhost")}
    for host, text in hosts.items():
        assert text.startswith(f'server = "http://{host}"')
        assert '[host."http://' in text and '"pull", "resolve"' in text


def test_cni_is_a_bridge_on_the_pod_range_with_the_node_as_gateway() -> None:
    config: Any = nodeconfig.cni_config()
    bridge = config["plugins"][0]
    assert (bridge["type"], bridge["bridge"]) == ("bridge", BRIDGE)
    assert bridge["ipam"]["ranges"] == [[{"subnet": POD_CIDR, "gateway": BRIDGE_IP}]]
    assert config["plugins"][1]["type"] == "portmap"


def test_the_kubelet_serves_on_the_bridge_to_certificate_holders_only() -> None:
    config: Any = nodeconfig.kubelet_config()
    assert config["address"] == BRIDGE_IP and config["readOnlyPort"] == 0
    assert config["authentication"]["anonymous"] == {"enabled": False}
    assert config["authentication"]["webhook"] == {"enabled": False}
    assert config["registerWithTaints"] == [{"key": REAL_KEY, "value": "true",
                                             "effect": "NoSchedule"}]
    assert config["containerRuntimeEndpoint"] == f"unix://{CONTAINERD_SOCK}"
    assert config["imageGCHighThresholdPercent"] == 100  # imported images are never collected


def test_kube_proxy_opens_node_ports_on_the_bridge_only() -> None:
    config: Any = nodeconfig.kube_proxy_config()
    assert config["nodePortAddresses"] == [f"{BRIDGE_IP}/32"]
    assert config["iptables"]["localhostNodePorts"] is False
    assert config["mode"] == "iptables"


def test_each_file_restarts_the_component_that_reads_it() -> None:
    files = {f.path: f for f in nodeconfig.node_files("p", False, "runc")}
    assert files[REALNODE / "kubelet.json"].restarts == "kubelet"
    assert files[REALNODE / "kube-proxy.json"].restarts == "kube-proxy"
    assert files[REALNODE / "resolv.conf"].restarts is None  # read per pod
    containerd = {p.name for p, f in files.items() if f.restarts == "containerd"}
    assert containerd == {"config.toml", "hosts.toml", "10-paless-sandbox.conflist"}
    assert json.loads(files[REALNODE / "kubelet.json"].text) == nodeconfig.kubelet_config()
    assert "nameserver 127.0.0.1" in files[REALNODE / "resolv.conf"].text


def test_only_changed_files_are_written_and_say_whom_to_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nodeconfig, "POD_LOGS", tmp_path / "pod-logs")
    files = [nodeconfig.NodeFile(tmp_path / "a" / "kubelet.json", "{}\n", "kubelet"),
             nodeconfig.NodeFile(tmp_path / "resolv.conf", "nameserver 127.0.0.1\n", None),
             nodeconfig.NodeFile(tmp_path / "c.toml", "x\n", "containerd")]
    assert nodeconfig.write_node_files(files) == {"kubelet", "containerd"}
    assert (tmp_path / "pod-logs").is_dir()
    assert nodeconfig.write_node_files(files) == set()
    (tmp_path / "c.toml").write_text("edited by hand\n")
    assert nodeconfig.write_node_files(files) == {"containerd"}
    assert (tmp_path / "c.toml").read_text() == "x\n"
    assert not list(tmp_path.rglob("*.tmp"))
