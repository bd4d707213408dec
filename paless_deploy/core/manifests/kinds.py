"""The table of kinds: where each lives in the API, its scope, default phase and prune order.

One definition for every module that needs to know a kind (apply, watch, status, plan,
prune, render); kinds not listed (CRDs) are looked up once through API discovery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One kind of object as the API serves it, and how this tool treats it."""

    api_version: str  # "v1", "apps/v1"
    kind: str
    plural: str
    namespaced: bool = True
    phase: str | None = None  # default phase (None: decided by component, else the fallback)
    prune_rank: int | None = None  # deletion order for prune/destroy; None: never pruned
    holds_data: bool = False  # claims and volumes: never pruned, kept by destroy unless asked

    @property
    def group(self) -> str:
        """The API group: "" for core `v1`, "apps" for `apps/v1`."""
        return api_group(self.api_version)

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The REST path of the collection (or of one object when `name` is given)."""
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


def api_group(api_version: str) -> str:
    """The group of an apiVersion: "" for core `v1`, "apps" for `apps/v1`."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


_KINDS: tuple[Kind, ...] = (
    # namespace and config
    # a Namespace of the tree other than the target (owned like any cluster-scoped
    # object), deleted last: everything in it goes with it
    Kind("v1", "Namespace", "namespaces", False, phase="namespace", prune_rank=400),
    # definitions: applied before everything else, deleted after what they define
    Kind("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions",
         False, phase="config", prune_rank=300),
    Kind("v1", "ServiceAccount", "serviceaccounts", phase="config", prune_rank=120),
    Kind("rbac.authorization.k8s.io/v1", "Role", "roles", phase="config", prune_rank=110),
    Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", phase="config",
         prune_rank=100),
    Kind("v1", "Secret", "secrets", phase="config", prune_rank=90),
    Kind("v1", "ConfigMap", "configmaps", phase="config", prune_rank=80),
    Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", phase="config",
         prune_rank=70),
    Kind("v1", "LimitRange", "limitranges", phase="config", prune_rank=130),
    Kind("v1", "ResourceQuota", "resourcequotas", phase="config", prune_rank=140),
    # storage
    Kind("storage.k8s.io/v1", "StorageClass", "storageclasses", False, phase="storage"),
    Kind("v1", "PersistentVolume", "persistentvolumes", False, phase="storage",
         prune_rank=210, holds_data=True),
    Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims", phase="storage",
         prune_rank=200, holds_data=True),
    # workloads: their phase comes from their component
    Kind("apps/v1", "Deployment", "deployments", prune_rank=30),
    Kind("apps/v1", "StatefulSet", "statefulsets", prune_rank=40),
    Kind("apps/v1", "DaemonSet", "daemonsets", prune_rank=45),
    Kind("apps/v1", "ReplicaSet", "replicasets"),
    # Jobs without an annotation are the database role/extensions Job; the bucket and
    # migration Jobs say their phase in an annotation (or by what they depend on).
    Kind("batch/v1", "Job", "jobs", phase="data-init", prune_rank=50),
    Kind("batch/v1", "CronJob", "cronjobs", prune_rank=48),
    Kind("v1", "Service", "services", prune_rank=60),
    Kind("v1", "Pod", "pods"),
    Kind("v1", "Node", "nodes", False),
    Kind("v1", "Event", "events"),
    # whatever component they belong to, these face users or follow a workload
    Kind("networking.k8s.io/v1", "Ingress", "ingresses", phase="web", prune_rank=0),
    Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", phase="web",
         prune_rank=10),
    Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", phase="web",
         prune_rank=20),
    # cluster-scoped kinds a tree may carry
    Kind("networking.k8s.io/v1", "IngressClass", "ingressclasses", False),
    Kind("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False,
         phase="config", prune_rank=160),
    Kind("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False,
         phase="config", prune_rank=150),
    Kind("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", False, phase="config"),
    Kind("coordination.k8s.io/v1", "Lease", "leases"),
    # what serves an API: deleted first, so nothing calls a backend that is going away
    Kind("apiregistration.k8s.io/v1", "APIService", "apiservices", False, prune_rank=-10),
    Kind("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
         "validatingwebhookconfigurations", False, prune_rank=-20),
    Kind("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
         "mutatingwebhookconfigurations", False, prune_rank=-20),
    Kind("authorization.k8s.io/v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
         False),
)

BY_API_VERSION: Mapping[tuple[str, str], Kind] = {(k.api_version, k.kind): k for k in _KINDS}
BY_KIND: Mapping[str, Kind] = {k.kind: k for k in _KINDS}

# Kinds without a namespace, including ones the tool never applies itself: render never
# sets metadata.namespace on them.
CLUSTER_SCOPED_KINDS: frozenset[str] = frozenset(
    {k.kind for k in _KINDS if not k.namespaced} | {
        "CertificateSigningRequest", "ComponentStatus", "CSIDriver", "CSINode",
        "CustomResourceDefinition", "FlowSchema", "MutatingWebhookConfiguration", "Node",
        "PriorityLevelConfiguration", "RuntimeClass", "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration",
        "VolumeAttachment"})

# Everything prune and destroy may delete, in deletion order: front-ends and workloads
# before the config and storage they use.
PRUNABLE: tuple[Kind, ...] = tuple(sorted((k for k in _KINDS if k.prune_rank is not None),
                                          key=lambda k: k.prune_rank or 0))
# Applied before the server-side dry run of the rest: a custom resource cannot be judged
# before its CRD is served, nor an object in a namespace that does not exist yet.
DEFINITION_KINDS = frozenset({"CustomResourceDefinition", "Namespace"})
PHASE_BY_KIND: Mapping[str, str] = {k.kind: k.phase for k in _KINDS if k.phase}


def kind_of(api_version: str, kind: str) -> Kind | None:
    """The table's entry for (apiVersion, kind), None for kinds it does not know."""
    return BY_API_VERSION.get((api_version, kind))


def by_kind(kind: str) -> Kind:
    """The table's entry for a built-in kind name (KeyError for others: a programming error)."""
    return BY_KIND[kind]


def object_key(obj: Mapping[str, object]) -> tuple[str, str, str]:
    """(group, kind, name) of a rendered or live object: its identity within a namespace."""
    meta = obj.get("metadata")
    name = str(meta.get("name") or "") if isinstance(meta, Mapping) else ""
    return (api_group(str(obj.get("apiVersion") or "")), str(obj.get("kind") or ""), name)
