"""`status` drawn: the namespace's tables and its health line, once or live.

The rows come from core.diagnosis.status (the same as the JSON document); the command
(commands.status) reads the cluster and says when something changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.text import Text

from paless_deploy.core.diagnosis.status import TABLES
from paless_deploy.ui.tables import stdout_console, table

if TYPE_CHECKING:
    from paless_deploy.core.diagnosis.status import Status


def status_renderable(st: Status, color: bool, terminal: bool) -> RenderableType:
    """The tables and the health line as one renderable (the one table style)."""
    parts: list[RenderableType] = []
    for title, attr, cols in TABLES:
        rows = getattr(st, attr)
        if not rows:
            continue
        parts.append(table(title, cols, [[r.get(c, "") for c in cols] for r in rows],
                           terminal=terminal, color=color))
        parts.append(Text(""))
    style = ("green" if st.healthy else "red") if color else ""
    parts.append(Text(f"{st.namespace}: {st.health}", style=style))
    return Group(*parts)


def show_status(st: Status, color: bool) -> None:
    """The status on stdout."""
    console = stdout_console(color)
    console.print(status_renderable(st, color, console.is_terminal))


def live_status(read: Callable[[], Status], changed: Callable[[], bool], color: bool) -> None:
    """The status on stdout, drawn again from `read()` each time `changed()` (which
    blocks until something changed or a while passed) says so; until interrupted."""
    from rich.live import Live

    console = stdout_console(color)

    def draw() -> RenderableType:
        return status_renderable(read(), color, console.is_terminal)

    with Live(draw(), console=console, auto_refresh=False) as live:
        while True:
            if changed():
                live.update(draw(), refresh=True)
