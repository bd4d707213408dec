"""What a person sees of `dev`: each change and what it calls for, the outcome with the
edit-to-Ready time, the port-forward URLs, and the pods' logs prefixed `[app/container]`.

Progress lines go to stderr (timestamped off a terminal, as the deploy view's); log lines
to stdout (stderr with --output json, whose stdout carries the one document), each app
in its own colour on a terminal.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.table import Table
from rich.text import Text

from paless_deploy.core.errors import PalessError
from paless_deploy.core.reporting.report import Result, error_text, scrub
from paless_deploy.ui.console import stderr_console

if TYPE_CHECKING:
    from paless_deploy.core.configuration.context import ConsoleSettings
    from paless_deploy.core.plan.devloop import Change

APP_STYLES = ("cyan", "magenta", "green", "yellow", "blue", "bright_red")


class ForwardShown(Protocol):
    """What the URL table shows of a forward."""

    @property
    def url(self) -> str: ...

    @property
    def pod(self) -> str | None: ...

    @property
    def target(self) -> object: ...


class DevView:
    """The dev session's output (thread-safe: logs come from many threads)."""

    def __init__(self, settings: ConsoleSettings, *, json_output: bool = False,
                 secrets: Sequence[str] = ()) -> None:
        self.settings = settings
        self.secrets = list(secrets)  # scrubbed from every line (errors quote build output)
        self.console = stderr_console(settings)
        self.json_output = json_output
        self._lock = threading.Lock()
        self._styles: dict[str, str] = {}
        self._watching_said = False
        # stdout is looked up at each print: a live display may redirect it meanwhile
        self._logs = Console(stderr=json_output, no_color=not settings.color,
                             highlight=False, soft_wrap=True)

    def _print(self, text: Text | str) -> None:
        if self.settings.quiet:
            return
        line = text if isinstance(text, Text) else Text(text)
        if self.secrets:
            line = Text(scrub(line.plain, self.secrets)) if any(
                secret in line.plain for secret in self.secrets) else line
        if not self.settings.terminal:
            line = Text(time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime())) + line
        with self._lock:
            self.console.print(line, highlight=False, soft_wrap=not self.settings.terminal)

    def note(self, text: str) -> None:
        self._print(text)

    def event(self, name: str, text: str, **data: object) -> None:
        """A line for a person, and with --output json one JSON line on stderr for an
        editor: `{"event": name, "at": <UTC time>, "text": ..., **data}`."""
        self._print(text)
        self._emit(name, text=text, **data)

    def _emit(self, name: str, **data: object) -> None:
        if not self.json_output:
            return
        line = json.dumps({"event": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                              time.gmtime()), **data},
                          default=str)
        with self._lock:
            sys.stderr.write(scrub(line, self.secrets) + "\n")
            sys.stderr.flush()

    def warning(self, text: str) -> None:
        self._print(Text.assemble(("warning: ", "yellow"), text))

    def watching(self) -> None:
        if not self._watching_said:
            self._watching_said = True
            self._print(Text("watching for changes (Ctrl-C stops)", style="dim"))

    def change(self, change: Change) -> None:
        self._watching_said = False
        if not change.paths:
            self._print(Text("dev: deploying the whole overlay first", style="bold"))
            return
        what = []
        if change.apps:
            what.append("rebuild " + ", ".join(change.apps))
        if change.render:
            what.append("render and apply" + (" (configuration changed)" if change.reload
                                              else ""))
        shown = ", ".join(change.paths[:4]) + (f" and {len(change.paths) - 4} more"
                                               if len(change.paths) > 4 else "")
        self._emit("change", paths=list(change.paths), rebuild=list(change.apps),
                   render=change.render)
        self._print(Text.assemble(("change: ", "bold"), shown, " -> ", ("; ".join(what),
                                                                         "bold")))

    def ready(self, apps: Sequence[str], took_s: float, edit_to_ready_s: float | None) -> None:
        which = ", ".join(apps) or "everything"
        since = f" (edit to Ready {edit_to_ready_s:.1f}s)" if edit_to_ready_s is not None else ""
        self._emit("ready", apps=list(apps), seconds=round(took_s, 3),
                   edit_to_ready_s=edit_to_ready_s)
        self._print(Text.assemble(("ready: ", "bold green"), f"{which} rolled out in "
                                  f"{took_s:.1f}s{since}"))

    def unchanged(self, apps: Sequence[str]) -> None:
        self._emit("unchanged", apps=list(apps))
        self._print(f"unchanged: the images of {', '.join(apps)} are the ones deployed "
                    "(same content); nothing to roll out")

    def failed(self, error: PalessError) -> None:
        self._emit("failed", code=error.code, message=error.message, hint=error.hint)
        self._print(Text.assemble(("failed: ", "bold red"), error_text(error)))
        self._print(Text("fix it and save: the next change runs again", style="dim"))

    def rollout_failed(self, result: Result) -> None:
        last = result.errors[-1] if result.errors else None
        text = f"{last.message} {last.hint}" if last else "the rollout did not become ready"
        self._emit("failed", code=last.code if last else "rollout", message=text)
        self._print(Text.assemble(("failed: ", "bold red"), text))
        self._print(Text("fix it and save: the next change runs again", style="dim"))

    def forward_table(self, forwards: Sequence[ForwardShown]) -> None:
        if self.settings.quiet:
            return
        table = Table(title="Port-forwards", title_justify="left", show_edge=False)
        for column in ("name", "url", "pod"):
            table.add_column(column)
        for forward in forwards:
            table.add_row(str(getattr(forward.target, "name", "")), forward.url,
                          forward.pod or "(waiting for a Ready pod)")
        with self._lock:
            self.console.print(table)

    def log_line(self, app: str, container: str, line: str) -> None:
        """One line of a container's log: `[app/container] line`."""
        style = self._styles.setdefault(app, APP_STYLES[len(self._styles) % len(APP_STYLES)])
        text = Text.assemble((f"[{app}/{container}] ", style), line.rstrip("\n"))
        with self._lock:
            self._logs.print(text, highlight=False, markup=False, soft_wrap=True)
            (sys.stderr if self.json_output else sys.stdout).flush()
