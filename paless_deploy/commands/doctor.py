"""doctor: preflight checks of this machine and the cluster, each with a fix when it fails.

Required checks (exit 1 when one fails) are what `all` cannot work without: Docker, the
registry, kustomize, the cluster, our rights in the namespace, and the StorageClasses the
manifests' claims are provisioned from (not the class of a static volume, nor of a claim
pre-bound to one). A required check that fails means a deploy would fail: doctor passes
on every overlay of k8s/ deployed on the sandbox. The rest are warnings: things that
degrade a deploy, not stop it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import TYPE_CHECKING

from paless_deploy.adapters.buildkit import BUILDX_HINT, find_buildkit
from paless_deploy.adapters.containerd import find_containerd, has_image
from paless_deploy.adapters.docker import connect_docker, engine_platform
from paless_deploy.adapters.kube import ApiError, Kube, connect_run
from paless_deploy.adapters.kustomize import (
    kubectl_client_version,
    kustomize_command,
    kustomize_works,
)
from paless_deploy.adapters.registry import check_registry as ping_registry
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.data import reclaim
from paless_deploy.core.errors import ExitCode, PalessError, whole_words
from paless_deploy.core.images.buildspec import Builder, platform_arch
from paless_deploy.core.images.delivery import Delivery, DeliveryMethod, choose_delivery
from paless_deploy.core.images.imageref import Registry
from paless_deploy.core.manifests.kinds import by_kind
from paless_deploy.core.manifests.render import classes_named
from paless_deploy.core.reporting.report import ErrorReport, Result, RunResult
from paless_deploy.stages.delivery import config_for, delivery_facts
from paless_deploy.stages.images import plan_images
from paless_deploy.stages.netpolicy import read_enforcement
from paless_deploy.stages.nodes import NodeList, read_nodes
from paless_deploy.stages.render import discovered_apps, render
from paless_deploy.ui.lines import say
from paless_deploy.ui.tables import print_table

if TYPE_CHECKING:
    from paless_deploy.core.configuration.config import Config
    from paless_deploy.core.configuration.context import RunContext

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


def registry_usable_by_nodes(registry: str, node_count: int) -> bool:
    """A loopback registry is reachable from a node only when the node is this machine:
    with more than one node at least one of them cannot pull from it."""
    return not (Registry(registry.split("/", 1)[0]).loopback and node_count > 1)


def nodes_of_other_arch(build_platform: str, node_archs: dict[str, str]) -> dict[str, str]:
    """Nodes (name -> architecture) that cannot run an image built for `build_platform`."""
    want = platform_arch(build_platform)
    return {name: arch for name, arch in sorted(node_archs.items()) if arch and arch != want}


# ---------------------------------------------------------------------------
# Machine checks


def check_docker() -> Check:
    try:
        api = connect_docker()
        version = api.version().get("Version", "?")
    except PalessError as exc:
        return Check("Docker engine", False, True, exc.message, exc.hint)
    except Exception as exc:  # noqa: BLE001 - a half-broken engine is still a failed check
        return Check("Docker engine", False, True, f"The engine did not answer: {exc}",
                     "Check `docker version`.")
    return Check("Docker engine", True, True, f"answers (Docker {version})")


def check_builder(builder: Builder) -> Check:
    """Which builder `build` runs (BUILDER), and how to get BuildKit when it is missing."""
    name = "image builder"
    if builder == Builder.CLASSIC:
        return Check(name, True, False, "classic builder (BUILDER=classic): every stage is "
                     "built; no RUN --mount, heredocs or build secrets")
    cli, why_not = find_buildkit()
    required = builder == Builder.BUILDKIT
    if cli is not None:
        return Check(name, True, required, f"BuildKit: {cli.description}")
    consequence = ("builds fail (BUILDER=buildkit)" if required else
                   "builds fall back to the classic builder (no RUN --mount, heredocs, "
                   "FROM --platform=$BUILDPLATFORM or build secrets)")
    return Check(name, False, required, f"no BuildKit: {why_not}; {consequence}", BUILDX_HINT)


def check_registry(registry: str) -> Check:
    try:
        ping_registry(registry, timeout=5)
    except PalessError as exc:
        return Check(f"registry {registry}", False, True, exc.message, exc.hint)
    return Check(f"registry {registry}", True, True, "reachable from this machine")


def check_kustomize() -> Check:
    """Render an empty kustomization the way render does (kubectl first, then kustomize)."""
    problem = kustomize_works()
    if problem is None:
        return Check("kustomize", True, True, f"`{' '.join(kustomize_command() or [])}` works")
    return Check("kustomize", False, True, problem,
                 "Install kubectl (it includes kustomize; v1.14 or later) or kustomize, first "
                 "on PATH.")


def kubectl_client_minor() -> tuple[int | None, str]:
    """kubectl's client minor version and its gitVersion (None, why when unavailable)."""
    info, problem = kubectl_client_version()
    if info is None:
        return None, problem
    return parse_minor(str(info.get("minor"))), str(info.get("gitVersion", "?"))


