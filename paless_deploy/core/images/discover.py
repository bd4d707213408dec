"""App discovery: which images this project builds, and from which Dockerfile.

`<dir>/Dockerfile` one level down (context: the directory), root `Dockerfile.<name>`
(context: the project root), and the root `Dockerfile` itself: the project's own image,
app PROJECT_NAME, `{REGISTRY}/{PROJECT_NAME}` (Paless's base, which its
`Dockerfile.<name>` images start FROM); nothing deeper is searched. Pure: the project's top
level arrives as a `ProjectListing` (adapters.files lists it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from paless_deploy.core.errors import ConfigError

SKIPPED_DIRS: frozenset[str] = frozenset(
    {"node_modules", ".git", ".venv", ".context-management", ".devcontainer"}
)
DEFAULT_PROJECT_NAME = "paless"
ROOT_DOCKERFILE = "Dockerfile"
_APP_NAME = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$")


@dataclass(frozen=True)
class App:
    """One buildable app: its name, Dockerfile and build context."""

    name: str
    dockerfile: Path
    context: Path

    @property
    def dockerfile_in_context(self) -> str:
        """The Dockerfile path relative to the context (what the build API expects)."""
        return self.dockerfile.relative_to(self.context).as_posix()


@dataclass(frozen=True)
class ProjectListing:
    """The project directory's top level, as discovery reads it."""

    root: Path  # the project directory as given
    absolute: Path  # the same, absolute (for messages)
    files: frozenset[str]  # names of the regular files at the top
    dockerfile_dirs: frozenset[str]  # names of the directories holding a file `Dockerfile`


def source_of(app: App, project_dir: Path) -> str:
    """Where an app's name comes from, for messages: `the directory web/` or `the file
    Dockerfile.web`."""
    if app.context != project_dir:
        return f"the directory {app.context.name}/"
    return f"the file {app.dockerfile.name}"


def _check_name(app: App, project_dir: Path) -> None:
    if not _APP_NAME.match(app.name):
        raise ConfigError(
            f"App name {app.name!r} (from {app.dockerfile.relative_to(project_dir)}) cannot be "
            "part of an image name.",
            f"Rename {source_of(app, project_dir)} with lower-case letters, digits and "
            "separators (. _ -) between them (e.g. my-app): the app name becomes part of the "
            "image name {REGISTRY}/{PROJECT_NAME}-<app>.", code="bad-image-name",
        )


def app_repository(project: str, app: str) -> str:
    """The repository of an app's image under REGISTRY: `{PROJECT_NAME}-{app}`, and
    `{PROJECT_NAME}` itself for the app of that name (the root Dockerfile's)."""
    return project if app == project else f"{project}-{app}"


def discover_apps(listing: ProjectListing,
                  project_name: str = DEFAULT_PROJECT_NAME) -> list[App]:
    """Every app of the project, sorted by name; two sources for one name is an error.
    The root `Dockerfile` is the app named `project_name` (PROJECT_NAME)."""
    project_dir = listing.root
    found: dict[str, App] = {}

    def add(app: App) -> None:
        _check_name(app, project_dir)
        if app.name in found:
            first = found[app.name].dockerfile.relative_to(project_dir)
            second = app.dockerfile.relative_to(project_dir)
            raise ConfigError(
                f"Two Dockerfiles build the app {app.name!r}: {first} and {second}.",
                "Rename or remove one of them; each app name must have one source.",
            )
        found[app.name] = app

    for entry in sorted(listing.files | listing.dockerfile_dirs):
        if entry == ROOT_DOCKERFILE and entry in listing.files:
            add(App(project_name, project_dir / entry, project_dir))
        elif entry in listing.dockerfile_dirs:
            if entry not in SKIPPED_DIRS:
                add(App(entry, project_dir / entry / "Dockerfile", project_dir / entry))
        elif entry.startswith("Dockerfile."):
            name = entry[len("Dockerfile."):]
            if name and not name.endswith(".dockerignore"):
                add(App(name, project_dir / entry, project_dir))
    return [found[name] for name in sorted(found)]


def select_apps(listing: ProjectListing, names: Sequence[str] = (),
                project_name: str = DEFAULT_PROJECT_NAME) -> list[App]:
    """Every discovered app, or only those named, in the order given.

    No app at all, or a name that is not an app, is a ConfigError naming the fix.
    """
    apps = discover_apps(listing, project_name)
    if not apps:
        raise ConfigError(
            f"No apps found in {listing.absolute}.",
            "An app is a <dir>/Dockerfile one level down, a root Dockerfile.<name>, or the "
            "root Dockerfile (the app named PROJECT_NAME); "
            "pass --project-dir if you are elsewhere.",
        )
    if not names:
        return apps
    by_name = {app.name: app for app in apps}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ConfigError(f"Unknown app {unknown[0]!r}.", f"Apps found: {', '.join(by_name)}.")
    return [by_name[n] for n in dict.fromkeys(names)]
