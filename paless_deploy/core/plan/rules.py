"""The dependency rules of the deploy graph, as data: one row per kind of reference.

Each rule reads one object of the rendered tree and says which other objects of the
tree it must wait for, and why (`Need`). `RULES` is the table (like readiness's): to add
a reference the graph should follow, write a finder here and give it a row. Rules marked
`inferred` guess an order rather than read one (the Paless startup order of a tree that
looks like ours, objects a webhook admits): core.plan.graph drops such a need where it
would close a cycle. Every other need is kept, and a cycle among them is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from paless_deploy.core.apitypes import ApiObject, JsonDict
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.kinds import BY_KIND, api_group
from paless_deploy.core.manifests.objects import name_of, nested, ref_of
from paless_deploy.core.manifests.podspec import pod_spec
from paless_deploy.core.plan import references as refs
from paless_deploy.core.plan.plan import PHASE_ORDER, Placement, looks_like_ours
from paless_deploy.core.plan.preflight import pod_references
from paless_deploy.core.plan.references import WORKLOAD_KINDS, ConfigKey, namespace_in

DEPENDS_ON = labels.DEPENDS_ON
POD_KINDS = frozenset({*WORKLOAD_KINDS, "Job", "CronJob"})  # kinds that make pods
# API groups the cluster itself serves: a webhook naming them admits far more than the
# tree's own objects, so only the groups of the tree's custom kinds are followed.
BUILTIN_GROUPS = frozenset({api_group(k.api_version) for k in BY_KIND.values()} | {""})
DATA_TIER = ("object-storage", "data")  # labels of the Paless data services
# the Paless apps and their startup order: the scheduler and the workers together (neither
# needs the other: Redis holds the tasks), the web app, which faces users, after both
APPS_BEFORE = {"scheduler": (), "worker": (), "web": ("scheduler", "worker")}


@dataclass(frozen=True)
class Need:
    """One object waits for another of the tree: `on` (its index) and why."""

    on: int
    why: str
    rule: str = ""
    ready: bool = True  # wait until `on` is ready; False: until it is applied


@dataclass
class Tree:
    """The rendered objects, indexed for the rules, with their phase labels."""

    objects: Sequence[JsonDict]
    placements: Sequence[Placement]
    _by_ref: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    _by_name: dict[str, list[int]] = field(default_factory=dict)
    _by_kind: dict[str, list[int]] = field(default_factory=dict)
    _by_pod_label: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    crds: dict[tuple[str, str], int] = field(default_factory=dict)  # (group, kind) -> CRD
    configs: dict[ConfigKey, ApiObject] = field(default_factory=dict)
    ours: bool = False  # looks like Paless (core.plan.plan.looks_like_ours)

    def __post_init__(self) -> None:
        for i, obj in enumerate(self.objects):
            kind, name = str(obj.get("kind") or ""), name_of(obj)
            self._by_ref.setdefault((kind, namespace_in(obj), name), []).append(i)
            self._by_name.setdefault(name, []).append(i)
            self._by_kind.setdefault(kind, []).append(i)
            if kind == "CustomResourceDefinition":
                spec = obj.get("spec") or {}
                self.crds[(str(spec.get("group") or ""),
                           str(nested(spec, "names", "kind") or ""))] = i
            if kind in ("ConfigMap", "Secret"):
                self.configs[(kind, namespace_in(obj), name)] = obj
            if kind in WORKLOAD_KINDS:
                for key, value in refs.template_labels(obj).items():
                    self._by_pod_label.setdefault((namespace_in(obj), key, str(value)),
                                                  []).append(i)
        self.ours = looks_like_ours(self.objects)

    def find(self, kind: str, namespace: str, name: object) -> list[int]:
        """Objects of the tree with this kind, namespace ("" cluster-scoped) and name."""
        return self._by_ref.get((kind, namespace, str(name)), []) if name else []

    def named(self, name: str) -> list[int]:
        return self._by_name.get(name, [])

    def of_kind(self, *kinds: str) -> Iterator[tuple[int, JsonDict]]:
        """The objects of these kinds, in render order (indexed: rules ask per object)."""
        found = [i for kind in kinds for i in self._by_kind.get(kind, [])]
        for i in sorted(found) if len(kinds) > 1 else found:
            yield i, self.objects[i]

    def phase(self, i: int) -> str:
        return self.placements[i].phase

    def selected(self, service: ApiObject) -> list[int]:
        """The workloads of the Service's namespace whose pods its selector picks."""
        selector = refs.service_selector(service)
        if not selector:
            return []
        key, value = next(iter(selector.items()))
        candidates = self._by_pod_label.get((namespace_in(service), key, str(value)), [])
        return [i for i in candidates
                if refs.selects(selector, refs.template_labels(self.objects[i]))]

    def backend(self, namespace: str, name: object, how: str) -> Iterator[Need]:
        """A Service and, through it, the workloads it selects (ready): what a client of
        the Service waits for. `how` the client uses it: "it addresses (env X)"."""
        for j in self.find("Service", namespace, name):
            yield Need(j, how)
            for w in self.selected(self.objects[j]):
                yield Need(w, f"serves Service {name}, which {how}")


