"""The one table printer: a rich Table on stdout, boxed on a terminal, plain columns off one.

Off a terminal (CI logs, pipes) the same table is drawn without box or colour and wide
enough that image tags and hints are never cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from rich.table import Table

from paless_deploy.ui.console import stdout_console


def table(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[object]], *,
          terminal: bool, color: bool = True) -> Table:
    """A Table renderable: boxed with bold headers on a terminal, bare columns otherwise."""
    from rich import box

    out = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD if terminal else None,
                header_style="bold" if color and terminal else "", pad_edge=False,
                show_edge=False)
    for header in headers:
        out.add_column(header.replace("_", " ").upper(), overflow="fold")
    for row in rows:
        out.add_row(*(str(cell) for cell in row))
    return out


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]],
                color: bool, stream: IO[str] | None = None) -> None:
    """Print one table on stdout (or `stream`)."""
    console = stdout_console(color, stream)
    console.print(table(title, headers, rows, terminal=console.is_terminal, color=color))
