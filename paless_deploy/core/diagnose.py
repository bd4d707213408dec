"""Diagnosis: turn pod, workload, Job and PVC status plus events into Findings.

Pure functions over API JSON (camelCase dicts as the API server returns them); the wait
stage calls them on every watch event so that a failure is reported within seconds.

Codes (stable: the JSON report's `errors[].code`, listed in the README):

| code | detected from | fatal (default policy) |
| --- | --- | --- |
| `image-pull` | container waiting ErrImagePull / ImagePullBackOff / InvalidImageName | at once when the registry says not found / unauthorized / no such host / HTTP vs HTTPS, else after the grace period |
| `crash-loop` | container CrashLoopBackOff, or restarted after exiting non-zero | when restarts exceed `allowed_restarts` |
| `oom-killed` | container (last) terminated with reason OOMKilled | when restarts exceed `allowed_restarts` |
| `config-error` | container waiting CreateContainerConfigError (missing Secret/ConfigMap or key) | after the grace period (the object may arrive in the same apply) |
| `unschedulable` | PodScheduled=False Unschedulable / FailedScheduling | at once when the requests exceed the largest node's allocatable; after the grace period when no node matches selector/affinity/taints; otherwise tolerated (capacity may free up, a claim may bind) |
| `mount-failed` | FailedMount / FailedAttachVolume events of a pod whose containers did not start | after the grace period when a Secret/ConfigMap/claim is not found; otherwise tolerated |
| `not-ready` | containers running but not ready (readiness probe failing: Unhealthy events) | never: the progress deadline decides |
| `create-failed` | ReplicaSet / StatefulSet FailedCreate (quota, admission, missing ServiceAccount) | after the grace period |
| `progress-deadline` | Deployment Progressing=False ProgressDeadlineExceeded | at once |
| `job-failed` | Job Failed (or FailureTarget): BackoffLimitExceeded, DeadlineExceeded, ... | at once |
| `pvc-pending` | PVC Pending, no PV matches (FailedBinding) | never: the progress deadline decides |
| `provisioning-failed` | PVC ProvisioningFailed event (missing StorageClass, provisioner error) | after the grace period |
| `deadline` | the overall `--timeout` passed (`deadline_finding`) | at once |
| `missing-reference` | preflight: a Secret/ConfigMap/claim or key a pod template needs does not exist | at once |
| `missing-image` | preflight: an image of ours is not in the registry | at once |

A PVC Pending under a WaitForFirstConsumer StorageClass is not a finding at all.
`Policy(tolerate_all=True)` (the CLI's tolerate flag) makes every finding non-fatal: the
progress deadline then decides. Per object, the annotations `paless.io/allowed-restarts`
and `paless.io/failure-grace` (on the object or its pod template) tune the policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from paless_deploy.core.config import parse_duration
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.podspec import (
    pod_containers,
    pod_spec,
    spec_container,
    template_annotations,
)
from paless_deploy.core.quantities import cpu_millicores, format_bytes, memory_bytes
from paless_deploy.core.report import ErrorReport

ANNOTATION_ALLOWED_RESTARTS = "paless.io/allowed-restarts"
ANNOTATION_FAILURE_GRACE = "paless.io/failure-grace"

CODES: dict[str, str] = {
    "image-pull": "an image cannot be pulled",
    "crash-loop": "a container keeps exiting and restarting",
    "oom-killed": "a container was killed for exceeding its memory limit",
    "config-error": "a container cannot be created: a Secret/ConfigMap or key is missing",
    "unschedulable": "no node can run the pod",
    "mount-failed": "a volume cannot be mounted",
    "not-ready": "containers run but never become ready",
    "create-failed": "a controller cannot create pods (quota, admission)",
    "progress-deadline": "a Deployment made no progress within its deadline",
    "job-failed": "a Job failed",
    "pvc-pending": "a volume claim is not bound",
    "provisioning-failed": "a volume cannot be provisioned",
    "deadline": "the overall deadline passed",
    "missing-reference": "a referenced Secret/ConfigMap/claim or key does not exist",
    "missing-image": "an image is not in the registry",
}

NODES_CMD = ("kubectl get nodes -o custom-columns=NAME:.metadata.name,CPU:.status.allocatable.cpu,"
             "MEMORY:.status.allocatable.memory,TAINTS:.spec.taints[*].key")
PVS_CMD = ("kubectl get pv -o custom-columns=NAME:.metadata.name,CLASS:.spec.storageClassName,"
           "CAPACITY:.spec.capacity.storage,MODES:.spec.accessModes,STATUS:.status.phase,"
           "CLAIM:.spec.claimRef.name")
LOG_LINES = 10  # last log lines kept as evidence
DATA_SERVICES = ("postgres", "redis", "minio")


@dataclass(frozen=True)
class Finding:
    """One diagnosed failure: what, why, how to fix it, and whether it ends the deploy now."""

    code: str
    resource: str  # "Kind/name"
    reason: str  # the Kubernetes reason (ImagePullBackOff, FailedCreate, ...)
    message: str  # the cause, one sentence
    hint: str  # the fix
    commands: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    fatal: bool = True

    def to_error_report(self) -> ErrorReport:
        """The design's JSON error object (evidence is for people, not the report)."""
        return ErrorReport(code=self.code, resource=self.resource, reason=self.reason,
                           message=self.message, hint=self.hint, commands=list(self.commands))


@dataclass(frozen=True)
class NodeCapacity:
    """Allocatable CPU (millicores) and memory (bytes) of one node."""

    cpu_m: int
    memory: int


