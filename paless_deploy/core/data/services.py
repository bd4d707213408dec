"""Where a namespace keeps its data: the PostgreSQL and MinIO workloads, the pod and
container to reach each, and MinIO's credentials as its own container reads them.

Read from the live objects, not from the manifests: a backup of staging uses staging's
MinIO credentials (from staging's Secret), a restore into a branch the branch's own.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.manifests.components import component_of
from paless_deploy.core.manifests.objects import condition, name_of, nested
from paless_deploy.core.manifests.podspec import pod_spec

POSTGRES, MINIO = "postgres", "minio"
S3_PORT = 9000
# The names MinIO reads its root credentials from (the current ones first).
MINIO_USER_VARIABLES = ("MINIO_ROOT_USER", "MINIO_ACCESS_KEY")
MINIO_PASSWORD_VARIABLES = ("MINIO_ROOT_PASSWORD", "MINIO_SECRET_KEY")
APP_COMPONENTS = ("web", "worker", "scheduler")


@dataclass(frozen=True)
class Service:
    """One data service of a namespace: its workload, and a Ready pod to reach it."""

    component: str
    workload: str  # "StatefulSet/postgres"
    pod: str | None  # None: no Ready pod (asleep, starting, failing)
    container: str
    port: int = 0
    env: tuple[ApiObject, ...] = field(default=(), repr=False)  # the container's env list
    env_from: tuple[ApiObject, ...] = field(default=(), repr=False)


def workloads_of(objects: Sequence[ApiObject], component: str) -> list[ApiObject]:
    """The Deployments and StatefulSets that are `component`."""
    found = []
    for obj in objects:
        if obj.get("kind") in ("StatefulSet", "Deployment"):
            which = component_of(obj)
            if which is not None and which[0] == component:
                found.append(obj)
    return found


def _selected(pod: ApiObject, selector: Mapping[str, str]) -> bool:
    pod_labels = nested(pod, "metadata", "labels") or {}
    return bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items())


def _ready(pod: ApiObject) -> bool:
    ready = condition(pod, "Ready")
    return bool(ready and ready.get("status") == "True") and not nested(
        pod, "metadata", "deletionTimestamp")


def _container(workload: ApiObject, component: str) -> ApiObject:
    containers = (pod_spec(workload) or {}).get("containers") or [{}]
    for container in containers:
        which = component_of({"kind": "Pod", "metadata": {"name": container.get("name")},
                              "spec": {"containers": [container]}})
        if which is not None and which[0] == component:
            return container
    return containers[0]


def find_service(objects: Sequence[ApiObject], pods: Sequence[ApiObject],
                 component: str) -> Service | None:
    """The first `component` workload of the namespace and a Ready pod of it; None when
    the namespace has no such workload."""
    workloads = workloads_of(objects, component)
    if not workloads:
        return None
    workload = workloads[0]
    selector = nested(workload, "spec", "selector", "matchLabels") or {}
    ready = sorted(name_of(p) for p in pods if _selected(p, selector) and _ready(p))
    container = _container(workload, component)
    port = next((int(p["containerPort"]) for p in container.get("ports") or []
                 if p.get("name") in ("s3", "api") or p.get("containerPort") == S3_PORT),
                S3_PORT) if component == MINIO else 0
    return Service(component, f"{workload.get('kind')}/{name_of(workload)}",
                   ready[0] if ready else None, str(container.get("name") or ""), port,
                   tuple(container.get("env") or ()), tuple(container.get("envFrom") or ()))


def references(service: Service) -> tuple[set[str], set[str]]:
    """The Secrets and ConfigMaps the container's environment reads."""
    secrets, configmaps = set(), set()
    for entry in service.env:
        ref = nested(entry, "valueFrom", "secretKeyRef", "name")
        if ref:
            secrets.add(str(ref))
        ref = nested(entry, "valueFrom", "configMapKeyRef", "name")
        if ref:
            configmaps.add(str(ref))
    for source in service.env_from:
        if nested(source, "secretRef", "name"):
            secrets.add(str(source["secretRef"]["name"]))
        if nested(source, "configMapRef", "name"):
            configmaps.add(str(source["configMapRef"]["name"]))
    return secrets, configmaps


def env_value(service: Service, names: Sequence[str], secrets: Mapping[str, ApiObject],
              configmaps: Mapping[str, ApiObject]) -> str | None:
    """The value the container gets for the first of `names` it has: a literal value, a
    Secret's or ConfigMap's key, or a whole Secret/ConfigMap through envFrom."""
    for name in names:
        for entry in service.env:
            if entry.get("name") != name:
                continue
            if "value" in entry:
                return str(entry["value"])
            value = _from_ref(nested(entry, "valueFrom") or {}, secrets, configmaps)
            if value is not None:
                return value
        for source in service.env_from:
            prefix = str(source.get("prefix") or "")
            if not name.startswith(prefix):
                continue
            key = name[len(prefix):]
            if nested(source, "secretRef", "name"):
                value = _secret_key(secrets.get(source["secretRef"]["name"]), key)
            else:
                value = (nested(configmaps.get(str(nested(source, "configMapRef", "name"))),
                                "data") or {}).get(key)
            if value is not None:
                return str(value)
    return None


def _from_ref(value_from: ApiObject, secrets: Mapping[str, ApiObject],
              configmaps: Mapping[str, ApiObject]) -> str | None:
    secret_ref = value_from.get("secretKeyRef")
    if secret_ref:
        return _secret_key(secrets.get(str(secret_ref.get("name"))), str(secret_ref.get("key")))
    map_ref = value_from.get("configMapKeyRef")
    if map_ref:
        found = (nested(configmaps.get(str(map_ref.get("name"))), "data") or {}).get(
            str(map_ref.get("key")))
        return str(found) if found is not None else None
    return None


def _secret_key(secret: ApiObject | None, key: str) -> str | None:
    encoded = (nested(secret, "data") or {}).get(key)
    if encoded is None:
        return None
    try:
        return base64.b64decode(str(encoded)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def images_of(objects: Sequence[ApiObject]) -> dict[str, str]:
    """`Kind/name container` -> image of every workload and Job (what a snapshot records)."""
    images = {}
    for obj in objects:
        spec = pod_spec(obj) or {}
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            images[f"{obj.get('kind')}/{name_of(obj)} {container.get('name')}"] = str(
                container.get("image") or "")
    return images
