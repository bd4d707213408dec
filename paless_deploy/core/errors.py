"""Errors the CLI maps to exit codes and one-paragraph messages.

Every foreseeable failure is raised as one of these, carrying the cause (message), the
fix (hint), the documented exit code and, for the JSON report, the resource, the
Kubernetes reason and the commands to look further; the CLI formats them in one place.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paless_deploy.core.reporting.report import Result


SHOWN_CHARS = 60  # a value quoted in a message: at most this much of it
LONG_WORD = 200  # a run of characters without a space longer than this is cut in messages
LONG_TEXT = 8000  # a message longer than this is cut (a report of many objects stays whole)
_LONG_WORD = re.compile(rf"\S{{{LONG_WORD + 1},}}")


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A value quoted for a message, cut to `limit` characters (saying how long it was): a
    100 KB mistake is named, not echoed."""
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def readable(text: str) -> str:
    """A message cut to a readable length: runs of more than LONG_WORD characters without a
    space (a pasted value, a path, a token) and the text past LONG_TEXT characters."""
    text = _LONG_WORD.sub(lambda m: f"{m.group()[:SHOWN_CHARS]}...({len(m.group()):,} "
                          "characters)", text)
    return whole_words(text, LONG_TEXT)


def whole_words(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters cut at the last space before them (never in
    the middle of a word), saying how much was left out."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit + 1)
    cut = cut if cut > limit // 2 else limit
    return f"{text[:cut].rstrip()}... ({len(text) - cut:,} more characters)"


class ExitCode(IntEnum):
    """The documented exit codes (README, docs/architecture.md): ints to the shell and in the
    JSON report (`"exit_code": 1`), names in the code."""

    OK = 0
    FAILED = 1  # deployment failed; diff: changes present; doctor: a required check failed
    USAGE = 2  # usage or configuration error, safety refusals
    IMAGE = 3  # build or push failed, Docker or registry unreachable
    CLUSTER = 4  # cluster unreachable or not authorised
    LOCKED = 5  # another deploy holds the namespace lock
    INTERRUPTED = 130


class PalessError(Exception):
    """Base error: a message for the user, a hint naming the fix, an exit code."""

    exit_code: ExitCode = ExitCode.FAILED
    code: str = "error"

    def __init__(self, message: str, hint: str = "", *, code: str | None = None,
                 resource: str = "", reason: str = "", commands: Sequence[str] = (),
                 exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code
        if exit_code is not None:
            self.exit_code = exit_code
        self.resource = resource
        self.reason = reason
        self.commands: list[str] = list(commands)
        # What the command had done when it failed (images, phases): the CLI reports it
        # whole, so no exit path loses the run's history.
        self.report: Result | None = None

    def with_report(self, report: Result) -> PalessError:
        """This error, carrying the report of what was done before it."""
        self.report = report
        return self

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip() if self.hint else self.message


class ConfigError(PalessError):
    """Bad configuration, bad usage, or a refusal for safety (exit 2)."""

    exit_code = ExitCode.USAGE
    code = "config"


class BuildError(PalessError):
    """An image build or push failed, or Docker / the registry is unreachable (exit 3)."""

    exit_code = ExitCode.IMAGE
    code = "image"

    def __init__(self, message: str, hint: str = "", *, code: str | None = None,
                 app: str = "", commands: Sequence[str] = ()) -> None:
        super().__init__(message, hint, code=code, commands=commands)
        self.app = app  # the app whose image failed, when known

    @property
    def app(self) -> str:
        """The app whose image failed ("" when not known); setting it names the resource."""
        return self._app

    @app.setter
    def app(self, app: str) -> None:
        self._app = app
        if app and not self.resource:
            self.resource = f"image/{app}"


class ClusterError(PalessError):
    """The cluster is unreachable or refuses us (exit 4)."""

    exit_code = ExitCode.CLUSTER
    code = "cluster"


class DeployFailed(PalessError):
    """The deployment ran but did not become healthy (exit 1)."""

    exit_code = ExitCode.FAILED
    code = "deploy-failed"


class Refused(PalessError):
    """The API server refused an object of the manifests (a quota, a policy, an immutable
    field, an invalid value: `core.diagnosis.refusals`): exit 2 when found before anything
    was applied, 1 once other objects of the run were applied."""

    exit_code = ExitCode.USAGE
    code = "refused"


class LockHeld(PalessError):
    """Another deploy holds the namespace lock past the lock timeout (exit 5)."""

    exit_code = ExitCode.LOCKED
    code = "locked"


class Interrupted(PalessError):
    """Ctrl-C or SIGTERM (exit 130): the lock is released, the report names the cut phase."""

    exit_code = ExitCode.INTERRUPTED
    code = "interrupted"
