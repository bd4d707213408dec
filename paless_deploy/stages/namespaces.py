"""The namespace phase: create the target namespace (labelled, annotated) when absent.

An existing namespace keeps what it has, except that one the tool created gets each
deploy recorded for gc (last deploy, TTL); a new one is ready for pods only once its
`default` ServiceAccount exists, so that is awaited too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from paless_deploy.adapters import git
from paless_deploy.adapters.host import utc_now
from paless_deploy.adapters.kube import ApiError, cluster_errors, with_retries
from paless_deploy.core.configuration.branch import current_branch
from paless_deploy.core.configuration.durations import span
from paless_deploy.core.errors import ConfigError, DeployFailed
from paless_deploy.core.manifests.kinds import by_kind
from paless_deploy.core.manifests.namespaces import (
    commit_from_environment,
    created_by_tool,
    namespace_manifest,
    renewal_annotations,
)
from paless_deploy.core.reporting.report import ObjectReport

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube
    from paless_deploy.core.configuration.config import Config

NAMESPACE = by_kind("Namespace")
SERVICE_ACCOUNT = by_kind("ServiceAccount")


def detect_branch(config: Config, environ: Mapping[str, str] = os.environ) -> str | None:
    """The branch in branch mode, else the checkout's branch if there is one."""
    if config.branch:
        return str(config.branch)
    try:
        return current_branch(environ, config.project_dir, git.checkout_branch)
    except ConfigError:
        return None


def detect_commit(config: Config, environ: Mapping[str, str] = os.environ) -> str | None:
    """The commit being deployed: CI variables first, else `git rev-parse HEAD`."""
    return commit_from_environment(environ) or git.head_commit(config.project_dir)


def ensure_namespace(kube: Kube, config: Config, *, timeout_s: float = 300.0,
                     say: Callable[[str], None] = lambda text: None) -> ObjectReport:
    """The namespace phase: create the namespace (labelled, annotated) when absent.

    An existing namespace keeps its labels and created-at ("unchanged"), and a namespace
    the tool did not create is never labelled or annotated; one the tool created gets this
    deploy recorded (`renew_namespace`: last deploy, TTL, commit) for gc.
    A namespace still being deleted (destroy, then deploy again: the usual CI flow) is
    waited for, up to `timeout_s`, then created anew.
    """
    name = config.namespace
    with cluster_errors(kube, f"reading namespace {name}", name):
        current = with_retries(lambda: kube.read(NAMESPACE, name))
        if current is not None and (current.get("status") or {}).get("phase") == "Terminating":
            say(f"Namespace {name} is still being deleted; waiting up to "
                f"{span(timeout_s)} for it to go, then creating it again.")
            current = kube.watch_until(NAMESPACE, name, None, lambda ns: ns is None, timeout_s)
            if current is not None:
                raise DeployFailed(
                    f"Namespace {name} was still being deleted after {span(timeout_s)}.",
                    f"Something blocks its deletion (`kubectl get namespace {name} -o yaml`: "
                    "status.conditions name the finalizers or resources left); deploy again "
                    "once it is gone, or deploy into another namespace (-n).",
                    code="namespace-terminating", resource=f"Namespace/{name}",
                    reason="Terminating",
                    commands=[f"kubectl get namespace {name} -o yaml"])
        if current is not None:
            renewed = created_by_tool(current)
            if renewed:
                renew_namespace(kube, config)
            return ObjectReport(kind="Namespace", name=name, action="unchanged", ready=True,
                                reason="expiry renewed" if renewed else "", api_version="v1")
    manifest = namespace_manifest(config, detect_branch(config), detect_commit(config),
                                  now=utc_now())
    with cluster_errors(kube, f"creating namespace {name}", name):
        try:
            kube.create(NAMESPACE, manifest)
        except ApiError as exc:
            if exc.status != 409:  # created concurrently by another deploy: fine
                raise
            return ObjectReport(kind="Namespace", name=name, action="unchanged", ready=True,
                                api_version="v1")
        wait_default_serviceaccount(kube, name)
    return ObjectReport(kind="Namespace", name=name, action="created", ready=True,
                        api_version="v1")


def renew_namespace(kube: Kube, config: Config) -> None:
    """Record this deploy on a namespace the tool created (last deploy, TTL, commit), so
    `gc` counts its idle time from now: a branch in use is never collected.

    A merge patch: it sets these annotations and leaves every other one (and a TTL this
    deploy does not name) as it is.
    """
    patch = {"metadata": {"annotations": renewal_annotations(config, detect_commit(config),
                                                                now=utc_now())}}
    path = NAMESPACE.path(None, config.namespace)
    with cluster_errors(kube, f"renewing namespace {config.namespace}", config.namespace):
        with_retries(lambda: kube.request("PATCH", path, body=patch,
                                          content_type="application/merge-patch+json"))


def wait_default_serviceaccount(kube: Kube, namespace: str, timeout: float = 30.0) -> None:
    """Pods are refused until the `default` ServiceAccount exists in a new namespace."""
    kube.watch_until(SERVICE_ACCOUNT, "default", namespace, lambda sa: sa is not None, timeout)


def namespace_exists(kube: Kube, name: str) -> bool:
    """Whether the namespace exists (True when we may not read namespaces: the access
    review that follows decides)."""
    with cluster_errors(kube, f"reading namespace {name}", name):
        try:
            return with_retries(lambda: kube.read(NAMESPACE, name)) is not None
        except ApiError as exc:
            if exc.status == 403:
                return True
            raise
