"""Render stage: build one Kustomize overlay and fill it in for one namespace.

Substitutes allow-listed `${VAR}` placeholders, rewrites app images, sets namespace and labels.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from paless_deploy.core.errors import ConfigError
from paless_deploy.core.podspec import pod_containers
from paless_deploy.core.variables import BY_NAME, SECRET_NAMES, SUBSTITUTABLE_NAMES

KUSTOMIZE_TIMEOUT_S = 120
REDACTED = "<redacted>"
MANAGED_BY = "paless-deploy"
PART_OF = "paless"

# Kinds without a namespace: render never sets metadata.namespace on them, and their
# names must carry the namespace themselves so that branch namespaces don't collide.
CLUSTER_SCOPED_KINDS: frozenset[str] = frozenset({
    "APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding",
    "ComponentStatus", "CSIDriver", "CSINode", "CustomResourceDefinition", "FlowSchema",
    "IngressClass", "MutatingWebhookConfiguration", "Namespace", "Node", "PersistentVolume",
    "PriorityClass", "PriorityLevelConfiguration", "RuntimeClass", "StorageClass",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration", "VolumeAttachment",
})

# Kustomize sees `${VAR}` as a string, so a placeholder standing for a number comes out
# as a string. After substitution, a field whose whole value was one placeholder becomes
# an int when its name is one of these (Kubernetes integer or int-or-string fields) and
# the value is an integer literal; "50%" stays a string. Free-form maps (ConfigMap data,
# labels, annotations) are never converted: there "10" must stay "10".
INTEGER_FIELDS: frozenset[str] = frozenset({
    "activeDeadlineSeconds", "averageUtilization", "backoffLimit", "completions",
    "containerPort", "defaultMode", "failureThreshold", "fsGroup", "hostPort",
    "initialDelaySeconds", "maxReplicas", "maxSurge", "maxUnavailable", "minAvailable",
    "minReadySeconds", "minReplicas", "nodePort", "parallelism", "periodSeconds", "port",
    "progressDeadlineSeconds", "replicas", "revisionHistoryLimit", "runAsGroup", "runAsUser",
    "stabilizationWindowSeconds", "successThreshold", "targetPort",
    "terminationGracePeriodSeconds", "timeoutSeconds", "ttlSecondsAfterFinished",
})
_FREE_FORM_KEYS = frozenset({"annotations", "labels", "data", "stringData", "binaryData"})

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_INTEGER = re.compile(r"-?[0-9]+")
_REMOVE = object()  # marker: an optional field whose variable is unset


def render_overlay(
    project_dir: Path,
    overlay: str,
    namespace: str,
    variables: Mapping[str, str],
    app_images: Mapping[str, str],
) -> list[dict]:
    """Render `k8s/overlays/<overlay>` into the objects to apply to `namespace`.

    Kustomize builds the overlay; then allow-listed `${VAR}` placeholders are filled
    from `variables`, bare app images (`image: web`) become the references in
    `app_images`, and every object gets the namespace (when namespaced) and the
    design's labels. Raises ConfigError for anything the user must fix.
    """
    objects = kustomize_build(Path(project_dir) / "k8s" / "overlays" / overlay, overlay)
    objects = substitute_variables(objects, variables)
    objects = rewrite_images(objects, app_images)
    return set_namespace_and_labels(objects, namespace)


def kustomize_build(overlay_dir: Path, overlay: str) -> list[dict]:
    """Run `kubectl kustomize` (or a standalone `kustomize build`) on one overlay directory.

    Kustomize is never re-implemented: whichever `kubectl` is first on PATH does the
    work, and a standalone `kustomize` is used when there is no kubectl.
    """
    if not (overlay_dir / "kustomization.yaml").is_file():
        raise ConfigError(
            f"Overlay {overlay!r} has no kustomization: {overlay_dir / 'kustomization.yaml'} "
            "does not exist.",
            "Choose an existing overlay (dev, staging, prod) with --overlay or OVERLAY.",
        )
    if shutil.which("kubectl"):
        command = ["kubectl", "kustomize", str(overlay_dir)]
    elif shutil.which("kustomize"):
        command = ["kustomize", "build", str(overlay_dir)]
    else:
        raise ConfigError(
            "Cannot render manifests: neither kubectl nor kustomize is on PATH.",
            "Install kubectl (it includes kustomize) and make sure it is on PATH.",
        )
    cache = _render_cache_path(command, overlay_dir)
    cached = _read_cache(cache)
    if cached is not None:
        return _parse_kustomize_output(cached, overlay, overlay_dir)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=KUSTOMIZE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(
            f"Rendering overlay {overlay!r} took longer than {KUSTOMIZE_TIMEOUT_S} s "
            f"({' '.join(command)}).",
            "Check the overlay for remote resources that cannot be fetched.",
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"Cannot run {command[0]} to render overlay {overlay!r}: {exc}.",
            "Install kubectl (it includes kustomize) and make sure it is on PATH.",
        ) from exc
    if done.returncode != 0:
        raise ConfigError(
            f"Kustomize failed on overlay {overlay!r} ({' '.join(command)}): "
            f"{done.stderr.strip() or 'no error output'}",
            f"Fix the kustomization in {overlay_dir}; "
            f"`{' '.join(command)}` reproduces the error.",
        )
    _write_cache(cache, done.stdout)
    return _parse_kustomize_output(done.stdout, overlay, overlay_dir)


def _parse_kustomize_output(text: str, overlay: str, overlay_dir: Path) -> list[dict]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        documents = list(yaml.load_all(text, Loader=loader))
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"Kustomize output of overlay {overlay!r} is not valid YAML: {exc}",
            f"Check the manifests under {overlay_dir}.",
        ) from exc
    return [doc for doc in documents if isinstance(doc, dict)]


# Kustomize output is cached by content: the overlay tree (k8s/), the kustomize binary,
# the command. A no-op redeploy then skips a quarter second of `kubectl kustomize`.
# Overlays that may read anything outside k8/ (remote bases, paths leaving the tree)
# are never cached. PALESS_NO_RENDER_CACHE=1 turns the cache off.
RENDER_CACHE_MAX = 64


def _render_cache_path(command: list[str], overlay_dir: Path) -> Path | None:
    if os.environ.get("PALESS_NO_RENDER_CACHE"):
        return None
    root = overlay_dir.resolve().parent.parent  # k8s/overlays/<name> -> k8s
    binary = shutil.which(command[0])
    if binary is None or not root.is_dir():
        return None
    h = hashlib.sha256(" ".join(command[:-1]).encode() + b"\0")
    st = os.stat(binary)
    h.update(f"{os.path.realpath(binary)} {st.st_size} {st.st_mtime_ns}\0".encode())
    h.update(str(overlay_dir.resolve().relative_to(root)).encode() + b"\0")
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.name.startswith("kustomization") and (b"://" in data or b"../../.." in data):
            return None  # remote or out-of-tree inputs: the tree's hash would not cover them
        h.update(str(path.relative_to(root)).encode() + b"\0" + data + b"\0")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "paless-deploy" / "kustomize" / f"{h.hexdigest()}.yaml"


def _read_cache(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text()
    except OSError:
        return None


def _write_cache(path: Path | None, text: str) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
        entries = sorted(path.parent.glob("*.yaml"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-RENDER_CACHE_MAX]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a cache that cannot be written is only slower


def substitute_variables(objects: list[dict], variables: Mapping[str, str]) -> list[dict]:
    """Fill braced `${NAME}` placeholders for allow-listed names; return new objects.

    Bare `$NAME`, `$(NAME)` and `${OTHER}` for names outside SUBSTITUTABLE_NAMES are left
    alone: they belong to shells and to Kubernetes env expansion. Mapping keys are never
    substituted. An allow-listed variable without a value is an error naming object and
    field, except an `optional_field` variable that is a field's whole value: that field
    is removed. A secret variable may only be used inside a Secret, so that no secret is
    baked into a command line, an env value or a ConfigMap.
    """
    problems: list[str] = []
    result = []
    for obj in objects:
        label = _object_label(obj)
        in_secret = obj.get("kind") == "Secret"
        result.append(_substitute(obj, (), label, in_secret, variables, problems))
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ConfigError(
            f"Cannot render the manifests: {shown}{more}.",
            "Set each variable named (paless.env, the environment, or a flag); "
            "`paless-deploy config` shows every variable and where its value comes from.",
        )
    return result


def _substitute(
    value: Any,
    path: tuple[str | int, ...],
    label: str,
    in_secret: bool,
    variables: Mapping[str, str],
    problems: list[str],
) -> Any:
    """Substitute inside one value; returns the new value or _REMOVE."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            new = _substitute(item, (*path, key), label, in_secret, variables, problems)
            if new is not _REMOVE:
                out[key] = new
        return out
    if isinstance(value, list):
        items = (
            _substitute(item, (*path, i), label, in_secret, variables, problems)
            for i, item in enumerate(value)
        )
        return [item for item in items if item is not _REMOVE]
    if not isinstance(value, str):
        return value
    names = [n for n in _PLACEHOLDER.findall(value) if n in SUBSTITUTABLE_NAMES]
    if not names:
        return value
    field = format_path(path)
    known_problems = len(problems)
    whole = _PLACEHOLDER.fullmatch(value) is not None
    for name in names:
        if name in SECRET_NAMES and not in_secret:
            problems.append(
                f"{label} field {field} uses the secret ${{{name}}} outside a Secret "
                "(reference it from the Secret with secretKeyRef instead)"
            )
        if not variables.get(name):
            if whole and BY_NAME[name].optional_field:
                return _REMOVE
            problems.append(f"{label} field {field} needs ${{{name}}}, which has no value")
    if len(problems) > known_problems:
        return value

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return variables[name] if name in SUBSTITUTABLE_NAMES else match.group(0)

    substituted = _PLACEHOLDER.sub(replace, value)
    if whole and _wants_integer(path) and _INTEGER.fullmatch(substituted):
        return int(substituted)
    return substituted


