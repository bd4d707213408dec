"""doctor: preflight checks of this machine and the cluster, each with a fix when it fails.

Required checks (exit 1 when one fails) are what `all` cannot work without: Docker, the
registry, kustomize, the cluster, our rights in the namespace, and the StorageClass the
manifests name. The rest are warnings: things that degrade a deploy, not stop it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paless_deploy.core.errors import PalessError
from paless_deploy.core.report import RESULT_FAILED, ErrorReport, Result

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")
K3S_REGISTRIES_HINT = (
    "Use a registry address every node can reach (REGISTRY=<host-ip>:5000), and on k3s "
    "declare it in /etc/rancher/k3s/registries.yaml on each node "
    "(mirrors: {\"<host-ip>:5000\": {endpoint: [\"http://<host-ip>:5000\"]}}), then "
    "restart k3s.")


@dataclass(frozen=True)
class Check:
    """One preflight check: did it pass, does its failure stop a deploy, why, and the fix."""

    name: str
    ok: bool
    required: bool
    detail: str
    fix: str = ""

    @property
    def status(self) -> str:
        """ok, FAIL (required) or warn."""
        return "ok" if self.ok else ("FAIL" if self.required else "warn")


# ---------------------------------------------------------------------------
# Pure rules


def version_skew(server_minor: int, client_minor: int) -> int:
    """Minor versions between kubectl and the API server."""
    return abs(server_minor - client_minor)


def parse_minor(text: str | None) -> int | None:
    """`34`, `34+` (GKE/EKS style) -> 34; None when unreadable."""
    digits = "".join(ch for ch in str(text or "") if ch.isdigit())
    return int(digits) if digits else None


def registry_host(registry: str) -> str:
    """The host of `host[:port][/path]` (IPv6 in brackets kept)."""
    host = registry.split("/", 1)[0]
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def registry_usable_by_nodes(registry: str, node_count: int) -> bool:
    """A loopback registry is reachable from a node only when the node is this machine:
    with more than one node at least one of them cannot pull from it."""
    return not (registry_host(registry) in LOOPBACK_HOSTS and node_count > 1)


# ---------------------------------------------------------------------------
# Machine checks


def check_docker() -> Check:
    from paless_deploy.stages.images import connect_docker

    try:
        api = connect_docker()
        version = api.version().get("Version", "?")
    except PalessError as exc:
        return Check("Docker engine", False, True, exc.message, exc.hint)
    except Exception as exc:  # noqa: BLE001 - a half-broken engine is still a failed check
        return Check("Docker engine", False, True, f"The engine did not answer: {exc}",
                     "Check `docker version`.")
    return Check("Docker engine", True, True, f"answers (Docker {version})")


def check_registry(registry: str) -> Check:
    from paless_deploy.stages.images import check_registry as ping

    try:
        ping(registry, timeout=5)
    except PalessError as exc:
        return Check(f"registry {registry}", False, True, exc.message, exc.hint)
    return Check(f"registry {registry}", True, True, "reachable from this machine")


def check_kustomize() -> Check:
    """Render an empty kustomization the way render does (kubectl first, then kustomize)."""
    fix = "Install kubectl (it includes kustomize) or kustomize, and put it on PATH."
    if shutil.which("kubectl"):
        command = ["kubectl", "kustomize"]
    elif shutil.which("kustomize"):
        command = ["kustomize", "build"]
    else:
        return Check("kustomize", False, True, "neither kubectl nor kustomize is on PATH", fix)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kustomization.yaml").write_text("resources: []\n")
        try:
            out = subprocess.run([*command, tmp], capture_output=True, text=True, timeout=30,
                                 check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Check("kustomize", False, True, f"`{' '.join(command)}` failed: {exc}", fix)
    if out.returncode != 0:
        return Check("kustomize", False, True,
                     f"`{' '.join(command)}` failed: {out.stderr.strip()[:200]}",
                     "Install a kubectl of v1.14 or later (or kustomize) first on PATH.")
    return Check("kustomize", True, True, f"`{' '.join(command)}` works")


def kubectl_client_minor() -> tuple[int | None, str]:
    """kubectl's client minor version and its gitVersion (None, why when unavailable)."""
    if not shutil.which("kubectl"):
        return None, "kubectl is not on PATH"
    try:
        out = subprocess.run(["kubectl", "version", "--client", "-o", "json"],
                             capture_output=True, text=True, timeout=30, check=False)
        info = json.loads(out.stdout)["clientVersion"]
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError) as exc:
        return None, f"`kubectl version --client` failed: {exc}"
    return parse_minor(info.get("minor")), str(info.get("gitVersion", "?"))


