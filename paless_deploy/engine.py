"""Entry points of the cluster commands, each delegating to the stage module that owns it.

The CLI calls `run_<command>(run_ctx, **options)`; importing this module stays cheap
because every stage is imported only when its command runs.
"""

from __future__ import annotations

from typing import Any


def run_all(run_ctx: Any, **options: Any) -> Any:
    """Build, push, render, apply in phases, wait, prune, report."""
    from paless_deploy.commands.deploy import run_all as run

    return run(run_ctx, **options)


def run_deploy(run_ctx: Any, **options: Any) -> Any:
    """Deploy the given apps; every other app keeps its deployed image."""
    from paless_deploy.commands.deploy import run_deploy as run

    return run(run_ctx, **options)


def run_render(run_ctx: Any, **options: Any) -> Any:
    """Print the rendered manifests."""
    from paless_deploy.commands.deploy import run_render as run

    return run(run_ctx, **options)


def run_diff(run_ctx: Any, **options: Any) -> Any:
    """Server-side dry run against live state; exit 1 when something would change."""
    from paless_deploy.commands.diff import run_diff as run

    return run(run_ctx, **options)


def run_status(run_ctx: Any, **options: Any) -> Any:
    """Tables of what runs in the namespace."""
    from paless_deploy.commands.status import run_status as run

    return run(run_ctx, **options)


def run_destroy(run_ctx: Any, **options: Any) -> Any:
    """Remove what this tool deployed into the namespace."""
    from paless_deploy.commands.destroy import run_destroy as run

    return run(run_ctx, **options)


def run_gc(run_ctx: Any, **options: Any) -> Any:
    """Remove expired branch namespaces managed by this tool."""
    from paless_deploy.commands.destroy import run_gc as run

    return run(run_ctx, **options)


def run_doctor(run_ctx: Any, **options: Any) -> Any:
    """Preflight checks of the machine and the cluster, with a fix per failed check."""
    from paless_deploy.commands.doctor import run_doctor as run

    return run(run_ctx, **options)