@dataclass(frozen=True)
class Policy:
    """When a detected condition fails the deploy at once and when it is tolerated."""

    tolerate_all: bool = False
    allowed_restarts: int = 3
    grace_s: float = 10.0
    node_count: int = 1
    registry: str = ""
    largest_node: NodeCapacity | None = field(default=None)

    def for_object(self, obj: Mapping[str, Any]) -> Policy:
        """This policy tuned by the object's (or its pod template's) annotations.

        The pod template's annotations win over the object's own; a bad value is a
        ConfigError naming the object and the annotation.
        """
        annotations = dict(_get(obj, "metadata", "annotations") or {})
        annotations.update(template_annotations(obj))
        policy = self
        if ANNOTATION_ALLOWED_RESTARTS in annotations:
            text = str(annotations[ANNOTATION_ALLOWED_RESTARTS]).strip()
            if not text.isdigit():
                raise ConfigError(
                    f"{_resource(obj)}: annotation {ANNOTATION_ALLOWED_RESTARTS}={text!r} "
                    "is not a whole number.",
                    "Set it to the number of restarts to tolerate, e.g. \"5\".")
            policy = replace(policy, allowed_restarts=int(text))
        if ANNOTATION_FAILURE_GRACE in annotations:
            policy = replace(policy, grace_s=parse_duration(
                str(annotations[ANNOTATION_FAILURE_GRACE]),
                f"{_resource(obj)}: annotation {ANNOTATION_FAILURE_GRACE}"))
        return policy

    def with_nodes(self, nodes: Iterable[Mapping[str, Any]]) -> Policy:
        """This policy with the node count and the largest allocatable of the cluster."""
        caps = [NodeCapacity(cpu_millicores(_get(n, "status", "allocatable", "cpu")),
                             memory_bytes(_get(n, "status", "allocatable", "memory")))
                for n in nodes]
        if not caps:
            return self
        return replace(self, node_count=len(caps), largest_node=NodeCapacity(
            max(c.cpu_m for c in caps), max(c.memory for c in caps)))

    def decide(self, finding: Finding, fatal: bool) -> Finding:
        """The finding with its fatal flag, unless every failure is tolerated."""
        return replace(finding, fatal=fatal and not self.tolerate_all)


# --- small readers --------------------------------------------------------------------------

def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def _name(obj: Mapping[str, Any]) -> str:
    return str(_get(obj, "metadata", "name") or "")


def _namespace(obj: Mapping[str, Any]) -> str:
    return str(_get(obj, "metadata", "namespace") or "default")


