"""`status`: what runs in the namespace, one table per concern, and a health line.

`collect_status` reads the cluster once (core.status turns it into rows, also the JSON
document); `print_status` draws them; `--watch` redraws on every watch event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import ApiError, Kube, cluster_errors, connect
from paless_deploy.core.diagnosis.status import LISTED_KINDS, Status, build_status
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.manifests.kinds import by_kind
from paless_deploy.core.reporting.report import Result
from paless_deploy.stages.watcher import NamespaceWatcher
from paless_deploy.ui.statusview import live_status, show_status

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


def print_status(run_ctx: RunContext, kube: Kube | None = None) -> Status:
    """Collect and print the status on stdout (text mode)."""
    kube = kube or connect(run_ctx.kubeconfig, run_ctx.context)
    st = collect_status(kube, run_ctx.config.namespace)
    show_status(st, run_ctx.console.color)
    return st


def run_status(run_ctx: RunContext, watch: bool = False) -> Result:
    """`status`: tables (or JSON); `--watch` redraws whenever something changes.

    Exit 1 when the health line is not healthy (a CI gate), 0 when it is.
    """
    kube = connect(run_ctx.kubeconfig, run_ctx.context)
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
    ns = run_ctx.config.namespace
    watcher = NamespaceWatcher(kube, ns, ["Deployment", "StatefulSet", "Pod", "Job",
                                          "PersistentVolumeClaim"]).start()
    seen = [watcher.version]

    def changed() -> bool:
        new = watcher.wait_for_change(seen[0], 5.0)
        if new == seen[0]:
            return False
        seen[0] = new
        return True

    try:
        live_status(lambda: collect_status(kube, ns), changed, run_ctx.console.color)
    except KeyboardInterrupt:
        return
    finally:
        watcher.stop()
