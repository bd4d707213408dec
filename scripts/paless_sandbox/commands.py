"""The sandbox's commands: `up` (start what is not running, idempotent), `down`, `env` and
`restart COMPONENT` (one outage at a time, for fault tests). `status` is in status.py."""

from __future__ import annotations

import time

from paless_sandbox.components import Component, start, stop_component
from paless_sandbox.controlplane import control_plane, start_etcd
from paless_sandbox.credentials import ensure_pki, write_component_kubeconfigs
from paless_sandbox.docker import (
    DOCKERD_PID,
    ensure_base_image,
    ensure_buildkit,
    ensure_docker,
    kill_dockerd,
    registry_component,
)
from paless_sandbox.kwok import apply_bootstrap, wait_kwok_holds_nodes, write_kwok_config
from paless_sandbox.layout import BIN, KUBECONFIG, LOGS, PIDS, REGISTRY_ADDR, SCRIPT, STATE
from paless_sandbox.messages import SandboxError, say
from paless_sandbox.prerequisites import ensure_binaries, ensure_packages
from paless_sandbox.processes import pid_alive, port_in_use, read_pid, stop_pid, stray_pids
from paless_sandbox.realnode import start_real_node, stop_real_node
from paless_sandbox.realstack.ensure import Options, ensure

RESTART_GRACE_S = 2.0
PORTS_FREE_S = 15.0  # a killed component frees its ports only once it has exited


def cmd_up(nodes: tuple[str, ...], real_stack: bool = False) -> None:
    """Start everything that is not running and healthy, in order; `nodes` simulated nodes;
    with `real_stack`, then `realstack ensure` (it needs the registry, and the real node for
    CoreDNS)."""
    started = time.monotonic()
    for d in (LOGS, PIDS, STATE / "volumes"):
        d.mkdir(parents=True, exist_ok=True)
    ensure_packages()
    ensure_binaries()
    ensure_pki()
    write_component_kubeconfigs()
    write_kwok_config()
    ensure_docker()
    start(registry_component())
    ensure_base_image()
    ensure_buildkit()
    comps = control_plane()
    start_etcd(comps[0])
    kwok_started = None
    for c in comps[1:]:
        before, began = read_pid(c.pidfile), time.time()
        start(c)
        if c.name == "kwok" and read_pid(c.pidfile) != before:
            kwok_started = began
    apply_bootstrap(nodes)
    if kwok_started is not None:
        wait_kwok_holds_nodes(kwok_started)
    start_real_node()
    if real_stack:
        ensure(Options())
    say(f"up in {time.monotonic() - started:.1f}s; run: eval \"$({SCRIPT} env)\"")


def all_components() -> list[Component]:
    """What `down` stops, in stop order: the control plane backwards, then the registry (not
    rewriting its configuration)."""
    return [*reversed(control_plane()), Component("registry", [], f"http://{REGISTRY_ADDR}/v2/")]


def cmd_down() -> None:
    """Stop every sandbox process (the real node first, dockerd only when the sandbox started
    it), then whatever a killed run left."""
    stop_real_node()
    for c in all_components():
        stop_component(c)
    pid = read_pid(DOCKERD_PID)
    if pid:
        say(f"stopping dockerd (pid {pid})")
        stop_pid(pid, "dockerd", grace=20)
        DOCKERD_PID.unlink(missing_ok=True)
    for marker in (str(BIN), str(STATE)):
        for pid in stray_pids(marker):
            say(f"stopping stray process {pid}")
            stop_pid(pid, str(pid), grace=5)
    say("down")


def cmd_env() -> None:
    """The shell lines that point kubectl and clients at the sandbox."""
    print(f"export KUBECONFIG={KUBECONFIG}")
    print(f"export PATH={BIN}:$PATH")


def restart_target(name: str) -> Component | None:
    """The component `restart NAME` stops (None: dockerd, which is no Component)."""
    if name == "dockerd":
        return None
    comps = {c.name: c for c in control_plane()}
    return {"apiserver": comps["kube-apiserver"], "etcd": comps["etcd"],
            "registry": registry_component()}[name]


def cmd_restart(name: str, down_s: float) -> None:
    """Stop one component, keep it down `down_s` seconds, start it and wait until it is
    healthy; every other component is left alone (fault tests: one outage at a time)."""
    component = restart_target(name)
    if component is not None and read_pid(component.pidfile) is None:
        raise SandboxError(f"{component.name} was not started by the sandbox (no live pid in "
                           f"{component.pidfile}); run `scripts/sandbox up` first")
    if component is None and read_pid(DOCKERD_PID) is None:
        raise SandboxError("dockerd was not started by the sandbox: restart it yourself")
    started = time.monotonic()
    pidfile = component.pidfile if component is not None else DOCKERD_PID
    try:
        pid = read_pid(pidfile)
        if pid is None:
            raise SandboxError(f"{name} is not running (no live pid in {pidfile})")
        say(f"stopping {name} (pid {pid})")
        crash(name, pid, component)
        if down_s > 0:
            say(f"{name}: down for {down_s:g}s")
            time.sleep(down_s)
    finally:  # interrupted while down, or a failed start: never leave it stopped
        bring_up_again(name, component)
    say(f"{name}: restarted in {time.monotonic() - started:.1f}s")


def crash(name: str, pid: int, component: Component | None) -> None:
    """Stop as a fault would, not a shutdown: a short grace, then killed; back only once it
    has exited and freed its ports."""
    if component is None:
        kill_dockerd(pid, RESTART_GRACE_S)
        return
    stop_pid(pid, name, grace=RESTART_GRACE_S)
    deadline = time.monotonic() + PORTS_FREE_S
    while time.monotonic() < deadline and (pid_alive(pid) or any(
            port_in_use(port) for port in component.ports)):
        time.sleep(0.1)


def bring_up_again(name: str, component: Component | None) -> None:
    """Start the component again; once more after a pause when what it left (ports, its
    containerd) was not yet gone."""
    def bring_up() -> None:
        if component is not None:
            start(component)
        else:
            ensure_docker()

    try:
        bring_up()
    except SandboxError as exc:
        say(f"{name} did not start ({exc}); trying once more")
        time.sleep(3)
        bring_up()
