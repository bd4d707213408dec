"""Reading API objects (camelCase JSON as the API server returns it) without tripping on gaps.

A missing or mistyped field reads as None, so rules over live objects never raise on a
half-written status.
"""

from __future__ import annotations

from collections.abc import Mapping

from paless_deploy.core.apitypes import ApiObject, JsonValue


def nested(obj: JsonValue, *keys: str) -> JsonValue:
    """obj[k1][k2]...; None as soon as a level is missing or not a mapping."""
    for key in keys:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def name_of(obj: ApiObject) -> str:
    """metadata.name, "" when missing."""
    return str(nested(obj, "metadata", "name") or "")


def namespace_of(obj: ApiObject) -> str:
    """metadata.namespace, "default" when missing (as kubectl reads it)."""
    return str(nested(obj, "metadata", "namespace") or "default")


def ref_of(obj: ApiObject) -> str:
    """"Kind/name", the way findings and messages name an object."""
    return f"{obj.get('kind', 'Object')}/{name_of(obj)}"


def condition(obj: ApiObject, kind: str) -> ApiObject | None:
    """The status condition of type `kind`, or None."""
    for cond in nested(obj, "status", "conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == kind:
            return cond
    return None


def whole_number(value: JsonValue, default: int) -> int:
    """An integer field of a manifest as written, `default` when absent or not a number
    (`replicas: "three"`: the server's dry run names that mistake, not a crash here)."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return default
