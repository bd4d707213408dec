"""Content-derived tags: stable for the same content, new for any change that matters.

Pure: hashes files of fixture trees; base image IDs are passed in, not asked of Docker.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from paless_deploy.adapters.buildcontext import read_build_files
from paless_deploy.adapters.docker import context_paths
from paless_deploy.adapters.registry import registry_scheme
from paless_deploy.core.images.buildspec import BuildSecret, BuildSpec
from paless_deploy.core.images.discover import App
from paless_deploy.core.images.dockerfile import base_images
from paless_deploy.core.images.tags import compute_tag
from paless_deploy.stages.project import project_apps

ARGS = {"BASE_IMAGE": "base:1"}
IDS: dict[str, str | None] = {"base:1": "sha256:aaa"}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def app(tmp_path: Path) -> App:
    d = tmp_path / "api"
    write(d / "Dockerfile", "ARG BASE_IMAGE=base:1\nFROM ${BASE_IMAGE}\nCOPY . /app\n")
    write(d / "main.py", "print('hi')\n")
    write(d / ".dockerignore", "*.log\nbuild/\n")
    return App("api", d / "Dockerfile", d)


def tag(app: App, args: dict[str, str] = ARGS, ids: dict[str, str | None] = IDS, *,
        target: str | None = None, platform: str | None = None,
        secrets: tuple[BuildSecret, ...] = ()) -> str:
    spec = BuildSpec(args=args, target=target, platform=platform, secrets=secrets)
    return compute_tag(app, read_build_files(app, context_paths(app)), spec, ids)


def test_same_content_same_tag(app: App) -> None:
    first = tag(app)
    assert len(first) == 12 and int(first, 16) >= 0
    os.utime(app.context / "main.py", (1, 1))  # mtimes are not content
    assert tag(app) == first


def test_changed_file_new_tag(app: App) -> None:
    first = tag(app)
    write(app.context / "main.py", "print('bye')\n")
    assert tag(app) != first


def test_new_file_and_mode_change_new_tag(app: App) -> None:
    first = tag(app)
    (app.context / "main.py").chmod(0o755)
    second = tag(app)
    assert second != first
    write(app.context / "extra.txt", "x")
    assert tag(app) != second


def test_dockerignored_file_keeps_tag(app: App) -> None:
    first = tag(app)
    write(app.context / "debug.log", "noise")
    write(app.context / "build" / "out.bin", "noise")
    assert tag(app) == first
    assert "debug.log" not in context_paths(app)


def test_dockerfile_change_new_tag(app: App) -> None:
    first = tag(app)
    write(app.dockerfile, app.dockerfile.read_text() + "EXPOSE 80\n")
    assert tag(app) != first


def test_build_arg_change_new_tag(app: App) -> None:
    assert tag(app, {"BASE_IMAGE": "base:2"}) != tag(app)
    assert tag(app, {**ARGS, "OTHER": "1"}) != tag(app)
    assert tag(app, {"B": "2", "A": "1"}) == tag(app, {"A": "1", "B": "2"})


def test_target_platform_and_secret_names_are_inputs(app: App) -> None:
    plain = tag(app)
    assert tag(app, target="runtime") not in (plain, tag(app, target="dev"))
    assert tag(app, platform="linux/arm64") not in (plain, tag(app, platform="linux/amd64"))
    one = tag(app, secrets=(BuildSecret("npm", "NPM_TOKEN"),))
    assert one != plain
    # the names of secrets, never their values (nor the variable holding them)
    assert tag(app, secrets=(BuildSecret("npm", "OTHER_VARIABLE"),)) == one
    assert tag(app, secrets=(BuildSecret("pip", "NPM_TOKEN"),)) != one


def test_per_dockerfile_ignore_file_wins_over_dockerignore(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile.web", "FROM scratch\nCOPY . /src\n")
    write(tmp_path / "Dockerfile.worker", "FROM scratch\nCOPY . /src\n")
    write(tmp_path / ".dockerignore", "*.log\n")
    write(tmp_path / "Dockerfile.web.dockerignore", "*.md\n")
    write(tmp_path / "app.log", "log")
    write(tmp_path / "notes.md", "notes")
    web, worker = project_apps(tmp_path)  # the ignore file is no app of its own
    assert (web.name, worker.name) == ("web", "worker")
    assert "app.log" in context_paths(web) and "notes.md" not in context_paths(web)
    assert "notes.md" in context_paths(worker) and "app.log" not in context_paths(worker)
    before = (tag(web, {}, {}), tag(worker, {}, {}))
    write(tmp_path / "notes.md", "edited")  # only worker receives it
    assert (tag(web, {}, {}), tag(worker, {}, {}) != before[1]) == (before[0], True)
    write(tmp_path / "Dockerfile.web.dockerignore", "*.md\n*.txt\n")  # what web is sent
    assert tag(web, {}, {}) != before[0]


def test_base_image_id_change_new_tag(app: App) -> None:
    assert tag(app, ids={"base:1": "sha256:bbb"}) != tag(app)
    assert tag(app, ids={"base:1": None}) != tag(app)


def test_dir_apps_are_independent(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write(tmp_path / name / "Dockerfile", "FROM scratch\nCOPY f /f\n")
        write(tmp_path / name / "f", name)
    a, b = project_apps(tmp_path)
    before = (tag(a, {}, {}), tag(b, {}, {}))
    write(tmp_path / "b" / "f", "changed")
    assert tag(a, {}, {}) == before[0]
    assert tag(b, {}, {}) != before[1]


def test_root_dockerfiles_share_source_changes(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile.web", "FROM scratch\nCOPY src /src\n")
    write(tmp_path / "Dockerfile.worker", "FROM scratch\nCOPY src /src\nENV W=1\n")
    write(tmp_path / ".dockerignore", "Dockerfile.*\nk8s\n")
    write(tmp_path / "src" / "app.py", "v1")
    web, worker = project_apps(tmp_path)
    before = (tag(web, {}, {}), tag(worker, {}, {}))
    assert before[0] != before[1]
    write(tmp_path / "src" / "app.py", "v2")
    after = (tag(web, {}, {}), tag(worker, {}, {}))
    assert after[0] != before[0] and after[1] != before[1]
    # An edit of one Dockerfile does not retag the other (ignored, re-included per build).
    write(tmp_path / "Dockerfile.worker", "FROM scratch\nCOPY src /src\nENV W=2\n")
    assert tag(web, {}, {}) == after[0]
    assert tag(worker, {}, {}) != after[1]
    write(tmp_path / "k8s" / "x.yaml", "ignored")
    assert tag(web, {}, {}) == after[0]


def test_repository_context_is_small() -> None:
    root = Path(__file__).resolve().parents[2]
    web = next(a for a in project_apps(root) if a.name == "web")
    paths = context_paths(web)
    assert "Dockerfile.web" in paths
    assert not [p for p in paths if p.split("/")[0] in ("tests", "k8s", ".git", "scripts",
                                                        "paless_deploy", "Dockerfile.worker")]


def test_base_images_parsing() -> None:
    text = (
        "ARG BASE_IMAGE=upstream:1\nARG TOOLS\n"
        "FROM --platform=linux/amd64 ${BASE_IMAGE} AS build\n"
        "FROM build\nFROM scratch\n"
        "FROM \\\n  python:3.12-slim\nFROM ${TOOLS:-alpine:3}\n"
    )
    assert base_images(text, {}) == ["upstream:1", "python:3.12-slim", "alpine:3"]
    assert base_images(text, {"BASE_IMAGE": "mine:2", "TOOLS": "t:1"}) == \
        ["mine:2", "python:3.12-slim", "t:1"]


@pytest.mark.parametrize(("host", "scheme"), [
    ("localhost:5000", "http"), ("127.0.0.1:5000", "http"), ("localhost", "http"),
    ("registry.example.com", "https"), ("ghcr.io", "https"), ("10.0.0.1:5000", "https"),
])
def test_registry_scheme(host: str, scheme: str) -> None:
    assert registry_scheme(host) == scheme
