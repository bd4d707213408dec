"""`build` and `push`: images only (push builds what the registry lacks first)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from paless_deploy.core.reporting.report import Result
from paless_deploy.stages.delivery import advertised_push_config
from paless_deploy.stages.images import build_images
from paless_deploy.stages.project import selected_apps
from paless_deploy.ui.lines import say, warn
from paless_deploy.ui.progress import make_progress
from paless_deploy.ui.tables import print_table

if TYPE_CHECKING:
    from paless_deploy.core.configuration.context import RunContext


def run_images(run_ctx: RunContext, command: str, names: Sequence[str], push: bool) -> Result:
    """Build (and with `push`, push) the named apps, or all of them."""
    apps = selected_apps(run_ctx.config.project_dir, names,
                         run_ctx.config.project_name)
    warnings: list[str] = []

    def warn_and_keep(text: str) -> None:
        warnings.append(text)
        warn(text)

    config = run_ctx.config
    if push:
        config = advertised_push_config(config, run_ctx.kubeconfig, run_ctx.context,
                                        lambda text: say(text, err=True))
    results = build_images(config, apps, push=push,
                           progress=make_progress(run_ctx.console), warn=warn_and_keep)
    if not run_ctx.json_output:
        # The full digest is in the JSON document; a prefix identifies it on screen.
        rows = [(r.app, r.action, r.ref, (r.digest or "")[:19]) for r in results]
        print_table("Images", ("app", "action", "reference", "digest"), rows,
                    run_ctx.console.color)
    return Result(command=command, images=results, warnings=warnings)
