"""Unit tests of the plan stage: defaults, annotation override, order, errors."""

from __future__ import annotations

import pytest

from paless_deploy.core.errors import ConfigError
from paless_deploy.core.plan.plan import PHASE_ORDER, Phase, place, plan_phases


def phase_alone(o: dict) -> str:
    """The phase `place` gives one object planned on its own."""
    return place([o])[0].phase


def obj(kind: str, name: str = "x", component: str | None = None,
        phase: str | None = None) -> dict:
    metadata: dict = {"name": name}
    if component:
        metadata["labels"] = {"app.kubernetes.io/component": component}
    if phase:
        metadata["annotations"] = {"paless.io/phase": phase}
    return {"apiVersion": "v1", "kind": kind, "metadata": metadata}


@pytest.mark.parametrize(("o", "expected"), [
    (obj("Namespace"), "namespace"),
    (obj("ServiceAccount"), "config"),
    (obj("Role"), "config"),
    (obj("RoleBinding"), "config"),
    (obj("Secret"), "config"),
    (obj("ConfigMap"), "config"),
    (obj("NetworkPolicy"), "config"),
    (obj("LimitRange"), "config"),
    (obj("ResourceQuota"), "config"),
    (obj("StorageClass"), "storage"),
    (obj("PersistentVolume"), "storage"),
    (obj("PersistentVolumeClaim"), "storage"),
    (obj("StatefulSet", component="minio"), "object-storage"),
    (obj("Service", component="minio"), "object-storage"),
    (obj("StatefulSet", component="postgres"), "data"),
    (obj("Service", component="redis"), "data"),
    (obj("Job", component="postgres-init"), "data-init"),
    (obj("Job", component="minio"), "data-init"),
    (obj("Deployment", component="scheduler"), "scheduler"),
    (obj("Deployment", component="worker"), "worker"),
    (obj("Deployment", component="web"), "web"),
    (obj("Ingress", component="minio"), "web"),
    (obj("HorizontalPodAutoscaler", component="worker"), "web"),
    (obj("PodDisruptionBudget", component="postgres"), "web"),
    (obj("Deployment", component="something-new"), "web"),
    (obj("Lease"), "web"),
], ids=lambda v: v if isinstance(v, str) else f"{v['kind']}-{v['metadata'].get('labels')}")
def test_defaults(o: dict, expected: str) -> None:
    assert phase_alone(o) == expected


def test_annotation_overrides_defaults() -> None:
    assert phase_alone(obj("Job", phase="migrate")) == "migrate"
    assert phase_alone(obj("Job", component="minio", phase="object-storage-init")) == \
        "object-storage-init"
    assert phase_alone(obj("ConfigMap", phase="web")) == "web"


def test_unknown_phase_is_an_error_naming_object_and_valid_phases() -> None:
    with pytest.raises(ConfigError) as err:
        plan_phases([obj("Job", name="migrate", phase="migration")])
    assert "Job/migrate" in err.value.message and "'migration'" in err.value.message
    for name in PHASE_ORDER:
        assert name in err.value.hint


def test_phases_in_design_order_and_empty_ones_skipped() -> None:
    web = obj("Deployment", "web", component="web")
    objects = [
        web,
        obj("Job", "migrate", phase="migrate"),
        obj("Secret", "s"),
        obj("ConfigMap", "c"),
        obj("StatefulSet", "redis", component="redis"),
        obj("Namespace", "ns"),
    ]
    phases = plan_phases(objects)
    assert [p.name for p in phases] == ["namespace", "config", "data", "migrate", "web"]
    assert phases[1] == Phase("config", (objects[2], objects[3]))  # input order kept
    assert phases[-1].objects == (web,)


def test_plan_of_nothing_is_empty() -> None:
    assert plan_phases([]) == []


def test_phase_order_is_the_design_table() -> None:
    assert PHASE_ORDER == (
        "namespace", "config", "storage", "object-storage", "object-storage-init", "data",
        "data-init", "migrate", "scheduler", "worker", "web",
    )


