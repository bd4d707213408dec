"""How built images reach the cluster's nodes, and why: the delivery decision.

Pure rules over facts the adapters read: the nodes (kubelet version, container runtime,
labels, the images each reports, addresses), the registry a cluster advertises (KEP-1755,
ConfigMap `kube-public/local-registry-hosting`), this machine's names, and the
configuration (IMAGE_DELIVERY, REGISTRY). A registry is pushed to; a k3s node on this
machine gets the image straight into its containerd; a node whose runtime is the local
Docker already has it; `none` leaves delivery to the user.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.manifests.podspec import pod_containers

if TYPE_CHECKING:  # the views are built by the stage that lists Nodes: --help stays fast
    from paless_deploy.core.apiviews import Node


class DeliveryMethod(StrEnum):
    """How images reach the nodes (IMAGE_DELIVERY); a `Delivery`'s method is never AUTO."""

    AUTO = "auto"  # the setting only: decide from the cluster (`choose_delivery`)
    REGISTRY = "registry"  # pushed to a registry the nodes pull from
    K3S_IMPORT = "k3s-import"  # imported into this machine's k3s node's containerd
    DOCKER = "docker"  # the nodes run on the local Docker engine: nothing to do
    NONE = "none"  # built here; the user brings them to the nodes


HOSTING_NAMESPACE = "kube-public"
HOSTING_CONFIGMAP = "local-registry-hosting"
HOSTING_KEY = "localRegistryHosting.v1"
IF_NOT_PRESENT = "IfNotPresent"


@dataclass(frozen=True)
class RegistryHosting:
    """What a cluster advertises about its local registry (KEP-1755, v1)."""

    host: str  # where to push from this machine
    host_from_container_runtime: str = ""  # how the nodes' runtime names it
    host_from_cluster_network: str = ""
    help: str = ""

    @property
    def pull_host(self) -> str:
        """The registry host image references must name (what the nodes pull from)."""
        return self.host_from_container_runtime or self.host


def parse_registry_hosting(data: Mapping[str, str] | None) -> RegistryHosting | None:
    """The `localRegistryHosting.v1` entry of the ConfigMap's data; None when absent or
    without a host (nothing to push to)."""
    text = (data or {}).get(HOSTING_KEY)
    if not text:
        return None
    import yaml  # not needed for --help

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(document, dict) or not document.get("host"):
        return None
    return RegistryHosting(str(document["host"]).rstrip("/"),
                           str(document.get("hostFromContainerRuntime") or "").rstrip("/"),
                           str(document.get("hostFromClusterNetwork") or "").rstrip("/"),
                           str(document.get("help") or ""))


@dataclass(frozen=True)
class ThisMachine:
    """Who runs the tool: its host names (and PALESS_NODE_NAME) and the non-loopback
    addresses they resolve to."""

    names: frozenset[str] = frozenset()
    addresses: frozenset[str] = frozenset()

    def is_node(self, node: Node) -> bool:
        """True when `node` is this machine (k3s names a node after its host name)."""
        if node.name.lower() in self.names:
            return True
        return any(a in self.addresses and not _loopback(a) for a in node.addresses)


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address.lower() == "localhost"


@dataclass(frozen=True)
class DeliveryFacts:
    """Everything the decision reads."""

    requested: str = DeliveryMethod.AUTO  # IMAGE_DELIVERY, as written
    requested_source: str = "the built-in default"
    registry: str = "localhost:5000"  # REGISTRY (effective)
    registry_explicit: bool = False
    registry_source: str = "the built-in default"
    hosting: RegistryHosting | None = None
    nodes: tuple[Node, ...] = ()
    nodes_known: bool = True  # False: the nodes could not be listed (a restricted user)
    here: ThisMachine = field(default_factory=ThisMachine)


@dataclass(frozen=True)
class Delivery:
    """The chosen way images reach the nodes, and why (one sentence for doctor and help)."""

    method: DeliveryMethod  # never AUTO
    reason: str
    push_registry: str = ""  # registry: where images are pushed (REGISTRY or advertised)
    image_registry: str = ""  # the registry host image references name
    local_nodes: tuple[str, ...] = ()  # k3s-import: the nodes on this machine
    warning: str = ""  # what the choice cannot do (nodes the import does not reach)

    @property
    def pushes(self) -> bool:
        """True when images go through a registry."""
        return self.method == DeliveryMethod.REGISTRY

    @property
    def pull_policy(self) -> str | None:
        """The imagePullPolicy our containers need: IfNotPresent when no registry has the
        image (a pull would fail); None to keep the manifests' own."""
        return None if self.pushes else IF_NOT_PRESENT

    def pulled_ref(self, ref: str) -> str:
        """The reference the nodes must use for an image pushed as `ref`."""
        push = self.push_registry
        if push and self.image_registry and push != self.image_registry \
                and ref.startswith(push + "/"):
            return self.image_registry + ref[len(push):]
        return ref


def check_method(value: str | None, where: str) -> DeliveryMethod:
    """IMAGE_DELIVERY's value, or ConfigError naming the choices."""
    method = (value or DeliveryMethod.AUTO).strip().lower()
    if method not in tuple(DeliveryMethod):
        raise ConfigError(f"IMAGE_DELIVERY={value!r} ({where}) is not a delivery method.",
                          f"Use one of: {', '.join(DeliveryMethod)} (auto chooses per cluster; "
                          "`paless-deploy doctor` says what it chose and why).",
                          code="bad-delivery")
    return DeliveryMethod(method)


