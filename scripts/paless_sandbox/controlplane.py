"""The control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and
the local-path provisioner as components, in start order; and kubectl on the admin's
kubeconfig."""

from __future__ import annotations

import shutil
import subprocess

from paless_sandbox.components import Component, start
from paless_sandbox.layout import (
    APISERVER_PORT,
    BIN,
    COMPONENT_KUBECONFIGS,
    ETCD_PEER_PORT,
    ETCD_PORT,
    KCM_PORT,
    KUBECONFIG,
    KWOK_PORT,
    PKI,
    SCHEDULER_PORT,
    SERVICE_CIDR,
    STATE,
)
from paless_sandbox.messages import SandboxError, say

APISERVER_READYZ = f"https://127.0.0.1:{APISERVER_PORT}/readyz"


def control_plane() -> list[Component]:
    """Every control-plane component, in start order (etcd first)."""
    return [etcd(), kube_apiserver(), kube_controller_manager(), kube_scheduler(), kwok(),
            local_path_provisioner()]


def etcd() -> Component:
    return Component("etcd", [
        str(BIN / "etcd"), "--name=sandbox", f"--data-dir={STATE / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{ETCD_PORT}",
        f"--advertise-client-urls=http://127.0.0.1:{ETCD_PORT}",
        f"--listen-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}",
        f"--initial-cluster=sandbox=http://127.0.0.1:{ETCD_PEER_PORT}",
        "--unsafe-no-fsync", "--quota-backend-bytes=4294967296", "--log-level=warn",
    ], f"http://127.0.0.1:{ETCD_PORT}/health", ports=(ETCD_PORT, ETCD_PEER_PORT))


def kube_apiserver() -> Component:
    return Component("kube-apiserver", [
        str(BIN / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{ETCD_PORT}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
        f"--secure-port={APISERVER_PORT}",
        f"--tls-cert-file={PKI / 'apiserver.crt'}",
        f"--tls-private-key-file={PKI / 'apiserver.key'}",
        f"--client-ca-file={PKI / 'ca.crt'}", f"--token-auth-file={PKI / 'tokens.csv'}",
        "--authorization-mode=RBAC", "--allow-privileged=true",
        f"--service-account-key-file={PKI / 'sa.pub'}",
        f"--service-account-signing-key-file={PKI / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-cluster-ip-range={SERVICE_CIDR}", "--service-node-port-range=30000-32767",
        "--event-ttl=1h", "--profiling=false", f"--cert-dir={PKI / 'generated'}",
        # logs, exec and port-forward of real-node pods: the kubelet trusts the sandbox CA;
        # its Hostname address ("sandbox-real") does not resolve, its InternalIP does
        f"--kubelet-client-certificate={PKI / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={PKI / 'apiserver-kubelet-client.key'}",
        "--kubelet-preferred-address-types=InternalIP,Hostname",
    ], APISERVER_READYZ, timeout=90, ports=(APISERVER_PORT,))


def kube_controller_manager() -> Component:
    return Component("kube-controller-manager", [
        str(BIN / "kube-controller-manager"), f"--kubeconfig={COMPONENT_KUBECONFIGS / 'kcm'}",
        f"--service-account-private-key-file={PKI / 'sa.key'}",
        f"--root-ca-file={PKI / 'ca.crt'}",
        "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={KCM_PORT}",
        "--use-service-account-credentials=false", "--concurrent-deployment-syncs=10",
        "--concurrent-replicaset-syncs=10", "--concurrent-statefulset-syncs=10",
        "--concurrent-job-syncs=10", "--profiling=false",
    ], f"https://127.0.0.1:{KCM_PORT}/healthz", ports=(KCM_PORT,))


def kube_scheduler() -> Component:
    return Component("kube-scheduler", [
        str(BIN / "kube-scheduler"), f"--kubeconfig={COMPONENT_KUBECONFIGS / 'scheduler'}",
        "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={SCHEDULER_PORT}",
        "--profiling=false",
    ], f"https://127.0.0.1:{SCHEDULER_PORT}/healthz", ports=(SCHEDULER_PORT,))


def kwok() -> Component:
    return Component("kwok", [
        # only the simulated nodes: the real node's kubelet reports its own status
        str(BIN / "kwok"), f"--kubeconfig={KUBECONFIG}",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        f"--config={STATE / 'kwok.yaml'}", f"--server-address=127.0.0.1:{KWOK_PORT}",
        "--node-ip=127.0.0.1", f"--node-port={KWOK_PORT}", "--cidr=10.0.0.1/16",
        # a restarted kwok takes a node only once its predecessor's lease expired, and `up`
        # waits for that (kwok.wait_kwok_holds_nodes): 10 s, not kwok's 40, per restart
        "--node-lease-duration-seconds=10",
    ], f"http://127.0.0.1:{KWOK_PORT}/healthz", ports=(KWOK_PORT,))


def local_path_provisioner() -> Component:
    return Component("local-path-provisioner", [
        str(BIN / "local-path-provisioner"), f"--kubeconfig={KUBECONFIG}",
        f"--root={STATE / 'volumes'}",
    ], APISERVER_READYZ)


def start_etcd(c: Component) -> None:
    """Start etcd; data it refuses (a killed run's) is wiped once: it holds nothing precious."""
    try:
        start(c)
    except SandboxError as exc:
        if "port 127.0.0.1:" in str(exc):
            raise  # not its data: something else holds the port
        say(f"etcd did not start on its data; wiping {STATE / 'etcd'} and retrying")
        shutil.rmtree(STATE / "etcd", ignore_errors=True)
        start(c)


def kubectl(*args: str, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    """The pinned kubectl as the admin; with `check`, a failure is a SandboxError."""
    res = subprocess.run([str(BIN / "kubectl"), f"--kubeconfig={KUBECONFIG}", *args],
                         input=stdin, capture_output=True, text=True, check=False)
    if check and res.returncode != 0:
        raise SandboxError(f"kubectl {' '.join(args)} failed: {res.stderr.strip()}")
    return res
