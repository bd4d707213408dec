"""Images built FROM images of the project, as in Paless's repository, on the real Docker
engine, registry and node: the root Dockerfile's base is built first, every derived image
starts from its exact content tag (never a stale local `:latest`), derived tags follow the
base, and after an edit in `src/` and `all` the running web, worker and scheduler pods hold
the edit.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.fixtures.paless_layout import SRC, write_paless_layout
from tests.fixtures.realnode import real_node as real_node  # noqa: PLC0414 - the fixture
from tests.integration.deploy_helpers import Project, delete_instances, run_cli

DERIVED = ("web", "worker", "scheduler")


def _stale_latest(tmp: Path, project: str) -> None:
    """A `localhost:5000/<project>:latest` of other content in the local engine: what a
    machine holds from an earlier build, and what a derived FROM must not pick up."""
    (tmp / "stale" / "src").mkdir(parents=True)
    (tmp / "stale" / "src" / "app.py").write_text("STALE\n")
    (tmp / "stale" / "Dockerfile").write_text(f"FROM scratch\nCOPY src/ {SRC}/\n")
    subprocess.run(["docker", "build", "-q", "-t", f"localhost:5000/{project}:latest",
                    str(tmp / "stale")], check=True, capture_output=True, timeout=120)


def _file_in_image(ref: str, path: str) -> str:
    name = f"graph-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "create", "--name", name, ref, "x"], check=True,
                   capture_output=True, timeout=60)
    try:
        out = subprocess.run(["docker", "cp", f"{name}:{path}", "-"], check=True,
                             capture_output=True, timeout=60).stdout
    finally:
        subprocess.run(["docker", "rm", name], capture_output=True, timeout=60, check=False)
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(out)) as archive:
        member = archive.extractfile(archive.getmembers()[0])
        assert member is not None
        return member.read().decode()


def _layout(tmp_path: Path, project: str) -> Project:
    root = write_paless_layout(tmp_path / "paless", project)
    env_file = root / "test.env"
    env_file.write_text(f"PROJECT_NAME={project}\n")
    return Project(root, env_file)


@pytest.mark.docker
def test_build_starts_every_derived_image_from_the_base_just_built(tmp_path, docker_client,
                                                                   registry):
    project_name = f"lg{uuid.uuid4().hex[:6]}"
    project = _layout(tmp_path, project_name)
    _stale_latest(tmp_path, project_name)
    plan = run_cli(project, "/nonexistent", None, "plan", timeout=120)
    builds = {b["app"]: b for b in plan.doc["builds"]}
    assert next(iter(builds)) == project_name  # the base first
    assert all(builds[a]["from"] == [project_name] for a in DERIVED), builds
    help_doc = run_cli(project, "/nonexistent", None, "help", timeout=120).doc
    assert {a["name"]: a["builds"] for a in help_doc["apps"]}["worker"] == (
        f"built from {project_name} (FROM 127.0.0.1:5000/{project_name})")

    first = run_cli(project, "/nonexistent", None, "build", timeout=300)
    assert first.returncode == 0, str(first)
    images = {i["app"]: i for i in first.doc["images"]}
    assert next(i["app"] for i in first.doc["images"]) == project_name
    assert all(i["action"] == "built" for i in images.values()), images
    base_ref = images[project_name]["ref"]
    assert base_ref == f"localhost:5000/{project_name}:{builds[project_name]['ref'].split(':')[-1]}"
    for app in DERIVED:
        assert _file_in_image(images[app]["ref"], f"{SRC}/app.py") == "VERSION = 1\n", app
    assert _file_in_image(images["scheduler"]["ref"], "/stage.txt") == "built-in-stage\n"

    again = run_cli(project, "/nonexistent", None, "build", timeout=300)
    assert {i["action"] for i in again.doc["images"]} == {"skipped"}, str(again)

    (project.dir / "src" / "app.py").write_text("VERSION = 2\n")
    third = run_cli(project, "/nonexistent", None, "build", "web", timeout=300)
    rebuilt = {i["app"]: i for i in third.doc["images"]}
    assert list(rebuilt) == [project_name, "web"]  # `build web` builds its base first
    assert rebuilt["web"]["tag"] != images["web"]["tag"]
    assert _file_in_image(rebuilt["web"]["ref"], f"{SRC}/app.py") == "VERSION = 2\n"


@pytest.mark.docker
def test_the_shipped_dockerfiles_are_built_from_base_image_as_before(tmp_path, docker_client):
    """The repository's own Dockerfile.web etc. start FROM ${BASE_IMAGE}: no app of ours,
    so nothing of the graph applies and the plan says so."""
    from tests.integration.deploy_helpers import make_project

    project = make_project(tmp_path / "repo")
    plan = run_cli(project, "/nonexistent", None, "plan", timeout=120)
    assert plan.returncode == 0, str(plan)
    assert {b["app"]: b["from"] for b in plan.doc["builds"]} == {
        "scheduler": [], "web": [], "worker": []}


@pytest.mark.cluster
@pytest.mark.docker
@pytest.mark.realnode
def test_an_edit_in_src_reaches_every_derived_app_running_on_the_real_node(
        tmp_path, sandbox, registry, real_node):
    project_name = f"lg{uuid.uuid4().hex[:6]}"
    project = _layout(tmp_path, project_name)
    _stale_latest(tmp_path, project_name)
    namespace = f"t-graph-{uuid.uuid4().hex[:5]}"

    def running(app: str) -> str:
        pods = json.loads(sandbox.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}",
                                          "-o", "json").stdout)["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")
                and p["status"].get("phase") == "Running"]
        assert len(live) == 1, [p["metadata"]["name"] for p in pods]
        assert live[0]["spec"]["nodeName"] == real_node.name
        return sandbox.kubectl("exec", "-n", namespace, live[0]["metadata"]["name"], "--",
                               "cat", f"{SRC}/app.py").stdout

    try:
        first = run_cli(project, sandbox.kubeconfig, namespace, "--progress-deadline", "90s",
                        "all", timeout=400)
        assert first.returncode == 0, str(first)
        assert {app: running(app) for app in DERIVED} == dict.fromkeys(DERIVED, "VERSION = 1\n")
        (project.dir / "src" / "app.py").write_text("VERSION = 2\n")
        second = run_cli(project, sandbox.kubeconfig, namespace, "--progress-deadline", "90s",
                         "all", timeout=400)
        assert second.returncode == 0, str(second)
        built = {i["app"]: i for i in second.doc["images"]}
        assert built[project_name]["built"] and all(built[a]["built"] for a in DERIVED)
        assert {app: running(app) for app in DERIVED} == dict.fromkeys(DERIVED, "VERSION = 2\n")
    finally:
        delete_instances(sandbox, [namespace])
