"""Consoles: stdout for a command's own output, stderr for progress and diagnostics.

Rich on a terminal; plain, uncoloured and wide off one (CI logs, pipes). NO_COLOR and
--no-color turn colour off everywhere.
"""

from __future__ import annotations

import sys
from typing import IO

from rich.console import Console

from paless_deploy.core.configuration.context import ConsoleSettings
from paless_deploy.ui.terminal import is_terminal

PLAIN_WIDTH = 200


def stdout_console(color: bool, stream: IO[str] | None = None) -> Console:
    """A Console for a command's own output: rich on a terminal, plain and wide otherwise."""
    stream = stream if stream is not None else sys.stdout
    terminal = is_terminal(stream)
    return Console(file=stream, no_color=not (color and terminal), highlight=False,
                   soft_wrap=not terminal, width=None if terminal else PLAIN_WIDTH,
                   force_terminal=terminal)


def stderr_console(settings: ConsoleSettings) -> Console:
    """A Console on stderr honouring the settings (progress, panels, warnings)."""
    return Console(stderr=True, no_color=not settings.color, force_terminal=settings.terminal,
                   highlight=False, soft_wrap=not settings.terminal)
