"""The real node beside the kwok nodes: containerd, the kubelet and kube-proxy started until
the node is Ready (never failing `up`: without it the sandbox runs on its simulated nodes and
says why), and stopped with every trace it leaves on the host swept away."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TypedDict

from paless_sandbox import kernel
from paless_sandbox.cgroups import ensure_cgroup_root, kill_pod_processes, remove_cgroup_root
from paless_sandbox.components import Component, start, stop_component
from paless_sandbox.controlplane import kubectl
from paless_sandbox.docker import registry_has
from paless_sandbox.kubeobjects import Node, Taint, ready_condition, runtime_version
from paless_sandbox.layout import (
    BIN,
    BRIDGE,
    CNI_BIN,
    CNI_PLUGINS,
    CONTAINERD_SOCK,
    DEV_HOST_PATHS,
    HOSTS_DIR,
    LOGS,
    POD_CIDR,
    REAL_KEY,
    REAL_NODE,
    REAL_NODE_TIMEOUT,
    REALNODE,
    REGISTRY_ADDR,
    UNAVAILABLE,
)
from paless_sandbox.messages import SandboxError, say, tail
from paless_sandbox.mounts import unmount_stale_fuse, unmount_under
from paless_sandbox.netpol import (
    remove_policy_rules,
    start_policy_controller,
    stop_policy_controller,
)
from paless_sandbox.nodeconfig import node_files, real_node_components, write_node_files
from paless_sandbox.podnetwork import ensure_pod_network, remove_pod_network
from paless_sandbox.processes import read_pid, stop_pid, stray_pids

REAL_TAINT: Taint = {"key": REAL_KEY, "value": "true", "effect": "NoSchedule"}
PAUSE_DOCKERFILE = ('FROM scratch\nCOPY pause /pause\nLABEL io.paless.sandbox="pause"\n'
                    'ENTRYPOINT ["/pause"]\n')


class Unavailable(TypedDict, total=False):
    """Why the real node does not run (realnode/unavailable.json); `kernel`: for want of a
    kernel feature, which excuses it in `status`."""

    why: str
    kernel: bool


def pause_image() -> str:
    """The pod sandbox image, tagged by the content of the pause binary it holds."""
    digest = hashlib.sha256((BIN / "pause").read_bytes()).hexdigest()[:12]
    return f"{REGISTRY_ADDR}/paless-sandbox/pause:{digest}"


def ensure_pause_image() -> str:
    """The pause image, built FROM scratch here and pushed to the sandbox registry."""
    image = pause_image()
    if registry_has(image):
        return image
    with tempfile.TemporaryDirectory() as ctx:
        shutil.copy2(BIN / "pause", Path(ctx) / "pause")
        (Path(ctx) / "Dockerfile").write_text(PAUSE_DOCKERFILE)
        for argv in (["docker", "build", "-q", "-t", image, ctx], ["docker", "push", image]):
            res = subprocess.run(argv, capture_output=True, text=True, check=False)
            if res.returncode != 0:
                raise SandboxError(f"real node: {' '.join(argv[:2])} of the pause image {image} "
                                   f"failed: {res.stderr.strip()[-500:]}; `scripts/sandbox "
                                   "status` shows whether Docker and the registry run")
    say(f"real node: pause image {image} built and pushed")
    return image


def ctr(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """containerd's own client on the real node's socket, in the CRI's namespace."""
    return subprocess.run(["ctr", f"--address={CONTAINERD_SOCK}", "-n", "k8s.io", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def ensure_pause_pulled(image: str) -> None:
    """Pull the pause image through the registry hosts configuration (the path pods take)."""
    if image in ctr("images", "ls", "-q").stdout.split():
        return
    res = ctr("images", "pull", f"--hosts-dir={HOSTS_DIR}", image)
    if res.returncode != 0:
        raise SandboxError(
            f"containerd cannot pull {image} from the sandbox registry: "
            f"{res.stderr.strip()[-500:]}; check `curl http://{REGISTRY_ADDR}/v2/` and "
            f"{HOSTS_DIR}; log {LOGS / 'containerd.log'}")


def real_node_status() -> Node | None:
    """The real node's Node object (None when the API server does not have it)."""
    res = kubectl("get", "node", REAL_NODE, "-o", "json", check=False)
    if res.returncode != 0:
        return None
    node: Node = json.loads(res.stdout)
    return node


def freshly_ready(node: Node | None, fresh_from: str) -> bool:
    """Whether the node is Ready as reported at or after `fresh_from` (an RFC 3339 time;
    "" takes any report)."""
    ready = ready_condition(node)
    return ready.get("status") == "True" and ready.get("lastHeartbeatTime", "") >= fresh_from


def wait_real_node_ready(kubelet: Component, since: float | None) -> Node:
    """The node once Ready; with `since` (when the kubelet started), Ready as that kubelet
    reported it: the API keeps a stopped kubelet's Ready for 40 s."""
    deadline = time.monotonic() + REAL_NODE_TIMEOUT
    fresh_from = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since - 1)) if since else ""
    node = None
    while time.monotonic() < deadline:
        node = real_node_status()
        if freshly_ready(node, fresh_from):
            return node or {}
        if read_pid(kubelet.pidfile) is None:
            raise SandboxError(f"kubelet exited; see its log {kubelet.log}:\n"
                               + tail(kubelet.log))
        time.sleep(0.5)
    why = ready_condition(node).get("message") or (
        "the kubelet never registered the node" if node is None else "no Ready condition yet")
    raise SandboxError(f"kubelet: node {REAL_NODE} not Ready within {REAL_NODE_TIMEOUT:.0f}s: "
                       f"{why}; see {kubelet.log} and {LOGS / 'containerd.log'}:\n"
                       + tail(kubelet.log))


