"""What the sandbox runs and where it keeps things: pinned versions, paths, ports and names.

Read once, at import: PALESS_SANDBOX_CACHE moves the binaries, PALESS_SANDBOX_STATE the state.
"""

from __future__ import annotations

import os
from pathlib import Path

K8S_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.5"  # what Kubernetes 1.34 pins (build/dependencies.yaml)
KWOK_VERSION = "v0.8.0"
BUILDX_VERSION = "v0.38.2"
BUILDKIT_VERSION = "v0.34.2"  # what buildx v0.38.2 requires; its Dockerfile frontend

SCRIPTS = Path(__file__).resolve().parent.parent
SCRIPT = SCRIPTS / "sandbox"  # the command users run
REPO = SCRIPTS.parent
SUPPORT = SCRIPTS / "sandbox.d"  # build scripts, kwok stages, Go sources of our own binaries
CACHE = Path(os.environ.get("PALESS_SANDBOX_CACHE", Path.home() / ".cache" / "paless-sandbox"))
BIN = CACHE / f"k8s-{K8S_VERSION}-etcd-{ETCD_VERSION}-kwok-{KWOK_VERSION}" / "bin"
BUILDX_CACHE = CACHE / f"buildx-{BUILDX_VERSION}-buildkit-{BUILDKIT_VERSION}"
STATE = Path(os.environ.get("PALESS_SANDBOX_STATE",
                            Path.home() / ".local" / "state" / "paless-sandbox"))
LOGS = STATE / "logs"
PIDS = STATE / "pids"
PKI = STATE / "pki"
COMPONENT_KUBECONFIGS = STATE / "kubeconfigs"
KUBECONFIG = STATE / "kubeconfig"
RESTRICTED_KUBECONFIG = STATE / "kubeconfig-restricted"
RESTRICTED_NAMESPACE = "sandbox-restricted"

ETCD_PORT, ETCD_PEER_PORT = 23790, 23800
APISERVER_PORT = 16443
KCM_PORT, SCHEDULER_PORT = 20257, 20259
KWOK_PORT = 10247
REGISTRY_ADDR = "127.0.0.1:5000"
SERVICE_CIDR = "10.96.0.0/16"

# The real node: a kubelet and kube-proxy of the same release on a containerd of its own,
# with a CNI bridge on a pod range local to this machine. Tainted and labelled, so only
# pods that tolerate REAL_KEY and select it land there.
REAL_NODE = "sandbox-real"
REAL_KEY = "sandbox.paless.io/real"  # label and NoSchedule taint, value "true"
REALNODE = STATE / "realnode"
# the dev overlay's hostPath volumes (k8s/overlays/dev/volumes.yaml), where the rclone
# sidecars' Bidirectional FUSE mounts reach the host
DEV_HOST_PATHS = Path("/var/lib/paless")
CONTAINERD_CONFIG = REALNODE / "containerd" / "config.toml"
CONTAINERD_SOCK = REALNODE / "containerd" / "containerd.sock"
HOSTS_DIR = REALNODE / "containerd" / "certs.d"  # registry hosts: plain HTTP to ours
CNI_NETWORK = "paless-sandbox"
CNI_BIN = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
BRIDGE, BRIDGE_IP, POD_CIDR = "paless0", "10.244.0.1", "10.244.0.0/24"
FORWARD_CHAIN = "PALESS-SANDBOX"  # keeps pod traffic on the bridge
CGROUP_ROOT = "paless-sandbox"  # the kubelet's pods live under /paless-sandbox/kubepods
POD_LOGS = REALNODE / "pod-logs"
UNAVAILABLE = REALNODE / "unavailable.json"  # why the real node does not run (read by tests)
KUBELET_PORT, KUBELET_HEALTHZ_PORT = 10260, 10261
KUBE_PROXY_HEALTHZ_PORT, KUBE_PROXY_METRICS_PORT = 10262, 10263
CONTAINERD_METRICS_PORT = 10264
# A port-forward to any port of a simulated pod reaches this local port (kwok's
# ClusterPortForward): a test serves a stand-in there (nothing listens otherwise).
KWOK_FORWARD_PORT = 10265
# CoreDNS (realstack) on the real node's host network, bound to the bridge address: the
# cluster DNS Service every pod's resolv.conf names, then its health, ready and metrics ports.
CLUSTER_DNS_IP = "10.96.0.10"
COREDNS_HEALTH_PORT, COREDNS_READY_PORT, COREDNS_METRICS_PORT = 10266, 10267, 10268
REAL_NODE_TIMEOUT = 120.0  # from kubelet start to node Ready
