"""The one place the core says `Any`: JSON as the API server or a manifest has it.

API objects are read as the server's own camelCase JSON; their fields are whatever JSON
holds. Everything else in the core is typed (mypy runs the core with
disallow_any_explicit; this module is its one documented exception).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

JsonValue: TypeAlias = Any  # any JSON value: a field of an object
ApiObject: TypeAlias = Mapping[str, Any]  # an object as read (never written through)
JsonDict: TypeAlias = dict[str, Any]  # an object or document we build or copy
