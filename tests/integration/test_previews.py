"""Previews that cost little, on the sandbox: a branch namespace gets its ResourceQuota and
LimitRange; `gc --sleep-after` scales an idle one to zero (its claims kept, the why and the
since written on it); `wake` and the next `all` bring it back as it was.

The tree: one app (tiny), an autoscaled Deployment (its replicas the HPA's, 2 at
creation), a StatefulSet with a claim. Idleness is written into the namespace's
`paless.io/deployed-at` (a date long past) rather than waited for.
"""

from __future__ import annotations

import json
import uuid

import pytest

from paless_deploy.core.configuration.branch import branch_namespace
from tests.integration.deploy_helpers import (
    Project,
    delete_instances,
    get_json,
    run_cli,
    tiny_project,
    write_overlay,
)

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.timeout(600)]

LONG_AGO = "2020-01-01T00:00:00Z"


def tree() -> list[dict]:
    labels = {"app": "tiny"}
    pod = {"metadata": {"labels": labels},
           "spec": {"containers": [{"name": "tiny", "image": "tiny",
                                    "resources": {"requests": {"cpu": "10m",
                                                               "memory": "16Mi"}}}]}}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "annotations": {"paless.io/initial-replicas": "2"}},
         "spec": {"selector": {"matchLabels": labels}, "template": pod}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
         "metadata": {"name": "web"},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": "web"}, "minReplicas": 1, "maxReplicas": 3,
                  "metrics": [{"type": "Resource", "resource": {
                      "name": "cpu", "target": {"type": "Utilization",
                                                "averageUtilization": 80}}}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
         "spec": {"serviceName": "db", "replicas": 1,
                  "selector": {"matchLabels": {"app": "db"}},
                  "template": {**pod, "metadata": {"labels": {"app": "db"}}},
                  "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                      "accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "10Mi"}}}}]}},
    ]


@pytest.fixture
def preview(sandbox, tmp_path):
    root = tiny_project(tmp_path / "proj")
    write_overlay(root, "dev", tree())
    env_file = root / "test.env"
    env_file.write_text("PROJECT_NAME=tiny\n")
    branch = f"preview/{uuid.uuid4().hex[:6]}"
    namespace = branch_namespace("tiny", branch)
    yield Project(root, env_file), namespace, {"BRANCH_NAME": branch}
    delete_instances(sandbox, [namespace])


def replicas(sandbox, namespace: str) -> dict[str, int]:
    found = get_json(sandbox, "deployments,statefulsets", "-n", namespace)["items"]
    return {f"{o['kind']}/{o['metadata']['name']}": o["spec"]["replicas"] for o in found}


def make_idle(sandbox, namespace: str) -> None:
    sandbox.kubectl("annotate", "namespace", namespace, "--overwrite",
                    f"paless.io/deployed-at={LONG_AGO}")


def test_a_preview_has_limits_sleeps_when_idle_and_wakes(sandbox, preview):
    project, namespace, env = preview
    cli = ("--namespace-from-branch",)
    run = run_cli(project, sandbox.kubeconfig, None, *cli, "all", env=env)
    assert run.returncode == 0 and run.doc["namespace"] == namespace, str(run)
    quota = get_json(sandbox, "resourcequota", "paless-preview", "-n", namespace)
    assert quota["spec"]["hard"]["requests.cpu"] == "8"
    assert quota["spec"]["hard"]["pods"] == "40"
    limits = get_json(sandbox, "limitrange", "paless-preview", "-n", namespace)
    assert limits["spec"]["limits"][0]["default"] == {"cpu": "500m", "memory": "512Mi"}
    awake = replicas(sandbox, namespace)
    assert awake == {"Deployment/web": 2, "StatefulSet/db": 1}

    gc = ("gc", "--sleep-after", "1d", "-l", f"kubernetes.io/metadata.name={namespace}")
    fresh = run_cli(project, sandbox.kubeconfig, None, *gc)
    assert fresh.returncode == 0 and fresh.doc["slept"] == [], str(fresh)
    make_idle(sandbox, namespace)
    slept = run_cli(project, sandbox.kubeconfig, None, *gc)
    assert slept.returncode == 0, str(slept)
    assert [s["name"] for s in slept.doc["slept"]] == [namespace]
    assert "idle: last deployed" in slept.doc["slept"][0]["reason"]
    assert replicas(sandbox, namespace) == {"Deployment/web": 0, "StatefulSet/db": 0}
    ns = get_json(sandbox, "namespace", namespace)["metadata"]
    assert ns["labels"]["paless.io/sleeping"] == "true"
    assert "idle" in ns["annotations"]["paless.io/sleep-reason"]
    assert ns["annotations"]["paless.io/sleeping-since"].endswith("Z")
    web = get_json(sandbox, "deployment", "web", "-n", namespace)["metadata"]
    assert web["annotations"]["paless.io/sleep-replicas"] == "2"
    assert get_json(sandbox, "pvc", "data-db-0", "-n", namespace)["status"]["phase"] == \
        "Bound", "the data is kept"
    again = run_cli(project, sandbox.kubeconfig, None, *gc)
    assert again.doc["slept"] == [] and "asleep since" in json.dumps(again.doc["kept"])

    woken = run_cli(project, sandbox.kubeconfig, namespace, "wake")
    assert woken.returncode == 0, str(woken)
    assert {w["workload"] for w in woken.doc["woken"]} == {"Deployment/web", "StatefulSet/db"}
    assert replicas(sandbox, namespace) == awake
    ns = get_json(sandbox, "namespace", namespace)["metadata"]
    assert "paless.io/sleeping" not in ns.get("labels", {})
    web = get_json(sandbox, "deployment", "web", "-n", namespace,
                   "--show-managed-fields")["metadata"]
    assert "paless.io/sleep-replicas" not in web.get("annotations", {})
    assert all(f["manager"] != "paless-deploy-sleep" for f in web["managedFields"])

    # asleep again, then the next deploy wakes it before applying (no field conflict)
    make_idle(sandbox, namespace)
    assert run_cli(project, sandbox.kubeconfig, None, *gc).doc["slept"]
    deployed = run_cli(project, sandbox.kubeconfig, None, *cli, "all", env=env)
    assert deployed.returncode == 0, str(deployed)
    assert sorted((w["workload"], w["replicas"]) for w in deployed.doc["woken"]) == [
        ("Deployment/web", 2), ("StatefulSet/db", 1)]
    assert replicas(sandbox, namespace) == awake
