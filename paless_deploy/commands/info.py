"""`help` and `config`: what the tool sees (apps, images, variables), secrets masked.

`config` touches neither Docker nor the cluster; `help` asks the cluster (when one answers)
how images would reach it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paless_deploy.core.configuration.config import combined_error
from paless_deploy.core.configuration.validation import config_problems
from paless_deploy.core.errors import ConfigError, PalessError
from paless_deploy.core.images.discover import App
from paless_deploy.core.images.graph import describe_bases
from paless_deploy.core.reporting.report import Result, error_text
from paless_deploy.stages.images import project_graph
from paless_deploy.stages.project import project_apps
from paless_deploy.ui.lines import say, warn
from paless_deploy.ui.tables import print_table

if TYPE_CHECKING:
    from paless_deploy.core.configuration.context import RunContext

PROG = "paless-deploy"
COMMANDS_NOT_APPS = ("all", "deploy", "status", "help", "render", "diff", "build", "push",
                     "destroy", "gc", "doctor", "config", "plan", "dev")


def run_help(run_ctx: RunContext, usage: str) -> Result:
    """Usage, detected apps with their images, effective configuration (secrets masked)."""
    config = run_ctx.config
    warnings: list[str] = []
    apps: list[App] = []
    try:
        apps = project_apps(config.project_dir, config.project_name)
    except ConfigError as exc:
        warnings.append(error_text(exc))
    for app in apps:
        if app.name in COMMANDS_NOT_APPS:
            warnings.append(f"App {app.name!r} has the name of a command: reach it with "
                            f"`{PROG} deploy {app.name}` (the shorthand runs the command).")
    warnings.extend(error_text(p) for p in config_problems(config))
    graph = None
    try:
        graph = project_graph(config, apps) if apps else None
    except ConfigError as exc:  # a circle of FROMs: said, and the apps still listed
        warnings.append(error_text(exc))
    order = {name: i for i, name in enumerate(graph.order)} if graph else {}
    app_rows = [(a.name, str(a.dockerfile.relative_to(config.project_dir)),
                 f"{config.image_repository(a.name)}:<content tag>",
                 describe_bases(graph, a.name, {}) if graph else "")
                for a in sorted(apps, key=lambda a: order.get(a.name, 0))]
    method, reason = image_delivery(run_ctx)
    result = Result(command="help", warnings=warnings, extra={
        "apps": [dict(zip(("name", "dockerfile", "image", "builds"), row)) for row in app_rows],
        "config": [dict(zip(("name", "value", "source"), row)) for row in config.rows()],
        "delivery": {"method": method, "reason": reason},
    })
    if run_ctx.json_output:
        return result
    say(usage)
    say()
    if app_rows:
        print_table(f"Apps in {config.project_dir.resolve()}, in build order",
                    ("app", "dockerfile", "image", "build graph"), app_rows,
                    run_ctx.console.color)
    else:
        say(f"No apps found in {config.project_dir.resolve()} "
            "(looked for <dir>/Dockerfile and Dockerfile.<name>).")
    say(f"Images reach the cluster by {method}: {reason}.")
    say()
    print_table("Configuration", ("variable", "value", "source"), config.rows(),
                run_ctx.console.color)
    for warning in warnings:
        warn(warning)
    return result


def image_delivery(run_ctx: RunContext) -> tuple[str, str]:
    """How images would reach the cluster now, and why (the cluster is asked when it
    answers; otherwise what IMAGE_DELIVERY says)."""
    from paless_deploy.adapters.kube import connect_run
    from paless_deploy.core.images.delivery import choose_delivery
    from paless_deploy.stages.delivery import delivery_facts
    from paless_deploy.stages.nodes import read_nodes

    config = run_ctx.config
    try:
        kube = connect_run(run_ctx)
        delivery = choose_delivery(delivery_facts(kube, config, read_nodes(kube)))
    except PalessError as exc:
        setting = config.settings["IMAGE_DELIVERY"]
        why = (f"IMAGE_DELIVERY={setting.value} ({setting.describe_source()}); decided per "
               f"cluster when deploying (no cluster to ask now: {exc.message})")
        return setting.value or "auto", why
    return delivery.method, delivery.reason


def run_config(run_ctx: RunContext) -> Result:
    """Effective value of every variable and where it came from (secrets masked)."""
    config = run_ctx.config
    rows = config.rows()
    if not run_ctx.json_output:
        files = ", ".join(str(p) for p in config.env_files) or "none"
        print_table(f"Configuration (env files: {files})", ("variable", "value", "source"),
                    rows, run_ctx.console.color)
    result = Result(command="config", extra={
        "config": [dict(zip(("name", "value", "source"), row)) for row in rows],
        "env_files": [str(p) for p in config.env_files],
    })
    problems = config_problems(config)
    if problems:
        raise combined_error(problems).with_report(result)
    return result
