"""Plain lines for people: what commands and stages say outside the live views (a
command's own text, warnings, a yes/no question), on stdout or stderr.

The one way to the terminal for them: tests/unit/test_layers.py refuses print() and
sys.stdout/stderr outside ui. Written through click, as the CLI writes.
"""

from __future__ import annotations

import click


def say(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """One line (or `text` as it is, `nl=False`) on stdout, or stderr with `err`."""
    click.echo(text, err=err, nl=nl)


def warn(text: str) -> None:
    """`warning: text` on stderr."""
    say(f"warning: {text}", err=True)


def confirm(question: str) -> bool:
    """Ask on stderr; True only for an explicit yes (the default is no)."""
    return click.confirm(question, default=False, err=True)
