"""The progress interface every image job reports to (the ui draws it).

Defined in the core so that the Docker adapter can report without knowing the screen.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self


class ImageProgress:
    """Interface: `add` an item, `update` it with text and counts, `finish` it."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def add(self, item: str, title: str) -> None:
        """Announce an item (e.g. an app and its image reference)."""

    def update(self, item: str, text: str, completed: int | None = None,
               total: int | None = None) -> None:
        """New state of an item; counts drive a bar when known."""

    def finish(self, item: str, text: str, ok: bool) -> None:
        """Final state of an item."""


class NullProgress(ImageProgress):
    """Shows nothing (`-q`)."""
