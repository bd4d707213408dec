"""Take a snapshot of a namespace's data: the PostgreSQL database dumped inside the cluster
(pg_dump in its pod, streamed here), every MinIO bucket's objects (the S3 API through a
port-forward), the deployed manifests without secret values and the configuration with
secrets masked; one directory with manifest.json naming every file, its size and sha256.

The directory is written as `<name>.partial` and renamed when complete, so a backup cut
short (a full disk, Ctrl-C) never looks like a snapshot; it is removed on the way out.
The source is only read.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from paless_deploy.adapters import snapshots
from paless_deploy.adapters.host import utc_now
from paless_deploy.adapters.kube import ApiError, cluster_errors, with_retries
from paless_deploy.adapters.objectstore import ObjectStore, StoredObject, StoreError
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.data import postgres
from paless_deploy.core.data.postgres import DatabaseInfo
from paless_deploy.core.data.services import Service, images_of
from paless_deploy.core.data.snapshot import (
    CONFIGURATION_FILE,
    DATABASE_FILE,
    MANIFESTS_FILE,
    ROLE_CONFIGURATION,
    ROLE_DATABASE,
    ROLE_MANIFESTS,
    ROLE_OBJECT,
    FileEntry,
    Snapshot,
    human_size,
    object_paths,
    snapshot_name,
)
from paless_deploy.core.errors import ConfigError, DeployFailed
from paless_deploy.core.manifests.kinds import PRUNABLE
from paless_deploy.core.manifests.labels import instance_selector
from paless_deploy.core.manifests.namespaces import rfc3339
from paless_deploy.core.manifests.render import redact_secrets, to_yaml
from paless_deploy.core.reporting.progress import ImageProgress
from paless_deploy.stages.datasources import exec_in, open_store, read_services, require
from paless_deploy.stages.transfer import Transfer

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube

DUMP_SHARE = 4  # the dump is taken as at most a quarter of the database's size on disk
VOLATILE = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation",
            "selfLink")


@dataclass(frozen=True)
class BackupRequest:
    """What to snapshot, where, and why."""

    namespace: str
    root: Path  # the directory the snapshot's directory goes into
    reason: str = "backup"
    overlay: str = ""
    configuration: JsonDict | None = None  # the masked configuration (None: not recorded)
    warn: Callable[[str], None] = field(default=lambda text: None)


def database_info(kube: Kube, namespace: str, service: Service) -> DatabaseInfo:
    """The database's name, server version, size and applied migrations, asked in its pod."""
    result = exec_in(kube, namespace, service, postgres.command(postgres.INFO_SCRIPT))
    info = postgres.parse_info(result.stdout.decode("utf-8", errors="replace"))
    if result.exit_code != 0 or info is None:
        raise DeployFailed(
            f"Could not read the database in {service.workload} ({namespace}): "
            f"{result.stderr.strip()[-300:] or 'no answer from psql'}.",
            "Check that PostgreSQL accepts its own user inside its pod (POSTGRES_USER, "
            "POSTGRES_DB, POSTGRES_PASSWORD in its environment).", code="database-unreadable",
            resource=service.workload)
    return info


