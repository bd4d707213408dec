"""NetworkPolicies (pure part): whether the cluster enforces them, judged from evidence
the API shows, and each policy of a namespace as one readable row.

Enforcement happens in the nodes' data plane, which the API cannot show. What it can show:
a k3s node's arguments (its embedded kube-router runs unless `--disable-network-policy`),
the running pods of a known controller, or a node annotation by which the cluster's
operator declares a controller this table does not know (the sandbox's host process, say).
The verdict names its evidence; without any, it is "not found", never "enforced".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.apiviews import Node
from paless_deploy.core.manifests.objects import name_of, namespace_of, nested

K3S_NODE_ARGS = "k3s.io/node-args"
K3S_DISABLED = "--disable-network-policy"
DECLARED = "paless.io/network-policy-controller"
NAMESPACE_NAME = "kubernetes.io/metadata.name"  # the label every namespace has


@dataclass(frozen=True)
class Controller:
    """A NetworkPolicy controller that runs as pods, and the label its agent pods carry."""

    name: str
    label: str  # key=value
    note: str = ""

    @property
    def key(self) -> str:
        return self.label.partition("=")[0]

    @property
    def value(self) -> str:
        return self.label.partition("=")[2]


# The agents of the controllers a cluster is likely to run (their own manifests' labels).
KNOWN_CONTROLLERS: tuple[Controller, ...] = (
    Controller("Calico", "k8s-app=calico-node"),
    Controller("Cilium", "k8s-app=cilium"),
    Controller("kube-router", "k8s-app=kube-router"),
    Controller("Canal", "k8s-app=canal"),
    Controller("Antrea", "component=antrea-agent"),
    Controller("Weave Net", "name=weave-net"),
    Controller("Azure NPM", "k8s-app=azure-npm"),
    Controller("Kube-OVN", "app=kube-ovn-cni"),
)


class Enforced(Enum):
    """What the evidence says about NetworkPolicy enforcement."""

    YES = "enforced"
    NO = "not enforced"
    NOT_FOUND = "not known to be enforced"


@dataclass(frozen=True)
class Enforcement:
    """The verdict, and the evidence it rests on (said to the user as is)."""

    state: Enforced
    evidence: str

    @property
    def enforced(self) -> bool:
        return self.state is Enforced.YES


def _k3s_args(node: Node) -> list[str] | None:
    text = node.annotations.get(K3S_NODE_ARGS)
    if text is None:
        return None
    try:
        args = json.loads(text)
    except ValueError:
        return text.split()
    return [str(a) for a in args] if isinstance(args, list) else text.split()


def _k3s_verdict(nodes: Sequence[Node]) -> Enforcement | None:
    k3s = [(n.name, args) for n in nodes if (args := _k3s_args(n)) is not None]
    if not k3s:
        return None
    disabled = [name for name, args in k3s if K3S_DISABLED in args]
    if disabled:
        return Enforcement(Enforced.NO, f"k3s runs with {K3S_DISABLED} (node "
                           f"{disabled[0]}'s {K3S_NODE_ARGS}): its kube-router is off")
    return Enforcement(Enforced.YES, f"k3s's embedded kube-router ({len(k3s)} k3s node(s), "
                       f"none started with {K3S_DISABLED})")


def judge_enforcement(nodes: Sequence[Node],
                      controller_pods: Mapping[str, Sequence[ApiObject]]) -> Enforcement:
    """The verdict from the Nodes and, per known controller's name, its pods as listed.

    Evidence in order: a controller declared on a Ready node, k3s's node arguments, the
    Running pods of a known controller. Declarations on nodes that are not Ready do not
    count (a stopped controller leaves its annotation behind).
    """
    declared = sorted({f"{value} (declared on node {n.name} by {DECLARED})"
                       for n in nodes if n.ready and (value := n.annotations.get(DECLARED))})
    if declared:
        return Enforcement(Enforced.YES, declared[0])
    k3s = _k3s_verdict(nodes)
    if k3s is not None:
        return k3s
    for controller in KNOWN_CONTROLLERS:
        running = [p for p in controller_pods.get(controller.name, ())
                   if nested(p, "status", "phase") == "Running"]
        if running:
            where = sorted({namespace_of(p) for p in running})
            return Enforcement(Enforced.YES, f"{controller.name} ({len(running)} running "
                               f"pod(s) labelled {controller.label} in {', '.join(where)})")
    looked = ", ".join(c.name for c in KNOWN_CONTROLLERS)
    return Enforcement(Enforced.NOT_FOUND, "no controller found: no k3s node, "
                       f"no running pods of {looked}, no node annotated {DECLARED}")


# --- one row per policy (status) --------------------------------------------------------------


def _selector_text(selector: object) -> str:
    if not isinstance(selector, Mapping) or not selector:
        return "all pods"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())
             if k != "app.kubernetes.io/part-of"]
    for expr in selector.get("matchExpressions") or []:
        values = ",".join(expr.get("values") or [])
        parts.append(f"{expr.get('key')} {str(expr.get('operator', '')).lower()} ({values})"
                     if values else f"{expr.get('key')} {expr.get('operator')}")
    return "; ".join(parts) or "all pods"


def _short(text: str) -> str:
    return text.replace("app.kubernetes.io/component", "component")


def _peer_text(peer: Mapping[str, object]) -> str:
    if "ipBlock" in peer:
        return f"ip {nested(peer, 'ipBlock', 'cidr')}"
    pods = _selector_text(peer.get("podSelector")) if "podSelector" in peer else "all pods"
    if "namespaceSelector" not in peer:
        return pods
    selector = peer.get("namespaceSelector")
    named = nested(selector, "matchLabels", NAMESPACE_NAME)
    if isinstance(named, str) and selector == {"matchLabels": {NAMESPACE_NAME: named}}:
        return f"{pods} in namespace {named}"
    spaces = _selector_text(selector)
    spaces = "any namespace" if spaces == "all pods" else f"namespaces {spaces}"
    return f"{pods} in {spaces}"


def _rules_text(rules: object, peers_key: str) -> str:
    if not isinstance(rules, list) or not rules:
        return "none"
    texts = []
    for rule in rules:
        peers = rule.get(peers_key) or []
        who = " | ".join(_peer_text(p) for p in peers) if peers else "anyone"
        ports = ",".join(f"{p.get('port', 'all')}/{p.get('protocol', 'TCP')}"
                         for p in rule.get("ports") or [])
        texts.append(f"{who} on {ports}" if ports else f"{who}, every port")
    return _short("; ".join(texts))


def policy_row(policy: ApiObject) -> dict[str, str]:
    """A NetworkPolicy as a status row: which pods, what may come in, what may go out
    ("-": that direction is not restricted by this policy, "none": nothing is allowed)."""
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec
                                         else ["Ingress"])
    return {
        "name": name_of(policy),
        "pods": _short(_selector_text(spec.get("podSelector"))),
        "ingress": _rules_text(spec.get("ingress"), "from") if "Ingress" in types else "-",
        "egress": _rules_text(spec.get("egress"), "to") if "Egress" in types else "-",
    }


def policy_rows(policies: Iterable[ApiObject]) -> list[dict[str, str]]:
    """Every policy's row, by name."""
    return sorted((policy_row(p) for p in policies), key=lambda row: row["name"])
