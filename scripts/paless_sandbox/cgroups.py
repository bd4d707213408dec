"""The real node's cgroups: the hierarchies this machine mounts, the kubelet's cgroup root
(/paless-sandbox) in each, and the pod processes inside it."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from paless_sandbox.layout import CGROUP_ROOT
from paless_sandbox.messages import say
from paless_sandbox.mounts import Mount, read_mounts

CgroupMount = tuple[Path, set[str]]  # mount point, controllers ("cgroup2" marks the unified one)


def cgroup_hierarchies(mounts: list[Mount]) -> list[CgroupMount]:
    """Each cgroup hierarchy's mount point with its controllers; the unified hierarchy's
    controllers are read from its cgroup.controllers."""
    found: list[CgroupMount] = []
    for mount in mounts:
        point = Path(mount.point)
        if mount.fstype == "cgroup":
            found.append((point, set(mount.options.split(","))))
        elif mount.fstype == "cgroup2":
            try:
                controllers = set((point / "cgroup.controllers").read_text().split())
            except OSError:
                controllers = set()
            found.append((point, controllers | {"cgroup2"}))
    return found


def cgroup_mounts() -> list[CgroupMount]:
    """Each mounted cgroup hierarchy with its controllers ("cgroup2" marks the unified one)."""
    return cgroup_hierarchies(read_mounts())


def ensure_cgroup_root() -> None:
    """/paless-sandbox in every hierarchy: the kubelet's cgroupRoot must exist."""
    for point, controllers in cgroup_mounts():
        root = point / CGROUP_ROOT
        root.mkdir(exist_ok=True)
        if "cpuset" in controllers and "cgroup2" not in controllers:
            for name in ("cpuset.cpus", "cpuset.mems"):  # empty in a new v1 cpuset cgroup
                if not (root / name).read_text().strip():
                    (root / name).write_text((point / name).read_text())


def pod_processes() -> set[int]:
    """Every process in the real node's cgroups (containers and their pause processes)."""
    pids: set[int] = set()
    for point, _ in cgroup_mounts():
        for procs in (point / CGROUP_ROOT).rglob("cgroup.procs"):
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except OSError:
                continue
    return pids


def kill_pod_processes(timeout: float = 15.0) -> None:
    """SIGKILL every pod process until none is left (or `timeout` passes, said)."""
    deadline = time.monotonic() + timeout
    while (left := pod_processes()) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    if left:
        say(f"real node: processes {sorted(left)} are still in /{CGROUP_ROOT} after SIGKILL")


def remove_cgroup_root() -> None:
    """Remove /paless-sandbox and every cgroup below it (deepest first) in every hierarchy."""
    for point, _ in cgroup_mounts():
        root = point / CGROUP_ROOT
        if root.is_dir():
            for d in sorted((p for p in root.rglob("*") if p.is_dir()),
                            key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                root.rmdir()
