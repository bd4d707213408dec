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

from paless_deploy.core.apitypes import ApiObject, JsonDict
from paless_deploy.core.configuration.durations import parse_duration, span
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.manifests import labels

if TYPE_CHECKING:
    from paless_deploy.core.configuration.config import Config

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
                       now: dt.datetime) -> JsonDict:
    """The Namespace object the tool creates: managed-by label, gc annotations."""
    created = rfc3339(now)
    annotations = {labels.CREATED_AT: created, labels.DEPLOYED_AT: created}
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


def renewal_annotations(config: Config, commit: str | None, *,
                        now: dt.datetime) -> dict[str, str]:
    """What every `all`/`deploy` writes on a namespace the tool created: the time of this
    deploy (gc counts idle time from it), the TTL from PALESS_TTL when set, the commit."""
    annotations = {labels.DEPLOYED_AT: rfc3339(now)}
    ttl = ttl_value(config)
    if ttl:
        annotations[labels.TTL] = ttl
    if commit:
        annotations[labels.COMMIT] = commit
    return annotations


@dataclass(frozen=True)
class Expiry:
    """Whether a managed namespace is due for gc, and why (for the report)."""

    expired: bool
    reason: str


def namespace_expiry(annotations: Mapping[str, str] | None, created: dt.datetime | None,
                     older_than_s: float | None, now: dt.datetime, *,
                     namespace_labels: Mapping[str, str] | None = None) -> Expiry:
    """gc's rule: a namespace labelled `paless.io/keep=true` never expires; another one
    expires when idle longer than `older_than_s`, or when its own `paless.io/ttl` ran out.

    Idle time counts from the last deploy (`paless.io/deployed-at`, renewed by every
    `all`/`deploy`), else from `paless.io/created-at`, else from the server's
    creationTimestamp (`created`): a branch in use is never collected. An unreadable TTL
    never expires a namespace (it is reported instead).
    """
    if str((namespace_labels or {}).get(labels.KEEP, "")).strip().lower() == "true":
        return Expiry(False, f"labelled {labels.KEEP}=true")
    annotations = annotations or {}
    deployed = parse_rfc3339(annotations.get(labels.DEPLOYED_AT))
    born = parse_rfc3339(annotations.get(labels.CREATED_AT)) or created
    last = deployed or born
    if last is None:
        return Expiry(False, "no creation time")
    idle = (now - last).total_seconds()
    since = f"last deployed {span(idle)} ago" if deployed else f"created {span(idle)} ago"
    if older_than_s is not None and idle > older_than_s:
        return Expiry(True, f"{since}, idle longer than {span(older_than_s)}")
    ttl_text = (annotations.get(labels.TTL) or "").strip()
    if ttl_text:
        try:
            ttl = parse_duration(ttl_text, labels.TTL)
        except ConfigError:
            return Expiry(False, f"unreadable {labels.TTL} {ttl_text!r}")
        if idle > ttl:
            return Expiry(True, f"ttl {ttl_text} expired {span(idle - ttl)} ago ({since})")
        return Expiry(False, f"ttl {ttl_text} expires in {span(ttl - idle)} ({since})")
    return Expiry(False, since + ("" if older_than_s is not None else ", no ttl"))