# ---------------------------------------------------------------------------
# Cluster checks


def _guarded(name: str, required: bool, fn: Callable[[], Check]) -> Check:
    """Run one cluster check; a refusal to read means "could not check", not a failure."""
    try:
        return fn()
    except ApiError as exc:
        if exc.status == 403:
            return Check(name, False, False, "could not check: not allowed to read this "
                         f"({whole_words(exc.message, 240)})",
                         "Ask a cluster admin, or run doctor with an admin kubeconfig.")
        return Check(name, False, required, f"the API server answered {exc.status}: "
                     f"{whole_words(exc.message, 240)}", "Check the cluster's health.")
    except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
        return Check(name, False, required, whole_words(f"could not check: {exc}", 240),
                     "Check the cluster's health (`kubectl get --raw /readyz`).")


def check_authorised(kube: Kube, namespace: str) -> Check:
    name = f"authorised in {namespace}"
    exists: bool | None = None
    try:
        exists = kube.read(by_kind("Namespace"), namespace) is not None
    except ApiError as exc:
        if exc.status != 403:
            raise
    if exists is False:
        if kube.may("create", "namespaces"):
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
               if not kube.may(verb, resource, group, namespace)]
    if missing:
        return Check(name, False, True, f"not allowed to {', '.join(missing)} in {namespace}",
                     f"Use a kubeconfig whose user may manage namespace {namespace} (the "
                     "`edit` ClusterRole bound there), or choose another namespace with -n.")
    return Check(name, True, True, "may create and patch deployments and take the lock")


def check_versions(kube: Kube) -> Check:
    info = kube.version()
    server_minor = parse_minor(info.get("minor"))
    server_version = info.get("gitVersion", "?")
    client_minor, client_version = kubectl_client_minor()
    name = "kubectl version skew"
    if client_minor is None:
        return Check(name, False, False, f"server {server_version}; {client_version}",
                     "Install kubectl within one minor version of the server.")
    if server_minor is None:
        return Check(name, True, False, f"server {server_version}, kubectl {client_version}")
    skew = version_skew(server_minor, client_minor)
    detail = f"server {server_version}, kubectl {client_version}"
    if skew > 1:
        return Check(name, False, False, f"{detail}: {skew} minor versions apart",
                     f"Install kubectl 1.{server_minor} (kubectl supports one minor version "
                     "of skew either way).")
    return Check(name, True, False, detail)


