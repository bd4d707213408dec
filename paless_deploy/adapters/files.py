"""The project on the local disk, as the core decides on it: its top level, its env files
and its overlays.

Each function reads and returns plain values (core's types); deciding what they mean
(which apps, which settings) is the core's. Build contexts are read by
adapters.buildcontext; Kustomize and the builders read the disk themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from paless_deploy.core.configuration.config import DEFAULT_ENV_FILES, ProjectFiles
from paless_deploy.core.configuration.envfile import EnvFileText
from paless_deploy.core.images.discover import ProjectListing

OVERLAYS_DIR = ("k8s", "overlays")


def list_project(project_dir: Path) -> ProjectListing:
    """The project directory's top level: its regular files and the directories that hold
    a file named `Dockerfile` (symbolic links followed, as `Path.is_file` does)."""
    project_dir = Path(project_dir)
    files: set[str] = set()
    dockerfile_dirs: set[str] = set()
    for entry in project_dir.iterdir():
        if entry.is_dir():
            if (entry / "Dockerfile").is_file():
                dockerfile_dirs.add(entry.name)
        elif entry.is_file():
            files.add(entry.name)
    return ProjectListing(project_dir, project_dir.resolve(), frozenset(files),
                          frozenset(dockerfile_dirs))


def read_project(project_dir: Path, env_files: Sequence[Path] | None) -> ProjectFiles:
    """What configuration reads from disk: whether the project directory exists, its env
    files (`env_files`, else the default ones that exist) and the overlays it holds."""
    project_dir = Path(project_dir)
    if not project_dir.is_dir():
        return ProjectFiles(project_dir, project_dir, is_dir=False)
    absolute = project_dir.resolve()
    if env_files is None:
        candidates = [project_dir / name for name in DEFAULT_ENV_FILES
                      if (project_dir / name).is_file()]
        missing: tuple[Path, ...] = ()
    else:
        candidates = [Path(path) for path in env_files]
        missing = tuple(path for path in candidates if not path.exists())
    texts = () if missing else tuple(_env_file(path, absolute) for path in candidates)
    return ProjectFiles(project_dir, absolute, is_dir=True, env_files=texts,
                        missing_env_files=missing, overlays=_overlays(project_dir))


def _env_file(path: Path, project_absolute: Path) -> EnvFileText:
    try:
        shown = str(path.resolve().relative_to(project_absolute))
    except ValueError:
        shown = str(path)
    if path.is_dir():
        return EnvFileText(path, shown, problem=EnvFileText.DIRECTORY)
    try:
        return EnvFileText(path, shown, data=path.read_bytes())
    except OSError as exc:
        return EnvFileText(path, shown, problem=str(exc.strerror))


def _overlays(project_dir: Path) -> tuple[str, ...]:
    """Overlay names that have a kustomization.yaml (a file)."""
    root = project_dir.joinpath(*OVERLAYS_DIR)
    if not root.is_dir():
        return ()
    return tuple(sorted(p.parent.name for p in root.glob("*/kustomization.yaml")
                        if p.is_file()))
