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

from paless_deploy.core.apitypes import ApiObject, JsonDict, JsonValue
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
# `$${NAME}` is a literal `${NAME}` (as `$$(NAME)` is in Kubernetes): never substituted
_TOKEN = re.compile(r"(\$?)\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_INTEGER = re.compile(r"-?[0-9]+")
_REMOVE = object()  # marker: an optional field whose variable is unset

def substitute_variables(objects: list[JsonDict], variables: Mapping[str, str],
                         warnings: list[str] | None = None) -> list[JsonDict]:
    """Fill braced `${NAME}` placeholders for allow-listed names; return new objects.

    Bare `$NAME`, `$(NAME)` and `$${NAME}` (which becomes a literal `${NAME}`, for a shell
    in the container) are left to shells and to Kubernetes env expansion. A `${OTHER}` for
    a name outside SUBSTITUTABLE_NAMES is shipped as written, with a warning (appended to
    `warnings`) naming object and field; one close to a variable's name is an error. Mapping
    keys are never substituted. An allow-listed variable without a value is an error naming
    object and field, except an `optional_field` variable that is a field's whole value:
    that field is removed. A secret variable may only be used inside a Secret, so that no
    secret is baked into a command line, an env value or a ConfigMap.
    """
    problems: list[str] = []
    unknown: list[str] = []
    result = []
    for obj in objects:
        label = ref_of(obj)
        in_secret = obj.get("kind") == "Secret"
        result.append(_substitute(obj, (), label, in_secret, variables, (problems, unknown)))
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ConfigError(
            f"Cannot render the manifests: {shown}{more}.",
            "Correct a misspelt ${NAME} in the manifest; set each variable named (paless.env, "
            "the environment, or a flag); `paless-deploy config` shows every variable and where "
            "its value comes from.", code="bad-variable",
        )
    if warnings is not None:
        warnings.extend(unknown)
    return result


def near_variable(name: str) -> str | None:
    """The known variable `name` is most likely a typo of, or None: `${POSTGRES_PASWORD}`
    is an error, while `${HOME}` in a container's shell command is left to the shell."""
    return nearest_variable(name, SUBSTITUTABLE_NAMES)


def placeholders_in(objects: list[JsonDict]) -> set[str]:
    """The allow-listed `${NAME}` placeholders the objects use (before substitution; a
    `$${NAME}` is not one)."""
    text = repr(objects)
    return {name for escaped, name in _TOKEN.findall(text)
            if not escaped and name in SUBSTITUTABLE_NAMES}


def _substitute(
    value: JsonValue,
    path: tuple[str | int, ...],
    label: str,
    in_secret: bool,
    variables: Mapping[str, str],
    said: tuple[list[str], list[str]],
) -> JsonValue:
    """Substitute inside one value; returns the new value or _REMOVE. `said`: the problems
    (errors) and the unknown placeholders (warnings) found so far."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            new = _substitute(item, (*path, key), label, in_secret, variables, said)
            if new is not _REMOVE:
                out[key] = new
        return out
    if isinstance(value, list):
        items = (_substitute(item, (*path, i), label, in_secret, variables, said)
                 for i, item in enumerate(value))
        return [item for item in items if item is not _REMOVE]
    if not isinstance(value, str) or "${" not in value:
        return value
    problems = said[0]
    field = format_path(path)
    found = [name for escaped, name in _TOKEN.findall(value) if not escaped]
    _check_names(found, f"{label} field {field}", said)
    names = [n for n in found if n in SUBSTITUTABLE_NAMES]
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
        escaped, name = match.group(1), match.group(2)
        if escaped:
            return "${" + name + "}"
        return variables[name] if name in SUBSTITUTABLE_NAMES else match.group(0)

    substituted = _TOKEN.sub(replace, value)
    if whole and _wants_integer(path) and _INTEGER.fullmatch(substituted):
        return int(substituted)
    return substituted


def _check_names(found: list[str], where: str, said: tuple[list[str], list[str]]) -> None:
    """A `${NAME}` close to a variable's name is a problem (a typo); one far from all of
    them is shipped as written, with a warning (it may be meant for a shell)."""
    problems, unknown = said
    for name in found:
        near = near_variable(name)
        if near:
            problems.append(f"{where} uses ${{{name}}}, which is not a variable (did you mean "
                            f"${{{near}}}?)")
        elif name not in SUBSTITUTABLE_NAMES:
            unknown.append(f"{where} uses ${{{name}}}, which is not a variable of "
                           "paless-deploy: it is shipped as written (for a shell in the "
                           f"container, write $${{{name}}}: no warning, the same text)")


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


def rewrite_images(objects: list[JsonDict], app_images: AppImages | Mapping[str, str]
                   ) -> list[JsonDict]:
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


def cluster_scoped(obj: ApiObject, tree_scopes: Mapping[tuple[str, str], bool]) -> bool:
    """An object without a namespace: a kind the table knows as such, or a custom kind
    whose CRD in the tree says `scope: Cluster`."""
    key = (api_group(str(obj.get("apiVersion") or "")), str(obj.get("kind") or ""))
    if key in tree_scopes:
        return tree_scopes[key]
    return obj.get("kind") in CLUSTER_SCOPED_KINDS


def crd_scopes(objects: list[JsonDict]) -> dict[tuple[str, str], bool]:
    """(group, kind) -> cluster-scoped, for every kind a CRD of the tree defines."""
    scopes: dict[tuple[str, str], bool] = {}
    for obj in objects:
        if obj.get("kind") == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            kind = str((spec.get("names") or {}).get("kind") or "")
            scopes[(str(spec.get("group") or ""), kind)] = spec.get("scope") == "Cluster"
    return scopes


def home_namespace(objects: list[JsonDict], namespace: str,
                   tree_scopes: Mapping[tuple[str, str], bool]) -> str | None:
    """The namespace the tree calls its own, deployed into the target instead: the one
    more than half of its namespaced objects name (a vendored tree says `namespace:
    monitoring` on nearly everything). None when no namespace has such a majority (most
    objects name none: the few that do are meant where they say)."""
    named = [str((o.get("metadata") or {}).get("namespace") or "") for o in objects
             if o.get("kind") != "Namespace" and not cluster_scoped(o, tree_scopes)]
    counts = {ns: named.count(ns) for ns in set(named) if ns and ns != namespace}
    best = max(counts, key=lambda ns: counts[ns], default=None)
    return best if best is not None and counts[best] * 2 > len(named) else None


def set_namespace_and_labels(objects: list[JsonDict], namespace: str,
                             home: str | None = None,
                             tree_scopes: Mapping[tuple[str, str], bool] | None = None
                             ) -> list[JsonDict]:
    """Set the namespace on namespaced objects and the design's labels on every object.

    An object naming no namespace, the target or the tree's home namespace goes into the
    target; one naming another namespace stays there (a Role in kube-system). Labels go
    to metadata only: selectors are immutable and must not change with them.
    """
    scopes = tree_scopes or {}
    result = []
    for obj in objects:
        obj = copy.deepcopy(obj)
        metadata = obj.setdefault("metadata", {})
        if cluster_scoped(obj, scopes):
            metadata.pop("namespace", None)
        elif metadata.get("namespace") in (None, "", namespace, home):
            metadata["namespace"] = namespace
        current = metadata.get("labels") or {}
        current.setdefault(labels.PART_OF, labels.PART_OF_VALUE)
        current.update(labels.tool_labels(namespace))
        metadata["labels"] = current
        result.append(obj)
    return result


def for_namespace(objects: list[JsonDict], namespace: str) -> tuple[list[JsonDict], list[str]]:
    """A tree made fit for `namespace`: what any tree needs besides namespace and labels.

    - the tree's home namespace (`home_namespace`) becomes the target: its objects go
      there and its Namespace object is dropped, with a warning (the namespace phase
      creates the target with the tool's label); objects naming any other namespace are
      deployed where they say, and a Namespace of the tree for one of those is applied
      like any cluster-scoped object (owned by this deploy);
    - an HPA's target loses `spec.replicas` (kept as its initial count, used at creation
      only), so re-applies never fight the autoscaler, with one warning per target;
    - two objects that become the same once placed are an error naming both (the later
      would silently replace the earlier).
    Returns the new objects (namespace and labels set) and the warnings.
    """
    scopes = crd_scopes(objects)
    home = home_namespace(objects, namespace, scopes)
    warnings: list[str] = []
    kept = []
    for obj in objects:
        name = str((obj.get("metadata") or {}).get("name") or "")
        if obj.get("kind") == "Namespace" and name in (namespace, home):
            if name != namespace:
                warnings.append(
                    f"Namespace/{name} in the manifests was dropped: it is the tree's own "
                    f"namespace, and paless-deploy deploys it into {namespace}, which it "
                    "creates itself; remove it from the tree to silence this.")
            continue
        kept.append(obj)
    _refuse_duplicates(kept, namespace, home, scopes)
    kept, scaled = _autoscaled(kept)
    warnings += scaled
    return set_namespace_and_labels(kept, namespace, home, scopes), warnings


def hpa_targets(objects: list[JsonDict]) -> dict[tuple[str, str], str]:
    """(kind, name) of each HPA's target -> the HPA's name."""
    targets: dict[tuple[str, str], str] = {}
    for obj in objects:
        if obj.get("kind") == "HorizontalPodAutoscaler":
            ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
            targets[(str(ref.get("kind")), str(ref.get("name")))] = str(
                (obj.get("metadata") or {}).get("name"))
    return targets


def _autoscaled(objects: list[JsonDict]) -> tuple[list[JsonDict], list[str]]:
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


def _refuse_duplicates(objects: list[JsonDict], namespace: str, home: str | None,
                       scopes: Mapping[tuple[str, str], bool]) -> None:
    """Two objects of the tree that become one once placed (the tree's home namespace and
    unnamespaced objects go into `namespace`): an error naming both (the later would
    silently replace the earlier)."""
    seen: dict[tuple[str, str, str, str], ApiObject] = {}
    for obj in objects:
        meta = obj.get("metadata") or {}
        stated = str(meta.get("namespace") or "")
        scope = ("" if cluster_scoped(obj, scopes)
                 else namespace if stated in ("", namespace, home) else stated)
        key = (api_group(str(obj.get("apiVersion", ""))), str(obj.get("kind")), scope,
               str(meta.get("name")))
        first = seen.setdefault(key, obj)
        if first is obj:
            continue
        where = [str((o.get("metadata") or {}).get("namespace") or "(none)")
                 for o in (first, obj)]
        raise ConfigError(
            f"{ref_of(obj)} appears twice in the manifests (namespaces {where[0]} and "
            f"{where[1]} in the tree); deployed into {scope or namespace} they are the same "
            "object and the second would silently replace the first.",
            "Rename one of them, or keep one: objects naming no namespace, and those naming "
            f"the tree's own namespace ({home or 'none here'}), are deployed into the target "
            "namespace.", code="duplicate-object", resource=ref_of(obj))


def classes_named(objects: list[JsonDict]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The StorageClasses a deploy of the objects needs to exist, and the IngressClasses
    they name -> the objects using each.

    A claim needs its class only to be provisioned: a PersistentVolume's class is a label
    that matches it to claims, and a claim pre-bound to a volume (its volumeName, or a
    volume of the manifests whose claimRef names it) binds without a StorageClass object,
    as the dev overlay's static volumes of class `manual` do.
    """
    storage: dict[str, list[str]] = {}
    ingress: dict[str, list[str]] = {}
    reserved = {str(((o.get("spec") or {}).get("claimRef") or {}).get("name") or "")
                for o in objects if o.get("kind") == "PersistentVolume"}
    for obj in objects:
        spec = obj.get("spec") or {}
        names = []
        if obj.get("kind") == "PersistentVolumeClaim" and not (
                spec.get("volumeName") or (obj.get("metadata") or {}).get("name") in reserved):
            names.append(spec.get("storageClassName"))
        for template in spec.get("volumeClaimTemplates") or []:
            names.append((template.get("spec") or {}).get("storageClassName"))
        for name in names:
            if name:  # "" means no class (static volumes), None the default class
                storage.setdefault(str(name), []).append(ref_of(obj))
        if obj.get("kind") == "Ingress" and spec.get("ingressClassName"):
            ingress.setdefault(str(spec["ingressClassName"]), []).append(ref_of(obj))
    return storage, ingress


def redact_secrets(objects: list[JsonDict]) -> list[JsonDict]:
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


def to_yaml(objects: list[JsonDict]) -> str:
    """Multi-document YAML of `objects`, in order, keys as given."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all(objects, Dumper=dumper, sort_keys=False, default_flow_style=False)
