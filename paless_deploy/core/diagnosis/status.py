"""Status (pure part): the state of a namespace as plain rows and a health line.

Built from the lists the command reads (also the JSON document); drawn by the ui.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TypedDict

from paless_deploy.core.apitypes import ApiObject, JsonDict
from paless_deploy.core.apiviews import PodView, Replicas
from paless_deploy.core.diagnosis.netpolicy import policy_rows
from paless_deploy.core.diagnosis.readiness import State, readiness
from paless_deploy.core.images.imageref import tag_of
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.objects import name_of, nested, whole_number
from paless_deploy.core.manifests.podspec import pod_spec

# what status reads: kind -> key of the lists passed to build_status
LISTED_KINDS = ("Deployment", "StatefulSet", "Job", "Pod", "PersistentVolumeClaim", "Service",
                "Ingress", "HorizontalPodAutoscaler", "NetworkPolicy")


class WorkloadRow(TypedDict):
    """A Deployment, StatefulSet or Job: its replicas, image tag, age and readiness."""

    kind: str
    name: str
    desired: int
    ready: int
    updated: int | str  # "-" for a Job
    available: int | str
    image_tag: str
    age: str
    state: State
    reason: str


class PodRow(TypedDict):
    name: str
    phase: str
    ready: str  # "ready/containers"
    restarts: int
    node: str
    reason: str  # why it is not running well, "" when it is


# A claim ("class" is a keyword: the functional form).
StorageRow = TypedDict("StorageRow", {"name": str, "class": str, "status": str,
                                      "capacity": str, "volume": str})


class NetworkRow(TypedDict):
    """A Service or an Ingress."""

    kind: str
    name: str
    type: str
    hosts: str
    address: str
    ports: str


class AutoscalingRow(TypedDict):
    name: str
    target: str
    min: int
    max: int
    current: int
    metrics: str


@dataclass
class Status:
    """The state of one namespace, as plain rows."""

    namespace: str
    workloads: list[WorkloadRow] = field(default_factory=list)
    pods: list[PodRow] = field(default_factory=list)
    storage: list[StorageRow] = field(default_factory=list)
    network: list[NetworkRow] = field(default_factory=list)
    autoscaling: list[AutoscalingRow] = field(default_factory=list)
    policies: list[JsonDict] = field(default_factory=list)  # one row per NetworkPolicy
    health: str = ""
    healthy: bool = True

    def to_dict(self) -> JsonDict:
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


def _tag(obj: ApiObject) -> str:
    """The image tag of the pod template's first container."""
    containers = (pod_spec(obj) or {}).get("containers") or [{}]
    image = str(containers[0].get("image", ""))
    return tag_of(image) or ("digest" if "@" in image else "latest?")


def _pod_reason(pod: PodView) -> str:
    """Why a pod is not running well, in the kubelet's or the scheduler's word ("": it is)."""
    for cs in pod.statuses:
        if cs.waiting and cs.waiting_reason not in ("", "PodInitializing"):
            return cs.waiting_reason
        if cs.terminated is not None and cs.terminated.reason != "Completed":
            return cs.terminated.reason
        if cs.last_terminated is not None and cs.last_terminated.reason == "OOMKilled":
            return "OOMKilled (last)"
    scheduled = pod.condition("PodScheduled")
    if scheduled is not None and scheduled.false:
        return scheduled.reason or "Unschedulable"
    return ""


def _workload_rows(lists: Mapping[str, Sequence[ApiObject]], now: datetime
                   ) -> tuple[list[WorkloadRow], list[str]]:
    """Deployments, StatefulSets and Jobs as rows, and the problems of those not ready."""
    rows: list[WorkloadRow] = []
    problems: list[str] = []
    for kind in ("Deployment", "StatefulSet", "Job"):
        for listed in lists[kind]:
            obj = {**listed, "kind": kind}  # a list's items carry no kind
            verdict = readiness(obj)
            name = name_of(obj)
            if kind == "Job":
                counts: tuple[int, int, int | str, int | str] = (
                    1, whole_number(nested(obj, "status", "succeeded"), 0), "-", "-")
            else:
                r = Replicas.of(obj)
                counts = (r.desired, r.ready, r.updated,
                          r.available if kind == "Deployment" else r.ready)
            rows.append({"kind": kind, "name": name, "desired": counts[0], "ready": counts[1],
                         "updated": counts[2], "available": counts[3], "image_tag": _tag(obj),
                         "age": _age(nested(obj, "metadata", "creationTimestamp"), now),
                         "state": verdict.state, "reason": verdict.reason})
            if verdict.failed if kind == "Job" else not verdict.ready:
                problems.append(f"{kind}/{name} {verdict.reason}")
    return rows, problems


