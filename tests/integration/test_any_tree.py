"""A tree not written for paless-deploy (tests/fixtures/trees/handwritten), on the sandbox.

Hand labels (`app:`/`component:`), `:latest` images of ours under
`{REGISTRY}/{PROJECT_NAME}-{app}` (one spelled 127.0.0.1 and untagged), HPAs beside
`spec.replicas` (one whose minReplicas makes kube-controller-manager scale it), its own
Namespace, fixed-name hostPath PersistentVolumes, a fixed NodePort, and three Jobs that
need MinIO or PostgreSQL. Asserted on what the cluster runs, not only on readiness.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from tests.integration.deploy_helpers import (
    Project,
    get_json,
    refused_as_not_ours,
    result_objects,
    run_cli,
)

pytestmark = [pytest.mark.cluster, pytest.mark.docker]

TREE = Path(__file__).resolve().parents[1] / "fixtures" / "trees" / "handwritten"
APPS = ("web", "worker", "scheduler")
FIXED_PVS = ("postgres-pv", "minio-pv")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Project:
    dest = tmp_path_factory.mktemp("handwritten") / "project"
    shutil.copytree(TREE, dest)
    # a content change of our own per run: the images are new, never the cache's `latest`
    (dest / "app" / "build.txt").write_text(uuid.uuid4().hex)
    env = dest / "test.env"
    env.write_text("PROJECT_NAME=paless\nREGISTRY=localhost:5000\n")
    return Project(dest, env)


def free_fixed_volumes(sandbox, *namespaces: str) -> None:
    """Delete the tree's fixed-name PVs and the namespaces holding their claims (a run
    interrupted earlier may have left them), and wait until they are gone."""
    holders = set(namespaces)
    for pv in FIXED_PVS:
        res = sandbox.kubectl("get", "pv", pv, "-o", "jsonpath={.spec.claimRef.namespace}",
                              check=False)
        if res.returncode == 0 and res.stdout:
            holders.add(res.stdout)
    if holders:
        sandbox.kubectl("delete", "namespace", "--ignore-not-found", "--wait=false",
                        *sorted(holders), check=False)
    sandbox.kubectl("delete", "pv", "--ignore-not-found", "--wait=false", *FIXED_PVS,
                    check=False)
    for pv in FIXED_PVS:
        sandbox.kubectl("wait", "--for=delete", f"pv/{pv}", "--timeout=120s", check=False)


@pytest.fixture(scope="module")
def first(tree: Project, sandbox):
    """The tree deployed into a fresh namespace (the fixed PVs freed before and after)."""
    ns = f"t-any-{uuid.uuid4().hex[:6]}"
    free_fixed_volumes(sandbox)
    try:
        yield ns, run_cli(tree, sandbox.kubeconfig, ns, "all", timeout=400)
    finally:
        free_fixed_volumes(sandbox, ns)


def pods_by_owner(sandbox, ns: str) -> dict[str, list[dict]]:
    owners: dict[str, list[dict]] = {}
    for pod in get_json(sandbox, "pods", "-n", ns)["items"]:
        labels = pod["metadata"].get("labels") or {}
        key = labels.get("job-name") or labels.get("component") or labels.get("app") or "?"
        owners.setdefault(key, []).append(pod)
    return owners


def test_the_tree_deploys_and_every_app_pod_runs_the_image_just_built(first, sandbox):
    ns, run = first
    assert run.returncode == 0, str(run)
    built = {i["app"]: i["ref"] for i in run.doc["images"]}
    assert set(built) == set(APPS) and all(":latest" not in r for r in built.values())
    pods = pods_by_owner(sandbox, ns)
    expected = {"web": "web", "worker": "worker", "scheduler": "scheduler",
                "paperless-migrate": "web"}
    for owner, app in expected.items():
        assert pods.get(owner), f"no pod of {owner}: {sorted(pods)}"
        for pod in pods[owner]:
            images = [c["image"] for c in pod["spec"]["containers"]]
            assert images == [built[app]], f"{owner} runs {images}, built {built[app]}"
    # third-party images are left as written
    assert [c["image"] for c in pods["postgres"][0]["spec"]["containers"]] == [
        "postgres:16.4-alpine"]


def test_jobs_run_after_the_data_they_need(first):
    _, run = first
    order = [p["name"] for p in run.doc["phases"]]
    phase_of = {key: obj["phase"] for key, obj in result_objects(run.doc).items()}
    assert phase_of[("Deployment", "minio")] == "object-storage"
    assert phase_of[("Deployment", "postgres")] == "data"
    for job, after in (("create-bucket", "object-storage"), ("db-role", "data"),
                       ("paperless-migrate", "data")):
        assert order.index(phase_of[("Job", job)]) > order.index(after), (job, order)


def test_the_trees_own_namespace_and_replicas_are_handled_with_warnings(first, sandbox):
    ns, run = first
    warnings = " ".join(run.doc["warnings"])
    assert "Namespace/paperless in the manifests was dropped" in warnings
    assert "HorizontalPodAutoscaler/paperless-web scales it" in warnings
    assert sandbox.kubectl("get", "namespace", "paperless", check=False).returncode != 0
    web = get_json(sandbox, "deployment", "paperless-web", "-n", ns, "--show-managed-fields")
    managers = {m["manager"] for m in web["metadata"]["managedFields"]
                if "f:replicas" in str(m.get("fieldsV1", {}).get("f:spec", {}))}
    assert "paless-deploy" not in managers, "replicas must be left to the autoscaler"


def test_a_second_run_succeeds_without_force_and_diff_is_clean(first, tree, sandbox):
    ns, _ = first
    # kube-controller-manager scales paperless-web up to the HPA's minReplicas (3)
    sandbox.kubectl("wait", "--for=jsonpath={.spec.replicas}=3", "deployment/paperless-web",
                    "-n", ns, "--timeout=60s")
    again = run_cli(tree, sandbox.kubeconfig, ns, "all", timeout=300)
    assert again.returncode == 0, str(again)
    assert all(i["action"] == "skipped" for i in again.doc["images"])
    diff = run_cli(tree, sandbox.kubeconfig, ns, "diff")
    assert diff.returncode == 0, str(diff)
    assert diff.doc["changes"] == []


def test_plan_explains_each_placement(first, tree, sandbox):
    ns, _ = first
    plan = run_cli(tree, sandbox.kubeconfig, ns, "plan")
    assert plan.returncode == 0, str(plan)
    reasons = {(o["kind"], o["name"]): (p["name"], o["reason"]) for p in plan.doc["plan"]
               for o in p["objects"]}
    phase, why = reasons[("Job", "create-bucket")]
    assert phase == "object-storage-init" and "addresses Service minio-service" in why
    assert reasons[("Deployment", "postgres")] == ("data", "component postgres (label app=postgres)")


def test_the_same_tree_into_a_second_namespace_is_refused_and_touches_nothing(first, tree,
                                                                                 sandbox):
    ns, _ = first
    before = {pv: get_json(sandbox, "pv", pv)["metadata"]["resourceVersion"]
              for pv in FIXED_PVS}
    other = f"t-any2-{uuid.uuid4().hex[:6]}"
    try:
        run = run_cli(tree, sandbox.kubeconfig, other, "all", timeout=300)
        refused_as_not_ours(run, f"PersistentVolume/postgres-pv belongs to namespace {ns}",
                            f"held by Service {ns}/minio-console")
        missing = sandbox.kubectl("get", "namespace", other, check=False)
        assert missing.returncode != 0, "the refused deploy must not create its namespace"
        after = {pv: get_json(sandbox, "pv", pv)["metadata"]["resourceVersion"]
                 for pv in FIXED_PVS}
        assert after == before
    finally:
        sandbox.kubectl("delete", "namespace", "--ignore-not-found", "--wait=false", other,
                        check=False)


def test_deploy_one_app_keeps_what_the_others_run(first, tree, sandbox):
    ns, _ = first
    worker = get_json(sandbox, "deployment", "paperless-worker", "-n", ns)
    kept = worker["spec"]["template"]["spec"]["containers"][0]["image"]
    dockerfile = tree.dir / "Dockerfile.web"
    dockerfile.write_text(dockerfile.read_text() + f"LABEL change={uuid.uuid4().hex}\n")
    run = run_cli(tree, sandbox.kubeconfig, ns, "deploy", "web", timeout=300)
    assert run.returncode == 0, str(run)
    (image,) = run.doc["images"]
    assert image["app"] == "web" and image["action"] == "pushed"
    web = get_json(sandbox, "deployment", "paperless-web", "-n", ns)
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == image["ref"]
    worker = get_json(sandbox, "deployment", "paperless-worker", "-n", ns)
    assert worker["spec"]["template"]["spec"]["containers"][0]["image"] == kept
