"""Preflight (cluster side): before the first write, what the rendered objects need must exist.

Secret/ConfigMap/claim references are checked against the rendered objects, else the
cluster; every image of ours against the registry. Each gap is a Finding; with any, the
deploy stops with nothing applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import cluster_errors, with_retries
from paless_deploy.adapters.registry import (
    AuthRequired,
    registry_manifest_digest,
    registry_scheme,
    split_registry,
)
from paless_deploy.core.diagnosis.findings import Finding
from paless_deploy.core.errors import BuildError, ClusterError
from paless_deploy.core.kinds import by_kind
from paless_deploy.core.podspec import pod_containers
from paless_deploy.core.preflight import check_references

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube
    from paless_deploy.core.config import Config

_REFERENCED_KINDS = ("Secret", "ConfigMap", "PersistentVolumeClaim")


def check_writable(kube: Kube, namespace: str) -> None:
    """Exit 4 before anything is applied when we may not deploy into the namespace."""
    with cluster_errors(kube, "checking permissions", namespace):
        for group, resource, verb in (("apps", "deployments", "patch"), ("", "secrets", "patch")):
            if not kube.may(verb, resource, group, namespace):
                raise ClusterError(
                    f"Not authorised to {verb} {resource} in namespace {namespace}.",
                    "Use a kubeconfig whose user may manage this namespace, or deploy into one "
                    "you are allowed to write (-n).", code="forbidden")


def preflight(kube: Kube, config: Config, objects: list[dict],
              refs: Mapping[str, str]) -> list[Finding]:
    """References to Secrets/ConfigMaps/claims and our images in the registry."""
    def existing(kind: str, namespace: str, name: str) -> dict | None:
        if kind not in _REFERENCED_KINDS:
            return None
        with cluster_errors(kube, f"reading {kind}/{name}", namespace):
            return with_retries(lambda: kube.read(by_kind(kind), name, namespace))

    findings = list(check_references(objects, existing))
    used = {c.get("image", "") for obj in objects for c in pod_containers(obj)}
    host, _ = split_registry(config.registry)
    for app, ref in refs.items():
        if ref not in used or not ref.startswith(config.registry + "/"):
            continue
        # repo:tag, or repo:tag@digest (deployed from a report): ask for the digest then
        name, _, pinned = ref[len(config.registry) + 1:].partition("@")
        repo, _, tag = name.rpartition(":")
        tag = pinned or tag
        try:
            digest = registry_manifest_digest(config.registry, repo, tag)
        except (AuthRequired, BuildError):
            continue  # cannot tell from here; the nodes may still reach it
        if digest is None:
            findings.append(Finding(
                code="missing-image", resource=f"image/{app}", reason="NotInRegistry",
                message=f"The image {ref} of app {app} is not in the registry {config.registry}.",
                hint=f"Run `paless-deploy push {app}` (or `all`), then deploy again.",
                commands=(f"curl -sI {registry_scheme(host)}://{host}/v2/{repo}/manifests/{tag}",),
                evidence=(), fatal=True))
    return findings
