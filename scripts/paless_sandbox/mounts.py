"""The mount table (/proc/self/mountinfo) read as data, and unmounting everything under a
directory (the real node's pod volumes, root filesystems, shm and network namespaces)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from paless_sandbox.messages import say

MOUNTINFO = Path("/proc/self/mountinfo")


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo: where, which filesystem type, its super options."""

    point: str
    fstype: str
    options: str


def unescape_mount_path(field_: str) -> str:
    """/proc/self/mountinfo escapes spaces and backslashes as octal (\\040)."""
    return field_.encode().decode("unicode_escape")


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a mountinfo text, in its order."""
    mounts = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fstype, _source, options = (right.split() + ["", "", ""])[:3]
        mounts.append(Mount(unescape_mount_path(left.split()[4]), fstype, options))
    return mounts


def read_mounts() -> list[Mount]:
    """This process's mounts."""
    return parse_mountinfo(MOUNTINFO.read_text())


def points_under(mounts: list[Mount], root: Path) -> list[str]:
    """Mount points below `root` (not `root` itself), deepest first."""
    prefix = f"{root}/"
    points = {m.point for m in mounts}
    return sorted((p for p in points if p.startswith(prefix)), key=lambda p: p.count("/"),
                  reverse=True)


def mounts_under(root: Path) -> list[str]:
    """Mount points below `root`, deepest first."""
    return points_under(read_mounts(), root)


def fuse_points_under(mounts: list[Mount], root: Path) -> list[str]:
    """FUSE mount points below `root`, deepest first (an rclone sidecar's media mount that
    Bidirectional propagation left on the host: once its pod is gone, a dead endpoint)."""
    fuse = {m.point for m in mounts if m.fstype == "fuse" or m.fstype.startswith("fuse.")}
    return [p for p in points_under(mounts, root) if p in fuse]


def unmount_stale_fuse(root: Path) -> None:
    """Detach the FUSE mounts below `root` (only when no pod runs: `sandbox down`)."""
    points = fuse_points_under(read_mounts(), root)
    for point in points:
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    if points:
        say(f"real node: detached {len(points)} FUSE mount(s) its pods left under {root}")


def unmount_under(root: Path) -> None:
    """Pod volumes, container root filesystems, shm and network namespaces of the real node."""
    for _ in range(5):  # a mount may hide another at the same point
        points = mounts_under(root)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    say(f"real node: still mounted after unmounting: {', '.join(mounts_under(root)[:5])}")