def _pod_rows(pods: Sequence[PodView]) -> tuple[list[PodRow], list[str]]:
    rows: list[PodRow] = []
    problems: list[str] = []
    for pod in pods:
        reason = _pod_reason(pod)
        main = pod.main_statuses
        rows.append({"name": pod.name, "phase": pod.phase,
                     "ready": f"{sum(1 for c in main if c.ready)}/{pod.containers}",
                     "restarts": sum(c.restarts for c in main),
                     "node": pod.node_name or "-", "reason": reason})
        if reason and pod.phase != "Succeeded":
            problems.append(f"Pod/{pod.name} {reason}")
    schedulers = [p.name for p in pods
                  if p.labels.get(labels.COMPONENT) == "scheduler" and p.phase == "Running"]
    if len(schedulers) > 1:
        problems.append(f"{len(schedulers)} scheduler pods run ({', '.join(schedulers)}): periodic "
                        "tasks run twice; keep 1 replica with strategy Recreate")
    return rows, problems


def _storage_rows(claims: Sequence[ApiObject]) -> list[StorageRow]:
    return [{"name": name_of(pvc),
             "class": nested(pvc, "spec", "storageClassName") or "-",
             "status": nested(pvc, "status", "phase") or "",
             "capacity": nested(pvc, "status", "capacity", "storage") or "-",
             "volume": nested(pvc, "spec", "volumeName") or "-"} for pvc in claims]


def _network_rows(services: Sequence[ApiObject], ingresses: Sequence[ApiObject]
                  ) -> list[NetworkRow]:
    rows: list[NetworkRow] = []
    for svc in services:
        spec = svc["spec"]
        ports = ",".join(f"{p.get('port')}{'/' + str(p['nodePort']) if p.get('nodePort') else ''}"
                         for p in spec.get("ports") or [])
        rows.append({"kind": "Service", "name": name_of(svc),
                     "type": spec.get("type", "ClusterIP"), "hosts": "-",
                     "address": spec.get("clusterIP") or "-", "ports": ports})
    for ing in ingresses:
        hosts = ",".join(r.get("host", "*") for r in ing["spec"].get("rules") or [])
        lb = nested(ing, "status", "loadBalancer", "ingress") or []
        addr = ",".join(x.get("ip") or x.get("hostname") or "" for x in lb) or "(none)"
        rows.append({"kind": "Ingress", "name": name_of(ing),
                     "type": ing["spec"].get("ingressClassName") or "-", "hosts": hosts,
                     "address": addr, "ports": "80"})
    return rows


def _autoscaling_rows(hpas: Sequence[ApiObject]) -> list[AutoscalingRow]:
    rows: list[AutoscalingRow] = []
    for hpa in hpas:
        s = hpa.get("status") or {}
        metrics = []
        for m in s.get("currentMetrics") or []:
            res = m.get("resource") or {}
            cur = (res.get("current") or {}).get("averageUtilization")
            if res:
                metrics.append(f"{res.get('name')} {cur}%")
        rows.append({
            "name": name_of(hpa), "target": hpa["spec"]["scaleTargetRef"]["name"],
            "min": hpa["spec"].get("minReplicas", 1), "max": hpa["spec"]["maxReplicas"],
            "current": s.get("currentReplicas", 0), "metrics": ", ".join(metrics) or "(no metrics)",
        })
    return rows


def build_status(namespace: str, lists: Mapping[str, Sequence[ApiObject]],
                 now: datetime) -> Status:
    """The namespace's workloads, pods, claims, services, ingresses and HPAs as rows (`lists`:
    kind -> the objects listed, for each kind of LISTED_KINDS), and a health line."""
    workloads, problems = _workload_rows(lists, now)
    pods, pod_problems = _pod_rows([PodView.of(p) for p in lists["Pod"]])
    problems += pod_problems
    st = Status(namespace, workloads, pods, _storage_rows(lists["PersistentVolumeClaim"]),
                _network_rows(lists["Service"], lists["Ingress"]),
                _autoscaling_rows(lists["HorizontalPodAutoscaler"]))
    st.policies = policy_rows(lists.get("NetworkPolicy", []))
    ready = sum(1 for w in st.workloads if w["state"] == State.READY)
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
    ("Network policies", "policies", ("name", "pods", "ingress", "egress")),
)
