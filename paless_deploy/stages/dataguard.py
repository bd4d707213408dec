"""What `all` and `deploy` do for the data, at four points of the deploy:

- before anything is applied: the production rule (no volume deleted with its claim) and a
  check of `--seed-from`'s snapshot;
- once the namespace lock is held: a sleeping preview is woken;
- before the migrate Job is applied (the graph applies it once the database it addresses
  is ready): a new namespace is seeded (`all --seed-from`), or a snapshot is taken when the
  migration would run with a new image (PALESS_SNAPSHOT_BEFORE_MIGRATE). A tree without a
  migrate Job is seeded before its first app workload, once its PostgreSQL is Ready;
- when the migration or what follows it fails: the report says how to restore that
  snapshot, and `--rollback-data` restores it with the previous images, saying so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from paless_deploy.adapters import snapshots
from paless_deploy.adapters.host import utc_now
from paless_deploy.adapters.kube import ApiError, cluster_errors, with_retries
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.data import policy, reclaim
from paless_deploy.core.data.snapshot import Snapshot, human_size
from paless_deploy.core.errors import ConfigError, PalessError
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.kinds import by_kind
from paless_deploy.core.manifests.namespaces import rfc3339
from paless_deploy.core.manifests.objects import name_of
from paless_deploy.core.reporting.progress import ImageProgress
from paless_deploy.core.reporting.report import Result
from paless_deploy.stages.backup import BackupRequest, database_info, take_snapshot
from paless_deploy.stages.datasources import read_services
from paless_deploy.stages.restore import (
    RestoreRequest,
    open_snapshot,
    restore_into,
    restore_with_apps_stopped,
)
from paless_deploy.stages.sleep import namespace_asleep, wake

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube
    from paless_deploy.core.configuration.config import Config

MIGRATE_PHASE = policy.MIGRATE_PHASE
# A seed goes in before the migrate Job (the Paless tree); a tree without one is seeded
# before the first workload of these phases (its apps)
SEED_BEFORE = (MIGRATE_PHASE, "scheduler", "worker", "web")
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"})
DATABASE_WAIT_S = 600.0  # without a run's deadline: the longest wait for a database


@dataclass(frozen=True)
class DataOptions:
    """The data flags of `all` and `deploy`."""

    seed_from: str | None = None  # all --seed-from NAMESPACE|SNAPSHOT
    rollback_data: bool = False  # --rollback-data
    allow_reclaim_delete: bool = False  # --allow-reclaim-delete


@dataclass
class DataGuard:
    """The data side of one deploy (see the module docstring)."""

    kube: Kube
    config: Config
    options: DataOptions
    result: Result
    info: Callable[[str], None]
    warn: Callable[[str], None]
    progress: Callable[[], ImageProgress]
    seed: policy.SeedSource | None = None  # --seed-from, read by `seed_source` first
    checked_seed: tuple[Snapshot, Path] | None = field(default=None, repr=False)
    snapshot: Snapshot | None = None  # taken before this run's migration
    snapshot_path: Path | None = None
    seed_settled: bool = False  # seeded, or found holding data already
    namespace_created: bool = False  # by this run: it holds no data to keep yet
    has_migrate_job: bool = False  # the rendered tree has one (set by before_apply)
    migration_checked: set[str] = field(default_factory=set)  # phases asked about a snapshot
    # what is left of the run's deadline (waits for the database, for the apps of a restore)
    remaining_s: Callable[[], float] = lambda: DATABASE_WAIT_S

    @property
    def namespace(self) -> str:
        return self.config.namespace

    # -- before anything is applied ------------------------------------------------------

    def before_apply(self, objects: Sequence[JsonDict]) -> None:
        """Exit 2 for a prod deploy onto volumes deleted with their claims (unless
        accepted), and for a `--seed-from` namespace that does not exist."""
        self.has_migrate_job = any(policy.is_migrate_job(o) for o in objects)
        if self.config.overlay == reclaim.PROD_OVERLAY and not reclaim.allowed(
                self.options.allow_reclaim_delete,
                self.config.value(reclaim.ALLOW_VARIABLE)):
            doomed = reclaim.doomed_claims(objects, self._storage_facts())
            if doomed:
                raise reclaim.refusal(doomed, self.config.overlay)
        if self.seed is not None and self.seed.namespace is not None:
            self._require_namespace(self.seed.namespace)

    def _storage_facts(self) -> reclaim.StorageFacts:
        lists: list[list[JsonDict]] = []
        for kind, namespace in (("StorageClass", None), ("PersistentVolume", None),
                                ("PersistentVolumeClaim", self.namespace)):
            try:
                with cluster_errors(self.kube, f"listing {kind}s", namespace):
                    lists.append(with_retries(partial(self.kube.list, by_kind(kind),
                                                      namespace))[0])
            except ApiError as exc:
                if exc.status != 404:
                    raise
                lists.append([])
        return reclaim.StorageFacts(*lists)

    def _require_namespace(self, namespace: str) -> None:
        with cluster_errors(self.kube, f"reading namespace {namespace}", namespace):
            found = with_retries(partial(self.kube.read, by_kind("Namespace"), namespace))
        if found is None:
            raise ConfigError(f"--seed-from {namespace}: there is no namespace {namespace} (and "
                              "no snapshot directory of that name). Nothing was applied.",
                              "Name the namespace to copy (e.g. staging) or a snapshot "
                              "directory.", code="no-seed-source")

    # -- under the lock, before the first apply --------------------------------------------

    def after_lock(self, namespace_created: bool) -> None:
        """A preview that sleeps is woken before anything is applied to it (its replicas
        back as they were, so the apply changes nothing it did not change). A namespace
        this run created has no data to keep."""
        self.namespace_created = namespace_created
        if not namespace_created and namespace_asleep(self.kube, self.namespace):
            woken = wake(self.kube, self.namespace, self.info)
            self.result.extra["woken"] = [w.to_json() for w in woken]

    # -- before the migrate Job -------------------------------------------------------------

    def wants(self, obj: JsonDict, phase: str) -> bool:
        """Whether applying `obj` (of `phase`) waits for this guard first: the migrate Job
        (a seed, a snapshot), or, for a seed in a tree without one, its first app workload.
        Everything else (Services, ConfigMaps, policies of those phases) goes on at once."""
        if policy.is_migrate_job(obj):
            return ((self.seed is not None and not self.seed_settled)
                    or phase not in self.migration_checked)
        return (self.seed is not None and not self.seed_settled and not self.has_migrate_job
                and phase in SEED_BEFORE and obj.get("kind") in WORKLOAD_KINDS)

    def before_object(self, obj: JsonDict, phase: str, objects: Sequence[JsonDict]) -> None:
        """Before `obj` is applied (when `wants` said so; `objects`: its phase's): the seed,
        else the snapshot before a migration with a new image."""
        if self.seed is not None and not self.seed_settled:
            self.seed_settled = True
            self._await_database()
            if not self.namespace_created and self._database_holds_data():
                self.info(f"--seed-from: {self.namespace} holds data already; not seeded again")
            else:
                self._seed(obj if policy.is_migrate_job(obj) else None)
                self.migration_checked.add(phase)
                return
        if not policy.is_migrate_job(obj) or phase in self.migration_checked:
            return
        self.migration_checked.add(phase)
        jobs = [f"Job/{name_of(o)}" for o in objects
                if policy.is_migrate_job(o) and policy.runs_new_image(o, self._live_job(o))]
        mode = policy.snapshot_mode(self.config.value("PALESS_SNAPSHOT_BEFORE_MIGRATE"),
                                    self.config.settings["PALESS_SNAPSHOT_BEFORE_MIGRATE"]
                                    .describe_source())
        # the database is asked only when the rest says yes: a no-op redeploy asks nothing
        decision = policy.before_migrate(mode, self.config.overlay, jobs, True)
        if not decision.take:
            if jobs:
                self.info(f"no snapshot before the migration: {decision.reason}")
            return
        try:
            self._snapshot_before_migration(mode, jobs)
        except PalessError as exc:
            exc.message += " No snapshot could be taken, so the migration did not run."
            exc.hint += (" To deploy without a snapshot, set PALESS_SNAPSHOT_BEFORE_MIGRATE="
                         "never (or fix the cause and deploy again).")
            raise

    def _await_database(self) -> None:
        """The namespace's PostgreSQL with a Ready pod, watched for (a tree without a
        migrate Job applies its apps without waiting for the database; a seed reads it)."""
        found = read_services(self.kube, self.namespace).postgres
        if found is None or found.pod is not None:
            return
        kind, _, name = found.workload.partition("/")
        self.info(f"--seed-from: waiting for {found.workload} to be Ready")
        with cluster_errors(self.kube, f"watching {found.workload}", self.namespace):
            self.kube.watch_until(by_kind(kind), name, self.namespace,
                                  lambda o: int(((o or {}).get("status") or {})
                                                .get("readyReplicas") or 0) > 0,
                                  max(1.0, self.remaining_s()))

    def _snapshot_before_migration(self, mode: str, jobs: list[str]) -> None:
        holds = None if self.namespace_created else self._database_holds_data()
        decision = policy.before_migrate(mode, self.config.overlay, jobs, holds)
        if not decision.take:
            self.info(f"no snapshot before the migration: {decision.reason}")
            return
        self.info(f"taking a snapshot before the migration: {decision.reason}")
        self.snapshot, self.snapshot_path = take_snapshot(self.kube, BackupRequest(
            self.namespace, snapshot_root(self.config), f"before the migration: "
            f"{decision.reason}", self.config.overlay, None, self.warn), self.progress())
        self.result.extra["snapshot"] = self.snapshot.summary(str(self.snapshot_path))
        self.info(f"snapshot {self.snapshot_path} ({human_size(self.snapshot.size)}, schema "
                  f"{self.snapshot.schema.version}) taken in {self.snapshot.duration_s:.1f}s")

    def _live_job(self, job: JsonDict) -> JsonDict | None:
        with cluster_errors(self.kube, f"reading Job/{name_of(job)}", self.namespace):
            return with_retries(partial(self.kube.read, by_kind("Job"), name_of(job),
                                        self.namespace))

    def _database_holds_data(self) -> bool | None:
        """None: no PostgreSQL (or none ready: a first deploy); else whether it applied
        any migration."""
        found = read_services(self.kube, self.namespace).postgres
        if found is None or found.pod is None:
            return None
        return bool(database_info(self.kube, self.namespace, found).schema.applied)

    def _seed(self, migrate_job: JsonDict | None) -> None:
        started = time.monotonic()
        assert self.seed is not None
        with self._seed_snapshot() as (snapshot, directory):
            self.info(f"seeding {self.namespace} from {self.seed.describe()} "
                      f"({human_size(snapshot.size)}, schema {snapshot.schema.version})")
            done = restore_into(self.kube, RestoreRequest(
                self.namespace, migrate_job, self.info, self.warn), snapshot, directory,
                self.progress())
        took = time.monotonic() - started
        self._mark_seeded(snapshot, utc_now())
        self.result.extra["seed"] = {"from": self.seed.describe(), "snapshot": snapshot.name,
                                     "source_namespace": snapshot.namespace,
                                     "schema_version": snapshot.schema.version,
                                     "size": snapshot.size, **done,
                                     "duration_s": round(took, 3)}
        self.info(f"seeded {self.namespace} from {self.seed.describe()} in {took:.1f}s")

    @contextlib.contextmanager
    def _seed_snapshot(self) -> Iterator[tuple[Snapshot, Path]]:
        """The seed's snapshot: the one checked before the apply, or one of the source
        namespace taken now into a temporary directory (removed afterwards)."""
        if self.checked_seed is not None:
            yield self.checked_seed
            return
        assert self.seed is not None and self.seed.namespace is not None
        with tempfile.TemporaryDirectory(prefix="paless-seed-") as tmp:
            yield take_snapshot(self.kube, BackupRequest(
                self.seed.namespace, Path(tmp), f"seed of {self.namespace}", "", None,
                self.warn), self.progress())

    def _mark_seeded(self, snapshot: Snapshot, now: dt.datetime) -> None:
        note = f"{snapshot.namespace} ({snapshot.name}) at {rfc3339(now)}"
        with cluster_errors(self.kube, "recording the seed", self.namespace):
            self.kube.patch(by_kind("Namespace"), self.namespace, None,
                            {"metadata": {"annotations": {labels.SEEDED_FROM: note}}},
                            manager=labels.FIELD_MANAGER)

    # -- when the deploy failed ----------------------------------------------------------

    @property
    def rolls_back_data(self) -> bool:
        """--rollback-data, and this run took a snapshot to return to: the previous images
        come back with the data."""
        return self.options.rollback_data and self.snapshot is not None

    def on_failure(self, error: PalessError, rolled: list[str]) -> None:
        """After a failure at or after the migration: restore the snapshot (the images were
        rolled back, `rolled`, with --rollback-data), or say how."""
        if self.snapshot is None or self.snapshot_path is None:
            if self.options.rollback_data:
                self.warn("--rollback-data: no snapshot was taken in this run (no migration "
                          "ran with a new image, or PALESS_SNAPSHOT_BEFORE_MIGRATE said no); "
                          "the data was not restored.")
            return
        path, ns = self.snapshot_path, self.namespace
        if not self.options.rollback_data:
            error.hint += (f" The data was saved before the migration in {path}; to return to "
                           f"it, deploy the previous images and run `paless-deploy -n {ns} "
                           f"restore {path}` (--rollback-data does both when a deploy fails).")
            return
        self.info(f"--rollback-data: restoring the data of {path} (taken before the migration)")
        done = restore_with_apps_stopped(
            self.kube, RestoreRequest(ns, None, self.info, self.warn), self.snapshot, path,
            self.progress(), self.remaining_s)
        self.result.extra["rolled_back_data"] = {**done, "path": str(path),
                                                 "images_rolled_back": rolled}
        error.message += (f" --rollback-data returned the data to snapshot {path} (taken "
                          f"before the migration) and {len(rolled)} workload(s) to their "
                          "previous images.")


SeedPlan = tuple[policy.SeedSource | None, tuple[Snapshot, Path] | None]


def seed_source(options: DataOptions, namespace: str, progress: Callable[[], ImageProgress]
                ) -> SeedPlan:
    """--seed-from read before any I/O but the local disk's: a namespace name, or a snapshot
    directory checked whole (exit 2 for a missing, truncated or altered one)."""
    if not options.seed_from:
        return None, None
    seed = policy.seed_source(options.seed_from, snapshots.is_directory(options.seed_from),
                              namespace)
    return seed, open_snapshot(seed.snapshot, progress()) if seed.snapshot else None


def snapshot_root(config: Config) -> Path:
    """Where a deploy's snapshots go: PALESS_SNAPSHOT_DIR, else the data directory."""
    return Path(policy.snapshot_root(config.value("PALESS_SNAPSHOT_DIR"), os.environ,
                                     Path.home())).expanduser()

