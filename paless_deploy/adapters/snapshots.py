"""The door to snapshot directories on this machine: written while a backup runs (under a
`.partial` name, renamed when complete), read and checked before a restore.

Every file is written through `HashingFile`, which counts and hashes what passes (sha256
for the manifest, MD5 to recognise an unchanged object in a store); a full disk is
`DiskFull`, naming the directory and what is left there.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO, Self

CHUNK = 1 << 20


class DiskFull(OSError):
    """No space left where the snapshot is written."""

    def __init__(self, path: Path, free: int) -> None:
        super().__init__(errno.ENOSPC, f"no space left on the device of {path}")
        self.path, self.free = path, free


class HashingFile:
    """A new file of the snapshot (its parents made), hashed and counted as it is written."""

    def __init__(self, root: Path, relative: str) -> None:
        self.path = root / relative
        self.root = root
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = self.path.open("xb")

    def write(self, data: bytes) -> int:
        try:
            self._file.write(data)
        except OSError as exc:
            raise _full(exc, self.root) from None
        self._sha256.update(data)
        self._md5.update(data)
        self.size += len(data)
        return len(data)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as error:
            if exc is None:
                raise _full(error, self.root) from None


def _full(exc: OSError, root: Path) -> OSError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(root, free_bytes(root))
    return exc


def free_bytes(path: Path) -> int:
    """Free bytes on the file system of `path` (its nearest existing parent)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return 0


def start(root: Path, name: str) -> Path:
    """A new, empty `<root>/<name>.partial` directory (root made when missing)."""
    partial = root / f"{name}.partial"
    partial.mkdir(parents=True, exist_ok=False)
    return partial


def write_json(root: Path, relative: str, data: Any) -> HashingFile:
    """A JSON file of the snapshot, written whole."""
    with HashingFile(root, relative) as out:
        out.write(json.dumps(data, indent=2, sort_keys=False).encode() + b"\n")
    return out


def write_text(root: Path, relative: str, text: str) -> HashingFile:
    with HashingFile(root, relative) as out:
        out.write(text.encode())
    return out


def finish(partial: Path, manifest: Any) -> Path:
    """Write manifest.json last, then drop the `.partial` suffix: from this rename on, the
    directory is a snapshot."""
    write_json(partial, "manifest.json", manifest)
    final = partial.with_name(partial.name.removesuffix(".partial"))
    partial.rename(final)
    return final


def discard(partial: Path) -> None:
    """Remove a snapshot that was cut short."""
    shutil.rmtree(partial, ignore_errors=True)


def is_directory(path: str) -> bool:
    return Path(path).expanduser().is_dir()


def read_manifest(directory: Path) -> Any:
    """manifest.json of a snapshot directory, parsed. FileNotFoundError when absent,
    ValueError when it is not JSON."""
    return json.loads((directory / "manifest.json").read_text(encoding="utf-8"))


def sizes(directory: Path, paths: list[str]) -> dict[str, int]:
    """The size of each of `paths` that exists as a regular file under `directory`."""
    found = {}
    for relative in paths:
        path = directory / relative
        if path.is_file() and not path.is_symlink():
            found[relative] = path.stat().st_size
    return found


def sha256_of(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return digest.hexdigest()


def open_file(path: Path) -> BinaryIO:
    return path.open("rb")


def listing(directory: Path) -> Iterator[str]:
    """Every regular file under `directory`, relative, `/`-separated (for messages)."""
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            yield path.relative_to(directory).as_posix()
