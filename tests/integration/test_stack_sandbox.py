"""The k8s/ manifests on the sandbox cluster (issue 5): every overlay passes a server-side
dry run, and the dev overlay deploys into two namespaces at once, fully ready, no conflict.
"""

from __future__ import annotations

import json
import uuid

import pytest

from paless_deploy.core.diagnosis.readiness import readiness
from tests.integration.deploy_helpers import (
    REPO,
    delete_instances,
    finish_cli,
    get_json,
    make_project,
    start_cli,
)

pytestmark = pytest.mark.cluster

UID = uuid.uuid4().hex[:6]
APPS = ("web", "worker", "scheduler")
# Credentials the prod overlay accepts (not the development defaults).
PROD_CREDENTIALS = {
    "POSTGRES_PASSWORD": "prod-test-postgres-7f3a9c",
    "PAPERLESS_APP_DB_PASSWORD": "prod-test-app-db-2b8e41",
    "MINIO_ROOT_PASSWORD": "prod-test-minio-c51d07",
    "PAPERLESS_SECRET_KEY": "prod-test-secret-key-9d2f6a0e4b1c8a7f3e5d",
    "MINIO_APP_PASSWORD": "prod-test-minio-app-4e6b12",
    "REDIS_PASSWORD": "prod-test-redis-8c3d5f",
}


def _rendered(overlay: str, namespace: str) -> list[dict]:
    """The overlay through the tool's render stage with paless.env.example's values."""
    from paless_deploy.stages.project import load_config
    from paless_deploy.stages.render import render_overlay

    overrides = {"PALESS_NAMESPACE": namespace, "OVERLAY": overlay}
    if overlay == "prod":
        overrides.update(PROD_CREDENTIALS)
    config = load_config(REPO, [REPO / "paless.env.example"], overrides, environ={},
                         validate=overlay == "prod")
    images = {app: f"localhost:5000/paless-{app}:dry-run" for app in APPS}
    return render_overlay(REPO, overlay, namespace, config.substitution_values(), images)


@pytest.mark.parametrize("overlay", ["dev", "staging", "prod"])
def test_every_overlay_passes_a_server_side_dry_run(overlay, sandbox, namespace):
    objects = _rendered(overlay, namespace)
    assert objects
    res = sandbox.kubectl("apply", "--server-side", "--dry-run=server",
                          "--field-manager=paless-deploy", "-n", namespace, "-f", "-",
                          input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
                          check=False)
    assert res.returncode == 0, f"{overlay}: {res.stderr}"
    lines = res.stdout.splitlines()
    for obj in objects:
        name = obj["metadata"]["name"]
        assert any(f"/{name} serverside-applied (server dry run)" in line for line in lines
                   if line.lower().startswith(obj["kind"].lower())), (
            f"{overlay}: {obj['kind']}/{name} not dry-run applied:\n{res.stdout}")
    # A dry run creates nothing (the dev PVs would be cluster-scoped).
    assert not get_json(sandbox, "pv", "-l", f"app.kubernetes.io/instance={namespace}")["items"]


def _fully_ready(sandbox, ns: str) -> None:
    for plural, kind in (("deployments", "Deployment"), ("statefulsets", "StatefulSet"),
                         ("jobs", "Job"), ("pvc", "PersistentVolumeClaim")):
        items = get_json(sandbox, plural, "-n", ns)["items"]
        assert items, f"no {plural} in {ns}"
        for obj in items:
            verdict = readiness({**obj, "kind": kind})
            assert verdict.ready, f"{ns}: {kind}/{obj['metadata']['name']}: {verdict.reason}"


@pytest.fixture
def two_namespaces(sandbox):
    names = [f"t-side-{UID}-a", f"t-side-{UID}-b"]
    yield names
    delete_instances(sandbox, names)


@pytest.mark.docker
@pytest.mark.timeout(300)
def test_dev_overlay_deploys_into_two_namespaces_at_once(sandbox, tmp_path, two_namespaces):
    project = make_project(tmp_path / "proj")  # no MINIO_CONSOLE_NODEPORT anywhere
    started = [start_cli(project, sandbox.kubeconfig, ns, "all") for ns in two_namespaces]
    runs = [finish_cli(s, timeout=240) for s in started]
    for ns, run in zip(two_namespaces, runs, strict=True):
        assert run.returncode == 0, str(run)
        assert run.doc["result"] == "success" and run.doc["namespace"] == ns
        assert not run.doc["errors"]
        assert not any("conflict" in w.lower() for w in run.doc["warnings"]), run.doc["warnings"]
        for p in run.doc["phases"]:
            for o in p["objects"]:
                assert o["ready"] is True, (ns, p["name"], o)
        _fully_ready(sandbox, ns)

    ports = [get_json(sandbox, "service", "minio-console", "-n", ns)["spec"]["ports"][0]["nodePort"]
             for ns in two_namespaces]
    assert all(ports) and ports[0] != ports[1], ports
    volumes = [{pv["metadata"]["name"]: pv["spec"]["hostPath"]["path"]
                for pv in get_json(sandbox, "pv", "-l", f"app.kubernetes.io/instance={ns}")["items"]}
               for ns in two_namespaces]
    for ns, pvs in zip(two_namespaces, volumes, strict=True):
        assert sorted(pvs) == [f"paless-data-{ns}", f"paless-media-{ns}"]
        assert all(f"/{ns}/" in path for path in pvs.values()), pvs
