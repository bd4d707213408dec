"""Report stage: the JSON result document and the one formatter of errors.

`Result.to_json()` is what `--output json` prints (the design's shape, version 1);
`print_error` is the only place a PalessError becomes text for a person.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import IO, Any

from paless_deploy.core.errors import PalessError

REPORT_VERSION = 1
RESULT_SUCCESS = "success"
RESULT_FAILED = "failed"
RESULT_ERROR = "error"


@dataclass(frozen=True)
class ObjectReport:
    """One applied object: action is created/configured/unchanged/replaced/pruned."""

    kind: str
    name: str
    action: str
    ready: bool | None = None
    reason: str = ""


@dataclass(frozen=True)
class PhaseReport:
    """One phase of the apply: when it started, how long it took, its objects."""

    name: str
    started_at: str  # ISO 8601, UTC
    duration_s: float
    objects: list[ObjectReport] = field(default_factory=list)


@dataclass(frozen=True)
class ErrorReport:
    """One error of the document: cause, fix and the commands to look further."""

    code: str
    resource: str = ""
    reason: str = ""
    message: str = ""
    hint: str = ""
    commands: list[str] = field(default_factory=list)

    @classmethod
    def from_error(cls, error: PalessError) -> ErrorReport:
        """From any PalessError; engine errors may carry resource/reason/commands."""
        return cls(
            code=error.code,
            resource=str(getattr(error, "resource", "") or ""),
            reason=str(getattr(error, "reason", "") or ""),
            message=error.message,
            hint=error.hint,
            commands=list(getattr(error, "commands", []) or []),
        )


@dataclass
class Result:
    """The result document of one command (`--output json` prints exactly this)."""

    command: str
    result: str = RESULT_SUCCESS
    exit_code: int = 0
    namespace: str | None = None
    overlay: str | None = None
    duration_s: float = 0.0
    images: list[Any] = field(default_factory=list)  # images.ImageResult
    phases: list[PhaseReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[ErrorReport] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # command-specific keys
    version: int = REPORT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The document as plain data, in the design's key order."""
        doc: dict[str, Any] = {
            "version": self.version,
            "command": self.command,
            "result": self.result,
            "exit_code": self.exit_code,
            "namespace": self.namespace,
            "overlay": self.overlay,
            "duration_s": round(self.duration_s, 3),
            "images": [_plain(i) for i in self.images],
            "phases": [_plain(p) for p in self.phases],
            "warnings": list(self.warnings),
            "errors": [_plain(e) for e in self.errors],
        }
        for key, value in self.extra.items():
            doc.setdefault(key, value)
        return doc

    def to_json(self) -> str:
        """The document as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def fail_with(self, error: PalessError) -> Result:
        """Record an error: result "error" (or "failed" for exit 1), its exit code."""
        self.result = RESULT_FAILED if error.exit_code == 1 else RESULT_ERROR
        self.exit_code = error.exit_code
        self.errors.append(ErrorReport.from_error(error))
        return self


def _plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


_TITLES = {
    1: "Failed",
    2: "Configuration or usage error",
    3: "Image build or push failed",
    4: "Cluster unreachable or not authorised",
    5: "Namespace locked by another deploy",
    130: "Interrupted",
}


def error_text(error: PalessError) -> str:
    """The error as one plain paragraph: cause, then fix."""
    text = error.message.rstrip()
    if error.hint:
        text = f"{text}\n{error.hint}" if "\n" in text else f"{text} {error.hint}"
    return text


def print_error(error: PalessError, *, color: bool, terminal: bool,
                stream: IO[str] | None = None, title: str | None = None) -> None:
    """Show an error to a person: a rich Panel on a terminal, plain text otherwise."""
    stream = stream if stream is not None else sys.stderr
    title = title or f"{_TITLES.get(error.exit_code, 'Error')} (exit {error.exit_code})"
    if not terminal:
        print(f"error: {error_text(error)}", file=stream, flush=True)
        return
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    console = Console(file=stream, no_color=not color, force_terminal=True, highlight=False)
    body = Text(error.message.rstrip())
    if error.hint:
        body.append("\n\nFix: ", style="bold")
        body.append(error.hint)
    console.print(Panel(body, title=title, title_align="left",
                        border_style="red" if color else "none"))


def _stdout_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]],
                 color: bool) -> None:
    """A table on stdout: rich on a terminal, aligned plain columns otherwise."""
    if _stdout_terminal():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left", header_style="bold")
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console(no_color=not color, highlight=False).print(table)
        return
    widths = [max([len(h)] + [len(str(r[i])) for r in rows]) for i, h in enumerate(headers)]
    print(f"{title}:")
    print("  " + "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip())
    for row in rows:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    sys.stdout.flush()


def scrub(text: str, secrets: Sequence[str], marker: str = "<redacted>") -> str:
    """Text we did not write (container logs) with every known secret value replaced.

    Longest values first, so a secret containing another is replaced whole.
    """
    for value in sorted(set(secrets), key=len, reverse=True):
        if value:
            text = text.replace(value, marker)
    return text
