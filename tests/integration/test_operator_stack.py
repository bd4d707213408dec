"""A vendored operator stack (tests/fixtures/trees/operator.py) deployed on the sandbox
with one `all`: CRDs and their custom resources, a CRD enum holding a bare `=`, RBAC in
`kube-system` and `default` under the same names, a 1 MB ConfigMap, no Dockerfile. It
re-runs with nothing to do, `diff` is clean, the same tree in a second namespace is
refused naming the owner of its shared objects, and `destroy` removes it with them."""

from __future__ import annotations

import shutil
import uuid

import pytest

from paless_deploy.core.configuration.branch import branch_namespace
from tests.fixtures.trees.operator import KINDS, group_of, write_operator_tree
from tests.integration.deploy_helpers import (
    Project,
    get_json,
    refused_as_not_ours,
    result_objects,
    run_cli,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

SUFFIX = uuid.uuid4().hex[:6]
GROUP = group_of(SUFFIX)
INSTANCE = "app.kubernetes.io/instance"
ROLE = f"monitoring-reader-{SUFFIX}"
CRDS = [f"{plural}.{GROUP}" for _, plural in KINDS]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = write_operator_tree(tmp_path_factory.mktemp("operator") / "project", SUFFIX)
    env = root / "test.env"
    env.write_text("PROJECT_NAME=paless\nREGISTRY=localhost:5000\n")
    return Project(root, env)


def _shared_left(sandbox, ns: str) -> list[str]:
    """What is still labelled for `ns` outside it: roles, bindings, CRDs, cluster roles."""
    left = get_json(sandbox, "roles,rolebindings", "-A", "-l", f"{INSTANCE}={ns}")["items"]
    left += get_json(sandbox, "crd,clusterroles,clusterrolebindings", "-l",
                     f"{INSTANCE}={ns}")["items"]
    return [f"{o['kind']}/{o['metadata']['name']}" for o in left]


@pytest.fixture(scope="module")
def deployed(tree: Project, sandbox):
    ns = f"t-op-{SUFFIX}"
    try:
        yield ns, run_cli(tree, sandbox.kubeconfig, ns, "all", timeout=400)
    finally:
        sandbox.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false",
                        check=False)
        for kind in ("role", "rolebinding"):
            for where in ("kube-system", "default"):
                sandbox.kubectl("delete", kind, ROLE, "-n", where, "--ignore-not-found",
                                check=False)
        sandbox.kubectl("delete", "crd", *CRDS, "--ignore-not-found", "--wait=false",
                        check=False)
        sandbox.kubectl("delete", "clusterrole,clusterrolebinding",
                        f"monitoring-operator-{SUFFIX}", "--ignore-not-found", check=False)


def test_one_all_deploys_the_stack(deployed, sandbox):
    ns, run = deployed
    assert run.returncode == 0, str(run)
    objects = result_objects(run.doc)
    assert run.doc["images"] == []  # no Dockerfile: nothing built
    for where in ("kube-system", "default"):
        role = get_json(sandbox, "role", ROLE, "-n", where)
        assert role["metadata"]["labels"][INSTANCE] == ns, where
    crd = get_json(sandbox, "crd", f"alertmanagers.{GROUP}")
    enum = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"]["matchers"]["items"]["properties"]["matchType"]["enum"]
    assert enum[0] == "="
    alertmanager = get_json(sandbox, f"alertmanagers.{GROUP}", "main", "-n", ns)
    assert alertmanager["spec"]["matchers"][0]["matchType"] == "="
    dashboards = get_json(sandbox, "configmap", "grafana-dashboards", "-n", ns)
    assert sum(len(v) for v in dashboards["data"].values()) > 900_000
    # each custom resource was applied after its CRD was Established
    for kind, plural in KINDS:
        definition = objects[("CustomResourceDefinition", f"{plural}.{GROUP}")]
        resource = next(o for (k, _), o in objects.items() if k == kind)
        assert definition["ready_at"] <= resource["applied_at"], kind
    monitor = objects[("ServiceMonitor", "kube-scheduler")]
    assert monitor["phase"] != "scheduler" and monitor["action"] == "created"
    shared = {(o["kind"], o["namespace"]) for p in run.doc["phases"] for o in p["objects"]
              if o["kind"] in ("Role", "RoleBinding")}
    assert shared == {("Role", "kube-system"), ("Role", "default"),
                      ("RoleBinding", "kube-system"), ("RoleBinding", "default")}


def test_plan_shows_the_graph(deployed, tree, sandbox):
    ns, _ = deployed
    plan = run_cli(tree, sandbox.kubeconfig, ns, "plan")
    assert plan.returncode == 0, str(plan)
    by_name = {(o["kind"], o["name"], o["namespace"]): o for p in plan.doc["plan"]
               for o in p["objects"]}
    monitor = by_name[("ServiceMonitor", "kube-scheduler", ns)]
    assert monitor["needs"] == [{"kind": "CustomResourceDefinition",
                                 "name": f"servicemonitors.{GROUP}", "namespace": "",
                                 "why": "its CRD (once Established)",
                                 "rule": "custom-resource", "ready": True}]
    assert monitor["wave"] == 1
    assert f"Role/{ROLE} in kube-system" in plan.doc["waves"][0]
    # no advice to label the operator postgres|redis|...: the tree is not Paless-shaped
    assert not any("label them" in w for w in plan.doc["warnings"])


