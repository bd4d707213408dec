"""How the real node is configured: its components' command lines, and its configuration
files as text (containerd, registry hosts, CNI, resolv.conf, kubelet, kube-proxy), written
each telling which component a change to it restarts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from paless_sandbox.components import Component
from paless_sandbox.layout import (
    BIN,
    BRIDGE,
    BRIDGE_IP,
    CGROUP_ROOT,
    CNI_BIN,
    CNI_NETWORK,
    COMPONENT_KUBECONFIGS,
    CONTAINERD_CONFIG,
    CONTAINERD_METRICS_PORT,
    CONTAINERD_SOCK,
    HOSTS_DIR,
    KUBE_PROXY_HEALTHZ_PORT,
    KUBE_PROXY_METRICS_PORT,
    KUBELET_HEALTHZ_PORT,
    KUBELET_PORT,
    PKI,
    POD_CIDR,
    POD_LOGS,
    REAL_KEY,
    REAL_NODE,
    REALNODE,
    REGISTRY_ADDR,
)

# No cluster DNS (no CoreDNS image): pods address Services by ClusterIP. Name lookups
# fail at once in the pod's own network namespace, never reach the host's resolver.
RESOLV_CONF = "# pods of the sandbox's real node: no DNS server\nnameserver 127.0.0.1\n"


def real_node_components() -> list[Component]:
    """containerd, the kubelet on it, kube-proxy: in start order."""
    no_proxy = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    return [
        Component("containerd", ["containerd", f"--config={CONTAINERD_CONFIG}"],
                  f"http://127.0.0.1:{CONTAINERD_METRICS_PORT}/v1/metrics", env=no_proxy,
                  timeout=30, ports=(CONTAINERD_METRICS_PORT,), marker=str(CONTAINERD_CONFIG)),
        Component("kubelet", [
            str(BIN / "kubelet"), f"--config={REALNODE / 'kubelet.json'}",
            f"--kubeconfig={COMPONENT_KUBECONFIGS / 'kubelet'}",
            f"--root-dir={REALNODE / 'kubelet'}",
            f"--hostname-override={REAL_NODE}", f"--node-ip={BRIDGE_IP}",
            f"--node-labels={REAL_KEY}=true",
        ], f"http://127.0.0.1:{KUBELET_HEALTHZ_PORT}/healthz", ports=(KUBELET_HEALTHZ_PORT,)),
        Component("kube-proxy", [str(BIN / "kube-proxy"),
                                 f"--config={REALNODE / 'kube-proxy.json'}"],
                  f"http://127.0.0.1:{KUBE_PROXY_HEALTHZ_PORT}/healthz",
                  ports=(KUBE_PROXY_HEALTHZ_PORT, KUBE_PROXY_METRICS_PORT)),
    ]


@dataclass(frozen=True)
class NodeFile:
    """A configuration file of the real node, and the component a change to it restarts."""

    path: Path
    text: str
    restarts: str | None


def containerd_config(sandbox_image: str, restrict_oom: bool, runc: str) -> str:
    """The real node's own containerd (CRI on): its state under REALNODE, the pause image
    `sandbox_image`, runc at `runc`, the registry hosts of HOSTS_DIR."""
    state = CONTAINERD_CONFIG.parent
    return f"""# written by scripts/sandbox: the real node's own containerd (CRI on)
version = 2
root = "{state / 'root'}"
state = "{state / 'state'}"
# nothing outside the sandbox's state directory; no snapshotters this machine lacks
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{CONTAINERD_SOCK}"
[ttrpc]
  address = "{CONTAINERD_SOCK}.ttrpc"
