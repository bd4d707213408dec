"""The simulated nodes: kwok's configuration (the stages of sandbox.d/stages.yaml, container
logs and port-forwards of simulated pods), and the bootstrap objects (the Nodes, the k3s-like
StorageClass and IngressClass, the restricted user's and the real node's RBAC)."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

from paless_sandbox.controlplane import kubectl
from paless_sandbox.kubeobjects import Node, is_ready
from paless_sandbox.layout import (
    KWOK_FORWARD_PORT,
    LOGS,
    PIDS,
    REAL_NODE,
    RESTRICTED_NAMESPACE,
    STATE,
    SUPPORT,
)
from paless_sandbox.messages import SandboxError, say
from paless_sandbox.processes import read_pid, stop_pid

DEFAULT_NODES = 4  # up --nodes N
# Big enough for several Paless stacks side by side (each requests ~3.5 CPU): tests deploy
# branch namespaces concurrently.
NODE_CAPACITY = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "200Gi"}
RBAC = "rbac.authorization.k8s.io"


def node_names(count: int) -> tuple[str, ...]:
    """The simulated nodes' names: sandbox-node-1 .. sandbox-node-N (at least one)."""
    return tuple(f"sandbox-node-{i}" for i in range(1, 1 + max(1, count)))


KWOK_LOGS = STATE / "kwok-logs"  # copies of sandbox.d's container logs (see write_kwok_config)


def kwok_config(stages: str, logs_dir: Path = KWOK_LOGS) -> str:
    """kwok's configuration: the `stages`, container logs for every pod (so `kubectl logs
    --previous` answers) and port-forwards of every pod's ports to 127.0.0.1:KWOK_FORWARD_PORT."""
    logs = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterLogs",
        "metadata": {"name": "sandbox-logs"},
        "spec": {"logs": [{"logsFile": str(logs_dir / "container.log"),
                           "previousLogsFile": str(logs_dir / "previous.log"), "follow": False}]},
    }
    forwards = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterPortForward",
        "metadata": {"name": "sandbox-port-forward"},
        "spec": {"forwards": [{"target": {"port": KWOK_FORWARD_PORT, "address": "127.0.0.1"}}]},
    }
    return stages + "\n---\n" + json.dumps(logs) + "\n---\n" + json.dumps(forwards) + "\n"


def write_kwok_config() -> None:
    """Write kwok's configuration; a kwok running with an older one is stopped (`up` starts
    it again). The container logs it serves are copied into the state directory, so the
    configuration names the same files whichever checkout ran `up` (a path into the checkout
    would change, and restart kwok under every other engineer's tests, with each checkout)."""
    KWOK_LOGS.mkdir(parents=True, exist_ok=True)
    for name in ("container.log", "previous.log"):
        source, copy = (SUPPORT / name).read_bytes(), KWOK_LOGS / name
        if not copy.exists() or copy.read_bytes() != source:
            copy.write_bytes(source)
    text = kwok_config((SUPPORT / "stages.yaml").read_text())
    target = STATE / "kwok.yaml"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
        stale = read_pid(PIDS / "kwok.pid")
        if stale:
            stop_pid(stale, "kwok")


def node_object(name: str) -> dict[str, object]:
    """A simulated Node: kwok manages it (annotation), pods see a worker's labels."""
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "type": "kwok",
            "node-role.kubernetes.io/worker": ""},
            "annotations": {"kwok.x-k8s.io/node": "fake",
                            "node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {},
        "status": {"capacity": NODE_CAPACITY, "allocatable": NODE_CAPACITY},
    }


def cluster_objects() -> list[dict[str, object]]:
    """The k3s-like StorageClass and IngressClass, the restricted user's namespace and
    binding, and the real node's kubelet binding."""
    return [{
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "local-path",
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }, {
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "traefik",
                     "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
        "spec": {"controller": "traefik.io/ingress-controller"},
    }, {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RESTRICTED_NAMESPACE},
    }, {
        "apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
        "metadata": {"name": "restricted-admin", "namespace": RESTRICTED_NAMESPACE},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "restricted"}],
    }, {
        # The real node's kubelet (kube-proxy's user is bound by Kubernetes' default policy).
        "apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "paless-sandbox:real-node"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:node"},
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": f"system:node:{REAL_NODE}"}],
    }]


def bootstrap_objects(nodes: tuple[str, ...]) -> list[dict[str, object]]:
    """Nodes, the k3s-like StorageClass and IngressClass, the restricted user's RBAC."""
    return [*(node_object(name) for name in nodes), *cluster_objects()]


