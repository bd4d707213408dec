"""Status (pure part): the state of a namespace as plain rows and a health line.

Built from the lists the command reads (also the JSON document); drawn by the ui.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime

from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.diagnosis.netpolicy import policy_rows
from paless_deploy.core.diagnosis.readiness import readiness
from paless_deploy.core.images.imageref import tag_of
from paless_deploy.core.manifests import labels

# what status reads: kind -> key of the lists passed to build_status
LISTED_KINDS = ("Deployment", "StatefulSet", "Job", "Pod", "PersistentVolumeClaim", "Service",
                "Ingress", "HorizontalPodAutoscaler", "NetworkPolicy")


@dataclass
class Status:
    """The state of one namespace, as plain rows."""

    namespace: str
    workloads: list[dict] = field(default_factory=list)
    pods: list[dict] = field(default_factory=list)
    storage: list[dict] = field(default_factory=list)
    network: list[dict] = field(default_factory=list)
    autoscaling: list[dict] = field(default_factory=list)
    policies: list[dict] = field(default_factory=list)  # one row per NetworkPolicy
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


def _tag(image: str) -> str:
    return tag_of(image) or ("digest" if "@" in image else "latest?")


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


def build_status(namespace: str, lists: Mapping[str, list[dict]], now: datetime) -> Status:
    """The namespace's workloads, pods, claims, services, ingresses and HPAs as rows."""
    st = Status(namespace=namespace)
    deps, stss, jobs = lists["Deployment"], lists["StatefulSet"], lists["Job"]
    pods, pvcs, svcs = lists["Pod"], lists["PersistentVolumeClaim"], lists["Service"]
    ings, hpas = lists["Ingress"], lists["HorizontalPodAutoscaler"]
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
                  if (p["metadata"].get("labels") or {}).get(labels.COMPONENT) == "scheduler"
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
    st.policies = policy_rows(lists.get("NetworkPolicy", []))
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
    ("Network policies", "policies", ("name", "pods", "ingress", "egress")),
)
