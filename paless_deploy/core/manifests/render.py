"""Render (pure part): fill a Kustomize build in for one namespace.

Substitutes allow-listed `${VAR}` placeholders, rewrites app images, sets the namespace
and the tool's labels, redacts Secrets for display. The build itself is the kustomize
adapter's; stages/render.py joins the two.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from paless_deploy.core.apitypes import ApiObject, JsonValue
from paless_deploy.core.configuration.variables import (
    BY_NAME,
    SECRET_NAMES,
    SUBSTITUTABLE_NAMES,
    nearest_variable,
)
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.images.discover import app_repository
from paless_deploy.core.images.imageref import (
    has_tag_or_digest,
    in_registry,
    in_repository,
    parse_image,
    parse_registry_lenient,
    same_repository,
)
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.kinds import CLUSTER_SCOPED_KINDS, api_group
from paless_deploy.core.manifests.objects import ref_of
from paless_deploy.core.manifests.podspec import pod_containers

REDACTED = "<redacted>"

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
        label = ref_of(obj)
        in_secret = obj.get("kind") == "Secret"
        result.append(_substitute(obj, (), label, in_secret, variables, problems))
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ConfigError(
            f"Cannot render the manifests: {shown}{more}.",
            "Correct a misspelt ${NAME} in the manifest; set each variable named (paless.env, "
            "the environment, or a flag); `paless-deploy config` shows every variable and where "
            "its value comes from.", code="bad-variable",
        )
    return result


def near_variable(name: str) -> str | None:
    """The known variable `name` is most likely a typo of, or None: `${POSTGRES_PASWORD}`
    is an error, while `${HOME}` in a container's shell command is left to the shell."""
    return nearest_variable(name, SUBSTITUTABLE_NAMES)


def placeholders_in(objects: list[dict]) -> set[str]:
    """The allow-listed `${NAME}` placeholders the objects use (before substitution)."""
    text = repr(objects)
    return {name for name in _PLACEHOLDER.findall(text) if name in SUBSTITUTABLE_NAMES}


def _substitute(
    value: JsonValue,
    path: tuple[str | int, ...],
    label: str,
    in_secret: bool,
    variables: Mapping[str, str],
    problems: list[str],
) -> JsonValue:
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
    found = _PLACEHOLDER.findall(value)
    for name in found:
        near = near_variable(name)
        if near:
            problems.append(f"{label} field {format_path(path)} uses ${{{name}}}, which is not a "
                            f"variable (did you mean ${{{near}}}?)")
    names = [n for n in found if n in SUBSTITUTABLE_NAMES]
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


@dataclass(frozen=True)
class AppImages:
    """How a tree names our apps' images, and the references they become.

    An image denotes app `x` when it is the bare name `x`; or lives in
    `{REGISTRY}/{PROJECT_NAME}-x` (any tag or none, any spelling of the same registry
    host); or, for trees with other names, in the repository PALESS_IMAGES maps to `x`.
    """

    refs: Mapping[str, str]  # app -> the reference to deploy
    registry: str = ""  # REGISTRY (host[:port][/prefix]); "" recognises bare names only
    project: str = ""  # PROJECT_NAME
    aliases: Mapping[str, str] = field(default_factory=dict)  # app -> repository in the tree

    def app_of(self, image: str) -> str | None:
        """The app an image reference denotes, or None."""
        if image in self.refs:
            return image
        for app, repository in self.aliases.items():
            if same_repository(image, repository):
                return app
        if self.registry:
            for app in self.refs:
                if in_repository(image, self.registry,
                                 app_repository(self.project, app)):
                    return app
        return None

    def in_our_registry(self, image: str) -> bool:
        """True when the image lives in REGISTRY (any spelling of its host)."""
        registry = parse_registry_lenient(self.registry) if self.registry else None
        return registry is not None and in_registry(image, registry)