def test_unreadable_policy_annotation_is_an_error_at_plan_time() -> None:
    job = obj("Job", name="migrate", phase="migrate")
    job["spec"] = {"template": {"metadata": {"annotations": {"paless.io/failure-grace": "soon"}}}}
    with pytest.raises(ConfigError) as err:
        plan_phases([obj("ConfigMap", "c"), job])
    assert "Job/migrate: annotation paless.io/failure-grace" in err.value.message


def test_objects_of_a_tree_not_written_for_the_tool() -> None:
    # other labels, no annotations: only kinds and the component label decide
    objects = [
        {"kind": "Deployment", "metadata": {"name": "api", "labels": {"app": "api"}}},
        {"kind": "StatefulSet", "metadata": {"name": "db", "labels": {"tier": "db"}}},
        {"kind": "Service", "metadata": {"name": "api"}},
        {"kind": "PersistentVolumeClaim", "metadata": {"name": "data"}},
        {"kind": "Job", "metadata": {"name": "seed"}},
    ]
    assert [(p.name, [o["metadata"]["name"] for o in p.objects])
            for p in plan_phases(objects)] == [
        ("storage", ["data"]), ("data-init", ["seed"]), ("web", ["api", "db", "api"])]


# ---------------------------------------------------------------------------
# trees labelled by hand: components from other labels, names and images; Jobs after
# what they need


def workload(kind: str, name: str, pod_labels: dict, image: str, **spec: object) -> dict:
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": pod_labels}, **spec,
                     "template": {"metadata": {"labels": pod_labels},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def service(name: str, selector: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector}}


def job(name: str, *, env: dict | None = None, args: list | None = None,
        env_from: str | None = None, claim: str | None = None) -> dict:
    container: dict = {"name": "c", "image": "busybox:1"}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    if args:
        container["args"] = args
    if env_from:
        container["envFrom"] = [{"configMapRef": {"name": env_from}}]
    spec: dict = {"containers": [container]}
    if claim:
        spec["volumes"] = [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": spec}}}


HAND = [
    workload("Deployment", "db", {"app": "database", "tier": "x"}, "postgres:16"),
    service("db", {"app": "database"}),
    workload("StatefulSet", "cache", {"component": "redis"}, "redis:7"),
    service("cache", {"component": "redis"}),
    workload("Deployment", "objects", {"app": "minio"}, "quay.io/minio/minio:RELEASE.2024"),
    service("minio-service", {"app": "minio"}),
    workload("Deployment", "paperless-webserver", {"app": "paperless-webserver"},
             "localhost:5000/paless-web:latest"),
    workload("Deployment", "celery", {"app.kubernetes.io/name": "paperless-worker"},
             "localhost:5000/paless-worker:latest"),
    workload("Deployment", "beat", {"app": "periodic"}, "localhost:5000/paless-scheduler"),
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "env"},
     "data": {"DATABASE_URL": "postgresql://u@db:5432/paperless"}},
    job("create-bucket", env={"MC_HOST": "http://minio-service:9000"}),
    job("db-init", args=["psql", "-h", "db", "-c", "select 1"]),
    job("migrate", env_from="env"),
]


def placed(objects: list[dict]) -> dict[str, tuple[str, str]]:
    return {f"{o['kind']}/{o['metadata']['name']}": (p.name, r)
            for p in plan_phases(objects) for o, r in zip(p.objects, p.reasons, strict=True)}


def test_components_from_hand_labels_names_and_images() -> None:
    where = placed(HAND)
    assert where["Deployment/db"][0] == "data" and "image postgres:16" in where["Deployment/db"][1]
    assert where["StatefulSet/cache"] == ("data", "component redis (label component=redis)")
    assert where["Deployment/objects"][0] == "object-storage"
    assert where["Deployment/paperless-webserver"][0] == "web"
    assert where["Deployment/celery"][0] == "worker"
    assert where["Deployment/beat"][0] == "scheduler"
    assert where["Service/db"] == ("data", "selects the pods of Deployment/db")
    assert where["Service/minio-service"][0] == "object-storage"