[metrics]
  address = "127.0.0.1:{CONTAINERD_METRICS_PORT}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = {"true" if restrict_oom else "false"}
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        Root = "{state / 'runc'}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{REALNODE / 'cni' / 'net.d'}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{HOSTS_DIR}"
"""


def registry_hosts() -> dict[str, str]:
    """Registry host -> its hosts.toml: plain HTTP to the sandbox registry under both of its
    names (containerd would try HTTPS)."""
    return {host: (f'server = "http://{host}"\n\n[host."http://{host}"]\n'
                   '  capabilities = ["pull", "resolve"]\n')
            for host in (REGISTRY_ADDR, REGISTRY_ADDR.replace("127.0.0.1", "localhost"))}


def cni_config() -> dict[str, object]:
    """A bridge on a pod range local to this machine, addresses from host-local."""
    return {"cniVersion": "1.0.0", "name": CNI_NETWORK, "plugins": [
        {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
         "hairpinMode": True,
         "ipam": {"type": "host-local", "dataDir": str(REALNODE / "cni" / "ipam"),
                  "ranges": [[{"subnet": POD_CIDR, "gateway": BRIDGE_IP}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ]}


def kubelet_config() -> dict[str, object]:
    """The kubelet: serving on the bridge address to holders of a sandbox-CA certificate,
    on the node's containerd, cgroupfs under /paless-sandbox, never evicting for disk."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        # the API server reaches it on the bridge address; nothing listens on the host's network
        "address": BRIDGE_IP, "port": KUBELET_PORT, "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": KUBELET_HEALTHZ_PORT,
        "tlsCertFile": str(PKI / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(PKI / "kubelet-serving.key"),
        # only holders of a sandbox-CA certificate (the API server) get past authentication
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                           "x509": {"clientCAFile": str(PKI / "ca.crt")}},
        "authorization": {"mode": "AlwaysAllow"},
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCK}",
        # what Docker uses here: cgroup v1 with the cgroupfs driver (1.35+ refuses v1 by default)
        "cgroupDriver": "cgroupfs", "cgroupRoot": f"/{CGROUP_ROOT}", "failCgroupV1": False,
        "failSwapOn": False,
        "registerWithTaints": [{"key": REAL_KEY, "value": "true", "effect": "NoSchedule"}],
        "podLogsDirectory": str(POD_LOGS),
        "resolvConf": str(REALNODE / "resolv.conf"),
        "maxPods": 30, "serializeImagePulls": False,
        # a shared machine: never evict for its disk, never collect imported images
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "nodefs.inodesFree": "1%", "imagefs.available": "1%",
                         "imagefs.inodesFree": "1%"},
        "rotateCertificates": False, "serverTLSBootstrap": False,
        "shutdownGracePeriod": "0s", "shutdownGracePeriodCriticalPods": "0s",
        "containerLogMaxSize": "10Mi", "containerLogMaxFiles": 2,
    }


def kube_proxy_config() -> dict[str, object]:
    """kube-proxy in iptables mode, NodePorts on the bridge address only."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(COMPONENT_KUBECONFIGS / "kube-proxy")},
        "hostnameOverride": REAL_NODE, "mode": "iptables", "clusterCIDR": POD_CIDR,
        "healthzBindAddress": f"127.0.0.1:{KUBE_PROXY_HEALTHZ_PORT}",
        "metricsBindAddress": f"127.0.0.1:{KUBE_PROXY_METRICS_PORT}",
        # NodePorts on the bridge address only, never on the host's own interfaces
        "nodePortAddresses": [f"{BRIDGE_IP}/32"],
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False,
                     "syncPeriod": "30s", "minSyncPeriod": "1s"},
        # leave the host's conntrack settings alone
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
    }


def node_files(sandbox_image: str, restrict_oom: bool, runc: str) -> list[NodeFile]:
    """Every configuration file of the real node, in the order they are written."""
    return [
        NodeFile(CONTAINERD_CONFIG, containerd_config(sandbox_image, restrict_oom, runc),
                 "containerd"),
        *(NodeFile(HOSTS_DIR / host / "hosts.toml", text, "containerd")
          for host, text in registry_hosts().items()),
        NodeFile(REALNODE / "cni" / "net.d" / f"10-{CNI_NETWORK}.conflist",
                 json.dumps(cni_config(), indent=2) + "\n", "containerd"),
        NodeFile(REALNODE / "resolv.conf", RESOLV_CONF, None),
        NodeFile(REALNODE / "kubelet.json", json.dumps(kubelet_config(), indent=2) + "\n",
                 "kubelet"),
        NodeFile(REALNODE / "kube-proxy.json", json.dumps(kube_proxy_config(), indent=2) + "\n",
                 "kube-proxy"),
    ]


def write_if_changed(path: Path, text: str) -> bool:
    """Write `text` to `path` (atomically) unless it holds it already; whether it wrote."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def write_node_files(files: list[NodeFile]) -> set[str]:
    """Write the files; the components whose configuration changed."""
    changed = set()
    for f in files:
        if write_if_changed(f.path, f.text) and f.restarts:
            changed.add(f.restarts)
    POD_LOGS.mkdir(parents=True, exist_ok=True)
    return changed
