"""`render`: the rendered manifests as multi-document YAML on stdout.

Secret values are redacted unless `--show-secrets`; nothing touches the cluster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paless_deploy.core.manifests.render import redact_secrets, to_yaml
from paless_deploy.core.reporting.report import Result
from paless_deploy.stages.images import plan_images
from paless_deploy.stages.render import discovered_apps, render
from paless_deploy.ui.lines import say, warn

if TYPE_CHECKING:
    from paless_deploy.core.configuration.context import RunContext


def run_render(run_ctx: RunContext, show_secrets: bool = False) -> Result:
    """Print the rendered manifests (Secret values redacted unless asked)."""
    plans, warnings = plan_images(run_ctx.config, discovered_apps(run_ctx))
    rendered = render(run_ctx, {p.app.name: p.ref for p in plans})
    objects = rendered.objects
    shown = objects if show_secrets else redact_secrets(objects)
    result = Result(command="render", warnings=[*warnings, *rendered.warnings])
    for warning in result.warnings:
        warn(warning)
    if run_ctx.json_output:
        result.extra["objects"] = shown
    else:
        say(to_yaml(shown), nl=False)
    return result
