"""Command line: parse options, build the RunContext, call one command, map errors once.

Nothing here decides how to build or deploy. Each command's module (paless_deploy.commands)
is imported only when that command runs, so `--help` loads neither kubernetes, docker
nor rich.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from paless_deploy import __version__
from paless_deploy.adapters.git import checkout_branch
from paless_deploy.core.configuration.context import CiPlatform, RunContext, Scope
from paless_deploy.core.configuration.durations import parse_duration
from paless_deploy.core.errors import ConfigError, Interrupted, PalessError
from paless_deploy.core.reporting.report import Result
from paless_deploy.stages.project import load_config, project_apps
from paless_deploy.ui.panels import print_error
from paless_deploy.ui.terminal import detect_console

PROG = "paless-deploy"
CI_CHOICES = ("auto", *(p.value for p in CiPlatform))  # auto: cireport.detect_platform


@dataclass
class Invocation:
    """What main() needs to report an error: filled in while parsing proceeds."""

    argv: list[str]
    output: str = "text"  # as written (read before click checks it)
    no_color: bool = False
    verbosity: int = 0
    command: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    namespace: str | None = None
    overlay: str | None = None
    ci: str = "auto"  # --ci
    junit: Path | None = None  # --junit (all, deploy)
    dotenv: Path | None = None  # --dotenv (all, deploy)
    secrets: list[str] = field(default_factory=list)  # scrubbed from every CI report
    started: float = field(default_factory=time.monotonic)  # for duration_s on every path

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
    try:
        return [app.name for app in project_apps(Path(project_dir or "."))]
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
                   "paless.env, .context-management/.env; - reads standard input.")
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
@click.option("--ci", type=click.Choice(CI_CHOICES), default="auto", show_default=True,
              help="CI conventions: log groups, annotations, outputs, summary (github), "
                   "sections and dotenv (gitlab); auto: from GITHUB_ACTIONS / GITLAB_CI.")
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
    inv.ci = options["ci"]
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(0)
    return 0


# ---------------------------------------------------------------------------
# Wiring: options -> RunContext -> command -> exit code


def _overrides(options: dict[str, Any]) -> dict[str, str]:
    if options.get("namespace") is not None and options.get("namespace_from_branch"):
        raise ConfigError("-n/--namespace and --namespace-from-branch contradict each other.",
                          "Pass only one of them.")
    overrides: dict[str, str] = {}
    for option, variable in (("overlay", "OVERLAY"), ("namespace", "PALESS_NAMESPACE"),
                             ("registry", "REGISTRY")):
        if options.get(option) is not None:
            overrides[variable] = options[option]
    if options.get("namespace_from_branch"):
        overrides["PALESS_NAMESPACE"] = "auto"
    return overrides


def _run_context(ctx: click.Context, scope: Scope | None) -> RunContext:
    """Load the configuration and build the RunContext; `scope=None`: no validation."""
    inv = _invocation(ctx)
    options = inv.options
    timeout_s = parse_duration(options["timeout"], "--timeout")
    progress_deadline_s = parse_duration(options["progress_deadline"], "--progress-deadline")
    env_files = list(options["env_files"]) or None
    config = load_config(Path(options["project_dir"]), env_files, _overrides(options),
                         validate=scope is not None, scope=scope or Scope.DEPLOY,
                         read_checkout=checkout_branch)
    inv.namespace, inv.overlay = config.namespace, config.overlay
    inv.secrets = config.secret_values()
    console = detect_console(no_color=options["no_color"], quiet=options["quiet"],
                             verbosity=options["verbose"], ci=_ci_platform(inv))
    return RunContext(config=config, started_monotonic=time.monotonic(),
                      started_at=time.time(), output=options["output"], console=console,
                      timeout_s=timeout_s, progress_deadline_s=progress_deadline_s,
                      kubeconfig=options.get("kubeconfig"), context=options.get("kube_context"),
                      verbosity=options["verbose"])


def _emit(inv: Invocation, run_ctx: RunContext, result: Result) -> int:
    """Finish a command: the CI reports, the JSON document on stdout in json mode; its
    exit code."""
    result.duration_s = run_ctx.elapsed_s(time.monotonic())
    if result.namespace is None:
        result.namespace = run_ctx.config.namespace
    if result.overlay is None:
        result.overlay = run_ctx.config.overlay
    _write_ci_reports(inv, result)
    if run_ctx.json_output:
        click.echo(result.to_json())
    return int(result.exit_code)


def _run(ctx: click.Context, scope: Scope | None,
         command: Callable[[RunContext], Result]) -> int:
    """Build the RunContext, run the command, emit its result; errors go to main()."""
    run_ctx = _run_context(ctx, scope)
    said = list(run_ctx.config.warnings)  # the env files' shell habits, said once, first
    if not run_ctx.json_output and not run_ctx.console.quiet:
        for warning in said:
            click.echo(f"warning: {warning}", err=True)
    try:
        result = command(run_ctx)
    except PalessError as exc:
        if exc.report is not None:
            exc.report.duration_s = run_ctx.elapsed_s(time.monotonic())
            exc.report.warnings[:0] = said
        raise
    result.warnings[:0] = said
    return _emit(_invocation(ctx), run_ctx, result)


def _ci_platform(inv: Invocation) -> CiPlatform:
    import os

    from paless_deploy.core.reporting.cireport import detect_platform

    return detect_platform(inv.ci, os.environ)


def _write_ci_reports(inv: Invocation, result: Result) -> None:
    """GitHub/GitLab conventions and the --junit/--dotenv files, for every exit path."""
    import os

    from paless_deploy.ui.ci import ci_targets, write_ci_reports

    targets = ci_targets(_ci_platform(inv), os.environ, junit=inv.junit, dotenv=inv.dotenv)
    write_ci_reports(targets, result, inv.secrets)


def _ci_files(ctx: click.Context, junit: Path | None, dotenv: Path | None) -> None:
    """--junit and --dotenv of `all`/`deploy`: checked before anything runs."""
    from paless_deploy.ui.ci import check_report_path

    check_report_path(junit, "--junit")
    check_report_path(dotenv, "--dotenv")
    inv = _invocation(ctx)
    inv.junit, inv.dotenv = junit, dotenv


# ---------------------------------------------------------------------------
# The commands (each imports its module only when it runs)


@cli.command("help")
@click.pass_context
def help_command(ctx: click.Context) -> int:
    """Usage, detected apps with their images, effective configuration (secrets masked)."""
    from paless_deploy.commands.info import run_help

    usage = (ctx.parent or ctx).get_help()
    return _run(ctx, None, lambda run_ctx: run_help(run_ctx, usage))


@cli.command("config")
@click.pass_context
def config_command(ctx: click.Context) -> int:
    """Effective value of every variable and where it came from (secrets masked)."""
    from paless_deploy.commands.info import run_config

    return _run(ctx, None, run_config)


@cli.command("build")
@click.argument("apps", nargs=-1)
@click.pass_context
def build_command(ctx: click.Context, apps: tuple[str, ...]) -> int:
    """Build the images of all apps (or of APPS) that are not built yet."""
    from paless_deploy.commands.images import run_images

    return _run(ctx, Scope.IMAGES, lambda run_ctx: run_images(run_ctx, "build", apps, push=False))


@cli.command("push")
@click.argument("apps", nargs=-1)
@click.pass_context
def push_command(ctx: click.Context, apps: tuple[str, ...]) -> int:
    """Push the images the registry lacks (building what is missing first)."""
    from paless_deploy.commands.images import run_images

    return _run(ctx, Scope.IMAGES, lambda run_ctx: run_images(run_ctx, "push", apps, push=True))


def _deploy_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options `all` and `deploy` share."""
    for option in reversed((
        click.option("--force-conflicts", is_flag=True,
                     help="Take over fields other managers own."),
        click.option("--rollback-on-failure", is_flag=True,
                     help="Roll changed Deployments/StatefulSets back when the deploy fails."),
        click.option("--tolerate-failures", is_flag=True,
                     help="Tolerate every detected failure until the progress deadline."),
        click.option("--strict", is_flag=True,
                     help="Manifest warnings (lint) are errors (exit 2), before any build."),
        click.option("--images-from", type=click.Path(dir_okay=False, path_type=Path),
                     help="Deploy the image digests this JSON report of `push`/`all` names "
                          "(each checked in the registry); build nothing."),
        click.option("--junit", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write a JUnit XML report: a testcase per workload and Job."),
        click.option("--dotenv", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write DEPLOY_NAMESPACE, DEPLOY_URL, DEPLOY_RESULT (dotenv; "
                          "default deploy.env under GitLab CI)."),
        click.option("--rollback-data", is_flag=True,
                     help="When the migration or the rollout after it fails, restore the "
                          "snapshot taken before the migration, with the previous images."),
        click.option("--allow-reclaim-delete", is_flag=True,
                     help="prod: accept volumes deleted with their claims (reclaim policy "
                          "Delete); as PALESS_ALLOW_RECLAIM_DELETE=true."),
    )):
        command = option(command)
    return command


def _data_options(options: dict[str, Any]) -> Any:
    """The data flags of all/deploy as the deploy's DataOptions (taken out of `options`)."""
    from paless_deploy.stages.dataguard import DataOptions

    return DataOptions(seed_from=options.pop("seed_from", None),
                       rollback_data=options.pop("rollback_data"),
                       allow_reclaim_delete=options.pop("allow_reclaim_delete"))


@cli.command("all")
@click.option("--no-prune", is_flag=True, help="Keep objects that left the manifests.")
@click.option("--seed-from", metavar="NAMESPACE|SNAPSHOT",
              help="A new namespace starts with this namespace's data (or a snapshot's), "
                   "restored before its migrations run, with its own credentials.")
@_deploy_options
@click.pass_context
def all_command(ctx: click.Context, **options: Any) -> int:
    """Build and push every app, apply the overlay in phases, wait, prune, show status."""
    from paless_deploy.commands.deploy import run_all

    _ci_files(ctx, options.pop("junit"), options.pop("dotenv"))
    data = _data_options(options)
    return _run(ctx, Scope.DEPLOY, lambda run_ctx: run_all(run_ctx, data=data, **options))


@cli.command("deploy")
@click.argument("apps", nargs=-1, required=True)
@_deploy_options
@click.pass_context
def deploy_command(ctx: click.Context, apps: tuple[str, ...], **options: Any) -> int:
    """Build and push only APPS, apply the overlay, wait for them (no prune)."""
    from paless_deploy.commands.deploy import run_deploy

    _ci_files(ctx, options.pop("junit"), options.pop("dotenv"))
    data = _data_options(options)
    return _run(ctx, Scope.DEPLOY, lambda run_ctx: run_deploy(run_ctx, list(apps), data=data,
                                                          **options))


@cli.command("dev")
@click.option("--no-logs", is_flag=True, help="Do not stream the logs of our pods.")
@click.option("--port-forward", is_flag=True,
              help="Forward web's port 8000 and the MinIO console to localhost (the next "
                   "free port when taken), re-established when pods are replaced.")
@click.option("--no-sync", is_flag=True,
              help="Do not copy changed files into the running containers: every change "
                   "waits for its rebuilt image.")
@click.pass_context
def dev_command(ctx: click.Context, no_logs: bool, port_forward: bool, no_sync: bool) -> int:
    """Deploy, then watch the project: sync what a change touches into the running
    containers and reload them, rebuild and roll out only its workloads, stream their
    logs; until Ctrl-C (exit 130)."""
    from paless_deploy.commands.dev import run_dev

    return _run(ctx, Scope.DEPLOY, lambda run_ctx: run_dev(
        run_ctx, lambda: _run_context(ctx, Scope.DEPLOY), logs=not no_logs,
        port_forward=port_forward, sync=not no_sync))


@cli.command("status")
@click.option("--watch", is_flag=True, help="Keep refreshing until interrupted.")
@click.pass_context
def status_command(ctx: click.Context, watch: bool) -> int:
    """Workloads, pods, storage, network and autoscaling of the namespace (exit 1 unhealthy)."""
    from paless_deploy.commands.status import run_status

    return _run(ctx, Scope.CLUSTER, lambda run_ctx: run_status(run_ctx, watch=watch))


@cli.command("render")
@click.option("--show-secrets", is_flag=True, help="Print Secret values instead of redacting.")
@click.pass_context
def render_command(ctx: click.Context, show_secrets: bool) -> int:
    """The rendered manifests as multi-document YAML on stdout."""
    from paless_deploy.commands.render import run_render

    return _run(ctx, Scope.DEPLOY, lambda run_ctx: run_render(run_ctx, show_secrets=show_secrets))


@cli.command("plan")
@click.option("--strict", is_flag=True, help="Manifest warnings (lint) are errors (exit 2).")
@click.pass_context
def plan_command(ctx: click.Context, strict: bool) -> int:
    """The phases, their objects and why each object is in its phase (nothing applied)."""
    from paless_deploy.commands.plan import run_plan

    return _run(ctx, Scope.DEPLOY, lambda run_ctx: run_plan(run_ctx, strict=strict))


@cli.command("diff")
@click.pass_context
def diff_command(ctx: click.Context) -> int:
    """What `all` would change (server-side dry run); exit 1 on changes, 2 on errors."""
    from paless_deploy.commands.diff import run_diff

    return _run(ctx, Scope.DEPLOY, run_diff)


@cli.command("destroy")
@click.option("--yes", is_flag=True, help="Do not ask (required when not a terminal).")
@click.option("--delete-data", is_flag=True,
              help="Also delete PersistentVolumeClaims in a namespace the tool did not create.")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted.")
@click.option("--from-report", type=click.Path(dir_okay=False, path_type=Path),
              help="Remove exactly what this JSON report of `all`/`deploy` names (its "
                   "namespace, the cluster-scoped objects it applied); no checkout needed.")
@click.pass_context
def destroy_command(ctx: click.Context, from_report: Path | None, **options: Any) -> int:
    """Remove what this tool deployed in the namespace."""
    from paless_deploy.commands.destroy import read_destroy_report, run_destroy

    report = None
    if from_report is not None:
        report = read_destroy_report(from_report)
        _namespace_from_report(ctx, report.namespace or "")
    return _run(ctx, Scope.CLUSTER, lambda run_ctx: run_destroy(run_ctx, report=report, **options))


def _namespace_from_report(ctx: click.Context, namespace: str) -> None:
    """The report names the namespace; -n may repeat it but not contradict it."""
    options = _invocation(ctx).options
    given = options.get("namespace")
    if options.get("namespace_from_branch") or (given is not None and given != namespace):
        raise ConfigError(
            f"--from-report names namespace {namespace}, which contradicts "
            + (f"-n {given}." if given is not None else "--namespace-from-branch."),
            "Pass only --from-report: the report says which namespace to remove.",
            code="usage")
    options["namespace"] = namespace


@cli.command("gc")
@click.option("--older-than", help="Idle time (since the last deploy) after which a branch "
                                   "namespace expires (e.g. 3d).")
@click.option("--sleep-after", help="Idle time after which a branch namespace that is kept is "
                                    "scaled to zero, its data kept, until `wake` or the next "
                                    "deploy (e.g. 4h).")
@click.option("--dry-run", is_flag=True, help="List what would be deleted, and why.")
@click.option("-l", "--selector", help="Only namespaces matching this label selector too.")
@click.pass_context
def gc_command(ctx: click.Context, older_than: str | None, sleep_after: str | None,
               dry_run: bool, selector: str | None) -> int:
    """Remove expired branch namespaces managed by this tool (never one labelled
    paless.io/keep=true); with --sleep-after, put idle ones to sleep."""
    from paless_deploy.commands.destroy import run_gc

    seconds = parse_duration(older_than, "--older-than") if older_than else None
    sleep_s = parse_duration(sleep_after, "--sleep-after") if sleep_after else None
    return _run(ctx, Scope.IMAGES, lambda run_ctx: run_gc(run_ctx, older_than=seconds,
                                                      dry_run=dry_run, selector=selector,
                                                      sleep_after=sleep_s))


@cli.command("backup")
@click.option("--to", type=click.Path(file_okay=False, path_type=Path),
              help="Directory the snapshot goes into (default PALESS_SNAPSHOT_DIR, else "
                   "~/.local/share/paless-deploy/snapshots).")
@click.pass_context
def backup_command(ctx: click.Context, to: Path | None) -> int:
    """Snapshot the namespace's data: the PostgreSQL dump, MinIO's buckets, the deployed
    manifests and the configuration (no secret), with sizes and checksums."""
    from paless_deploy.commands.data import run_backup

    return _run(ctx, Scope.CLUSTER, lambda run_ctx: run_backup(run_ctx, to))


@cli.command("restore")
@click.argument("snapshot")
@click.option("--yes", is_flag=True, help="Do not ask (prod asks; required off a terminal).")
@click.pass_context
def restore_command(ctx: click.Context, snapshot: str, yes: bool) -> int:
    """Restore a snapshot into the namespace (checked whole first; exit 2 when it is newer
    than the image the namespace runs)."""
    from paless_deploy.commands.data import run_restore

    return _run(ctx, Scope.DEPLOY, lambda run_ctx: run_restore(run_ctx, snapshot, yes=yes))


@cli.command("wake")
@click.pass_context
def wake_command(ctx: click.Context) -> int:
    """Bring back a namespace `gc --sleep-after` put to sleep, and wait until it is ready."""
    from paless_deploy.commands.data import run_wake

    return _run(ctx, Scope.CLUSTER, run_wake)


@cli.command("doctor")
@click.pass_context
def doctor_command(ctx: click.Context) -> int:
    """Preflight checks, with a fix for each failed one."""
    from paless_deploy.commands.doctor import run_doctor

    return _run(ctx, None, run_doctor)


# ---------------------------------------------------------------------------
# Entry point: the one place errors become exit codes


def _report_error(inv: Invocation, error: PalessError) -> int:
    settings = detect_console(no_color=inv.no_color)
    print_error(error, color=settings.color, terminal=settings.terminal)
    result = error.report or Result(command=inv.command)
    result.duration_s = result.duration_s or time.monotonic() - inv.started
    result.namespace = result.namespace or inv.namespace
    result.overlay = result.overlay or inv.overlay
    result.fail_with(error)
    try:
        _write_ci_reports(inv, result)
    except Exception:  # noqa: BLE001 - the error is reported already; CI files are extra
        if inv.verbosity:
            traceback.print_exc()
    if inv.output == "json":
        click.echo(result.to_json())
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
        return _report_error(inv, Interrupted(
            "Interrupted.", "Nothing more was done; run the command again to continue where "
            "it stopped."))
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
        return _report_error(inv, PalessError(
            f"Internal error: {type(exc).__name__}: {exc}.",
            "This is a bug in paless-deploy; please report it with the command you ran"
            + ("." if inv.verbosity else " and the traceback that -v prints."),
            code="internal"))


