"""Unit tests of the deploy graph on plain data: each row of the rules table, cycles,
inferred needs, waves, whole-word components, and the Paless overlays' graph."""

from __future__ import annotations

from typing import Any

import pytest

from paless_deploy.core.errors import ConfigError
from paless_deploy.core.manifests.components import component_of
from paless_deploy.core.plan.graph import DeployGraph, build_graph
from paless_deploy.core.plan.plan import looks_like_ours
from paless_deploy.core.plan.rules import RULES

NS = "team"


def meta(name: str, namespace: str | None = NS, **extra: object) -> dict:
    out: dict = {"name": name, **extra}
    if namespace:
        out["namespace"] = namespace
    return out


def obj(kind: str, name: str, api_version: str = "v1", namespace: str | None = NS,
        **fields: object) -> dict:
    return {"apiVersion": api_version, "kind": kind, "metadata": meta(name, namespace),
            **fields}


def pods(kind: str, name: str, spec: dict | None = None, labels: dict | None = None,
         annotations: dict | None = None, **more: object) -> dict:
    """A workload (apps/v1) or Job (batch/v1) with one container and this pod spec."""
    labels = labels or {"app": name}
    pod_spec = {"containers": [{"name": "c", "image": "example/x:1"}], **(spec or {})}
    out = obj(kind, name, "batch/v1" if kind == "Job" else "apps/v1",
              spec={"selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": pod_spec}, **more})
    if annotations:
        out["metadata"]["annotations"] = annotations
    return out


def service(name: str, selector: dict | None = None) -> dict:
    return obj("Service", name, spec={"selector": selector or {"app": name}})


def needs(graph: DeployGraph, ref: str) -> dict[str, tuple[str, bool]]:
    """`Kind/name` -> (rule, wait for ready) of what `ref` waits for."""
    i = next(i for i, n in enumerate(graph.nodes) if n.ref == ref)
    return {graph.nodes[n.on].ref: (n.rule, n.ready) for n in graph.nodes[i].needs}


CRD: dict[str, Any] = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "widgets.example.com"},
       "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"kind": "Widget", "plural": "widgets"}}}
WEBHOOK_SERVER = pods("Deployment", "hooks")
WEBHOOK = {"apiVersion": "admissionregistration.k8s.io/v1",
           "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "widgets"},
           "webhooks": [{"name": "w.example.com",
                         "clientConfig": {"service": {"namespace": NS, "name": "hooks"}},
                         "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"]}]}]}
API_SERVICE = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
               "metadata": {"name": "v1beta1.metrics.example.com"},
               "spec": {"group": "metrics.example.com", "version": "v1beta1",
                        "service": {"namespace": NS, "name": "metrics"}}}
STS = pods("StatefulSet", "db", serviceName="db-headless",
           volumeClaimTemplates=[{"metadata": {"name": "data"}}])