def check_metrics_server(kube: Kube) -> Check:
    name = "metrics-server"
    fix = ("Install metrics-server (k3s ships it; elsewhere `kubectl apply -f https://github.com/"
           "kubernetes-sigs/metrics-server/releases/latest/download/components.yaml`); without "
           "it HorizontalPodAutoscalers do not scale.")
    service = kube.read(by_kind("APIService"), "v1beta1.metrics.k8s.io")
    if service is None:
        return Check(name, False, False, "APIService v1beta1.metrics.k8s.io is absent", fix)
    for condition in (service.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Available":
            if condition.get("status") == "True":
                return Check(name, True, False, "v1beta1.metrics.k8s.io is Available")
            return Check(name, False, False, "v1beta1.metrics.k8s.io is not Available: "
                         f"{condition.get('reason')}: {condition.get('message')}", fix)
    return Check(name, False, False, "v1beta1.metrics.k8s.io reports no Available condition",
                 fix)


def check_ingress_class(kube: Kube, class_name: str) -> Check:
    name = f"IngressClass {class_name}"
    kind = by_kind("IngressClass")
    found = kube.read(kind, class_name)
    if found is None:
        names = [c["metadata"]["name"] for c in kube.list(kind)[0]]
        have = f" (the cluster has: {', '.join(names)})" if names else " (the cluster has none)"
        return Check(name, False, False, f"no IngressClass {class_name}{have}",
                     "Set INGRESS_CLASS to an existing class, or install an ingress controller "
                     "(k3s ships traefik); until then the Ingress routes nothing.")
    controller = (found.get("spec") or {}).get("controller") or "unknown"
    return Check(name, True, False, f"exists (controller {controller})")


def _storage_classes(kube: Kube) -> list[JsonDict]:
    return kube.list(by_kind("StorageClass"))[0]


def _is_default(storage_class: JsonDict) -> bool:
    annotations = storage_class["metadata"].get("annotations") or {}
    return any(annotations.get(key) == "true" for key in DEFAULT_CLASS_ANNOTATIONS)


def check_default_storage_class(kube: Kube) -> Check:
    name = "default StorageClass"
    defaults = [c["metadata"]["name"] for c in _storage_classes(kube) if _is_default(c)]
    if not defaults:
        return Check(name, False, False, "no StorageClass is marked default",
                     "Mark one default (`kubectl patch storageclass <name> -p '{\"metadata\": "
                     "{\"annotations\": {\"storageclass.kubernetes.io/is-default-class\": "
                     "\"true\"}}}'`); claims without a class stay Pending otherwise.")
    return Check(name, True, False, ", ".join(defaults))


def check_storage_class(kube: Kube, class_name: str | None) -> Check:
    """The class the manifests' claims name (STORAGE_CLASS) must exist: required."""
    classes = _storage_classes(kube)
    names = [c["metadata"]["name"] for c in classes]
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


def _engine_platform() -> str | None:
    try:
        return engine_platform(connect_docker())
    except PalessError:
        return None


def check_node_platform(nodes: NodeList, config: Config, engine: str | None) -> Check:
    """Images are built for PLATFORM (else the engine's): the nodes must run that arch."""
    name = "nodes run the build's platform"
    build = config.platform or engine
    if build is None:
        return Check(name, False, False, "the build's platform is unknown (Docker does not "
                     "answer and PLATFORM is unset)", "Start Docker, or set PLATFORM.")
    archs = {n.name: n.architecture for n in nodes.listed()}
    source = "PLATFORM" if config.platform else "the Docker engine's own, PLATFORM unset"
    other = nodes_of_other_arch(build, archs)
    if not other:
        found = sorted(set(archs.values())) or ["no nodes"]
        return Check(name, True, False, f"images for {build} ({source}); nodes: "
                     f"{', '.join(found)}")
    shown = ", ".join(f"{node} ({arch})" for node, arch in list(other.items())[:5])
    more = f" and {len(other) - 5} more" if len(other) > 5 else ""
    wanted = sorted(set(other.values()))
    return Check(name, False, False,
                 f"images are built for {build} ({source}), but {len(other)} of {len(archs)} "
                 f"node(s) run another architecture: {shown}{more}; pods there fail with "
                 "`exec format error`",
                 f"Set PLATFORM=linux/{wanted[0]} (the nodes' architecture); BuildKit builds it "
                 "on this machine (FROM --platform=$BUILDPLATFORM stages run natively, other RUN "
                 "steps need QEMU binfmt).")


def check_network_policy(kube: Kube, nodes: NodeList) -> Check:
    """Whether NetworkPolicies (k8s/'s isolation) take effect, and on what evidence."""
    verdict = read_enforcement(kube, nodes)
    return Check("NetworkPolicy enforced", verdict.enforced, False,
                 f"{verdict.state.value}: {verdict.evidence}",
                 "Without a NetworkPolicy controller every pod of the cluster reaches this "
                 "namespace's PostgreSQL, Redis and MinIO: run one (k3s does unless "
                 "--disable-network-policy; Calico, Cilium), or annotate a node with "
                 "paless.io/network-policy-controller=<name> if yours is one doctor does not "
                 "know (docs/isolation.md).")


def check_registry_for_nodes(nodes: NodeList, registry: str) -> Check:
    count = len(nodes.listed())
    name = "nodes can pull from the registry"
    if registry_usable_by_nodes(registry, count):
        return Check(name, True, False,
                     f"{registry} on a cluster of {count} node(s)")
    return Check(name, False, False,
                 f"{registry} is this machine's loopback, and the cluster has {count} "
                 "nodes: the others cannot pull from it", K3S_REGISTRIES_HINT)


# ---------------------------------------------------------------------------
# The command


def check_delivery(delivery: Delivery) -> Check:
    """How images reach the nodes and why; a warning when the choice cannot reach some."""
    return Check("image delivery", not delivery.warning, False,
                 f"{delivery.method}: {delivery.reason}", delivery.warning)


def check_containerd(config: Config) -> Check:
    """k3s-import: the containerd to import into answers."""
    try:
        containerd = find_containerd(config.value("PALESS_CONTAINERD_ADDRESS"))
        has_image(containerd, "paless-deploy.invalid/doctor:probe")
    except PalessError as exc:
        return Check("containerd (k3s import)", False, True, exc.message, exc.hint)
    return Check("containerd (k3s import)", True, True, f"{containerd.where} answers")


def collect_checks(run_ctx: RunContext) -> list[Check]:
    """Every check, in the order a person would fix them."""
    config = run_ctx.config
    checks = [check_docker(), check_builder(config.builder)]
    try:
        kube = connect_run(run_ctx)
    except PalessError as exc:
        checks += [check_registry(config.registry), check_kustomize(),
                   Check("cluster", False, True, exc.message, exc.hint)]
        return checks  # everything below needs the cluster
    nodes = read_nodes(kube)
    delivery = choose_delivery(delivery_facts(kube, config, nodes))
    if delivery.pushes:
        config = config_for(config, delivery)
        checks.append(check_registry(config.registry))
    elif delivery.method == DeliveryMethod.K3S_IMPORT:
        checks.append(check_containerd(config))
    checks += [check_kustomize(), Check("cluster", True, True, f"{kube.server} answers"),
               check_delivery(delivery)]
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
        ("nodes run the build's platform", False,
         lambda: check_node_platform(nodes, config, _engine_platform())),
        ("NetworkPolicy enforced", False, lambda: check_network_policy(kube, nodes)),
    ]
    if delivery.pushes:
        cluster_checks.append(("nodes can pull from the registry", False,
                               lambda: check_registry_for_nodes(nodes, delivery.image_registry)))
    checks.extend(_guarded(name, required, fn) for name, required, fn in cluster_checks)
    checks.extend(_rendered_class_checks(run_ctx, kube, storage_class, ingress_class))
    return checks


