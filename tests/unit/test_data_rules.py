"""The data rules on plain data: when a deploy snapshots, what --seed-from names, which
claims lose their data with them, what a preview may use, which preview sleeps and how it
wakes, where a namespace's data services are and what MinIO's credentials are."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import PurePath

import pytest

from paless_deploy.core.data import policy, previews, reclaim, services, sleep
from paless_deploy.core.errors import ConfigError

NOW = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)


# -- a snapshot before migrations -------------------------------------------------------


@pytest.mark.parametrize("mode, overlay, jobs, holds, take, phrase", [
    ("auto", "staging", ["Job/migrate"], True, True, "PALESS_SNAPSHOT_BEFORE_MIGRATE=auto"),
    ("auto", "prod", ["Job/migrate"], True, True, "overlay prod"),
    ("auto", "dev", ["Job/migrate"], True, False, "the dev overlay"),
    ("always", "dev", ["Job/migrate"], True, True, "=always"),
    ("never", "prod", ["Job/migrate"], True, False, "=never"),
    ("auto", "prod", [], True, False, "no migration runs with a new image"),
    ("auto", "prod", ["Job/migrate"], None, False, "first deploy"),
    ("always", "prod", ["Job/migrate"], False, False, "no migrations applied"),
])
def test_when_a_deploy_takes_a_snapshot_before_its_migration(mode, overlay, jobs, holds, take,
                                                             phrase):
    decision = policy.before_migrate(mode, overlay, jobs, holds)
    assert decision.take is take and phrase in decision.reason


def test_a_migration_runs_a_new_image_when_the_jobs_images_differ():
    def job(image: str) -> dict:
        return {"kind": "Job", "spec": {"template": {"spec": {"containers": [
            {"name": "migrate", "image": image}]}}}}
    assert policy.runs_new_image(job("web:2"), None)
    assert policy.runs_new_image(job("web:2"), job("web:1"))
    assert not policy.runs_new_image(job("web:1"), job("web:1"))


def test_the_snapshot_mode_is_auto_always_or_never():
    assert policy.snapshot_mode(None, "default") == "auto"
    assert policy.snapshot_mode(" Always ", "environment") == "always"
    with pytest.raises(ConfigError, match="auto .* always or never"):
        policy.snapshot_mode("sometimes", "environment")


def test_the_migration_job_is_found_by_phase_component_or_name():
    job = {"kind": "Job", "metadata": {"name": "x", "annotations": {"paless.io/phase":
                                                                    "migrate"}}}
    assert policy.is_migrate_job(job)
    assert policy.is_migrate_job({"kind": "Job", "metadata": {"name": "db-migrations"}})
    assert policy.is_migrate_job({"kind": "Job", "metadata": {
        "name": "setup", "labels": {"app.kubernetes.io/component": "migrate"}}})
    assert not policy.is_migrate_job({"kind": "Job", "metadata": {"name": "postgres-init"}})
    assert not policy.is_migrate_job({"kind": "Deployment", "metadata": {"name": "migrate"}})


def test_where_snapshots_go():
    home = PurePath("/home/u")
    assert policy.snapshot_root(" /backups ", {}, home) == "/backups"
    assert policy.snapshot_root(None, {"XDG_DATA_HOME": "/data"}, home) == \
        "/data/paless-deploy/snapshots"
    assert policy.snapshot_root("", {}, home) == "/home/u/.local/share/paless-deploy/snapshots"


def test_seed_from_names_a_snapshot_or_a_namespace():
    assert policy.seed_source("./snaps/x", True, "b").snapshot == "./snaps/x"
    assert policy.seed_source("staging", False, "b").namespace == "staging"
    with pytest.raises(ConfigError) as err:
        policy.seed_source("./snaps/nope", False, "b")
    assert err.value.code == "no-snapshot"
    with pytest.raises(ConfigError, match="namespace being deployed"):
        policy.seed_source("b", False, "b")


# -- the production rule ----------------------------------------------------------------


def storage_class(name: str, policy_: str | None, default: bool = False) -> dict:
    sc = {"kind": "StorageClass", "metadata": {"name": name, "annotations": {
        "storageclass.kubernetes.io/is-default-class": "true" if default else "false"}}}
    if policy_:
        sc["reclaimPolicy"] = policy_
    return sc


def claim(name: str, **spec) -> dict:
    return {"kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


def statefulset(class_name: str | None) -> dict:
    spec: dict = {"accessModes": ["ReadWriteOnce"]}
    if class_name is not None:
        spec["storageClassName"] = class_name
    return {"kind": "StatefulSet", "metadata": {"name": "postgres"},
            "spec": {"replicas": 1, "volumeClaimTemplates": [
                {"metadata": {"name": "data"}, "spec": spec}]}}


CLASSES = [storage_class("local-path", "Delete", default=True),
           storage_class("keep", "Retain"), storage_class("unset", None)]


def test_claims_through_a_delete_class_lose_their_data():
    facts = reclaim.StorageFacts(CLASSES)
    doomed = reclaim.doomed_claims([statefulset(None), claim("a", storageClassName="keep"),
                                    claim("b", storageClassName="unset"),
                                    claim("c", storageClassName="")], facts)
    assert [(d.claim, d.through) for d in doomed] == [
        ("StatefulSet/postgres claim data", "StorageClass local-path"),
        ("PersistentVolumeClaim/b", "StorageClass unset")]  # a class without a policy: Delete


def test_claims_bound_to_volumes_are_judged_by_the_volume():
    volumes = [{"kind": "PersistentVolume", "metadata": {"name": "pv-1"},
                "spec": {"persistentVolumeReclaimPolicy": "Delete"}},
               {"kind": "PersistentVolume", "metadata": {"name": "pv-2"},
                "spec": {"persistentVolumeReclaimPolicy": "Retain"}}]
    live = [{"metadata": {"name": "data-postgres-0"}, "spec": {"volumeName": "pv-1"}}]
    facts = reclaim.StorageFacts(CLASSES, volumes, live)
    # the StatefulSet's live claim is bound to pv-1 (Delete), though its class is Retain
    doomed = reclaim.doomed_claims([statefulset("keep"), claim("x", volumeName="pv-2")], facts)
    assert [(d.claim, d.volume) for d in doomed] == [("StatefulSet/postgres claim data",
                                                      "pv-1")]
    error = reclaim.refusal(doomed, "prod")
    assert error.exit_code == 2 and error.code == "reclaim-delete"
    assert "kubectl patch pv pv-1" in error.hint and "--allow-reclaim-delete" in error.hint
    assert "PALESS_ALLOW_RECLAIM_DELETE=true" in error.hint


def test_the_refusal_names_the_class_and_the_fix():
    doomed = reclaim.doomed_claims([statefulset(None)], reclaim.StorageFacts(CLASSES))
    error = reclaim.refusal(doomed, "prod")
    assert "binds through StorageClass local-path (reclaim policy Delete)" in error.message
    assert "Nothing was applied" in error.message
    assert "reclaimPolicy Retain" in error.hint and "STORAGE_CLASS" in error.hint


@pytest.mark.parametrize("flag, variable, ok", [
    (True, None, True), (False, "true", True), (False, "1", True), (False, "no", False),
    (False, None, False)])
def test_accepting_it_takes_the_flag_or_the_variable(flag, variable, ok):
    assert reclaim.allowed(flag, variable) is ok


# -- previews ---------------------------------------------------------------------------


def rendered(values: dict[str, str], branch: bool) -> list[dict]:
    return previews.preview_objects(values.get, lambda name: "from the environment", branch)


def test_a_branch_namespace_gets_a_quota_and_container_defaults():
    quota, limits = rendered({}, branch=True)
    assert quota["kind"] == "ResourceQuota" and quota["spec"]["hard"] == {
        "requests.cpu": "8", "requests.memory": "16Gi", "requests.storage": "50Gi",
        "pods": "40"}
    assert limits["kind"] == "LimitRange"
    assert limits["spec"]["limits"][0]["default"] == {"cpu": "500m", "memory": "512Mi"}
    assert rendered({"PALESS_QUOTA_CPU": "2"}, branch=True)[0]["spec"]["hard"][
        "requests.cpu"] == "2"


def test_outside_branch_mode_only_what_is_set():
    assert rendered({}, branch=False) == []
    only = rendered({"PALESS_QUOTA_PODS": "12"}, branch=False)
    assert [o["kind"] for o in only] == ["ResourceQuota"]
    assert only[0]["spec"]["hard"] == {"pods": "12"}


@pytest.mark.parametrize("name, value", [("PALESS_QUOTA_MEMORY", "16 gigs"),
                                         ("PALESS_QUOTA_PODS", "4.5"),
                                         ("PALESS_LIMIT_CPU", "lots")])
def test_a_value_kubernetes_would_refuse_names_the_variable(name, value):
    with pytest.raises(ConfigError, match=name) as err:
        rendered({name: value}, branch=True)
    assert err.value.exit_code == 2


# -- sleep ------------------------------------------------------------------------------


def namespace(**annotations: str) -> dict:
    return {"metadata": {"name": "paless-feat", "annotations": annotations, "labels": {}}}


def test_an_idle_preview_sleeps_one_in_use_or_kept_does_not():
    idle = namespace(**{"paless.io/deployed-at": "2026-01-08T12:00:00Z"})
    decision = sleep.sleep_decision(idle, 86400, NOW)
    assert decision.sleep and "last deployed 2d ago, longer than 1d" in decision.reason
    busy = namespace(**{"paless.io/deployed-at": "2026-01-10T11:00:00Z"})
    assert not sleep.sleep_decision(busy, 86400, NOW).sleep
    kept = namespace(**{"paless.io/deployed-at": "2026-01-01T00:00:00Z"})
    kept["metadata"]["labels"]["paless.io/keep"] = "true"
    assert not sleep.sleep_decision(kept, 3600, NOW).sleep
    asleep = namespace(**{"paless.io/sleeping-since": "2026-01-09T00:00:00Z"})
    asleep["metadata"]["labels"]["paless.io/sleeping"] = "true"
    decision = sleep.sleep_decision(asleep, 60, NOW)
    assert not decision.sleep and "asleep since 2026-01-09" in decision.reason


def test_sleeping_records_the_replicas_and_waking_restores_them():
    web = {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}}
    patch = sleep.sleep_patch(web, "idle", NOW)
    assert patch["spec"] == {"replicas": 0}
    annotations = patch["metadata"]["annotations"]
    assert annotations["paless.io/sleep-replicas"] == "3"
    assert annotations["paless.io/sleeping-since"] == "2026-01-10T12:00:00Z"
    asleep = {**web, "metadata": {"name": "web", "annotations": annotations},
              "spec": {"replicas": 0}}
    woken = sleep.wake_patch(asleep)
    assert woken is not None and woken["spec"] == {"replicas": 3}
    assert set(woken["metadata"]["annotations"].values()) == {None}
    assert sleep.wake_patch(web) is None  # never put to sleep: left alone
    assert sleep.to_sleep([asleep, web, {"kind": "Job", "spec": {}}]) == [web]
    fields = [{"manager": "paless-deploy"}, {"manager": "paless-deploy-sleep"}]
    assert sleep.without_manager(fields, "paless-deploy-sleep") == [fields[0]]


# -- data services ----------------------------------------------------------------------


def minio(env: list[dict], env_from: list[dict] | None = None) -> dict:
    return {"kind": "StatefulSet", "metadata": {"name": "object-store",
                                                 "labels": {"app": "minio"}},
            "spec": {"selector": {"matchLabels": {"app": "minio"}}, "template": {"spec": {
                "containers": [{"name": "server", "image": "quay.io/minio/minio:latest",
                                "ports": [{"containerPort": 9000}], "env": env,
                                "envFrom": env_from or []}]}}}}


def pod(name: str, ready: bool, **labels: str) -> dict:
    return {"kind": "Pod", "metadata": {"name": name, "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}


def test_the_data_services_are_found_by_component_with_a_ready_pod():
    store = minio([{"name": "MINIO_ROOT_USER", "value": "root"}])
    found = services.find_service([store], [pod("object-store-0", False, app="minio"),
                                            pod("object-store-1", True, app="minio"),
                                            pod("other", True, app="web")], "minio")
    assert found is not None
    assert (found.workload, found.pod, found.container, found.port) == (
        "StatefulSet/object-store", "object-store-1", "server", 9000)
    assert services.find_service([store], [], "postgres") is None
    asleep = services.find_service([store], [], "minio")
    assert asleep is not None and asleep.pod is None


def test_minio_credentials_are_read_as_its_container_reads_them():
    secret = {"data": {"user": base64.b64encode(b"root").decode(),
                       "MINIO_ROOT_PASSWORD": base64.b64encode(b"s3cret-pw").decode()}}
    store = services.find_service([minio(
        [{"name": "MINIO_ROOT_USER", "valueFrom": {"secretKeyRef": {"name": "s", "key":
                                                                    "user"}}}],
        [{"secretRef": {"name": "s"}}])], [], "minio")
    assert store is not None
    assert services.references(store) == ({"s"}, set())
    secrets = {"s": secret}
    assert services.env_value(store, services.MINIO_USER_VARIABLES, secrets, {}) == "root"
    assert services.env_value(store, services.MINIO_PASSWORD_VARIABLES, secrets, {}) == \
        "s3cret-pw"
    assert services.env_value(store, ("MINIO_ACCESS_KEY",), secrets, {}) is None


def test_a_restore_stops_every_running_workload_but_the_data_services() -> None:
    from paless_deploy.core.data.sleep import to_stop_for_restore

    def workload(kind: str, name: str, component: str, replicas: int = 1) -> dict:
        return {"kind": kind, "metadata": {"name": name, "labels": {
            "app.kubernetes.io/component": component}}, "spec": {"replicas": replicas}}

    workloads = [workload("StatefulSet", "postgres", "postgres"),
                 workload("StatefulSet", "redis", "redis"),
                 workload("StatefulSet", "minio", "minio"),
                 workload("Deployment", "web", "web", 2),
                 workload("Deployment", "worker", "worker"),
                 workload("Deployment", "scheduler", "scheduler", 0),  # stopped already
                 {"kind": "Deployment", "metadata": {"name": "reporting"},  # not ours: stopped
                  "spec": {}}]
    assert [w["metadata"]["name"] for w in to_stop_for_restore(workloads)] == [
        "web", "worker", "reporting"]