# rule -> (the tree, the object that waits, what it waits for, whether until ready)
CASES: dict[str, tuple[list[dict], str, str, bool]] = {
    "custom-resource": ([CRD, obj("Widget", "w", "example.com/v1")], "Widget/w",
                        "CustomResourceDefinition/widgets.example.com", True),
    "namespace": ([obj("Namespace", "other", namespace=None),
                   obj("ConfigMap", "c", namespace="other")],
                  "ConfigMap/c", "Namespace/other", True),
    "service-account": ([obj("ServiceAccount", "runner"),
                         pods("Deployment", "d", {"serviceAccountName": "runner"})],
                        "Deployment/d", "ServiceAccount/runner", True),
    "priority-class": ([obj("PriorityClass", "high", "scheduling.k8s.io/v1", namespace=None),
                        pods("Deployment", "d", {"priorityClassName": "high"})],
                       "Deployment/d", "PriorityClass/high", True),
    "config": ([obj("ConfigMap", "settings"),
                pods("Deployment", "d", {"volumes": [{"name": "v", "configMap": {
                    "name": "settings"}}]})], "Deployment/d", "ConfigMap/settings", True),
    "claim": ([obj("PersistentVolumeClaim", "data"),
               pods("Deployment", "d", {"volumes": [{"name": "v", "persistentVolumeClaim": {
                   "claimName": "data"}}]})], "Deployment/d", "PersistentVolumeClaim/data",
              True),
    "storage-class": ([obj("StorageClass", "fast", "storage.k8s.io/v1", namespace=None),
                       obj("PersistentVolumeClaim", "data", spec={"storageClassName": "fast"})],
                      "PersistentVolumeClaim/data", "StorageClass/fast", True),
    "volume": ([obj("PersistentVolume", "pv-1", namespace=None),
                obj("PersistentVolumeClaim", "data", spec={"volumeName": "pv-1"})],
               "PersistentVolumeClaim/data", "PersistentVolume/pv-1", True),
    "selects": ([pods("Deployment", "api"), service("api")], "Service/api",
                "Deployment/api", True),
    "governing-service": ([STS, service("db-headless", {"app": "db"})], "StatefulSet/db",
                          "Service/db-headless", True),
    "job-addresses": ([pods("Deployment", "pg"), service("pg"),
                       pods("Job", "seed", {"containers": [{
                           "name": "c", "image": "example/x:1",
                           "env": [{"name": "PGHOST", "value": "pg"}]}]})],
                      "Job/seed", "Deployment/pg", True),
    "api-backend": ([WEBHOOK_SERVER, service("hooks"), WEBHOOK],
                    "ValidatingWebhookConfiguration/widgets", "Deployment/hooks", True),
    "aggregated-api": ([API_SERVICE, obj("NodeMetrics", "n", "metrics.example.com/v1beta1")],
                       "NodeMetrics/n", "APIService/v1beta1.metrics.example.com", True),
    "webhook": ([WEBHOOK, obj("Widget", "w", "example.com/v1")], "Widget/w",
                "ValidatingWebhookConfiguration/widgets", False),
    "scale-target": ([pods("Deployment", "api"),
                      obj("HorizontalPodAutoscaler", "api", "autoscaling/v2", spec={
                          "scaleTargetRef": {"kind": "Deployment", "name": "api"}})],
                     "HorizontalPodAutoscaler/api", "Deployment/api", False),
    "ingress": ([obj("Service", "api", spec={}),
                 obj("Ingress", "api", "networking.k8s.io/v1", spec={"rules": [{"http": {
                     "paths": [{"backend": {"service": {"name": "api"}}}]}}]})],
                "Ingress/api", "Service/api", True),
    "rbac": ([obj("Role", "reader", "rbac.authorization.k8s.io/v1"),
              obj("RoleBinding", "reader", "rbac.authorization.k8s.io/v1",
                  roleRef={"kind": "Role", "name": "reader"})],
             "RoleBinding/reader", "Role/reader", True),
    "namespace-policy": ([obj("ResourceQuota", "quota"), pods("Deployment", "d")],
                         "Deployment/d", "ResourceQuota/quota", True),
    "depends-on": ([obj("ConfigMap", "first"),
                    pods("Deployment", "d", annotations={
                        "paless.io/depends-on": "ConfigMap/first"})],
                   "Deployment/d", "ConfigMap/first", True),
    "phase": ([pods("StatefulSet", "postgres"),
               pods("Job", "late", annotations={"paless.io/phase": "migrate"})],
              "Job/late", "StatefulSet/postgres", True),
    "paless-order": ([pods("StatefulSet", "postgres"), pods("Deployment", "web")],
                     "Deployment/web", "StatefulSet/postgres", True),
}


def test_every_rule_of_the_table_has_a_case() -> None:
    assert {rule.name for rule in RULES} == set(CASES)


@pytest.mark.parametrize("rule", list(CASES))
def test_each_rule_finds_its_need(rule: str) -> None:
    objects, waiter, needed, ready = CASES[rule]
    graph = build_graph(objects)
    assert needs(graph, waiter)[needed] == (rule, ready)
    assert needs(graph, needed) == {} or waiter not in needs(graph, needed)


def test_a_rbac_binding_comes_before_the_pods_of_its_service_account() -> None:
    graph = build_graph([
        obj("RoleBinding", "reader", "rbac.authorization.k8s.io/v1",
            subjects=[{"kind": "ServiceAccount", "name": "runner", "namespace": NS}]),
        pods("Deployment", "d", {"serviceAccountName": "runner"})])
    assert needs(graph, "Deployment/d") == {"RoleBinding/reader": ("rbac", True)}


def test_a_job_waits_for_a_statefulset_whose_claim_it_mounts() -> None:
    graph = build_graph([STS, pods("Job", "backup", {"volumes": [
        {"name": "v", "persistentVolumeClaim": {"claimName": "data-db-0"}}]})])
    assert needs(graph, "Job/backup")["StatefulSet/db"] == ("job-addresses", True)


def test_a_governing_service_goes_before_its_statefulset_not_after() -> None:
    graph = build_graph([STS, service("db-headless", {"app": "db"})])
    assert needs(graph, "Service/db-headless") == {}
    assert "Service/db-headless" in needs(graph, "StatefulSet/db")


