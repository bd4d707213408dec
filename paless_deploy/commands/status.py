"""`status`: what runs in the namespace, one table per concern, and a health line.

`collect_status` reads the cluster once (core.status turns it into rows, also the JSON
document); `print_status` draws them; `--watch` redraws on every watch event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.text import Text

from paless_deploy.adapters.kube import ApiError, Kube, cluster_errors, connect_run
from paless_deploy.core.diagnosis.status import LISTED_KINDS, TABLES, Status, build_status
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.manifests.kinds import by_kind
from paless_deploy.core.reporting.report import Result
from paless_deploy.stages.watcher import NamespaceWatcher
from paless_deploy.ui.tables import stdout_console, table

if TYPE_CHECKING:
    from paless_deploy.core.configuration.context import RunContext


def _require_namespace(kube: Kube, namespace: str) -> None:
    try:
        found = kube.read(by_kind("Namespace"), namespace)
    except ApiError as exc:
        if exc.status == 403:  # may not read namespaces: the lists below will tell
            return
        raise
    if found is None:
        raise ConfigError(f"Namespace {namespace} does not exist on {kube.server}.",
                          "Deploy it first (`paless-deploy all`), or check -n / "
                          "PALESS_NAMESPACE (`paless-deploy config`).", code="no-namespace")


def collect_status(kube: Kube, namespace: str) -> Status:
    """Read the namespace's workloads, pods, claims, services, ingresses and HPAs."""
    with cluster_errors(kube, "reading the namespace's status", namespace):
        _require_namespace(kube, namespace)
        lists = {kind: kube.list(by_kind(kind), namespace)[0] for kind in LISTED_KINDS}
    return build_status(namespace, lists, datetime.now(UTC))


def status_renderable(st: Status, color: bool, terminal: bool) -> RenderableType:
    """The tables and the health line as one renderable (the one table style)."""
    parts: list[RenderableType] = []
    for title, attr, cols in TABLES:
        rows = getattr(st, attr)
        if not rows:
            continue
        parts.append(table(title, cols, [[r.get(c, "") for c in cols] for r in rows],
                           terminal=terminal, color=color))
        parts.append(Text(""))
    style = ("green" if st.healthy else "red") if color else ""
    parts.append(Text(f"{st.namespace}: {st.health}", style=style))
    return Group(*parts)


def print_status(run_ctx: RunContext, kube: Kube | None = None) -> Status:
    """Collect and print the status on stdout (text mode)."""
    kube = kube or connect_run(run_ctx)
    st = collect_status(kube, run_ctx.config.namespace)
    console = stdout_console(run_ctx.console.color)
    console.print(status_renderable(st, run_ctx.console.color, console.is_terminal))
    return st


def run_status(run_ctx: RunContext, watch: bool = False) -> Result:
    """`status`: tables (or JSON); `--watch` redraws whenever something changes.

    Exit 1 when the health line is not healthy (a CI gate), 0 when it is.
    """
    kube = connect_run(run_ctx)
    ns = run_ctx.config.namespace
    if watch and not run_ctx.json_output:
        _watch(run_ctx, kube)
    st = collect_status(kube, ns) if run_ctx.json_output else print_status(run_ctx, kube)
    result = Result(command="status", namespace=ns)
    result.extra["status"] = st.to_dict()
    if not st.healthy:
        result.warnings.append(st.health)
        result.result, result.exit_code = "failed", 1
    return result


def _watch(run_ctx: RunContext, kube: Kube) -> None:
    """Redraw on every change seen by the namespace's watches, until Ctrl-C."""
    from rich.live import Live

    ns = run_ctx.config.namespace
    color = run_ctx.console.color
    console = stdout_console(color)
    watcher = NamespaceWatcher(kube, ns, ["Deployment", "StatefulSet", "Pod", "Job",
                                          "PersistentVolumeClaim"]).start()
    version = watcher.version

    def draw() -> RenderableType:
        return status_renderable(collect_status(kube, ns), color, console.is_terminal)

    try:
        with Live(draw(), console=console, auto_refresh=False) as live:
            while True:
                new = watcher.wait_for_change(version, 5.0)
                if new != version:
                    version = new
                    live.update(draw(), refresh=True)
    except KeyboardInterrupt:
        return
    finally:
        watcher.stop()
