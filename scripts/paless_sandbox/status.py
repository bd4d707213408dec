"""`status`: each component's state, pid and log, where things are, and the real node: exit 1
when something that should run does not (a real node the kernel cannot run is excused)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from paless_sandbox.components import Component, http_ok
from paless_sandbox.controlplane import APISERVER_READYZ, control_plane
from paless_sandbox.credentials import admin_token
from paless_sandbox.docker import DOCKERD_PID, docker_answers, registry_component
from paless_sandbox.kubeobjects import Node, ready_condition, runtime_version
from paless_sandbox.layout import (
    BIN,
    BRIDGE,
    CONTAINERD_SOCK,
    KUBECONFIG,
    LOGS,
    POD_CIDR,
    POD_LOGS,
    REAL_KEY,
    REAL_NODE,
    REGISTRY_ADDR,
    RESTRICTED_KUBECONFIG,
    RESTRICTED_NAMESPACE,
    STATE,
)
from paless_sandbox.netpol import components as policy_components
from paless_sandbox.netpol import policy_line
from paless_sandbox.netpol import read_unavailable as policies_unavailable
from paless_sandbox.nodeconfig import real_node_components
from paless_sandbox.processes import read_pid
from paless_sandbox.realnode import Unavailable, read_unavailable, real_node_status


@dataclass(frozen=True)
class Row:
    """One line of the component table; `counts`: a bad state makes `status` fail."""

    name: str
    state: str
    pid: str
    log: str
    ok: bool
    counts: bool = True


def component_row(c: Component, pid: int | None, ok: bool) -> Row:
    """A component's line: healthy, unhealthy (its pid runs, it does not answer) or stopped."""
    state = "healthy" if ok else ("unhealthy" if pid else "stopped")
    return Row(c.name, state, str(pid or ("external" if ok else "-")), str(c.log), ok)


def component_rows(excused: bool) -> list[Row]:
    """The control plane, the registry, dockerd and the real node's components, checked."""
    rows = []
    for c in [*control_plane(), registry_component()]:
        pid = read_pid(c.pidfile)
        ok = http_ok(c.health, admin_token()) and (pid is not None or c.external_ok)
        rows.append(component_row(c, pid, ok))
    dpid, dok = read_pid(DOCKERD_PID), docker_answers()
    rows.append(Row("dockerd", "healthy" if dok else "stopped",
                    str(dpid or ("external" if dok else "-")), str(LOGS / "dockerd.log"), dok))
    for c in [*real_node_components(), *policy_components()]:
        pid = read_pid(c.pidfile)
        ok = pid is not None and http_ok(c.health)
        rows.append(replace(component_row(c, pid, ok), counts=not excused))
    return rows


def excused(unavailable: Unavailable | None) -> bool:
    """Whether a recorded reason excuses a real node that does not run: the kernel lacks
    something, or it was turned off."""
    return unavailable is not None and bool(
        unavailable.get("kernel") or "PALESS_SANDBOX_REAL_NODE" in unavailable.get("why", ""))


def table(rows: list[Row]) -> str:
    """The component table: name, state, pid, log, aligned."""
    width = max(len(r.name) for r in rows)
    lines = [f"{'component':<{width}}  {'state':<9}  {'pid':<8}  log"]
    lines += [f"{r.name:<{width}}  {r.state:<9}  {r.pid:<8}  {r.log}" for r in rows]
    return "\n".join(lines)


def locations() -> str:
    """Where the state, binaries, kubeconfigs and registry are."""
    return (f"\nstate: {STATE}\nbinaries: {BIN}\nkubeconfig: {KUBECONFIG} "
            f"(restricted user: {RESTRICTED_KUBECONFIG}, namespace {RESTRICTED_NAMESPACE})\n"
            f"registry: http://{REGISTRY_ADDR}")


def real_node_lines(node: Node | None, api_answers: bool,
                    unavailable: Unavailable | None) -> list[str]:
    """The real node's state, why it does not run, and where its socket and logs are."""
    lines = []
    if node is not None:
        ready = ready_condition(node)
        state = ("Ready" if ready.get("status") == "True"
                 else f"NotReady ({ready.get('message', '?')})")
        lines.append(f"real node: {REAL_NODE} {state}, {runtime_version(node)}; pods need "
                     f"toleration and nodeSelector {REAL_KEY}=true; pod network {POD_CIDR} "
                     f"on {BRIDGE}")
    elif not unavailable:
        lines.append(f"real node: {REAL_NODE} " + (
            "not registered" if api_answers else "unknown (the API server does not answer)"))
    if unavailable:
        lines.append(f"real node: not running: {unavailable.get('why')}")
    lines.append(f"  containerd socket: {CONTAINERD_SOCK} (ctr --address {CONTAINERD_SOCK} "
                 f"-n k8s.io ...)\n  logs: {LOGS}/containerd.log, kubelet.log, kube-proxy.log, "
                 f"kube-router.log; "
                 f"pod logs {POD_LOGS}")
    return lines


def cmd_status() -> int:
    """Print the status; 1 when a component that should run does not."""
    unavailable = read_unavailable()
    rows = component_rows(excused(unavailable))
    print(table(rows))
    print(locations())
    api_answers = http_ok(APISERVER_READYZ)
    node = real_node_status() if api_answers else None
    for line in real_node_lines(node, api_answers, unavailable):
        print(line)
    if not unavailable:
        print(policy_line(policies_unavailable()))
    return 1 if any(r.counts and not r.ok for r in rows) else 0