Finder = Callable[[int, JsonDict, Tree], Iterable[Need]]


@dataclass(frozen=True)
class DependencyRule:
    """One row of RULES: its name (shown by `plan`), what it says, how it finds needs."""

    name: str
    says: str
    finds: Finder
    inferred: bool = False


# ---------------------------------------------------------------------------
# the finders, one per row


def _custom_resource(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    key = (api_group(str(obj.get("apiVersion") or "")), str(obj.get("kind") or ""))
    crd = tree.crds.get(key)
    if crd is not None:
        yield Need(crd, "its CRD (once Established)")


def _in_namespace(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    namespace = namespace_in(obj)
    for j in tree.find("Namespace", "", namespace):
        yield Need(j, "the namespace it lives in")


def _service_account(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    spec = pod_spec(obj) or {}
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    for j in tree.find("ServiceAccount", namespace_in(obj), account):
        yield Need(j, "its pods run as it")


def _priority_class(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    wanted = (pod_spec(obj) or {}).get("priorityClassName")
    for j in tree.find("PriorityClass", "", wanted):
        yield Need(j, "its pods' priority class")


def _pod_references(kinds: tuple[str, ...]) -> Finder:
    def finds(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
        for ref in pod_references(obj):
            if ref.kind in kinds:
                for j in tree.find(ref.kind, namespace_in(obj), ref.name):
                    yield Need(j, "its pods use it")
    return finds


def _storage_class(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    spec = obj.get("spec") or {}
    wanted = []
    if obj.get("kind") in ("PersistentVolumeClaim", "PersistentVolume"):
        wanted.append(spec.get("storageClassName"))
    wanted += [nested(t, "spec", "storageClassName") for t in
               spec.get("volumeClaimTemplates") or [] if obj.get("kind") == "StatefulSet"]
    for name in dict.fromkeys(w for w in wanted if w):
        for j in tree.find("StorageClass", "", name):
            yield Need(j, "the class of its volumes")


def _bound_volume(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    if obj.get("kind") != "PersistentVolumeClaim":
        return
    named = nested(obj, "spec", "volumeName")
    for j, volume in tree.of_kind("PersistentVolume"):
        claim = nested(volume, "spec", "claimRef") or {}
        if name_of(volume) == named or (claim.get("name") == name_of(obj) and
                                        claim.get("namespace") == namespace_in(obj)):
            yield Need(j, "the volume it binds to (once the PV controller saw it)")


def _selected_workload(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    if obj.get("kind") != "Service":
        return
    for j in tree.selected(obj):
        workload = tree.objects[j]
        if nested(workload, "spec", "serviceName") == name_of(obj):
            continue  # it governs the StatefulSet: before it (_governing_service)
        yield Need(j, "the pods it selects: ready when they are")


def _governing_service(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    if obj.get("kind") != "StatefulSet":
        return
    service = nested(obj, "spec", "serviceName")
    for j in tree.find("Service", namespace_in(obj), service):
        yield Need(j, "its pods' DNS names (spec.serviceName)")


def _job_addresses(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    if obj.get("kind") != "Job":
        return
    texts = list(refs.strings_of(obj, tree.configs))
    for j, service in tree.of_kind("Service"):
        if namespace_in(service) != namespace_in(obj):
            continue
        where = next((w for w, text in texts if refs.addresses(text, name_of(service))), None)
        if where is not None:
            yield from tree.backend(namespace_in(obj), name_of(service),
                                    f"it addresses ({where})")
    mounted = set(refs.mounted_claims(obj))
    for j, workload in tree.of_kind("StatefulSet"):
        claims = mounted & set(refs.statefulset_claims(workload))
        if claims and namespace_in(workload) == namespace_in(obj):
            yield Need(j, f"it mounts claim {min(claims)} of it")


def _api_backend(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    """A webhook configuration or an APIService waits for the Service it calls."""
    if obj.get("kind") == "APIService":
        services = [nested(obj, "spec", "service")]
    elif obj.get("kind") in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        services = [nested(hook, "clientConfig", "service") for hook in obj.get("webhooks") or []]
    else:
        return
    for service in services:
        if isinstance(service, dict) and service.get("name"):
            yield from tree.backend(str(service.get("namespace") or ""), service["name"],
                                    "it calls")


def _aggregated_api(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    for j, service in tree.of_kind("APIService"):
        spec = service.get("spec") or {}
        if obj.get("apiVersion") == f"{spec.get('group')}/{spec.get('version')}":
            yield Need(j, "serves its API (once Available)")


def _admitted_by_webhook(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    group = api_group(str(obj.get("apiVersion") or ""))
    if group in BUILTIN_GROUPS:
        return
    for j, hook in tree.of_kind("ValidatingWebhookConfiguration",
                                "MutatingWebhookConfiguration"):
        groups = {g for w in hook.get("webhooks") or [] for rule in w.get("rules") or []
                  for g in rule.get("apiGroups") or []}
        if group in groups:
            yield Need(j, "admits it", ready=False)


def _scale_target(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    if obj.get("kind") != "HorizontalPodAutoscaler":
        return
    target = nested(obj, "spec", "scaleTargetRef") or {}
    for j in tree.find(str(target.get("kind")), namespace_in(obj), target.get("name")):
        yield Need(j, "what it scales (once it exists)", ready=False)


def _ingress_backends(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    if obj.get("kind") != "Ingress":
        return
    spec = obj.get("spec") or {}
    backends = [spec.get("defaultBackend")] + [
        path.get("backend") for rule in spec.get("rules") or []
        for path in nested(rule, "http", "paths") or []]
    for name in dict.fromkeys(nested(b, "service", "name") for b in backends if b):
        for j in tree.find("Service", namespace_in(obj), name):
            yield Need(j, "a backend it routes to")


def _role_grants(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    kind = obj.get("kind")
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        ref = obj.get("roleRef") or {}
        where = namespace_in(obj) if ref.get("kind") == "Role" else ""
        for j in tree.find(str(ref.get("kind")), where, ref.get("name")):
            yield Need(j, "the role it binds")
    if kind not in POD_KINDS:
        return
    spec = pod_spec(obj) or {}
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    for j, binding in tree.of_kind("RoleBinding", "ClusterRoleBinding"):
        for subject in binding.get("subjects") or []:
            if (subject.get("kind") == "ServiceAccount" and subject.get("name") == account
                    and (subject.get("namespace") or namespace_in(binding))
                    == namespace_in(obj)):
                yield Need(j, f"gives its ServiceAccount {account} its rights")


def _namespace_policy(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    if obj.get("kind") not in POD_KINDS:
        return
    for j, policy in tree.of_kind("LimitRange", "ResourceQuota"):
        if namespace_in(policy) == namespace_in(obj):
            yield Need(j, "admits its pods (limits, quota)")


def depends_on(obj: ApiObject) -> list[str]:
    """The entries of the `paless.io/depends-on` annotation (`Kind/name` or `name`)."""
    text = str(nested(obj, "metadata", "annotations", DEPENDS_ON) or "")
    return [item.strip() for item in text.split(",") if item.strip()]


def _annotated(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    missing = []
    for item in depends_on(obj):
        kind, _, name = item.rpartition("/")
        found = [j for j in tree.named(name) if j != i
                 and (not kind or tree.objects[j].get("kind") == kind)]
        same_place = [j for j in found if namespace_in(tree.objects[j]) in
                      (namespace_in(obj), "")]
        for j in same_place or found:
            yield Need(j, f"annotation {DEPENDS_ON}: {item}")
        if not found:
            missing.append(item)
    if missing:
        raise ConfigError(
            f"{ref_of(obj)} has annotation {DEPENDS_ON}={', '.join(depends_on(obj))!r}, "
            f"but the manifests hold no {', '.join(missing)}.",
            "Name objects of the tree, comma-separated, as Kind/name or name "
            "(`paless-deploy plan` lists them), or remove the entry.",
            code="bad-depends-on", resource=ref_of(obj))


def _phase_annotation(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    """After every workload and Job of an earlier phase, and every object annotated with
    an earlier phase. Other objects of earlier phases (a ConfigMap, a Service) are ordered
    by what they reference: one that needs this object is no contradiction."""
    annotated = nested(obj, "metadata", "annotations", labels.PHASE)
    if annotated not in PHASE_ORDER:
        return
    rank = PHASE_ORDER.index(str(annotated))
    for j, other in enumerate(tree.objects):
        named = nested(other, "metadata", "annotations", labels.PHASE) in PHASE_ORDER
        if PHASE_ORDER.index(tree.phase(j)) < rank and (named or other.get("kind") in POD_KINDS):
            yield Need(j, f"annotation {labels.PHASE}={annotated}: after phase {tree.phase(j)}")


def _paless_order(i: int, obj: JsonDict, tree: Tree) -> Iterator[Need]:
    """In a tree that looks like ours: the apps after the data services and the Jobs,
    and the web app after the scheduler and the workers (the Paless startup order)."""
    phase = tree.phase(i)
    if not tree.ours or obj.get("kind") not in WORKLOAD_KINDS or phase not in APPS_BEFORE:
        return
    for j, other in tree.of_kind(*WORKLOAD_KINDS, "Job"):
        if namespace_in(other) != namespace_in(obj):
            continue
        if other.get("kind") == "Job":
            yield Need(j, "the Paless order: apps after the Jobs")
        elif tree.phase(j) in DATA_TIER:
            yield Need(j, "the Paless order: apps after the data services")
        elif tree.phase(j) in APPS_BEFORE[phase]:
            yield Need(j, f"the Paless order: {tree.phase(j)} before {phase}")


# ---------------------------------------------------------------------------
# the table

RULES: tuple[DependencyRule, ...] = (
    DependencyRule("custom-resource", "a CRD before its custom resources (Established)",
                   _custom_resource),
    DependencyRule("namespace", "a Namespace of the tree before what lives in it",
                   _in_namespace),
    DependencyRule("service-account", "a ServiceAccount before the pods that run as it",
                   _service_account),
    DependencyRule("priority-class", "a PriorityClass before the pods that use it",
                   _priority_class),
    DependencyRule("config", "a ConfigMap or Secret before the pods that use it",
                   _pod_references(("ConfigMap", "Secret"))),
    DependencyRule("claim", "a claim before the pods that mount it",
                   _pod_references(("PersistentVolumeClaim",))),
    DependencyRule("storage-class", "a StorageClass before the claims and volumes of it",
                   _storage_class),
    DependencyRule("volume", "a PersistentVolume before the claim bound to it",
                   _bound_volume),
    DependencyRule("selects", "a workload before the Service that selects it",
                   _selected_workload),
    DependencyRule("governing-service", "a StatefulSet's governing Service before it",
                   _governing_service),
    DependencyRule("job-addresses", "the Services a Job addresses (env, command, config) and "
                   "the StatefulSets whose claims it mounts before it", _job_addresses),
    DependencyRule("api-backend", "a webhook's or APIService's Service and its workloads "
                   "before it", _api_backend),
    DependencyRule("aggregated-api", "an APIService before the objects of its API",
                   _aggregated_api),
    DependencyRule("webhook", "a webhook before the custom resources it admits",
                   _admitted_by_webhook, inferred=True),
    DependencyRule("scale-target", "a workload before its autoscaler", _scale_target),
    DependencyRule("ingress", "the Services an Ingress routes to before it",
                   _ingress_backends),
    DependencyRule("rbac", "a Role before its binding, a binding before the pods of its "
                   "ServiceAccount", _role_grants),
    DependencyRule("namespace-policy", "LimitRanges and ResourceQuotas before the pods of "
                   "their namespace", _namespace_policy),
    DependencyRule("depends-on", f"what annotation {DEPENDS_ON} names", _annotated),
    DependencyRule("phase", f"annotation {labels.PHASE}: after every workload and Job of "
                   "an earlier phase, and every object annotated with one", _phase_annotation),
    DependencyRule("paless-order", "a tree that looks like Paless: data services and Jobs "
                   "before the apps, the web app after the scheduler and the workers",
                   _paless_order, inferred=True),
)
