"""Build and push against the real Docker engine and registry of the sandbox.

Unchanged apps are neither rebuilt nor pushed: asserted from the engine's event
stream and image IDs and from the registry's manifests, not from the tool's log.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from paless_deploy import cli
from paless_deploy.core.configuration.variables import VARIABLES

pytestmark = pytest.mark.docker


def make_project(root: Path, apps: dict[str, str]) -> Path:
    """Apps `<name>/Dockerfile` (FROM scratch + COPY file.txt) with the given file content."""
    for name, content in apps.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "Dockerfile").write_text("FROM scratch\nCOPY file.txt /file.txt\n")
        (root / name / "file.txt").write_text(content)
    return root


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)
    return monkeypatch


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = cli.main(["--output", "json", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def _stamp(t: float) -> str:
    return f"{int(t)}.{int((t % 1) * 1e9):09d}"


def image_events(docker_client: Any, since: float, until: float, prefix: str) -> list[tuple]:
    """(action, image name) of tag/push events on our images between two instants."""
    events = docker_client.events(since=_stamp(since), until=_stamp(until), decode=True,
                                  filters={"type": "image"})
    found = []
    for event in events:
        name = (event.get("Actor", {}).get("Attributes", {}) or {}).get("name", "")
        if f"/{prefix}-" in name and event.get("Action") in ("tag", "push"):
            found.append((event["Action"], name.rsplit("/", 1)[-1].split(":")[0]))
    return sorted(found)


def timed_run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str, float,
                                                                       float]:
    start = time.time()
    code, doc, err = run(capsys, *args)
    return code, doc, err, start, time.time() + 0.5


def test_push_twice_then_change_one_app(tmp_path: Path, env: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str], docker_client: Any,
                                        registry: Any, project_name: str) -> None:
    project = make_project(tmp_path / "p", {"alpha": "a1", "beta": "b1"})
    env.setenv("PROJECT_NAME", project_name)
    args = ("--project-dir", str(project), "--registry", registry.host, "push")

    code, doc, err, *_ = timed_run(capsys, *args)
    assert code == 0, err
    first = {i["app"]: i for i in doc["images"]}
    assert {a: (i["action"], i["built"], i["pushed"]) for a, i in first.items()} == {
        "alpha": ("pushed", True, True), "beta": ("pushed", True, True)}
    repos = {app: f"{project_name}-{app}" for app in first}
    for app, item in first.items():
        assert item["ref"] == f"{registry.host}/{repos[app]}:{item['tag']}"
        assert registry.manifest_digest(repos[app], item["tag"]) == item["digest"]
    ids = {app: docker_client.inspect_image(i["ref"])["Id"] for app, i in first.items()}
    created = {app: docker_client.inspect_image(i["ref"])["Created"] for app, i in first.items()}
    tags_before = {app: registry.tags(repo) for app, repo in repos.items()}

    code, doc, err, since, until = timed_run(capsys, *args)
    assert code == 0, err
    assert image_events(docker_client, since, until, project_name) == []
    second = {i["app"]: i for i in doc["images"]}
    for app, item in second.items():
        assert (item["action"], item["built"], item["pushed"]) == ("skipped", False, False)
        assert item["tag"] == first[app]["tag"]
        assert item["digest"] == first[app]["digest"]
        assert docker_client.inspect_image(item["ref"])["Id"] == ids[app]
        assert docker_client.inspect_image(item["ref"])["Created"] == created[app]
        assert registry.manifest_digest(repos[app], item["tag"]) == first[app]["digest"]
    assert {app: registry.tags(repo) for app, repo in repos.items()} == tags_before

    (project / "beta" / "file.txt").write_text("b2")
    code, doc, err, since, until = timed_run(capsys, *args)
    assert code == 0, err
    third = {i["app"]: i for i in doc["images"]}
    assert third["alpha"]["action"] == "skipped" and third["alpha"]["tag"] == first["alpha"]["tag"]
    assert third["beta"]["action"] == "pushed" and third["beta"]["built"]
    assert third["beta"]["tag"] != first["beta"]["tag"]
    # Only beta is touched. (A classic or Docker 20.10 BuildKit build also emits a `tag`
    # event; buildx's docker driver names the image without one.)
    events = image_events(docker_client, since, until, project_name)
    assert ("push", repos["beta"]) in events
    assert {name for _, name in events} == {repos["beta"]}
    assert docker_client.inspect_image(third["beta"]["ref"])["Id"] != ids["beta"]
    assert registry.manifest_digest(repos["beta"], third["beta"]["tag"]) == third["beta"]["digest"]
    assert docker_client.inspect_image(third["alpha"]["ref"])["Id"] == ids["alpha"]


def test_build_only_builds_once(tmp_path: Path, env: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str], docker_client: Any,
                                project_name: str) -> None:
    project = make_project(tmp_path / "p", {"solo": "s"})
    env.setenv("PROJECT_NAME", project_name)
    code, doc, err = run(capsys, "--project-dir", str(project), "build")
    assert code == 0, err
    (item,) = doc["images"]
    assert (item["action"], item["digest"]) == ("built", None)
    assert item["ref"].startswith(f"localhost:5000/{project_name}-solo:")
    assert docker_client.inspect_image(item["ref"])["Id"] == item["image_id"]
    code, doc, err = run(capsys, "--project-dir", str(project), "build")
    assert code == 0 and doc["images"][0]["action"] == "skipped"


def test_unreachable_registry_exit_3_names_it(tmp_path: Path, env: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str],
                                              second_registry: Any, project_name: str) -> None:
    project = make_project(tmp_path / "p", {"app": "v1"})
    env.setenv("PROJECT_NAME", project_name)
    args = ("--project-dir", str(project), "--registry", second_registry.host, "push")
    code, doc, err = run(capsys, *args)
    assert code == 0, err
    assert doc["images"][0]["action"] == "pushed"

    second_registry.stop()
    (project / "app" / "file.txt").write_text("v2")
    code, doc, err = run(capsys, *args)
    assert code == 3
    assert f"Registry {second_registry.host} is not reachable" in err
    assert "Traceback" not in err
    assert doc["errors"][0]["code"] == "registry-unreachable"


def test_shipped_component_dockerfiles_build_offline(tmp_path: Path, env: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str],
                                                     docker_client: Any,
                                                     project_name: str) -> None:
    """web, worker, scheduler build from the repository root on a local stand-in base."""
    standin = tmp_path / "standin"
    standin.mkdir()
    (standin / "Dockerfile").write_text("FROM scratch\nCOPY marker /marker\n")
    (standin / "marker").write_text(project_name)
    base = f"localhost:5000/{project_name}-standin-base:1"  # removed by project_name
    for _ in docker_client.build(path=str(standin), tag=base, rm=True, decode=True):
        pass
    env.setenv("PROJECT_NAME", project_name)
    env.setenv("BASE_IMAGE", base)
    root = Path(__file__).resolve().parents[2]
    code, doc, err = run(capsys, "--project-dir", str(root), "build",
                         "web", "worker", "scheduler")
    assert code == 0, err
    images = {i["app"]: i for i in doc["images"]}
    assert {i["action"] for i in images.values()} == {"built"}
    web = docker_client.inspect_image(images["web"]["ref"])["Config"]
    assert "granian" in web["Cmd"] and "8000/tcp" in web["ExposedPorts"]
    assert web["Labels"]["app.kubernetes.io/component"] == "web"
    worker = docker_client.inspect_image(images["worker"]["ref"])["Config"]
    assert worker["Cmd"][:4] == ["celery", "--app", "paperless", "worker"]
    scheduler = docker_client.inspect_image(images["scheduler"]["ref"])["Config"]
    assert "beat" in scheduler["Cmd"]


def test_registry_refusing_credentials_exit_3_names_it(tmp_path: Path, env: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str],
                                                       docker_client: Any,
                                                       project_name: str) -> None:
    """A registry that wants a login we do not have: one paragraph, `docker login`, exit 3."""
    import bcrypt

    from tests.fixtures.docker import RegistryProcess, _free_port

    workdir = tmp_path / "auth-registry"
    workdir.mkdir()
    hashed = bcrypt.hashpw(b"s3cret-pass", bcrypt.gensalt()).decode()
    (workdir / "htpasswd").write_text(f"ci-bot:{hashed}\n")
    registry = RegistryProcess(
        host=f"127.0.0.1:{_free_port()}", workdir=workdir,
        extra_config=f"auth:\n  htpasswd:\n    realm: paless-test\n"
                     f"    path: {workdir / 'htpasswd'}\n")
    registry.start()
    try:
        project = make_project(tmp_path / "p", {"app": "v1"})
        env.setenv("PROJECT_NAME", project_name)
        code, doc, err = run(capsys, "--project-dir", str(project), "--registry", registry.host,
                             "push")
        assert code == 3, err
        assert doc["errors"][0]["code"] == "registry-auth"
        assert f"Registry {registry.host} refused authentication" in err
        assert f"docker login {registry.host}" in err
        assert "Traceback" not in err and "s3cret" not in err
    finally:
        registry.stop()
