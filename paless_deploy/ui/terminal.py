"""What the terminal is: whether a stream is one, and the console settings it implies.

Kept apart from ui.console so that the CLI can ask without importing rich (`--help`
stays fast).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import IO

from paless_deploy.core.configuration.context import ConsoleSettings


def is_terminal(stream: IO[str]) -> bool:
    """True when `stream` is a terminal (False for pipes, files and closed streams)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def detect_console(*, no_color: bool = False, quiet: bool = False, verbosity: int = 0,
                   stream: IO[str] | None = None, ci: str = "none",
                   environ: Mapping[str, str] | None = None) -> ConsoleSettings:
    """Settings for the current process (stderr, unless `stream`): NO_COLOR and
    --no-color disable colour."""
    terminal = is_terminal(stream if stream is not None else sys.stderr)
    environ = os.environ if environ is None else environ
    color = terminal and not no_color and "NO_COLOR" not in environ
    return ConsoleSettings(color=color, terminal=terminal, quiet=quiet, verbosity=verbosity,
                           ci=ci)


def stdin_is_terminal() -> bool:
    """True when a person can answer on stdin (False for pipes, CI, closed stdin)."""
    return is_terminal(sys.stdin)