# ---------------------------------------------------------------------------
# Cluster checks


def _guarded(name: str, required: bool, kube: Any, fn: Callable[[], Check]) -> Check:
    """Run one cluster check; a refusal to read means "could not check", not a failure."""
    from kubernetes.client.exceptions import ApiException

    from paless_deploy.adapters.kube import api_message

    try:
        return fn()
    except ApiException as exc:
        if exc.status == 403:
            return Check(name, False, False, "could not check: not allowed to read this "
                         f"({api_message(exc)[:160]})",
                         "Ask a cluster admin, or run doctor with an admin kubeconfig.")
        return Check(name, False, required, f"the API server answered {exc.status}: "
                     f"{api_message(exc)[:160]}", "Check the cluster's health.")
    except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
        return Check(name, False, required, f"could not check: {exc}"[:240],
                     "Check the cluster's health (`kubectl get --raw /readyz`).")


def _may(kube: Any, verb: str, resource: str, group: str = "",
         namespace: str | None = None) -> bool:
    from kubernetes import client

    review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
        resource_attributes=client.V1ResourceAttributes(
            verb=verb, resource=resource, group=group, namespace=namespace)))
    answer = client.AuthorizationV1Api(kube.api).create_self_subject_access_review(
        review, _request_timeout=(5, 30))
    return bool(answer.status and answer.status.allowed)


def check_authorised(kube: Any, namespace: str) -> Check:
    from kubernetes.client.exceptions import ApiException

    name = f"authorised in {namespace}"
    exists: bool | None = None
    try:
        kube.core.read_namespace(namespace, _request_timeout=(5, 30))
        exists = True
    except ApiException as exc:
        if exc.status == 404:
            exists = False
        elif exc.status != 403:
            raise
    if exists is False:
        if _may(kube, "create", "namespaces"):
            return Check(name, True, True,
                         f"namespace {namespace} does not exist yet; we may create namespaces")
        return Check(name, False, True,
                     f"namespace {namespace} does not exist and we may not create namespaces",
                     f"Ask an admin to create namespace {namespace} and grant you edit in it "
                     "(`kubectl create rolebinding ... --clusterrole=edit`), or use -n with a "
                     "namespace you may write.")
    wanted = [("create", "deployments", "apps"), ("patch", "deployments", "apps"),
              ("create", "leases", "coordination.k8s.io")]
    missing = [f"{verb} {resource}" for verb, resource, group in wanted
               if not _may(kube, verb, resource, group, namespace)]
    if missing:
        return Check(name, False, True, f"not allowed to {', '.join(missing)} in {namespace}",
                     f"Use a kubeconfig whose user may manage namespace {namespace} (the "
                     "`edit` ClusterRole bound there), or choose another namespace with -n.")
    return Check(name, True, True, "may create and patch deployments and take the lock")


