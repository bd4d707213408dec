"""A snapshot's manifest: what one backup holds (the database dump, each bucket's objects,
the rendered manifests, the configuration without secrets), with sizes and checksums.

The manifest is the contract between `backup` and `restore`, and between versions of the
tool: `manifest.json` in the snapshot's directory, written last (a directory without one
is not a snapshot). Restore checks every file against it before it changes anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from paless_deploy.core.apitypes import JsonDict, JsonValue
from paless_deploy.core.data.schema import SchemaVersion
from paless_deploy.core.errors import ConfigError, shown

FORMAT = "paless-snapshot"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE_FILE = "postgres/database.dump"
MANIFESTS_FILE = "manifests/rendered.yaml"
CONFIGURATION_FILE = "configuration.json"
OBJECTS_DIR = "objects"
PARTIAL_SUFFIX = ".partial"  # a snapshot being written (or cut short): never restored
MAX_KEY_PATH = 900  # longer keys are stored under a hashed name (file systems' limits)

# Kinds of files a snapshot holds (FileEntry.role).
ROLE_DATABASE = "database"
ROLE_OBJECT = "object"
ROLE_MANIFESTS = "manifests"
ROLE_CONFIGURATION = "configuration"


@dataclass(frozen=True)
class FileEntry:
    """One file of a snapshot: its path inside the directory, size, sha256; for an object,
    its bucket, key and the ETag / MD5 that tell an unchanged live object."""

    path: str
    size: int
    sha256: str
    role: str
    bucket: str = ""
    key: str = ""
    md5: str = ""
    etag: str = ""

    def to_json(self) -> JsonDict:
        data: JsonDict = {"path": self.path, "size": self.size, "sha256": self.sha256,
                          "role": self.role}
        if self.role == ROLE_OBJECT:
            data.update(bucket=self.bucket, key=self.key, md5=self.md5, etag=self.etag)
        return data


@dataclass(frozen=True)
class Snapshot:
    """What one snapshot holds, and where it came from."""

    name: str
    created_at: str  # RFC 3339, UTC
    namespace: str  # the source namespace
    overlay: str
    database: str  # the database dumped ("" when the namespace had no PostgreSQL)
    server_version: str  # PostgreSQL's, as it said
    schema: SchemaVersion
    buckets: tuple[str, ...]
    files: tuple[FileEntry, ...]
    images: Mapping[str, str] = field(default_factory=dict)  # "Kind/name container" -> image
    duration_s: float = 0.0
    reason: str = ""  # why it was taken ("backup", "before the migration of ...", ...)

    @property
    def size(self) -> int:
        """Bytes of every file the manifest names."""
        return sum(f.size for f in self.files)

    @property
    def database_file(self) -> FileEntry | None:
        return next((f for f in self.files if f.role == ROLE_DATABASE), None)

    def objects(self, bucket: str) -> list[FileEntry]:
        """The objects of one bucket."""
        return [f for f in self.files if f.role == ROLE_OBJECT and f.bucket == bucket]

    def to_json(self) -> JsonDict:
        return {
            "format": FORMAT, "version": FORMAT_VERSION, "name": self.name,
            "created_at": self.created_at, "duration_s": round(self.duration_s, 3),
            "reason": self.reason,
            "source": {"namespace": self.namespace, "overlay": self.overlay},
            "images": dict(self.images),
            "schema_version": self.schema.version, "schema": self.schema.to_json(),
            "postgres": {"database": self.database, "server_version": self.server_version},
            "buckets": [{"name": b, "objects": len(self.objects(b)),
                         "size": sum(f.size for f in self.objects(b))} for b in self.buckets],
            "size": self.size,
            "files": [f.to_json() for f in self.files],
        }

    def summary(self, path: str) -> JsonDict:
        """What the JSON reports of backup, restore and deploy say about it."""
        return {"path": path, "name": self.name, "namespace": self.namespace,
                "created_at": self.created_at, "size": self.size,
                "schema_version": self.schema.version, "buckets": list(self.buckets),
                "objects": sum(1 for f in self.files if f.role == ROLE_OBJECT),
                "duration_s": round(self.duration_s, 3), "reason": self.reason}


def snapshot_name(namespace: str, now: dt.datetime) -> str:
    """`<namespace>-<UTC time>`: sorts by time within a namespace."""
    return f"{namespace}-{now.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"


def object_paths(bucket: str, keys: Iterable[str]) -> dict[str, str]:
    """Where each object of a bucket is stored: `objects/<bucket>/<key>` when the key is a
    plain relative path that no other key needs as a directory, else a hashed name under
    `objects/<bucket>/.keys/` (S3 allows `a` and `a/b` side by side, `..`, empty parts)."""
    keys = list(keys)
    as_dirs = {"/".join(k.split("/")[:i]) for k in keys for i in range(1, k.count("/") + 1)}
    paths: dict[str, str] = {}
    for key in keys:
        parts = key.split("/")
        plain = (key and len(key) <= MAX_KEY_PATH and key not in as_dirs
                 and not key.startswith(".keys/")
                 and all(p not in ("", ".", "..") for p in parts)
                 and not any(c in key for c in "\\\0"))
        name = key if plain else f".keys/{hashlib.sha256(key.encode()).hexdigest()}"
        paths[key] = f"{OBJECTS_DIR}/{bucket}/{name}"
    return paths


def bad_snapshot(where: str, problem: str) -> ConfigError:
    """A snapshot that cannot be used: exit 2, nothing was changed."""
    return ConfigError(
        f"{where} is not a usable snapshot: {problem}.",
        "Pass the directory `paless-deploy backup` printed (it holds manifest.json); a "
        "snapshot that was cut short (a `.partial` directory) or altered cannot be restored: "
        "take another one.", code="bad-snapshot")


def parse_snapshot(data: JsonValue, where: str) -> Snapshot:
    """The manifest read from JSON; ConfigError (exit 2) naming what is wrong with it."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise bad_snapshot(where, f"{MANIFEST} is not a {FORMAT} manifest")
    if data.get("version") != FORMAT_VERSION:
        raise bad_snapshot(where, f"format version {shown(data.get('version'))}; this "
                                  f"paless-deploy reads version {FORMAT_VERSION}")
    try:
        source, postgres = data["source"], data["postgres"]
        files = tuple(_file_entry(f) for f in data["files"])
        snapshot = Snapshot(
            name=str(data["name"]), created_at=str(data["created_at"]),
            namespace=str(source["namespace"]), overlay=str(source.get("overlay") or ""),
            database=str(postgres.get("database") or ""),
            server_version=str(postgres.get("server_version") or ""),
            schema=SchemaVersion.from_json(data.get("schema")),
            buckets=tuple(str(b["name"]) for b in data.get("buckets") or []),
            files=files, images={str(k): str(v) for k, v in (data.get("images") or {}).items()},
            duration_s=float(data.get("duration_s") or 0.0), reason=str(data.get("reason") or ""))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise bad_snapshot(where, f"{MANIFEST} lacks or garbles {exc}") from None
    for entry in files:
        if entry.path.startswith("/") or ".." in entry.path.split("/") or entry.path == MANIFEST:
            raise bad_snapshot(where, f"{MANIFEST} names a file outside the snapshot: "
                                      f"{shown(entry.path)}")
    return snapshot


