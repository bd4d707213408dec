"""Processes the sandbox started: pid files, liveness, stopping, strays a killed run left, and
whether a loopback port is taken."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from paless_sandbox.messages import say

# The sandbox's own command lines: never strays, though they may name a marker.
OWN_COMMANDS = ("scripts/sandbox", "paless_sandbox")


def read_pid(pidfile: Path) -> int | None:
    """The live process a pid file names (None when missing, unreadable or dead)."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def running_argv(pid: int) -> list[str] | None:
    """The command line of a running process (None when it cannot be read)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")[:-1] or None


def stop_pid(pid: int, name: str, grace: float = 10.0) -> None:
    """SIGTERM to the process group (or the process), SIGKILL after `grace` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        say(f"{name} did not stop in {grace:.0f}s: killing it")
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def is_stray(cmdline: str, marker: str) -> bool:
    """Whether a command line is one of ours left behind: it names `marker` and is not the
    sandbox command itself."""
    return marker in cmdline and not any(own in cmdline for own in OWN_COMMANDS)


def stray_pids(marker: str) -> list[int]:
    """Processes whose command line mentions `marker` (left by a killed run)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            raw = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if is_stray(raw.replace(b"\0", b" ").decode(errors="replace"), marker):
            found.append(int(proc.name))
    return found


def port_in_use(port: int) -> bool:
    """True when something listens on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
