"""When time runs out: what each object and each of its pods is still waiting for.

Used for the overall `--timeout` (`deadline_finding`) and a phase's progress deadline
(`describe_not_ready`), so both name the same missing pieces the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.apiviews import PodView, Replicas
from paless_deploy.core.diagnosis.findings import Finding
from paless_deploy.core.diagnosis.readiness import readiness
from paless_deploy.core.manifests.objects import name_of, nested, ref_of


def _selected(obj: ApiObject, pods: Iterable[ApiObject]) -> list[ApiObject]:
    selector = nested(obj, "spec", "selector", "matchLabels")
    if obj.get("kind") == "Job":
        uid = nested(obj, "metadata", "uid")
        selector = {"job-name": name_of(obj)} if not uid else {"controller-uid": uid}
    if not selector:
        return list(pods)
    chosen = []
    for pod in pods:
        labels = nested(pod, "metadata", "labels") or {}
        job_pod = obj.get("kind") == "Job" and name_of(obj) in (
            labels.get("job-name"), labels.get("batch.kubernetes.io/job-name"))
        if job_pod or all(labels.get(k) == v for k, v in selector.items()):
            chosen.append(pod)
    return chosen


def pod_waiting_for(pod: ApiObject) -> str:
    """What one pod is still waiting for, in a few words; "" when it is ready."""
    view = PodView.of(pod)
    sched = view.condition("PodScheduled")
    if sched and sched.false:
        return f"not scheduled ({sched.reason or 'Pending'}: " \
               f"{sched.message.split(' preemption:')[0].rstrip('. ,')})"
    if not view.node_name:
        return "not scheduled yet"
    parts = []
    for cs in view.statuses:
        if cs.ready:
            continue
        if cs.waiting:
            parts.append(f"container {cs.name} waiting ({cs.waiting_reason or 'Waiting'})")
        elif cs.running:
            parts.append(f"container {cs.name} running, not ready")
        elif cs.terminated:
            if cs.terminated.reason == "Completed" and cs.init:
                continue
            parts.append(f"container {cs.name} terminated ({cs.terminated.reason}, "
                         f"exit code {cs.terminated.exit_code})")
    if not view.statuses:
        return f"scheduled on {view.node_name}, containers not started yet"
    ready = view.condition("Ready")
    if not parts and ready and not ready.true:
        return f"not ready ({ready.reason})".replace(" ()", "")
    return "; ".join(parts)


def describe_not_ready(obj: ApiObject, pods: Iterable[ApiObject] = ()) -> str:
    """For the deadline message: what `obj` is still waiting for, and each of its pods."""
    kind, name = obj.get("kind"), name_of(obj)
    status = obj.get("status") or {}
    replicas = Replicas.of(obj)
    if kind == "Deployment":
        head = (f"{replicas.available} of {replicas.desired} replicas available, "
                f"{replicas.updated} updated")
        old = replicas.total - replicas.updated
        if old > 0:
            head += f", {old} old still running"
    elif kind == "StatefulSet":
        head = f"{replicas.ready} of {replicas.desired} replicas ready"
        if replicas.current_revision != replicas.update_revision:
            head += f", {replicas.updated} updated"
    elif kind == "Job":
        head = (f"not complete ({status.get('active') or 0} active, "
                f"{status.get('succeeded') or 0} succeeded, {status.get('failed') or 0} failed)")
    elif kind == "PersistentVolumeClaim":
        head = f"{status.get('phase', 'Pending')}, not bound"
    else:
        head = readiness(obj).reason or "not ready"
    parts = [f"{kind}/{name}: {head}"]
    for pod in sorted(_selected(obj, pods), key=name_of):
        waiting = pod_waiting_for(pod)
        if waiting:
            parts.append(f"pod {name_of(pod)}: {waiting}")
    return "; ".join(parts)


def deadline_finding(objects: Sequence[ApiObject], pods: Iterable[ApiObject],
                     timeout_s: float, namespace: str) -> Finding:
    """The overall deadline passed: name every resource still not ready and why."""
    pods = list(pods)
    lines = tuple(describe_not_ready(obj, pods) for obj in objects)
    names = ", ".join(ref_of(o) for o in objects) or "the phase"
    return Finding(
        code="deadline", resource=ref_of(objects[0]) if len(objects) == 1 else "",
        reason="DeadlineExceeded",
        message=f"Not ready after {timeout_s:g}s: {names}.",
        hint=("Each line below says what is still missing; if everything is merely slow, "
              "raise --timeout."),
        commands=(f"kubectl -n {namespace} get pods -o wide",
                  f"kubectl -n {namespace} get events --sort-by=.lastTimestamp"),
        evidence=lines, fatal=True)
