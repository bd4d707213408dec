"""Images stage: plan content tags, then build and push only what is missing, in parallel.

The Docker daemon and the registry's HTTP API are asked before any work, so unchanged
apps cost nothing; builds and pushes run a few at a time with per-image progress.
Builds use BuildKit through the Docker CLI, or the classic builder (BUILDER).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from paless_deploy.adapters.buildcontext import FileDigests, read_build_files
from paless_deploy.adapters.buildkit import (
    BUILDX_HINT,
    BuildkitCli,
    build_with_buildkit,
    find_buildkit,
)
from paless_deploy.adapters.docker import (
    Cancelled,
    build_image,
    connect_docker,
    context_paths,
    engine_platform,
    local_image_id,
    push_image,
)
from paless_deploy.adapters.registry import AuthRequired, check_registry, registry_manifest_digest
from paless_deploy.core.configuration.validation import blame_base_image
from paless_deploy.core.errors import BuildError, ConfigError, PalessError
from paless_deploy.core.images.buildspec import (
    Builder,
    BuildSpec,
    target_for,
    unknown_target_apps,
)
from paless_deploy.core.images.discover import App, app_repository, source_of
from paless_deploy.core.images.dockerfile import base_images, dockerfile_stages, image_chain
from paless_deploy.core.images.graph import (
    BuildGraph,
    ProjectImages,
    build_graph,
    rewrite_froms,
)
from paless_deploy.core.images.imageref import check_image_name
from paless_deploy.core.images.tags import compute_tag, image_ref
from paless_deploy.core.plan.sync import AppImage, ImageSource, app_image
from paless_deploy.core.reporting.progress import ImageProgress, NullProgress
from paless_deploy.core.reporting.report import ImageAction
from paless_deploy.stages.project import project_apps

if TYPE_CHECKING:
    from paless_deploy.adapters.docker import DockerClient
    from paless_deploy.core.configuration.config import Config

MAX_PARALLEL = 3


@dataclass(frozen=True)
class ImageResult:
    """What happened to one app's image in this run.

    `action` is the most significant thing done: pushed if it was uploaded (whether or
    not it was also built), else built if it was built, else skipped. `digest` is the registry manifest digest, None when the registry
    was not asked (`build`).
    """

    app: str
    ref: str
    tag: str
    digest: str | None
    action: ImageAction
    image_id: str | None = None
    built: bool = False
    pushed: bool = False
    builder: Builder | None = None  # the one that built it in this run
    platform: str | None = None  # what it was built for (PLATFORM, else the engine's)
    delivery: str = ""  # how it reached the nodes: pushed, imported, on-node, docker, none


@dataclass(frozen=True)
class ImagePlan:
    """One app's image before anything is built: its content tag and reference, its build
    inputs, the apps of the project it is built FROM, and its Dockerfile with those FROMs
    naming their exact content tags (None when it starts from no image of ours)."""

    app: App
    tag: str
    ref: str
    spec: BuildSpec
    needs: tuple[str, ...] = ()
    dockerfile: str | None = None


def _spec(config: Config, app: App, platform: str | None) -> BuildSpec:
    """The app's build inputs; a target stage its Dockerfile lacks is an error (exit 2)."""
    text = _dockerfile_text(app)
    spec = config.build_spec(app.name, platform, text)
    if spec.target:
        stages = dockerfile_stages(text)
        if spec.target.lower() not in stages:
            setting = config.settings["BUILD_TARGETS"]
            raise ConfigError(
                f"BUILD_TARGETS ({setting.describe_source()}) builds stage {spec.target!r} "
                f"of {app.name}, but {app.dockerfile.name} has "
                + (f"only the stages {', '.join(stages)}." if stages else "no named stage."),
                "Name a stage of that Dockerfile (`FROM ... AS <stage>`), or drop the entry to "
                "build its last stage.")
    return spec


def _check_targets(config: Config) -> None:
    """BUILD_TARGETS names only apps of the project (a typo would silently build the last
    stage)."""
    if not config.build_targets():
        return
    apps = project_apps(config.project_dir, config.project_name)
    unknown = unknown_target_apps(config.build_targets(), [a.name for a in apps])
    if unknown:
        setting = config.settings["BUILD_TARGETS"]
        raise ConfigError(
            f"BUILD_TARGETS ({setting.describe_source()}) names {', '.join(unknown)}, which "
            f"is not an app here (apps: {', '.join(a.name for a in apps)}).",
            "Use the app names of `paless-deploy help`, or `*=<stage>` for every app.")


