"""Namespaces this tool creates: their label and gc annotations, and when they expire.

A namespace carrying `app.kubernetes.io/managed-by=paless-deploy` was created by the
tool and may be deleted whole by `destroy` and `gc`; one without it is never labelled
afterwards, so a namespace someone else made can never become deletable by accident.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from paless_deploy.core import labels
from paless_deploy.core.apitypes import ApiObject, JsonDict
from paless_deploy.core.durations import parse_duration, span
from paless_deploy.core.errors import ConfigError

if TYPE_CHECKING:
    from paless_deploy.core.config import Config

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


def ttl_value(config: Config) -> str | None:
    """PALESS_TTL as written (checked to be a duration), None when unset."""
    value = (config.value("PALESS_TTL") or "").strip()
    if not value:
        return None
    parse_duration(value, f"PALESS_TTL ({config.settings['PALESS_TTL'].describe_source()})")
    return value


def commit_from_environment(environ: Mapping[str, str]) -> str | None:
    """The commit CI says it deploys (GITHUB_SHA, CI_COMMIT_SHA, GIT_COMMIT), if any."""
    for variable in COMMIT_VARIABLES:
        value = environ.get(variable, "").strip()
        if value:
            return value
    return None


def namespace_manifest(config: Config, branch: str | None, commit: str | None, *,
                       now: dt.datetime | None = None) -> JsonDict:
    """The Namespace object the tool creates: managed-by label, gc annotations."""
    annotations = {labels.CREATED_AT: rfc3339(now or dt.datetime.now(dt.UTC))}
    if branch:
        annotations[labels.BRANCH] = branch[:MAX_ANNOTATION]
    if commit:
        annotations[labels.COMMIT] = commit
    ttl = ttl_value(config)
    if ttl:
        annotations[labels.TTL] = ttl
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": config.namespace,
            "labels": {labels.MANAGED_BY: labels.TOOL, labels.PART_OF: labels.PART_OF_VALUE},
            "annotations": annotations,
        },
    }


def created_by_tool(namespace: ApiObject) -> bool:
    """True for a Namespace object carrying our managed-by label."""
    return ((namespace.get("metadata") or {}).get("labels") or {}).get(
        labels.MANAGED_BY) == labels.TOOL


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
    annotations = annotations or {}
    born = parse_rfc3339(annotations.get(labels.CREATED_AT)) or created
    if born is None:
        return Expiry(False, "no creation time")
    age = (now - born).total_seconds()
    if older_than_s is not None and age > older_than_s:
        return Expiry(True, f"created {span(age)} ago, older than {span(older_than_s)}")
    ttl_text = (annotations.get(labels.TTL) or "").strip()
    if ttl_text:
        try:
            ttl = parse_duration(ttl_text, labels.TTL)
        except ConfigError:
            return Expiry(False, f"unreadable {labels.TTL} {ttl_text!r}")
        if age > ttl:
            return Expiry(True, f"ttl {ttl_text} expired {span(age - ttl)} ago")
        return Expiry(False, f"ttl {ttl_text} expires in {span(ttl - age)}")
    return Expiry(False, f"created {span(age)} ago" + (
        "" if older_than_s is not None else ", no ttl"))
