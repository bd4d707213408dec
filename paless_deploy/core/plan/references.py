"""What an object of the tree says about others: the pods a selector picks, the hosts a
Job's env, command and configuration address, the claims a StatefulSet creates.

Pure reading of the rendered objects, shared by the placement of objects into named
phases (core.plan.plan) and by the dependency rules of the deploy graph (core.plan.graph).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping

from paless_deploy.core.apitypes import ApiObject, JsonValue
from paless_deploy.core.manifests.objects import nested, whole_number
from paless_deploy.core.manifests.podspec import pod_containers, pod_spec

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod"})

ConfigKey = tuple[str, str, str]  # (kind, namespace, name) of a ConfigMap or Secret


def namespace_in(obj: ApiObject) -> str:
    """metadata.namespace as rendered ("" for cluster-scoped objects)."""
    return str(nested(obj, "metadata", "namespace") or "")


def selects(selector: Mapping[str, str], pod_labels: Mapping[str, str]) -> bool:
    """A Service's (equality) selector picks pods with these labels."""
    return bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items())


def template_labels(obj: ApiObject) -> dict[str, str]:
    """The labels of the pods a workload makes (a Pod's own labels)."""
    if obj.get("kind") == "Pod":
        return dict((obj.get("metadata") or {}).get("labels") or {})
    template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return dict(template.get("labels") or {})


def service_selector(service: ApiObject) -> dict[str, str]:
    return dict((service.get("spec") or {}).get("selector") or {})


def _decoded(obj: ApiObject) -> Iterator[str]:
    """The values of a ConfigMap or Secret (Secret data decoded, in memory only)."""
    for key in ("data", "stringData"):
        for value in (obj.get(key) or {}).values():
            if not isinstance(value, str):
                continue
            if obj.get("kind") == "Secret" and key == "data":
                try:
                    yield base64.b64decode(value, validate=True).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    continue
            else:
                yield value


def _only_key(obj: ApiObject, key: str) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {"kind": obj.get("kind")}
    for field_name in ("data", "stringData"):
        values = obj.get(field_name) or {}
        if key in values:
            out[field_name] = {key: values[key]}
    return out


def strings_of(obj: ApiObject, configs: Mapping[ConfigKey, ApiObject]
               ) -> Iterator[tuple[str, str]]:
    """(where, text) for every env value, argument and command word of a pod template,
    with the values of the ConfigMaps and Secrets it reads (env, envFrom) or mounts."""
    namespace = namespace_in(obj)

    def config(kind: str, name: object) -> ApiObject | None:
        return configs.get((kind, namespace, str(name)))

    for container in pod_containers(obj):
        name = container.get("name", "?")
        for word in [*(container.get("command") or []), *(container.get("args") or [])]:
            if isinstance(word, str):
                yield f"container {name} command", word
        for env in container.get("env") or []:
            if isinstance(env.get("value"), str):
                yield f"env {env.get('name')}", env["value"]
            source = env.get("valueFrom") or {}
            for ref_key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                ref = source.get(ref_key) or {}
                target = config(kind, ref.get("name"))
                if target is not None:
                    for value in _decoded(_only_key(target, str(ref.get("key")))):
                        yield f"env {env.get('name')}", value
        for env_from in container.get("envFrom") or []:
            for ref_key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                ref = env_from.get(ref_key) or {}
                target = config(kind, ref.get("name"))
                if target is not None:
                    for value in _decoded(target):
                        yield f"envFrom {kind} {ref.get('name')}", value
    for volume in (pod_spec(obj) or {}).get("volumes") or []:
        for field_name, kind, name_key in (("configMap", "ConfigMap", "name"),
                                           ("secret", "Secret", "secretName")):
            source = volume.get(field_name) or {}
            target = config(kind, source.get(name_key)) if source else None
            if target is not None:
                for value in _decoded(target):
                    yield f"mounted {kind} {source.get(name_key)}", value


def addresses(text: str, service: str) -> bool:
    """True when `text` names Service `service` as a host: the whole value (`postgres`,
    `minio:9000`, `postgres.ns.svc.cluster.local`), a URL's host (`http://minio:9000/x`,
    `postgresql://u:p@db/paperless`), `host:port` inside a command, or the word after a
    host flag (`-h db`, `--host=db`). A mere word in a sentence (`CREATE ROLE paperless`)
    is not an address."""
    host = rf"{re.escape(service)}(?:\.[a-z0-9-]+)*"
    end = r"(?![A-Za-z0-9_.-])"
    patterns = (
        rf"^\s*{host}(?::\d+)?\s*$",  # the whole value
        rf"(?:://|@){host}(?::\d+)?{end}",  # a URL's or user@host's host
        rf"(?<![A-Za-z0-9_./-]){host}:\d+{end}",  # host:port
        rf"(?:^|\s)(?:-h|--host(?:name)?[= ]|host=)\s*{host}{end}",  # a host flag
    )
    return any(re.search(p, text, re.IGNORECASE if i == 3 else 0)
               for i, p in enumerate(patterns))


def statefulset_claims(obj: ApiObject) -> list[str]:
    """The claims a StatefulSet creates: `<template>-<name>-<ordinal>` for each replica."""
    if obj.get("kind") != "StatefulSet":
        return []
    spec = obj.get("spec") or {}
    replicas = whole_number(spec.get("replicas"), 1)
    name = nested(obj, "metadata", "name")
    return [f"{(template.get('metadata') or {}).get('name')}-{name}-{ordinal}"
            for template in spec.get("volumeClaimTemplates") or []
            for ordinal in range(max(1, replicas))]


def mounted_claims(obj: ApiObject) -> list[str]:
    """The claims a pod template mounts by name."""
    return [str(claim) for volume in (pod_spec(obj) or {}).get("volumes") or []
            if (claim := (volume.get("persistentVolumeClaim") or {}).get("claimName"))]
