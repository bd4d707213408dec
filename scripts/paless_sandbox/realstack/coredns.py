"""The sandbox's cluster DNS: CoreDNS (the real-stack image) on the real node's host network,
bound to the bridge address, behind the kube-dns Service at CLUSTER_DNS_IP. `kubectl apply`
of the same objects is a no-op, so applying is idempotent."""

from __future__ import annotations

import json

from paless_sandbox.controlplane import kubectl
from paless_sandbox.layout import (
    APISERVER_PORT,
    BRIDGE_IP,
    CLUSTER_DNS_IP,
    COREDNS_HEALTH_PORT,
    COREDNS_METRICS_PORT,
    COREDNS_READY_PORT,
    REAL_KEY,
)
from paless_sandbox.messages import SandboxError
from paless_sandbox.realstack.recipes import BY_NAME

NAMESPACE = "kube-system"
LABELS = {"k8s-app": "kube-dns"}
ROLLOUT_TIMEOUT = "180s"
JSON = dict[str, object]


def corefile() -> str:
    """cluster.local answered from the API; every other name NXDOMAIN (no upstream here)."""
    return (f"cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {{\n    bind {BRIDGE_IP}\n"
            f"    errors\n    health {BRIDGE_IP}:{COREDNS_HEALTH_PORT} {{\n"
            f"        lameduck 2s\n    }}\n    ready {BRIDGE_IP}:{COREDNS_READY_PORT}\n"
            "    kubernetes cluster.local in-addr.arpa ip6.arpa {\n        pods insecure\n"
            f"        ttl 30\n    }}\n    prometheus {BRIDGE_IP}:{COREDNS_METRICS_PORT}\n"
            "    cache 30\n    reload\n    loadbalance\n}\n"
            f".:53 {{\n    bind {BRIDGE_IP}\n    errors\n    template ANY ANY {{\n"
            "        rcode NXDOMAIN\n    }\n}\n")


def rbac_objects() -> list[JSON]:
    """The ServiceAccount and what CoreDNS's kubernetes plugin reads (list and watch)."""
    rules = [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
              "verbs": ["list", "watch"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
              "verbs": ["list", "watch"]}]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "coredns", "namespace": NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "system:coredns"}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:coredns"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "system:coredns"},
         "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": NAMESPACE}]},
    ]


def container() -> JSON:
    """CoreDNS reaching the API server on the host (hostNetwork: no Service IP routing
    needed), unprivileged but for binding port 53."""
    image = BY_NAME["coredns"].reference
    return {
        "name": "coredns", "image": image, "args": ["-conf", "/etc/coredns/Corefile"],
        "env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
                {"name": "KUBERNETES_SERVICE_PORT", "value": str(APISERVER_PORT)}],
        "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                  {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                  {"containerPort": COREDNS_METRICS_PORT, "name": "metrics",
                   "protocol": "TCP"}],
        "livenessProbe": {"httpGet": {"path": "/health", "port": COREDNS_HEALTH_PORT},
                          "initialDelaySeconds": 10, "periodSeconds": 10,
                          "failureThreshold": 5},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": COREDNS_READY_PORT},
                           "periodSeconds": 2},
        "resources": {"limits": {"memory": "170Mi"},
                      "requests": {"cpu": "50m", "memory": "40Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
    }


def workload_objects() -> list[JSON]:
    """The Corefile, the Deployment on the real node and the kube-dns Service."""
    pod_spec: JSON = {
        "serviceAccountName": "coredns", "priorityClassName": "system-cluster-critical",
        "hostNetwork": True, "dnsPolicy": "Default", "nodeSelector": {REAL_KEY: "true"},
        "tolerations": [{"key": REAL_KEY, "operator": "Equal", "value": "true",
                         "effect": "NoSchedule"},
                        {"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "containers": [container()],
        "volumes": [{"name": "config", "configMap": {
            "name": "coredns", "items": [{"key": "Corefile", "path": "Corefile"}]}}],
    }
    return [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "coredns", "namespace": NAMESPACE},
         "data": {"Corefile": corefile()}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "coredns", "namespace": NAMESPACE, "labels": LABELS},
         "spec": {"replicas": 1, "selector": {"matchLabels": LABELS},
                  "template": {"metadata": {"labels": LABELS}, "spec": pod_spec}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": NAMESPACE,
                      "labels": {**LABELS, "kubernetes.io/name": "CoreDNS"}},
         "spec": {"clusterIP": CLUSTER_DNS_IP, "selector": LABELS, "ports": [
             {"name": "dns", "port": 53, "protocol": "UDP"},
             {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
             {"name": "metrics", "port": 9153, "protocol": "TCP",
              "targetPort": COREDNS_METRICS_PORT}]}},
    ]


def coredns_objects() -> JSON:
    """Every object, as one v1 List for `kubectl apply -f -`."""
    return {"apiVersion": "v1", "kind": "List", "items": [*rbac_objects(), *workload_objects()]}


def dns_problem() -> str | None:
    """Why cluster DNS does not answer (None: kube-dns is at CLUSTER_DNS_IP and CoreDNS has
    a ready replica)."""
    ip = kubectl("-n", NAMESPACE, "get", "service", "kube-dns", "-o",
                 "jsonpath={.spec.clusterIP}", check=False).stdout.strip()
    if ip != CLUSTER_DNS_IP:
        return f"no kube-dns Service at {CLUSTER_DNS_IP}" + (f" (it is at {ip})" if ip else "")
    ready = kubectl("-n", NAMESPACE, "get", "deployment", "coredns", "-o",
                    "jsonpath={.status.readyReplicas}", check=False).stdout.strip()
    return None if ready not in ("", "0") else "CoreDNS has no ready replica"


def ensure_dns() -> str:
    """CoreDNS answering at CLUSTER_DNS_IP: applied (and waited for) when it does not; what
    was done, in a few words."""
    why = dns_problem()
    if why is None:
        return "present"
    kubectl("apply", "-f", "-", stdin=json.dumps(coredns_objects()))
    res = kubectl("-n", NAMESPACE, "rollout", "status", "deployment/coredns",
                  f"--timeout={ROLLOUT_TIMEOUT}", check=False)
    if res.returncode != 0:
        pods = kubectl("-n", NAMESPACE, "get", "pods", "-l", "k8s-app=kube-dns", "-o", "wide",
                       check=False).stdout
        raise SandboxError(f"CoreDNS did not become ready within {ROLLOUT_TIMEOUT} ({why} "
                           f"before): {res.stderr.strip()[-300:]}\n{pods}It runs on the real "
                           f"node only: `scripts/sandbox status` says whether it is Ready, "
                           "`kubectl -n kube-system describe pod -l k8s-app=kube-dns` why "
                           "the pod is not.")
    return f"deployed ({why} before)"
