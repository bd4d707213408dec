"""Image warm-up: pull, at the start of a deploy, the images its later objects will need.

A deploy applies the apps only once what they need is ready (PostgreSQL, the migrate Job),
so on a node that lacks their images the pull (1.3 GB for Paperless) began only then,
where `kubectl apply` of everything at once pulls from the first second. A warm-up pod
asks the node for those images while the data services start: one pod per node, one
container per image, each container's command `sh -c "exit 0"` (no program of the image
runs; an image without a shell fails to start, pulled all the same), restartPolicy Never.

Only where the node is certain and the pull is ours to start:
- delivery through a registry (an import or the node's own Docker engine has them already);
- images of objects that wait for something (what goes first is pulled by its own pods);
- a pod template that exactly one Ready, schedulable node can take (nodeName, or its
  nodeSelector and tolerations against the nodes' labels and taints; a required node
  affinity is not evaluated: no warm-up); a single-node k3s laptop, or pods pinned to one
  node, not a pool of nodes where the pod may land anywhere;
- images that node does not report among its images.

Never in a namespace under a ResourceQuota (the tree's or one already there: branch
namespaces get one): a warm-up pod counts against it, and a quota that refuses an app's
pod meanwhile would fail the deploy.

The pods carry WARM_UP_LABEL; the stage deletes them when the rollout ends (and any left by
an earlier run before making new ones). They ask for little CPU and memory and satisfy the
"restricted" Pod Security Standard, so quotas and admission refuse them only where they
would refuse almost anything; a refusal costs only the warm-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from paless_deploy.core.apitypes import JsonDict, JsonValue
from paless_deploy.core.manifests.podspec import pod_containers, pod_spec

if TYPE_CHECKING:
    from paless_deploy.core.apiviews import Node, Taint

WARM_UP_LABEL = "paless.io/warm-up"
NAME_PREFIX = "paless-warm-up-"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job", "ReplicaSet", "Pod")
RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"},
             "limits": {"cpu": "10m", "memory": "16Mi"}}
RESTRICTED = {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
              "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
              "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
DEADLINE_S = 900  # a warm-up pod the tool could not delete ends by itself


def tolerated(taint: Taint, tolerations: Sequence[Mapping[str, JsonValue]]) -> bool:
    """The taint is tolerated by one of the pod's tolerations (as the scheduler reads them)."""
    if taint.effect == "PreferNoSchedule":
        return True
    for t in tolerations:
        effect = t.get("effect") or ""
        if effect and effect != taint.effect:
            continue
        key, operator = t.get("key") or "", t.get("operator") or "Equal"
        if not key and operator == "Exists":
            return True
        if key != taint.key:
            continue
        if operator == "Exists" or str(t.get("value") or "") == taint.value:
            return True
    return False


def _mappings(value: JsonValue) -> list[JsonDict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def candidate_nodes(spec: JsonDict, nodes: Iterable[Node]) -> list[Node] | None:
    """The Ready, schedulable nodes that can take a pod of this spec; None when the spec
    asks for what is not evaluated here (a required node affinity)."""
    ready = [n for n in nodes if n.ready]
    if spec.get("nodeName"):
        return [n for n in ready if n.name == spec["nodeName"]]
    affinity = spec.get("affinity")
    node_affinity = affinity.get("nodeAffinity") if isinstance(affinity, dict) else None
    if isinstance(node_affinity, dict) and node_affinity.get(
            "requiredDuringSchedulingIgnoredDuringExecution"):
        return None
    selector = spec.get("nodeSelector")
    wanted = selector if isinstance(selector, dict) else {}
    tolerations = _mappings(spec.get("tolerations"))
    return [n for n in ready if not n.unschedulable
            and all(n.labels.get(k) == v for k, v in wanted.items())
            and all(tolerated(t, tolerations) for t in n.taints)]


@dataclass
class _Wanted:
    """What one node's warm-up pod pulls, and what the templates it serves carry."""

    images: dict[str, JsonValue] = field(default_factory=dict)  # image -> its pull policy
    secrets: list[JsonDict] = field(default_factory=list)  # imagePullSecrets
    tolerations: list[JsonDict] = field(default_factory=list)


def warm_up_pods(objects: Sequence[tuple[JsonDict, bool]], nodes: Iterable[Node]
                 ) -> list[JsonDict]:
    """The warm-up pods for these objects ((object, waits for something) in graph order):
    one per node, with a container per image the node lacks."""
    if any(obj.get("kind") == "ResourceQuota" for obj, _ in objects):
        return []  # its pod would count against the quota the apps' pods need
    nodes = list(nodes)
    first = {c.get("image") for obj, waits in objects if not waits
             for c in pod_containers(obj)}
    wanted: dict[str, _Wanted] = {}  # node name -> its pod's images
    for obj, waits in objects:
        spec = pod_spec(obj)
        if not waits or spec is None or obj.get("kind") not in WORKLOAD_KINDS:
            continue
        found = candidate_nodes(spec, nodes)
        if found is None or len(found) != 1:
            continue
        node = found[0]
        images = [str(c["image"]) for c in pod_containers(obj)
                  if c.get("image") and c["image"] not in first and not node.has_image(
                      str(c["image"]))]
        if not images:
            continue
        entry = wanted.setdefault(node.name, _Wanted())
        for container in pod_containers(obj):
            if container.get("image") in images:
                entry.images.setdefault(str(container["image"]),
                                        container.get("imagePullPolicy"))
        for into, items in ((entry.secrets, spec.get("imagePullSecrets")),
                            (entry.tolerations, spec.get("tolerations"))):
            into += [item for item in _mappings(items) if item not in into]
    return [_pod(node, entry) for node, entry in sorted(wanted.items())]


def _pod(node: str, entry: _Wanted) -> JsonDict:
    containers: list[JsonValue] = []
    for i, (image, policy) in enumerate(entry.images.items()):
        container: JsonDict = {"name": f"image-{i}", "image": image,
                               "command": ["sh", "-c", "exit 0"],
                               "resources": RESOURCES, "securityContext": RESTRICTED}
        if policy:
            container["imagePullPolicy"] = policy
        containers.append(container)
    spec: JsonDict = {"nodeName": node, "restartPolicy": "Never",
                      "terminationGracePeriodSeconds": 0, "activeDeadlineSeconds": DEADLINE_S,
                      "automountServiceAccountToken": False, "enableServiceLinks": False,
                      "containers": containers}
    if entry.secrets:
        spec["imagePullSecrets"] = list[JsonValue](entry.secrets)
    if entry.tolerations:
        spec["tolerations"] = list[JsonValue](entry.tolerations)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": NAME_PREFIX, "labels": {WARM_UP_LABEL: "true"}},
            "spec": spec}
