"""The door to file-system notifications (the `watchfiles` package, imported when `dev`
starts): the project's changed paths, relative to it, as they happen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from paless_deploy.core.errors import ConfigError


class ProjectWatch:
    """Watches a directory tree from a daemon thread; `on_change(paths)` receives each
    batch of changed paths (relative, `/`-separated) that `keep(path)` accepts."""

    def __init__(self, root: Path, keep: Callable[[str], bool],
                 on_change: Callable[[set[str]], None]) -> None:
        self.root = root.resolve()
        self.keep = keep
        self.on_change = on_change
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self) -> ProjectWatch:
        try:
            import watchfiles  # noqa: F401 - fail here, in the caller's thread
        except ImportError as exc:
            raise ConfigError(
                "`paless-deploy dev` needs the watchfiles package, which is not installed.",
                "Install it (`pip install watchfiles`, or reinstall paless-deploy, which "
                "depends on it).", code="missing-dependency") from exc
        self._thread = threading.Thread(target=self._run, name="file-watch", daemon=True)
        self._thread.start()
        self._started.wait(10)
        return self

    def stop(self) -> None:
        self._stop.set()

    def _relative(self, path: str) -> str | None:
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except (ValueError, OSError):
            return None

    def _filter(self, change: object, path: str) -> bool:
        relative = self._relative(path)
        return relative is not None and self.keep(relative)

    def _run(self) -> None:
        import watchfiles

        try:
            # Our own coalescing (core.devloop) groups bursts: deliver quickly.
            for batch in watchfiles.watch(self.root, watch_filter=self._filter, debounce=100,
                                          step=20, stop_event=self._stop, rust_timeout=500,
                                          yield_on_timeout=True, raise_interrupt=False,
                                          ignore_permission_denied=True):
                self._started.set()
                paths = {r for _, p in batch if (r := self._relative(p)) is not None}
                if paths:
                    self.on_change(paths)
        except Exception as exc:  # noqa: BLE001 - reported by the loop, which keeps running
            self.error = f"watching {self.root} stopped: {exc}"
        finally:
            self._started.set()