def test_a_job_addressing_a_governing_service_still_waits_for_the_statefulset() -> None:
    job = pods("Job", "init", {"containers": [{"name": "c", "image": "example/x:1",
                                                "args": ["psql", "-h", "db-headless"]}]})
    graph = build_graph([STS, service("db-headless", {"app": "db"}), job])
    assert set(needs(graph, "Job/init")) == {"Service/db-headless", "StatefulSet/db"}


def test_a_job_reads_hosts_from_the_config_it_mounts() -> None:
    config = obj("ConfigMap", "script", data={"run.sh": "curl http://api:8080/ready"})
    job = pods("Job", "smoke", {"volumes": [{"name": "s", "configMap": {"name": "script"}}]})
    graph = build_graph([pods("Deployment", "api"), service("api"), config, job])
    assert needs(graph, "Job/smoke")["Service/api"] == ("job-addresses", True)
    assert "mounted ConfigMap script" in graph.nodes[3].needs[1].why


def test_depends_on_takes_kind_and_name_or_a_bare_name() -> None:
    objects = [obj("ConfigMap", "a"), obj("Secret", "a"), obj("ConfigMap", "b"),
               pods("Deployment", "d", annotations={"paless.io/depends-on": " a , ConfigMap/b"})]
    assert set(needs(build_graph(objects), "Deployment/d")) == {
        "ConfigMap/a", "Secret/a", "ConfigMap/b"}


def test_depends_on_naming_nothing_of_the_tree_is_exit_2() -> None:
    d = pods("Deployment", "d", annotations={"paless.io/depends-on": "Job/migrat"})
    with pytest.raises(ConfigError) as err:
        build_graph([pods("Job", "migrate"), d])
    assert err.value.code == "bad-depends-on" and err.value.exit_code == 2
    assert "Deployment/d" in err.value.message and "Job/migrat" in err.value.message


def test_a_cycle_is_exit_2_naming_it() -> None:
    a = pods("Deployment", "a", annotations={"paless.io/depends-on": "Deployment/b"})
    b = pods("Deployment", "b", annotations={"paless.io/depends-on": "Deployment/a"})
    with pytest.raises(ConfigError) as err:
        build_graph([obj("ConfigMap", "x"), a, b])
    assert err.value.code == "dependency-cycle" and err.value.exit_code == 2
    assert "Deployment/a (in team) waits for Deployment/b" in err.value.message
    assert "Deployment/b (in team) waits for Deployment/a" in err.value.message


def test_an_inferred_need_that_would_close_a_cycle_is_dropped() -> None:
    # a smoke-test Job addressing the web app: the Paless order (apps after Jobs) gives way
    web = pods("Deployment", "web", labels={"app.kubernetes.io/component": "web"})
    smoke = pods("Job", "smoke", {"containers": [{"name": "c", "image": "example/x:1",
                                                   "args": ["curl", "http://web:8000/"]}]})
    objects = [pods("StatefulSet", "postgres"), web,
               service("web", {"app.kubernetes.io/component": "web"}), smoke]
    graph = build_graph(objects)
    assert "Deployment/web" in needs(graph, "Job/smoke")
    assert "Job/smoke" not in needs(graph, "Deployment/web")
    assert needs(graph, "Deployment/web")["StatefulSet/postgres"] == ("paless-order", True)


def test_definitions_need_nothing() -> None:
    crd = {**CRD, "metadata": {"name": "widgets.example.com", "annotations": {
        "paless.io/depends-on": "ConfigMap/c"}}}
    graph = build_graph([obj("ConfigMap", "c"), crd])
    assert graph.nodes[1].definition and graph.nodes[1].needs == ()


def test_a_tree_with_no_paless_components_gets_references_alone() -> None:
    objects = [pods("Deployment", "prometheus-operator"), pods("Job", "migrations"),
               pods("Deployment", "kube-scheduler-exporter")]
    assert not looks_like_ours(objects)
    graph = build_graph(objects)
    assert all(node.needs == () for node in graph.nodes)


