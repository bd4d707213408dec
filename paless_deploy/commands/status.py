"""Status stage: what runs in the namespace, one table per concern, and a health line.

`collect_status` reads the cluster once into plain rows (also the JSON document);
`print_status` draws them; `--watch` redraws on every watch event.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from paless_deploy.adapters.kube import Kube, cluster_errors
from paless_deploy.core.readiness import readiness
from paless_deploy.core.report import Result


@dataclass
class Status:
    """The state of one namespace, as plain rows."""

    namespace: str
    workloads: list[dict] = field(default_factory=list)
    pods: list[dict] = field(default_factory=list)
    storage: list[dict] = field(default_factory=list)
    network: list[dict] = field(default_factory=list)
    autoscaling: list[dict] = field(default_factory=list)
    health: str = ""
    healthy: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _age(ts: str | None, now: datetime) -> str:
    if not ts:
        return "-"
    then = datetime.fromisoformat(ts)
    s = int((now - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def _tag(image: str) -> str:
    return image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest?"


def _pod_reason(pod: dict) -> str:
    status = pod.get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        st = cs.get("state") or {}
        if "waiting" in st and st["waiting"].get("reason") not in (None, "PodInitializing"):
            return st["waiting"]["reason"]
        last = (cs.get("lastState") or {}).get("terminated")
        if "terminated" in st and st["terminated"].get("reason") not in ("Completed",):
            return st["terminated"].get("reason", "")
        if last and last.get("reason") == "OOMKilled":
            return "OOMKilled (last)"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return cond.get("reason", "Unschedulable")
    return ""


def _require_namespace(kube: Kube, namespace: str) -> None:
    from kubernetes.client.exceptions import ApiException

    from paless_deploy.core.errors import ConfigError

    try:
        found = kube.get(f"/api/v1/namespaces/{namespace}")
    except ApiException as exc:
        if exc.status == 403:  # may not read namespaces: the lists below will tell
            return
        raise
    if found is None:
        raise ConfigError(f"Namespace {namespace} does not exist on {kube.server}.",
                          "Deploy it first (`paless-deploy all`), or check -n / "
                          "PALESS_NAMESPACE (`paless-deploy config`).", code="no-namespace")


LISTS = {
    "deployments": "/apis/apps/v1", "statefulsets": "/apis/apps/v1", "jobs": "/apis/batch/v1",
    "pods": "/api/v1", "persistentvolumeclaims": "/api/v1", "services": "/api/v1",
    "ingresses": "/apis/networking.k8s.io/v1",
    "horizontalpodautoscalers": "/apis/autoscaling/v2",
}


def collect_status(kube: Kube, namespace: str) -> Status:
    """Read the namespace's workloads, pods, claims, services, ingresses and HPAs."""
    now = datetime.now(UTC)
    st = Status(namespace=namespace)
    with cluster_errors(kube, "reading the namespace's status", namespace):
        _require_namespace(kube, namespace)
        lists = {plural: kube.request("GET", f"{prefix}/namespaces/{namespace}/{plural}")
                 .get("items") or [] for plural, prefix in LISTS.items()}
    deps, stss, jobs = lists["deployments"], lists["statefulsets"], lists["jobs"]
    pods, pvcs, svcs = lists["pods"], lists["persistentvolumeclaims"], lists["services"]
    ings, hpas = lists["ingresses"], lists["horizontalpodautoscalers"]
    problems = []
    for kind, items in (("Deployment", deps), ("StatefulSet", stss)):
        for obj in items:
            obj["kind"] = kind
            spec, s = obj.get("spec") or {}, obj.get("status") or {}
            verdict = readiness(obj)
            containers = spec["template"]["spec"]["containers"]
            st.workloads.append({
                "kind": kind, "name": obj["metadata"]["name"],
                "desired": spec.get("replicas", 1), "ready": s.get("readyReplicas", 0) or 0,
                "updated": s.get("updatedReplicas", 0) or 0,
                "available": s.get("availableReplicas", 0) or 0 if kind == "Deployment"
                else s.get("readyReplicas", 0) or 0,
                "image_tag": _tag(containers[0].get("image", "")),
                "age": _age(obj["metadata"].get("creationTimestamp"), now),
                "state": verdict.state, "reason": verdict.reason,
            })
            if not verdict.ready:
                problems.append(f"{kind}/{obj['metadata']['name']} {verdict.reason}")
    for job in jobs:
        job["kind"] = "Job"
        verdict = readiness(job)
        st.workloads.append({
            "kind": "Job", "name": job["metadata"]["name"], "desired": 1,
            "ready": (job.get("status") or {}).get("succeeded", 0) or 0, "updated": "-",
            "available": "-",
            "image_tag": _tag(job["spec"]["template"]["spec"]["containers"][0].get("image", "")),
            "age": _age(job["metadata"].get("creationTimestamp"), now),
            "state": verdict.state, "reason": verdict.reason,
        })
        if verdict.failed:
            problems.append(f"Job/{job['metadata']['name']} {verdict.reason}")
    for pod in pods:
        s = pod.get("status") or {}
        css = s.get("containerStatuses") or []
        reason = _pod_reason(pod)
        st.pods.append({
            "name": pod["metadata"]["name"], "phase": s.get("phase", ""),
            "ready": f"{sum(1 for c in css if c.get('ready'))}/{len(pod['spec']['containers'])}",
            "restarts": sum(int(c.get("restartCount") or 0) for c in css),
            "node": pod["spec"].get("nodeName") or "-", "reason": reason,
        })
        if reason and s.get("phase") != "Succeeded":
            problems.append(f"Pod/{pod['metadata']['name']} {reason}")
    schedulers = [p["metadata"]["name"] for p in pods
                  if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "scheduler"
                  and (p.get("status") or {}).get("phase") == "Running"]
    if len(schedulers) > 1:
        problems.append(f"{len(schedulers)} scheduler pods run ({', '.join(schedulers)}): periodic "
                        "tasks run twice; keep 1 replica with strategy Recreate")
    for pvc in pvcs:
        s = pvc.get("status") or {}
        st.storage.append({
            "name": pvc["metadata"]["name"], "class": pvc["spec"].get("storageClassName") or "-",
            "status": s.get("phase", ""), "capacity": (s.get("capacity") or {}).get("storage", "-"),
            "volume": pvc["spec"].get("volumeName") or "-",
        })
    for svc in svcs:
        ports = ",".join(f"{p.get('port')}{'/' + str(p['nodePort']) if p.get('nodePort') else ''}"
                         for p in svc["spec"].get("ports") or [])
        st.network.append({"kind": "Service", "name": svc["metadata"]["name"],
                           "type": svc["spec"].get("type", "ClusterIP"), "hosts": "-",
                           "address": svc["spec"].get("clusterIP") or "-", "ports": ports})
    for ing in ings:
        hosts = ",".join(r.get("host", "*") for r in ing["spec"].get("rules") or [])
        lb = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        addr = ",".join(x.get("ip") or x.get("hostname") or "" for x in lb) or "(none)"
        st.network.append({"kind": "Ingress", "name": ing["metadata"]["name"],
                           "type": ing["spec"].get("ingressClassName") or "-", "hosts": hosts,
                           "address": addr, "ports": "80"})
    for hpa in hpas:
        s = hpa.get("status") or {}
        metrics = []
        for m in s.get("currentMetrics") or []:
            res = m.get("resource") or {}
            cur = (res.get("current") or {}).get("averageUtilization")
            if res:
                metrics.append(f"{res.get('name')} {cur}%")
        st.autoscaling.append({
            "name": hpa["metadata"]["name"], "target": hpa["spec"]["scaleTargetRef"]["name"],
            "min": hpa["spec"].get("minReplicas", 1), "max": hpa["spec"]["maxReplicas"],
            "current": s.get("currentReplicas", 0), "metrics": ", ".join(metrics) or "(no metrics)",
        })
    ready = sum(1 for w in st.workloads if w["state"] == "ready")
    st.healthy = not problems
    st.health = (f"healthy: {ready}/{len(st.workloads)} workloads ready, {len(st.pods)} pods"
                 if not problems else
                 f"unhealthy: {len(problems)} problem(s): " + "; ".join(problems[:5]))
    return st