def _resource(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind', 'Object')}/{_name(obj)}"


def parse_time(text: str | None) -> datetime | None:
    """An API timestamp (RFC 3339) as an aware datetime, or None."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def _age(since: str | None, now: datetime | None) -> float:
    """Seconds from `since` to `now`; infinite when either is unknown (judge on state alone)."""
    start = parse_time(since)
    if start is None or now is None:
        return float("inf")
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return (now - start).total_seconds()


# --- events -----------------------------------------------------------------------------------

def events_for(obj: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> list[dict]:
    """The events about `obj` (core/v1 or events.k8s.io/v1 shape), oldest first."""
    uid = _get(obj, "metadata", "uid")
    kind, name = obj.get("kind"), _name(obj)
    mine = []
    for event in events:
        about = event.get("involvedObject") or event.get("regarding") or {}
        if uid and about.get("uid"):
            if about.get("uid") == uid:
                mine.append(dict(event))
        elif about.get("kind") == kind and about.get("name") == name:
            mine.append(dict(event))
    return sorted(mine, key=lambda e: _event_last(e) or "")


def _event_message(event: Mapping[str, Any]) -> str:
    return str(event.get("message") or event.get("note") or "").strip()


def _event_first(event: Mapping[str, Any]) -> str | None:
    return event.get("firstTimestamp") or event.get("eventTime") or event.get("lastTimestamp")


def _event_last(event: Mapping[str, Any]) -> str | None:
    return (event.get("lastTimestamp") or _get(event, "series", "lastObservedTime")
            or event.get("eventTime") or event.get("firstTimestamp"))


def _with_reason(events: Iterable[Mapping[str, Any]], *reasons: str) -> list[dict]:
    return [dict(e) for e in events if e.get("reason") in reasons]


def _unique_messages(events: Iterable[Mapping[str, Any]], limit: int = 3) -> tuple[str, ...]:
    seen: list[str] = []
    for event in reversed(list(events)):  # newest first
        text = _event_message(event)
        # "(combined from similar events): " is the event recorder's own prefix
        text = text.removeprefix("(combined from similar events): ")
        if text and text not in seen:
            seen.append(f"{event.get('reason')}: {text}" if event.get("reason") else text)
        if len(seen) >= limit:
            break
    return tuple(dict.fromkeys(seen))


# --- commands -----------------------------------------------------------------------------------

def _describe(ns: str, kind: str, name: str) -> str:
    return f"kubectl -n {ns} describe {kind.lower()} {name}"


def _events_cmd(ns: str, name: str) -> str:
    return (f"kubectl -n {ns} get events --field-selector involvedObject.name={name} "
            "--sort-by=.lastTimestamp")


def _logs_cmd(ns: str, pod: str, container: str, previous: bool = True) -> str:
    return f"kubectl -n {ns} logs {pod} -c {container}" + (" --previous" if previous else "")


# --- pods ---------------------------------------------------------------------------------------

def pod_owner(pod: Mapping[str, Any]) -> str:
    """The workload behind a pod as "Kind/name" (the Deployment for a ReplicaSet's pod)."""
    for ref in _get(pod, "metadata", "ownerReferences") or []:
        if not ref.get("controller", True):
            continue
        kind, name = ref.get("kind", ""), ref.get("name", "")
        template_hash = _get(pod, "metadata", "labels", "pod-template-hash")
        if kind == "ReplicaSet" and template_hash and name.endswith(f"-{template_hash}"):
            return f"Deployment/{name[: -len(template_hash) - 1]}"
        return f"{kind}/{name}"
    return ""


def _is_data_service(name: str) -> bool:
    return any(service in name for service in DATA_SERVICES)


def diagnose_pod(pod: Mapping[str, Any], events: Iterable[Mapping[str, Any]],
                 policy: Policy | None = None, now: datetime | None = None, *,
                 logs: Mapping[str, str] | str | None = None,
                 unready_services: Iterable[str] = ()) -> list[Finding]:
    """Every failure visible on one pod, most specific first.

    `events` may be all events of the namespace (they are filtered to the pod);
    `logs` are the previous container instance's log lines (one string, or a mapping of
    container name to string) as the engine fetched them; `unready_services` names the
    data services (postgres, redis, minio) not ready yet, for the dependency hints;
    `now` (aware UTC) measures grace periods; None judges on state alone.
    """
    policy = (policy or Policy()).for_object(pod)
    mine = events_for(pod, events)
    unready = tuple(unready_services)
    ctx = _PodContext(pod, mine, policy, now, logs, unready)
    findings: list[Finding] = []
    if _get(pod, "metadata", "deletionTimestamp"):
        return findings  # a pod on its way out is not a failure of this deploy
    unschedulable = ctx.unschedulable()
    if unschedulable:
        return [unschedulable]
    statuses = [*(_get(pod, "status", "initContainerStatuses") or []),
                *(_get(pod, "status", "containerStatuses") or [])]
    for status in statuses:
        finding = ctx.container(status)
        if finding:
            findings.append(finding)
    if not any(f.code in ("image-pull", "config-error") for f in findings):
        mount = ctx.mount_failed(statuses)
        if mount:
            findings.append(mount)
    if not findings:
        not_ready = ctx.not_ready(statuses)
        if not_ready:
            findings.append(not_ready)
    return findings


_DEFINITE_PULL = re.compile(
    r"not found|notfound|manifest unknown|unauthorized|authentication required|denied|"
    r"forbidden|no such host|server gave HTTP response to HTTPS client|InvalidImageName|"
    r"invalid reference format", re.IGNORECASE)
_CONFIG_KEY = re.compile(r"couldn't find key (\S+) in (Secret|ConfigMap) (?:([^/\s]+)/)?(\S+)")
_CONFIG_OBJECT = re.compile(r"(secret|configmap) \"([^\"]+)\" not found", re.IGNORECASE)
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def image_registry_host(image: str) -> str:
    """The registry host of an image reference ("docker.io" for Docker Hub names)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


class _PodContext:
    """What the per-container checks of one pod share."""

    def __init__(self, pod: Mapping[str, Any], events: list[dict], policy: Policy,
                 now: datetime | None, logs: Mapping[str, str] | str | None,
                 unready: tuple[str, ...]) -> None:
        self.pod, self.events, self.policy, self.now = pod, events, policy, now
        self.logs, self.unready = logs, unready
        self.ns, self.name = _namespace(pod), _name(pod)
        self.resource = f"Pod/{self.name}"
        owner = pod_owner(pod)
        self.owner_kind = owner.partition("/")[0]
        self.of = f" of {owner}" if owner else ""
        self.started = _get(pod, "status", "startTime") or _get(pod, "metadata",
                                                                "creationTimestamp")

    def finding(self, code: str, reason: str, message: str, hint: str, fatal: bool,
                commands: Sequence[str] = (), evidence: Sequence[str] = ()) -> Finding:
        base = (_describe(self.ns, "pod", self.name), _events_cmd(self.ns, self.name))
        return self.policy.decide(Finding(
            code=code, resource=self.resource, reason=reason, message=message, hint=hint,
            commands=tuple(dict.fromkeys([*commands, *base])), evidence=tuple(evidence)), fatal)

    def after_grace(self, since: str | None) -> bool:
        return _age(since, self.now) >= self.policy.grace_s

    def log_tail(self, container: str) -> tuple[str, ...]:
        text = self.logs.get(container) if isinstance(self.logs, Mapping) else self.logs
        if not text:
            return ()
        lines = [line for line in str(text).splitlines() if line.strip()]
        return tuple(f"log: {line}" for line in lines[-LOG_LINES:])

    # -- scheduling ------------------------------------------------------------------------------

    def unschedulable(self) -> Finding | None:
        cond = next((c for c in _get(self.pod, "status", "conditions") or []
                     if c.get("type") == "PodScheduled"), None)
        failed = _with_reason(self.events, "FailedScheduling")
        if _get(self.pod, "spec", "nodeName") or (cond and cond.get("status") == "True"):
            return None
        if not (cond and cond.get("reason") == "Unschedulable") and not failed:
            return None
        text = (cond or {}).get("message") or (_event_message(failed[-1]) if failed else "")
        since = (cond or {}).get("lastTransitionTime") or (
            _event_first(failed[0]) if failed else None)
        scheduler = text.split(" preemption:")[0].removesuffix(" no new claims to deallocate,")
        scheduler = scheduler.rstrip(". ,") + "."
        evidence = (f"scheduler: {text}",)
        commands: list[str] = [NODES_CMD]
        claims = [v["persistentVolumeClaim"]["claimName"]
                  for v in _get(self.pod, "spec", "volumes") or [] if v.get("persistentVolumeClaim")]
        if "unbound" in text and "PersistentVolumeClaim" in text:
            names = ", ".join(claims) or "its claims"
            return self.finding(
                "unschedulable", "Unschedulable",
                f"Pod {self.name}{self.of} cannot be scheduled: its volume claim ({names}) is "
                "not bound to a volume.",
                "Make the claim bind: create the PersistentVolume it expects (the storage phase) "
                "or give it a StorageClass that provisions volumes; `kubectl describe pvc` "
                "says why it is pending.",
                fatal=False,
                commands=[f"kubectl -n {self.ns} get pvc", *(
                    _describe(self.ns, "pvc", c) for c in claims)],
                evidence=evidence)
        if "Insufficient" in text:
            requests = pod_requests(self.pod)
            node = self.policy.largest_node
            too_big = []
            if node is not None:
                if "Insufficient cpu" in text and requests.cpu_m > node.cpu_m:
                    too_big.append(f"cpu {requests.cpu_m}m > {node.cpu_m}m")
                if "Insufficient memory" in text and requests.memory > node.memory:
                    too_big.append(f"memory {format_bytes(requests.memory)} > "
                                   f"{format_bytes(node.memory)}")
            wanted = f"cpu {requests.cpu_m}m, memory {format_bytes(requests.memory)}"
            if too_big:
                message = (f"Pod {self.name}{self.of} requests more than any node can offer "
                           f"({'; '.join(too_big)} allocatable on the largest node).")
                hint = ("Lower resources.requests of its containers in the overlay, or add a "
                        "node large enough.")
            else:
                message = (f"Pod {self.name}{self.of} cannot be scheduled: {scheduler} "
                           f"It requests {wanted}.")
                hint = ("Free capacity (scale something down), lower resources.requests in "
                        "the overlay, or add nodes.")
            return self.finding("unschedulable", "Unschedulable", message, hint,
                                fatal=bool(too_big), commands=commands, evidence=evidence)
        spec = self.pod.get("spec") or {}
        if "affinity/selector" in text or "untolerated taint" in text:
            selector = spec.get("nodeSelector")
            detail = f" (nodeSelector {selector})" if selector else ""
            if "untolerated taint" in text:
                hint = ("Add a matching toleration to the pod template, or remove the taint "
                        "from a node (`kubectl taint nodes NODE KEY-`).")
            else:
                hint = ("Fix nodeSelector/affinity in the overlay, or label a node to match "
                        "(`kubectl label node NODE KEY=VALUE`).")
            return self.finding(
                "unschedulable", "Unschedulable",
                f"Pod {self.name}{self.of} matches no node{detail}: {scheduler}", hint,
                fatal=self.after_grace(since), commands=[*commands, "kubectl get nodes --show-labels"],
                evidence=evidence)
        return self.finding(
            "unschedulable", "Unschedulable",
            f"Pod {self.name}{self.of} cannot be scheduled: {scheduler}",
            "Read the scheduler's reason above and adjust the pod's requests, selectors or "
            "the cluster's nodes.", fatal=False, commands=commands, evidence=evidence)

    # -- containers ------------------------------------------------------------------------------

    def container(self, status: Mapping[str, Any]) -> Finding | None:
        name = str(status.get("name") or "")
        waiting = _get(status, "state", "waiting") or {}
        reason = waiting.get("reason") or ""
        if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"):
            return self.image_pull(status, reason, waiting.get("message") or "")
        if reason in ("CreateContainerConfigError", "CreateContainerError"):
            return self.config_error(name, reason, waiting.get("message") or "")
        terminated = (_get(status, "state", "terminated")
                      or _get(status, "lastState", "terminated") or {})
        restarts = int(status.get("restartCount") or 0)
        if self.owner_kind == "Job" or _get(self.pod, "spec", "restartPolicy") == "Never":
            return None  # the Job's backoffLimit decides; diagnose_job explains
        if terminated.get("reason") == "OOMKilled":
            return self.oom(status, terminated, restarts)
        if reason == "CrashLoopBackOff" or (restarts > 0 and terminated.get("exitCode")):
            return self.crash_loop(status, terminated, restarts)
        return None

    def image_pull(self, status: Mapping[str, Any], reason: str, message: str) -> Finding:
        name = str(status.get("name") or "")
        image = str(status.get("image") or spec_container(self.pod, name).get("image") or "")
        pulls = [e for e in self.events if e.get("reason") in ("Failed", "ErrImagePull")
                 and "pull" in _event_message(e).lower()]
        texts = [message, *(_event_message(e) for e in pulls)]
        combined = " ".join(texts)
        definite = bool(_DEFINITE_PULL.search(combined)) or reason == "InvalidImageName"
        host = image_registry_host(image)
        bare_host = host.split(":")[0]
        ours = self.policy.registry and image_registry_host(self.policy.registry + "/x") == host
        registries = ("On k3s, every node must be able to pull from it: declare the registry "
                      "in /etc/rancher/k3s/registries.yaml on each node (an `http://` endpoint "
                      "for a plain-HTTP registry) and restart k3s.")
        if bare_host in _LOCAL_HOSTS and self.policy.node_count > 1:
            hint = (f"{host} means each node itself: on a {self.policy.node_count}-node cluster "
                    "only the node running the registry can pull from it. Push to a registry "
                    f"host all nodes reach (REGISTRY). {registries}")
            definite = True
        elif re.search(r"no such host|server gave HTTP response|x509|tls:", combined, re.IGNORECASE) or (
                host != "docker.io" and not ours and re.search(r"dial tcp|connection refused",
                                                               combined, re.IGNORECASE)):
            hint = f"The nodes cannot reach the registry {host}. {registries}"
        elif re.search(r"unauthorized|authentication required|denied|forbidden", combined, re.IGNORECASE):
            hint = (f"The registry {host} refused the pull: add imagePullSecrets to the pod "
                    f"template or registry credentials to /etc/rancher/k3s/registries.yaml.")
        elif re.search(r"not found|manifest unknown", combined, re.IGNORECASE):
            hint = (f"The image {image} is not in the registry: push it (`paless-deploy push`) "
                    "or correct the tag in the overlay.")
        else:
            hint = (f"Check that {image} exists and that the nodes can reach {host}; "
                    f"`docker pull {image}` from a node reproduces the error.")
        evidence = [f"container {name}: {reason}: {message}".rstrip(": ")]
        evidence += list(_unique_messages(pulls))
        return self.finding(
            "image-pull", reason,
            f"Container {name} of pod {self.name}{self.of} cannot pull image {image}.", hint,
            fatal=definite or self.after_grace(self.started), evidence=evidence)

    def config_error(self, name: str, reason: str, message: str) -> Finding:
        key = _CONFIG_KEY.search(message)
        obj = _CONFIG_OBJECT.search(message)
        commands: list[str] = []
        if key:
            missing = f"key {key.group(1)} in {key.group(2)} {key.group(4)}"
            hint = (f"Add the key {key.group(1)} to {key.group(2)} {key.group(4)}"
                    + (" (it is rendered from k8s/base/config.yaml: add the key there, its "
                       "value from a ${VARIABLE})"
                       if key.group(4) == "paless-secret" else "")
                    + ", or fix the reference in the pod template.")
            commands.append(_describe(self.ns, key.group(2), key.group(4)))
        elif obj:
            kind = "Secret" if obj.group(1).lower() == "secret" else "ConfigMap"
            missing = f"{kind} {obj.group(2)}"
            hint = (f"Create the {kind} {obj.group(2)} in namespace {self.ns} (it belongs to "
                    "the config phase of the overlay), or fix the reference.")
            commands.append(f"kubectl -n {self.ns} get {kind.lower()}s")
        else:
            missing = "part of its configuration"
            hint = "Fix the container configuration named in the message (env, volumes, "\
                   "securityContext)."
        return self.finding(
            "config-error", reason,
            f"Container {name} of pod {self.name}{self.of} cannot be created: {missing} is "
            "missing.", hint, fatal=self.after_grace(self.started), commands=commands,
            evidence=[f"container {name}: {reason}: {message}".rstrip(": ")])

    def oom(self, status: Mapping[str, Any], terminated: Mapping[str, Any],
            restarts: int) -> Finding:
        name = str(status.get("name") or "")
        limit = _get(spec_container(self.pod, name), "resources", "limits", "memory")
        state = (f"container {name}: terminated OOMKilled (exit code "
                 f"{terminated.get('exitCode', 137)}), restarts {restarts}")
        now_limit = f"its limit is {limit}" if limit else "it has no memory limit (the node ran out)"
        hint = (f"Raise resources.limits.memory of container {name} in the overlay "
                f"({'now ' + str(limit) if limit else 'none set'}), or reduce its memory use "
                "(worker: fewer PAPERLESS_TASK_WORKERS).")
        return self.finding(
            "oom-killed", "OOMKilled",
            f"Container {name} of pod {self.name}{self.of} was killed for exceeding its memory: "
            f"{now_limit}; {restarts} restart(s).", hint,
            fatal=restarts > self.policy.allowed_restarts,
            commands=[_logs_cmd(self.ns, self.name, name)],
            evidence=[state, *self.log_tail(name)])

    def crash_loop(self, status: Mapping[str, Any], terminated: Mapping[str, Any],
                   restarts: int) -> Finding:
        name = str(status.get("name") or "")
        code, why = terminated.get("exitCode"), terminated.get("reason") or "Error"
        tail = self.log_tail(name)
        logs_text = " ".join(tail).lower()
        if name == "rclone":
            hint = _rclone_hint(logs_text, self.unready)
        elif not _is_data_service(name) and any(s in self.unready for s in ("postgres", "redis")):
            waiting_for = " and ".join(s for s in ("postgres", "redis") if s in self.unready)
            hint = (f"{waiting_for} is not ready yet: app containers exit when the database or "
                    "Redis does not answer. The phases deploy data services first; check their "
                    f"pods (`kubectl -n {self.ns} get pods -l app.kubernetes.io/component="
                    f"{waiting_for.split()[0]}`).")
        else:
            hint = (f"Read why container {name} exits in its previous logs, fix the cause "
                    "(configuration, command, dependency), and deploy again.")
        state = f"container {name}: last terminated {why} with exit code {code}, " \
                f"restarts {restarts}"
        evidence = [state, *tail]
        return self.finding(
            "crash-loop", "CrashLoopBackOff",
            f"Container {name} of pod {self.name}{self.of} keeps exiting (exit code {code}, "
            f"{why}); {restarts} restart(s).", hint,
            fatal=restarts > self.policy.allowed_restarts,
            commands=[_logs_cmd(self.ns, self.name, name)], evidence=evidence)

    # -- volumes and readiness -----------------------------------------------------------------

    def mount_failed(self, statuses: list[dict]) -> Finding | None:
        if any(_get(s, "state", "running") for s in statuses):
            return None  # mounted by now: old events only
        failed = _with_reason(self.events, "FailedMount", "FailedAttachVolume")
        if not failed:
            return None
        latest = _event_message(failed[-1])
        volume = re.search(r"volume \"([^\"]+)\"", latest)
        missing = re.search(r"(secret|configmap|persistentvolumeclaim)s? \"([^\"]+)\" not found",
                            latest, re.IGNORECASE)
        what = f"volume {volume.group(1)}" if volume else "a volume"
        if missing:
            hint = (f"Create the {missing.group(1)} {missing.group(2)} in namespace {self.ns} or "
                    "fix the volume's reference in the pod template.")
        elif "fuse" in latest.lower():
            hint = "The node needs FUSE (/dev/fuse) and the rclone sidecar must be privileged."
        else:
            hint = ("Check the volume's source (claim bound? node can reach the storage?); the "
                    "kubelet retries, so a transient error clears by itself.")
        return self.finding(
            "mount-failed", str(failed[-1].get("reason")),
            f"Pod {self.name}{self.of} cannot mount {what}.", hint,
            fatal=bool(missing) and self.after_grace(_event_first(failed[0])),
            evidence=_unique_messages(failed))

    def not_ready(self, statuses: list[dict]) -> Finding | None:
        if _get(self.pod, "status", "phase") != "Running" or not statuses:
            return None
        unready = [s for s in statuses if _get(s, "state", "running") and not s.get("ready")]
        if not unready:
            return None
        unhealthy = _with_reason(self.events, "Unhealthy")
        started = min((_get(s, "state", "running", "startedAt") or "" for s in unready),
                      default=None)
        if not unhealthy and not self.after_grace(started):
            return None
        names = ", ".join(s.get("name", "") for s in unready)
        deps = [s for s in self.unready if s != names]
        hint = (f"Check the readiness probe of {names} and its logs"
                + (f"; it may wait for {', '.join(deps)}, not ready yet" if deps else "")
                + ". Readiness failing keeps the pod out of its Service; the progress deadline "
                "decides.")
        return self.finding(
            "not-ready", "Unhealthy" if unhealthy else "ContainersNotReady",
            f"Container(s) {names} of pod {self.name}{self.of} run but are not ready.", hint,
            fatal=False, commands=[_logs_cmd(self.ns, self.name, unready[0].get("name", ""),
                                             previous=False)],
            evidence=_unique_messages(unhealthy) or (f"containers running, not ready: {names}",))


def _rclone_hint(logs: str, unready: tuple[str, ...]) -> str:
    """The Paless troubleshooting table for the rclone media sidecar."""
    if "fuse" in logs or "permission denied" in logs or "operation not permitted" in logs:
        return ("rclone cannot use FUSE: the sidecar must run with securityContext.privileged: "
                "true and the node needs /dev/fuse.")
    if "minio" in unready or re.search(r"connection refused|no such host|dial tcp|timeout", logs):
        return ("rclone cannot reach MinIO (minio:9000): check the MinIO pod and the bucket "
                "Job's logs; the object-storage phases must be ready first.")
    if re.search(r"credential|access ?key|signature|config file|not found|didn't find", logs):
        return ("rclone's credentials or configuration are wrong: check the keys "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY it takes from the Secret and the "
                "rclone-config ConfigMap, then recreate the pod.")
    return ("The rclone media sidecar exits. Usual causes: not privileged (FUSE permission "
            "denied: set privileged: true), MinIO not ready (check the MinIO pod and the bucket "
            "Job), wrong credentials or missing rclone-config ConfigMap. Its logs tell which.")


def pod_requests(pod: Mapping[str, Any]) -> NodeCapacity:
    """The pod's effective requests: containers summed, or the largest init container."""
    spec = pod_spec(pod) or {}

    def total(containers: list[dict]) -> NodeCapacity:
        return NodeCapacity(
            sum(cpu_millicores(_get(c, "resources", "requests", "cpu")) for c in containers),
            sum(memory_bytes(_get(c, "resources", "requests", "memory")) for c in containers))

    main = total(spec.get("containers") or [])
    inits = [total([c]) for c in spec.get("initContainers") or []]
    return NodeCapacity(max([main.cpu_m, *(i.cpu_m for i in inits)]),
                        max([main.memory, *(i.memory for i in inits)]))


# --- controllers --------------------------------------------------------------------------------

def _create_failed(obj: Mapping[str, Any], events: Iterable[Mapping[str, Any]], kind: str,
                   policy: Policy | None, now: datetime | None) -> list[Finding]:
    policy = (policy or Policy()).for_object(obj)
    want = _get(obj, "spec", "replicas")
    have = _get(obj, "status", "replicas") or 0
    if want is not None and have >= want:
        return []
    failed = _with_reason(events_for(obj, events), "FailedCreate")
    failed = [e for e in failed if e.get("type", "Warning") == "Warning"]
    cond = next((c for c in _get(obj, "status", "conditions") or []
                 if c.get("type") == "ReplicaFailure" and c.get("status") == "True"), None)
    if not failed and not cond:
        return []
    text = (_event_message(failed[-1]) if failed else "") or str((cond or {}).get("message"))
    text = text.removeprefix("(combined from similar events): ")
    ns, name = _namespace(obj), _name(obj)
    since = _event_first(failed[0]) if failed else (cond or {}).get("lastTransitionTime")
    commands = [_describe(ns, kind, name), _events_cmd(ns, name)]
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
                "pod-security.kubernetes.io/enforce label (the rclone sidecar needs privileged).")
    else:
        cause = "the API server refuses its pods"
        hint = "Read the refusal below and fix the pod template or the admission policy."
    return [policy.decide(Finding(
        code="create-failed", resource=f"{kind}/{name}", reason="FailedCreate",
        message=f"{kind} {name} cannot create pods ({have} of {want} exist): {cause}.",
        hint=hint, commands=tuple(commands), evidence=(f"FailedCreate: {text}",)),
        _age(since, now) >= policy.grace_s)]


def diagnose_replicaset(rs: Mapping[str, Any], events: Iterable[Mapping[str, Any]],
                        policy: Policy | None = None,
                        now: datetime | None = None) -> list[Finding]:
    """FailedCreate of a ReplicaSet (quota, admission) while pods are missing."""
    return _create_failed(rs, events, "ReplicaSet", policy, now)


def diagnose_statefulset(sts: Mapping[str, Any], events: Iterable[Mapping[str, Any]],
                         policy: Policy | None = None,
                         now: datetime | None = None) -> list[Finding]:
    """FailedCreate of a StatefulSet (quota, admission, claim creation) while pods are missing.

    Its pods' failures come from diagnose_pod.
    """
    return _create_failed(sts, events, "StatefulSet", policy, now)


def diagnose_deployment(dep: Mapping[str, Any], events: Iterable[Mapping[str, Any]],
                        policy: Policy | None = None) -> list[Finding]:
    """ProgressDeadlineExceeded (FailedCreate is reported on the ReplicaSet, pods on themselves)."""
    policy = policy or Policy()
    cond = next((c for c in _get(dep, "status", "conditions") or []
                 if c.get("type") == "Progressing"), None)
    if not cond or cond.get("status") != "False" or cond.get("reason") != "ProgressDeadlineExceeded":
        return []
    ns, name = _namespace(dep), _name(dep)
    deadline = _get(dep, "spec", "progressDeadlineSeconds")
    desired = _get(dep, "spec", "replicas")
    available = _get(dep, "status", "availableReplicas") or 0
    return [policy.decide(Finding(
        code="progress-deadline", resource=f"Deployment/{name}",
        reason="ProgressDeadlineExceeded",
        message=(f"Deployment {name} made no progress for {deadline}s (progressDeadlineSeconds): "
                 f"{available} of {desired} replicas available."),
        hint=("Its pods say why (image, crash, readiness, scheduling): read them with the "
              "commands below; raise progressDeadlineSeconds only if the pods are merely slow."),
        commands=(f"kubectl -n {ns} rollout status deployment/{name}",
                  _describe(ns, "deployment", name),
                  f"kubectl -n {ns} get pods -o wide"),
        evidence=(f"Progressing: {cond.get('message', '')}",
                  *_unique_messages(w for w in events_for(dep, events)
                                    if w.get("type") == "Warning"))), True)]


_JOB_HINTS = {
    "bucket": "The bucket Job fails when MinIO is not ready or the credentials are wrong: "
              "check the MinIO pod and the Job's logs.",
    "init": "The database init Job fails when PostgreSQL is not ready or its SQL fails: "
            "check the postgres pod and the Job's logs.",
    "migrat": "The migration fails when the database is unreachable or the owner role lacks "
              "rights: read the Job's logs.",
}


def diagnose_job(job: Mapping[str, Any], events: Iterable[Mapping[str, Any]],
                 policy: Policy | None = None, *, pods: Iterable[Mapping[str, Any]] = (),
                 logs: str | None = None) -> list[Finding]:
    """A Job's Failed (or FailureTarget) condition: BackoffLimitExceeded, DeadlineExceeded, ...

    `pods` (the Job's pods) add their last container states; `logs` the failed pod's last
    log lines, as the engine fetched them.
    """
    policy = policy or Policy()
    conds = {c.get("type"): c for c in _get(job, "status", "conditions") or []
             if c.get("status") == "True"}
    cond = conds.get("Failed") or conds.get("FailureTarget")
    if not cond:
        return []
    ns, name = _namespace(job), _name(job)
    reason = str(cond.get("reason") or "Failed")
    failed = _get(job, "status", "failed") or 0
    if reason == "DeadlineExceeded":
        cause = (f"Job {name} ran longer than activeDeadlineSeconds "
                 f"({_get(job, 'spec', 'activeDeadlineSeconds')}s).")
        hint = ("Find why it hangs in its logs (a dependency not answering?), or raise "
                "activeDeadlineSeconds.")
    else:
        limit = _get(job, "spec", "backoffLimit")
        cause = (f"Job {name} failed: {failed} pod(s) failed, backoffLimit "
                 f"{6 if limit is None else limit} reached ({reason}).")
        hint = "Read its logs for the cause."
    hint = next((h for key, h in _JOB_HINTS.items() if key in name), hint)
    hint += (" Jobs are immutable: fix the cause and deploy again (a changed Job is "
             "replaced; an unchanged failed one must be deleted first: "
             f"`kubectl -n {ns} delete job {name}`).")
    evidence = [f"{reason}: {cond.get('message', '')}".rstrip(": ")]
    for pod in pods:
        for status in _get(pod, "status", "containerStatuses") or []:
            term = _get(status, "state", "terminated") or _get(status, "lastState", "terminated")
            if term and term.get("exitCode"):
                evidence.append(f"pod {_name(pod)} container {status.get('name')}: terminated "
                                f"{term.get('reason', 'Error')} with exit code {term['exitCode']}")
    if logs:
        evidence += [f"log: {line}" for line in logs.splitlines() if line.strip()][-LOG_LINES:]
    return [policy.decide(Finding(
        code="job-failed", resource=f"Job/{name}", reason=reason, message=cause,
        hint=hint.strip(),
        commands=(f"kubectl -n {ns} logs job/{name} --all-containers",
                  _describe(ns, "job", name), f"kubectl -n {ns} get pods -l job-name={name}"),
        evidence=tuple(evidence)), True)]


def diagnose_pvc(pvc: Mapping[str, Any], events: Iterable[Mapping[str, Any]],
                 storage_class: Mapping[str, Any] | None = None,
                 policy: Policy | None = None, now: datetime | None = None) -> list[Finding]:
    """A claim that is Pending: ProvisioningFailed, or no PV matching (FailedBinding).

    `storage_class` is the claim's class (or the default class when it names none);
    Pending under WaitForFirstConsumer is normal until a pod uses the claim.
    """
    policy = policy or Policy()
    if _get(pvc, "status", "phase") != "Pending" or _get(pvc, "metadata", "deletionTimestamp"):
        return []
    if storage_class and storage_class.get("volumeBindingMode") == "WaitForFirstConsumer":
        return []
    mine = events_for(pvc, events)
    ns, name = _namespace(pvc), _name(pvc)
    spec = pvc.get("spec") or {}
    class_name = spec.get("storageClassName")
    size = _get(spec, "resources", "requests", "storage") or "?"
    modes = ",".join(spec.get("accessModes") or [])
    commands = (_describe(ns, "pvc", name), PVS_CMD, "kubectl get storageclass")
    provisioning = _with_reason(mine, "ProvisioningFailed")
    if provisioning:
        text = _event_message(provisioning[-1])
        if "not found" in text and "storageclass" in text.lower():
            hint = (f"Create the StorageClass {class_name}, or, for statically provisioned "
                    f"volumes, create a PersistentVolume of class {class_name} ({size}, {modes}) "
                    "in the storage phase; STORAGE_CLASS selects the class.")
        else:
            hint = ("The provisioner failed: check its logs and that the class's parameters "
                    "are valid on this cluster.")
        return [policy.decide(Finding(
            code="provisioning-failed", resource=f"PersistentVolumeClaim/{name}",
            reason="ProvisioningFailed",
            message=f"No volume can be provisioned for claim {name}: {text}.".replace("..", "."),
            hint=hint, commands=commands, evidence=_unique_messages(provisioning)),
            _age(_event_first(provisioning[0]), now) >= policy.grace_s)]
    binding = _with_reason(mine, "FailedBinding")
    volume = spec.get("volumeName")
    created = _get(pvc, "metadata", "creationTimestamp")
    if not binding and _age(created, now) < policy.grace_s:
        return []
    if volume:
        hint = f"The claim asks for the PersistentVolume {volume}: create it (storage phase)."
    elif class_name in (None, "") and not storage_class:
        hint = (f"Nothing can bind it: no PV matches ({size}, {modes}, no class) and no default "
                "StorageClass exists. Create a matching PersistentVolume or set a StorageClass "
                "(STORAGE_CLASS).")
    else:
        hint = (f"Create a PersistentVolume of class {class_name!s} with at least {size} and "
                f"access mode {modes}, or use a class that provisions volumes.")
    return [policy.decide(Finding(
        code="pvc-pending", resource=f"PersistentVolumeClaim/{name}",
        reason="FailedBinding" if binding else "Pending",
        message=f"Claim {name} ({size}, {modes or 'no access mode'}) is not bound to a volume.",
        hint=hint, commands=commands,
        evidence=_unique_messages(binding) or ("phase Pending",)), False)]


# --- the deadline -------------------------------------------------------------------------------

def _selected(obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> list[Mapping]:
    selector = _get(obj, "spec", "selector", "matchLabels")
    if obj.get("kind") == "Job":
        uid = _get(obj, "metadata", "uid")
        selector = {"job-name": _name(obj)} if not uid else {"controller-uid": uid}
    if not selector:
        return list(pods)
    chosen = []
    for pod in pods:
        labels = _get(pod, "metadata", "labels") or {}
        job_pod = obj.get("kind") == "Job" and _name(obj) in (
            labels.get("job-name"), labels.get("batch.kubernetes.io/job-name"))
        if job_pod or all(labels.get(k) == v for k, v in selector.items()):
            chosen.append(pod)
    return chosen


def pod_waiting_for(pod: Mapping[str, Any]) -> str:
    """What one pod is still waiting for, in a few words; "" when it is ready."""
    status = pod.get("status") or {}
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    sched = conds.get("PodScheduled")
    if sched and sched.get("status") == "False":
        return f"not scheduled ({sched.get('reason', 'Pending')}: " \
               f"{str(sched.get('message', '')).split(' preemption:')[0].rstrip('. ,')})"
    if not _get(pod, "spec", "nodeName"):
        return "not scheduled yet"
    parts = []
    statuses = [*(status.get("initContainerStatuses") or []),
                *(status.get("containerStatuses") or [])]
    for cs in statuses:
        if cs.get("ready"):
            continue
        state = cs.get("state") or {}
        if state.get("waiting"):
            parts.append(f"container {cs.get('name')} waiting "
                         f"({state['waiting'].get('reason', 'Waiting')})")
        elif state.get("running"):
            parts.append(f"container {cs.get('name')} running, not ready")
        elif state.get("terminated"):
            term = state["terminated"]
            if term.get("reason") == "Completed" and cs in (status.get("initContainerStatuses") or []):
                continue
            parts.append(f"container {cs.get('name')} terminated ({term.get('reason', '')}, "
                         f"exit code {term.get('exitCode')})")
    if not statuses:
        return f"scheduled on {_get(pod, 'spec', 'nodeName')}, containers not started yet"
    ready = conds.get("Ready")
    if not parts and ready and ready.get("status") != "True":
        return f"not ready ({ready.get('reason', '')})".replace(" ()", "")
    return "; ".join(parts)


def describe_not_ready(obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]] = ()) -> str:
    """For the deadline message: what `obj` is still waiting for, and each of its pods."""
    kind, name = obj.get("kind"), _name(obj)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "Deployment":
        desired = spec.get("replicas", 1)
        head = (f"{status.get('availableReplicas') or 0} of {desired} replicas available, "
                f"{status.get('updatedReplicas') or 0} updated")
        old = (status.get("replicas") or 0) - (status.get("updatedReplicas") or 0)
        if old > 0:
            head += f", {old} old still running"
    elif kind == "StatefulSet":
        head = f"{status.get('readyReplicas') or 0} of {spec.get('replicas', 1)} replicas ready"
        if status.get("currentRevision") != status.get("updateRevision"):
            head += f", {status.get('updatedReplicas') or 0} updated"
    elif kind == "Job":
        head = (f"not complete ({status.get('active') or 0} active, "
                f"{status.get('succeeded') or 0} succeeded, {status.get('failed') or 0} failed)")
    elif kind == "PersistentVolumeClaim":
        head = f"{status.get('phase', 'Pending')}, not bound"
    else:
        head = "not ready"
    parts = [f"{kind}/{name}: {head}"]
    for pod in sorted(_selected(obj, pods), key=_name):
        waiting = pod_waiting_for(pod)
        if waiting:
            parts.append(f"pod {_name(pod)}: {waiting}")
    return "; ".join(parts)


