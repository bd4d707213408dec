"""Preflight (pure part): what the rendered objects reference must exist before applying.

Secret/ConfigMap/claim references of every pod template are checked against the rendered
objects, else the cluster (through a callback); each gap is a `missing-reference` Finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from paless_deploy.core.apitypes import ApiObject, JsonDict
from paless_deploy.core.diagnosis.findings import Finding
from paless_deploy.core.diagnosis.hints import rendered_from
from paless_deploy.core.manifests.podspec import indexed_containers, pod_spec, pod_spec_path

Existing = Callable[[str, str, str], "JsonDict | None"]  # (kind, namespace, name) -> object or None

_KEYED_KINDS = ("Secret", "ConfigMap")


@dataclass(frozen=True)
class Reference:
    """One reference of a pod template: to an object, optionally to keys of it."""

    kind: str  # Secret, ConfigMap, PersistentVolumeClaim
    name: str
    keys: tuple[str, ...]  # keys that must exist (empty: the object is enough)
    path: str  # field path in the referencing object
    optional: bool = False


def pod_references(obj: ApiObject) -> Iterator[Reference]:
    """Every Secret/ConfigMap/claim reference in the pod template of a workload or Pod."""
    spec = pod_spec(obj)
    if spec is None:
        return
    prefix = pod_spec_path(str(obj.get("kind")))
    for index, secret in enumerate(spec.get("imagePullSecrets") or []):
        if secret.get("name"):
            yield Reference("Secret", secret["name"], (), f"{prefix}.imagePullSecrets[{index}]")
    for list_name, ci, container in indexed_containers(obj):
        base = f"{prefix}.{list_name}[{ci}]"
        for ei, env in enumerate(container.get("env") or []):
            source = env.get("valueFrom") or {}
            for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                ref = source.get(field)
                if ref and ref.get("name"):
                    yield Reference(kind, ref["name"], (str(ref.get("key", "")),),
                                    f"{base}.env[{ei}].valueFrom.{field}",
                                    bool(ref.get("optional")))
        for fi, env_from in enumerate(container.get("envFrom") or []):
            for field, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                ref = env_from.get(field)
                if ref and ref.get("name"):
                    yield Reference(kind, ref["name"], (), f"{base}.envFrom[{fi}].{field}",
                                    bool(ref.get("optional")))
    for vi, volume in enumerate(spec.get("volumes") or []):
        base = f"{prefix}.volumes[{vi}]"
        if volume.get("secret", {}).get("secretName"):
            yield _volume_ref("Secret", volume["secret"], "secretName", f"{base}.secret")
        if volume.get("configMap", {}).get("name"):
            yield _volume_ref("ConfigMap", volume["configMap"], "name", f"{base}.configMap")
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            yield Reference("PersistentVolumeClaim", claim, (),
                            f"{base}.persistentVolumeClaim")
        for si, source in enumerate((volume.get("projected") or {}).get("sources") or []):
            for field, kind in (("secret", "Secret"), ("configMap", "ConfigMap")):
                if (source.get(field) or {}).get("name"):
                    yield _volume_ref(kind, source[field], "name",
                                      f"{base}.projected.sources[{si}].{field}")


def _volume_ref(kind: str, source: ApiObject, name_field: str, path: str) -> Reference:
    keys = tuple(str(item.get("key")) for item in source.get("items") or [] if item.get("key"))
    return Reference(kind, str(source[name_field]), keys, path, bool(source.get("optional")))


def object_keys(obj: ApiObject) -> set[str]:
    """The key names of a Secret or ConfigMap (never their values)."""
    fields: tuple[str, ...] = (("data", "stringData") if obj.get("kind", "Secret") == "Secret"
                               else ("data", "binaryData", "stringData"))
    return {str(k) for f in fields for k in (obj.get(f) or {})}


def check_references(objects: list[JsonDict], existing: Existing) -> list[Finding]:
    """Every missing object or key referenced by a pod template, as `missing-reference`.

    A reference is satisfied by a rendered object of that kind, namespace and name, else
    by `existing(kind, namespace, name)` (the cluster). `optional: true` references are
    skipped. Findings name keys, never values.
    """
    rendered: dict[tuple[str, str, str], JsonDict] = {}
    for obj in objects:
        meta = obj.get("metadata") or {}
        rendered[(str(obj.get("kind")), str(meta.get("namespace") or ""),
                  str(meta.get("name")))] = obj
    cache: dict[tuple[str, str, str], JsonDict | None] = {}
    findings: list[Finding] = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        for ref in pod_references(obj):
            if ref.optional:
                continue
            ident = (ref.kind, namespace, ref.name)
            target = rendered.get(ident)
            if target is None:
                if ident not in cache:
                    cache[ident] = existing(ref.kind, namespace or "default", ref.name)
                target = cache[ident]
            finding = _check(obj, ref, target, namespace or "default")
            if finding:
                findings.append(finding)
    return findings


def _check(obj: ApiObject, ref: Reference, target: ApiObject | None,
           namespace: str) -> Finding | None:
    kind, name = str(obj.get("kind")), str((obj.get("metadata") or {}).get("name"))
    resource = f"{kind}/{name}"
    lookup = f"kubectl -n {namespace} get {ref.kind.lower()} {ref.name}"
    if ref.kind in _KEYED_KINDS:
        lookup = f"kubectl -n {namespace} describe {ref.kind.lower()} {ref.name}"  # keys only
    if target is None:
        return Finding(
            code="missing-reference", resource=resource, reason=f"Missing{ref.kind}",
            message=(f"{kind} {name} references {ref.kind} {ref.name} ({ref.path}), which is "
                     f"neither in the rendered manifests nor in namespace {namespace}."),
            hint=_hint(ref, None),
            commands=(lookup, f"kubectl -n {namespace} get {ref.kind.lower()}s"),
            evidence=(f"{ref.path} -> {ref.kind} {ref.name}",), fatal=True)
    if ref.kind not in _KEYED_KINDS:
        return None
    present = object_keys(target)
    missing = [k for k in ref.keys if k and k not in present]
    if not missing:
        return None
    keys = ", ".join(missing)
    return Finding(
        code="missing-reference", resource=resource, reason=f"Missing{ref.kind}Key",
        message=(f"{kind} {name} needs key {keys} of {ref.kind} {ref.name} ({ref.path}), "
                 f"but the {ref.kind} has no such key."),
        hint=_hint(ref, missing),
        commands=(lookup,),
        evidence=(f"{ref.kind} {ref.name} has keys: {', '.join(sorted(present)) or 'none'}",),
        fatal=True)


def _hint(ref: Reference, missing: list[str] | None) -> str:
    if ref.kind == "PersistentVolumeClaim":
        return (f"Add the claim {ref.name} to the overlay's storage phase, or fix claimName "
                "in the pod template.")
    if missing:
        what = f"the key {', '.join(missing)} to {ref.kind} {ref.name}"
        source = rendered_from(ref.name)
        note = (f" ({ref.name} is rendered from {source}: add the key there, its value from "
                "a ${VARIABLE})" if source else "")
        return f"Add {what}{note}, or fix the key in the pod template."
    return (f"Add the {ref.kind} {ref.name} to the overlay (config phase) or create it in the "
            f"namespace, or mark the reference `optional: true` if the pod can run without it.")

