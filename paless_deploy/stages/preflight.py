"""Preflight (cluster side): before the first write, what the rendered objects need must exist.

Secret/ConfigMap/claim references are checked against the rendered objects, else the
cluster; every image of ours against the registry. Each gap is a Finding; with any, the
deploy stops with nothing applied.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from functools import partial
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import ApiError, cluster_errors, with_retries
from paless_deploy.adapters.registry import (
    AuthRequired,
    registry_manifest_digest,
    registry_scheme,
)
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.diagnosis.findings import Finding
from paless_deploy.core.errors import BuildError, ClusterError, ConfigError, PalessError
from paless_deploy.core.images.imageref import (
    Registry,
    in_registry,
    parse_image,
    parse_registry_lenient,
)
from paless_deploy.core.manifests.kinds import by_kind
from paless_deploy.core.manifests.objects import ref_of
from paless_deploy.core.manifests.ownership import cluster_object_owner
from paless_deploy.core.manifests.podspec import pod_containers
from paless_deploy.core.plan.preflight import check_references

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube
    from paless_deploy.core.configuration.config import Config

_REFERENCED_KINDS = ("Secret", "ConfigMap", "PersistentVolumeClaim")
SERVICE = by_kind("Service")


def check_writable(kube: Kube, namespace: str) -> None:
    """Exit 4 before anything is applied when we may not deploy into the namespace."""
    with cluster_errors(kube, "checking permissions", namespace):
        for group, resource, verb in (("apps", "deployments", "patch"), ("", "secrets", "patch")):
            if not kube.may(verb, resource, group, namespace):
                raise ClusterError(
                    f"Not authorised to {verb} {resource} in namespace {namespace}.",
                    "Use a kubeconfig whose user may manage this namespace, or deploy into one "
                    "you are allowed to write (-n).", code="forbidden")


def preflight(kube: Kube, config: Config, objects: list[JsonDict], refs: Mapping[str, str], *,
              kept: Collection[str] = (), verified: Collection[str] = (),
              warn: Callable[[str], None] = lambda text: None) -> list[Finding]:
    """References to Secrets/ConfigMaps/claims, and every image the manifests pull from our
    registry: our apps' (`kept`: apps whose running image this run keeps, not builds;
    `verified`: images already found there), and the others (missing and named like ours: a finding; otherwise a warning)."""
    def existing(kind: str, namespace: str, name: str) -> JsonDict | None:
        if kind not in _REFERENCED_KINDS:
            return None
        with cluster_errors(kube, f"reading {kind}/{name}", namespace):
            return with_retries(lambda: kube.read(by_kind(kind), name, namespace))

    findings = list(check_references(objects, existing))
    used = {str(c.get("image", "")) for obj in objects for c in pod_containers(obj)}
    apps_of = {ref: app for app, ref in refs.items()}
    registry = parse_registry_lenient(config.registry)
    for image in sorted(used):
        if registry is None or image in verified or not in_registry(image, registry):
            continue
        answer = _manifest(registry, image)
        if answer is not None:
            continue
        app = apps_of.get(image)
        if app is None and not parse_image(image).path.rsplit("/", 1)[-1].startswith(
                f"{config.project_name}-"):
            warn(f"The image {image} is not in the registry {config.registry}: pods that use it "
                 "will not start (ImagePullBackOff) until it is pushed.")
            continue
        findings.append(_missing_image(config, image, app, kept))
    return findings


def _manifest(registry: Registry, image: str) -> str | None:
    """The image's digest in the registry; "" when the registry cannot tell (auth, down)."""
    ref = parse_image(image)
    try:
        return registry_manifest_digest(registry.host, ref.path, ref.digest or ref.tag or
                                        "latest")
    except (AuthRequired, BuildError):
        return ""  # cannot tell from here; the nodes may still reach it


def _missing_image(config: Config, image: str, app: str | None, kept: Collection[str]
                   ) -> Finding:
    ref = parse_image(image)
    host = parse_registry_lenient(config.registry)
    url = (f"{registry_scheme(host.host)}://{host.host}/v2/{ref.path}/manifests/"
           f"{ref.digest or ref.tag or 'latest'}") if host else image
    if app in kept:
        hint = (f"App {app} keeps the image it runs now, and the registry no longer has it "
                f"(a :latest the cluster pulled once?): deploy that app too "
                f"(`paless-deploy deploy {app}` builds and pushes its own, immutable tag).")
    elif app is not None:
        hint = f"Run `paless-deploy push {app}` (or `all`), then deploy again."
    else:
        hint = (f"Push {image} to the registry, or correct the reference in the manifests "
                "(`paless-deploy plan` and `render` show what is deployed).")
    return Finding(
        code="missing-image", resource=f"image/{app or ref.path}", reason="NotInRegistry",
        message=f"The image {image}" + (f" of app {app}" if app else "")
        + f" is not in the registry {config.registry}.",
        hint=hint, commands=(f"curl -sI {url}",), evidence=(), fatal=True)


