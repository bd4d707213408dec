"""Restore a snapshot into a namespace: checked first (every file against the manifest, the
schema against the image about to run), then the database (restored beside the live one
in one transaction, then swapped in), then each bucket (changed objects uploaded, objects
the snapshot lacks deleted).

Nothing in the namespace changes before the snapshot passed its checks; the live database
is replaced only once its replacement is complete. The target's own credentials are used
throughout: a snapshot carries no secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from paless_deploy.adapters import snapshots
from paless_deploy.adapters.host import utc_now
from paless_deploy.adapters.kube import ApiError, TransportError
from paless_deploy.adapters.objectstore import ObjectStore, StoreError
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.data import postgres, schema
from paless_deploy.core.data.services import Service
from paless_deploy.core.data.sleep import to_stop_for_restore
from paless_deploy.core.data.snapshot import (
    MANIFEST,
    PARTIAL_SUFFIX,
    FileState,
    Snapshot,
    bad_snapshot,
    checksum_problems,
    human_size,
    parse_snapshot,
    size_problems,
    unusable,
)
from paless_deploy.core.errors import ConfigError, DeployFailed, PalessError
from paless_deploy.core.reporting.progress import ImageProgress
from paless_deploy.stages.backup import store_failed
from paless_deploy.stages.datasources import exec_in, open_store, read_services, require
from paless_deploy.stages.schemaprobe import image_migrations
from paless_deploy.stages.sleep import put_to_sleep, wait_ready, wait_stopped, wake
from paless_deploy.stages.transfer import Transfer

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube


def open_snapshot(path_text: str, progress: ImageProgress) -> tuple[Snapshot, Path]:
    """The snapshot at `path_text`, every file checked against its manifest (sizes first,
    then sha256). ConfigError (exit 2) for anything missing, truncated or altered."""
    directory = Path(path_text).expanduser()
    if not directory.is_dir():
        partial = directory.with_name(directory.name + PARTIAL_SUFFIX)
        raise ConfigError(
            f"Snapshot {directory} does not exist"
            + (f" (only {partial.name}, a snapshot that was cut short)" if partial.is_dir()
               else "") + ". Nothing was changed.",
            "Pass the directory `paless-deploy backup` printed (`ls` "
            f"{directory.parent} lists the snapshots there).", code="no-snapshot")
    try:
        snapshot = parse_snapshot(snapshots.read_manifest(directory), str(directory))
    except FileNotFoundError:
        raise bad_snapshot(str(directory), f"it holds no {MANIFEST} (a backup cut short, or "
                                           "not a snapshot)") from None
    except (ValueError, OSError) as exc:
        raise bad_snapshot(str(directory), f"{MANIFEST} cannot be read: {exc}") from None
    sizes = snapshots.sizes(directory, [f.path for f in snapshot.files])
    found = {path: FileState(size) for path, size in sizes.items()}
    problems = size_problems(snapshot, found)
    if problems:
        raise unusable(str(directory), problems)
    transfer = Transfer(progress, "verify", f"checksums of {len(snapshot.files)} file(s)",
                        snapshot.size)
    with progress:
        found = {f.path: FileState(f.size, snapshots.sha256_of(directory / f.path, transfer))
                 for f in snapshot.files}
        transfer.finish()
    problems = checksum_problems(snapshot, found)
    if problems:
        raise unusable(str(directory), problems)
    return snapshot, directory


@dataclass(frozen=True)
class RestoreRequest:
    """Where to restore, and what the image about to run must know."""

    namespace: str
    schema_template: JsonDict | None = None  # a pod template of the image about to run
    say: Callable[[str], None] = field(default=lambda text: None)
    warn: Callable[[str], None] = field(default=lambda text: None)


def check_target(kube: Kube, namespace: str, snapshot: Snapshot) -> tuple[Service,
                                                                          Service | None]:
    """The target's PostgreSQL and (when the snapshot holds buckets) MinIO, each with a Ready
    pod; exit 2 when the namespace has none (nothing was changed)."""
    found = read_services(kube, namespace)
    database = require(found.postgres, namespace, "PostgreSQL")
    store = require(found.minio, namespace, "MinIO") if snapshot.buckets else None
    return database, store


def restore_into(kube: Kube, request: RestoreRequest, snapshot: Snapshot, directory: Path,
                 progress: ImageProgress) -> JsonDict:
    """Restore a checked snapshot; what was done, for the report."""
    started = time.monotonic()
    database, store_service = check_target(kube, request.namespace, snapshot)
    if request.schema_template is not None:
        check_schema(kube, request, snapshot)
    with progress:
        _restore_database(kube, request.namespace, database, snapshot, directory, progress)
        request.say(f"database {snapshot.database} restored into {database.workload} "
                    f"(schema {snapshot.schema.version})")
        objects: JsonDict = {}
        if store_service is not None:
            with open_store(kube, request.namespace, store_service) as store:
                objects = _restore_buckets(store, snapshot, directory, progress)
    return {"snapshot": snapshot.name, "namespace": request.namespace,
            "database": snapshot.database, "schema_version": snapshot.schema.version,
            **objects, "duration_s": round(time.monotonic() - started, 3)}


def restore_with_apps_stopped(kube: Kube, request: RestoreRequest, snapshot: Snapshot,
                              directory: Path, progress: ImageProgress,
                              remaining_s: Callable[[], float]) -> JsonDict:
    """`restore_into` with every workload but the data services stopped while it writes (no
    app writes rows the restore then drops, or reads a database without its objects), and
    started again afterwards, whether the restore went through or not; `remaining_s`: what
    is left of the run's deadline. Stopped is asleep: a restore cut short leaves the
    namespace asleep, and `wake` or the next deploy brings the apps back."""
    namespace = request.namespace
    stopped = put_to_sleep(kube, namespace, f"restoring {snapshot.name}", utc_now(),
                           select=to_stop_for_restore)
    try:
        if stopped:
            request.say(f"stopped {', '.join(stopped)} while the data is restored")
            left = wait_stopped(kube, namespace, stopped, max(1.0, remaining_s()))
            if left:
                raise DeployFailed(
                    f"{', '.join(left)} in {namespace} did not stop before the deadline; "
                    "nothing was restored (the apps were started again).",
                    f"See why they hang on (`kubectl -n {namespace} describe "
                    f"{left[0].lower()}`), then restore again with a longer --timeout.",
                    code="restore-failed", resource=left[0])
        done = restore_into(kube, request, snapshot, directory, progress)
    except BaseException:
        _wake_after_failure(kube, request)  # never raised over the restore's own error
        raise
    woken = wake(kube, namespace, request.say)
    for entry in woken:
        wait_ready(kube, namespace, entry.ref, max(1.0, remaining_s()))
    return {**done, "apps_stopped": stopped}


def _wake_after_failure(kube: Kube, request: RestoreRequest) -> None:
    """Start the stopped apps again after a failed restore; when that fails too, say so
    (the restore's error is the one the run ends with)."""
    try:
        wake(kube, request.namespace, request.say)
    except (PalessError, ApiError, TransportError) as exc:
        request.warn(f"The apps of {request.namespace} could not be started again after the "
                     f"failed restore ({exc}); they stay asleep until `paless-deploy -n "
                     f"{request.namespace} wake` or the next deploy.")


def check_schema(kube: Kube, request: RestoreRequest, snapshot: Snapshot) -> None:
    """Exit 2 when the snapshot's database applied migrations the image does not carry."""
    assert request.schema_template is not None
    known = image_migrations(kube, request.namespace, request.schema_template)
    if known is None:
        request.warn("Could not read which migrations the image about to run carries (it "
                     "did not run, or is not a Django application); the snapshot's schema "
                     f"({snapshot.schema.version}) was not compared with it.")
        return
    newer = schema.unknown_to_image(snapshot.schema, known)
    if newer:
        raise ConfigError(
            f"Snapshot {snapshot.name} is newer than the image about to run in "
            f"{request.namespace}: its database applied {schema.describe(newer)}, which the "
            "image does not carry. Nothing was changed.",
            "Deploy an image of the code that made the snapshot (or newer) first, then "
            "restore; or restore an older snapshot.", code="snapshot-newer")


def _restore_database(kube: Kube, namespace: str, service: Service, snapshot: Snapshot,
                      directory: Path, progress: ImageProgress) -> None:
    entry = snapshot.database_file
    if entry is None:
        return
    transfer = Transfer(progress, "database", f"pg_restore in {service.pod}", entry.size)
    with snapshots.open_file(directory / entry.path) as dump:
        result = exec_in(kube, namespace, service, postgres.command(postgres.RESTORE_SCRIPT),
                         stdin=dump, on_bytes=transfer)
    if result.exit_code == 0:
        transfer.finish()
        return
    transfer.finish("failed", ok=False)
    said = result.stderr.strip()[-500:]
    untouched = result.exit_code in (postgres.RESTORE_FAILED, postgres.RESTORE_NOT_STARTED,
                                     postgres.RESTORE_NOT_SWAPPED)
    raise DeployFailed(
        f"The database of {namespace} could not be restored from {snapshot.name}: {said}"
        + (" The live database is untouched." if untouched else ""),
        "Read PostgreSQL's words above (a role the dump names that the target lacks, a full "
        "volume); fix it and restore again.", code="restore-failed",
        resource=service.workload)


def _restore_buckets(store: ObjectStore, snapshot: Snapshot, directory: Path,
                     progress: ImageProgress) -> JsonDict:
    """Each bucket as the snapshot has it: changed or missing objects uploaded, then the
    objects it lacks deleted (never the other way round: no moment with fewer objects)."""
    total = snapshot.size - sum(f.size for f in snapshot.files if f.role != "object")
    transfer = Transfer(progress, "objects", f"{len(snapshot.buckets)} bucket(s)", total)
    uploaded = unchanged = deleted = 0
    try:
        for bucket in snapshot.buckets:
            store.ensure_bucket(bucket)
            live = {o.key: o for o in store.objects(bucket)}
            wanted = snapshot.objects(bucket)
            for entry in wanted:
                there = live.get(entry.key)
                if there is not None and there.size == entry.size and there.etag in (
                        entry.md5, entry.etag):
                    unchanged += 1
                    transfer(entry.size)
                    continue
                with snapshots.open_file(directory / entry.path) as source:
                    store.upload(bucket, entry.key, source, entry.size, transfer)
                uploaded += 1
            keep = {e.key for e in wanted}
            for key in sorted(set(live) - keep):
                store.delete(bucket, key)
                deleted += 1
    except StoreError as exc:
        transfer.finish("failed", ok=False)
        raise store_failed("restoring the buckets (the database is restored already; "
                           "restore again to finish)", exc) from None
    transfer.finish(f"{uploaded} uploaded, {unchanged} unchanged, {deleted} deleted, "
                    f"{human_size(transfer.done)}")
    return {"buckets": list(snapshot.buckets), "objects_uploaded": uploaded,
            "objects_unchanged": unchanged, "objects_deleted": deleted}
