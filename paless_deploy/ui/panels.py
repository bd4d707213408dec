"""Panels for people: an error (cause, fix) as a rich Panel on a terminal, a paragraph otherwise.

Everything goes to stderr, so stdout can carry a JSON document or YAML untouched.
"""

from __future__ import annotations

import sys
from typing import IO

from paless_deploy.core.errors import PalessError, readable
from paless_deploy.core.reporting.report import error_text

_TITLES = {
    1: "Failed",
    2: "Configuration or usage error",
    3: "Image build or push failed",
    4: "Cluster unreachable or not authorised",
    5: "Namespace locked by another deploy",
    130: "Interrupted",
}


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
    body = Text(readable(error.message.rstrip()))
    if error.hint:
        body.append("\n\nFix: ", style="bold")
        body.append(readable(error.hint))
    console.print(Panel(body, title=title, title_align="left",
                        border_style="red" if color else "none"))