def claim_shared_objects(kube: Kube, objects: list[JsonDict], namespace: str
                         ) -> tuple[list[JsonDict], list[str]]:
    """Shared objects are never taken over from another deploy.

    A shared object is one outside the target namespace: cluster-scoped (a ClusterRole,
    a CRD, a PersistentVolume, a Namespace of the tree) or in a namespace the tree names
    (a Role in kube-system). For each that already exists:
    - labelled by this tool for another namespace, or a PersistentVolume bound to a claim
      in another namespace: refused, with every NodePort clash, in one exit-2 report
      naming it and its owner, before anything is applied;
    - not made by this tool (a cluster's own StorageClass): left exactly as it is and not
      applied (a warning says so), so that no destroy or prune of ours can ever delete it;
    - ours for this namespace: applied as usual.
    Returns the objects to apply and the warnings.
    """
    refusals: list[str] = []
    warnings: list[str] = []
    kept: list[JsonDict] = []
    for obj in objects:
        where = str((obj.get("metadata") or {}).get("namespace") or "")
        if where == namespace or (obj.get("kind") == "Namespace" and
                                  obj["metadata"].get("name") == namespace):
            kept.append(obj)
            continue
        live = _read_shared(kube, obj, where)
        verdict = cluster_object_owner(live, namespace)
        shown = ref_of(obj) + (f" in namespace {where}" if where else "")
        if verdict.refusal:
            refusals.append(f"{shown} {verdict.refusal}")
        elif verdict.foreign:
            warnings.append(f"{shown} already exists and was not made by paless-deploy: left "
                            "as it is (not applied).")
        else:
            kept.append(obj)
    refusals += node_port_clashes(kube, objects, namespace)
    if refusals:
        raise ConfigError(
            f"Refusing to deploy into {namespace}: " + "; ".join(refusals) + ". Nothing was "
            "applied.",
            "Another deploy owns them: give shared objects (cluster-scoped ones, and those the "
            "tree puts in other namespaces) per-namespace names (e.g. name: postgres-pv-"
            "${PALESS_NAMESPACE}, or an overlay patch), or destroy the deploy that owns them; "
            "leave nodePort unset (or set it from a variable) so each namespace gets its own.",
            code="not-ours", resource=refusals[0].split(" ", 1)[0])
    return kept, warnings


def _read_shared(kube: Kube, obj: JsonDict, where: str) -> JsonDict | None:
    """The live state of a shared object (None: absent, or of a kind the tree's own CRDs
    will serve once applied)."""
    name = obj["metadata"]["name"]
    try:
        with cluster_errors(kube, f"reading {ref_of(obj)}", where or None):
            kind = kube.kind(obj["apiVersion"], obj["kind"])
            return with_retries(partial(kube.read, kind, name,
                                        where if kind.namespaced else None))
    except PalessError as exc:
        if exc.code == "unknown-kind":
            return None
        raise


def shared_refs(objects: list[JsonDict], namespace: str) -> list[str]:
    """`Kind/name` (with its namespace) of every object outside `namespace`."""
    return [ref_of(o) + (f" in {ns}" if (ns := str(o["metadata"].get("namespace") or ""))
                         else "")
            for o in objects if o["metadata"].get("namespace") != namespace]


def node_port_clashes(kube: Kube, objects: list[JsonDict], namespace: str) -> list[str]:
    """Fixed NodePorts of the render that another Service of the cluster already holds."""
    wanted = {(port.get("nodePort"), obj["metadata"]["name"])
              for obj in objects if obj.get("kind") == "Service"
              for port in (obj.get("spec") or {}).get("ports") or [] if port.get("nodePort")}
    if not wanted:
        return []
    with cluster_errors(kube, "listing Services to check NodePorts"):
        try:
            services, _ = with_retries(lambda: kube.list(SERVICE))
        except ApiError as exc:
            if exc.status == 403:
                return []  # may not list Services cluster-wide: the apply will tell
            raise
    held = {int(port["nodePort"]): (svc["metadata"].get("namespace"), svc["metadata"]["name"])
            for svc in services for port in (svc.get("spec") or {}).get("ports") or []
            if port.get("nodePort")}
    clashes = []
    for port, name in sorted(wanted, key=lambda w: (int(w[0]), w[1])):
        holder = held.get(int(port))
        if holder is not None and holder != (namespace, name):
            clashes.append(f"NodePort {port} of Service/{name} is held by Service "
                           f"{holder[0]}/{holder[1]}")
    return clashes
