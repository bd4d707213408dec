"""The sandbox on the host, read as data: the mount table, cgroup hierarchies and what the
kernel lacks, capabilities, iptables listings, and which processes are strays."""

from __future__ import annotations

from pathlib import Path

from paless_sandbox import kernel
from paless_sandbox.cgroups import CgroupMount
from paless_sandbox.mounts import (
    Mount,
    fuse_points_under,
    parse_mountinfo,
    points_under,
    unescape_mount_path,
)
from paless_sandbox.podnetwork import FORWARD_RULES, jumps_to
from paless_sandbox.processes import is_stray

MOUNTINFO = """\
22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/a
30 22 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
31 22 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
40 22 0:40 / /state/realnode/kubelet/pods/a/volumes/my\\040data rw shared:5 - tmpfs tmpfs rw
41 22 0:41 / /state/realnode/containerd/state/netns/cni-1 rw - nsfs nsfs rw
42 22 0:42 / /state/realnode rw - tmpfs tmpfs rw
43 22 0:43 / /state/realnode2/x rw - tmpfs tmpfs rw
"""


def test_mountinfo_is_read_with_its_escapes_and_optional_fields() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert mounts[1] == Mount("/sys/fs/cgroup/cpu,cpuacct", "cgroup", "rw,cpu,cpuacct")
    assert mounts[3] == Mount("/state/realnode/kubelet/pods/a/volumes/my data", "tmpfs", "rw")
    assert unescape_mount_path("a\\134b") == "a\\b"


def test_points_under_a_root_are_deepest_first_and_exclude_the_root_and_its_namesakes() -> None:
    points = points_under(parse_mountinfo(MOUNTINFO), Path("/state/realnode"))
    assert points == ["/state/realnode/kubelet/pods/a/volumes/my data",
                      "/state/realnode/containerd/state/netns/cni-1"]


def test_only_fuse_mounts_under_the_dev_volumes_are_stale_candidates() -> None:
    table = MOUNTINFO + (
        "50 22 0:50 / /var/lib/paless rw shared:7 - ext4 /dev/vda rw\n"
        "51 50 0:51 / /var/lib/paless/ns-a/media rw shared:8 - fuse.rclone minio: rw\n"
        "52 50 0:52 / /var/lib/paless/ns-a/data rw - ext4 /dev/vda rw\n"
        "53 22 0:53 / /var/lib/paless-other/media rw - fuse.rclone minio: rw\n"
        "54 50 0:54 / /var/lib/paless/ns-b/media/x rw - fuse fuse rw\n")
    assert fuse_points_under(parse_mountinfo(table), Path("/var/lib/paless")) == [
        "/var/lib/paless/ns-b/media/x", "/var/lib/paless/ns-a/media"]


V1_ALL: list[CgroupMount] = [
    (Path("/sys/fs/cgroup/cpu,cpuacct"), {"rw", "cpu", "cpuacct"}),
    (Path("/sys/fs/cgroup/cpuset"), {"rw", "cpuset"}),
    (Path("/sys/fs/cgroup/memory"), {"rw", "memory"}),
    (Path("/sys/fs/cgroup/pids"), {"rw", "pids"}),
]


def test_cgroup_v1_with_every_controller_and_cfs_lacks_nothing() -> None:
    assert kernel.cgroup_problems(V1_ALL, lambda cpu: True) == []


def test_cgroup_v1_names_a_missing_controller_and_missing_cpu_bandwidth() -> None:
    without_pids = V1_ALL[:3]
    seen: list[Path] = []

    def no_cfs(cpu: Path) -> bool:
        seen.append(cpu)
        return False

    problems = kernel.cgroup_problems(without_pids, no_cfs)
    assert problems == ["CPU bandwidth control (CONFIG_CFS_BANDWIDTH): CPU limits",
                        "cgroup controller pids (CONFIG_CGROUPS and its option for pids)"]
    assert seen == [Path("/sys/fs/cgroup/cpu,cpuacct")]


def test_cgroup_v2_is_judged_at_sys_fs_cgroup() -> None:
    unified = [(Path("/sys/fs/cgroup"), {"cgroup2", "cpu", "cpuset", "memory"})]
    assert kernel.cgroup_problems(unified, lambda cpu: False) == [
        "cgroup controller pids (CONFIG_CGROUPS and its option for pids)"]
    elsewhere = [(Path("/mnt/cg"), {"cgroup2", "cpu", "cpuset", "memory", "pids"})]
    assert len(kernel.cgroup_problems(elsewhere, lambda cpu: True)) == 4


def test_capabilities_are_read_from_the_effective_set() -> None:
    status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000001000000\n"
    assert kernel.capability_in_status(status, kernel.CAP_SYS_RESOURCE)
    assert not kernel.capability_in_status(status, 0)
    assert not kernel.capability_in_status("Name:\tx\n", kernel.CAP_SYS_RESOURCE)


def test_only_rules_that_jump_to_the_chains_are_deleted() -> None:
    listing = ("-P FORWARD ACCEPT\n-N KUBE-FIREWALL\n-A INPUT -j KUBE-FIREWALL\n"
               "-A OUTPUT -m comment --comment x -j KUBE-FIREWALL\n"
               "-A KUBE-FIREWALL -j DROP\n-A FORWARD -j DOCKER-USER\n"
               '-A FORWARD -m comment --comment "kube-router netpol - TEMCG2" '
               "-j KUBE-FIREWALL\n")
    assert jumps_to(listing, ("KUBE-FIREWALL",)) == [
        ["INPUT", "-j", "KUBE-FIREWALL"],
        ["OUTPUT", "-m", "comment", "--comment", "x", "-j", "KUBE-FIREWALL"],
        # a comment with spaces is one word, as `-D` needs it (kube-router's jumps)
        ["FORWARD", "-m", "comment", "--comment", "kube-router netpol - TEMCG2", "-j",
         "KUBE-FIREWALL"]]
    assert jumps_to(listing, ()) == []


def test_pod_traffic_stays_on_the_bridge() -> None:
    accept, *rejects = FORWARD_RULES
    assert accept[-1] == "ACCEPT" and "-i" in accept and "-o" in accept
    assert all(rule[-1] == "REJECT" for rule in rejects)


def test_the_sandbox_command_itself_is_never_a_stray() -> None:
    state = "/root/.local/state/paless-sandbox"
    assert is_stray(f"/bin/etcd --data-dir={state}/etcd ", state)
    assert not is_stray(f"python3 /work/scripts/sandbox up {state} ", state)
    assert not is_stray(f"python3 -m paless_sandbox down {state} ", state)
    assert not is_stray("/bin/etcd --data-dir=/elsewhere ", state)
