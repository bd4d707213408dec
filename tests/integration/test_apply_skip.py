"""An object whose apply would change nothing is not applied again; everything else is.

On the sandbox, with the benchmark's generated tree (two apps, ten kinds each): a second
run sends no apply and changes no object, and still waits for readiness; a changed value,
a field left out of the manifest and a live value someone changed or removed are all
applied (a value another manager took over is the conflict it always was).
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
import yaml

from benchmarks.tree import app_objects, write_tree
from paless_deploy.core.manifests.objdiff import comparable
from tests.integration.deploy_helpers import (
    Project,
    delete_instances,
    get_json,
    result_objects,
    run_cli,
)

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.timeout(300)]

UID = uuid.uuid4().hex[:6]
ENV = "PROJECT_NAME=paless-skip\nREGISTRY=127.0.0.1:5000\n"


def tree(path: Path, apps: int = 2) -> Project:
    write_tree(path, apps, bench_nodes=False)
    (path / "test.env").write_text(ENV)
    return Project(path, path / "test.env")


def rewrite(project: Project, app: int, edit) -> None:
    """Apply `edit` to the objects of one app in the tree's base."""
    path = project.dir / "k8s" / "base" / f"app-{app:03d}.yaml"
    objects = list(yaml.safe_load_all(path.read_text()))
    edit(objects)
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))


def by_kind(objects: list[dict], kind: str) -> dict:
    (obj,) = [o for o in objects if o["kind"] == kind]
    return obj


def applied_objects(sandbox, ns: str) -> dict[tuple[str, str], dict]:
    """Every object of the tree, managedFields included."""
    kinds = ("serviceaccounts,roles,rolebindings,configmaps,secrets,networkpolicies,"
             "deployments,services,horizontalpodautoscalers,poddisruptionbudgets")
    items = get_json(sandbox, kinds, "-n", ns, "-l", "app.kubernetes.io/managed-by",
                     "--show-managed-fields")["items"]
    assert len(items) == 20
    return {(o["kind"], o["metadata"]["name"]): o for o in items}


def ours(obj: dict) -> list[dict]:
    """Our managedFields entries, with their times: an apply that changed anything bumps
    its entry's time."""
    return [e for e in obj["metadata"].get("managedFields") or []
            if e["manager"] == "paless-deploy"]


def actions(run) -> dict[tuple[str, str], str]:
    return {k: v["action"] for k, v in result_objects(run.doc).items()}


@pytest.fixture
def deployed(sandbox, tmp_path):
    ns = f"t-skip-{UID}-{uuid.uuid4().hex[:4]}"
    project = tree(tmp_path / "tree")
    first = run_cli(project, sandbox.kubeconfig, ns, "all")
    try:
        assert first.returncode == 0, str(first)
        yield project, ns
    finally:
        delete_instances(sandbox, [ns])


def test_a_second_run_applies_nothing_and_changes_nothing(deployed, sandbox):
    project, ns = deployed
    before = applied_objects(sandbox, ns)
    again = run_cli(project, sandbox.kubeconfig, ns, "all")
    assert again.returncode == 0, str(again)
    assert set(actions(again).values()) == {"unchanged"}, actions(again)
    after = applied_objects(sandbox, ns)
    assert before.keys() == after.keys()
    for key, obj in before.items():  # what we own; controllers may have written status
        assert comparable(obj) == comparable(after[key]), key
        assert ours(obj) == ours(after[key]), key


def test_changed_values_and_left_out_fields_are_applied(deployed, sandbox):
    project, ns = deployed

    def edit(objects):
        by_kind(objects, "ConfigMap")["data"]["LOG_LEVEL"] = "debug"
        del by_kind(objects, "ConfigMap")["data"]["LISTEN"]  # left out: must go
        by_kind(objects, "Secret")["stringData"]["token"] = "rotated"
        del by_kind(objects, "Service")["spec"]["ports"][0]["name"]
        by_kind(objects, "Service")["spec"]["ports"][0]["targetPort"] = 8080

    rewrite(project, 0, edit)
    run = run_cli(project, sandbox.kubeconfig, ns, "all")
    assert run.returncode == 0, str(run)
    done = actions(run)
    for kind, name in (("ConfigMap", "app-000-config"), ("Secret", "app-000-secret"),
                       ("Service", "app-000")):
        assert done[(kind, name)] == "configured", (kind, done)
    assert done[("ConfigMap", "app-001-config")] == "unchanged"
    data = get_json(sandbox, "configmap", "app-000-config", "-n", ns)["data"]
    assert data["LOG_LEVEL"] == "debug" and "LISTEN" not in data
    secret = get_json(sandbox, "secret", "app-000-secret", "-n", ns)["data"]
    assert base64.b64decode(secret["token"]) == b"rotated"
    port = get_json(sandbox, "service", "app-000", "-n", ns)["spec"]["ports"][0]
    assert "name" not in port and port["targetPort"] == 8080


def test_a_removed_or_changed_live_value_is_corrected(deployed, sandbox):
    project, ns = deployed
    label = "app.kubernetes.io/name"
    sandbox.kubectl("label", "deployment", "app-000", f"{label}-", "-n", ns)
    sandbox.kubectl("annotate", "networkpolicy", "app-001", "-n", ns, "extra=by-hand")
    run = run_cli(project, sandbox.kubeconfig, ns, "all")
    assert run.returncode == 0, str(run)
    assert actions(run)[("Deployment", "app-000")] == "configured"
    assert get_json(sandbox, "deployment", "app-000", "-n", ns)["metadata"]["labels"][
        label] == "app-000"
    # a field nobody applied is someone else's: left alone, and no apply needed for it
    assert actions(run)[("NetworkPolicy", "app-001")] == "unchanged"

    sandbox.kubectl("patch", "configmap", "app-001-config", "-n", ns, "--type=merge", "-p",
                    '{"data": {"LOG_LEVEL": "by-hand"}}')
    conflict = run_cli(project, sandbox.kubeconfig, ns, "all")
    assert conflict.returncode != 0 and any(
        e["code"] == "apply-conflict" for e in conflict.doc["errors"]), str(conflict)
    forced = run_cli(project, sandbox.kubeconfig, ns, "all", "--force-conflicts")
    assert forced.returncode == 0, str(forced)
    assert get_json(sandbox, "configmap", "app-001-config", "-n", ns)["data"][
        "LOG_LEVEL"] == "info"


def test_readiness_is_still_awaited_when_nothing_is_applied(sandbox, tmp_path):
    ns = f"t-skip-ready-{UID}"
    project = tree(tmp_path / "tree", apps=1)

    def never_ready(objects):
        template = by_kind(objects, "Deployment")["spec"]["template"]
        template["metadata"]["annotations"]["sandbox.paless.io/fail"] = "never-ready"

    rewrite(project, 0, never_ready)
    try:
        args = ("--progress-deadline", "4s", "all")
        first = run_cli(project, sandbox.kubeconfig, ns, *args)
        assert first.returncode == 1, str(first)
        again = run_cli(project, sandbox.kubeconfig, ns, *args)
        assert again.returncode == 1, str(again)  # not skipped into a success
        assert actions(again)[("Deployment", "app-000")] == "unchanged"
        assert any("Deployment/app-000" in (e.get("resource") or "") + e.get("message", "")
                   for e in again.doc["errors"]), again.doc["errors"]
    finally:
        delete_instances(sandbox, [ns])


def test_the_tree_has_the_ten_kinds():
    assert {o["kind"] for o in app_objects(0)} == {
        "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Secret", "NetworkPolicy",
        "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
