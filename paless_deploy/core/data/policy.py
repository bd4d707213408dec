"""When a deploy takes a snapshot, where snapshots go, and what `--seed-from` names.

A deploy that would run the migrate Job with a new image on a database that holds data
takes a snapshot first: by default outside the dev overlay (staging, prod, any other),
always or never when PALESS_SNAPSHOT_BEFORE_MIGRATE says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.errors import ConfigError, shown
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.components import component_of
from paless_deploy.core.manifests.podspec import pod_containers

AUTO, ALWAYS, NEVER = "auto", "always", "never"
MODES = (AUTO, ALWAYS, NEVER)
DEV_OVERLAY = "dev"
MIGRATE_PHASE = "migrate"
SNAPSHOT_DIR_NAME = ("paless-deploy", "snapshots")  # under $XDG_DATA_HOME (~/.local/share)


def snapshot_mode(value: str | None, source: str) -> str:
    """PALESS_SNAPSHOT_BEFORE_MIGRATE: auto (the default), always or never."""
    mode = (value or AUTO).strip().lower()
    if mode not in MODES:
        raise ConfigError(
            f"PALESS_SNAPSHOT_BEFORE_MIGRATE ({source}) is {shown(value)}.",
            "Set it to auto (a snapshot before migrations outside the dev overlay), always "
            "or never.", code="bad-value")
    return mode


@dataclass(frozen=True)
class SnapshotDecision:
    """Whether to take a snapshot before this deploy's migrations, and why (said either way)."""

    take: bool
    reason: str


def before_migrate(mode: str, overlay: str, migrate_jobs: list[str],
                   database_holds_data: bool | None) -> SnapshotDecision:
    """The rule. `migrate_jobs`: the migrate Jobs this deploy would run with a new image;
    `database_holds_data`: whether PostgreSQL is there with applied migrations (None: there
    is none yet, or the namespace is new)."""
    if not migrate_jobs:
        return SnapshotDecision(False, "no migration runs with a new image")
    if mode == NEVER:
        return SnapshotDecision(False, "PALESS_SNAPSHOT_BEFORE_MIGRATE=never")
    if mode == AUTO and overlay == DEV_OVERLAY:
        return SnapshotDecision(False, "the dev overlay (PALESS_SNAPSHOT_BEFORE_MIGRATE=auto "
                                       "snapshots outside dev; set it to always)")
    if database_holds_data is None:
        return SnapshotDecision(False, "a first deploy (a new namespace, or no PostgreSQL yet) "
                                       "has no data to keep")
    if not database_holds_data:
        return SnapshotDecision(False, "the database has no migrations applied yet")
    why = "always" if mode == ALWAYS else f"auto, overlay {overlay}"
    return SnapshotDecision(True, f"{', '.join(migrate_jobs)} runs a new image "
                                  f"(PALESS_SNAPSHOT_BEFORE_MIGRATE={why})")


def is_migrate_job(obj: ApiObject) -> bool:
    """The migration Job: a Job of the migrate phase (annotated), or whose component or name
    says migrate."""
    if obj.get("kind") != "Job":
        return False
    meta = obj.get("metadata") or {}
    if (meta.get("annotations") or {}).get(labels.PHASE) == MIGRATE_PHASE:
        return True
    found = component_of(obj)
    names = [str(meta.get("name") or ""), *(str(v) for v in (meta.get("labels") or {}).values())]
    return (found is None or found[0] not in ("postgres", "minio", "redis")) and any(
        "migrat" in n for n in names)


def runs_new_image(rendered: ApiObject, live: ApiObject | None) -> bool:
    """The migrate Job would run an image that has not migrated this database yet: it is
    new, or its containers' images are not the live Job's (a Job changed otherwise reruns
    the same migrations, which find nothing to do)."""
    if live is None:
        return True
    return [c.get("image") for c in pod_containers(rendered)] != [
        c.get("image") for c in pod_containers(live)]


def snapshot_root(configured: str | None, environ: Mapping[str, str], home: PurePath) -> str:
    """PALESS_SNAPSHOT_DIR, else $XDG_DATA_HOME/paless-deploy/snapshots, else
    ~/.local/share/paless-deploy/snapshots (data, not cache: never under ~/.cache)."""
    if configured and configured.strip():
        return configured.strip()
    base = environ.get("XDG_DATA_HOME") or str(home / ".local" / "share")
    return str(PurePath(base, *SNAPSHOT_DIR_NAME))


@dataclass(frozen=True)
class SeedSource:
    """What `--seed-from` names: a snapshot directory, or a namespace to snapshot first."""

    namespace: str | None = None
    snapshot: str | None = None

    def describe(self) -> str:
        return f"snapshot {self.snapshot}" if self.snapshot else f"namespace {self.namespace}"


def seed_source(value: str, is_directory: bool, target_namespace: str) -> SeedSource:
    """A path to an existing directory is a snapshot; a DNS label a namespace; anything else
    is exit 2 (a snapshot path that does not exist, most likely)."""
    text = value.strip()
    if is_directory:
        return SeedSource(snapshot=text)
    if re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", text):
        if text == target_namespace:
            raise ConfigError(f"--seed-from {text} names the namespace being deployed.",
                              "Seed from another namespace (staging) or a snapshot.",
                              code="bad-seed")
        return SeedSource(namespace=text)
    raise ConfigError(
        f"--seed-from {shown(value)} is neither an existing snapshot directory nor a "
        "namespace name.",
        "Pass a namespace (e.g. --seed-from staging) or the directory of a snapshot "
        "`paless-deploy backup` wrote.", code="no-snapshot")
