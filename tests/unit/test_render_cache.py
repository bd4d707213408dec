"""The kustomize output cache: keyed by the overlay tree's content, never stale, never remote."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from paless_deploy.adapters.kustomize import kustomize_build
from paless_deploy.core.errors import ConfigError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "overlays" / "project"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PALESS_NO_RENDER_CACHE", raising=False)
    dest = tmp_path / "project"
    shutil.copytree(FIXTURE, dest)
    return dest


def cache_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "paless-deploy" / "kustomize").glob("*.yaml"))


def overlay(project: Path) -> Path:
    return next(p for p in sorted((project / "k8s" / "overlays").iterdir()) if p.is_dir())


def test_a_second_render_reads_the_cache(project: Path, tmp_path: Path):
    first = kustomize_build(overlay(project), "x")
    (entry,) = cache_files(tmp_path)
    # prove the second build reads the cache: a marker written into the cached output
    entry.write_text(entry.read_text() + "\n---\napiVersion: v1\nkind: ConfigMap\n"
                     "metadata: {name: from-the-cache}\n")
    second = kustomize_build(overlay(project), "x")
    assert [o["metadata"]["name"] for o in second] == [
        *[o["metadata"]["name"] for o in first], "from-the-cache"]


def test_changing_any_file_of_the_tree_misses_the_cache(project: Path, tmp_path: Path):
    kustomize_build(overlay(project), "x")
    some_file = next(p for p in sorted((project / "k8s").rglob("*.yaml"))
                     if not p.name.startswith("kustomization"))
    some_file.write_text(some_file.read_text() + "\n")
    kustomize_build(overlay(project), "x")
    assert len(cache_files(tmp_path)) == 2


def test_remote_or_out_of_tree_overlays_are_not_cached(project: Path, tmp_path: Path):
    kust = overlay(project) / "kustomization.yaml"
    kust.write_text(kust.read_text() + "\n# see https://example.invalid/base\n")
    kustomize_build(overlay(project), "x")
    assert cache_files(tmp_path) == []


def test_the_cache_can_be_turned_off(project: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PALESS_NO_RENDER_CACHE", "1")
    kustomize_build(overlay(project), "x")
    assert cache_files(tmp_path) == []


def test_a_missing_resource_with_an_example_beside_it_says_cp(tmp_path: Path) -> None:
    overlay = tmp_path / "k8s" / "overlays" / "dev"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text("resources:\n  - secret.yaml\n")
    (overlay / "secret.yaml.example").write_text("apiVersion: v1\nkind: Secret\n")
    with pytest.raises(ConfigError) as info:
        kustomize_build(overlay, "dev")
    assert f"cp {overlay}/secret.yaml.example {overlay}/secret.yaml" in info.value.hint
    assert not info.value.message.startswith("E1") and "run.go" not in info.value.message