def deadline_finding(objects: Sequence[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]],
                     timeout_s: float, namespace: str) -> Finding:
    """The overall deadline passed: name every resource still not ready and why."""
    pods = list(pods)
    lines = tuple(describe_not_ready(obj, pods) for obj in objects)
    names = ", ".join(_resource(o) for o in objects) or "the phase"
    return Finding(
        code="deadline", resource=_resource(objects[0]) if len(objects) == 1 else "",
        reason="DeadlineExceeded",
        message=f"Not ready after {timeout_s:g}s: {names}.",
        hint=("Each line below says what is still missing; if everything is merely slow, "
              "raise --timeout."),
        commands=(f"kubectl -n {namespace} get pods -o wide",
                  f"kubectl -n {namespace} get events --sort-by=.lastTimestamp"),
        evidence=lines, fatal=True)


# --- Paless knowledge about the manifests themselves ------------------------------------


def manifest_warnings(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Warnings about rendered objects that will misbehave although they apply cleanly.

    - more than one scheduler (replicas > 1, an HPA, or a rolling update): Celery beat
      would run twice and duplicate every periodic task;
    - an image tagged `latest` (or untagged): re-pushing it changes nothing in the pod
      spec, so Kubernetes never rolls the new image out.
    """
    warnings: list[str] = []
    hpa_targets = {(_get(o, "spec", "scaleTargetRef", "name") or "") for o in objects
                   if o.get("kind") == "HorizontalPodAutoscaler"}
    for obj in objects:
        kind, name = obj.get("kind"), _name(obj)
        component = (_get(obj, "metadata", "labels") or {}).get("app.kubernetes.io/component")
        if kind == "Deployment" and component == "scheduler":
            replicas = _get(obj, "spec", "replicas")
            strategy = _get(obj, "spec", "strategy", "type") or "RollingUpdate"
            if (replicas is not None and int(replicas) > 1) or name in hpa_targets:
                warnings.append(f"Deployment/{name}: more than one scheduler would run and every "
                                "periodic task would run twice; keep replicas 1 and no HPA.")
            if strategy != "Recreate":
                warnings.append(f"Deployment/{name}: a {strategy} update briefly runs two "
                                "schedulers (duplicate periodic tasks); use strategy Recreate.")
        for container in pod_containers(obj):
            image = str(container.get("image") or "")
            last = image.rsplit("/", 1)[-1]
            if "@" in image:
                continue
            if ":" not in last or last.endswith(":latest"):
                warnings.append(f"{kind}/{name} container {container.get('name')} uses {image}: "
                                "a re-pushed :latest image is never rolled out; use an "
                                "immutable tag.")
    return warnings