def _file_entry(data: Mapping[str, JsonValue]) -> FileEntry:
    entry = FileEntry(path=str(data["path"]), size=int(data["size"]),
                      sha256=str(data["sha256"]), role=str(data["role"]),
                      bucket=str(data.get("bucket") or ""), key=str(data.get("key") or ""),
                      md5=str(data.get("md5") or ""), etag=str(data.get("etag") or ""))
    if entry.size < 0 or not re.fullmatch(r"[0-9a-f]{64}", entry.sha256):
        raise ValueError(f"file {entry.path}")
    return entry


@dataclass(frozen=True)
class FileState:
    """A file as found on disk: its size, and its sha256 once read (None: not read)."""

    size: int
    sha256: str | None = None


def size_problems(snapshot: Snapshot, found: Mapping[str, FileState]) -> list[str]:
    """Files the manifest names that are missing or of another size (truncated): cheap,
    checked before any file is read."""
    problems = []
    for entry in snapshot.files:
        state = found.get(entry.path)
        if state is None:
            problems.append(f"{entry.path} is missing")
        elif state.size != entry.size:
            problems.append(f"{entry.path} has {state.size:,} bytes, the manifest says "
                            f"{entry.size:,} (truncated or altered)")
    return problems


def checksum_problems(snapshot: Snapshot, found: Mapping[str, FileState]) -> list[str]:
    """Files whose sha256 is not the manifest's."""
    return [f"{e.path}: sha256 {str(found[e.path].sha256)[:12]}... is not the manifest's "
            f"{e.sha256[:12]}..." for e in snapshot.files
            if e.path in found and found[e.path].sha256 not in (None, e.sha256)]


def unusable(where: str, problems: Sequence[str]) -> ConfigError:
    """The snapshot failed its checks: exit 2 naming the first problems; nothing changed."""
    listed = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3
                                        else "")
    error = bad_snapshot(where, listed)
    error.message += " Nothing was changed."
    return error


def human_size(count: float) -> str:
    """Bytes for people: 512 B, 3.4 MB, 1.0 GB (powers of 1000, as disks are sold)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{int(count)} B"


def progress_text(done: int, total: int | None) -> str:
    """`120.0 MB of 1.0 GB (12%)`, or `150.0 MB so far` when the total is not known; in steps
    coarse enough that a log line per change stays readable (5% of the total and at least
    10 MB; 50 MB without a total)."""
    if total:
        step = max(total // 20, 10_000_000)
        shown_done = min(total, done // step * step) if done < total else total
        return f"{human_size(shown_done)} of {human_size(total)} ({shown_done * 100 // total}%)"
    step = 50_000_000
    return f"{human_size(done - done % step)} so far"