def check_versions(kube: Any) -> Check:
    from kubernetes import client

    info = client.VersionApi(kube.api).get_code(_request_timeout=(5, 30))
    server_minor = parse_minor(info.minor)
    client_minor, client_version = kubectl_client_minor()
    name = "kubectl version skew"
    if client_minor is None:
        return Check(name, False, False, f"server {info.git_version}; {client_version}",
                     "Install kubectl within one minor version of the server.")
    if server_minor is None:
        return Check(name, True, False, f"server {info.git_version}, kubectl {client_version}")
    skew = version_skew(server_minor, client_minor)
    detail = f"server {info.git_version}, kubectl {client_version}"
    if skew > 1:
        return Check(name, False, False, f"{detail}: {skew} minor versions apart",
                     f"Install kubectl 1.{server_minor} (kubectl supports one minor version "
                     "of skew either way).")
    return Check(name, True, False, detail)


def check_metrics_server(kube: Any) -> Check:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    name = "metrics-server"
    fix = ("Install metrics-server (k3s ships it; elsewhere `kubectl apply -f https://github.com/"
           "kubernetes-sigs/metrics-server/releases/latest/download/components.yaml`); without "
           "it HorizontalPodAutoscalers do not scale.")
    try:
        service = client.ApiregistrationV1Api(kube.api).read_api_service(
            "v1beta1.metrics.k8s.io", _request_timeout=(5, 30))
    except ApiException as exc:
        if exc.status == 404:
            return Check(name, False, False, "APIService v1beta1.metrics.k8s.io is absent", fix)
        raise
    for condition in (service.status.conditions or []) if service.status else []:
        if condition.type == "Available":
            if condition.status == "True":
                return Check(name, True, False, "v1beta1.metrics.k8s.io is Available")
            return Check(name, False, False, "v1beta1.metrics.k8s.io is not Available: "
                         f"{condition.reason}: {condition.message}", fix)
    return Check(name, False, False, "v1beta1.metrics.k8s.io reports no Available condition",
                 fix)


def check_ingress_class(kube: Any, class_name: str) -> Check:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    name = f"IngressClass {class_name}"
    try:
        found = client.NetworkingV1Api(kube.api).read_ingress_class(
            class_name, _request_timeout=(5, 30))
    except ApiException as exc:
        if exc.status != 404:
            raise
        names = [str(c.metadata.name) for c in client.NetworkingV1Api(kube.api).list_ingress_class(
            _request_timeout=(5, 30)).items if c.metadata]
        have = f" (the cluster has: {', '.join(names)})" if names else " (the cluster has none)"
        return Check(name, False, False, f"no IngressClass {class_name}{have}",
                     "Set INGRESS_CLASS to an existing class, or install an ingress controller "
                     "(k3s ships traefik); until then the Ingress routes nothing.")
    controller = found.spec.controller if found.spec else "unknown"
    return Check(name, True, False, f"exists (controller {controller})")


def _storage_classes(kube: Any) -> list[Any]:
    from kubernetes import client

    return list(client.StorageV1Api(kube.api).list_storage_class(
        _request_timeout=(5, 30)).items)


def _is_default(storage_class: Any) -> bool:
    annotations = storage_class.metadata.annotations or {}
    return any(annotations.get(key) == "true" for key in DEFAULT_CLASS_ANNOTATIONS)


def check_default_storage_class(kube: Any) -> Check:
    name = "default StorageClass"
    defaults = [c.metadata.name for c in _storage_classes(kube) if _is_default(c)]
    if not defaults:
        return Check(name, False, False, "no StorageClass is marked default",
                     "Mark one default (`kubectl patch storageclass <name> -p '{\"metadata\": "
                     "{\"annotations\": {\"storageclass.kubernetes.io/is-default-class\": "
                     "\"true\"}}}'`); claims without a class stay Pending otherwise.")
    return Check(name, True, False, ", ".join(defaults))


