"""What one invocation of the tool runs with: configuration, output mode, deadlines.

The CLI builds a RunContext once from the global options; every stage receives it. Pure:
the terminal is asked by the ui (ui.terminal), the clock by whoever needs the time left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paless_deploy.core.configuration.config import Config


@dataclass(frozen=True)
class ConsoleSettings:
    """How to talk to the user: colour, terminal or plain lines, verbosity.

    Progress and diagnostics always go to stderr, so that stdout can carry a JSON
    document (`--output json`) or rendered YAML untouched.
    """

    color: bool = True
    terminal: bool = False  # stderr is a terminal: live progress, panels
    quiet: bool = False
    verbosity: int = 0
    ci: str = "none"  # "github" or "gitlab": fold each phase in the CI log (--ci)


@dataclass(frozen=True)
class RunContext:
    """Everything a command needs besides its own options.

    Each command is `commands.<module>.run_<command>(run_ctx, **options)`; it returns a
    `core.report.Result` and raises `core.errors.PalessError` subclasses.
    """

    config: Config
    started_monotonic: float  # time.monotonic() when the invocation started
    started_at: float  # the same moment, epoch seconds
    output: str = "text"  # "text" or "json"
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    timeout_s: float = 600.0
    progress_deadline_s: float = 180.0
    kubeconfig: str | None = None
    context: str | None = None  # kubeconfig context name
    verbosity: int = 0

    @property
    def json_output(self) -> bool:
        """True when stdout carries the JSON result document."""
        return self.output == "json"

    def elapsed_s(self, now: float) -> float:
        """Seconds since the invocation started, at `now` (time.monotonic())."""
        return now - self.started_monotonic

    def remaining_s(self, now: float) -> float:
        """Seconds left at `now` (time.monotonic()) before the overall deadline
        (`--timeout`), never negative."""
        return max(0.0, self.timeout_s - self.elapsed_s(now))
