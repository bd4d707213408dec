"""Namespaces this tool creates: their label and gc annotations, and when they expire.

A namespace carrying `app.kubernetes.io/managed-by=paless-deploy` was created by the
tool and may be deleted whole by `destroy` and `gc`; one without it is never labelled
afterwards, so a namespace someone else made can never become deletable by accident.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paless_deploy.core.errors import ConfigError
from paless_deploy.core.report import ObjectReport

MANAGED_BY = "app.kubernetes.io/managed-by"
TOOL = "paless-deploy"
BRANCH = "paless.io/branch"
COMMIT = "paless.io/commit"
CREATED_AT = "paless.io/created-at"
TTL = "paless.io/ttl"
COMMIT_VARIABLES = ("GITHUB_SHA", "CI_COMMIT_SHA", "GIT_COMMIT")
MAX_ANNOTATION = 253


def rfc3339(moment: dt.datetime) -> str:
    """`2025-05-01T12:00:00Z`: RFC 3339, UTC, whole seconds."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str | None) -> dt.datetime | None:
    """A timezone-aware datetime, or None when absent or unreadable."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip())  # 3.11 reads "Z"
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def ttl_value(config: Any) -> str | None:
    """PALESS_TTL as written (checked to be a duration), None when unset."""
    from paless_deploy.core.config import parse_duration

    value = (config.value("PALESS_TTL") or "").strip()
    if not value:
        return None
    parse_duration(value, f"PALESS_TTL ({config.settings['PALESS_TTL'].describe_source()})")
    return value


def namespace_manifest(config: Any, branch: str | None, commit: str | None, *,
                       now: dt.datetime | None = None) -> dict[str, Any]:
    """The Namespace object the tool creates: managed-by label, gc annotations."""
    annotations = {CREATED_AT: rfc3339(now or dt.datetime.now(dt.UTC))}
    if branch:
        annotations[BRANCH] = branch[:MAX_ANNOTATION]
    if commit:
        annotations[COMMIT] = commit
    ttl = ttl_value(config)
    if ttl:
        annotations[TTL] = ttl
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": config.namespace,
            "labels": {MANAGED_BY: TOOL, "app.kubernetes.io/part-of": "paless"},
            "annotations": annotations,
        },
    }


def detect_commit(project_dir: Path, environ: Mapping[str, str] = os.environ) -> str | None:
    """The commit being deployed: CI variables first, else `git rev-parse HEAD`; None if
    neither tells (no git, not a checkout, no commits)."""
    for variable in COMMIT_VARIABLES:
        value = environ.get(variable, "").strip()
        if value:
            return value
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def detect_branch(config: Any, environ: Mapping[str, str] = os.environ) -> str | None:
    """The branch in branch mode, else the checkout's branch if there is one."""
    if config.branch:
        return str(config.branch)
    from paless_deploy.core.branch import current_branch

    try:
        return current_branch(environ, config.project_dir)
    except ConfigError:
        return None


def ensure_namespace(kube: Any, config: Any) -> ObjectReport:
    """The namespace phase: create the namespace (labelled, annotated) when absent.

    An existing namespace is left exactly as it is ("unchanged"): its created-at stays
    the first deploy's, and a namespace the tool did not create never gets the label.
    """
    from kubernetes.client.exceptions import ApiException

    from paless_deploy.adapters.kube import cluster_errors, with_retries

    name = config.namespace
    with cluster_errors(kube, f"reading namespace {name}", name):
        if with_retries(lambda: kube.get(f"/api/v1/namespaces/{name}")) is not None:
            return ObjectReport(kind="Namespace", name=name, action="unchanged", ready=True)
    manifest = namespace_manifest(config, detect_branch(config),
                                  detect_commit(config.project_dir))
    with cluster_errors(kube, f"creating namespace {name}", name):
        try:
            kube.request("POST", "/api/v1/namespaces", body=manifest)
        except ApiException as exc:
            if exc.status != 409:  # created concurrently by another deploy: fine
                raise
            return ObjectReport(kind="Namespace", name=name, action="unchanged", ready=True)
    return ObjectReport(kind="Namespace", name=name, action="created", ready=True)


@dataclass(frozen=True)
class Expiry:
    """Whether a managed namespace is due for gc, and why (for the report)."""

    expired: bool
    reason: str


def namespace_expiry(annotations: Mapping[str, str] | None, created: dt.datetime | None,
                     older_than_s: float | None, now: dt.datetime) -> Expiry:
    """gc's rule: expired when older than `older_than_s`, or past its own `paless.io/ttl`.

    Age counts from `paless.io/created-at`, else the server's creationTimestamp
    (`created`). An unreadable TTL never expires a namespace (it is reported instead).
    """
    from paless_deploy.core.config import parse_duration

    annotations = annotations or {}
    born = parse_rfc3339(annotations.get(CREATED_AT)) or created
    if born is None:
        return Expiry(False, "no creation time")
    age = (now - born).total_seconds()
    if older_than_s is not None and age > older_than_s:
        return Expiry(True, f"created {_span(age)} ago, older than {_span(older_than_s)}")
    ttl_text = (annotations.get(TTL) or "").strip()
    if ttl_text:
        try:
            ttl = parse_duration(ttl_text, TTL)
        except ConfigError:
            return Expiry(False, f"unreadable {TTL} {ttl_text!r}")
        if age > ttl:
            return Expiry(True, f"ttl {ttl_text} expired {_span(age - ttl)} ago")
        return Expiry(False, f"ttl {ttl_text} expires in {_span(ttl - age)}")
    return Expiry(False, f"created {_span(age)} ago" + (
        "" if older_than_s is not None else ", no ttl"))


def _span(seconds: float) -> str:
    """A duration in the largest whole unit: 90 -> 1m, 7200 -> 2h, 259200 -> 3d."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
