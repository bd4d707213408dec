"""Render stage: build one Kustomize overlay and fill it in for one namespace.

The overlay is built by the kustomize adapter; the core fills in variables, images,
namespace and labels. `planned_refs` gives every app's reference before any build
(tags are content hashes), so a bad overlay fails in a second.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from paless_deploy.adapters.kustomize import kustomize_build
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.configuration.config import combined_error, prod_problems
from paless_deploy.core.data.previews import preview_objects
from paless_deploy.core.images.discover import App
from paless_deploy.core.manifests.render import (
    AppImages,
    for_namespace,
    placeholders_in,
    rewrite_images,
    substitute_variables,
)
from paless_deploy.stages.project import project_apps

if TYPE_CHECKING:
    from paless_deploy.core.configuration.context import RunContext


@dataclass(frozen=True)
class Rendered:
    """The objects to apply, and what the render had to say about the tree."""

    objects: list[JsonDict]
    warnings: list[str] = field(default_factory=list)


def render_tree(project_dir: Path, overlay: str, namespace: str, variables: Mapping[str, str],
                app_images: AppImages | Mapping[str, str],
                check_used: Callable[[set[str]], None] = lambda used: None,
                extra: Sequence[JsonDict] = ()) -> Rendered:
    """Render `k8s/overlays/<overlay>` into the objects to apply to `namespace`.

    Kustomize builds the overlay; `check_used` sees the `${NAME}` placeholders it uses
    (the prod guard judges those only); then the placeholders are filled from
    `variables`, images of our apps become the references in `app_images`, and the tree
    is made fit for the namespace (core.render.for_namespace: namespace, labels, foreign
    Namespaces, HPA targets, duplicates), with the `extra` objects the tool adds (a
    preview's quota). Raises ConfigError for anything the user must fix.
    """
    objects = kustomize_build(Path(project_dir) / "k8s" / "overlays" / overlay, overlay)
    check_used(placeholders_in(objects))
    unknown: list[str] = []
    objects = substitute_variables(objects, variables, unknown)
    objects = rewrite_images(objects, app_images) + [dict(o) for o in extra]
    objects, warnings = for_namespace(objects, namespace)
    return Rendered(objects, [*unknown, *warnings])


def render_overlay(project_dir: Path, overlay: str, namespace: str,
                   variables: Mapping[str, str],
                   app_images: AppImages | Mapping[str, str]) -> list[JsonDict]:
    """The objects of `render_tree` (for callers that do not show its warnings)."""
    return render_tree(project_dir, overlay, namespace, variables, app_images).objects


def discovered_apps(run_ctx: RunContext) -> list[App]:
    """Every app of the project; none is fine (a tree deploying only images from elsewhere)."""
    return project_apps(run_ctx.config.project_dir, run_ctx.config.project_name)


def render(run_ctx: RunContext, app_images: Mapping[str, str]) -> Rendered:
    """The run's overlay rendered for its namespace, with these app images (and, in branch
    mode or when configured, the namespace's ResourceQuota and LimitRange); the prod
    overlay refuses development and short credentials among the variables it uses."""
    config = run_ctx.config
    images = AppImages(app_images, registry=config.registry, project=config.project_name,
                       aliases=config.image_aliases())

    def prod_guard(used: set[str]) -> None:
        problems = prod_problems(config, used)
        if problems:
            raise combined_error(problems)

    previews = preview_objects(config.value, lambda name: config.settings[name].describe_source(),
                               config.branch_mode)
    return render_tree(config.project_dir, config.overlay, config.namespace,
                       config.substitution_values(), images, prod_guard, previews)
