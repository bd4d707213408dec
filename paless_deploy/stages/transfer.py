"""Progress of one long copy (a database dump, a bucket's objects), in bytes: a bar on a
terminal, a line at each 5% (or 50 MB) step in a log."""

from __future__ import annotations

import threading

from paless_deploy.core.data.snapshot import human_size, progress_text
from paless_deploy.core.reporting.progress import ImageProgress


class Transfer:
    """Counts the bytes of one item and tells the progress display (thread-safe: exec
    feeds stdin from a thread of its own)."""

    def __init__(self, progress: ImageProgress, item: str, title: str,
                 total: int | None = None) -> None:
        self.progress, self.item, self.total = progress, item, total
        self.done = 0
        self._lock = threading.Lock()
        progress.add(item, title)
        progress.update(item, progress_text(0, total), 0, total)

    def __call__(self, count: int) -> None:
        with self._lock:
            self.done += count
            done = self.done
        self.progress.update(self.item, progress_text(done, self.total), done, self.total)

    def finish(self, text: str = "", ok: bool = True) -> None:
        self.progress.finish(self.item, text or human_size(self.done), ok)
