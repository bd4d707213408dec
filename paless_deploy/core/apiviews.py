"""Typed views of the API objects the core reasons about, read from the server's JSON once.

Pods and their containers' states, a workload's replica counts, conditions and Nodes: the
rules ask `status.waiting_reason` or `pod.condition("PodScheduled")` instead of walking
`(x.get("state") or {}).get(...)` chains and guessing what each field holds. A missing or
mistyped field is read here, once, as "", 0, False or None (a half-written status never
raises). A view is built where a rule needs it (`PodView.of(pod)`); what flows between
stages stays the server's own JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from paless_deploy.core.apitypes import ApiObject, JsonValue
from paless_deploy.core.manifests.objects import name_of, nested, whole_number
from paless_deploy.core.manifests.quantities import cpu_millicores, memory_bytes


def _text(value: JsonValue) -> str:
    return "" if value is None else str(value)


def _count(value: JsonValue) -> int:
    return whole_number(value, 0)


def _items(value: JsonValue) -> list[Mapping[str, JsonValue]]:
    """The mappings of a JSON list (anything else in it, or a non-list, is skipped)."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(
        value, list) else []


@dataclass(frozen=True)
class Condition:
    """One status condition."""

    type: str
    status: str = "Unknown"  # "True", "False" or "Unknown"
    reason: str = ""
    message: str = ""
    since: str | None = None  # lastTransitionTime

    @property
    def true(self) -> bool:
        return self.status == "True"

    @property
    def false(self) -> bool:
        return self.status == "False"

    @classmethod
    def of(cls, cond: Mapping[str, JsonValue]) -> Condition:
        return cls(_text(cond.get("type")), _text(cond.get("status")) or "Unknown",
                   _text(cond.get("reason")), _text(cond.get("message")),
                   _text(cond.get("lastTransitionTime")) or None)


def conditions_of(obj: ApiObject) -> tuple[Condition, ...]:
    """`status.conditions`, in the server's order."""
    return tuple(Condition.of(c) for c in _items(nested(obj, "status", "conditions")))


def find_condition(conditions: tuple[Condition, ...], kind: str) -> Condition | None:
    """The condition of type `kind`, or None."""
    return next((c for c in conditions if c.type == kind), None)


# --- pods ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Terminated:
    """A container's end: the kubelet's reason and the exit code (None when not recorded)."""

    reason: str = ""
    exit_code: int | None = None

    @classmethod
    def of(cls, value: JsonValue) -> Terminated | None:
        if not isinstance(value, Mapping):
            return None
        code = value.get("exitCode")
        return cls(_text(value.get("reason")), code if isinstance(code, int) else None)


@dataclass(frozen=True)
class ContainerStatus:
    """One entry of a pod's `initContainerStatuses` or `containerStatuses`."""

    name: str
    image: str = ""
    ready: bool = False
    restarts: int = 0
    waiting: bool = False  # state.waiting
    waiting_reason: str = ""
    waiting_message: str = ""
    running: bool = False  # state.running
    started_at: str | None = None  # state.running.startedAt
    terminated: Terminated | None = None  # state.terminated
    last_terminated: Terminated | None = None  # lastState.terminated: the previous instance
    init: bool = False  # an init container's

    @classmethod
    def of(cls, status: Mapping[str, JsonValue], init: bool = False) -> ContainerStatus:
        state = status.get("state")
        state = state if isinstance(state, Mapping) else {}
        waiting, running = state.get("waiting"), state.get("running")
        return cls(
            name=_text(status.get("name")), image=_text(status.get("image")),
            ready=status.get("ready") is True, restarts=_count(status.get("restartCount")),
            waiting=isinstance(waiting, Mapping),
            waiting_reason=_text(nested(waiting, "reason")),
            waiting_message=_text(nested(waiting, "message")),
            running=isinstance(running, Mapping),
            started_at=_text(nested(running, "startedAt")) or None,
            terminated=Terminated.of(state.get("terminated")),
            last_terminated=Terminated.of(nested(status, "lastState", "terminated")),
            init=init)


@dataclass(frozen=True)
class PodView:
    """What the rules read of one pod."""

    name: str
    namespace: str = "default"
    phase: str = ""  # status.phase; "" before the kubelet wrote one
    reason: str = ""  # status.reason (Evicted, ...)
    node_name: str = ""  # spec.nodeName: "" until scheduled
    deleting: bool = False  # metadata.deletionTimestamp is set
    restart_policy: str = "Always"
    labels: Mapping[str, str] = field(default_factory=dict)
    containers: int = 0  # len(spec.containers)
    claims: tuple[str, ...] = ()  # the claims its volumes name
    node_selector: Mapping[str, str] = field(default_factory=dict)
    started: str | None = None  # status.startTime, else metadata.creationTimestamp
    conditions: tuple[Condition, ...] = ()
    init_statuses: tuple[ContainerStatus, ...] = ()
    main_statuses: tuple[ContainerStatus, ...] = ()

    @property
    def statuses(self) -> tuple[ContainerStatus, ...]:
        """Every container's status, init containers first."""
        return self.init_statuses + self.main_statuses

    def condition(self, kind: str) -> Condition | None:
        return find_condition(self.conditions, kind)

    @classmethod
    def of(cls, pod: ApiObject) -> PodView:
        spec = pod.get("spec")
        spec = spec if isinstance(spec, Mapping) else {}
        status = pod.get("status")
        status = status if isinstance(status, Mapping) else {}
        labels = nested(pod, "metadata", "labels")
        selector = spec.get("nodeSelector")
        return cls(
            name=name_of(pod), namespace=_text(nested(pod, "metadata", "namespace")) or "default",
            phase=_text(status.get("phase")), reason=_text(status.get("reason")),
            node_name=_text(spec.get("nodeName")),
            deleting=bool(nested(pod, "metadata", "deletionTimestamp")),
            restart_policy=_text(spec.get("restartPolicy")) or "Always",
            labels={str(k): _text(v) for k, v in labels.items()}
            if isinstance(labels, Mapping) else {},
            containers=len(_items(spec.get("containers"))),
            claims=tuple(_text(nested(v, "persistentVolumeClaim", "claimName"))
                         for v in _items(spec.get("volumes")) if v.get("persistentVolumeClaim")),
            node_selector={str(k): _text(v) for k, v in selector.items()}
            if isinstance(selector, Mapping) else {},
            started=_text(status.get("startTime") or nested(pod, "metadata",
                                                            "creationTimestamp")) or None,
            conditions=conditions_of(pod),
            init_statuses=tuple(ContainerStatus.of(s, init=True)
                                for s in _items(status.get("initContainerStatuses"))),
            main_statuses=tuple(ContainerStatus.of(s)
                                for s in _items(status.get("containerStatuses"))))