def _rendered_class_checks(run_ctx: RunContext, kube: Kube, configured_storage: str | None,
                           configured_ingress: str) -> list[Check]:
    """The StorageClasses and IngressClasses the rendered manifests name must exist (a
    tree may name classes of its own, not only STORAGE_CLASS and INGRESS_CLASS)."""
    try:
        plans, _ = plan_images(run_ctx.config, discovered_apps(run_ctx))
        objects = render(run_ctx, {p.app.name: p.ref for p in plans}).objects
    except PalessError as exc:  # plan and render say more; here it only costs these checks
        return [Check("classes the manifests name", False, False,
                      f"could not render the manifests to read them: {exc.message}", exc.hint)]
    storage, ingress = classes_named(objects)
    checks: list[Check] = []
    if run_ctx.config.overlay == reclaim.PROD_OVERLAY:
        checks.append(_guarded("prod volumes outlive their claims", True,
                               partial(check_reclaim, kube, run_ctx.config, objects)))
    for name, users in sorted(storage.items()):
        if name == configured_storage:
            continue
        checks.append(_guarded(f"StorageClass {name}", True,
                               partial(_named_storage_class, kube, name, users)))
    for name, users in sorted(ingress.items()):
        if name == configured_ingress:
            continue
        checks.append(_guarded(f"IngressClass {name}", False,
                               partial(check_ingress_class, kube, name)))
    return checks


def check_reclaim(kube: Kube, config: Config, objects: list[JsonDict]) -> Check:
    """The production rule: no claim of the prod overlay binds through a class (or to a
    volume) whose reclaim policy deletes the data with the claim."""
    name = "prod volumes outlive their claims"
    facts = reclaim.StorageFacts(_storage_classes(kube), kube.list(by_kind("PersistentVolume"))[0],
                                 kube.list(by_kind("PersistentVolumeClaim"), config.namespace)[0])
    doomed = reclaim.doomed_claims(objects, facts)
    if not doomed:
        return Check(name, True, True, "every claim binds through a class or volume that "
                                       "retains its data")
    refusal = reclaim.refusal(doomed, config.overlay)
    if reclaim.allowed(False, config.value(reclaim.ALLOW_VARIABLE)):
        return Check(name, True, True, f"accepted ({reclaim.ALLOW_VARIABLE}=true): "
                                       f"{refusal.message}")
    return Check(name, False, True, refusal.message, refusal.hint)


def _named_storage_class(kube: Kube, name: str, users: list[str]) -> Check:
    names = [c["metadata"]["name"] for c in _storage_classes(kube)]
    if name in names:
        return Check(f"StorageClass {name}", True, True, f"exists (used by {', '.join(users)})")
    return Check(f"StorageClass {name}", False, True,
                 f"{', '.join(users)} name StorageClass {name}, which the cluster does not have "
                 f"(it has: {', '.join(names) or 'none'}); their claims would stay Pending",
                 f"Change storageClassName in the manifests to one of: {', '.join(names) or '-'} "
                 "(or use ${STORAGE_CLASS} there and set STORAGE_CLASS), or install a "
                 f"provisioner that serves class {name}.")


def run_doctor(run_ctx: RunContext) -> Result:
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
        result.result, result.exit_code = RunResult.FAILED, ExitCode.FAILED
    if not run_ctx.json_output:
        _print_checks(run_ctx, checks)
    return result


def _print_checks(run_ctx: RunContext, checks: list[Check]) -> None:
    rows = [(c.status, c.name, c.detail, "" if c.ok else c.fix) for c in checks]
    print_table("paless-deploy doctor", ("status", "check", "detail", "fix"), rows,
                 run_ctx.console.color)
    failed = [c.name for c in checks if c.required and not c.ok]
    if failed:
        say(f"{len(failed)} required check(s) failed: {', '.join(failed)}.", err=True)