def apply_bootstrap(nodes: tuple[str, ...]) -> None:
    """Apply the bootstrap objects, then wait for the nodes to be Ready and for the default
    ServiceAccount (the controllers work)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(json.dumps({"apiVersion": "v1", "kind": "List",
                            "items": bootstrap_objects(nodes)}))
    try:
        kubectl("apply", "--server-side", "--field-manager=paless-sandbox", "--force-conflicts",
                "-f", f.name)
    finally:
        os.unlink(f.name)
    # Node capacity is status: set it through the status subresource (kwok keeps it).
    for name in nodes:
        kubectl("patch", "node", name, "--subresource=status", "--type=merge", "-p",
                json.dumps({"status": {"capacity": NODE_CAPACITY,
                                       "allocatable": NODE_CAPACITY}}))
    wait_nodes_ready(nodes)
    wait_default_service_account()


def ready_nodes(items: list[Node], nodes: tuple[str, ...]) -> list[Node]:
    """Those of `nodes` that are Ready in a Node list."""
    return [n for n in items if n["metadata"]["name"] in nodes and is_ready(n)]


def wait_nodes_ready(nodes: tuple[str, ...], timeout: float = 60) -> None:
    """Until kwok reports every node of `nodes` Ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = kubectl("get", "nodes", "-o", "json", check=False)
        if res.returncode == 0:
            items: list[Node] = json.loads(res.stdout)["items"]
            ready = ready_nodes(items, nodes)
            if len(ready) >= len(nodes):
                say(f"{len(ready)} simulated nodes Ready")
                return
        time.sleep(0.5)
    raise SandboxError(f"kwok did not make the nodes Ready within 60s; see {LOGS / 'kwok.log'}")


def wait_default_service_account(timeout: float = 60) -> None:
    """Until the default ServiceAccount exists: the controller manager works."""
    deadline = time.monotonic() + timeout
    while kubectl("get", "serviceaccount", "default", "-n", "default",
                  check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise SandboxError("the default ServiceAccount never appeared: "
                               "kube-controller-manager is not working; see "
                               f"{LOGS / 'kube-controller-manager.log'}")
        time.sleep(0.5)


KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
TAKEOVER_TIMEOUT_S = 90.0  # a predecessor's node leases (10 s; 40 s if older) expire before


def nodes_not_renewed(nodes: list[dict[str, object]], leases: list[dict[str, object]],
                      since: float) -> list[str]:
    """The simulated nodes whose Lease no kwok renewed after `since` (epoch seconds)."""
    renewed: dict[str, float] = {}
    for lease in leases:
        meta = lease.get("metadata") or {}
        spec = lease.get("spec") or {}
        assert isinstance(meta, dict) and isinstance(spec, dict)
        when = str(spec.get("renewTime") or "")
        if when:
            stamp = dt.datetime.fromisoformat(when)  # Python 3.11 reads the Z
            renewed[str(meta.get("name"))] = stamp.timestamp()
    names = []
    for node in nodes:
        meta = node.get("metadata") or {}
        assert isinstance(meta, dict)
        annotations = meta.get("annotations") or {}
        assert isinstance(annotations, dict)
        if annotations.get(KWOK_NODE_ANNOTATION) == "fake":
            names.append(str(meta.get("name")))
    return [n for n in names if renewed.get(n, 0.0) <= since]


def wait_kwok_holds_nodes(since: float) -> None:
    """Until a kwok started at `since` renews every simulated node's Lease. A restarted kwok
    takes a node only once the lease its predecessor held has expired (10 s: controlplane.kwok),
    and kwok 0.8 never starts the pods created on a node before it took it: `up` returning
    earlier left the next deploy's pods on some nodes unstarted for good."""
    deadline = time.monotonic() + TAKEOVER_TIMEOUT_S
    waiting: list[str] = []
    said = False
    while time.monotonic() < deadline:
        nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
        leases = json.loads(kubectl("get", "leases", "-n", "kube-node-lease", "-o",
                                    "json").stdout)["items"]
        waiting = nodes_not_renewed(nodes, leases, since)
        if not waiting:
            return
        if not said:
            say(f"kwok: waiting until it holds {len(waiting)} simulated node(s) (a previous "
                "kwok's leases expire first)")
            said = True
        time.sleep(1)
    raise SandboxError(f"kwok did not take over {', '.join(waiting)} within "
                       f"{TAKEOVER_TIMEOUT_S:.0f}s; see {LOGS / 'kwok.log'}")
