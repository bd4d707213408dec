"""What a preview may use: a ResourceQuota and a LimitRange per branch namespace.

From configuration variables (PALESS_QUOTA_*, PALESS_LIMIT_*): rendered in branch mode
(with the defaults below where a variable is unset) or, outside branch mode, only when
at least one of them is set. They land in the config phase like any quota.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.errors import ConfigError, shown
from paless_deploy.core.manifests.quantities import parse_quantity

OBJECT_NAME = "paless-preview"


@dataclass(frozen=True)
class Limit:
    """One variable: the field it fills, and its default in branch mode."""

    variable: str
    field: str
    branch_default: str
    integer: bool = False  # a count (pods), not a quantity


# ResourceQuota spec.hard: enough for the Paless stack with its rolling updates, far
# below what its autoscalers may reach (web 10, worker 4).
QUOTA: tuple[Limit, ...] = (
    Limit("PALESS_QUOTA_CPU", "requests.cpu", "8"),
    Limit("PALESS_QUOTA_MEMORY", "requests.memory", "16Gi"),
    Limit("PALESS_QUOTA_STORAGE", "requests.storage", "50Gi"),
    Limit("PALESS_QUOTA_PODS", "pods", "40", integer=True),
)
# LimitRange: what a container that says nothing gets (request and limit alike).
CONTAINER_DEFAULTS: tuple[Limit, ...] = (
    Limit("PALESS_LIMIT_CPU", "cpu", "500m"),
    Limit("PALESS_LIMIT_MEMORY", "memory", "512Mi"),
)
VARIABLES = tuple(limit.variable for limit in (*QUOTA, *CONTAINER_DEFAULTS))


def _value(limit: Limit, value: str | None, branch: bool, source: str) -> str | None:
    text = (value or "").strip()
    if not text:
        return limit.branch_default if branch else None
    try:
        if limit.integer:
            if not text.isdigit():
                raise ValueError(text)
        else:
            parse_quantity(text)
    except ValueError:
        raise ConfigError(
            f"{limit.variable} ({source}) is {shown(value)}, not a "
            + ("whole number." if limit.integer else "Kubernetes quantity."),
            f"Write it as Kubernetes does, e.g. {limit.variable}={limit.branch_default}.",
            code="bad-value") from None
    return text


def preview_objects(value: Callable[[str], str | None], source: Callable[[str], str],
                    branch_mode: bool) -> list[JsonDict]:
    """The ResourceQuota and LimitRange to render (none outside branch mode when no variable
    is set); ConfigError naming the variable for a value Kubernetes would refuse."""
    hard = {limit.field: v for limit in QUOTA
            if (v := _value(limit, value(limit.variable), branch_mode,
                            source(limit.variable))) is not None}
    defaults = {limit.field: v for limit in CONTAINER_DEFAULTS
                if (v := _value(limit, value(limit.variable), branch_mode,
                                source(limit.variable))) is not None}
    objects: list[JsonDict] = []
    why = {"paless.io/rendered-because": "branch mode" if branch_mode else "PALESS_QUOTA_* / "
           "PALESS_LIMIT_* set"}
    if hard:
        objects.append({"apiVersion": "v1", "kind": "ResourceQuota",
                        "metadata": {"name": OBJECT_NAME, "annotations": dict(why)},
                        "spec": {"hard": hard}})
    if defaults:
        objects.append({"apiVersion": "v1", "kind": "LimitRange",
                        "metadata": {"name": OBJECT_NAME, "annotations": dict(why)},
                        "spec": {"limits": [{"type": "Container", "default": dict(defaults),
                                             "defaultRequest": dict(defaults)}]}})
    return objects


def quota_summary(objects: list[JsonDict]) -> Mapping[str, str]:
    """field -> value of the rendered quota (for the report)."""
    for obj in objects:
        if obj.get("kind") == "ResourceQuota":
            return dict((obj.get("spec") or {}).get("hard") or {})
    return {}
