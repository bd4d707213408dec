"""Rules for controllers: pods a ReplicaSet/StatefulSet cannot create, a Deployment past its
progress deadline, a failed Job.

Their pods' own failures come from `pods.diagnose_pod`; these say what the controller says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.diagnosis import eventlog
from paless_deploy.core.diagnosis.findings import Finding, Policy
from paless_deploy.core.diagnosis.hints import PRIVILEGED_SIDECAR, job_hint
from paless_deploy.core.diagnosis.kubectl import describe_cmd, events_cmd
from paless_deploy.core.diagnosis.pods import LOG_LINES
from paless_deploy.core.manifests.objects import condition, name_of, namespace_of, nested


def diagnose_replicaset(rs: ApiObject, events: Iterable[ApiObject],
                        policy: Policy | None = None, now: datetime | None = None,
                        not_before: datetime | None = None) -> list[Finding]:
    """FailedCreate of a ReplicaSet (quota, admission) while pods are missing.

    `not_before`: a ReplicaFailure condition that turned true before it (the refusal of an
    earlier apply, fixed since, until the controller's next sync) is no evidence."""
    return _create_failed(rs, events, "ReplicaSet", policy, now, not_before)


def diagnose_statefulset(sts: ApiObject, events: Iterable[ApiObject],
                         policy: Policy | None = None, now: datetime | None = None,
                         not_before: datetime | None = None) -> list[Finding]:
    """FailedCreate of a StatefulSet (quota, admission, claim creation) while pods are missing.

    Its pods' failures come from diagnose_pod; `not_before` as for diagnose_replicaset.
    """
    return _create_failed(sts, events, "StatefulSet", policy, now, not_before)


def _create_failed(obj: ApiObject, events: Iterable[ApiObject], kind: str,
                   policy: Policy | None, now: datetime | None,
                   not_before: datetime | None = None) -> list[Finding]:
    policy = (policy or Policy()).for_object(obj)
    want = nested(obj, "spec", "replicas")
    have = nested(obj, "status", "replicas") or 0
    if want is not None and have >= want:
        return []
    failed = eventlog.with_reason(eventlog.about(obj, events), "FailedCreate")
    failed = [e for e in failed if e.get("type", "Warning") == "Warning"]
    cond = condition(obj, "ReplicaFailure")
    cond = cond if cond and cond.get("status") == "True" else None
    turned = eventlog.parse_time((cond or {}).get("lastTransitionTime"))
    if cond and not failed and not_before and turned and turned < not_before:
        cond = None  # an earlier apply's refusal; no fresh event says it still holds
    if not failed and not cond:
        return []
    text = (eventlog.message(failed[-1]) if failed else "") or str((cond or {}).get("message"))
    text = eventlog.strip_combined(text)
    ns, name = namespace_of(obj), name_of(obj)
    since = eventlog.first_seen(failed[0]) if failed else (cond or {}).get("lastTransitionTime")
    commands = [describe_cmd(ns, kind, name), events_cmd(ns, name)]
    if "exceeded quota" in text:
        quota = re.search(r"exceeded quota: ([^,\s]+)", text)
        quota_name = quota.group(1) if quota else ""
        cause = f"the ResourceQuota {quota_name} is exhausted".replace("  ", " ")
        hint = ("Raise the quota's hard limits, lower replicas or requests in the overlay, or "
                "remove what uses the quota in this namespace.")
        commands.insert(0, f"kubectl -n {ns} describe resourcequota {quota_name}".rstrip())
    elif "serviceaccount" in text.lower() and "not found" in text:
        cause = "its ServiceAccount does not exist"
        hint = "Create the ServiceAccount (config phase) or fix serviceAccountName."
    elif "PodSecurity" in text or "violates" in text:
        cause = "the namespace's Pod Security admission rejects the pod"
        hint = ("Adjust the pod's securityContext, or the namespace's "
                f"pod-security.kubernetes.io/enforce label ({PRIVILEGED_SIDECAR}).")
    else:
        cause = "the API server refuses its pods"
        hint = "Read the refusal below and fix the pod template or the admission policy."
    return [policy.decide(Finding(
        code="create-failed", resource=f"{kind}/{name}", reason="FailedCreate",
        message=f"{kind} {name} cannot create pods ({have} of {want} exist): {cause}.",
        hint=hint, commands=tuple(commands), evidence=(f"FailedCreate: {text}",)),
        policy.past_grace(since, now))]


def diagnose_deployment(dep: ApiObject, events: Iterable[ApiObject],
                        policy: Policy | None = None) -> list[Finding]:
    """ProgressDeadlineExceeded (FailedCreate is reported on the ReplicaSet, pods on themselves)."""
    policy = policy or Policy()
    cond = condition(dep, "Progressing")
    if not cond or cond.get("status") != "False" or cond.get("reason") != "ProgressDeadlineExceeded":
        return []
    ns, name = namespace_of(dep), name_of(dep)
    deadline = nested(dep, "spec", "progressDeadlineSeconds")
    desired = nested(dep, "spec", "replicas")
    available = nested(dep, "status", "availableReplicas") or 0
    return [policy.decide(Finding(
        code="progress-deadline", resource=f"Deployment/{name}",
        reason="ProgressDeadlineExceeded",
        message=(f"Deployment {name} made no progress for {deadline}s (progressDeadlineSeconds): "
                 f"{available} of {desired} replicas available."),
        hint=("Its pods say why (image, crash, readiness, scheduling): read them with the "
              "commands below; raise progressDeadlineSeconds only if the pods are merely slow."),
        commands=(f"kubectl -n {ns} rollout status deployment/{name}",
                  describe_cmd(ns, "deployment", name),
                  f"kubectl -n {ns} get pods -o wide"),
        evidence=(f"Progressing: {cond.get('message', '')}",
                  *eventlog.unique_messages(w for w in eventlog.about(dep, events)
                                   if w.get("type") == "Warning"))), True)]


def diagnose_job(job: ApiObject, events: Iterable[ApiObject],
                 policy: Policy | None = None, *, pods: Iterable[ApiObject] = (),
                 logs: str | None = None) -> list[Finding]:
    """A Job's Failed (or FailureTarget) condition: BackoffLimitExceeded, DeadlineExceeded, ...

    `pods` (the Job's pods) add their last container states; `logs` the failed pod's last
    log lines, as the engine fetched them.
    """
    policy = policy or Policy()
    conds = {c.get("type"): c for c in nested(job, "status", "conditions") or []
             if c.get("status") == "True"}
    cond = conds.get("Failed") or conds.get("FailureTarget")
    if not cond:
        return []
    ns, name = namespace_of(job), name_of(job)
    reason = str(cond.get("reason") or "Failed")
    failed = nested(job, "status", "failed") or 0
    if reason == "DeadlineExceeded":
        cause = (f"Job {name} ran longer than activeDeadlineSeconds "
                 f"({nested(job, 'spec', 'activeDeadlineSeconds')}s).")
        hint = ("Find why it hangs in its logs (a dependency not answering?), or raise "
                "activeDeadlineSeconds.")
    else:
        limit = nested(job, "spec", "backoffLimit")
        cause = (f"Job {name} failed: {failed} pod(s) failed, backoffLimit "
                 f"{6 if limit is None else limit} reached ({reason}).")
        hint = "Read its logs for the cause."
    hint = job_hint(name) or hint
    hint += (" Jobs are immutable: fix the cause and deploy again (a changed Job is "
             "replaced; an unchanged failed one must be deleted first: "
             f"`kubectl -n {ns} delete job {name}`).")
    evidence = [f"{reason}: {cond.get('message', '')}".rstrip(": ")]
    for pod in pods:
        for status in nested(pod, "status", "containerStatuses") or []:
            term = nested(status, "state", "terminated") or nested(status, "lastState",
                                                                   "terminated")
            if term and term.get("exitCode"):
                evidence.append(f"pod {name_of(pod)} container {status.get('name')}: terminated "
                                f"{term.get('reason', 'Error')} with exit code {term['exitCode']}")
    if logs:
        evidence += [f"log: {line}" for line in logs.splitlines() if line.strip()][-LOG_LINES:]
    return [policy.decide(Finding(
        code="job-failed", resource=f"Job/{name}", reason=reason, message=cause,
        hint=hint.strip(),
        commands=(f"kubectl -n {ns} logs job/{name} --all-containers",
                  describe_cmd(ns, "job", name), f"kubectl -n {ns} get pods -l job-name={name}"),
        evidence=tuple(evidence)), True)]