def rewrite_images(objects: list[dict], app_images: AppImages | Mapping[str, str]
                   ) -> list[dict]:
    """Replace every image that denotes one of our apps by its reference; return new objects.

    Any other image must carry a tag or a digest: an untagged image would float, and a
    bare name that is not an app is most likely an app that was not built. An image in
    our registry under `{PROJECT_NAME}-...`, or floating there, that denotes no app is an
    error naming the apps we have (a typo, or a tree written for another PROJECT_NAME).
    """
    images = app_images if isinstance(app_images, AppImages) else AppImages(app_images)
    result = []
    for obj in objects:
        obj = copy.deepcopy(obj)
        for container in pod_containers(obj):
            image = container.get("image")
            if not isinstance(image, str):
                continue
            app = images.app_of(image)
            if app is not None:
                container["image"] = images.refs[app]
            elif images.in_our_registry(image) and _meant_as_ours(image, images):
                raise _unknown_app_image(obj, container, image, images)
            elif not has_tag_or_digest(image):
                known = ", ".join(sorted(images.refs)) or "none"
                raise ConfigError(
                    f"{ref_of(obj)} container {container.get('name')!r} uses image "
                    f"{image!r}, which is neither an app (known apps: {known}) "
                    "nor pinned by a tag or digest.",
                    "Pin the image (e.g. name:1.2.3), or add the app's Dockerfile "
                    "(<dir>/Dockerfile or Dockerfile.<name>) so it is built.",
                    code="unknown-image", resource=ref_of(obj))
        result.append(obj)
    return result


def _meant_as_ours(image: str, images: AppImages) -> bool:
    """An image of our registry named like our apps, or floating there (never rolled out),
    when we build apps at all and it is not pinned by a digest."""
    ref = parse_image(image)
    if ref.digest or not images.refs:
        return False  # exact (a report's image), or a tree that builds nothing
    name = ref.path.rsplit("/", 1)[-1]
    return ref.floating or name.startswith((f"{images.project}-", "app-"))


def _unknown_app_image(obj: ApiObject, container: ApiObject, image: str,
                       images: AppImages) -> ConfigError:
    known = ", ".join(f"{images.registry}/{app_repository(images.project, a)}"
                      for a in sorted(images.refs))
    name = parse_image(image).path.rsplit("/", 1)[-1]
    if name.startswith("app-") and images.project != "app":
        hint = (f"The tree names images {images.registry}/app-<app>: it was written for "
                "PROJECT_NAME=app (the old script's default). Set PROJECT_NAME=app, or map "
                "the names with PALESS_IMAGES=<app>=<repository>,...")
    else:
        hint = ("Name one of our apps (the Dockerfiles found: "
                f"{', '.join(sorted(images.refs)) or 'none'}), map the tree's names with "
                "PALESS_IMAGES=<app>=<repository>,..., or pin an image that exists in the "
                "registry.")
    return ConfigError(
        f"{ref_of(obj)} container {container.get('name')!r} uses image {image!r}, which is "
        f"in our registry {images.registry} but names no app we build (ours: "
        f"{known or 'none'}).", hint, code="unknown-app-image", resource=ref_of(obj))


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
        current = metadata.get("labels") or {}
        current.setdefault(labels.PART_OF, labels.PART_OF_VALUE)
        current.update(labels.tool_labels(namespace))
        metadata["labels"] = current
        result.append(obj)
    return result


def for_namespace(objects: list[dict], namespace: str) -> tuple[list[dict], list[str]]:
    """A tree made fit for `namespace`: what any tree needs besides namespace and labels.

    - a rendered Namespace is dropped (the namespace phase creates the target with the
      tool's label; any other namespace is not ours to create), with a warning for others;
    - an HPA's target loses `spec.replicas` (kept as its initial count, used at creation
      only), so re-applies never fight the autoscaler, with one warning per target;
    - two objects that become the same once the namespace is forced are an error naming
      both (the later would silently replace the earlier).
    Returns the new objects (namespace and labels set) and the warnings.
    """
    warnings: list[str] = []
    kept = []
    for obj in objects:
        if obj.get("kind") == "Namespace":
            name = str((obj.get("metadata") or {}).get("name") or "")
            if name != namespace:
                warnings.append(
                    f"Namespace/{name} in the manifests was dropped: paless-deploy deploys "
                    f"into {namespace} and creates it itself (other namespaces are not its "
                    "to create); remove it from the tree to silence this.")
            continue
        kept.append(obj)
    _refuse_duplicates(kept, namespace)
    kept, scaled = _autoscaled(kept)
    warnings += scaled
    return set_namespace_and_labels(kept, namespace), warnings


