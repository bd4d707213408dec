"""Image tags derived from content: what the builder is sent, the Dockerfile, the build
inputs (args, target, platform, secret names) and the base images.

Pure functions over the files of a build context: an unchanged app gets the same tag,
so it is neither rebuilt nor pushed; a changed one gets a new tag, so it always rolls out.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from paless_deploy.core.images.buildspec import BuildSpec, ignore_file
from paless_deploy.core.images.discover import App

if TYPE_CHECKING:
    from paless_deploy.core.configuration.config import Config

TAG_LENGTH = 12
TAG_SCHEMA = b"paless-deploy/image-tag/v2\0"


def read_dockerignore(app: App) -> list[str]:
    """The patterns of the app's ignore file (`<Dockerfile>.dockerignore`, else the
    context's `.dockerignore`), read as `docker.APIClient.build` reads a .dockerignore."""
    path = ignore_file(app)
    if path is None:
        return []
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def base_images(dockerfile_text: str, build_args: Mapping[str, str]) -> list[str]:
    """Images named by FROM lines (ARGs substituted), without scratch and stage names."""
    text = re.sub(r"\\\r?\n", " ", dockerfile_text)
    args: dict[str, str] = {}
    stages: set[str] = set()
    bases: list[str] = []
    seen_from = False
    for raw in text.splitlines():
        words = raw.strip().split()
        if not words or words[0].startswith("#"):
            continue
        keyword = words[0].upper()
        if keyword == "ARG" and not seen_from and len(words) > 1:
            name, _, default = words[1].partition("=")
            args[name] = build_args.get(name, default.strip("\"'"))
        elif keyword == "FROM":
            seen_from = True
            rest = [w for w in words[1:] if not w.startswith("--")]
            if not rest:
                continue
            image = _expand(rest[0], args)
            if len(rest) >= 3 and rest[1].upper() == "AS":
                stages.add(rest[2].lower())
            if image.lower() != "scratch" and image.lower() not in stages and image not in bases:
                bases.append(image)
    return bases


def _expand(word: str, args: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        default = match.group(2)
        value = args.get(name, "")
        return value if value or default is None else default

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)",
                  substitute, word)


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


def compute_tag(
    app: App,
    paths: Sequence[str],
    spec: BuildSpec,
    base_image_ids: Mapping[str, str | None],
    digests: FileDigests | None = None,
) -> str:
    """The immutable tag of an app's image: first 12 hex chars of a content hash.

    Covers each path of the context as the builder receives it (`paths`, the Docker
    adapter's `context_paths`) with its type, permission bits and content (not mtimes,
    owners), the Dockerfile, the ignore file that chose those paths, the sorted build
    args, the target stage, the platform, the names (never the values) of the build
    secrets and each base image's local ID.
    """
    digests = digests or FileDigests()
    h = hashlib.sha256(TAG_SCHEMA)
    for rel in sorted(paths):
        full = app.context / rel
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            continue  # removed while hashing; the next run sees the new state
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            entry = f"L {rel} {os.readlink(full)}"
        elif stat.S_ISDIR(st.st_mode):
            entry = f"D {rel} {mode:o}"
        elif stat.S_ISREG(st.st_mode):
            entry = f"F {rel} {mode:o} {digests.digest(full, st)}"
        else:
            continue  # sockets, fifos: the SDK skips them too
        h.update(entry.encode("utf-8", "surrogateescape") + b"\0")
    h.update(b"dockerfile " + app.dockerfile_in_context.encode() + b"\0")
    h.update(app.dockerfile.read_bytes() + b"\0")
    ignore = ignore_file(app)
    if ignore is not None:
        h.update(f"ignore {ignore.name}\0".encode() + ignore.read_bytes() + b"\0")
    for name in sorted(spec.args):
        h.update(f"arg {name}={spec.args[name]}\0".encode())
    if spec.target:
        h.update(f"target {spec.target}\0".encode())
    if spec.platform:
        h.update(f"platform {spec.platform}\0".encode())
    for secret in spec.secrets:
        h.update(f"secret {secret.id}\0".encode())
    if spec.frontend:
        h.update(f"frontend {spec.frontend}\0".encode())
    for ref in sorted(base_image_ids):
        h.update(f"base {ref}={base_image_ids[ref] or 'not-local'}\0".encode())
    return h.hexdigest()[:TAG_LENGTH]


def image_ref(config: Config, app: str, tag: str) -> str:
    """`{REGISTRY}/{PROJECT_NAME}-{app}:{tag}`."""
    return f"{config.image_repository(app)}:{tag}"
