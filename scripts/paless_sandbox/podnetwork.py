"""The real node's pod network on the host: the bridge with the node's address, the forward
rules that keep pod traffic on it, and removing all of it again (with what kube-proxy, the
kubelet and the CNI plugins added)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from paless_sandbox.layout import (
    BIN,
    BRIDGE,
    BRIDGE_IP,
    CNI_NETWORK,
    FORWARD_CHAIN,
    POD_CIDR,
    POD_LOGS,
    REALNODE,
)
from paless_sandbox.messages import SandboxError, say

BRIDGE_NF = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
FORWARD_RULES = (
    ("-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"),  # pod to pod, Services included
    ("-i", BRIDGE, "-j", "REJECT"),  # pods reach nothing beyond the bridge and this host
    ("-o", BRIDGE, "-j", "REJECT"),  # nothing from outside reaches the pods
)
# What the kubelet itself adds to iptables and ip6tables (kube-proxy --cleanup leaves them):
# table -> chains
KUBELET_CHAINS = {"filter": ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY"),
                  "nat": ("KUBE-KUBELET-CANARY",),
                  "mangle": ("KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT")}


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", "10", *args], capture_output=True, text=True,
                          check=False)


def ensure_pod_network() -> None:
    """The bridge with the node's address, and the forward rules that keep pod traffic on it."""
    ensure_bridge()
    if BRIDGE_NF.read_text().strip() != "1":
        say("real node: setting net.bridge.bridge-nf-call-iptables=1 (Services between pods "
            "on one bridge need it)")
        BRIDGE_NF.write_text("1\n")
    ensure_forward_rules()


def ensure_bridge() -> None:
    """The bridge, up, with the node's address."""
    if ip("link", "show", BRIDGE).returncode != 0:
        res = ip("link", "add", BRIDGE, "type", "bridge")
        if res.returncode != 0:
            raise SandboxError(f"real node: cannot create the bridge {BRIDGE}: "
                               f"{res.stderr.strip()}")
    if f" {BRIDGE_IP}/" not in ip("-4", "-o", "addr", "show", "dev", BRIDGE).stdout:
        res = ip("addr", "add", f"{BRIDGE_IP}/{POD_CIDR.split('/')[1]}", "dev", BRIDGE)
        if res.returncode != 0:
            raise SandboxError(f"real node: cannot give {BRIDGE} the address {BRIDGE_IP}: "
                               f"{res.stderr.strip()} (`ip addr show` names what holds it)")
    ip("link", "set", BRIDGE, "up")


def ensure_forward_rules() -> None:
    """FORWARD_CHAIN holding exactly FORWARD_RULES, jumped to first from FORWARD."""
    if iptables("-S", FORWARD_CHAIN).returncode != 0:
        iptables("-N", FORWARD_CHAIN)
    if not all(iptables("-C", FORWARD_CHAIN, *rule).returncode == 0 for rule in FORWARD_RULES):
        iptables("-F", FORWARD_CHAIN)
        for rule in FORWARD_RULES:
            res = iptables("-A", FORWARD_CHAIN, *rule)
            if res.returncode != 0:
                raise SandboxError(f"real node: iptables -A {FORWARD_CHAIN} {' '.join(rule)} "
                                   f"failed: {res.stderr.strip()}")
    if iptables("-C", "FORWARD", "-j", FORWARD_CHAIN).returncode != 0:
        iptables("-I", "FORWARD", "1", "-j", FORWARD_CHAIN)


def jumps_to(listing: str, chains: tuple[str, ...]) -> list[list[str]]:
    """The rules of an `iptables -S` listing that jump to one of `chains`, as the words
    `-D` takes (without the leading -A), quoted words (a comment with spaces, as
    kube-router writes them) unquoted: split on spaces, `-D` would match nothing."""
    jumps = []
    for rule in listing.splitlines():
        words = shlex.split(rule)
        if words[:1] == ["-A"] and words[-2:-1] == ["-j"] and words[-1] in chains:
            jumps.append(words[1:])
    return jumps


def remove_chains(binary: str, table: str, chains: tuple[str, ...]) -> None:
    """Delete `chains` of one table and every rule that jumps to them."""
    listed = subprocess.run([binary, "-w", "10", "-t", table, "-S"], capture_output=True,
                            text=True, check=False).stdout
    for rule in jumps_to(listed, chains):
        subprocess.run([binary, "-w", "10", "-t", table, "-D", *rule], capture_output=True,
                       check=False)
    for chain in chains:
        for flag in ("-F", "-X"):
            subprocess.run([binary, "-w", "10", "-t", table, flag, chain], capture_output=True,
                           check=False)


def remove_pod_network() -> None:
    """What ensure_pod_network, kube-proxy, the kubelet and the CNI plugins added to the host."""
    if os.access(BIN / "kube-proxy", os.X_OK):
        subprocess.run([str(BIN / "kube-proxy"), "--cleanup",
                        f"--config={REALNODE / 'kube-proxy.json'}"],
                       capture_output=True, timeout=60, check=False)
    for binary in ("iptables", "ip6tables"):
        for table, chains in KUBELET_CHAINS.items():
            remove_chains(binary, table, chains)
    remove_chains("iptables", "filter", (FORWARD_CHAIN,))
    if ip("link", "show", BRIDGE).returncode == 0:
        ip("link", "del", BRIDGE)
    for cached in Path("/var/lib/cni/results").glob(f"{CNI_NETWORK}-*"):
        cached.unlink(missing_ok=True)
    shutil.rmtree(REALNODE / "cni" / "ipam", ignore_errors=True)
    for link in Path("/var/log/containers").glob("*.log"):
        if link.is_symlink() and os.readlink(link).startswith(str(POD_LOGS)):
            link.unlink(missing_ok=True)