def hpa_targets(objects: list[dict]) -> dict[tuple[str, str], str]:
    """(kind, name) of each HPA's target -> the HPA's name."""
    targets: dict[tuple[str, str], str] = {}
    for obj in objects:
        if obj.get("kind") == "HorizontalPodAutoscaler":
            ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
            targets[(str(ref.get("kind")), str(ref.get("name")))] = str(
                (obj.get("metadata") or {}).get("name"))
    return targets


def _autoscaled(objects: list[dict]) -> tuple[list[dict], list[str]]:
    targets = hpa_targets(objects)
    warnings: list[str] = []
    result = []
    for obj in objects:
        hpa = targets.get((str(obj.get("kind")), str((obj.get("metadata") or {}).get("name"))))
        spec = obj.get("spec") or {}
        if hpa is not None and "replicas" in spec and obj.get("kind") in ("Deployment",
                                                                         "StatefulSet"):
            obj = copy.deepcopy(obj)
            replicas = obj["spec"].pop("replicas")
            annotations = obj["metadata"].setdefault("annotations", {}) or {}
            annotations.setdefault(labels.INITIAL_REPLICAS, str(replicas))
            obj["metadata"]["annotations"] = annotations
            warnings.append(
                f"{ref_of(obj)} sets spec.replicas ({replicas}) and HorizontalPodAutoscaler/"
                f"{hpa} scales it: replicas is applied at creation only "
                f"({labels.INITIAL_REPLICAS}), then left to the autoscaler. Remove "
                "spec.replicas from the manifest to silence this.")
        result.append(obj)
    return result, warnings


def _refuse_duplicates(objects: list[dict], namespace: str) -> None:
    """Two objects of the tree that become one once every namespaced object goes into
    `namespace`: an error naming both (the later would silently replace the earlier)."""
    seen: dict[tuple[str, str, str, str], ApiObject] = {}
    for obj in objects:
        meta = obj.get("metadata") or {}
        scope = "" if obj.get("kind") in CLUSTER_SCOPED_KINDS else namespace
        key = (api_group(str(obj.get("apiVersion", ""))), str(obj.get("kind")), scope,
               str(meta.get("name")))
        first = seen.setdefault(key, obj)
        if first is obj:
            continue
        where = [str((o.get("metadata") or {}).get("namespace") or "(none)")
                 for o in (first, obj)]
        raise ConfigError(
            f"{ref_of(obj)} appears twice in the manifests (namespaces {where[0]} and "
            f"{where[1]} in the tree); deployed into {namespace} they are the same object "
            "and the second would silently replace the first.",
            "Rename one of them, or keep one: every namespaced object of the tree is "
            "deployed into the target namespace.", code="duplicate-object",
            resource=ref_of(obj))


def classes_named(objects: list[dict]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """StorageClass and IngressClass names the objects use -> the objects using each."""
    storage: dict[str, list[str]] = {}
    ingress: dict[str, list[str]] = {}
    for obj in objects:
        spec = obj.get("spec") or {}
        names = []
        if obj.get("kind") in ("PersistentVolumeClaim", "PersistentVolume"):
            names.append(spec.get("storageClassName"))
        for template in spec.get("volumeClaimTemplates") or []:
            names.append((template.get("spec") or {}).get("storageClassName"))
        for name in names:
            if name:  # "" means no class (static volumes), None the default class
                storage.setdefault(str(name), []).append(ref_of(obj))
        if obj.get("kind") == "Ingress" and spec.get("ingressClassName"):
            ingress.setdefault(str(spec["ingressClassName"]), []).append(ref_of(obj))
    return storage, ingress


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
