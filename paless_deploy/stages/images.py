"""Images stage: plan content tags, then build and push only what is missing, in parallel.

The Docker daemon and the registry's HTTP API are asked before any work, so unchanged
apps cost nothing; builds and pushes run a few at a time with per-image progress.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from paless_deploy.adapters.docker import (
    Cancelled,
    build_image,
    connect_docker,
    context_paths,
    local_image_id,
    push_image,
)
from paless_deploy.adapters.registry import AuthRequired, check_registry, registry_manifest_digest
from paless_deploy.core.discover import App
from paless_deploy.core.errors import BuildError
from paless_deploy.core.progress import ImageProgress, NullProgress
from paless_deploy.core.tags import FileDigests, base_images, compute_tag, image_ref
from paless_deploy.core.validation import blame_base_image

if TYPE_CHECKING:
    from paless_deploy.adapters.docker import DockerClient
    from paless_deploy.core.config import Config

MAX_PARALLEL = 3
ACTION_BUILT = "built"  # built in this run and not pushed (`build`)
ACTION_PUSHED = "pushed"  # uploaded to the registry in this run (built first if missing)
ACTION_SKIPPED = "skipped"  # neither built nor pushed: it already existed where needed


@dataclass(frozen=True)
class ImageResult:
    """What happened to one app's image in this run.

    `action` is the most significant thing done: "pushed" if it was uploaded
    (whether or not it was also built), else "built" if it was built, else
    "skipped". `digest` is the registry manifest digest, None when the registry
    was not asked (`build`).
    """

    app: str
    ref: str
    tag: str
    digest: str | None
    action: str
    image_id: str | None = None
    built: bool = False
    pushed: bool = False


@dataclass(frozen=True)
class ImagePlan:
    app: App
    tag: str
    ref: str


def plan_tags(api: DockerClient, config: Config, apps: Sequence[App]) -> list[ImagePlan]:
    """Compute every app's tag and reference (base image IDs asked from the engine)."""
    build_args = config.build_args()
    digests = FileDigests()
    ids: dict[str, str | None] = {}
    plans = []
    for app in apps:
        bases = base_images(app.dockerfile.read_text(errors="replace"), build_args)
        for base in bases:
            if base not in ids:
                ids[base] = local_image_id(api, base)
        tag = compute_tag(app, context_paths(app), build_args, {b: ids[b] for b in bases},
                          digests)
        plans.append(ImagePlan(app, tag, image_ref(config, app.name, tag)))
    return plans


def plan_images(config: Config, apps: Sequence[App]) -> tuple[list[ImagePlan], list[str]]:
    """Every app's tag and reference, without building; warnings when Docker is down
    (the tags then miss the base images' IDs and may differ from what a build makes)."""
    try:
        return plan_tags(connect_docker(), config, apps), []
    except BuildError:
        digests = FileDigests()
        plans = []
        for app in apps:
            tag = compute_tag(app, context_paths(app), config.build_args(), {}, digests)
            plans.append(ImagePlan(app, tag, image_ref(config, app.name, tag)))
        return plans, [("Docker is not reachable: image tags were computed without the base "
                       "image IDs and may differ from what `build` produces.")]


def build_images(config: Config, apps: Sequence[App], *, push: bool = False,
                 progress: ImageProgress | None = None, max_parallel: int = MAX_PARALLEL,
                 plans: Sequence[ImagePlan] | None = None) -> list[ImageResult]:
    """Build (and with `push`, push) the apps' images; only what is missing is done.

    With `push`, an image whose tag the registry already has is neither built nor
    pushed. Results come back in the order of `apps`. Raises BuildError for the
    first failure after every started job has finished. `plans` (from `plan_images`,
    Docker reachable) saves hashing every context a second time.
    """
    progress = progress or NullProgress()
    api = connect_docker()
    if push:
        check_registry(config.registry)
    if plans is None or [p.app for p in plans] != list(apps):
        plans = plan_tags(api, config, apps)
    build_args = config.build_args()
    stop = threading.Event()

    def run(plan: ImagePlan) -> ImageResult:
        return _process(api, config, plan, build_args, push, progress, stop)

    with progress:
        for plan in plans:
            progress.add(plan.app.name, plan.ref)
        executor = ThreadPoolExecutor(max_workers=max(1, max_parallel),
                                      thread_name_prefix="image")
        futures: list[Future[ImageResult]] = [executor.submit(run, p) for p in plans]
        try:
            results, failures = _collect(futures)
        except KeyboardInterrupt:
            stop.set()
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        executor.shutdown(wait=True)
    if failures:
        first = failures[0]
        others = ", ".join(str(getattr(f, "app", "?")) for f in failures[1:]
                           if f.message != first.message)
        if others:
            first.hint = f"{first.hint} (Also failed: {others}.)"
        raise blame_base_image(first, config)
    return results


def _collect(futures: Iterable[Future[ImageResult]]) -> tuple[list[ImageResult],
                                                               list[BuildError]]:
    results: list[ImageResult] = []
    failures: list[BuildError] = []
    for future in futures:
        try:
            results.append(future.result())
        except BuildError as exc:
            failures.append(exc)
    return results, failures


def _process(api: DockerClient, config: Config, plan: ImagePlan,
             build_args: Mapping[str, str], push: bool, progress: ImageProgress,
             stop: threading.Event) -> ImageResult:
    """One app: ask the registry, build if missing locally, push if missing remotely."""
    name, ref = plan.app.name, plan.ref
    try:
        if push:
            progress.update(name, "asking the registry")
            digest = _remote_digest(config.registry, config, plan)
            if digest:
                progress.finish(name, "in the registry, nothing to do", ok=True)
                return ImageResult(name, ref, plan.tag, digest, ACTION_SKIPPED,
                                   image_id=local_image_id(api, ref))
        image_id = local_image_id(api, ref)
        built = False
        if image_id is None:
            progress.update(name, "building")
            image_id = build_image(api, plan.app, ref, build_args, progress, stop)
            built = True
        if not push:
            progress.finish(name, "built" if built else "up to date, not rebuilt", ok=True)
            return ImageResult(name, ref, plan.tag, None,
                               ACTION_BUILT if built else ACTION_SKIPPED,
                               image_id=image_id, built=built)
        progress.update(name, "pushing")
        digest = push_image(api, config.registry, ref, name, progress, stop)
        digest = digest or _remote_digest(config.registry, config, plan)
        progress.finish(name, "built and pushed" if built else "pushed", ok=True)
        return ImageResult(name, ref, plan.tag, digest, ACTION_PUSHED,
                           image_id=image_id, built=built, pushed=True)
    except BuildError as exc:
        exc.app = exc.app or name
        progress.finish(name, exc.code, ok=False)
        raise
    except Cancelled:
        progress.finish(name, "interrupted", ok=False)
        raise BuildError(f"Interrupted while working on {ref}.", "") from None


def _remote_digest(registry: str, config: Config, plan: ImagePlan) -> str | None:
    repository = f"{config.project_name}-{plan.app.name}"
    try:
        return registry_manifest_digest(registry, repository, plan.tag)
    except AuthRequired:
        return None  # cannot tell; the daemon pushes with its own credentials
