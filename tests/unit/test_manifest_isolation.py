"""Isolation in the real k8s/ overlays: who the NetworkPolicies let reach what, and the
credentials (Redis password, MinIO app user) as the rendered pods receive them.

The policies are read with NetworkPolicy's own semantics (a small evaluator below, on
labels and namespaces), and the data services' clients are found in the render itself
(who is configured to talk to PostgreSQL, Redis, MinIO), so a new client that the
policies forget, or a policy that lets in someone who needs nothing, fails here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from paless_deploy.core.configuration.variables import VARIABLES
from paless_deploy.core.manifests.podspec import pod_spec
from paless_deploy.stages.render import render_tree
from tests.unit.test_manifests import (
    APP_IMAGES,
    NAMESPACE,
    OVERLAYS,
    PROJECT,
    by_name,
    containers,
    pods,
    rendered,
    variables_for,
)

COMPONENT = "app.kubernetes.io/component"
NAME_LABEL = "kubernetes.io/metadata.name"
TRAEFIK = {"app.kubernetes.io/name": "traefik"}


@dataclass(frozen=True)
class Peer:
    """A pod that opens a connection: its labels and its namespace's."""

    labels: dict
    namespace: str = NAMESPACE

    @property
    def namespace_labels(self) -> dict:
        return {NAME_LABEL: self.namespace}


