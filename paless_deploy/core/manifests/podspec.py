"""Where the pod lives inside each kind: its spec, its containers, its template's annotations.

One table of paths, so that render (image rewriting), preflight (references), lint and
diagnosis all walk a Deployment, a CronJob or a bare Pod the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from paless_deploy.core.apitypes import ApiObject, JsonDict, JsonValue

# kind -> path of the pod spec; the pod template's metadata sits beside that spec.
POD_SPEC_PATHS: Mapping[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
# In the order Kubernetes starts them; ephemeral containers only ever appear on Pods.
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def _walk(obj: JsonValue, path: tuple[str, ...]) -> JsonValue:
    for key in path:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def pod_spec(obj: ApiObject) -> JsonDict | None:
    """The pod spec inside a Pod or workload object, or None for kinds without pods."""
    path = POD_SPEC_PATHS.get(str(obj.get("kind")))
    node = _walk(obj, path) if path else None
    return node if isinstance(node, dict) else None


def pod_spec_path(kind: str) -> str:
    """The dotted field path of a kind's pod spec ("spec.template.spec"), for messages."""
    return ".".join(POD_SPEC_PATHS.get(kind, ("spec", "template", "spec")))


def indexed_containers(obj: ApiObject) -> Iterator[tuple[str, int, JsonDict]]:
    """(list name, index, container) for every container of the pod spec, init first."""
    spec = pod_spec(obj) or {}
    for list_name in CONTAINER_LISTS:
        for index, container in enumerate(spec.get(list_name) or []):
            if isinstance(container, dict):
                yield list_name, index, container


def pod_containers(obj: ApiObject) -> list[JsonDict]:
    """The init, regular and ephemeral containers of the pod spec (the dicts themselves,
    so a caller may rewrite them in place)."""
    return [container for _, _, container in indexed_containers(obj)]


def spec_container(obj: ApiObject, name: str) -> JsonDict:
    """The container called `name` in the pod spec; {} when there is none."""
    return next((c for c in pod_containers(obj) if c.get("name") == name), {})


def template_annotations(obj: ApiObject) -> dict[str, str]:
    """The annotations of a workload's pod template ({} for a Pod and for kinds without pods)."""
    path = POD_SPEC_PATHS.get(str(obj.get("kind")))
    if not path or len(path) < 2:
        return {}
    return dict(_walk(obj, (*path[:-1], "metadata", "annotations")) or {})
