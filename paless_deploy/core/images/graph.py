"""The build graph: which of the project's images other apps' Dockerfiles start FROM, the
order to build them in, and each derived Dockerfile rewritten to start from its base's
exact content tag.

As in Paless's own repository: the root `Dockerfile` builds the base
(`{REGISTRY}/{PROJECT_NAME}`) and `Dockerfile.web` starts `FROM localhost:5000/paless:latest`.
A FROM denotes an app when its image lives in that app's repository (any tag, any spelling
of REGISTRY's host, or a registry on this machine: localhost, 127.0.0.1, ::1) or in the
repository PALESS_IMAGES maps to it. Such a base is built first, its content tag is part of
the derived app's tag, and the derived build starts from that exact tag, never from a
`:latest` the machine happens to hold. Pure: Dockerfile texts arrive as values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from paless_deploy.core.errors import ConfigError
from paless_deploy.core.images.discover import app_repository
from paless_deploy.core.images.dockerfile import FromLine, from_lines
from paless_deploy.core.images.imageref import (
    Registry,
    in_repository,
    parse_image,
    parse_registry_lenient,
    same_repository,
)


@dataclass(frozen=True)
class ProjectImages:
    """How the project's own images are named: REGISTRY, PROJECT_NAME, the apps, and
    PALESS_IMAGES' app -> repository aliases."""

    registry: str
    project: str
    apps: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def app_of(self, image: str) -> str | None:
        """The app whose image `image` names, or None (a digest pins someone's image: None)."""
        try:
            ref = parse_image(image)
        except ValueError:
            return None
        if ref.digest:
            return None
        registry = parse_registry_lenient(self.registry)
        for app in self.apps:
            repository = app_repository(self.project, app)
            if in_repository(image, self.registry, repository):
                return app
            if _on_this_machine(ref.registry) and ref.path == _prefixed(registry, repository):
                return app
        for app, alias in self.aliases.items():
            if app in self.apps and same_repository(image, alias):
                return app
        return None


def _prefixed(registry: Registry | None, repository: str) -> str:
    return f"{registry.prefix}/{repository}" if registry and registry.prefix else repository


def _on_this_machine(host: str) -> bool:
    registry = parse_registry_lenient(host)
    return registry is not None and registry.loopback


@dataclass(frozen=True)
class BaseUse:
    """One FROM of an app that starts from another app's image."""

    app: str  # the app whose image it names
    line: FromLine


@dataclass(frozen=True)
class BuildGraph:
    """Which apps each app is built FROM, and an order that builds every base first."""

    uses: Mapping[str, tuple[BaseUse, ...]]  # app -> the FROMs naming project images
    order: tuple[str, ...]  # every app, each after the apps it is built from

    def needs(self, app: str) -> tuple[str, ...]:
        """The apps `app` is built FROM, directly, once each."""
        return tuple(dict.fromkeys(use.app for use in self.uses.get(app, ())))

    def with_bases(self, names: Iterable[str]) -> list[str]:
        """`names` and every app they are built from, transitively, in build order."""
        wanted: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(self.needs(name))
        return [name for name in self.order if name in wanted]

    def derived(self, name: str) -> list[str]:
        """Every app built FROM `name`, directly or through another, in build order."""
        found = {name}
        for app in self.order:
            if any(base in found for base in self.needs(app)):
                found.add(app)
        return [app for app in self.order if app in found and app != name]

    @property
    def bases(self) -> list[str]:
        """The apps some other app is built FROM, in build order."""
        used = {use.app for uses in self.uses.values() for use in uses}
        return [app for app in self.order if app in used]


def build_graph(dockerfiles: Mapping[str, str], args: Mapping[str, Mapping[str, str]],
                images: ProjectImages, paths: Mapping[str, str] | None = None) -> BuildGraph:
    """The graph of the apps whose Dockerfile texts are given (`args`: each app's build
    arguments; `paths`: each Dockerfile as the user knows it, for messages). A cycle
    (an app built FROM itself, or through others) is a ConfigError naming it."""
    uses: dict[str, tuple[BaseUse, ...]] = {}
    for app in sorted(dockerfiles):
        found = []
        for line in from_lines(dockerfiles[app], args.get(app, {})):
            base = images.app_of(line.image) if line.is_image else None
            if base is not None:
                found.append(BaseUse(base, line))
        uses[app] = tuple(found)
    graph = BuildGraph(uses, ())
    return BuildGraph(uses, _order(graph, sorted(dockerfiles), paths or {}))


def _order(graph: BuildGraph, apps: Sequence[str], paths: Mapping[str, str]) -> tuple[str, ...]:
    """Depth-first, bases first; the names keep their sorted order where nothing binds."""
    done: list[str] = []
    state: dict[str, str] = {}

    def visit(app: str, trail: list[str]) -> None:
        if state.get(app) == "done":
            return
        if state.get(app) == "visiting":
            raise _cycle(graph, [*trail[trail.index(app):], app], paths)
        state[app] = "visiting"
        for base in graph.needs(app):
            if base in apps:
                visit(base, [*trail, app])
        state[app] = "done"
        done.append(app)

    for app in apps:
        visit(app, [])
    return tuple(done)


def _cycle(graph: BuildGraph, cycle: list[str], paths: Mapping[str, str]) -> ConfigError:
    steps = []
    for app, base in pairwise(cycle):
        use = next(u for u in graph.uses[app] if u.app == base)
        steps.append(f"{paths.get(app, app)} (line {use.line.line}) starts FROM "
                     f"{use.line.image}, the image of {base}")
    if len(cycle) == 2:
        return ConfigError(
            f"The app {cycle[0]} is built from its own image: {steps[0]}.",
            "Start it FROM another image (its base), or, to reuse an earlier build as a "
            "cache, use `--cache-from` outside this tool; an image cannot be its own base.",
            code="build-cycle")
    return ConfigError(f"The project's images are built from each other in a circle: "
                       f"{'; '.join(steps)}.",
                       "Break the circle: one of these Dockerfiles must start FROM an image "
                       "the others do not derive from.", code="build-cycle")


def rewrite_froms(text: str, uses: Sequence[BaseUse], exact: Mapping[str, str]) -> str:
    """The Dockerfile with each FROM naming a project image replaced by that app's exact
    reference (`exact`: app -> `{registry}/{repository}:{content tag}`); flags, stage
    names, comments and line numbers stay as written."""
    out = text
    for use in sorted(uses, key=lambda u: u.line.word.start, reverse=True):
        if use.app in exact:
            word = use.line.word
            out = out[:word.start] + exact[use.app] + out[word.end:]
    return out


def describe_bases(graph: BuildGraph, app: str, refs: Mapping[str, str]) -> str:
    """`built from paless (FROM localhost:5000/paless:latest -> <its exact reference>);
    base of tools`, or "" for an app outside the graph: what `help` and `plan` say of an
    app's place in it (`refs`: app -> exact reference, when known)."""
    parts = []
    for use in graph.uses.get(app, ()):
        exact = f" -> {refs[use.app]}" if use.app in refs else ""
        parts.append(f"{use.app} (FROM {use.line.image}{exact})")
    derived = graph.derived(app)
    text = "built from " + ", ".join(parts) if parts else ""
    if derived:
        text += ("; " if text else "") + "base of " + ", ".join(derived)
    return text
