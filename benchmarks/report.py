"""Results: medians of the samples, ratios against the baselines, targets met or not.

Printed as a markdown table (the README's Performance section is a copy of it) or as one
JSON document with every sample.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass

HEADER = "| measurement | paless-deploy | baseline | ratio | target | met? |"


@dataclass(frozen=True)
class Row:
    """One line of the table: our median, the baseline's, their ratio and the target."""

    measurement: str
    paless_deploy_s: float | None  # (in `unit`; seconds unless said)
    baseline_s: float | None
    baseline: str  # what the baseline is
    ratio: float | None  # paless-deploy / baseline
    target: str
    met: bool | None  # None: not measured
    unit: str = "s"  # "s", "MB" or "ms/object"
    ours_note: str = ""  # said after our figure (e.g. "exit 1, names the cause")
    baseline_note: str = ""  # said after the baseline's name


def median(samples: Sequence[float | None]) -> float | None:
    """Median of the samples that were measured; None when none was."""
    measured = [s for s in samples if s is not None]
    return statistics.median(measured) if measured else None


def compare(measurement: str, ours: Sequence[float | None],
            baseline: Sequence[float | None] | float,
            baseline_name: str, target: str, meets: Callable[[float, float], bool | None], *,
            unit: str = "s", ours_note: str = "", baseline_note: str = "") -> Row:
    """A row from our samples and the baseline's samples (or a constant baseline)."""
    mine = median(ours)
    theirs = float(baseline) if isinstance(baseline, (int, float)) else median(baseline)
    ratio = mine / theirs if mine is not None and theirs else None
    met = meets(mine, ratio) if mine is not None and ratio is not None else None
    return Row(measurement, mine, theirs, baseline_name, ratio, target, met, unit,
               ours_note, baseline_note)


def at_most(limit: float) -> Callable[[float, float], bool]:
    """Met when the ratio is at most `limit`."""
    return lambda _mine, ratio: ratio <= limit


def no_target(_mine: float, _ratio: float) -> bool | None:
    """A figure shown for context: no target, so neither met nor missed."""
    return None


def skipped(measurement: str, baseline_name: str, target: str) -> Row:
    """A row for a measurement this run did not make."""
    return Row(measurement, None, None, baseline_name, None, target, None)


def _seconds(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "–"
    if math.isinf(value):
        return "not reported"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "ms/object":
        return f"{value:.2f} ms/object"
    return f"{value:.3f} s" if value < 1 else f"{value:.2f} s"


def _ratio(value: float | None) -> str:
    if value is None:
        return "–"
    if math.isinf(value):
        return "∞"
    if 0 < value < 0.1:  # "0.00x" would hide how much faster
        return f"1/{1 / value:,.0f}"
    return f"{value:.2f}x"


def markdown(rows: Sequence[Row], notes: Sequence[str] = ()) -> str:
    """The table, then the notes as a list."""
    lines = [HEADER, "| --- | ---: | ---: | ---: | --- | --- |"]
    for row in rows:
        ratio = _ratio(row.ratio)
        met = {True: "yes", False: "**no**", None: "not measured"}[row.met]
        ours = _seconds(row.paless_deploy_s, row.unit) + (
            f" ({row.ours_note})" if row.ours_note else "")
        baseline = "; ".join(x for x in (row.baseline, row.baseline_note) if x)
        lines.append(f"| {row.measurement} | {ours} | {_seconds(row.baseline_s, row.unit)} "
                     f"({baseline}) | {ratio} | {row.target} | {met} |")
    if notes:
        lines.append("")
        lines.extend(f"- {note}" for note in notes)
    return "\n".join(lines)


def json_document(rows: Sequence[Row], samples: Mapping[str, object],
                  notes: Sequence[str], settings: Mapping[str, object]) -> str:
    """Every row, every sample and the notes as one JSON document."""
    return json.dumps({"version": 1, **settings, "rows": [_finite(asdict(r)) for r in rows],
                       "samples": dict(samples),
                       "notes": list(notes)}, indent=2, default=_plain)


def _finite(row: dict) -> dict:
    """JSON has no infinity: a missed measurement's median becomes null."""
    return {k: None if isinstance(v, float) and math.isinf(v) else v for k, v in row.items()}


def _plain(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        # a run's output stays out of the document (the table's notes say what matters)
        return {k: v for k, v in asdict(value).items() if k != "output"}
    raise TypeError(f"not JSON: {value!r}")