def marking_needed(node: Node) -> tuple[bool, bool]:
    """Whether the node lacks (its label, its taint): the kubelet sets them only when it
    registers the node; a hand edit may have removed them since."""
    labelled = node["metadata"].get("labels", {}).get(REAL_KEY) == "true"
    tainted = REAL_TAINT in node.get("spec", {}).get("taints", [])
    return not labelled, not tainted


def ensure_real_node_marked(node: Node) -> None:
    """The label and taint that keep other pods off the node."""
    label, taint = marking_needed(node)
    if label:
        kubectl("label", "node", REAL_NODE, f"{REAL_KEY}=true", "--overwrite")
    if taint:
        kubectl("taint", "node", REAL_NODE, f"{REAL_KEY}=true:NoSchedule", "--overwrite")


def mark_unavailable(why: str, kernel: bool) -> None:
    """Record why the real node does not run: `status` and the tests that need it say so."""
    REALNODE.mkdir(parents=True, exist_ok=True)
    UNAVAILABLE.write_text(json.dumps({"why": why, "kernel": kernel}) + "\n")


def read_unavailable() -> Unavailable | None:
    """Why the real node does not run, as recorded (None: nothing recorded)."""
    try:
        recorded: Unavailable = json.loads(UNAVAILABLE.read_text())
    except (OSError, ValueError):
        return None
    return recorded


def start_real_node() -> None:
    """containerd, kubelet and kube-proxy, until the node is Ready. Never fails `up`: without
    the real node the sandbox runs on its simulated nodes, and says why."""
    if os.environ.get("PALESS_SANDBOX_REAL_NODE", "1") == "0":
        stop_real_node()
        mark_unavailable("turned off (PALESS_SANDBOX_REAL_NODE=0)", kernel=False)
        say("real node: off (PALESS_SANDBOX_REAL_NODE=0)")
        return
    missing = kernel.missing_kernel_features()
    if missing:
        why = "this machine lacks " + "; ".join(missing)
        mark_unavailable(why, kernel=True)
        say(f"real node: UNAVAILABLE: {why}. The sandbox runs on its simulated nodes only; "
            "tests that need the real node fail under CI=true.")
        return
    started = time.monotonic()
    try:
        node = bring_up_real_node()
    except SandboxError as exc:
        mark_unavailable(str(exc), kernel=False)
        say(f"real node: FAILED: {exc}\nThe sandbox runs on its simulated nodes only; "
            "`scripts/sandbox down` then `up` retries from a clean state.")
        return
    UNAVAILABLE.unlink(missing_ok=True)
    say(f"real node: {REAL_NODE} Ready ({runtime_version(node)}, pods on {POD_CIDR} via "
        f"{BRIDGE}) in {time.monotonic() - started:.1f}s")
    start_policy_controller()


