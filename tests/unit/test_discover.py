"""Discovery on fixture trees: one level down, root Dockerfile.<name>, skips, duplicates.

Nothing deeper than one level is searched, so test fixtures never become apps.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from paless_deploy.core.errors import ConfigError
from paless_deploy.core.images.discover import app_repository
from paless_deploy.stages.project import project_apps


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("FROM scratch\n")


def test_dir_apps_and_root_dockerfiles(tmp_path: Path) -> None:
    touch(tmp_path / "api" / "Dockerfile")
    touch(tmp_path / "Dockerfile.web")
    touch(tmp_path / "Dockerfile.worker")
    apps = project_apps(tmp_path)
    assert [a.name for a in apps] == ["api", "web", "worker"]
    api, web, _ = apps
    assert api.context == tmp_path / "api" and api.dockerfile_in_context == "Dockerfile"
    assert web.context == tmp_path and web.dockerfile == tmp_path / "Dockerfile.web"
    assert web.dockerfile_in_context == "Dockerfile.web"


def test_nothing_deeper_than_one_level(tmp_path: Path) -> None:
    touch(tmp_path / "tests" / "fixtures" / "app" / "Dockerfile")
    touch(tmp_path / "services" / "api" / "Dockerfile")
    touch(tmp_path / "services" / "Dockerfile.extra")
    assert project_apps(tmp_path) == []


@pytest.mark.parametrize("skipped", ["node_modules", ".git", ".venv", ".context-management",
                                     ".devcontainer"])
def test_skipped_dirs(tmp_path: Path, skipped: str) -> None:
    touch(tmp_path / skipped / "Dockerfile")
    assert project_apps(tmp_path) == []


def test_ignore_files_and_an_empty_suffix_are_not_apps(tmp_path: Path) -> None:
    touch(tmp_path / "Dockerfile.web.dockerignore")
    touch(tmp_path / "Dockerfile.")
    (tmp_path / "docs").mkdir()
    assert project_apps(tmp_path) == []


def test_the_root_dockerfile_is_the_app_named_project_name(tmp_path: Path) -> None:
    """Paless's layout: the root Dockerfile builds {REGISTRY}/{PROJECT_NAME}, the base."""
    touch(tmp_path / "Dockerfile")
    touch(tmp_path / "Dockerfile.web")
    base, web = project_apps(tmp_path)
    assert (base.name, base.dockerfile_in_context, base.context) == (
        "paless", "Dockerfile", tmp_path)
    assert web.name == "web"
    assert [a.name for a in project_apps(tmp_path, "acme")] == ["acme", "web"]
    assert app_repository("acme", "acme") == "acme"
    assert app_repository("acme", "web") == "acme-web"


def test_root_dockerfile_and_a_dockerfile_of_the_project_name_are_both_named(
        tmp_path: Path) -> None:
    touch(tmp_path / "Dockerfile")
    touch(tmp_path / "Dockerfile.paless")
    with pytest.raises(ConfigError) as info:
        project_apps(tmp_path)
    assert "Dockerfile.paless" in str(info.value) and "Dockerfile and" in str(info.value)


def test_duplicate_names_both_named(tmp_path: Path) -> None:
    touch(tmp_path / "web" / "Dockerfile")
    touch(tmp_path / "Dockerfile.web")
    with pytest.raises(ConfigError) as info:
        project_apps(tmp_path)
    assert "Dockerfile.web" in str(info.value) and "web/Dockerfile" in str(info.value)


def test_invalid_app_name(tmp_path: Path) -> None:
    touch(tmp_path / "Dockerfile.Web")
    with pytest.raises(ConfigError, match="Rename"):
        project_apps(tmp_path)


def test_repository_ships_the_paless_components() -> None:
    root = Path(__file__).resolve().parents[2]
    apps = {a.name: a for a in project_apps(root)}
    assert {"web", "worker", "scheduler"} <= set(apps)
    for name in ("web", "worker", "scheduler"):
        text = apps[name].dockerfile.read_text()
        assert "FROM ${BASE_IMAGE}" in text and "ARG BASE_IMAGE=" in text
        assert "\nRUN " not in text  # builds must work offline on the stand-in base