def project_graph(config: Config, apps: Sequence[App] | None = None) -> BuildGraph:
    """The build graph of the project's apps (every app found, unless `apps`): which app
    each one is built FROM, and the order that builds every base first."""
    apps = project_apps(config.project_dir, config.project_name) if apps is None else apps
    images = ProjectImages(config.registry, config.project_name, tuple(a.name for a in apps),
                           config.image_aliases())
    texts = {a.name: _dockerfile_text(a) for a in apps}
    return build_graph(texts, {name: config.build_args(text) for name, text in texts.items()},
                       images,
                       {a.name: str(a.dockerfile.relative_to(config.project_dir)) for a in apps})


def app_images(config: Config, apps: Sequence[App]) -> dict[str, AppImage]:
    """What `dev`'s sync reads of each app's image: the COPYs of the stages it is built
    from (its bases' included, through the build graph), its Dockerfiles, its process."""
    graph = project_graph(config, apps)
    root = config.project_dir
    sources: dict[str, ImageSource] = {}
    for app in apps:
        text = _dockerfile_text(app)
        chain = image_chain(text, config.build_args(text),
                            target_for(config.build_targets(), app.name))
        root_from = chain[0].source if chain else None
        base = next((u.app for u in graph.uses[app.name] if root_from is not None
                     and u.line.word == root_from.word), None)
        sources[app.name] = ImageSource(relative_path(app.dockerfile, root),
                                        relative_path(app.context, root), tuple(chain), base)
    return {name: app_image(name, sources) for name in sources}


def relative_path(path: Path, root: Path) -> str:
    """`path` relative to `root`, `/`-separated ("" for `root` itself)."""
    relative = path.resolve().relative_to(root.resolve()).as_posix()
    return "" if relative == "." else relative


def _dockerfile_text(app: App) -> str:
    return app.dockerfile.read_text(errors="replace")


def _plans(config: Config, apps: Sequence[App], platform: str | None,
           base_id: Callable[[str], str | None]) -> list[ImagePlan]:
    """The plans of `apps` and of every app they are built FROM, bases first: a base's
    content tag stands in the derived app's tag where a local image ID would."""
    _check_targets(config)
    everything = project_apps(config.project_dir, config.project_name)
    known = {a.name: a for a in everything}
    listed = [*everything, *(a for a in apps if a.name not in known)]
    for app in listed:  # before any Dockerfile or context is read
        check_image_name(app.name, source_of(app, config.project_dir),
                         config.image_repository(app.name))
    graph = project_graph(config, listed)
    known.update({a.name: a for a in apps})
    digests = FileDigests()
    ids: dict[str, str | None] = {}
    plans: dict[str, ImagePlan] = {}
    for name in graph.with_bases(a.name for a in apps):
        app = known[name]
        spec = _spec(config, app, platform)
        text = _dockerfile_text(app)
        ours = {use.line.image: use.app for use in graph.uses[name]}
        bases = base_images(text, spec.args)
        for base in bases:
            if base not in ids and base not in ours:
                ids[base] = base_id(base)
        files = read_build_files(app, context_paths(app), digests)
        tag = compute_tag(app, files, spec, {
            b: f"{ours[b]}:{plans[ours[b]].tag}" if b in ours else ids[b] for b in bases})
        check_image_name(app.name, source_of(app, config.project_dir),
                         config.image_repository(app.name), tag)
        exact = {use.app: plans[use.app].ref for use in graph.uses[name]}
        plans[name] = ImagePlan(app, tag, image_ref(config, app.name, tag), spec,
                                graph.needs(name),
                                rewrite_froms(text, graph.uses[name], exact) if exact else None)
    return list(plans.values())


def plan_tags(api: DockerClient, config: Config, apps: Sequence[App]) -> list[ImagePlan]:
    """Compute every app's tag and reference (base image IDs and the engine's platform
    asked from the engine)."""
    return _plans(config, apps, engine_platform(api), lambda base: local_image_id(api, base))


def plan_images(config: Config, apps: Sequence[App]) -> tuple[list[ImagePlan], list[str]]:
    """Every app's tag and reference, without building; warnings when Docker is down
    (the tags then miss the base images' IDs and may differ from what a build makes)."""
    try:
        api = connect_docker()
    except BuildError:
        return _plans(config, apps, None, lambda base: None), [(
            "Docker is not reachable: image tags were computed without the base image IDs "
            "and the engine's platform and may differ from what `build` produces.")]
    return plan_tags(api, config, apps), []


