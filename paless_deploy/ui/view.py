"""What a person sees during a deploy: phases, objects, readiness, failures.

One view: every line is built once as rich Text and printed on stderr; on a terminal in
colour with a live spinner naming what is awaited, why, and for how long; off a terminal
(CI logs) the same lines, uncoloured, each with a UTC timestamp.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol, Self

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from paless_deploy.core.reporting.cireport import LogMarkers
from paless_deploy.core.reporting.report import ObjectAction
from paless_deploy.ui.console import stderr_console

if TYPE_CHECKING:
    from rich.status import Status

    from paless_deploy.core.configuration.context import ConsoleSettings
    from paless_deploy.core.diagnosis.readiness import Readiness


class Applied(Protocol):
    """What the view shows of an applied object."""

    @property
    def ref(self) -> str: ...

    @property
    def action(self) -> ObjectAction: ...


class Target(Protocol):
    """What the view shows of an object being waited on."""

    @property
    def ref(self) -> str: ...

    @property
    def verdict(self) -> Readiness: ...

    @property
    def waiting_for(self) -> str: ...


ACTION_STYLES = {ObjectAction.CREATED: "green", ObjectAction.CONFIGURED: "yellow",
                 ObjectAction.REPLACED: "magenta", ObjectAction.UNCHANGED: "dim",
                 ObjectAction.PRUNED: "red"}
MAX_WAITING_SHOWN = 3


class _Waiting:
    """The spinner's text, rendered anew on every refresh so the elapsed time counts."""

    def __init__(self, view: DeployView) -> None:
        self.view = view

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        took = time.monotonic() - self.view.phase_started_at
        items = list(self.view.waiting.items())[:MAX_WAITING_SHOWN]
        text = Text.assemble((self.view.phase, "bold"), f" {took:4.0f}s  waiting for ")
        text.append("; ".join(f"{ref} ({why})" for ref, why in items))
        more = len(self.view.waiting) - len(items)
        if more > 0:
            text.append(f" and {more} more")
        yield text


class DeployView:
    """The live view of one deploy (a context manager: the spinner lives inside it)."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.console = stderr_console(settings)
        self.live = settings.terminal and not settings.quiet
        self._lock = threading.Lock()
        self.phase = ""
        self.phase_started_at = time.monotonic()
        self.waiting: dict[str, str] = {}
        self._status: Status | None = None
        self.markers = LogMarkers(settings.ci)  # CI: a fold per phase in the job log
        self._folded = ""  # the phase whose fold is open

    def __enter__(self) -> Self:
        if self.live:
            self._status = self.console.status(_Waiting(self), spinner="dots")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()
        if self._folded:  # a phase cut by an error or Ctrl-C: close its fold all the same
            self._marker(self.markers.phase_end(self._folded, time.time()))
            self._folded = ""

    # -- output ---------------------------------------------------------------

    def _print(self, text: Text | str) -> None:
        if self.settings.quiet:
            return
        line = text if isinstance(text, Text) else Text(text)
        if not self.live:
            line = Text(time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime())) + line
        with self._lock:
            self.console.print(line, highlight=False, soft_wrap=not self.live)

    def _marker(self, line: str) -> None:
        """A CI log marker, written as is (no timestamp: the CI reads it at line start)."""
        if not line or self.settings.quiet:
            return
        with self._lock:
            self.console.file.write(line + "\n")
            self.console.file.flush()

    def _refresh(self) -> None:
        if self._status is None:
            return
        if self.waiting:
            self._status.start()
        else:
            self._status.stop()

    # -- events -----------------------------------------------------------------

    def info(self, text: str) -> None:
        self._print(text)

    def warning(self, text: str) -> None:
        self._print(Text.assemble(("warning: ", "yellow"), text))

    def rollout_started(self, count: int) -> None:
        """The apply of the objects begins (one CI fold for all: groups overlap)."""
        self.phase, self.phase_started_at = "apply", time.monotonic()
        self.waiting = {}
        self._marker(self.markers.phase_start("apply", time.time()))
        self._folded = "apply"
        self._print(Text.assemble(("apply", "bold cyan"),
                                  ((f": {count} object(s), each as soon as what it needs is "
                                   "ready"), "dim")))

    def group_started(self, name: str, count: int) -> None:
        """The first object labelled with phase `name` is being applied."""
        self._print(Text.assemble(("phase ", "bold cyan"), (name, "bold cyan"),
                                  (f": applying {count} object(s)", "dim")))

    def applied(self, a: Applied) -> None:
        if self.settings.verbosity or a.action != ObjectAction.UNCHANGED:
            style = ACTION_STYLES.get(a.action, "")
            self._print(Text.assemble("  ", (f"{a.action:<10}", style), " ", a.ref))

    def target_update(self, t: Target) -> None:
        if t.verdict.ready:
            self.waiting.pop(t.ref, None)
            self._print(Text.assemble("  ", ("ready     ", "green"), f" {t.ref} ",
                                      (t.verdict.reason, "dim")))
        elif t.verdict.failed:
            self.waiting.pop(t.ref, None)
            self._print(Text.assemble("  ", ("FAILED    ", "bold red"), f" {t.ref} ",
                                      t.verdict.reason))
        else:
            why = t.waiting_for or t.verdict.reason
            if not self.live and self.waiting.get(t.ref) != why:  # a terminal: the spinner
                self._print(Text.assemble("  ", ("waiting   ", "yellow"), f" {t.ref} ", why))
            self.waiting[t.ref] = why
        self._refresh()

    def waiting_on(self, ref: str, why: str) -> None:
        """A wait before any phase (the namespace lock): the spinner counts while it lasts."""
        self.phase, self.phase_started_at = "lock", time.monotonic()
        self.waiting = {ref: why}
        self._refresh()

    def waiting_done(self) -> None:
        """The wait of `waiting_on` is over (or there was none)."""
        if self.waiting:
            self.waiting = {}
            self._refresh()

    def group_done(self, name: str, ok: bool, took: float) -> None:
        """Every object labelled with phase `name` is ready (or the rollout stopped)."""
        mark = ("ready", "green") if ok else ("FAILED", "bold red")
        self._print(Text.assemble(("phase ", "dim"), (name, "dim"), ": ", mark,
                                  (f" in {took:.1f}s", "dim")))

    def rollout_done(self) -> None:
        """The apply is over: the spinner stops, the CI fold closes."""
        self.waiting = {}
        self._refresh()
        if self._folded:
            self._marker(self.markers.phase_end(self._folded, time.time()))
            self._folded = ""

    def finding(self, finding: Any) -> None:
        if self.settings.quiet:
            return
        from paless_deploy.ui.explain import finding_text, render_finding

        token = secrets.token_hex(16)  # container logs must not run workflow commands
        self._marker(self.markers.quote_start(token))
        with self._lock:
            if self._status is not None:
                self._status.stop()
            if self.live:
                render_finding(finding, self.console)
            else:
                self.console.print(finding_text(finding), highlight=False, soft_wrap=True,
                                   markup=False)  # log lines like "[sandbox] ..." are text
        self._marker(self.markers.quote_end(token))


def make_view(settings: ConsoleSettings) -> DeployView:
    """The deploy view for these console settings."""
    return DeployView(settings)
