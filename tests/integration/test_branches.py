"""Per-branch environments on the sandbox (issue 7): three branch deploys at once, each in
its own namespace, all ready, nothing shared that could collide.

The branches carry a unique token, so the namespaces are this test's alone; they and
their PersistentVolumes are deleted at the end.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from paless_deploy.core.configuration.branch import branch_namespace
from paless_deploy.core.diagnosis.readiness import readiness
from tests.integration.deploy_helpers import (
    delete_instances,
    finish_cli,
    get_json,
    make_project,
    start_cli,
)

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.timeout(360)]

DOMAIN = "branches.paless.test"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def branches(sandbox):
    token = uuid.uuid4().hex[:6]
    names = [f"feature/T-{token}-{suffix}" for suffix in ("alpha", "beta", "gamma")]
    namespaces = [branch_namespace("paless", b) for b in names]
    yield list(zip(names, namespaces, strict=True))
    delete_instances(sandbox, namespaces)


def test_three_branch_deploys_run_concurrently_without_collision(sandbox, tmp_path, branches):
    project = make_project(tmp_path / "proj", {"PALESS_BASE_DOMAIN": DOMAIN})
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    started = [start_cli(project, sandbox.kubeconfig, None, "--namespace-from-branch", "all",
                         env={"BRANCH_NAME": branch, "GIT_COMMIT": COMMIT})
               for branch, _ in branches]
    runs = [finish_cli(s, timeout=300) for s in started]

    for (branch, ns), run in zip(branches, runs, strict=True):
        assert run.returncode == 0, str(run)
        doc = run.doc
        assert doc["result"] == "success" and doc["namespace"] == ns, str(run)
        assert ns.startswith("paless-feature-t-") and len(ns) <= 63
        first = doc["phases"][0]
        assert first["name"] == "namespace" and first["objects"][0]["action"] == "created"
        for p in doc["phases"]:
            for o in p["objects"]:
                assert o["ready"] is True, (ns, p["name"], o)

    namespaces = [ns for _, ns in branches]
    assert len(set(namespaces)) == 3

    for branch, ns in branches:
        meta = get_json(sandbox, "namespace", ns)["metadata"]
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "paless-deploy"
        ann = meta["annotations"]
        assert ann["paless.io/branch"] == branch
        assert ann["paless.io/commit"] == COMMIT
        created = dt.datetime.fromisoformat(ann["paless.io/created-at"])
        assert before - dt.timedelta(seconds=1) <= created <= dt.datetime.now(dt.UTC), ann
        # Everything the stack runs is ready in every branch.
        for plural, kind in (("deployments", "Deployment"), ("statefulsets", "StatefulSet"),
                             ("jobs", "Job")):
            for obj in get_json(sandbox, plural, "-n", ns)["items"]:
                verdict = readiness({**obj, "kind": kind})
                assert verdict.ready, f"{ns}: {kind}/{obj['metadata']['name']}: {verdict.reason}"
        # Ingress: the wildcard host of the branch.
        ingress = get_json(sandbox, "ingress", "web", "-n", ns)
        assert [r["host"] for r in ingress["spec"]["rules"]] == [f"*.{ns}.{DOMAIN}"]

    # Cluster-scoped volumes: names and directories carry the namespace, none shared.
    volumes = {}
    for _, ns in branches:
        pvs = get_json(sandbox, "pv", "-l", f"app.kubernetes.io/instance={ns}")["items"]
        assert sorted(pv["metadata"]["name"] for pv in pvs) == [
            f"paless-data-{ns}", f"paless-media-{ns}"]
        for pv in pvs:
            assert pv["status"]["phase"] == "Bound"
            assert pv["spec"]["claimRef"]["namespace"] == ns
            path = pv["spec"]["hostPath"]["path"]
            assert f"/{ns}/" in path
            volumes[pv["metadata"]["name"]] = path
    assert len(volumes) == 6 and len(set(volumes.values())) == 6, volumes

    # NodePorts: assigned by Kubernetes (no port variable in branch mode), all distinct.
    node_ports = []
    for _, ns in branches:
        for svc in get_json(sandbox, "services", "-n", ns)["items"]:
            node_ports += [p["nodePort"] for p in svc["spec"].get("ports") or []
                           if p.get("nodePort")]
    assert len(node_ports) == 3, node_ports
    assert len(set(node_ports)) == 3, node_ports
