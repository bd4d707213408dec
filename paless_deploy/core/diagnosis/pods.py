"""Rules for one pod: scheduling, image pulls, configuration, crashes, OOM, mounts, readiness.

Pure functions over API JSON; the wait stage calls `diagnose_pod` on every watch event so
that a failure is reported within seconds, fatal or tolerated as the Policy says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.apiviews import ContainerStatus, PodView, Terminated
from paless_deploy.core.diagnosis import eventlog
from paless_deploy.core.diagnosis.findings import Finding, NodeCapacity, Policy
from paless_deploy.core.diagnosis.hints import (
    FUSE_MOUNT,
    K3S_REGISTRIES,
    MEMORY_TUNING,
    RCLONE_CONTAINER,
    dependency_hint,
    mentions_fuse,
    rclone_hint,
    rendered_from,
)
from paless_deploy.core.diagnosis.kubectl import NODES_CMD, describe_cmd, events_cmd, logs_cmd
from paless_deploy.core.manifests.objects import nested
from paless_deploy.core.manifests.podspec import pod_spec, spec_container
from paless_deploy.core.manifests.quantities import cpu_millicores, format_bytes, memory_bytes

LOG_LINES = 10  # last log lines kept as evidence

_DEFINITE_PULL = re.compile(
    r"not found|notfound|manifest unknown|unauthorized|authentication required|denied|"
    r"forbidden|no such host|server gave HTTP response to HTTPS client|InvalidImageName|"
    r"invalid reference format", re.IGNORECASE)
_CONFIG_KEY = re.compile(r"couldn't find key (\S+) in (Secret|ConfigMap) (?:([^/\s]+)/)?(\S+)")
_CONFIG_OBJECT = re.compile(r"(secret|configmap) \"([^\"]+)\" not found", re.IGNORECASE)
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def diagnose_pod(pod: ApiObject, events: Iterable[ApiObject],
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
    mine = eventlog.about(pod, events)
    unready = tuple(unready_services)
    ctx = _PodContext(pod, mine, policy, now, logs, unready)
    findings: list[Finding] = []
    if ctx.view.deleting:
        return findings  # a pod on its way out is not a failure of this deploy
    unschedulable = ctx.unschedulable()
    if unschedulable:
        return [unschedulable]
    statuses = ctx.view.statuses
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


def pod_owner(pod: ApiObject) -> str:
    """The workload behind a pod as "Kind/name" (the Deployment for a ReplicaSet's pod)."""
    for ref in nested(pod, "metadata", "ownerReferences") or []:
        if not ref.get("controller", True):
            continue
        kind, name = ref.get("kind", ""), ref.get("name", "")
        template_hash = nested(pod, "metadata", "labels", "pod-template-hash")
        if kind == "ReplicaSet" and template_hash and name.endswith(f"-{template_hash}"):
            return f"Deployment/{name[: -len(template_hash) - 1]}"
        return f"{kind}/{name}"
    return ""


def pod_requests(pod: ApiObject) -> NodeCapacity:
    """The pod's effective requests: containers summed, or the largest init container."""
    spec = pod_spec(pod) or {}

    def total(containers: Sequence[ApiObject]) -> NodeCapacity:
        return NodeCapacity(
            sum(cpu_millicores(nested(c, "resources", "requests", "cpu")) for c in containers),
            sum(memory_bytes(nested(c, "resources", "requests", "memory")) for c in containers))

    main = total(spec.get("containers") or [])
    inits = [total([c]) for c in spec.get("initContainers") or []]
    return NodeCapacity(max([main.cpu_m, *(i.cpu_m for i in inits)]),
                        max([main.memory, *(i.memory for i in inits)]))


def image_registry_host(image: str) -> str:
    """The registry host of an image reference ("docker.io" for Docker Hub names)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


class _PodContext:
    """What the per-container checks of one pod share."""

    def __init__(self, pod: ApiObject, events: Sequence[ApiObject], policy: Policy,
                 now: datetime | None, logs: Mapping[str, str] | str | None,
                 unready: tuple[str, ...]) -> None:
        self.pod, self.events, self.policy, self.now = pod, events, policy, now
        self.view = PodView.of(pod)
        self.logs, self.unready = logs, unready
        self.ns, self.name = self.view.namespace, self.view.name
        self.resource = f"Pod/{self.name}"
        owner = pod_owner(pod)
        self.owner_kind = owner.partition("/")[0]
        self.of = f" of {owner}" if owner else ""
        self.started = self.view.started

    def finding(self, code: str, reason: str, message: str, hint: str, fatal: bool,
                commands: Sequence[str] = (), evidence: Sequence[str] = ()) -> Finding:
        base = (describe_cmd(self.ns, "pod", self.name), events_cmd(self.ns, self.name))
        return self.policy.decide(Finding(
            code=code, resource=self.resource, reason=reason, message=message, hint=hint,
            commands=tuple(dict.fromkeys([*commands, *base])), evidence=tuple(evidence)), fatal)

    def after_grace(self, since: str | None) -> bool:
        return self.policy.past_grace(since, self.now)

    def log_tail(self, container: str) -> tuple[str, ...]:
        text = self.logs.get(container) if isinstance(self.logs, Mapping) else self.logs
        if not text:
            return ()
        lines = [line for line in str(text).splitlines() if line.strip()]
        return tuple(f"log: {line}" for line in lines[-LOG_LINES:])

    # -- scheduling ------------------------------------------------------------------------------

    def unschedulable(self) -> Finding | None:
        cond = self.view.condition("PodScheduled")
        failed = eventlog.with_reason(self.events, "FailedScheduling")
        if self.view.node_name or (cond and cond.true):
            return None
        if not (cond and cond.reason == "Unschedulable") and not failed:
            return None
        text = (cond and cond.message) or (eventlog.message(failed[-1]) if failed else "")
        since = (cond and cond.since) or (eventlog.first_seen(failed[0]) if failed else None)
        scheduler = text.split(" preemption:")[0].removesuffix(" no new claims to deallocate,")
        scheduler = scheduler.rstrip(". ,") + "."
        evidence = (f"scheduler: {text}",)
        commands: list[str] = [NODES_CMD]
        claims = self.view.claims
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
                    describe_cmd(self.ns, "pvc", c) for c in claims)],
                evidence=evidence)
        if "Insufficient" in text:
            return self.insufficient(text, scheduler, commands, evidence)
        if "affinity/selector" in text or "untolerated taint" in text:
            selector = self.view.node_selector or None
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
                fatal=self.after_grace(since),
                commands=[*commands, "kubectl get nodes --show-labels"], evidence=evidence)
        return self.finding(
            "unschedulable", "Unschedulable",
            f"Pod {self.name}{self.of} cannot be scheduled: {scheduler}",
            "Read the scheduler's reason above and adjust the pod's requests, selectors or "
            "the cluster's nodes.", fatal=False, commands=commands, evidence=evidence)

    def insufficient(self, text: str, scheduler: str, commands: list[str],
                     evidence: tuple[str, ...]) -> Finding:
        """No node has the CPU or memory the pod requests: at once fatal when it asks more
        than the largest node has at all, else tolerated (capacity may free up)."""
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

    # -- containers ------------------------------------------------------------------------------

    def container(self, status: ContainerStatus) -> Finding | None:
        reason = status.waiting_reason
        if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"):
            return self.image_pull(status, reason, status.waiting_message)
        if reason in ("CreateContainerConfigError", "CreateContainerError"):
            return self.config_error(status.name, reason, status.waiting_message)
        terminated = status.terminated or status.last_terminated or Terminated()
        if self.owner_kind == "Job" or self.view.restart_policy == "Never":
            return None  # the Job's backoffLimit decides; diagnose_job explains
        if terminated.reason == "OOMKilled":
            return self.oom(status, terminated)
        if reason == "CrashLoopBackOff" or (status.restarts > 0 and terminated.exit_code):
            return self.crash_loop(status, terminated)
        return None

    def image_pull(self, status: ContainerStatus, reason: str, message: str) -> Finding:
        name = status.name
        image = status.image or str(spec_container(self.pod, name).get("image") or "")
        pulls = [e for e in self.events if e.get("reason") in ("Failed", "ErrImagePull")
                 and "pull" in eventlog.message(e).lower()]
        texts = [message, *(eventlog.message(e) for e in pulls)]
        combined = " ".join(texts)
        definite = bool(_DEFINITE_PULL.search(combined)) or reason == "InvalidImageName"
        host = image_registry_host(image)
        bare_host = host.split(":")[0]
        ours = self.policy.registry and image_registry_host(self.policy.registry + "/x") == host
        # What the registry answered comes first: when it answered, it was reachable.
        if re.search(r"unauthorized|authentication required|denied|forbidden", combined,
                     re.IGNORECASE):
            hint = (f"The registry {host} refused the pull: add imagePullSecrets to the pod "
                    f"template or registry credentials to /etc/rancher/k3s/registries.yaml.")
        elif re.search(r"not found|manifest unknown", combined, re.IGNORECASE):
            hint = self.missing_image_hint(image, host)
        elif bare_host in _LOCAL_HOSTS and self.policy.node_count > 1:
            hint = (f"{host} means each node itself: on a {self.policy.node_count}-node cluster "
                    "only the node running the registry can pull from it. Push to a registry "
                    f"host all nodes reach (REGISTRY). {K3S_REGISTRIES}")
            definite = True
        elif re.search(r"no such host|server gave HTTP response|x509|tls:", combined,
                       re.IGNORECASE) or (
                host != "docker.io" and not ours and re.search(r"dial tcp|connection refused",
                                                               combined, re.IGNORECASE)):
            hint = f"The nodes cannot reach the registry {host}. {K3S_REGISTRIES}"
        else:
            hint = (f"Check that {image} exists and that the nodes can reach {host}; "
                    f"`docker pull {image}` from a node reproduces the error.")
        evidence = [f"container {name}: {reason}: {message}".rstrip(": ")]
        evidence += list(eventlog.unique_messages(pulls))
        return self.finding(
            "image-pull", reason,
            f"Container {name} of pod {self.name}{self.of} cannot pull image {image}.", hint,
            fatal=definite or self.after_grace(self.started), evidence=evidence)

    def missing_image_hint(self, image: str, host: str) -> str:
        """Push an app's image; an image that is no app's is the manifests' to correct."""
        app = self.policy.app_of(image)
        if app is not None:
            return (f"The image {image} of app {app} is not in the registry: push it "
                    f"(`paless-deploy push {app}`, or `all`), then deploy again.")
        if self.policy.app_images is None:
            return (f"The image {image} is not in the registry {host}: push it there (an app "
                    "of this project: `paless-deploy push APP`), or correct the name or tag in "
                    "the manifests.")
        return (f"The image {image} is not in the registry {host}, and it is not one of this "
                "project's apps (paless-deploy builds and pushes only those): correct its name "
                "or tag in the manifests, or push that image there yourself.")

    def config_error(self, name: str, reason: str, message: str) -> Finding:
        key = _CONFIG_KEY.search(message)
        obj = _CONFIG_OBJECT.search(message)
        commands: list[str] = []
        if key:
            missing = f"key {key.group(1)} in {key.group(2)} {key.group(4)}"
            source = rendered_from(key.group(4))
            hint = (f"Add the key {key.group(1)} to {key.group(2)} {key.group(4)}"
                    + (f" (it is rendered from {source}: add the key there, its "
                       "value from a ${VARIABLE})" if source else "")
                    + ", or fix the reference in the pod template.")
            commands.append(describe_cmd(self.ns, key.group(2), key.group(4)))
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

    def oom(self, status: ContainerStatus, terminated: Terminated) -> Finding:
        name, restarts = status.name, status.restarts
        limit = nested(spec_container(self.pod, name), "resources", "limits", "memory")
        code = 137 if terminated.exit_code is None else terminated.exit_code
        state = (f"container {name}: terminated OOMKilled (exit code {code}), "
                 f"restarts {restarts}")
        now_limit = f"its limit is {limit}" if limit else "it has no memory limit (the node ran out)"
        hint = (f"Raise resources.limits.memory of container {name} in the overlay "
                f"({'now ' + str(limit) if limit else 'none set'}), or reduce its memory use "
                f"({MEMORY_TUNING}).")
        return self.finding(
            "oom-killed", "OOMKilled",
            f"Container {name} of pod {self.name}{self.of} was killed for exceeding its memory: "
            f"{now_limit}; {restarts} restart(s).", hint,
            fatal=restarts > self.policy.allowed_restarts,
            commands=[logs_cmd(self.ns, self.name, name)],
            evidence=[state, *self.log_tail(name)])

    def crash_loop(self, status: ContainerStatus, terminated: Terminated) -> Finding:
        name, restarts = status.name, status.restarts
        code, why = terminated.exit_code, terminated.reason or "Error"
        tail = self.log_tail(name)
        if name == RCLONE_CONTAINER:
            hint = rclone_hint(" ".join(tail).lower(), self.unready)
        else:
            hint = dependency_hint(name, self.unready, self.ns) or (
                f"Read why container {name} exits in its previous logs, fix the cause "
                "(configuration, command, dependency), and deploy again.")
        state = f"container {name}: last terminated {why} with exit code {code}, " \
                f"restarts {restarts}"
        evidence = [state, *tail]
        return self.finding(
            "crash-loop", "CrashLoopBackOff",
            f"Container {name} of pod {self.name}{self.of} keeps exiting (exit code {code}, "
            f"{why}); {restarts} restart(s).", hint,
            fatal=restarts > self.policy.allowed_restarts,
            commands=[logs_cmd(self.ns, self.name, name)], evidence=evidence)

    # -- volumes and readiness -----------------------------------------------------------------

    def mount_failed(self, statuses: Sequence[ContainerStatus]) -> Finding | None:
        if any(s.running for s in statuses):
            return None  # mounted by now: old events only
        failed = eventlog.with_reason(self.events, "FailedMount", "FailedAttachVolume")
        if not failed:
            return None
        latest = eventlog.message(failed[-1])
        volume = re.search(r"volume \"([^\"]+)\"", latest)
        missing = re.search(r"(secret|configmap|persistentvolumeclaim)s? \"([^\"]+)\" not found",
                            latest, re.IGNORECASE)
        what = f"volume {volume.group(1)}" if volume else "a volume"
        if missing:
            hint = (f"Create the {missing.group(1)} {missing.group(2)} in namespace {self.ns} or "
                    "fix the volume's reference in the pod template.")
        elif mentions_fuse(latest):
            hint = FUSE_MOUNT
        else:
            hint = ("Check the volume's source (claim bound? node can reach the storage?); the "
                    "kubelet retries, so a transient error clears by itself.")
        return self.finding(
            "mount-failed", str(failed[-1].get("reason")),
            f"Pod {self.name}{self.of} cannot mount {what}.", hint,
            fatal=bool(missing) and self.after_grace(eventlog.first_seen(failed[0])),
            evidence=eventlog.unique_messages(failed))

    def not_ready(self, statuses: Sequence[ContainerStatus]) -> Finding | None:
        if self.view.phase != "Running" or not statuses:
            return None
        unready = [s for s in statuses if s.running and not s.ready]
        if not unready:
            return None
        unhealthy = eventlog.with_reason(self.events, "Unhealthy")
        started = min((s.started_at or "" for s in unready), default=None)
        if not unhealthy and not self.after_grace(started):
            return None
        names = ", ".join(s.name for s in unready)
        deps = [s for s in self.unready if s != names]
        hint = (f"Check the readiness probe of {names} and its logs"
                + (f"; it may wait for {', '.join(deps)}, not ready yet" if deps else "")
                + ". Readiness failing keeps the pod out of its Service; the progress deadline "
                "decides.")
        return self.finding(
            "not-ready", "Unhealthy" if unhealthy else "ContainersNotReady",
            f"Container(s) {names} of pod {self.name}{self.of} run but are not ready.", hint,
            fatal=False, commands=[logs_cmd(self.ns, self.name, unready[0].name,
                                            previous=False)],
            evidence=eventlog.unique_messages(unhealthy) or (f"containers running, not ready: {names}",))
