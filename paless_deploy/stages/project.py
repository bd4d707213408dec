"""The project on disk, read when a command needs it: its configuration and its apps.

The files come from adapters.files, the decisions from the core (configuration.config,
images.discover): one call each for the CLI, the commands and the stages.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from paless_deploy.adapters.files import list_project, read_project
from paless_deploy.core.configuration.config import Config, build_config
from paless_deploy.core.configuration.context import Scope
from paless_deploy.core.images.discover import (
    DEFAULT_PROJECT_NAME,
    App,
    discover_apps,
    select_apps,
)


def load_config(
    project_dir: Path,
    env_files: Sequence[Path] | None,
    overrides: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    *,
    validate: bool = True,
    scope: Scope = Scope.DEPLOY,
    read_checkout: Callable[[Path], str] | None = None,
) -> Config:
    """The effective configuration of `project_dir` (core.configuration.config's
    `build_config` over its env files and overlays, and `environ`, default the process's)."""
    return build_config(read_project(Path(project_dir), env_files), overrides,
                        os.environ if environ is None else environ, validate=validate,
                        scope=scope, read_checkout=read_checkout)


def project_apps(project_dir: Path, project_name: str = DEFAULT_PROJECT_NAME) -> list[App]:
    """Every app of the project, sorted by name (the root Dockerfile's is `project_name`)."""
    return discover_apps(list_project(Path(project_dir)), project_name)


def selected_apps(project_dir: Path, names: Sequence[str] = (),
                  project_name: str = DEFAULT_PROJECT_NAME) -> list[App]:
    """Every app of the project, or only those named, in the order given (ConfigError for
    none at all, or a name that is no app)."""
    return select_apps(list_project(Path(project_dir)), names, project_name)