def take_snapshot(kube: Kube, request: BackupRequest, progress: ImageProgress
                  ) -> tuple[Snapshot, Path]:
    """Snapshot `request.namespace` into a new directory under `request.root`."""
    started, now = time.monotonic(), utc_now()
    found = read_services(kube, request.namespace)
    database = require(found.postgres, request.namespace, "PostgreSQL")
    store_service = require(found.minio, request.namespace, "MinIO") if found.minio else None
    if store_service is None:
        request.warn(f"Namespace {request.namespace} has no MinIO: the snapshot holds the "
                     "database only.")
    info = database_info(kube, request.namespace, database)
    with _store(kube, request.namespace, store_service) as store:
        listing = _listing(store)
        need = sum(o.size for objects in listing.values() for o in objects) + (
            info.size // DUMP_SHARE)
        directory = _start(request.root, snapshot_name(request.namespace, now), need)
        try:
            with progress:
                files = [_dump(kube, request.namespace, database, directory, progress)]
                if store is not None:
                    files += _download(store, listing, directory, progress, request.warn)
            files += _metadata(kube, request, directory)
            snapshot = Snapshot(
                name=directory.name.removesuffix(".partial"), created_at=rfc3339(now),
                namespace=request.namespace, overlay=request.overlay, database=info.database,
                server_version=info.server_version, schema=info.schema,
                buckets=tuple(listing), files=tuple(files), images=images_of(found.objects),
                duration_s=time.monotonic() - started, reason=request.reason)
            return snapshot, snapshots.finish(directory, snapshot.to_json())
        except snapshots.DiskFull as exc:
            snapshots.discard(directory)
            raise _disk_full(request, exc.free) from None
        except BaseException:
            snapshots.discard(directory)
            raise


@contextlib.contextmanager
def _store(kube: Kube, namespace: str, service: Service | None
           ) -> Iterator[ObjectStore | None]:
    if service is None:
        yield None
        return
    with open_store(kube, namespace, service) as store:
        yield store


def _listing(store: ObjectStore | None) -> dict[str, list[StoredObject]]:
    if store is None:
        return {}
    try:
        return {bucket: list(store.objects(bucket)) for bucket in store.buckets()}
    except StoreError as exc:
        raise store_failed("listing MinIO's buckets", exc) from None


def store_failed(doing: str, exc: StoreError) -> DeployFailed:
    """A refusal or silence of MinIO while copying: exit 1, what it said."""
    return DeployFailed(f"MinIO failed while {doing}: {exc.code}: {exc.message}",
                        "Check MinIO's pod and its credentials (`paless-deploy status`); the "
                        "copy can be run again.", code="object-store", reason=exc.code)


def _start(root: Path, name: str, need: int) -> Path:
    """The snapshot's `.partial` directory, once the disk has room for what is known."""
    free = snapshots.free_bytes(root)
    if free < need:
        raise ConfigError(
            f"{root} has {human_size(free)} free; this snapshot needs about "
            f"{human_size(need)} (the buckets' objects and the database's dump). Nothing was "
            "written.",
            "Free space there, or pass --to (PALESS_SNAPSHOT_DIR) a directory on a larger "
            "disk.", code="no-space")
    for attempt in range(100):
        try:
            return snapshots.start(root, name if attempt == 0 else f"{name}-{attempt}")
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigError(f"Cannot create the snapshot's directory in {root}: "
                              f"{exc.strerror or exc}.",
                              "Pass --to (PALESS_SNAPSHOT_DIR) a directory you may write.",
                              code="snapshot-dir") from None
    raise ConfigError(f"{root} already holds 100 snapshots named {name}.",
                      "Remove old snapshots.", code="snapshot-dir")


def _disk_full(request: BackupRequest, free: int) -> DeployFailed:
    return DeployFailed(
        f"The disk of {request.root} filled up while the snapshot of {request.namespace} was "
        f"written ({human_size(free)} left); the unfinished snapshot was removed and "
        f"{request.namespace} was not changed.",
        "Free space there, or pass --to (PALESS_SNAPSHOT_DIR) a directory on a larger disk.",
        code="disk-full")


def _dump(kube: Kube, namespace: str, service: Service, directory: Path,
          progress: ImageProgress) -> FileEntry:
    transfer = Transfer(progress, "database", f"pg_dump in {service.pod}")
    with snapshots.HashingFile(directory, DATABASE_FILE) as out:
        result = exec_in(kube, namespace, service, postgres.command(postgres.DUMP_SCRIPT),
                         sink=out, on_bytes=transfer)
    if result.exit_code != 0:
        transfer.finish("failed", ok=False)
        raise DeployFailed(f"pg_dump failed in {service.pod} ({namespace}): "
                           f"{result.stderr.strip()[-400:]}",
                           "Check PostgreSQL's logs; nothing was changed.",
                           code="dump-failed", resource=service.workload)
    transfer.finish()
    return FileEntry(DATABASE_FILE, out.size, out.sha256, ROLE_DATABASE)


def _download(store: ObjectStore, listing: dict[str, list[StoredObject]], directory: Path,
              progress: ImageProgress, warn: Callable[[str], None]) -> list[FileEntry]:
    total = sum(o.size for objects in listing.values() for o in objects)
    count = sum(len(objects) for objects in listing.values())
    transfer = Transfer(progress, "objects", f"{count} object(s) of "
                                             f"{', '.join(listing) or 'no bucket'}", total)
    files: list[FileEntry] = []
    for bucket, objects in listing.items():
        paths = object_paths(bucket, [o.key for o in objects])
        for obj in objects:
            with snapshots.HashingFile(directory, paths[obj.key]) as out:
                try:
                    store.download(bucket, obj.key, out, transfer)
                except StoreError as exc:
                    if exc.code != "NoSuchKey":
                        transfer.finish("failed", ok=False)
                        raise store_failed(f"copying {bucket}/{obj.key}", exc) from None
            if out.size == 0 and obj.size:  # deleted since the listing: not in the snapshot
                out.path.unlink()
                warn(f"{bucket}/{obj.key} was deleted during the backup; not in the snapshot.")
                continue
            files.append(FileEntry(paths[obj.key], out.size, out.sha256, ROLE_OBJECT,
                                   bucket=bucket, key=obj.key, md5=out.md5, etag=obj.etag))
    transfer.finish(f"{count} object(s), {human_size(transfer.done)}")
    return files


def _metadata(kube: Kube, request: BackupRequest, directory: Path) -> list[FileEntry]:
    """The deployed manifests (Secret values redacted) and the configuration (masked)."""
    objects = deployed_objects(kube, request.namespace)
    out = snapshots.write_text(directory, MANIFESTS_FILE, to_yaml(redact_secrets(objects)))
    files = [FileEntry(MANIFESTS_FILE, out.size, out.sha256, ROLE_MANIFESTS)]
    if request.configuration is not None:
        out = snapshots.write_json(directory, CONFIGURATION_FILE, request.configuration)
        files.append(FileEntry(CONFIGURATION_FILE, out.size, out.sha256, ROLE_CONFIGURATION))
    return files


def deployed_objects(kube: Kube, namespace: str) -> list[JsonDict]:
    """What paless-deploy applied to the namespace, as the server holds it, without its
    server-side bookkeeping (managed fields, versions, status)."""
    found: list[JsonDict] = []
    with cluster_errors(kube, "reading the deployed objects", namespace):
        for kind in PRUNABLE:
            if not kind.namespaced:
                continue
            try:
                items, _ = with_retries(partial(kube.list, kind, namespace,
                                                labelSelector=instance_selector(namespace)))
            except ApiError as exc:
                if exc.status == 404:
                    continue
                raise
            for item in items:
                meta = {k: v for k, v in (item.get("metadata") or {}).items()
                        if k not in VOLATILE}
                found.append({**{k: v for k, v in item.items() if k != "status"},
                              "metadata": meta})
    return found
