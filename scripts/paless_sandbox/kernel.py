"""What the kernel must offer for a real node (root, overlayfs, cgroup controllers, the
kernel log, br_netfilter, network namespaces, veth, bridges, iptables NAT), each missing one
named with the kernel option behind it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from paless_sandbox.cgroups import CgroupMount, cgroup_mounts
from paless_sandbox.layout import BRIDGE
from paless_sandbox.podnetwork import iptables

CAP_SYS_RESOURCE = 24  # linux/capability.h
NOT_ROOT = ("root (the real node mounts filesystems and creates network namespaces, "
            "cgroups and a bridge)")
# file that exists when the kernel has the feature -> what is missing otherwise
KERNEL_FILES = (
    (Path("/dev/kmsg"), "/dev/kmsg: the kubelet's OOM watcher reads the kernel log"),
    (Path("/proc/sys/net/bridge/bridge-nf-call-iptables"),
     "br_netfilter (CONFIG_BRIDGE_NETFILTER): Services between pods on one bridge"),
)
# command that succeeds when the kernel has the feature, what undoes it, what is missing
KERNEL_PROBES: tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...] = (
    (("unshare", "--net", "true"), (), "network namespaces (CONFIG_NET_NS)"),
    (("ip", "link", "add", "paless-vtest0", "type", "veth", "peer", "name", "paless-vtest1"),
     ("ip", "link", "del", "paless-vtest0"), "veth pairs (CONFIG_VETH): pod network interfaces"),
)
BRIDGE_PROBE = (("ip", "link", "add", "paless-btest", "type", "bridge"),
                ("ip", "link", "del", "paless-btest"), "bridges (CONFIG_BRIDGE): the pod network")


def capability_in_status(status: str, bit: int) -> bool:
    """Whether /proc/<pid>/status text grants capability `bit` (CapEff)."""
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return False


def has_capability(bit: int) -> bool:
    """Whether this process may use a capability (bit numbers of linux/capability.h)."""
    return capability_in_status(Path("/proc/self/status").read_text(), bit)


def cgroup_problems(mounts: list[CgroupMount], has_cfs_quota: Callable[[Path], bool]) -> list[str]:
    """What the cgroup hierarchies lack: on v1 (cpu or memory mounted there) five controllers
    and CPU bandwidth control, on v2 four controllers at /sys/fs/cgroup."""
    problems = []
    v1 = {c for point, cs in mounts if "cgroup2" not in cs for c in cs}
    wanted: tuple[str, ...]
    if v1 & {"cpu", "memory"}:
        wanted, have = ("cpu", "cpuacct", "cpuset", "memory", "pids"), v1
        cpu = next((p for p, cs in mounts if "cpu" in cs and "cgroup2" not in cs), None)
        if cpu and not has_cfs_quota(cpu):
            problems.append("CPU bandwidth control (CONFIG_CFS_BANDWIDTH): CPU limits")
    else:
        wanted = ("cpu", "cpuset", "memory", "pids")
        have = next((cs for p, cs in mounts if "cgroup2" in cs and p == Path("/sys/fs/cgroup")),
                    set())
    return problems + [f"cgroup controller {c} (CONFIG_CGROUPS and its option for {c})"
                       for c in wanted if c not in have]


def probe_fails(probe: tuple[str, ...], undo: tuple[str, ...]) -> bool:
    """Run a probe command; undo what it made when it worked."""
    if subprocess.run(list(probe), capture_output=True, check=False).returncode != 0:
        return True
    if undo:
        subprocess.run(list(undo), capture_output=True, check=False)
    return False


def missing_kernel_features() -> list[str]:
    """What this machine lacks for a real node, each with the kernel option behind it."""
    if os.geteuid() != 0:
        return [NOT_ROOT]
    missing = []
    if "overlay" not in Path("/proc/filesystems").read_text():
        missing.append("overlayfs (CONFIG_OVERLAY_FS): containerd's snapshotter")
    missing += cgroup_problems(cgroup_mounts(), lambda cpu: (cpu / "cpu.cfs_quota_us").exists())
    missing += [why for path, why in KERNEL_FILES if not path.exists()]
    missing += [why for probe, undo, why in KERNEL_PROBES if probe_fails(probe, undo)]
    # the bridge may exist already (a running real node): only then is there nothing to probe
    bridge_exists = subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True,
                                   check=False).returncode == 0
    if not bridge_exists and probe_fails(*BRIDGE_PROBE[:2]):
        missing.append(BRIDGE_PROBE[2])
    if iptables("-t", "nat", "-S").returncode != 0:
        missing.append("iptables NAT (CONFIG_NF_NAT, CONFIG_IP_NF_NAT): ClusterIP Services")
    return missing
