"""Comparing a live object with what an apply would make of it: equality, a diff text, and
whether a server-side apply would change anything at all.

Status and the bookkeeping fields every write changes are dropped; Secret values never
appear (not even hashed): a changed value shows as `<redacted: changed>`.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping

import yaml

from paless_deploy.core.apitypes import ApiObject, JsonDict, JsonValue

REDACTED = "<redacted>"
REDACTED_CHANGED = "<redacted: changed>"
_DROP_META = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid")
_SECRET_FIELDS = ("data", "stringData")


def comparable(obj: ApiObject | None) -> JsonDict | None:
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


def redacted_pair(live: JsonDict | None, planned: JsonDict | None
                  ) -> tuple[JsonDict | None, JsonDict | None]:
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


def _redact(obj: JsonDict | None) -> JsonDict | None:
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


# -- would an apply change anything? ---------------------------------------------------------


def apply_changes_nothing(live: ApiObject, body: ApiObject, manager: str) -> bool:
    """True when a server-side apply of `body` by `manager` would leave `live` as it is, so
    the request can be skipped; any doubt answers False (apply as usual).

    An apply sets the fields of `body` and removes the fields the manager owned before but
    no longer applies. It changes nothing when (1) every field of `body` already has its
    value in `live` (Secret `stringData` against the base64 `data` the server keeps), and
    (2) every field the manager owns (its Apply entry of `managedFields`) is in `body`.
    Lists must match item for item, so that an owned item's key (`k:{...}`, with the
    server's defaults such as a port's protocol) is found in `live` and read in `body`.
    A field someone else changed, removed or took over with another value fails (1): the
    apply runs and reports or corrects it.
    """
    entry = _apply_entry(live, manager, str(body.get("apiVersion") or ""))
    if entry is None:
        return False
    wanted = dict(body)
    if body.get("kind") == "Secret" and "stringData" in body:
        if not _secret_strings_match(live, body.get("stringData")):
            return False
        wanted.pop("stringData")
    return _contains(live, wanted) and _owned_in(entry.get("fieldsV1") or {}, body, live)


def _apply_entry(live: ApiObject, manager: str, api_version: str) -> ApiObject | None:
    entries = [e for e in (live.get("metadata") or {}).get("managedFields") or []
               if e.get("manager") == manager and e.get("operation") == "Apply"
               and not e.get("subresource")]
    if len(entries) != 1 or entries[0].get("apiVersion") != api_version:
        return None  # never applied by us, or in another version (other field names)
    entry: ApiObject = entries[0]
    return entry


def _secret_strings_match(live: ApiObject, strings: JsonValue) -> bool:
    import base64

    if not isinstance(strings, Mapping):
        return False
    data = live.get("data") or {}
    return all(isinstance(v, str) and data.get(k) == base64.b64encode(v.encode()).decode()
               for k, v in strings.items())


def _contains(live: JsonValue, want: JsonValue) -> bool:
    """Every field of `want` is in `live` with the same value; lists item for item."""
    if isinstance(want, Mapping):
        if not isinstance(live, Mapping):
            return False
        for key, value in want.items():
            if value is None:  # a null asks for no value: fine only if there is none
                if live.get(key) is not None:
                    return False
            elif key not in live or not _contains(live[key], value):
                return False
        return True
    if isinstance(want, list):
        return (isinstance(live, list) and len(live) == len(want)
                and all(_contains(a, b) for a, b in zip(live, want, strict=True)))
    if isinstance(want, bool) or isinstance(live, bool):
        return isinstance(want, bool) and isinstance(live, bool) and want is live
    return bool(live == want)


def _owned_in(fields: JsonValue, body: JsonValue, live: JsonValue) -> bool:
    """Every path of a FieldsV1 set is in `body`; list items are found by their key in
    `live` and read at the same index in `body` (the lists match item for item)."""
    import json

    if not isinstance(fields, Mapping):
        return False
    for key, inner in fields.items():
        if key == ".":
            continue
        prefix, _, rest = key.partition(":")
        if prefix == "f":
            if not isinstance(body, Mapping) or body.get(rest) is None:
                return False
            value, current = body[rest], live.get(rest) if isinstance(live, Mapping) else None
            if not inner and isinstance(value, (Mapping, list)):
                # owned whole (an atomic map, list or struct, or an empty one): the apply
                # replaces it, so it must be equal, not merely contained
                if not _equal(current, value):
                    return False
            elif not _owned_in(inner, value, current):
                return False
        elif prefix in ("k", "v") and isinstance(body, list) and isinstance(live, list) \
                and len(body) == len(live):
            try:
                wanted = json.loads(rest)
            except ValueError:
                return False
            index = next((i for i, item in enumerate(live) if _is_item(item, wanted, prefix)),
                         None)
            if index is None or not _owned_in(inner, body[index], live[index]):
                return False
        else:
            return False
    return True


def _equal(live: JsonValue, want: JsonValue) -> bool:
    return _contains(live, want) and _contains(want, live)


def _is_item(item: JsonValue, wanted: JsonValue, prefix: str) -> bool:
    if prefix == "v":
        return bool(item == wanted)
    return (isinstance(item, Mapping) and isinstance(wanted, Mapping)
            and all(item.get(k) == v for k, v in wanted.items()))
