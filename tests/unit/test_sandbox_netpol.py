"""The sandbox's NetworkPolicy controller read as data: kube-router's command line (the
firewall alone, beside kube-proxy), its pinned build, the guard that keeps pod traffic on
the bridge, and which chains and ipsets `down` removes."""

from __future__ import annotations

from typing import Any

from paless_sandbox import netpol
from paless_sandbox.layout import BRIDGE, REAL_NODE, SERVICE_CIDR
from paless_sandbox.nodeconfig import real_node_components


def test_kube_router_runs_its_firewall_only() -> None:
    argv = netpol.kube_router_component().argv
    assert {"--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
            "--enable-cni=false", f"--hostname-override={REAL_NODE}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--metrics-port=0"} <= set(argv)
    assert argv[0] == str(netpol.KUBE_ROUTER_BIN)
    assert netpol.KUBE_ROUTER_VERSION in str(netpol.KUBE_ROUTER_BIN)


def test_its_ports_are_its_own() -> None:
    taken = {p for c in real_node_components() for p in c.ports}
    health = netpol.kube_router_component().ports
    assert health == (netpol.KUBE_ROUTER_HEALTH_PORT,) and not taken & set(health)
    assert netpol.KUBE_ROUTER_HEALTH_PORT not in range(10260, 10269)  # the node's, CoreDNS's


def test_the_build_is_pinned_and_version_stamped(tmp_path) -> None:
    argv = netpol.build_command(tmp_path)
    assert argv[:2] == ["go", "install"]
    assert argv[-1] == f"{netpol.KUBE_ROUTER_PACKAGE}@{netpol.KUBE_ROUTER_VERSION}"
    assert f"version.Version={netpol.KUBE_ROUTER_VERSION}" in " ".join(argv)


def test_the_guard_drops_what_leaves_or_enters_the_bridge_after_the_allowed_paths() -> None:
    rules = [" ".join(r) for r in netpol.GUARD_RULES]
    returns = [i for i, r in enumerate(rules) if r.endswith("RETURN")]
    drops = [i for i, r in enumerate(rules) if r.endswith("DROP")]
    assert max(returns) < min(drops)  # every allowed path before any drop
    assert f"-i {BRIDGE} -o {BRIDGE} -j RETURN" in rules
    assert f"-i {BRIDGE} -j DROP" in rules and f"-o {BRIDGE} -j DROP" in rules
    assert not any(r.startswith(f"-i {BRIDGE}") and "mark" in r for r in rules)  # pods: no way out


def test_down_removes_kube_routers_chains_and_ipsets_only() -> None:
    listing = ("-P FORWARD DROP\n-N KUBE-ROUTER-FORWARD\n-N KUBE-POD-FW-ABC\n"
               "-N KUBE-NWPLCY-DEFAULT\n-N KUBE-FORWARD\n-N PALESS-SANDBOX\n"
               "-A KUBE-ROUTER-FORWARD -j KUBE-POD-FW-ABC\n")
    assert netpol.chains_to_remove(listing) == ["KUBE-ROUTER-FORWARD", "KUBE-POD-FW-ABC",
                                                "KUBE-NWPLCY-DEFAULT"]
    names = "KUBE-SRC-AAA\nKUBE-DST-BBB\ninet6:KUBE-SRC-CCC\nKUBE-SVC-ALL\ndocker-set\n"
    assert netpol.ipsets_to_remove(names) == ["KUBE-SRC-AAA", "KUBE-DST-BBB", "inet6:KUBE-SRC-CCC"]


def test_the_status_line_says_whether_policies_are_enforced() -> None:
    assert "enforced by kube-router v2.1.0" in netpol.policy_line(None)
    assert netpol.policy_line("no Go") == "  network policies: NOT enforced: no Go"


def test_its_role_reads_and_never_writes() -> None:
    role: Any = netpol.RBAC[0]
    binding: Any = netpol.RBAC[1]
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}
    assert binding["subjects"][0]["name"] == netpol.KUBE_ROUTER_USER
