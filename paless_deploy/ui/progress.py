"""Per-item progress on stderr: rich bars on a terminal, timestamped lines otherwise.

Used by the image stage (one line per image); thread-safe, since builds and
pushes run in parallel worker threads.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Self

from paless_deploy.core.reporting.progress import ImageProgress, NullProgress
from paless_deploy.ui.console import stderr_console

if TYPE_CHECKING:
    from paless_deploy.core.configuration.context import ConsoleSettings


class PlainProgress(ImageProgress):
    """One timestamped line per state change; for CI logs and pipes."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()
        self._last: dict[str, str] = {}

    def _line(self, item: str, text: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._lock:
            if self._last.get(item) == text:
                return
            self._last[item] = text
            print(f"{stamp} {item}: {text}", file=self._stream, flush=True)

    def add(self, item: str, title: str) -> None:
        self._line(item, title)

    def update(self, item: str, text: str, completed: int | None = None,
               total: int | None = None) -> None:
        # Byte counts change on every chunk; print only the state text.
        self._line(item, text)

    def finish(self, item: str, text: str, ok: bool) -> None:
        self._line(item, text if ok else f"FAILED: {text}")


class RichProgress(ImageProgress):
    """A rich Progress with one row per item, on stderr."""

    def __init__(self, settings: ConsoleSettings) -> None:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[item]}[/bold]"),
            BarColumn(bar_width=24),
            TextColumn("{task.description}"),
            console=stderr_console(settings),
            transient=False,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.stop()

    def add(self, item: str, title: str) -> None:
        self._tasks[item] = self._progress.add_task(title, item=item, total=None)

    def update(self, item: str, text: str, completed: int | None = None,
               total: int | None = None) -> None:
        task = self._tasks.get(item)
        if task is None:
            return
        fields: dict[str, Any] = {"description": text[:80]}
        if total:
            fields.update(total=total, completed=completed or 0)
        self._progress.update(task, **fields)

    def finish(self, item: str, text: str, ok: bool) -> None:
        task = self._tasks.get(item)
        if task is None:
            return
        mark = "[green]done[/green]" if ok else "[red]failed[/red]"
        self._progress.update(task, description=f"{mark} {text}", total=1, completed=1)


def make_progress(settings: ConsoleSettings) -> ImageProgress:
    """The progress display fitting the console: none, rich or plain lines."""
    if settings.quiet:
        return NullProgress()
    if settings.terminal:
        return RichProgress(settings)
    return PlainProgress()