def test_independent_objects_share_a_wave_and_jobs_follow_what_they_address() -> None:
    def db(name: str) -> dict:
        return pods("StatefulSet", name, labels={"app.kubernetes.io/component": name})

    def init(name: str, host: str) -> dict:
        return pods("Job", name, {"containers": [{"name": "c", "image": "example/x:1",
                                                   "env": [{"name": "H", "value": host}]}]})

    objects = [db("minio"), service("minio", {"app.kubernetes.io/component": "minio"}),
               db("postgres"), service("postgres", {"app.kubernetes.io/component": "postgres"}),
               db("redis"), init("bucket", "minio:9000"), init("role", "postgres"),
               pods("Deployment", "scheduler", labels={"app.kubernetes.io/component": "scheduler"}),
               pods("Deployment", "worker", labels={"app.kubernetes.io/component": "worker"}),
               pods("Deployment", "web", labels={"app.kubernetes.io/component": "web"})]
    graph = build_graph(objects)
    wave = {graph.nodes[i].ref: w for w, members in enumerate(graph.waves()) for i in members}
    assert wave["StatefulSet/minio"] == wave["StatefulSet/postgres"] == wave["StatefulSet/redis"]
    assert wave["Job/bucket"] > wave["StatefulSet/minio"]
    assert wave["Job/role"] > wave["StatefulSet/postgres"]
    assert wave["Job/bucket"] == wave["Job/role"]  # neither waits for the other
    # the scheduler and the workers together, the web app after both
    assert wave["Deployment/scheduler"] == wave["Deployment/worker"] < wave["Deployment/web"]
    assert wave["Deployment/scheduler"] > wave["Job/role"]
    web = graph.nodes[[n.ref for n in graph.nodes].index("Deployment/web")]
    assert {graph.nodes[n.on].ref for n in web.needs if n.rule == "paless-order"} >= {
        "Deployment/scheduler", "Deployment/worker"}


@pytest.mark.parametrize(("name", "component"), [
    ("kube-scheduler", None), ("redis-exporter", None), ("kube-state-metrics", None),
    ("paperless-worker", "worker"), ("minio-service", "minio"), ("postgres-0", "postgres"),
    ("paperless", "web"), ("paless-scheduler", "scheduler"), ("celery", "worker"),
])
def test_components_are_recognised_by_whole_words(name: str, component: str | None) -> None:
    found = component_of(obj("ServiceMonitor", name, "monitoring.coreos.com/v1"))
    assert (found[0] if found else None) == component


def test_a_servicemonitor_named_kube_scheduler_is_not_in_the_scheduler_phase() -> None:
    crd = {**CRD, "spec": {**CRD["spec"], "group": "monitoring.coreos.com",
                           "names": {"kind": "ServiceMonitor", "plural": "servicemonitors"}}}
    graph = build_graph([crd, obj("ServiceMonitor", "kube-scheduler", "monitoring.coreos.com/v1")])
    assert graph.nodes[1].phase != "scheduler"
    assert needs(graph, "ServiceMonitor/kube-scheduler") == {
        "CustomResourceDefinition/widgets.example.com": ("custom-resource", True)}


def test_plan_describes_needs_and_collapses_an_annotated_phase() -> None:
    objects = [pods("StatefulSet", "s"), pods("Job", "j"),
               pods("Job", "late", annotations={"paless.io/phase": "migrate"})]
    lines = build_graph(objects).describe_needs(2)
    assert lines == [("every workload and Job of the phases before migrate: annotation "
                      "paless.io/phase=migrate")]


def test_an_annotated_phase_orders_annotated_objects_and_workloads_not_config() -> None:
    # a ConfigMap of the config phase may wait for an annotated Job: no cycle
    job = pods("Job", "seed", annotations={"paless.io/phase": "data-init"})
    early = obj("Secret", "early")
    early["metadata"]["annotations"] = {"paless.io/phase": "config"}
    objects = [early, obj("ConfigMap", "report"), job]
    objects[1]["metadata"]["annotations"] = {"paless.io/depends-on": "Job/seed"}
    graph = build_graph(objects)
    assert needs(graph, "ConfigMap/report") == {"Job/seed": ("depends-on", True)}
    assert needs(graph, "Job/seed") == {"Secret/early": ("phase", True)}


def test_what_waits_follows_needs_through_chains_of_any_length() -> None:
    from paless_deploy.core.plan.graph import Node
    from paless_deploy.core.plan.rules import Need

    def node(*needs: Need) -> Node:
        return Node(obj=obj("ConfigMap", "x"), phase="config", reason="test", needs=needs)

    # 0 applied only; 1 needs 0 applied (waits for nothing running); 2 needs 1 ready;
    # 3 needs 2 applied (waits, through 2); 4 needs nothing
    graph = DeployGraph((node(), node(Need(0, "a", ready=False)), node(Need(1, "b")),
                         node(Need(2, "c", ready=False)), node()))
    assert graph.waiting() == {2, 3}
    # a chain far past Python's recursion limit
    length = 5000
    chain = DeployGraph((node(),) + tuple(node(Need(i, "next")) for i in range(length - 1)))
    assert chain.waiting() == set(range(1, length))
