"""Render stage: build one Kustomize overlay and fill it in for one namespace.

The overlay is built by the kustomize adapter; the core fills in variables, images,
namespace and labels. `planned_refs` gives every app's reference before any build
(tags are content hashes), so a bad overlay fails in a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from paless_deploy.adapters.kustomize import kustomize_build
from paless_deploy.core.discover import App, discover_apps
from paless_deploy.core.render import rewrite_images, set_namespace_and_labels, substitute_variables

if TYPE_CHECKING:
    from paless_deploy.core.context import RunContext


def render_overlay(
    project_dir: Path,
    overlay: str,
    namespace: str,
    variables: Mapping[str, str],
    app_images: Mapping[str, str],
) -> list[dict]:
    """Render `k8s/overlays/<overlay>` into the objects to apply to `namespace`.

    Kustomize builds the overlay; then allow-listed `${VAR}` placeholders are filled
    from `variables`, bare app images (`image: web`) become the references in
    `app_images`, and every object gets the namespace (when namespaced) and the
    design's labels. Raises ConfigError for anything the user must fix.
    """
    objects = kustomize_build(Path(project_dir) / "k8s" / "overlays" / overlay, overlay)
    objects = substitute_variables(objects, variables)
    objects = rewrite_images(objects, app_images)
    return set_namespace_and_labels(objects, namespace)


def discovered_apps(run_ctx: RunContext) -> list[App]:
    """Every app of the project; none is fine (a tree deploying only images from elsewhere)."""
    return discover_apps(run_ctx.config.project_dir)


def render(run_ctx: RunContext, app_images: Mapping[str, str]) -> list[dict]:
    """The run's overlay rendered for its namespace, with these app images."""
    config = run_ctx.config
    return render_overlay(config.project_dir, config.overlay, config.namespace,
                          config.substitution_values(), app_images)