TABLES = (
    ("Workloads", "workloads", ("kind", "name", "desired", "ready", "updated", "available",
                                "image_tag", "age")),
    ("Pods", "pods", ("name", "phase", "ready", "restarts", "node", "reason")),
    ("Storage", "storage", ("name", "class", "status", "capacity", "volume")),
    ("Network", "network", ("kind", "name", "type", "hosts", "address", "ports")),
    ("Autoscaling", "autoscaling", ("name", "target", "min", "max", "current", "metrics")),
)


def status_renderable(st: Status, color: bool) -> Any:
    """The tables and health line as one rich renderable."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = []
    for title, attr, cols in TABLES:
        rows = getattr(st, attr)
        if not rows:
            continue
        table = Table(title=title, title_justify="left", box=None, pad_edge=False,
                      header_style="bold" if color else "")
        for c in cols:
            table.add_column(c.replace("_", " ").upper())
        for r in rows:
            table.add_row(*(str(r.get(c, "")) for c in cols))
        parts.append(table)
        parts.append(Text(""))
    style = ("green" if st.healthy else "red") if color else ""
    parts.append(Text(f"{st.namespace}: {st.health}", style=style))
    return Group(*parts)


def print_status(run_ctx: Any, kube: Kube | None = None) -> Status:
    """Collect and print the status on stdout (text mode)."""
    from rich.console import Console

    from paless_deploy.adapters.kube import connect

    kube = kube or connect(run_ctx.kubeconfig, run_ctx.context)
    st = collect_status(kube, run_ctx.config.namespace)
    # Off a terminal (CI logs) rich would wrap at 80 columns and cut image tags: print wide.
    width = None if sys.stdout.isatty() else 200
    console = Console(no_color=not run_ctx.console.color, highlight=False, soft_wrap=True,
                      width=width)
    console.print(status_renderable(st, run_ctx.console.color))
    return st


def run_status(run_ctx: Any, watch: bool = False) -> Result:
    """`status`: tables (or JSON); `--watch` redraws whenever something changes."""
    from paless_deploy.adapters.kube import connect

    kube = connect(run_ctx.kubeconfig, run_ctx.context)
    ns = run_ctx.config.namespace
    if watch and not run_ctx.json_output:
        _watch(run_ctx, kube)
    st = collect_status(kube, ns) if run_ctx.json_output else print_status(run_ctx, kube)
    result = Result(command="status", namespace=ns)
    result.extra["status"] = st.to_dict()
    if not st.healthy:
        result.warnings.append(st.health)
    return result


def _watch(run_ctx: Any, kube: Kube) -> None:
    """Redraw on every change seen by the namespace's watches, until Ctrl-C."""
    from rich.console import Console
    from rich.live import Live

    from paless_deploy.stages.watcher import NamespaceWatcher

    ns = run_ctx.config.namespace
    console = Console(no_color=not run_ctx.console.color, highlight=False)
    watcher = NamespaceWatcher(kube, ns, ["Deployment", "StatefulSet", "Pod", "Job",
                                          "PersistentVolumeClaim"]).start()
    version = watcher.version
    try:
        with Live(status_renderable(collect_status(kube, ns), run_ctx.console.color),
                  console=console, auto_refresh=False) as live:
            while True:
                new = watcher.wait_for_change(version, 5.0)
                if new != version:
                    version = new
                    live.update(status_renderable(collect_status(kube, ns), run_ctx.console.color),
                                refresh=True)
    except KeyboardInterrupt:
        return
    finally:
        watcher.stop()
