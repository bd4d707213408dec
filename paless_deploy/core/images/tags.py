"""Image tags derived from content: what the builder is sent, the Dockerfile, the build
inputs (args, target, platform, secret names) and the base images.

Pure: an unchanged app gets the same tag, so it is neither rebuilt nor pushed; a changed
one gets a new tag, so it always rolls out. The files arrive as `BuildFiles`, read and
hashed by adapters.files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from paless_deploy.core.images.buildspec import BuildSpec
from paless_deploy.core.images.discover import App

if TYPE_CHECKING:
    from paless_deploy.core.configuration.config import Config

TAG_LENGTH = 12
TAG_SCHEMA = b"paless-deploy/image-tag/v2\0"
FILE, DIRECTORY, LINK = "F", "D", "L"


@dataclass(frozen=True)
class ContextEntry:
    """One path of a build context as the tag covers it: its type, permission bits and
    content (a regular file's sha256, a link's target); never mtimes or owners."""

    path: str  # relative to the context, as the builder receives it
    kind: str  # FILE, DIRECTORY or LINK
    mode: int = 0  # permission bits (files, directories)
    content: str = ""  # FILE: sha256 of the content; LINK: the target

    def line(self) -> str:
        """The entry as the tag hashes it."""
        if self.kind == LINK:
            return f"L {self.path} {self.content}"
        if self.kind == DIRECTORY:
            return f"D {self.path} {self.mode:o}"
        return f"F {self.path} {self.mode:o} {self.content}"


@dataclass(frozen=True)
class BuildFiles:
    """What a tag covers from disk: the context as the builder receives it, sorted by path
    (paths gone or neither file, directory nor link are left out), the Dockerfile and
    the ignore file that chose those paths."""

    context: tuple[ContextEntry, ...]
    dockerfile: bytes
    ignore_name: str | None = None  # the ignore file's name, None when there is none
    ignore: bytes = b""


def compute_tag(app: App, files: BuildFiles, spec: BuildSpec,
                base_image_ids: Mapping[str, str | None]) -> str:
    """The immutable tag of an app's image: first 12 hex chars of a content hash.

    Covers each path of the context as the builder receives it (`files.context`, from
    the Docker adapter's `context_paths`) with its type, permission bits and content (not
    mtimes, owners), the Dockerfile, the ignore file that chose those paths, the sorted
    build args, the target stage, the platform, the names (never the values) of the
    build secrets and each base image's local ID.
    """
    h = hashlib.sha256(TAG_SCHEMA)
    for entry in files.context:
        h.update(entry.line().encode("utf-8", "surrogateescape") + b"\0")
    h.update(b"dockerfile " + app.dockerfile_in_context.encode() + b"\0")
    h.update(files.dockerfile + b"\0")
    if files.ignore_name is not None:
        h.update(f"ignore {files.ignore_name}\0".encode() + files.ignore + b"\0")
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
