"""Comparing a live object with what an apply would make of it: equality and a diff text.

Status and the bookkeeping fields every write changes are dropped; Secret values never
appear (not even hashed): a changed value shows as `<redacted: changed>`.
"""

from __future__ import annotations

import copy
import difflib

import yaml

from paless_deploy.core.apitypes import ApiObject

REDACTED = "<redacted>"
REDACTED_CHANGED = "<redacted: changed>"
_DROP_META = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid")
_SECRET_FIELDS = ("data", "stringData")


def comparable(obj: ApiObject | None) -> dict | None:
    """The object without status and the fields every write changes (values untouched)."""
    if obj is None:
        return None
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in _DROP_META:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop("deployment.kubernetes.io/revision", None)
    if not annotations:
        meta.pop("annotations", None)
    return out


def same(live: ApiObject | None, planned: ApiObject | None) -> bool:
    """True when applying would change nothing a person cares about."""
    return comparable(live) == comparable(planned)


def redacted_pair(live: dict | None, planned: dict | None) -> tuple[dict | None, dict | None]:
    """Both sides with Secret values replaced: equal values by REDACTED on both sides, a
    value that changes by REDACTED_CHANGED on the planned side."""
    if not live or not planned or planned.get("kind") != "Secret":
        return _redact(live), _redact(planned)
    live, planned = copy.deepcopy(live), copy.deepcopy(planned)
    for field in _SECRET_FIELDS:
        old, new = live.get(field) or {}, planned.get(field) or {}
        if field in live:
            live[field] = {k: REDACTED for k in old}
        if field in planned:
            planned[field] = {k: REDACTED if old.get(k) == v else REDACTED_CHANGED
                              for k, v in new.items()}
    return live, planned


def _redact(obj: dict | None) -> dict | None:
    if not obj or obj.get("kind") != "Secret":
        return obj
    obj = copy.deepcopy(obj)
    for field in _SECRET_FIELDS:
        if field in obj:
            obj[field] = {k: REDACTED for k in obj[field] or {}}
    return obj


def unified(ref: str, live: ApiObject | None, planned: ApiObject | None) -> str:
    """A unified diff of what would change ('' when nothing would); Secret values redacted."""
    a_obj, b_obj = redacted_pair(comparable(live), comparable(planned))
    a = yaml.safe_dump(a_obj, sort_keys=True).splitlines(keepends=True) if a_obj else []
    b = yaml.safe_dump(b_obj, sort_keys=True).splitlines(keepends=True) if b_obj else []
    if a == b:
        return ""
    return "".join(difflib.unified_diff(a, b, fromfile=f"live/{ref}", tofile=f"planned/{ref}"))