# --- workloads -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Replicas:
    """A Deployment's, StatefulSet's or ReplicaSet's replicas: wanted against counted."""

    desired: int = 1  # spec.replicas (1 when unset, as the API server defaults it)
    total: int = 0  # status.replicas: every pod the controller counts, old ones included
    updated: int = 0
    ready: int = 0
    available: int = 0
    current_revision: str | None = None  # a StatefulSet's revisions
    update_revision: str | None = None

    @classmethod
    def of(cls, obj: ApiObject) -> Replicas:
        replicas = nested(obj, "spec", "replicas")
        status = obj.get("status")
        status = status if isinstance(status, Mapping) else {}

        def revision(key: str) -> str | None:
            value = status.get(key)
            return None if value is None else str(value)

        return cls(1 if replicas is None else whole_number(replicas, 1),
                   _count(status.get("replicas")), _count(status.get("updatedReplicas")),
                   _count(status.get("readyReplicas")), _count(status.get("availableReplicas")),
                   revision("currentRevision"), revision("updateRevision"))


# --- nodes -----------------------------------------------------------------------------------

K3S_INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"


@dataclass(frozen=True)
class Taint:
    """One taint of a Node: pods that do not tolerate it stay off (NoSchedule) or are
    evicted (NoExecute); PreferNoSchedule only weighs."""

    key: str
    value: str = ""
    effect: str = ""


@dataclass(frozen=True)
class Node:
    """What the tool reads of one Node: who it is, what runs its containers, the images it
    reports, its addresses, its architecture and what it can give pods (allocatable)."""

    name: str
    kubelet_version: str = ""
    runtime_version: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    images: frozenset[str] = frozenset()  # every name of every image the node reports
    addresses: tuple[str, ...] = ()
    architecture: str = ""  # status.nodeInfo.architecture, else the kubernetes.io/arch label
    cpu_m: int = 0  # allocatable CPU, millicores
    memory: int = 0  # allocatable memory, bytes
    annotations: Mapping[str, str] = field(default_factory=dict)
    ready: bool = False  # its Ready condition is True
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False  # spec.unschedulable (cordoned)

    @property
    def k3s(self) -> bool:
        """A k3s node: its kubelet version carries `+k3s`, or k3s' instance-type label."""
        return "+k3s" in self.kubelet_version or self.labels.get(
            K3S_INSTANCE_TYPE_LABEL) == "k3s"

    @property
    def k3s_evidence(self) -> str:
        """What says the node is k3s, for a message."""
        if "+k3s" in self.kubelet_version:
            return f"kubelet {self.kubelet_version}"
        return f"label {K3S_INSTANCE_TYPE_LABEL}=k3s"

    @property
    def docker_runtime(self) -> bool:
        """The node's containers run on a Docker engine (k3s --docker, Docker Desktop)."""
        return self.runtime_version.startswith("docker://")

    def has_image(self, ref: str) -> bool:
        """True when the node reports `ref` among its images."""
        return ref in self.images

    @classmethod
    def of(cls, node: ApiObject) -> Node:
        """The view of one Node object as the API server returns it."""
        info = nested(node, "status", "nodeInfo")
        labels = nested(node, "metadata", "labels")
        labels = {str(k): str(v) for k, v in labels.items()} if isinstance(
            labels, Mapping) else {}
        annotations = nested(node, "metadata", "annotations")
        annotations = {str(k): str(v) for k, v in annotations.items()} if isinstance(
            annotations, Mapping) else {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in _items(nested(node, "status", "conditions")))
        return cls(
            name=name_of(node),
            kubelet_version=_text(nested(info, "kubeletVersion")),
            runtime_version=_text(nested(info, "containerRuntimeVersion")),
            labels=labels,
            images=frozenset(str(n) for image in _items(nested(node, "status", "images"))
                             for n in image.get("names") or []),
            addresses=tuple(str(a.get("address")) for a in _items(
                nested(node, "status", "addresses")) if a.get("address")),
            architecture=_text(nested(info, "architecture")) or labels.get(
                "kubernetes.io/arch", ""),
            cpu_m=cpu_millicores(nested(node, "status", "allocatable", "cpu")),
            memory=memory_bytes(nested(node, "status", "allocatable", "memory")),
            annotations=annotations, ready=ready,
            taints=tuple(Taint(str(t.get("key") or ""), str(t.get("value") or ""),
                               str(t.get("effect") or ""))
                         for t in _items(nested(node, "spec", "taints"))),
            unschedulable=nested(node, "spec", "unschedulable") is True)
