"""Events and timestamps as the rules read them: whose event, when, and what it said.

Both event shapes are read: core/v1 (`involvedObject`, `message`, `firstTimestamp`) and
events.k8s.io/v1 (`regarding`, `note`, `eventTime`, `series`). Rules import the module
(`eventlog.about(pod, events)`), their own `events` being the events given to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from paless_deploy.core.apitypes import ApiObject, JsonDict
from paless_deploy.core.manifests.objects import name_of, nested

# The event recorder's own prefix on aggregated events, not part of what happened.
_COMBINED = "(combined from similar events): "


def parse_time(text: str | None) -> datetime | None:
    """An API timestamp (RFC 3339) as an aware datetime, or None."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def age(since: str | None, now: datetime | None) -> float:
    """Seconds from `since` to `now`; infinite when either is unknown (judge on state alone)."""
    start = parse_time(since)
    if start is None or now is None:
        return float("inf")
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return (now - start).total_seconds()


def about(obj: ApiObject, events: Iterable[ApiObject]) -> list[JsonDict]:
    """The events about `obj` (core/v1 or events.k8s.io/v1 shape), oldest first."""
    uid = nested(obj, "metadata", "uid")
    kind, name = obj.get("kind"), name_of(obj)
    mine = []
    for event in events:
        about = event.get("involvedObject") or event.get("regarding") or {}
        if uid and about.get("uid"):
            if about.get("uid") == uid:
                mine.append(dict(event))
        elif about.get("kind") == kind and about.get("name") == name:
            mine.append(dict(event))
    return sorted(mine, key=lambda e: last_seen(e) or "")


def message(event: ApiObject) -> str:
    """What the event says (`message`, or `note` in the events.k8s.io shape)."""
    return str(event.get("message") or event.get("note") or "").strip()


def first_seen(event: ApiObject) -> str | None:
    """When the event was first seen."""
    return event.get("firstTimestamp") or event.get("eventTime") or event.get("lastTimestamp")


def last_seen(event: ApiObject) -> str | None:
    """When the event was last seen."""
    return (event.get("lastTimestamp") or nested(event, "series", "lastObservedTime")
            or event.get("eventTime") or event.get("firstTimestamp"))


def with_reason(events: Iterable[ApiObject], *reasons: str) -> list[JsonDict]:
    """The events whose reason is one of `reasons`, in the given order."""
    return [dict(e) for e in events if e.get("reason") in reasons]


def strip_combined(text: str) -> str:
    """`text` without the "(combined from similar events): " the recorder puts first."""
    return text.removeprefix(_COMBINED)


def unique_messages(events: Iterable[ApiObject], limit: int = 3) -> tuple[str, ...]:
    """Up to `limit` distinct "Reason: message" lines, newest first (as evidence)."""
    seen: list[str] = []
    for event in reversed(list(events)):  # newest first
        text = strip_combined(message(event))
        line = f"{event.get('reason')}: {text}" if event.get("reason") else text
        if text and line not in seen:
            seen.append(line)
        if len(seen) >= limit:
            break
    return tuple(seen)