def choose_delivery(facts: DeliveryFacts) -> Delivery:
    """The delivery method for these facts (see the README, "On a k3s laptop").

    auto, in order: every node on this machine's Docker (no push, no import); REGISTRY
    set (push there); a registry the cluster advertises (push there, reference it as the
    nodes' runtime names it); a k3s node on this machine (import into its containerd);
    otherwise the registry, as always.
    """
    requested = check_method(facts.requested, facts.requested_source)
    here = tuple(n.name for n in facts.nodes if facts.here.is_node(n))
    if requested != DeliveryMethod.AUTO:
        return _explicit(requested, facts, here)
    docker = [n for n in facts.nodes if n.docker_runtime]
    if docker and len(docker) == len(facts.nodes) and (len(docker) == 1 or len(here) ==
                                                       len(docker)):
        node = docker[0]
        return Delivery(DeliveryMethod.DOCKER, f"node {node.name} runs its containers on "
                        f"Docker ({node.runtime_version}): it uses the images built into the "
                        "local engine, so nothing is pushed or imported",
                        image_registry=facts.registry)
    if facts.registry_explicit:
        return _registry(facts, f"REGISTRY is set ({facts.registry_source})")
    if facts.hosting is not None:
        return _advertised(facts, "the cluster advertises a registry (ConfigMap "
                           f"{HOSTING_NAMESPACE}/{HOSTING_CONFIGMAP}, KEP-1755)")
    k3s_here = [n for n in facts.nodes if n.k3s and n.name in here]
    if k3s_here:
        node = k3s_here[0]
        others = [n.name for n in facts.nodes if n.name not in here]
        return Delivery(
            DeliveryMethod.K3S_IMPORT,
            f"node {node.name} is k3s ({node.k3s_evidence}) and runs on this machine, and "
            "no registry is configured: images go straight into its containerd "
            "(`k3s ctr images import`), pulled by no one",
            image_registry=facts.registry, local_nodes=here,
            warning=_unreached(others))
    k3s = [n for n in facts.nodes if n.k3s]
    if k3s:
        return _registry(facts, f"the cluster is k3s ({k3s[0].k3s_evidence}) but none of its "
                         "nodes runs on this machine, so images cannot be imported; every "
                         "node must reach the registry (registries.yaml)")
    if not facts.nodes_known:
        return _registry(facts, "the nodes could not be read (no k3s node can be told) and "
                         "the cluster advertises no registry")
    return _registry(facts, "no k3s node runs on this machine and the cluster advertises no "
                     "registry")


def _explicit(method: DeliveryMethod, facts: DeliveryFacts, here: tuple[str, ...]) -> Delivery:
    why = f"IMAGE_DELIVERY={method} ({facts.requested_source})"
    if method == DeliveryMethod.REGISTRY:
        if not facts.registry_explicit and facts.hosting is not None:
            return _advertised(facts, why + "; the cluster advertises a registry (KEP-1755)")
        return _registry(facts, why)
    if method == DeliveryMethod.K3S_IMPORT:
        others = [n.name for n in facts.nodes if n.name not in here] if here else []
        return Delivery(DeliveryMethod.K3S_IMPORT, why + ": images go straight into the "
                        "containerd of this machine's node", image_registry=facts.registry,
                        local_nodes=here, warning=_unreached(others))
    if method == DeliveryMethod.DOCKER:
        return Delivery(DeliveryMethod.DOCKER, why + ": the nodes use the local Docker "
                        "engine's images", image_registry=facts.registry)
    return Delivery(DeliveryMethod.NONE, why + ": images are built here and reach the nodes "
                    "some other way", image_registry=facts.registry)


def _registry(facts: DeliveryFacts, why: str) -> Delivery:
    where = facts.registry if facts.registry_explicit else f"{facts.registry} (REGISTRY's default)"
    return Delivery(DeliveryMethod.REGISTRY, f"{why}: images are pushed to {where}",
                    push_registry=facts.registry, image_registry=facts.registry)


def _advertised(facts: DeliveryFacts, why: str) -> Delivery:
    hosting = facts.hosting
    assert hosting is not None
    pull = "" if hosting.pull_host == hosting.host else \
        f", referenced as {hosting.pull_host} (hostFromContainerRuntime)"
    return Delivery(DeliveryMethod.REGISTRY, f"{why}: images are pushed to "
                    f"{hosting.host}{pull}", push_registry=hosting.host,
                    image_registry=hosting.pull_host)


def _unreached(others: Sequence[str]) -> str:
    if not others:
        return ""
    shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
    return (f"the import reaches only this machine's node; pods scheduled on {shown} cannot "
            "find the images (set REGISTRY to a registry every node reaches, declared in "
            "/etc/rancher/k3s/registries.yaml)")


def with_pull_policy(objects: list[JsonDict], refs: Sequence[str], policy: str | None
                     ) -> list[JsonDict]:
    """Copies of `objects` whose containers running one of `refs` get `policy` (None:
    the objects unchanged): an imported image must not be pulled."""
    if policy is None:
        return objects
    wanted = set(refs)
    result = []
    for obj in objects:
        if any(c.get("image") in wanted for c in pod_containers(obj)):
            obj = copy.deepcopy(obj)
            for container in pod_containers(obj):
                if container.get("image") in wanted:
                    container["imagePullPolicy"] = policy
        result.append(obj)
    return result
