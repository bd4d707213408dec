"""What a person sees during a deploy: phases, objects, readiness, failures.

On a terminal, colourful lines with a live spinner naming what is awaited; otherwise
plain timestamped lines for CI logs. Everything goes to stderr.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol, Self

from paless_deploy.ui.console import stderr_console

if TYPE_CHECKING:
    from paless_deploy.core.context import ConsoleSettings
    from paless_deploy.core.readiness import Readiness


class Applied(Protocol):
    """What the view shows of an applied object."""

    @property
    def ref(self) -> str: ...

    @property
    def action(self) -> str: ...


class Target(Protocol):
    """What the view shows of an object being waited on."""

    @property
    def ref(self) -> str: ...

    @property
    def verdict(self) -> Readiness: ...


class DeployView:
    """Plain timestamped lines (CI); also the base of the terminal view."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._phase_started = 0.0
        self._phase = ""

    def _line(self, text: str, style: str = "") -> None:
        if self.settings.quiet:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._lock:
            print(f"{stamp} {text}", file=sys.stderr, flush=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def info(self, text: str) -> None:
        self._line(text)

    def phase_started(self, name: str, count: int) -> None:
        self._phase, self._phase_started = name, time.monotonic()
        self._line(f"phase {name}: applying {count} object(s)")

    def applied(self, a: Applied) -> None:
        if self.settings.verbosity or a.action != "unchanged":
            self._line(f"  {a.ref} {a.action}")

    def target_update(self, t: Target) -> None:
        mark = "ready" if t.verdict.ready else ("FAILED" if t.verdict.failed else "waiting")
        self._line(f"  {t.ref} {mark}: {t.verdict.reason}")

    def phase_done(self, name: str, ok: bool, summary: str) -> None:
        took = time.monotonic() - self._phase_started
        self._line(f"phase {name}: {'ready' if ok else 'FAILED'} in {took:.1f}s{summary}")

    def warning(self, text: str) -> None:
        self._line(f"warning: {text}")

    def finding(self, finding: Any) -> None:
        if self.settings.quiet:
            return
        from paless_deploy.ui.explain import finding_text

        with self._lock:
            print(finding_text(finding), file=sys.stderr, flush=True)


class TerminalView(DeployView):
    """Colour and a live spinner with the elapsed time of the awaited resources."""

    def __init__(self, settings: ConsoleSettings) -> None:
        super().__init__(settings)
        self.console = stderr_console(settings)
        self._status: Any = None
        self._waiting: dict[str, str] = {}

    def __enter__(self) -> Self:
        self._status = self.console.status("", spinner="dots")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_status()

    def _stop_status(self) -> None:
        if self._status is not None:
            self._status.stop()

    def _line(self, text: str, style: str = "") -> None:
        if not self.settings.quiet:
            self.console.print(text, style=style or None, highlight=False)

    def _refresh(self) -> None:
        if self._status is None:
            return
        if not self._waiting:
            self._status.stop()
            return
        took = time.monotonic() - self._phase_started
        waiting = "; ".join(f"{k} ({v})" for k, v in list(self._waiting.items())[:3])
        self._status.update(f"[bold]{self._phase}[/bold] {took:4.0f}s  waiting for {waiting}")
        self._status.start()

    def phase_started(self, name: str, count: int) -> None:
        self._phase, self._phase_started = name, time.monotonic()
        self._waiting = {}
        self._line(f"[bold cyan]▶ {name}[/bold cyan] [dim]({count} object(s))[/dim]")

    def applied(self, a: Applied) -> None:
        if self.settings.verbosity or a.action != "unchanged":
            style = {"created": "green", "configured": "yellow", "replaced": "magenta"}.get(
                a.action, "dim")
            self._line(f"  [{style}]{a.action:<10}[/{style}] {a.ref}")

    def target_update(self, t: Target) -> None:
        if t.verdict.ready:
            self._waiting.pop(t.ref, None)
            self._line(f"  [green]✓[/green] {t.ref} [dim]{t.verdict.reason}[/dim]")
        elif t.verdict.failed:
            self._waiting.pop(t.ref, None)
            self._line(f"  [red]✗ {t.ref}[/red] {t.verdict.reason}")
        else:
            self._waiting[t.ref] = t.verdict.reason
        self._refresh()

    def phase_done(self, name: str, ok: bool, summary: str) -> None:
        self._waiting = {}
        self._refresh()
        took = time.monotonic() - self._phase_started
        mark = "[green]✓ ready[/green]" if ok else "[red]✗ failed[/red]"
        self._line(f"  {mark} [dim]{name} in {took:.1f}s{summary}[/dim]")

    def warning(self, text: str) -> None:
        self._line(f"[yellow]warning:[/yellow] {text}")

    def finding(self, finding: Any) -> None:
        from paless_deploy.ui.explain import render_finding

        self._stop_status()
        render_finding(finding, self.console)


def make_view(settings: ConsoleSettings) -> DeployView:
    return TerminalView(settings) if settings.terminal and not settings.quiet else DeployView(settings)