def test_a_rerun_changes_nothing_and_diff_is_clean(deployed, tree, sandbox):
    ns, first = deployed
    assert first.returncode == 0, str(first)
    again = run_cli(tree, sandbox.kubeconfig, ns, "all", timeout=300)
    assert again.returncode == 0, str(again)
    actions = {o["action"] for p in again.doc["phases"][1:] for o in p["objects"]}
    assert actions == {"unchanged"}, again.doc["phases"]
    diff = run_cli(tree, sandbox.kubeconfig, ns, "diff")
    assert diff.returncode == 0, str(diff)
    assert diff.doc["changes"] == []


def test_the_same_tree_in_another_namespace_is_refused_naming_the_owner(deployed, tree,
                                                                        sandbox):
    ns, first = deployed
    assert first.returncode == 0, str(first)
    branch = f"op2-{SUFFIX}"
    other = branch_namespace("paless", branch)
    try:
        # a branch deploy: it says which shared objects it touches, then is refused them
        run = run_cli(tree, sandbox.kubeconfig, None, "--namespace-from-branch", "all",
                      env={"BRANCH_NAME": branch}, timeout=300)
        refused_as_not_ours(run, f"Role/{ROLE} in namespace kube-system belongs to "
                                 f"namespace {ns}")
        assert {f"Role/{ROLE} in kube-system", f"Role/{ROLE} in default",
                f"CustomResourceDefinition/alertmanagers.{GROUP}"} <= set(
                    run.doc["shared_objects"])
        assert sandbox.kubectl("get", "namespace", other, check=False).returncode != 0
        assert get_json(sandbox, "role", ROLE, "-n", "default")["metadata"]["labels"][
            INSTANCE] == ns
    finally:
        sandbox.kubectl("delete", "namespace", other, "--ignore-not-found", "--wait=false",
                        check=False)


def test_destroy_removes_the_stack_with_its_shared_objects(deployed, tree, sandbox):
    ns, first = deployed
    assert first.returncode == 0, str(first)
    assert len(_shared_left(sandbox, ns)) == 9  # 2 Roles, 2 RoleBindings, 3 CRDs, 2 cluster
    run = run_cli(tree, sandbox.kubeconfig, ns, "destroy", "--yes", timeout=300)
    assert run.returncode == 0, str(run)
    deleted = {(d["kind"], d["namespace"]) for d in run.doc["deleted"]}
    assert {("Role", "kube-system"), ("Role", "default"),
            ("CustomResourceDefinition", None)} <= deleted
    assert _shared_left(sandbox, ns) == []
    assert sandbox.kubectl("get", "namespace", ns, check=False).returncode != 0


def test_prune_removes_a_shared_object_that_left_the_tree(tree, sandbox, tmp_path):
    """A Role in kube-system removed from the tree goes with the next `all`."""
    copy = Project(tmp_path / "project", tmp_path / "project" / "test.env")
    shutil.copytree(tree.dir, copy.dir)
    ns = f"t-op3-{SUFFIX}"
    rbac = copy.dir / "k8s" / "vendor" / "monitoring" / "rbac.yaml"
    try:
        (copy.dir / "k8s" / "vendor" / "monitoring" / "kustomization.yaml").write_text(
            "resources:\n- rbac.yaml\n- operator.yaml\n- dashboards.yaml\n")
        rbac.write_text(rbac.read_text().replace(SUFFIX, f"{SUFFIX}-p"))
        first = run_cli(copy, sandbox.kubeconfig, ns, "all", timeout=300)
        assert first.returncode == 0, str(first)
        docs = rbac.read_text().split("\n---\n")
        rbac.write_text("\n---\n".join(d for d in docs if '"kube-system"' not in d))
        second = run_cli(copy, sandbox.kubeconfig, ns, "all", timeout=300)
        assert second.returncode == 0, str(second)
        pruned = {(o["kind"], o["namespace"]) for p in second.doc["phases"]
                  for o in p["objects"] if o["action"] == "pruned"}
        assert pruned == {("Role", "kube-system"), ("RoleBinding", "kube-system")}
        gone = sandbox.kubectl("get", "role", f"monitoring-reader-{SUFFIX}-p", "-n",
                               "kube-system", check=False)
        assert gone.returncode != 0
        assert get_json(sandbox, "role", f"monitoring-reader-{SUFFIX}-p", "-n", "default")
    finally:
        run_cli(copy, sandbox.kubeconfig, ns, "destroy", "--yes", timeout=300)
