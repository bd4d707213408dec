"""Durations: reading `90`, `90s`, `5m`, `1h`, `3d`, and writing them back for people.

One definition for flags (--timeout), variables (PALESS_TTL, PALESS_LOCK_TIMEOUT) and
annotations (paless.io/failure-grace, paless.io/ttl), and for every "3m ago" in messages.
"""

from __future__ import annotations

import re

from paless_deploy.core.errors import ConfigError, shown

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, what: str = "duration", *, allow_zero: bool = False) -> float:
    """Seconds in `90`, `90s`, `5m`, `1h` or `3d`; ConfigError naming `what` otherwise.

    Zero is refused unless `allow_zero`: a deadline of 0 would fail every run after it
    changed the cluster.
    """
    match = _DURATION.match(str(text))
    if not match:
        raise ConfigError(
            f"{what}: {shown(text)} is not a duration.",
            "Write a number of seconds or a number with a unit: 90, 90s, 5m, 1h, 3d.",
            code="bad-duration")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0 and not allow_zero:
        raise ConfigError(f"{what}: {shown(text)} is zero.",
                          "Give a positive duration, e.g. 90s, 5m, 1h.", code="bad-duration")
    return seconds


def span(seconds: float) -> str:
    """A duration in the largest whole unit: 90 -> 1m, 7200 -> 2h, 259200 -> 3d."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def short(seconds: float) -> str:
    """Seconds below two minutes, else minutes with one decimal: 90 -> 90s, 150 -> 2.5m."""
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.1f}m"