def check_storage_class(kube: Any, class_name: str | None) -> Check:
    """The class the manifests' claims name (STORAGE_CLASS) must exist: required."""
    classes = _storage_classes(kube)
    names = [c.metadata.name for c in classes]
    if not class_name:
        return Check("StorageClass (STORAGE_CLASS unset)", any(_is_default(c) for c in classes),
                     True, "claims use the default class",
                     "Set STORAGE_CLASS to one of: " + (", ".join(names) or "none exist"))
    if class_name in names:
        return Check(f"StorageClass {class_name}", True, True, "exists")
    return Check(f"StorageClass {class_name}", False, True,
                 f"no StorageClass {class_name}; claims would stay Pending",
                 "Set STORAGE_CLASS to one of: " + (", ".join(names) or
                                                    "none (install a provisioner, e.g. "
                                                    "local-path-provisioner)"))


def check_registry_for_nodes(kube: Any, registry: str) -> Check:
    nodes = kube.core.list_node(_request_timeout=(5, 30)).items
    name = "nodes can pull from the registry"
    if registry_usable_by_nodes(registry, len(nodes)):
        return Check(name, True, False,
                     f"{registry} on a cluster of {len(nodes)} node(s)")
    return Check(name, False, False,
                 f"{registry} is this machine's loopback, and the cluster has {len(nodes)} "
                 "nodes: the others cannot pull from it", K3S_REGISTRIES_HINT)


# ---------------------------------------------------------------------------
# The command


def collect_checks(run_ctx: Any) -> list[Check]:
    """Every check, in the order a person would fix them."""
    from paless_deploy.adapters.kube import connect

    config = run_ctx.config
    checks = [check_docker(), check_registry(config.registry), check_kustomize()]
    try:
        kube = connect(run_ctx.kubeconfig, run_ctx.context)
    except PalessError as exc:
        checks.append(Check("cluster", False, True, exc.message, exc.hint))
        return checks  # everything below needs the cluster
    checks.append(Check("cluster", True, True, f"{kube.server} answers"))
    namespace = config.namespace
    ingress_class = config.value("INGRESS_CLASS") or "traefik"
    storage_class = config.value("STORAGE_CLASS")
    cluster_checks: list[tuple[str, bool, Callable[[], Check]]] = [
        (f"authorised in {namespace}", True, lambda: check_authorised(kube, namespace)),
        ("kubectl version skew", False, lambda: check_versions(kube)),
        ("metrics-server", False, lambda: check_metrics_server(kube)),
        (f"IngressClass {ingress_class}", False,
         lambda: check_ingress_class(kube, ingress_class)),
        ("default StorageClass", False, lambda: check_default_storage_class(kube)),
        (f"StorageClass {storage_class}", True,
         lambda: check_storage_class(kube, storage_class)),
        ("nodes can pull from the registry", False,
         lambda: check_registry_for_nodes(kube, config.registry)),
    ]
    checks.extend(_guarded(name, required, kube, fn) for name, required, fn in cluster_checks)
    return checks


def run_doctor(run_ctx: Any) -> Result:
    """Run the checks, print the table (text mode), exit 1 when a required check fails."""
    checks = collect_checks(run_ctx)
    result = Result(command="doctor", extra={
        "checks": [{**asdict(c), "status": c.status} for c in checks]})
    for check in checks:
        if check.ok:
            continue
        if check.required:
            result.errors.append(ErrorReport(code="doctor", resource=check.name,
                                             reason="CheckFailed", message=check.detail,
                                             hint=check.fix))
        else:
            result.warnings.append(f"{check.name}: {check.detail}")
    if result.errors:
        result.result, result.exit_code = RESULT_FAILED, 1
    if not run_ctx.json_output:
        _print_checks(run_ctx, checks)
    return result


def _print_checks(run_ctx: Any, checks: list[Check]) -> None:
    import click

    from paless_deploy.core.report import print_table

    rows = [(c.status, c.name, c.detail, "" if c.ok else c.fix) for c in checks]
    print_table("paless-deploy doctor", ("status", "check", "detail", "fix"), rows,
                 run_ctx.console.color)
    failed = [c.name for c in checks if c.required and not c.ok]
    if failed:
        click.echo(f"{len(failed)} required check(s) failed: {', '.join(failed)}.", err=True)
