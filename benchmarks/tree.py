"""A generated tree of N apps x 10 objects, for the scale measurements of `scripts/bench`.

Each app is what a small service of a real cluster carries: a Deployment (HPA-managed, so
it names its initial replicas and no `spec.replicas`), its Service, ConfigMap, Secret,
HorizontalPodAutoscaler, PodDisruptionBudget, ServiceAccount, Role, RoleBinding and
NetworkPolicy. Pods tolerate and select the benchmark's own kwok nodes (see `nodes.py`), so
hundreds of them never crowd the sandbox's shared nodes.
"""

from __future__ import annotations

from pathlib import Path

import yaml

OBJECTS_PER_APP = 10
APP = "bench"  # the tree's one app (bench/Dockerfile): every Deployment runs its image
NODE_LABEL = "paless.io/bench-node"  # on the benchmark's nodes, and their taint's key
CHANGE_ANNOTATION = "bench.paless.io/revision"  # a pod-template change: one app rolls out


def app_name(index: int) -> str:
    return f"app-{index:03d}"


def app_objects(index: int, revision: int = 0, bench_nodes: bool = True) -> list[dict]:
    """The ten objects of app `index`; `revision` changes its pod template (a rollout);
    `bench_nodes` puts its pods on the benchmark's nodes."""
    name = app_name(index)
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": name}
    meta = {"name": name, "labels": labels}
    template_annotations = {CHANGE_ANNOTATION: str(revision)}
    placement = {"nodeSelector": {NODE_LABEL: "true"},
                 "tolerations": [{"key": NODE_LABEL, "operator": "Exists",
                                  "effect": "NoSchedule"}]} if bench_nodes else {}
    container = {
        "name": "app", "image": APP, "ports": [{"containerPort": 8080, "name": "http"}],
        "envFrom": [{"configMapRef": {"name": f"{name}-config"}}],
        "env": [{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {
            "name": f"{name}-secret", "key": "token"}}}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                      "limits": {"cpu": "100m", "memory": "64Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
         "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                    "resourceNames": [f"{name}-config"], "verbs": ["get", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name}]},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": f"{name}-config", "labels": labels},
         "data": {"LOG_LEVEL": "info", "LISTEN": ":8080", "APP_NAME": name}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": f"{name}-secret", "labels": labels},
         "stringData": {"token": f"bench-token-{index}"}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta,
         "spec": {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"podSelector": {}}],
                               "ports": [{"port": 8080, "protocol": "TCP"}]}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {**meta, "annotations": {"paless.io/initial-replicas": "1"}},
         "spec": {"selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels,
                                            "annotations": template_annotations},
                               "spec": {"serviceAccountName": name, **placement,
                                        "containers": [container]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"selector": labels, "ports": [{"name": "http", "port": 80,
                                                 "targetPort": "http"}]}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta,
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": name},
                  "minReplicas": 1, "maxReplicas": 3,
                  "metrics": [{"type": "Resource", "resource": {
                      "name": "cpu", "target": {"type": "Utilization",
                                                "averageUtilization": 80}}}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta,
         "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}},
    ]


def write_tree(project: Path, apps: int, changed: dict[int, int] | None = None,
               bench_nodes: bool = True) -> Path:
    """A project directory paless-deploy deploys: one app image (a FROM-scratch Dockerfile
    that builds offline, in a directory of its own: the manifests are not in its build
    context, so changing them never changes its tag), k8s/base (one file per app) and the
    dev overlay; `changed` maps an app index to the revision of its pod template."""
    (project / APP).mkdir(parents=True, exist_ok=True)
    (project / APP / "Dockerfile").write_text("FROM scratch\nCOPY app.txt /app.txt\n")
    (project / APP / "app.txt").write_text("the benchmark's app\n")
    base = project / "k8s" / "base"
    overlay = project / "k8s" / "overlays" / "dev"
    base.mkdir(parents=True, exist_ok=True)
    overlay.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(apps):
        path = base / f"{app_name(i)}.yaml"
        path.write_text(yaml.safe_dump_all(
            app_objects(i, (changed or {}).get(i, 0), bench_nodes), sort_keys=False))
        files.append(path.name)
    (base / "kustomization.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
         "resources": files}, sort_keys=False))
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
         "resources": ["../../base"]}, sort_keys=False))
    return project
