"""diagnosis.netpolicy: enforcement judged from what the API shows (k3s node arguments, a
known controller's pods, a node's declaration), each policy as a status row; the lint of a
branch namespace without policies; the status table of policies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from paless_deploy.core.apiviews import Node
from paless_deploy.core.diagnosis.lint import manifest_warnings
from paless_deploy.core.diagnosis.netpolicy import (
    DECLARED,
    K3S_NODE_ARGS,
    Enforced,
    judge_enforcement,
    policy_row,
    policy_rows,
)
from paless_deploy.core.diagnosis.status import LISTED_KINDS, TABLES, build_status
from tests.unit.test_manifests import by_name, rendered


def node(name: str = "n1", ready: bool = True, annotations: dict[str, str] | None = None
         ) -> Node:
    return Node.of({"metadata": {"name": name, "annotations": dict(annotations or {})},
                    "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}})


def pod(phase: str = "Running", namespace: str = "kube-system") -> dict:
    return {"metadata": {"name": "agent", "namespace": namespace}, "status": {"phase": phase}}


def test_k3s_enforces_unless_started_without_its_controller() -> None:
    args = json.dumps(["server", "--write-kubeconfig-mode", "644"])
    verdict = judge_enforcement([node(annotations={K3S_NODE_ARGS: args})], {})
    assert verdict.state is Enforced.YES and "k3s's embedded kube-router" in verdict.evidence
    off = json.dumps(["server", "--disable-network-policy"])
    verdict = judge_enforcement([node(annotations={K3S_NODE_ARGS: args}), node("n2", annotations={K3S_NODE_ARGS: off})],
                                {})
    assert verdict.state is Enforced.NO and "n2" in verdict.evidence and not verdict.enforced


def test_a_running_controller_is_evidence_a_pending_one_is_not() -> None:
    verdict = judge_enforcement([node()], {"Calico": [pod(namespace="calico-system")]})
    assert verdict.enforced and "Calico" in verdict.evidence and "calico-system" in verdict.evidence
    verdict = judge_enforcement([node()], {"Calico": [pod("Pending")]})
    assert verdict.state is Enforced.NOT_FOUND


def test_a_declaration_counts_on_ready_nodes_only() -> None:
    declared = {DECLARED: "kube-router v2.1.0"}
    verdict = judge_enforcement([node(annotations=declared)], {})
    assert verdict.enforced and "kube-router v2.1.0" in verdict.evidence and DECLARED in \
        verdict.evidence
    stale = judge_enforcement([node(ready=False, annotations=declared)], {})
    assert stale.state is Enforced.NOT_FOUND


def test_without_evidence_it_says_what_it_looked_for() -> None:
    verdict = judge_enforcement([node()], {})
    assert verdict.state is Enforced.NOT_FOUND and not verdict.enforced
    for looked_for in ("k3s", "Calico", "Cilium", DECLARED):
        assert looked_for in verdict.evidence


def test_the_stacks_policies_as_rows() -> None:
    objects = rendered("dev")
    rows = {r["name"]: r for r in policy_rows(o for o in objects if o["kind"] == "NetworkPolicy")}
    assert rows["default-deny-ingress"] == {"name": "default-deny-ingress", "pods": "all pods",
                                            "ingress": "none", "egress": "-"}
    assert rows["postgres"]["pods"] == "component=postgres"
    assert rows["postgres"]["ingress"] == ("component in (web,worker,scheduler,migrate,"
                                           "postgres-init) on 5432/TCP")
    assert rows["web-from-ingress"]["ingress"] == (
        "app.kubernetes.io/name in (traefik) in namespace kube-system on 8000/TCP")
    assert rows["data-services-egress"]["egress"] == "anyone on 53/UDP,53/TCP"
    assert rows["data-services-egress"]["ingress"] == "-"
    assert rows["minio-console"]["ingress"] == "anyone on 9001/TCP"


def test_a_policy_without_types_and_open_peers() -> None:
    row = policy_row({"metadata": {"name": "p"}, "spec": {
        "podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}},
                                                 {"namespaceSelector": {}}]}]}})
    assert row["ingress"] == "ip 10.0.0.0/8 | all pods in any namespace, every port"
    labelled = policy_row({"metadata": {"name": "q"}, "spec": {"podSelector": {}, "ingress": [
        {"from": [{"namespaceSelector": {"matchLabels": {"team": "ops"}}}]}]}})
    assert labelled["ingress"] == "all pods in namespaces team=ops, every port"
    assert row["egress"] == "-"


def test_status_lists_and_shows_the_policies() -> None:
    assert "NetworkPolicy" in LISTED_KINDS
    lists: dict[str, list[Any]] = {kind: [] for kind in LISTED_KINDS}
    lists["NetworkPolicy"] = [by_name(rendered("dev"), "NetworkPolicy", "redis")]
    st = build_status("paless", lists, datetime.now(UTC))
    assert st.policies == [policy_row(lists["NetworkPolicy"][0])]
    assert st.to_dict()["policies"][0]["name"] == "redis"
    assert ("Network policies", "policies", ("name", "pods", "ingress", "egress")) in TABLES


@pytest.mark.parametrize(("branch", "with_policy", "ignored", "warns"), [
    (True, False, False, True), (True, True, False, False), (False, False, False, False),
    (True, False, True, False)])
def test_lint_warns_about_a_branch_namespace_without_policies(branch: bool, with_policy: bool,
                                                              ignored: bool, warns: bool) -> None:
    objects = [o for o in rendered("dev") if with_policy or o["kind"] != "NetworkPolicy"]
    if ignored:
        config = by_name(objects, "ConfigMap", "paperless-config")
        config["metadata"]["annotations"] = {"paless.io/lint-ignore": "no-network-policy"}
    found = [w for w in manifest_warnings(objects, (), node_count=1, branch_namespace=branch)
             if "NetworkPolicy" in w]
    assert bool(found) == warns, found
    if warns:
        (warning,) = found
        assert "branch namespace" in warning and "StatefulSet/" in warning
        assert "and 2 more" in warning and "no-network-policy" in warning