class _Builder:
    """Which builder runs, chosen at the first build of the run (BUILDER), said once."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.warnings: list[str] = []  # said after the progress display ends
        self.lock = threading.Lock()
        self.chosen: tuple[BuildkitCli | None] | None = None

    def cli(self) -> BuildkitCli | None:
        """The BuildKit CLI to build with, None for the classic builder."""
        with self.lock:
            if self.chosen is None:
                self.chosen = (self._choose(),)
            return self.chosen[0]

    def _choose(self) -> BuildkitCli | None:
        wanted = self.config.builder
        if wanted == Builder.CLASSIC:
            self._warn_secrets("BUILDER=classic")
            return None
        cli, why_not = find_buildkit()
        if cli is not None:
            return cli
        if wanted == Builder.BUILDKIT:
            raise BuildError(f"BUILDER=buildkit, but no Docker CLI here builds with BuildKit: "
                             f"{why_not}.", BUILDX_HINT, code="buildkit-missing")
        assert wanted == Builder.AUTO
        self.warnings.append(f"BuildKit is not available ({why_not}): building with the classic builder, "
                  "which builds every stage and lacks RUN --mount, heredocs and "
                  f"FROM --platform=$BUILDPLATFORM. {BUILDX_HINT} BUILDER=classic silences "
                  "this.")
        self._warn_secrets("the classic builder")
        return None

    def _warn_secrets(self, which: str) -> None:
        if self.config.build_secrets():
            self.warnings.append(f"BUILD_SECRETS is set, but {which} cannot pass build secrets: "
                      "RUN --mount=type=secret steps get none.")


def _secret_values(config: Config, spec: BuildSpec, app: str) -> dict[str, str]:
    """Each build secret's variable and value; an unset one is an error (exit 2)."""
    values = {}
    for secret in spec.secrets:
        setting = config.build_secret_setting(secret)
        if not setting.value:
            raise ConfigError(
                f"Build secret {secret.id!r} of {app} reads {secret.variable}, which is "
                f"{'empty' if setting.value == '' else 'not set'} "
                f"({setting.describe_source()}).",
                f"Set {secret.variable} in the environment or an env file (a CI secret), or "
                f"remove {secret.id}={secret.variable} from BUILD_SECRETS.",
                code="build-secret-missing")
        values[secret.variable] = setting.value
    return values


def build_images(config: Config, apps: Sequence[App], *, push: bool = False,
                 progress: ImageProgress | None = None, max_parallel: int = MAX_PARALLEL,
                 plans: Sequence[ImagePlan] | None = None,
                 warn: Callable[[str], None] | None = None) -> list[ImageResult]:
    """Build (and with `push`, push) the apps' images; only what is missing is done.

    With `push`, an image whose tag the registry already has is neither built nor
    pushed. The apps they are built FROM (the build graph) are built first, and come
    back with them: results in build order, bases first. Raises BuildError for the
    first failure after every started job has finished. `plans` (from `plan_images`,
    Docker reachable) saves hashing every context a second time. `warn` receives what
    the user should know once (e.g. that BuildKit is missing and classic builds run).
    """
    progress = progress or NullProgress()
    api = connect_docker()
    if push:
        check_registry(config.registry)
    if plans is None or not {a.name for a in apps} <= {p.app.name for p in plans}:
        plans = plan_tags(api, config, apps)
    builder = _Builder(config)
    stop = threading.Event()
    started: dict[str, Future[ImageResult]] = {}

    def run(plan: ImagePlan) -> ImageResult:
        # bases are submitted first, so each one's future is there when a derived app asks
        return _process(api, config, plan, builder, push, progress, stop,
                        lambda: _bases_built(plan, started))

    with progress:
        for plan in plans:
            progress.add(plan.app.name, plan.ref)
        executor = ThreadPoolExecutor(max_workers=max(1, max_parallel),
                                      thread_name_prefix="image")
        for plan in plans:
            started[plan.app.name] = executor.submit(run, plan)
        try:
            results, failures = _collect(started.values())
        except KeyboardInterrupt:
            stop.set()
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        executor.shutdown(wait=True)
    for text in builder.warnings:
        (warn or (lambda _: None))(text)
    if failures:
        first = failures[0]
        others = ", ".join(str(getattr(f, "app", "?")) for f in failures[1:]
                           if f.message != first.message)
        if others:
            first.hint = f"{first.hint} (Also failed: {others}.)"
        raise blame_base_image(first, config)
    return results