def bring_up_real_node() -> Node:
    """Configuration, pod network, cgroups and pause image, then each component (restarted
    when its configuration changed) until the node is Ready and marked."""
    lacking = [p for p in CNI_PLUGINS if not os.access(CNI_BIN / p, os.X_OK)]
    if lacking:
        raise SandboxError(f"real node: CNI plugins {', '.join(lacking)} are not in {CNI_BIN}; "
                           "install them with `apt-get install containernetworking-plugins`")
    # Without CAP_SYS_RESOURCE (some VMs and containers) runc cannot lower a container's OOM
    # score below containerd's, and every pod would fail with "failed to update
    # /proc/self/oom_score_adj: Permission denied": keep the scores at containerd's then.
    restrict_oom = not kernel.has_capability(kernel.CAP_SYS_RESOURCE)
    changed = write_node_files(node_files(pause_image(), restrict_oom,
                                          shutil.which("runc") or "runc"))
    ensure_pod_network()
    ensure_cgroup_root()
    image = ensure_pause_image()
    comps = real_node_components()
    kubelet_started = None
    for c in comps:
        pid = read_pid(c.pidfile)
        if pid is not None and c.name in changed:
            say(f"{c.name}: its configuration changed; restarting it")
            stop_pid(pid, c.name)
        began = time.time()
        start(c)
        if c.name == "kubelet" and read_pid(c.pidfile) != pid:
            kubelet_started = began
        if c.name == "containerd":
            wait_cri_ready()
            ensure_pause_pulled(image)
    node = wait_real_node_ready(comps[1], kubelet_started)
    ensure_real_node_marked(node)
    return node


def stop_real_node() -> None:
    """Stop the kubelet, remove every pod through containerd (network, namespaces, mounts),
    stop containerd and kube-proxy, then remove whatever a killed run left behind."""
    if not REALNODE.is_dir():
        return  # never started here
    comps = {c.name: c for c in real_node_components()}
    stop_policy_controller()
    stop_component(comps["kubelet"])
    containerd = comps["containerd"]
    if read_pid(containerd.pidfile) and os.access(BIN / "realnode-sweep", os.X_OK):
        sweep_pods()
    stop_component(comps["kube-proxy"])
    stop_component(containerd)
    kill_pod_processes()
    for pid in stray_pids(str(REALNODE)):  # shims, or components a killed run left
        say(f"real node: stopping stray process {pid}")
        stop_pid(pid, str(pid), grace=5)
    unmount_under(REALNODE)
    unmount_stale_fuse(DEV_HOST_PATHS)
    remove_policy_rules()
    remove_pod_network()
    remove_cgroup_root()


def wait_cri_ready() -> None:
    """Until containerd's CRI plugin answers (its socket and metrics come first; a kubelet
    started before the CRI service is initialized exits at once)."""
    res = subprocess.run([str(BIN / "realnode-sweep"), "--ready", f"unix://{CONTAINERD_SOCK}"],
                         capture_output=True, text=True, timeout=90, check=False)
    if res.returncode != 0:
        raise SandboxError(f"containerd's CRI service did not become ready: "
                           f"{res.stderr.strip()[-300:]}; log {LOGS / 'containerd.log'}")


def sweep_pods() -> None:
    """Remove every pod through the running containerd (sandbox.d/cmd/realnode-sweep)."""
    res = subprocess.run([str(BIN / "realnode-sweep"), f"unix://{CONTAINERD_SOCK}"],
                         capture_output=True, text=True, timeout=300, check=False)
    removed = res.stdout.count("removed pod")
    if removed:
        say(f"real node: removed {removed} pod(s) through containerd")
    if res.returncode != 0:
        say(f"real node: containerd could not remove every pod ({res.stderr.strip()[-300:]}); "
            "killing what is left")
