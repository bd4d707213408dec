"""The door to a node's containerd on this machine (a k3s node's): which images it has,
and importing one (`k3s ctr` or `ctr --address <socket>`, namespace k8s.io, where the
kubelet looks). Also who this machine is, so the delivery decision can tell its node.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from paless_deploy.core.errors import BuildError, whole_words
from paless_deploy.core.images.delivery import ThisMachine

K3S_SOCKET = Path("/run/k3s/containerd/containerd.sock")
NAMESPACE = "k8s.io"  # the kubelet's (CRI) namespace
LIST_TIMEOUT_S = 30
IMPORT_TIMEOUT_S = 900


@dataclass(frozen=True)
class Containerd:
    """How to reach one containerd with its client."""

    command: tuple[str, ...]  # ("k3s", "ctr") or ("ctr", "--address", socket)
    where: str  # for messages

    def _run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([*self.command, "-n", NAMESPACE, *args], capture_output=True,
                                  text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise _failed(self, f"`{' '.join(self.command)}` could not run ({exc})") from exc


def find_containerd(address: str | None) -> Containerd:
    """The containerd to import into: PALESS_CONTAINERD_ADDRESS (`ctr --address`), else
    `k3s ctr`, else ctr on k3s' socket. BuildError (exit 3) when there is none."""
    ctr = shutil.which("ctr")
    if address:
        if ctr is None:
            raise BuildError(
                f"PALESS_CONTAINERD_ADDRESS is {address}, but `ctr` (containerd's client) is "
                "not on PATH.",
                "Install containerd's client (k3s ships it: /usr/local/bin/ctr; Debian: the "
                "containerd package), or unset PALESS_CONTAINERD_ADDRESS to use `k3s ctr`.",
                code="containerd-unavailable")
        return Containerd((ctr, "--address", address), f"containerd at {address}")
    k3s = shutil.which("k3s")
    if k3s is not None:
        return Containerd((k3s, "ctr"), "k3s' containerd (`k3s ctr`)")
    if ctr is not None and K3S_SOCKET.exists():
        return Containerd((ctr, "--address", str(K3S_SOCKET)), f"containerd at {K3S_SOCKET}")
    raise BuildError(
        "Images are to be imported into k3s' containerd, but neither `k3s` nor `ctr` with "
        f"{K3S_SOCKET} is on this machine.",
        "Run paless-deploy on the k3s node, set PALESS_CONTAINERD_ADDRESS to its containerd "
        "socket (rootless k3s), or deliver through a registry: IMAGE_DELIVERY=registry with "
        "REGISTRY set.", code="containerd-unavailable")


def _failed(containerd: Containerd, detail: str) -> BuildError:
    lowered = detail.lower()
    if "permission denied" in lowered:
        return BuildError(
            f"{containerd.where} refused us: {whole_words(detail.strip(), 300)}.",
            "k3s' containerd socket is root's: run paless-deploy with sudo, or give yourself "
            "access (`sudo setfacl -m u:$USER:rw /run/k3s/containerd/containerd.sock`, again "
            "after each k3s restart), or deliver through a registry (IMAGE_DELIVERY=registry).",
            code="containerd-denied")
    if "no such file" in lowered or "connection refused" in lowered or "dial" in lowered:
        return BuildError(
            f"{containerd.where} does not answer: {whole_words(detail.strip(), 300)}.",
            "Start k3s (`sudo systemctl start k3s`), or point PALESS_CONTAINERD_ADDRESS at "
            "the socket of the containerd its kubelet uses.", code="containerd-unavailable")
    return BuildError(f"{containerd.where} failed: {whole_words(detail.strip(), 400)}.",
                      "Check containerd's log (k3s: `journalctl -u k3s`), then run again.",
                      code="import-failed")


def has_image(containerd: Containerd, ref: str) -> bool:
    """True when the containerd holds an image named `ref` (where the kubelet finds it)."""
    res = containerd._run("images", "ls", "-q", f"name=={ref}", timeout=LIST_TIMEOUT_S)
    if res.returncode != 0:
        raise _failed(containerd, res.stderr or res.stdout)
    return ref in res.stdout.split()


def content_digests(containerd: Containerd) -> frozenset[str]:
    """The digests of every blob the containerd holds (in the kubelet's namespace)."""
    res = containerd._run("content", "ls", "-q", timeout=LIST_TIMEOUT_S)
    if res.returncode != 0:
        raise _failed(containerd, res.stderr or res.stdout)
    return frozenset(line.strip() for line in res.stdout.splitlines()
                     if line.strip().startswith("sha256:"))


def pull_image(containerd: Containerd, source: str, ref: str) -> None:
    """Pull `source` from a plain-HTTP registry on this machine (only the blobs the
    containerd lacks travel, and only new layers are unpacked), name it `ref`, and drop the
    name `source`: the image is then where the kubelet finds `ref`."""
    steps = (("images", "pull", "--plain-http", source),
             ("images", "tag", "--force", source, ref),
             ("images", "rm", source))
    for args in steps:
        res = containerd._run(*args, timeout=IMPORT_TIMEOUT_S)
        if res.returncode != 0:
            raise _failed(containerd, res.stderr or res.stdout or
                          f"`ctr {' '.join(args)}` ended with exit code {res.returncode}")


def import_image(containerd: Containerd, ref: str, archive: Iterable[bytes]) -> None:
    """Import one image from a `docker save` archive streamed in `archive`."""
    command = [*containerd.command, "-n", NAMESPACE, "images", "import", "-"]
    # ctr's output goes to a file: a full pipe must never stall the archive's stream
    with tempfile.TemporaryFile() as output:
        try:
            proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=output,
                                    stderr=subprocess.STDOUT)
        except OSError as exc:
            raise _failed(containerd, f"`{' '.join(containerd.command)}` could not run "
                                      f"({exc})") from exc
        assert proc.stdin is not None
        broken = False
        try:
            for chunk in archive:
                proc.stdin.write(chunk)
            proc.stdin.close()
        except BrokenPipeError:
            broken = True  # ctr gave up: its output says why
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        try:
            proc.wait(timeout=IMPORT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise _failed(containerd, f"importing {ref} took longer than {IMPORT_TIMEOUT_S}s") \
                from None
        if proc.returncode != 0 or broken:
            output.seek(0)
            said = output.read().decode(errors="replace").strip()
            raise _failed(containerd, said or f"importing {ref} ended with exit code "
                                             f"{proc.returncode}")


def this_machine(node_name: str | None = None) -> ThisMachine:
    """This machine's host names (and PALESS_NODE_NAME) and the non-loopback addresses its
    host name resolves to: what a k3s node running here is called and reports."""
    names = {n.lower() for n in (socket.gethostname(), node_name,
                                 os.environ.get("K3S_NODE_NAME")) if n}
    names |= {n.split(".", 1)[0] for n in names}
    addresses: set[str] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM):
            addresses.add(str(info[4][0]))
    except (OSError, UnicodeError):
        pass
    return ThisMachine(frozenset(names), frozenset(addresses))
