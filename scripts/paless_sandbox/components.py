"""A process the sandbox runs (its command, pid file, log, health URL, ports) and how it is
started, checked and stopped: idempotently, replacing stale, sick or stray instances."""

from __future__ import annotations

import functools
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from paless_sandbox.credentials import admin_token
from paless_sandbox.layout import LOGS, PIDS
from paless_sandbox.messages import SandboxError, say, tail
from paless_sandbox.processes import (
    port_in_use,
    read_pid,
    running_argv,
    stop_pid,
    stray_pids,
)


@dataclass
class Component:
    """A process the sandbox runs, with its pid file, log and health check."""

    name: str
    argv: list[str]
    health: str  # URL that answers 200 when healthy
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    external_ok: bool = False  # an instance the sandbox did not start may serve instead
    ports: tuple[int, ...] = ()  # loopback ports it listens on (checked before starting)
    marker: str = ""  # names its stray processes in /proc/*/cmdline (default: argv[0])

    @property
    def pidfile(self) -> Path:
        return PIDS / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return LOGS / f"{self.name}.log"

    @property
    def stray_marker(self) -> str:
        return self.marker or self.argv[0]


@functools.cache
def probe_tls_context() -> ssl.SSLContext:
    """TLS for health probes: nothing is verified (clients verify with the CA)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA bundle to load
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http_ok(url: str, token: str | None = None, timeout: float = 2.0) -> bool:
    """Whether `url` answers 200 (with `token` as bearer when given)."""
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=probe_tls_context()) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start(c: Component) -> None:
    """Start `c` unless it already runs healthy; replace a stale or sick instance."""
    if keep_running_instance(c) or use_external_instance(c):
        return
    clear_ports(c)
    proc = launch(c)
    wait_healthy(c, proc)


def keep_running_instance(c: Component) -> bool:
    """True when the instance the sandbox started runs healthy with this sandbox's flags;
    otherwise it is stopped."""
    pid = read_pid(c.pidfile)
    argv = running_argv(pid) if pid is not None else None
    if pid is not None and argv is not None and argv != c.argv:
        # started by an older sandbox with other flags: the new ones matter (kwok must not
        # manage the real node, the API server needs its kubelet client certificate)
        say(f"{c.name}: pid {pid} runs with other flags than this sandbox's; restarting it")
        stop_pid(pid, c.name)
        pid = None
    if pid is not None and http_ok(c.health, admin_token()):
        say(f"{c.name}: running (pid {pid})")
        return True
    if pid is not None:
        say(f"{c.name}: pid {pid} is not healthy, restarting it")
        stop_pid(pid, c.name)
    c.pidfile.unlink(missing_ok=True)
    return False


def use_external_instance(c: Component) -> bool:
    """True when an instance the sandbox did not start answers and may serve; a stray one of
    ours (a previous run killed without `down`) is stopped."""
    if not http_ok(c.health, admin_token()):
        return False
    if c.external_ok:
        say(f"{c.name}: an instance not started by the sandbox answers at {c.health}; using it")
        return True
    for stray in stray_pids(c.stray_marker):
        say(f"{c.name}: stopping a stray instance (pid {stray})")
        stop_pid(stray, c.name)
    return False


def clear_ports(c: Component) -> None:
    """Free `c`'s ports of our own strays; a port another program holds is an error."""
    for port in c.ports:
        if port_in_use(port):
            for stray in stray_pids(c.stray_marker):  # our own process from a killed run
                stop_pid(stray, c.name)
            if port_in_use(port):
                raise SandboxError(
                    f"{c.name} cannot start: port 127.0.0.1:{port} is used by another process "
                    f"(`ss -ltnp 'sport = :{port}'` shows which); stop it and run `up` again. "
                    f"Log: {c.log}")


def launch(c: Component) -> subprocess.Popen[bytes]:
    """Start `c` in a session of its own, its output appended to its log; record its pid."""
    LOGS.mkdir(parents=True, exist_ok=True)
    PIDS.mkdir(parents=True, exist_ok=True)
    with open(c.log, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {c.name}\n".encode())
        log.flush()
        proc = subprocess.Popen(c.argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ, **c.env},
                                start_new_session=True)
    c.pidfile.write_text(str(proc.pid))
    return proc


def wait_healthy(c: Component, proc: subprocess.Popen[bytes]) -> None:
    """Until `c` answers healthy; its exit or the timeout is an error naming its log."""
    deadline = time.monotonic() + c.timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SandboxError(f"{c.name} exited with code {proc.returncode} at start; "
                               f"see its log {c.log}:\n" + tail(c.log))
        if http_ok(c.health, admin_token()) and proc.poll() is None:
            say(f"{c.name}: started (pid {proc.pid}), log {c.log}")
            return
        time.sleep(0.2)
    raise SandboxError(f"{c.name} did not become healthy within {c.timeout:.0f}s ({c.health}); "
                       f"see its log {c.log}:\n" + tail(c.log))


def stop_component(c: Component) -> None:
    """Stop `c` when the sandbox runs it; forget its pid file."""
    pid = read_pid(c.pidfile)
    if pid:
        say(f"stopping {c.name} (pid {pid})")
        stop_pid(pid, c.name)
    c.pidfile.unlink(missing_ok=True)
