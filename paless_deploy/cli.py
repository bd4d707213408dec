"""Command line: parse options, build the RunContext, call the stages, map errors once.

Exit codes and the JSON document are the design's; nothing here decides how to
build or deploy, and kubernetes/docker are imported only by the commands using them.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from paless_deploy import __version__
from paless_deploy.core.errors import ConfigError, ExitCode, PalessError

PROG = "paless-deploy"
COMMANDS_NOT_APPS = ("all", "deploy", "status", "help", "render", "diff", "build", "push",
                     "destroy", "gc", "doctor", "config")


@dataclass
class Invocation:
    """What main() needs to report an error: filled in while parsing proceeds."""

    argv: list[str]
    output: str = "text"
    no_color: bool = False
    terminal: bool = False
    verbosity: int = 0
    command: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    namespace: str | None = None
    overlay: str | None = None

    def __post_init__(self) -> None:
        # Usage errors happen before the group callback: read --output early.
        args = self.argv
        for i, arg in enumerate(args):
            if arg == "--output" and i + 1 < len(args):
                self.output = args[i + 1]
            elif arg.startswith("--output="):
                self.output = arg.split("=", 1)[1]
            elif arg == "--no-color":
                self.no_color = True
            elif arg == "-v" or arg.startswith("-vv") or arg == "--verbose":
                self.verbosity = max(self.verbosity, arg.count("v") if arg != "--verbose" else 1)


class PalessGroup(click.Group):
    """A click Group where an unknown first word naming an app means `deploy APP`."""

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            apps = _app_names(ctx.params.get("project_dir"))
            deploy = self.get_command(ctx, "deploy")
            if name in apps and deploy is not None:
                _invocation(ctx).command = "deploy"
                return "deploy", deploy, list(args)
            found = f" Apps found: {', '.join(apps)}." if apps else " No apps were found."
            ctx.fail(f"No such command or app {name!r}. Commands: "
                     f"{', '.join(sorted(self.commands))}.{found}")
        cmd_name, cmd, rest = super().resolve_command(ctx, args)
        if cmd_name:
            _invocation(ctx).command = cmd_name
        return cmd_name, cmd, rest


def _app_names(project_dir: Path | None) -> list[str]:
    from paless_deploy.core.discover import discover_apps

    try:
        return [app.name for app in discover_apps(Path(project_dir or "."))]
    except (PalessError, OSError):
        return []


def _invocation(ctx: click.Context) -> Invocation:
    obj = ctx.find_object(Invocation)
    if obj is None:
        obj = ctx.ensure_object(Invocation)  # only when cli is invoked without main()
    return obj


@click.group(
    cls=PalessGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Shorthand: `paless-deploy APP...` is `paless-deploy deploy APP...`. "
           "Shell completion: eval \"$(_PALESS_DEPLOY_COMPLETE=bash_source paless-deploy)\" "
           "(zsh_source, fish_source for other shells).",
)
@click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="Root of the Paless repository.")
@click.option("--env-file", "env_files", multiple=True, type=click.Path(path_type=Path),
              help="Env file to read (repeatable, later wins); replaces the default "
                   "paless.env, .context-management/.env.")
@click.option("--overlay", help="Kustomize overlay (k8s/overlays/<overlay>); OVERLAY.")
@click.option("-n", "--namespace", help="Target namespace; PALESS_NAMESPACE.")
@click.option("--namespace-from-branch", is_flag=True,
              help="Namespace {PROJECT_NAME}-{branch} (as PALESS_NAMESPACE=auto).")
@click.option("--context", "kube_context", help="kubeconfig context to use.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="kubeconfig file.")
@click.option("--registry", help="Registry to push to and pull from; REGISTRY.")
@click.option("--timeout", default="10m", show_default=True,
              help="Overall deadline (90, 90s, 5m, 1h).")
@click.option("--progress-deadline", default="3m", show_default=True,
              help="A phase without progress for this long fails.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: exactly one JSON document on stdout.")
@click.option("--no-color", is_flag=True, help="No colour (also when NO_COLOR is set).")
@click.option("-v", "--verbose", count=True, help="More detail (tracebacks of internal errors).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.version_option(__version__, "--version", prog_name=PROG)
@click.pass_context
def cli(ctx: click.Context, **options: Any) -> int:
    """Build, push and deploy the Paless stack to Kubernetes, in ordered, verified phases."""
    inv = _invocation(ctx)
    inv.options = options
    inv.output = options["output"]
    inv.no_color = options["no_color"]
    inv.verbosity = options["verbose"]
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(0)
    return 0


# ---------------------------------------------------------------------------
# Wiring helpers


def _overrides(options: dict[str, Any]) -> dict[str, str]:
    if options.get("namespace") and options.get("namespace_from_branch"):
        raise ConfigError("-n/--namespace and --namespace-from-branch contradict each other.",
                          "Pass only one of them.")
    overrides: dict[str, str] = {}
    if options.get("overlay"):
        overrides["OVERLAY"] = options["overlay"]
    if options.get("namespace"):
        overrides["PALESS_NAMESPACE"] = options["namespace"]
    if options.get("namespace_from_branch"):
        overrides["PALESS_NAMESPACE"] = "auto"
    if options.get("registry"):
        overrides["REGISTRY"] = options["registry"]
    return overrides


def _run_context(ctx: click.Context, scope: str | None) -> Any:
    """Load the configuration and build the RunContext; `scope=None`: no validation."""
    from paless_deploy.core.config import load_config, parse_duration
    from paless_deploy.core.context import ConsoleSettings, RunContext

    inv = _invocation(ctx)
    options = inv.options
    env_files = list(options["env_files"]) or None
    config = load_config(Path(options["project_dir"]), env_files, _overrides(options),
                         validate=scope is not None, scope=scope or "deploy")
    inv.namespace, inv.overlay = config.namespace, config.overlay
    console = ConsoleSettings.detect(no_color=options["no_color"], quiet=options["quiet"],
                                     verbosity=options["verbose"])
    return RunContext(
        config=config,
        output=options["output"],
        console=console,
        timeout_s=parse_duration(options["timeout"], "--timeout"),
        progress_deadline_s=parse_duration(options["progress_deadline"], "--progress-deadline"),
        kubeconfig=options.get("kubeconfig"),
        context=options.get("kube_context"),
        verbosity=options["verbose"],
    )


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]],
                color: bool) -> None:
    """See report.print_table (kept light: report imports no heavy module)."""
    from paless_deploy.core.report import print_table as show

    show(title, headers, rows, color)


def _emit(run_ctx: Any, result: Any) -> int:
    """Finish a command: the JSON document on stdout in json mode; its exit code."""
    result.duration_s = run_ctx.elapsed_s()
    if result.namespace is None:
        result.namespace = run_ctx.config.namespace
    if result.overlay is None:
        result.overlay = run_ctx.config.overlay
    if run_ctx.json_output:
        click.echo(result.to_json())
    return int(result.exit_code)


# ---------------------------------------------------------------------------
# Commands implemented here: help, config, build, push


@cli.command("help")
@click.pass_context
def help_command(ctx: click.Context) -> int:
    """Usage, detected apps with their images, effective configuration (secrets masked)."""
    from paless_deploy.core.config import config_problems
    from paless_deploy.core.discover import discover_apps
    from paless_deploy.core.report import Result, error_text

    run_ctx = _run_context(ctx, scope=None)
    config = run_ctx.config
    warnings: list[str] = []
    try:
        apps = discover_apps(config.project_dir)
    except ConfigError as exc:
        apps = []
        warnings.append(error_text(exc))
    for app in apps:
        if app.name in COMMANDS_NOT_APPS:
            warnings.append(f"App {app.name!r} has the name of a command: reach it with "
                            f"`{PROG} deploy {app.name}` (the shorthand runs the command).")
    warnings.extend(error_text(p) for p in config_problems(config))
    app_rows = [(a.name, str(a.dockerfile.relative_to(config.project_dir)),
                 f"{config.image_repository(a.name)}:<content tag>") for a in apps]
    result = Result(command="help", warnings=warnings, extra={
        "apps": [dict(zip(("name", "dockerfile", "image"), row)) for row in app_rows],
        "config": [dict(zip(("name", "value", "source"), row)) for row in config.rows()],
    })
    if not run_ctx.json_output:
        parent = ctx.parent or ctx
        click.echo(parent.get_help())
        click.echo()
        if app_rows:
            print_table(f"Apps in {config.project_dir.resolve()}",
                         ("app", "dockerfile", "image"), app_rows, run_ctx.console.color)
        else:
            click.echo(f"No apps found in {config.project_dir.resolve()} "
                       "(looked for <dir>/Dockerfile and Dockerfile.<name>).")
        click.echo()
        print_table("Configuration", ("variable", "value", "source"), config.rows(),
                     run_ctx.console.color)
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
    return _emit(run_ctx, result)


@cli.command("config")
@click.pass_context
def config_command(ctx: click.Context) -> int:
    """Effective value of every variable and where it came from (secrets masked)."""
    from paless_deploy.core.config import combined_error, config_problems
    from paless_deploy.core.report import Result

    run_ctx = _run_context(ctx, scope=None)
    config = run_ctx.config
    rows = config.rows()
    problems = config_problems(config)
    if not run_ctx.json_output:
        files = ", ".join(str(p) for p in config.env_files) or "none"
        print_table(f"Configuration (env files: {files})", ("variable", "value", "source"),
                     rows, run_ctx.console.color)
    if problems:
        raise combined_error(problems)
    result = Result(command="config", extra={
        "config": [dict(zip(("name", "value", "source"), row)) for row in rows],
        "env_files": [str(p) for p in config.env_files],
    })
    return _emit(run_ctx, result)


def _selected_apps(config: Any, names: Sequence[str]) -> list[Any]:
    """The discovered apps, or only those named (ConfigError for an unknown name)."""
    from paless_deploy.core.discover import select_apps

    return select_apps(config.project_dir, names)


def _images_command(ctx: click.Context, command: str, names: Sequence[str],
                    push: bool) -> int:
    from paless_deploy.core.report import Result
    from paless_deploy.stages.images import build_images
    from paless_deploy.ui.progress import make_progress

    run_ctx = _run_context(ctx, scope="images")
    apps = _selected_apps(run_ctx.config, names)
    results = build_images(run_ctx.config, apps, push=push,
                           progress=make_progress(run_ctx.console))
    if not run_ctx.json_output:
        # The full digest is in the JSON document; a prefix identifies it on screen.
        rows = [(r.app, r.action, r.ref, (r.digest or "")[:19]) for r in results]
        print_table("Images", ("app", "action", "reference", "digest"), rows,
                     run_ctx.console.color)
    return _emit(run_ctx, Result(command=command, images=results))


@cli.command("build")
@click.argument("apps", nargs=-1)
@click.pass_context
def build_command(ctx: click.Context, apps: tuple[str, ...]) -> int:
    """Build the images of all apps (or of APPS) that are not built yet."""
    return _images_command(ctx, "build", apps, push=False)


@cli.command("push")
@click.argument("apps", nargs=-1)
@click.pass_context
def push_command(ctx: click.Context, apps: tuple[str, ...]) -> int:
    """Push the images the registry lacks (building what is missing first)."""
    return _images_command(ctx, "push", apps, push=True)


# ---------------------------------------------------------------------------
# Commands whose stages live in paless_deploy.engine


def _engine(name: str, run_ctx: Any, **options: Any) -> int:
    """Call `engine.run_<name>(run_ctx, **options)` if that stage exists (exit 2 if not)."""
    import importlib

    from paless_deploy.core.report import Result

    try:
        engine: Any = importlib.import_module("paless_deploy.engine")
    except ModuleNotFoundError as exc:
        if exc.name != "paless_deploy.engine":
            raise
        engine = None
    runner = getattr(engine, f"run_{name.replace('-', '_')}", None)
    if runner is None:
        raise ConfigError(f"`{name}` is not built yet.",
                          "This command arrives with the deploy engine; "
                          "`build`, `push`, `config` and `help` work today.",
                          code="not-implemented")
    try:
        result = runner(run_ctx, **options)
    except ModuleNotFoundError as exc:
        # The entry point exists but the stage module it delegates to does not yet.
        if not (exc.name or "").startswith("paless_deploy."):
            raise
        raise ConfigError(f"`{name}` is not built yet ({exc.name} is missing).",
                          "`build`, `push`, `config` and `help` work today.",
                          code="not-implemented") from exc
    return _emit(run_ctx, result if result is not None else Result(command=name))


def _deploy_options(command: Any) -> Any:
    """The options `all` and `deploy` share."""
    for option in reversed((
        click.option("--force-conflicts", is_flag=True,
                     help="Take over fields other managers own."),
        click.option("--rollback-on-failure", is_flag=True,
                     help="Roll changed Deployments/StatefulSets back when the deploy fails."),
        click.option("--tolerate-failures", is_flag=True,
                     help="Tolerate every detected failure until the progress deadline."),
    )):
        command = option(command)
    return command


@cli.command("all")
@click.option("--no-prune", is_flag=True, help="Keep objects that left the manifests.")
@_deploy_options
@click.pass_context
def all_command(ctx: click.Context, **options: Any) -> int:
    """Build and push every app, apply the overlay in phases, wait, prune, show status."""
    return _engine("all", _run_context(ctx, scope="deploy"), **options)


@cli.command("deploy")
@click.argument("apps", nargs=-1, required=True)
@_deploy_options
@click.pass_context
def deploy_command(ctx: click.Context, apps: tuple[str, ...], **options: Any) -> int:
    """Build and push only APPS, apply the overlay, wait for them (no prune)."""
    return _engine("deploy", _run_context(ctx, scope="deploy"), apps=list(apps), **options)


@cli.command("status")
@click.option("--watch", is_flag=True, help="Keep refreshing until interrupted.")
@click.pass_context
def status_command(ctx: click.Context, watch: bool) -> int:
    """Workloads, pods, storage, network and autoscaling of the namespace."""
    return _engine("status", _run_context(ctx, scope="cluster"), watch=watch)


@cli.command("render")
@click.option("--show-secrets", is_flag=True, help="Print Secret values instead of redacting.")
@click.pass_context
def render_command(ctx: click.Context, show_secrets: bool) -> int:
    """The rendered manifests as multi-document YAML on stdout."""
    return _engine("render", _run_context(ctx, scope="deploy"), show_secrets=show_secrets)


@cli.command("diff")
@click.pass_context
def diff_command(ctx: click.Context) -> int:
    """What `all` would change (server-side dry run); exit 1 when there are changes."""
    return _engine("diff", _run_context(ctx, scope="deploy"))


@cli.command("destroy")
@click.option("--yes", is_flag=True, help="Do not ask (required when not on a terminal).")
@click.option("--delete-data", is_flag=True,
              help="Also delete PersistentVolumeClaims in a namespace the tool did not create.")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted.")
@click.pass_context
def destroy_command(ctx: click.Context, **options: Any) -> int:
    """Remove what this tool deployed in the namespace."""
    return _engine("destroy", _run_context(ctx, scope="cluster"), **options)


@cli.command("gc")
@click.option("--older-than", help="Age after which a branch namespace expires (e.g. 3d).")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted.")
@click.pass_context
def gc_command(ctx: click.Context, older_than: str | None, dry_run: bool) -> int:
    """Remove expired branch namespaces managed by this tool (older_than in seconds)."""
    from paless_deploy.core.config import parse_duration

    run_ctx = _run_context(ctx, scope="images")
    seconds = parse_duration(older_than, "--older-than") if older_than else None
    return _engine("gc", run_ctx, older_than=seconds, dry_run=dry_run)


@cli.command("doctor")
@click.pass_context
def doctor_command(ctx: click.Context) -> int:
    """Preflight checks, with a fix for each failed one."""
    return _engine("doctor", _run_context(ctx, scope=None))


# ---------------------------------------------------------------------------
# Entry point: the one place errors become exit codes


def _report_error(inv: Invocation, error: PalessError) -> int:
    from paless_deploy.core.context import ConsoleSettings
    from paless_deploy.core.report import Result, print_error

    settings = ConsoleSettings.detect(no_color=inv.no_color)
    print_error(error, color=settings.color, terminal=settings.terminal)
    if inv.output == "json":
        result = Result(command=inv.command, namespace=inv.namespace, overlay=inv.overlay)
        click.echo(result.fail_with(error).to_json())
    return error.exit_code


def _sigterm_interrupts() -> None:
    """CI cancels jobs with SIGTERM: treat it as Ctrl-C so the lock is released at once."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (embedded use): leave the handler alone
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: run the CLI and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    inv = Invocation(args)
    _sigterm_interrupts()
    try:
        rv = cli.main(args=args, prog_name=PROG, standalone_mode=False, obj=inv)
        return rv if isinstance(rv, int) else 0
    except PalessError as exc:
        return _report_error(inv, exc)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(exc, click.exceptions.Abort) and not isinstance(
                cause, (KeyboardInterrupt, EOFError)):
            return _report_error(inv, PalessError("Aborted.", code="aborted"))
        error = PalessError("Interrupted.", "Nothing more was done; run the command again "
                            "to continue where it stopped.", code="interrupted")
        error.exit_code = ExitCode.INTERRUPTED
        return _report_error(inv, error)
    except click.ClickException as exc:
        if inv.output == "json":
            return _report_error(inv, ConfigError(exc.format_message(),
                                                  f"See `{PROG} --help`.", code="usage"))
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if inv.verbosity:
            traceback.print_exc()
        error = PalessError(
            f"Internal error: {type(exc).__name__}: {exc}.",
            "This is a bug in paless-deploy; please report it with the command you ran"
            + ("." if inv.verbosity else " and the traceback that -v prints."),
            code="internal",
        )
        return _report_error(inv, error)
