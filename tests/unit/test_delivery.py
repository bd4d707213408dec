"""The delivery decision table, on plain facts (nodes, advertised registry, configuration)."""

from __future__ import annotations

from typing import Any

import pytest

from paless_deploy.core.apiviews import Node
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.images.delivery import (
    DeliveryFacts,
    RegistryHosting,
    ThisMachine,
    check_method,
    choose_delivery,
    parse_registry_hosting,
    with_pull_policy,
)

LAPTOP = ThisMachine(frozenset({"laptop"}), frozenset({"192.168.1.10", "127.0.1.1"}))
K3S_HERE = Node("laptop", "v1.34.4+k3s1", "containerd://1.7.23-k3s2")
K3S_BY_LABEL = Node("box", "v1.34.4", "containerd://2.0",
                         labels={"node.kubernetes.io/instance-type": "k3s"},
                         addresses=("192.168.1.10",))
K3S_REMOTE = Node("server", "v1.34.4+k3s1", "containerd://1.7", addresses=("10.0.0.2",))
KWOK = Node("kwok-1", "kwok-0.8.0", "kwok-0.8.0", addresses=("127.0.0.1",))
DOCKER_DESKTOP = Node("docker-desktop", "v1.32.2", "docker://27.4.0")
HOSTING = RegistryHosting("localhost:5001", "kind-registry:5000")


def decide(*nodes: Node, **facts: object):
    return choose_delivery(DeliveryFacts(nodes=nodes, here=LAPTOP, **facts))  # type: ignore[arg-type]


@pytest.mark.parametrize(("nodes", "facts", "method", "words"), [
    ((K3S_HERE,), {}, "k3s-import", "node laptop is k3s (kubelet v1.34.4+k3s1) and runs on"),
    ((K3S_BY_LABEL,), {}, "k3s-import", "label node.kubernetes.io/instance-type=k3s"),
    ((K3S_REMOTE,), {}, "registry", "none of its nodes runs on this machine"),
    ((K3S_HERE,), {"registry_explicit": True, "registry": "10.0.0.5:5000",
                   "registry_source": "from paless.env:3"},
     "registry", "REGISTRY is set (from paless.env:3): images are pushed to 10.0.0.5:5000"),
    ((K3S_HERE,), {"hosting": HOSTING}, "registry", "KEP-1755"),
    ((DOCKER_DESKTOP,), {}, "docker", "docker://27.4.0"),
    ((DOCKER_DESKTOP,), {"registry_explicit": True}, "docker", "local engine"),
    ((KWOK,), {}, "registry", "no k3s node runs on this machine"),
    ((), {"nodes_known": False}, "registry", "the nodes could not be read"),
    ((KWOK,), {"requested": "k3s-import", "requested_source": "from the environment"},
     "k3s-import", "IMAGE_DELIVERY=k3s-import (from the environment)"),
    ((K3S_HERE,), {"requested": "registry"}, "registry", "IMAGE_DELIVERY=registry"),
    ((K3S_HERE,), {"requested": "none"}, "none", "some other way"),
    ((KWOK,), {"requested": "docker"}, "docker", "IMAGE_DELIVERY=docker"),
])
def test_decision_table(nodes, facts, method, words) -> None:
    delivery = decide(*nodes, **facts)
    assert delivery.method == method, delivery
    assert words in delivery.reason, delivery.reason


def test_registry_default_names_the_default() -> None:
    delivery = decide(KWOK)
    assert delivery.reason.endswith("images are pushed to localhost:5000 (REGISTRY's default)")
    assert (delivery.push_registry, delivery.image_registry) == ("localhost:5000",) * 2
    assert delivery.pull_policy is None and delivery.pushes


def test_advertised_registry_pushes_to_host_and_references_the_runtime_name() -> None:
    delivery = decide(KWOK, hosting=HOSTING)
    assert (delivery.push_registry, delivery.image_registry) == ("localhost:5001",
                                                                 "kind-registry:5000")
    assert delivery.pulled_ref("localhost:5001/paless-web:abc") == \
        "kind-registry:5000/paless-web:abc"
    assert delivery.pulled_ref("ghcr.io/x/y:1") == "ghcr.io/x/y:1"
    assert "referenced as kind-registry:5000 (hostFromContainerRuntime)" in delivery.reason


def test_import_warns_about_nodes_it_does_not_reach() -> None:
    delivery = decide(K3S_HERE, K3S_REMOTE)
    assert delivery.method == "k3s-import" and delivery.local_nodes == ("laptop",)
    assert "server cannot find the images" in delivery.warning
    assert delivery.pull_policy == "IfNotPresent" and not delivery.pushes
    assert decide(K3S_HERE).warning == ""


def test_docker_needs_every_node_on_docker() -> None:
    assert decide(DOCKER_DESKTOP, KWOK).method == "registry"


def test_this_machine_by_address_not_by_loopback() -> None:
    assert LAPTOP.is_node(Node("other-name", addresses=("192.168.1.10",)))
    assert not LAPTOP.is_node(Node("kwok-1", addresses=("127.0.0.1",)))
    assert not LAPTOP.is_node(Node("kwok-2", addresses=("127.0.1.1",)))


def test_bad_method_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        check_method("k3s", "from paless.env:4")
    assert "IMAGE_DELIVERY='k3s' (from paless.env:4)" in info.value.message
    assert "k3s-import" in info.value.hint
    assert check_method(" K3S-Import ", "x") == "k3s-import"


def test_parse_registry_hosting() -> None:
    text = ('host: "localhost:5001"\nhostFromContainerRuntime: "kind-registry:5000"\n'
            'help: "https://kind.sigs.k8s.io/docs/user/local-registry/"\n')
    hosting = parse_registry_hosting({"localRegistryHosting.v1": text})
    assert hosting == RegistryHosting("localhost:5001", "kind-registry:5000", "",
                                      "https://kind.sigs.k8s.io/docs/user/local-registry/")
    only_help = parse_registry_hosting({"localRegistryHosting.v1": "help: see docs\n"})
    assert only_help is None
    assert parse_registry_hosting({}) is None and parse_registry_hosting(None) is None
    assert parse_registry_hosting({"localRegistryHosting.v1": "host: [\n"}) is None


def test_the_view_of_a_node_object() -> None:
    node = {"metadata": {"name": "laptop", "labels": {"a": "b"}},
            "status": {"nodeInfo": {"kubeletVersion": "v1.34.4+k3s1",
                                    "containerRuntimeVersion": "containerd://1.7.23-k3s2"},
                       "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}],
                       "images": [{"names": ["localhost:5000/paless-web:abc",
                                             "localhost:5000/paless-web@sha256:00"]}]}}
    facts = Node.of(node)
    assert facts.k3s and not facts.docker_runtime and facts.addresses == ("192.168.1.10",)
    assert facts.has_image("localhost:5000/paless-web:abc")
    assert not facts.has_image("localhost:5000/paless-web:def")


def test_pull_policy_only_on_our_images() -> None:
    deployment: dict[str, Any] = {"kind": "Deployment", "spec": {"template": {"spec": {
        "containers": [
            {"name": "web", "image": "localhost:5000/paless-web:abc", "imagePullPolicy": "Always"},
            {"name": "rclone", "image": "rclone/rclone:1.71.1"}]}}}}
    out = with_pull_policy([deployment], ["localhost:5000/paless-web:abc"], "IfNotPresent")
    containers = out[0]["spec"]["template"]["spec"]["containers"]
    assert containers[0]["imagePullPolicy"] == "IfNotPresent"
    assert "imagePullPolicy" not in containers[1]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert with_pull_policy([deployment], ["x"], None) == [deployment]