def test_jobs_land_after_the_services_they_address() -> None:
    where = placed(HAND)
    assert where["Job/create-bucket"][0] == "object-storage-init"
    assert "addresses Service minio-service (env MC_HOST)" in where["Job/create-bucket"][1]
    assert where["Job/db-init"][0] == "data-init"
    assert "addresses Service db" in where["Job/db-init"][1]
    # the migration Job reads the database's host from a ConfigMap
    assert where["Job/migrate"][0] == "migrate"
    assert "envFrom ConfigMap env" in where["Job/migrate"][1]


def test_a_job_named_for_the_bucket_still_waits_for_the_database_it_uses() -> None:
    where = placed([*HAND[:2], job("bucket-and-db", env={"PGHOST": "db"})])
    assert where["Job/bucket-and-db"][0] == "data-init"


def test_a_job_mounting_a_statefulsets_claim_comes_after_it() -> None:
    sts = workload("StatefulSet", "pg", {"x": "y"}, "example/thing:1", replicas=1,
                   volumeClaimTemplates=[{"metadata": {"name": "data"}}])
    sts["metadata"]["labels"] = {"app.kubernetes.io/component": "postgres"}
    where = placed([sts, job("backup", claim="data-pg-0")])
    assert where["Job/backup"][0] == "data-init"
    assert "mounts claim data-pg-0 of StatefulSet/pg" in where["Job/backup"][1]


def test_hosts_are_matched_as_whole_names() -> None:
    from paless_deploy.core.plan.references import addresses

    assert addresses("http://minio-service:9000/x", "minio-service")
    assert addresses("postgres.team.svc.cluster.local:5432", "postgres")
    assert addresses("db", "db") and addresses("-h db", "db")
    assert not addresses("dbname", "db") and not addresses("my-db", "db")
    assert not addresses("paless-minio-service", "minio-service")


def test_most_workloads_in_the_fallback_phase_is_a_warning() -> None:
    from paless_deploy.core.plan.plan import fallback_warning

    anonymous = [workload("Deployment", f"svc{i}", {"a": str(i)}, f"example/x{i}:1")
                 for i in range(3)]
    ours = [workload("StatefulSet", "db", {"a": "db"}, "postgres:16"),
            workload("Deployment", "cache", {"a": "cache"}, "redis:7")]
    warning = fallback_warning(plan_phases([*ours, *anonymous]))
    assert warning and "3 of 5 workloads" in warning and "paless-deploy plan" in warning
    assert fallback_warning(plan_phases(HAND)) is None
    # a tree with no Paless components gets no advice to label its workloads ours
    assert fallback_warning(plan_phases(anonymous)) is None


def test_the_applications_name_alone_is_weaker_than_an_image() -> None:
    db = workload("Deployment", "paperless-db", {"app": "paperless-db"}, "postgres:16")
    web = workload("Deployment", "paperless", {"app": "paperless"}, "ghcr.io/acme/app:1")
    where = placed([db, web])
    assert where["Deployment/paperless-db"] == ("data", "component postgres (image postgres:16)")
    assert where["Deployment/paperless"][0] == "web"


def test_a_word_in_a_sentence_is_not_an_address() -> None:
    from paless_deploy.core.plan.references import addresses

    assert not addresses("CREATE ROLE paperless LOGIN", "paperless")
    assert addresses("psql -h postgres -c 'CREATE ROLE paperless'", "postgres")
    assert addresses("--host=postgres", "postgres") and addresses("redis://redis:6379", "redis")
    assert addresses("postgresql://user:secret@db/paperless", "db")
    assert addresses("mc alias set local http://minio-service:9000 a b", "minio-service")
