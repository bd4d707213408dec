"""Build contexts on the local disk: the ignore file an app's build honours, and the files
the builder receives, with their types, modes and content digests (what a tag covers).

The paths come from the Docker adapter's `context_paths`; the tag is the core's
(images.tags), computed over the `BuildFiles` read here.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import threading
from collections.abc import Sequence
from pathlib import Path

from paless_deploy.core.images.buildspec import dockerignore_patterns, ignore_file_candidates
from paless_deploy.core.images.discover import App
from paless_deploy.core.images.tags import (
    DIRECTORY,
    FILE,
    LINK,
    BuildFiles,
    ContextEntry,
)
from paless_deploy.core.plan.sync import SyncFile


def ignore_file(app: App) -> Path | None:
    """The ignore file a build of this app honours (the first of the core's candidates
    that is a file); None when there is none."""
    return next((path for path in ignore_file_candidates(app) if path.is_file()), None)


def read_dockerignore(app: App) -> list[str]:
    """The patterns of the app's ignore file ([] without one)."""
    path = ignore_file(app)
    return [] if path is None else dockerignore_patterns(path.read_text())


class FileDigests:
    """Content hashes of files, cached by path, size and mtime for one run."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def digest(self, path: Path, st: os.stat_result) -> str:
        """sha256 of a regular file's content."""
        key = (str(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(key)
        if cached:
            return cached
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        value = h.hexdigest()
        with self._lock:
            self._cache[key] = value
        return value


def read_build_files(app: App, paths: Sequence[str],
                     digests: FileDigests | None = None) -> BuildFiles:
    """The files an app's tag covers: each of `paths` (relative to the context, what the
    builder receives) with its type, permission bits and content digest, sorted; the
    Dockerfile; the ignore file. A path removed meanwhile is left out (the next run sees
    the new state), as are sockets and fifos (the SDK skips them too)."""
    digests = digests or FileDigests()
    entries: list[ContextEntry] = []
    for rel in sorted(paths):
        full = app.context / rel
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            entries.append(ContextEntry(rel, LINK, content=os.readlink(full)))
        elif stat.S_ISDIR(st.st_mode):
            entries.append(ContextEntry(rel, DIRECTORY, mode))
        elif stat.S_ISREG(st.st_mode):
            entries.append(ContextEntry(rel, FILE, mode, digests.digest(full, st)))
    ignore = ignore_file(app)
    return BuildFiles(tuple(entries), app.dockerfile.read_bytes(),
                      None if ignore is None else ignore.name,
                      b"" if ignore is None else ignore.read_bytes())


def sync_archive(root: Path, files: Sequence[SyncFile]) -> tuple[bytes, list[str]]:
    """A tar of the project's files to sync, each at its destination in the container (its
    mode and modification time kept, owned by root or by a COPY's numeric --chown), and the
    destinations to delete (a file deleted here, or gone since the burst)."""
    buffer = io.BytesIO()
    deleted: list[str] = []
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for f in files:
            path = root / f.path
            if f.deleted or not path.is_file():
                deleted.append(f.dest)
                continue
            info = archive.gettarinfo(str(path), arcname=f.dest.lstrip("/"))
            info.uid, info.gid = f.owner or (0, 0)
            info.uname = info.gname = ""
            with open(path, "rb") as content:
                archive.addfile(info, content)
    return buffer.getvalue(), deleted
