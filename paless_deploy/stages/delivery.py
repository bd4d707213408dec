"""Delivery stage: how built images reach the nodes (decided from the cluster), then
deliver them that way: a registry (the images stage pushes), an import into the
containerd of this machine's k3s node, or nothing (the node runs on the local Docker,
or IMAGE_DELIVERY=none).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

from paless_deploy.adapters.containerd import (
    Containerd,
    content_digests,
    find_containerd,
    has_image,
    import_image,
    pull_image,
    this_machine,
)
from paless_deploy.adapters.docker import (
    connect_docker,
    push_image,
    save_image,
    tag_image,
    untag_image,
)
from paless_deploy.adapters.kube import ApiError, TransportError
from paless_deploy.adapters.layerregistry import LayerRegistry
from paless_deploy.core.apiviews import Node
from paless_deploy.core.configuration.config import Config, Setting
from paless_deploy.core.errors import BuildError
from paless_deploy.core.images.delivery import (
    HOSTING_CONFIGMAP,
    HOSTING_NAMESPACE,
    Delivery,
    DeliveryFacts,
    DeliveryMethod,
    RegistryHosting,
    parse_registry_hosting,
)
from paless_deploy.core.manifests.kinds import by_kind
from paless_deploy.core.reporting.progress import NullProgress

if TYPE_CHECKING:
    from paless_deploy.adapters.docker import DockerClient
    from paless_deploy.adapters.kube import Kube
    from paless_deploy.stages.images import ImageResult
    from paless_deploy.stages.nodes import NodeList

IMPORTED = "imported"  # ImageResult.delivery: streamed into the node's containerd now
PRESENT = "on-node"  # the node had it already (status.images or its containerd)


def delivery_facts(kube: Kube, config: Config, nodes: NodeList) -> DeliveryFacts:
    """What the decision reads: the nodes (stages.nodes' list), the advertised registry,
    this machine, and the configuration. A user who may not read nodes or kube-public
    gets the decision the configuration alone allows."""
    hosting = advertised_registry(kube)
    registry = config.settings["REGISTRY"]
    requested = config.settings["IMAGE_DELIVERY"]
    return DeliveryFacts(
        requested=requested.value or "auto", requested_source=requested.describe_source(),
        registry=config.registry, registry_explicit=registry.explicit,
        registry_source=registry.describe_source(), hosting=hosting,
        nodes=tuple(nodes), nodes_known=nodes.known,
        here=this_machine(config.value("PALESS_NODE_NAME")))


def advertised_registry(kube: Kube) -> RegistryHosting | None:
    """The registry the cluster advertises (KEP-1755), if any and if we may read it."""
    try:
        cm = kube.read(by_kind("ConfigMap"), HOSTING_CONFIGMAP, HOSTING_NAMESPACE)
    except (ApiError, TransportError):
        return None
    return parse_registry_hosting((cm or {}).get("data"))


def advertised_push_config(config: Config, kubeconfig: str | None, context: str | None,
                           say: Callable[[str], None]) -> Config:
    """`push` without REGISTRY: the registry the cluster advertises (KEP-1755), as `all`
    would push to, when a cluster answers; else the configuration as it is (push needs no
    cluster, so an absent or unreachable one is no error here)."""
    from paless_deploy.adapters.kube import connect
    from paless_deploy.core.errors import PalessError
    from paless_deploy.core.images.delivery import check_method

    if config.settings["REGISTRY"].explicit or check_method(
            config.settings["IMAGE_DELIVERY"].value, "IMAGE_DELIVERY") not in (
                DeliveryMethod.AUTO, DeliveryMethod.REGISTRY):
        return config
    try:
        hosting = advertised_registry(connect(kubeconfig, context))
    except PalessError:  # no kubeconfig, no cluster: push needs neither
        return config
    if hosting is None:
        return config
    say(f"pushing to {hosting.host}: the registry the cluster advertises (ConfigMap "
        f"{HOSTING_NAMESPACE}/{HOSTING_CONFIGMAP}, KEP-1755); set REGISTRY to push elsewhere")
    return config_for(config, Delivery(DeliveryMethod.REGISTRY, "advertised", push_registry=hosting.host,
                                       image_registry=hosting.pull_host))


def config_for(config: Config, delivery: Delivery) -> Config:
    """The configuration images are built and pushed with: REGISTRY becomes the registry
    the cluster advertises when that is where they go."""
    if not delivery.push_registry or delivery.push_registry == config.registry:
        return config
    settings = dict(config.settings)
    settings["REGISTRY"] = Setting("REGISTRY", delivery.push_registry,
                                   "derived: advertised by the cluster (KEP-1755)")
    return dataclasses.replace(config, settings=MappingProxyType(settings))


def deliver_images(config: Config, delivery: Delivery, results: Sequence[ImageResult],
                   nodes: Sequence[Node], say: Callable[[str], None]
                   ) -> list[ImageResult]:
    """Bring each built image to the nodes as `delivery` says; each result records how
    (`delivery`: pushed, imported, on-node, docker, none). An image the node already
    lists (status.images) or its containerd already holds is not imported again; one it
    lacks goes in as the layers its containerd lacks (`import_layers`)."""
    if delivery.method != DeliveryMethod.K3S_IMPORT:
        how = "pushed" if delivery.pushes else delivery.method
        return [dataclasses.replace(r, delivery=how) for r in results]
    local = [n for n in nodes if n.name in delivery.local_nodes]
    containerd = find_containerd(config.value("PALESS_CONTAINERD_ADDRESS"))
    missing: list[ImageResult] = []
    for result in results:
        listed = [n.name for n in local if n.has_image(result.ref)]
        if listed or has_image(containerd, result.ref):
            where = f"node {listed[0]} lists it" if listed else f"{containerd.where} has it"
            say(f"{result.app}: {result.ref} not imported: {where}")
        else:
            missing.append(result)
    if missing:
        import_layers(containerd, [(r.app, r.ref) for r in missing], say)
    imported = {r.app for r in missing}
    return [dataclasses.replace(r, delivery=IMPORTED if r.app in imported else PRESENT)
            for r in results]


def import_layers(containerd: Containerd, images: Sequence[tuple[str, str]],
                  say: Callable[[str], None]) -> None:
    """Each (app, ref) into the containerd through a registry of our own on 127.0.0.1
    (adapters.layerregistry): the engine pushes the layers the containerd lacks, the
    containerd pulls them. An engine that cannot reach this machine's 127.0.0.1 (rootless
    Docker, a VM) gets the whole-image import (`docker save | ctr images import`)."""
    api = connect_docker()
    present = content_digests(containerd)
    with LayerRegistry(present.__contains__) as registry:
        for app, ref in images:
            started = time.monotonic()
            before = set(registry.received())
            staged = f"{registry.host}/{ref.split('/', 1)[-1]}"
            tag_image(api, ref, staged)
            try:
                push_image(api, registry.host, staged, app, NullProgress(), threading.Event())
            except BuildError as exc:
                if exc.code not in UNREACHABLE:
                    raise
                say(f"{app}: the Docker engine cannot reach {registry.host} ({exc.code}): "
                    "importing the whole image instead")
                _import_whole(api, containerd, app, ref, say)
                continue
            finally:
                untag_image(api, staged)
            pull_image(containerd, staged, ref)
            sent = sorted(set(registry.received()) - before)
            size = sum(registry.store.size(d) or 0 for d in sent)
            say(f"{app}: imported {ref} into {containerd.where}: {len(sent)} blob(s), "
                f"{size / 1e6:.1f} MB sent, the rest was there "
                f"({time.monotonic() - started:.1f}s)")


UNREACHABLE = ("registry-unreachable", "push-failed", "registry-insecure")


def _import_whole(api: DockerClient, containerd: Containerd, app: str, ref: str,
                  say: Callable[[str], None]) -> None:
    started = time.monotonic()
    import_image(containerd, ref, save_image(api, ref))
    say(f"{app}: imported {ref} into {containerd.where} as a whole "
        f"({time.monotonic() - started:.1f}s)")
