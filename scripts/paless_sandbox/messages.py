"""How the sandbox speaks: its one error type, its progress lines on stderr, log tails."""

from __future__ import annotations

import sys
from pathlib import Path


class SandboxError(Exception):
    """A step of the sandbox failed: names the component and its log."""


def say(msg: str) -> None:
    """One progress line on stderr (stdout is kept for `status` and `env`)."""
    print(f"[sandbox] {msg}", file=sys.stderr, flush=True)


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, for an error message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