def _collect(futures: Iterable[Future[ImageResult]]) -> tuple[list[ImageResult],
                                                               list[PalessError]]:
    results: list[ImageResult] = []
    failures: list[PalessError] = []
    for future in futures:
        try:
            results.append(future.result())
        except (BuildError, ConfigError) as exc:
            failures.append(exc)
    return results, failures


def _bases_built(plan: ImagePlan, started: dict[str, Future[ImageResult]]) -> None:
    """Wait for the apps `plan` is built FROM; BuildError when one of them failed."""
    for base in plan.needs:
        future = started.get(base)
        if future is None:
            continue
        try:
            future.result()
        except PalessError as exc:
            raise BuildError(
                f"{plan.app.name} was not built: it starts FROM the image of {base}, whose "
                f"build failed ({exc.code}).",
                f"Fix {base} (its error is above), then run again.",
                code="base-failed") from None


def _build(api: DockerClient, config: Config, plan: ImagePlan, builder: _Builder,
           progress: ImageProgress, stop: threading.Event) -> tuple[str, Builder]:
    """Build one image with the chosen builder: (image ID, the builder that built it).
    A derived app is built from its Dockerfile with the FROMs naming its bases' exact
    tags (`plan.dockerfile`)."""
    cli = builder.cli()
    if cli is None:
        return build_image(api, plan.app, plan.ref, plan.spec, progress, stop,
                           dockerfile=plan.dockerfile), Builder.CLASSIC
    secrets = _secret_values(config, plan.spec, plan.app.name)
    image_id = build_with_buildkit(cli, plan.app, plan.ref, plan.spec, secrets, progress, stop,
                                   dockerfile=plan.dockerfile)
    return image_id or local_image_id(api, plan.ref) or "", Builder.BUILDKIT


def _process(api: DockerClient, config: Config, plan: ImagePlan, builder: _Builder,
             push: bool, progress: ImageProgress, stop: threading.Event,
             bases_built: Callable[[], None]) -> ImageResult:
    """One app: ask the registry, build if missing locally, push if missing remotely."""
    name, ref = plan.app.name, plan.ref
    try:
        if push:
            progress.update(name, "asking the registry")
            digest = _remote_digest(config.registry, config, plan)
            if digest:
                progress.finish(name, "in the registry, nothing to do", ok=True)
                return ImageResult(name, ref, plan.tag, digest, ImageAction.SKIPPED,
                                   image_id=local_image_id(api, ref),
                                   platform=plan.spec.platform)
        image_id = local_image_id(api, ref)
        built_by: Builder | None = None
        if image_id is None:
            if plan.needs:
                progress.update(name, f"waiting for {', '.join(plan.needs)}")
                bases_built()
            progress.update(name, "building")
            image_id, built_by = _build(api, config, plan, builder, progress, stop)
        built = built_by is not None
        if not push:
            progress.finish(name, "built" if built else "up to date, not rebuilt", ok=True)
            return ImageResult(name, ref, plan.tag, None,
                               ImageAction.BUILT if built else ImageAction.SKIPPED,
                               image_id=image_id, built=built, builder=built_by,
                               platform=plan.spec.platform)
        progress.update(name, "pushing")
        digest = push_image(api, config.registry, ref, name, progress, stop)
        digest = digest or _remote_digest(config.registry, config, plan)
        progress.finish(name, "built and pushed" if built else "pushed", ok=True)
        return ImageResult(name, ref, plan.tag, digest, ImageAction.PUSHED,
                           image_id=image_id, built=built, pushed=True, builder=built_by,
                           platform=plan.spec.platform)
    except BuildError as exc:
        exc.app = exc.app or name
        exc.resource = exc.resource or f"image/{name}"
        progress.finish(name, exc.code, ok=False)
        raise
    except ConfigError as exc:
        progress.finish(name, exc.code, ok=False)
        raise
    except Cancelled:
        progress.finish(name, "interrupted", ok=False)
        raise BuildError(f"Interrupted while working on {ref}.", "") from None


def _remote_digest(registry: str, config: Config, plan: ImagePlan) -> str | None:
    repository = app_repository(config.project_name, plan.app.name)
    try:
        return registry_manifest_digest(registry, repository, plan.tag)
    except AuthRequired:
        return None  # cannot tell; the daemon pushes with its own credentials