def _wants_integer(path: tuple[str | int, ...]) -> bool:
    """True when the field at `path` is a Kubernetes integer field, not free-form data."""
    if not path or not isinstance(path[-1], str) or path[-1] not in INTEGER_FIELDS:
        return False
    return not any(key in _FREE_FORM_KEYS for key in path[:-1])


def format_path(path: tuple[str | int, ...]) -> str:
    """Format a field path as `spec.template.spec.containers[0].env[2].value`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{str(part)!r}]"
    return out


def rewrite_images(objects: list[dict], app_images: Mapping[str, str]) -> list[dict]:
    """Replace bare app images (`image: web`) by their built references; return new objects.

    Any other image must carry a tag or a digest: an untagged image would float, and a
    bare name that is not an app is most likely an app that was not built.
    """
    result = []
    for obj in objects:
        obj = copy.deepcopy(obj)
        for container in pod_containers(obj):
            image = container.get("image")
            if not isinstance(image, str):
                continue
            if image in app_images:
                container["image"] = app_images[image]
            elif not has_tag_or_digest(image):
                known = ", ".join(sorted(app_images)) or "none"
                raise ConfigError(
                    f"{_object_label(obj)} container {container.get('name')!r} uses image "
                    f"{image!r}, which is neither an app (known apps: {known}) "
                    "nor pinned by a tag or digest.",
                    "Pin the image (e.g. name:1.2.3), or add the app's Dockerfile "
                    "(<dir>/Dockerfile or Dockerfile.<name>) so it is built.",
                )
        result.append(obj)
    return result


def has_tag_or_digest(image: str) -> bool:
    """True for `name:tag`, `name@sha256:...`; False for `name` and `host:5000/name`."""
    return "@" in image or ":" in image.rsplit("/", 1)[-1]


def set_namespace_and_labels(objects: list[dict], namespace: str) -> list[dict]:
    """Set the namespace on namespaced objects and the design's labels on every object.

    Labels go to metadata only: selectors are immutable and must not change with them.
    """
    result = []
    for obj in objects:
        obj = copy.deepcopy(obj)
        metadata = obj.setdefault("metadata", {})
        if obj.get("kind") in CLUSTER_SCOPED_KINDS:
            metadata.pop("namespace", None)
        else:
            metadata["namespace"] = namespace
        labels = metadata.get("labels") or {}
        labels.setdefault("app.kubernetes.io/part-of", PART_OF)
        labels["app.kubernetes.io/managed-by"] = MANAGED_BY
        labels["app.kubernetes.io/instance"] = namespace
        metadata["labels"] = labels
        result.append(obj)
    return result


def redact_secrets(objects: list[dict]) -> list[dict]:
    """Copies of `objects` with every Secret `data` / `stringData` value replaced by REDACTED."""
    result = []
    for obj in objects:
        if obj.get("kind") == "Secret":
            obj = copy.deepcopy(obj)
            for key in ("data", "stringData"):
                if isinstance(obj.get(key), dict):
                    obj[key] = {name: REDACTED for name in obj[key]}
        result.append(obj)
    return result


def to_yaml(objects: list[dict]) -> str:
    """Multi-document YAML of `objects`, in order, keys as given."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all(objects, Dumper=dumper, sort_keys=False, default_flow_style=False)


def _object_label(obj: Mapping[str, Any]) -> str:
    """`Kind/name` of an object, for messages."""
    metadata = obj.get("metadata") or {}
    return f"{obj.get('kind', '?')}/{metadata.get('name', '?')}"
