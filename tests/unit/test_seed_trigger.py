"""When the data guard stops the rollout: before the migrate Job (which the graph applies
once the database is ready), never before a Service or ConfigMap of the same phase, and
before the first app workload only in a tree without a migrate Job. A seed read the target's
database when the web phase's Service went first (the last CI's seeded branch, exit 1)."""

from __future__ import annotations

from typing import Any, cast

from paless_deploy.core.data import policy
from paless_deploy.stages.dataguard import DataGuard, DataOptions


def _obj(kind: str, name: str, phase: str | None = None) -> dict:
    meta: dict[str, Any] = {"name": name}
    if phase:
        meta["annotations"] = {"paless.io/phase": phase}
    return {"apiVersion": "v1", "kind": kind, "metadata": meta}


MIGRATE = _obj("Job", "paperless-migrate", "migrate")
WEB_SERVICE = _obj("Service", "paperless-web")
WEB = _obj("Deployment", "paperless-web")
WORKER = _obj("Deployment", "paperless-worker")


def _guard(seed: bool, tree: list[dict]) -> DataGuard:
    guard = DataGuard(cast(Any, None), cast(Any, None), DataOptions(), cast(Any, None),
                      print, print, cast(Any, None),
                      seed=policy.SeedSource(namespace="staging") if seed else None)
    guard.has_migrate_job = any(policy.is_migrate_job(o) for o in tree)
    return guard


def test_the_seed_waits_for_the_migrate_job_not_the_web_phases_service():
    assert policy.is_migrate_job(MIGRATE)
    guard = _guard(True, [MIGRATE, WEB_SERVICE, WEB])
    assert not guard.wants(WEB_SERVICE, "web")
    assert not guard.wants(WEB, "web")  # the migrate Job carries the seed
    assert guard.wants(MIGRATE, "migrate")


def test_a_tree_without_a_migrate_job_is_seeded_before_its_first_app_workload():
    guard = _guard(True, [WEB_SERVICE, WEB, WORKER])
    assert not guard.wants(WEB_SERVICE, "web")
    assert guard.wants(WEB, "web")
    assert not guard.wants(WEB, "config")  # a workload of another phase is not an app
    guard.seed_settled = True
    assert not guard.wants(WORKER, "worker")


def test_without_a_seed_only_the_migrate_job_is_stopped_once_per_phase():
    guard = _guard(False, [MIGRATE, WEB])
    assert not guard.wants(WEB, "web")
    assert guard.wants(MIGRATE, "migrate")
    guard.migration_checked.add("migrate")
    assert not guard.wants(MIGRATE, "migrate")
