"""Load: ten branch namespaces of the whole stack deployed at once all end healthy, and each
holds only its own objects (no PV, NodePort or name shared across branches).

The images are pushed once first, as CI's build job does; then ten `all` runs start
together, as ten branches' pipelines would. The sandbox gets simulated nodes enough for
ten stacks beside whatever else runs there (`scripts/sandbox up --nodes N`).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests.fixtures.cluster import SANDBOX
from tests.integration.deploy_helpers import (
    INSTANCE,
    Project,
    clean_env,
    delete_instances,
    finish_cli,
    get_json,
    make_project,
    result_objects,
    run_cli,
    start_cli,
)

pytestmark = [pytest.mark.cluster, pytest.mark.docker]

BRANCHES = 10
NODE_CPU_M = 8000  # a sandbox node (paless_sandbox.kwok NODE_CAPACITY)
MARGIN_CPU_M = 2 * NODE_CPU_M  # other tests share the sandbox's nodes
KINDS = ("configmaps,secrets,persistentvolumeclaims,services,statefulsets,deployments,jobs,"
         "horizontalpodautoscalers,poddisruptionbudgets,ingresses,networkpolicies,limitranges,"
         "resourcequotas")


def free_cpu_m(sandbox) -> tuple[int, int]:
    """(sandbox nodes, CPU millicores not yet requested on them)."""
    nodes = get_json(sandbox, "nodes", "-l", "type=kwok")["items"]
    ours = [n["metadata"]["name"] for n in nodes
            if n["metadata"]["name"].startswith("sandbox-node-") and not n["spec"].get("taints")]
    pods = get_json(sandbox, "pods", "-A", "--field-selector",
                    "status.phase!=Succeeded,status.phase!=Failed")["items"]
    from paless_deploy.core.manifests.quantities import cpu_millicores

    used = sum(cpu_millicores(((c.get("resources") or {}).get("requests") or {}).get("cpu"))
               for p in pods if p["spec"].get("nodeName") in ours
               for c in p["spec"]["containers"])
    return len(ours), len(ours) * NODE_CPU_M - used


def stack_cpu_m(project: Project, sandbox) -> int:
    """CPU millicores one stack requests once rolled out (HPA targets at their initial
    replicas), plus one surge pod of each Deployment and the Jobs, from its rendered
    manifests."""
    from paless_deploy.core.manifests.quantities import cpu_millicores

    done = run_cli(project, sandbox.kubeconfig, None, "render", json_output=False)
    total = 0
    for obj in yaml.safe_load_all(done.stdout):
        if not obj or obj["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        spec = obj["spec"]
        template = spec["template"]["spec"]
        pod = sum(cpu_millicores(((c.get("resources") or {}).get("requests") or {}).get("cpu"))
                  for c in template["containers"])
        initial = (obj["metadata"].get("annotations") or {}).get("paless.io/initial-replicas")
        replicas = int(spec.get("replicas") or initial or 1) if obj["kind"] != "Job" else 1
        total += pod * (replicas + (obj["kind"] == "Deployment"))
    return total


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project", {"PROJECT_NAME": "load",
                                               "REGISTRY": "127.0.0.1:5000"})


@pytest.fixture
def capacity(sandbox, project: Project) -> None:
    """Nodes enough for ten more stacks and a margin for whatever else runs on the sandbox:
    `scripts/sandbox up --nodes N` adds them."""
    count, free = free_cpu_m(sandbox)
    needed = BRANCHES * stack_cpu_m(project, sandbox) + MARGIN_CPU_M
    if free < needed:
        nodes = count + math.ceil((needed - free) / NODE_CPU_M)
        done = subprocess.run([str(SANDBOX), "up", "--nodes", str(nodes)], capture_output=True,
                              text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr
        assert free_cpu_m(sandbox)[1] >= needed, "the new nodes did not add capacity"


def test_ten_branches_deployed_at_once_all_healthy_each_with_only_its_own_objects(
        project: Project, sandbox, capacity) -> None:
    run_id = uuid.uuid4().hex[:5]
    pushed = run_cli(project, sandbox.kubeconfig, None, "push", timeout=600)
    assert pushed.returncode == 0, str(pushed)
    branches = [f"{run_id}-b{i}" for i in range(BRANCHES)]
    namespaces = [f"load-{b}" for b in branches]
    try:
        started = [start_cli(project, sandbox.kubeconfig, None, "--namespace-from-branch", "all",
                             env={"BRANCH_NAME": branch}) for branch in branches]
        runs = [finish_cli(s, timeout=900) for s in started]
        for namespace, run in zip(namespaces, runs, strict=True):
            assert run.returncode == 0, str(run)
            assert run.doc["namespace"] == namespace and run.doc["result"] == "success"
            assert all(i["action"] == "skipped" for i in run.doc["images"]), run.doc["images"]
        for namespace, run in zip(namespaces, runs, strict=True):
            reported = {key for key in result_objects(run.doc) if key[0] != "Namespace"}
            items = get_json(sandbox, KINDS, "-n", namespace)["items"]
            foreign = [f"{o['kind']}/{o['metadata']['name']}" for o in items
                       if (o["metadata"].get("labels") or {}).get(INSTANCE) not in (namespace,
                                                                                   None)]
            assert not foreign, f"{namespace} holds objects of another branch: {foreign}"
            managed = {(o["kind"], o["metadata"]["name"]) for o in items
                       if (o["metadata"].get("labels") or {}).get(INSTANCE) == namespace}
            assert reported - {k for k in reported if k[0] == "PersistentVolume"} <= managed
            volumes = get_json(sandbox, "persistentvolumes", "-l",
                               f"{INSTANCE}={namespace}")["items"]
            for pv in volumes:
                claim = (pv["spec"].get("claimRef") or {}).get("namespace")
                assert claim in (namespace, None), f"PV {pv['metadata']['name']} bound to {claim}"
            status = subprocess.run(
                [sys.executable, "-m", "paless_deploy", "--kubeconfig",
                 str(sandbox.kubeconfig), "-n", namespace, "--output", "json", "status"],
                capture_output=True, text=True, timeout=120, check=False, env=clean_env())
            assert status.returncode == 0, status.stdout[-2000:] + status.stderr[-2000:]
            assert json.loads(status.stdout)["result"] == "success"
        # nothing is shared: every PV and NodePort is one branch's own
        pvs = get_json(sandbox, "persistentvolumes", "-l",
                       f"{INSTANCE} in ({','.join(namespaces)})")["items"]
        assert len({pv["metadata"]["name"] for pv in pvs}) == len(pvs)
        ports = [p.get("nodePort") for ns in namespaces
                 for svc in get_json(sandbox, "services", "-n", ns)["items"]
                 for p in svc["spec"].get("ports") or [] if p.get("nodePort")]
        assert len(set(ports)) == len(ports), f"a NodePort is shared: {sorted(ports)}"
    finally:
        delete_instances(sandbox, namespaces)