def selects(selector: dict, labels: dict) -> bool:
    """A Kubernetes label selector applied to a set of labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if ((op == "In" and labels.get(key) not in values)
                or (op == "NotIn" and labels.get(key) in values)
                or (op == "Exists" and key not in labels)
                or (op == "DoesNotExist" and key in labels)):
            return False
    return True


def peer_matches(rule_peer: dict, peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        return True  # an address range: anything may come from there
    ns_selector = rule_peer.get("namespaceSelector")
    if ns_selector is None:
        in_namespace = peer.namespace == NAMESPACE
    else:
        in_namespace = selects(ns_selector, peer.namespace_labels)
    return in_namespace and selects(rule_peer.get("podSelector") or {}, peer.labels)


def policies(objects: list[dict], direction: str) -> list[dict]:
    return [o for o in objects if o["kind"] == "NetworkPolicy"
            and direction in o["spec"].get("policyTypes", ["Ingress"])]


def admitted(objects: list[dict], target: dict, port: int, peer: Peer) -> bool:
    """Whether `peer` may connect to a pod labelled `target` of the namespace on `port`."""
    selecting = [p for p in policies(objects, "Ingress") if selects(p["spec"]["podSelector"],
                                                                    target)]
    if not selecting:
        return True  # a pod no policy selects is open
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            ports = [p["port"] for p in rule.get("ports") or []]
            if ports and port not in ports:
                continue
            sources = rule.get("from")
            if not sources or any(peer_matches(s, peer) for s in sources):
                return True
    return False


def template_labels(objects: list[dict]) -> dict[str, dict]:
    """component -> the pod labels of every pod template in the render."""
    found = {}
    for obj, _ in pods(objects):
        labels = obj["spec"]["template"]["metadata"].get("labels") or {}
        found[labels[COMPONENT]] = labels
    return found


def clients_of(objects: list[dict]) -> dict[str, set[str]]:
    """Which components the render configures to talk to each data service: PostgreSQL
    (the Paperless config's DB host, or libpq's PGHOST), Redis (a broker URL), MinIO (the
    rclone configuration, or its address in a command)."""
    config = by_name(objects, "ConfigMap", "paperless-config")["data"]
    clients: dict[str, set[str]] = {"postgres": set(), "redis": set(), "minio": set()}
    for obj, spec in pods(objects):
        component = obj["spec"]["template"]["metadata"]["labels"][COMPONENT]
        volumes = {(v.get("configMap") or {}).get("name") for v in spec.get("volumes") or []}
        for c in containers(spec):
            env = {e["name"] for e in c.get("env") or []}
            if any((s.get("configMapRef") or {}).get("name") == "paperless-config"
                   for s in c.get("envFrom") or []):
                env |= set(config)
            text = json.dumps([c.get("command"), c.get("args")])
            if "PAPERLESS_DBHOST" in env or "PGHOST" in env:
                clients["postgres"].add(component)
            if "PAPERLESS_REDIS" in env:
                clients["redis"].add(component)
            if "rclone-config" in volumes or "minio:9000" in text:
                clients["minio"].add(component)
    return clients


SERVICES = {"postgres": 5432, "redis": 6379, "minio": 9000}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_data_services_admit_exactly_their_clients(overlay: str) -> None:
    objects = rendered(overlay)
    labels = template_labels(objects)
    clients = clients_of(objects)
    assert clients["postgres"] >= {"web", "worker", "scheduler", "migrate", "postgres-init"}
    for service, port in SERVICES.items():
        allowed = {c for c, lbl in labels.items()
                   if admitted(objects, labels[service], port, Peer(lbl))}
        assert allowed == clients[service], (service, allowed, clients[service])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_pod_of_another_namespace_reaches_the_data_services(overlay: str) -> None:
    objects = rendered(overlay)
    labels = template_labels(objects)
    for service, port in SERVICES.items():
        for lbl in labels.values():  # even a pod labelled as one of ours
            assert not admitted(objects, labels[service], port, Peer(lbl, "paless-other"))
        assert not admitted(objects, labels[service], port, Peer({COMPONENT: "debug"}))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_closed_unless_a_policy_opens_it(overlay: str) -> None:
    objects = rendered(overlay)
    deny = by_name(objects, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    labels = template_labels(objects)
    stranger = Peer({"run": "curl"}, "paless-other")
    for component in ("worker", "scheduler", "migrate", "postgres-init", "minio-init"):
        assert not admitted(objects, labels[component], 8000, stranger), component


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_web_is_reached_by_the_ingress_controller_only(overlay: str) -> None:
    objects = rendered(overlay)
    web = template_labels(objects)["web"]
    assert admitted(objects, web, 8000, Peer(TRAEFIK, "kube-system"))
    assert not admitted(objects, web, 8000, Peer(TRAEFIK, "paless-other"))
    assert not admitted(objects, web, 8000, Peer({"app.kubernetes.io/name": "x"}, "kube-system"))
    assert not admitted(objects, web, 8000, Peer(template_labels(objects)["worker"]))
    assert not admitted(objects, web, 9999, Peer(TRAEFIK, "kube-system"))


def test_the_ingress_controller_is_configurable() -> None:
    objects = rendered("prod", INGRESS_CONTROLLER_NAMESPACE="ingress-nginx",
                       INGRESS_CONTROLLER_LABEL_VALUE="ingress-nginx")
    web = template_labels(objects)["web"]
    nginx = {"app.kubernetes.io/name": "ingress-nginx"}
    assert admitted(objects, web, 8000, Peer(nginx, "ingress-nginx"))
    assert not admitted(objects, web, 8000, Peer(TRAEFIK, "kube-system"))


def test_the_minio_console_is_open_in_dev_only() -> None:
    for overlay in OVERLAYS:
        objects = rendered(overlay)
        minio = template_labels(objects)["minio"]
        stranger = Peer({}, "anywhere")
        assert admitted(objects, minio, 9001, stranger) == (overlay == "dev"), overlay
        assert not admitted(objects, minio, 9000, stranger)


def test_data_services_call_out_for_dns_only(overlay: str = "prod") -> None:
    objects = rendered(overlay)
    labels = template_labels(objects)
    egress = policies(objects, "Egress")
    for service in SERVICES:
        selecting = [p for p in egress if selects(p["spec"]["podSelector"], labels[service])]
        assert selecting, service
        ports = {(p["protocol"], p["port"]) for pol in selecting
                 for rule in pol["spec"]["egress"] for p in rule["ports"]}
        assert ports == {("UDP", 53), ("TCP", 53)}
    for app in ("web", "worker", "scheduler", "migrate"):  # their egress stays open
        assert not [p for p in egress if selects(p["spec"]["podSelector"], labels[app])]


def test_every_policy_says_why() -> None:
    found = 0
    for path in sorted((PROJECT / "k8s").rglob("*.yaml")):
        for document in re.split(r"^---$", path.read_text(), flags=re.MULTILINE):
            if re.search(r"^kind: NetworkPolicy$", document, flags=re.MULTILINE):
                found += 1
                assert re.search(r"^# Why", document, flags=re.MULTILINE), (
                    f"{path}: a NetworkPolicy without a `# Why` comment")
    assert found >= 7


# --- credentials --------------------------------------------------------------------------


def distinct_secrets() -> dict[str, str]:
    return {v.name: f"zz-{v.name.lower().replace('_', '-')}-4242" for v in VARIABLES if v.secret}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_reach_pods_only_through_the_secret(overlay: str) -> None:
    secrets = distinct_secrets()
    objects = rendered(overlay, **secrets)
    for obj in objects:
        text = yaml.safe_dump(obj)
        shown = [name for name, value in secrets.items() if value in text]
        if obj["kind"] == "Secret":
            assert set(shown) == set(secrets)  # the test can see them where they are
        else:
            assert not shown, f"{obj['kind']}/{obj['metadata']['name']} holds {shown}"


def env_of(container: dict) -> list[dict]:
    return container.get("env") or []


def test_the_apps_compose_the_broker_url_from_the_secret() -> None:
    objects = rendered("dev")
    assert "PAPERLESS_REDIS" not in by_name(objects, "ConfigMap", "paperless-config")["data"]
    for app in ("web", "worker", "scheduler"):
        container = spec_of(by_name(objects, "Deployment", app))["containers"][0]
        names = [e["name"] for e in env_of(container)]
        password = env_of(container)[names.index("REDIS_PASSWORD")]
        url = env_of(container)[names.index("PAPERLESS_REDIS")]
        # Kubernetes expands $(VAR) only from variables defined earlier in the list
        assert names.index("REDIS_PASSWORD") < names.index("PAPERLESS_REDIS")
        assert password["valueFrom"]["secretKeyRef"] == {"name": "paless-secret",
                                                         "key": "REDIS_PASSWORD"}
        assert url["value"] == "redis://:$(REDIS_PASSWORD)@redis:6379"


def test_redis_requires_the_password_read_from_its_environment() -> None:
    redis = spec_of(by_name(rendered("dev"), "StatefulSet", "redis"))["containers"][0]
    assert "args" not in redis
    script = redis["command"][-1]
    assert "requirepass $REDIS_PASSWORD" in script and "redis-server -" in script
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in env_of(redis)}
    assert refs == {"REDIS_PASSWORD": "REDIS_PASSWORD", "REDISCLI_AUTH": "REDIS_PASSWORD"}
    for probe in ("readinessProbe", "livenessProbe"):
        assert "grep -qx PONG" in redis[probe]["exec"]["command"][-1]


def test_only_minio_and_its_job_hold_the_root_credentials() -> None:
    objects = rendered("dev")
    holders = set()
    for obj, spec in pods(objects):
        for c in containers(spec):
            keys = {(e.get("valueFrom") or {}).get("secretKeyRef", {}).get("key")
                    for e in env_of(c)}
            if keys & {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}:
                holders.add(f"{obj['metadata']['name']}/{c['name']}")
            if c["name"] == "rclone":
                assert {"MINIO_APP_USER", "MINIO_APP_PASSWORD"} <= keys
    assert holders == {"minio/minio", "minio-init/create-bucket"}


def test_the_bucket_job_limits_the_app_user_to_the_bucket() -> None:
    job = spec_of(by_name(rendered("dev", MINIO_BUCKET="docs-1"), "Job", "minio-init"))
    script = job["containers"][0]["command"][-1]
    assert '"arn:aws:s3:::$MINIO_BUCKET"' in script and '"arn:aws:s3:::$MINIO_BUCKET/*"' in script
    assert "mc admin user add paless >/dev/null" in script  # keys on standard input
    assert "attach paless paless-app" in script
    for line in script.splitlines():  # no password as an argument of mc
        if re.search(r"\bmc\b", line) and "PASSWORD" in line:
            assert line.lstrip().startswith("printf"), line


def test_prod_judges_the_new_credentials() -> None:
    used: set[str] = set()
    render_tree(PROJECT, "prod", NAMESPACE, variables_for("prod"), APP_IMAGES, used.update)
    assert {"REDIS_PASSWORD", "MINIO_APP_PASSWORD", "MINIO_ROOT_PASSWORD"} <= used


def test_the_rclone_remote_does_not_create_buckets() -> None:
    conf = by_name(rendered("dev"), "ConfigMap", "rclone-config")["data"]["rclone.conf"]
    assert "no_check_bucket = true" in conf and "env_auth = true" in conf


def test_the_evaluator_can_refuse_and_admit() -> None:
    objects = rendered("dev")
    labels = template_labels(objects)
    opened = [*objects, {"kind": "NetworkPolicy", "metadata": {"name": "debug"}, "spec": {
        "podSelector": {"matchLabels": {COMPONENT: "postgres"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {}}]}]}}]
    stranger = Peer({COMPONENT: "debug"}, "paless-other")
    assert not admitted(objects, labels["postgres"], 5432, stranger)
    assert admitted(opened, labels["postgres"], 5432, stranger)
    assert admitted([], labels["postgres"], 5432, stranger)  # no policy: open


def spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    spec = pod_spec(obj)
    assert spec is not None, obj.get("kind")
    return spec
