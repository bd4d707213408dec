"""The real node's NetworkPolicy controller: kube-router's firewall alone (no routing, no
service proxy: the sandbox's kube-proxy keeps Services), the controller k3s embeds, built
from its Go module into a cache of its own. A guard keeps pod traffic on the bridge (what
kube-router allows it accepts outright, before the sandbox's own forward rules), and
`down` removes its chains and ipsets. Never fails `up`: without it policies are not
enforced, and `status`, `paless-deploy doctor` and the isolation tests say so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from paless_sandbox.components import Component, start, stop_component
from paless_sandbox.controlplane import kubectl
from paless_sandbox.credentials import ensure_certificate, write_kubeconfig
from paless_sandbox.layout import (
    BRIDGE,
    CACHE,
    COMPONENT_KUBECONFIGS,
    LOGS,
    REAL_NODE,
    REALNODE,
    SERVICE_CIDR,
)
from paless_sandbox.messages import SandboxError, say, tail
from paless_sandbox.podnetwork import remove_chains

KUBE_ROUTER_VERSION = "v2.1.0"  # the newest the Go module proxy serves of the v2 module
KUBE_ROUTER_PACKAGE = "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
KUBE_ROUTER_BIN = CACHE / f"kube-router-{KUBE_ROUTER_VERSION}" / "bin" / "kube-router"
# on every address (no flag narrows it); 10260-10265 are the node's, 10266-10268 CoreDNS's
KUBE_ROUTER_HEALTH_PORT = 10269
KUBE_ROUTER_USER = "system:kube-router"
KUBE_ROUTER_KUBECONFIG = COMPONENT_KUBECONFIGS / "kube-router"
NODE_PORT_RANGE = "30000-32767"  # the API server's
UNAVAILABLE = REALNODE / "netpol-unavailable.json"  # why policies are not enforced
# How the node tells `paless-deploy doctor` that a controller it cannot see as pods (a host
# process, as k3s's embedded one is) enforces policies there; removed when it stops.
DECLARATION = "paless.io/network-policy-controller"

# kube-router's own names (pkg/controllers/netpol): what `down` removes
TOP_CHAINS = ("KUBE-ROUTER-INPUT", "KUBE-ROUTER-FORWARD", "KUBE-ROUTER-OUTPUT")
CHAIN_PREFIXES = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-")
IPSET_PREFIXES = ("KUBE-SRC-", "KUBE-DST-")

# kube-router jumps to its chain first in FORWARD and ACCEPTs every packet its policies
# allow, before the sandbox's own FORWARD_CHAIN is reached: pods could then reach past the
# bridge. The mangle table sees every forwarded packet before the filter table, and a DROP
# there is final, so this guard keeps FORWARD_CHAIN's rule: pods reach each other, Services
# and this host, nothing else; nothing reaches them from elsewhere but replies and
# kube-proxy's masqueraded Service traffic (mark 0x4000), as kube-proxy's forward rules let in.
GUARD_CHAIN = "PALESS-SANDBOX-GUARD"
GUARD_RULES: tuple[tuple[str, ...], ...] = (
    ("-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"),
    ("-i", BRIDGE, "-o", BRIDGE, "-j", "RETURN"),
    ("-o", BRIDGE, "-m", "mark", "--mark", "0x4000/0x4000", "-j", "RETURN"),
    ("-i", BRIDGE, "-j", "DROP"),
    ("-o", BRIDGE, "-j", "DROP"),
)

# What the firewall reads (kube-router's own ClusterRole, less routing and load balancing)
RBAC = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
     "metadata": {"name": "paless-sandbox:kube-router"},
     "rules": [
         {"apiGroups": [""], "resources": ["namespaces", "pods", "services", "nodes",
                                           "endpoints"],
          "verbs": ["get", "list", "watch"]},
         {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
          "verbs": ["get", "list", "watch"]},
         {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
          "verbs": ["get", "list", "watch"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
     "metadata": {"name": "paless-sandbox:kube-router"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                 "name": "paless-sandbox:kube-router"},
     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                   "name": KUBE_ROUTER_USER}]},
]


def kube_router_component() -> Component:
    """kube-router with its firewall only, beside the node's kube-proxy."""
    return Component("kube-router", [
        str(KUBE_ROUTER_BIN), "--run-firewall=true", "--run-router=false",
        "--run-service-proxy=false", "--enable-cni=false",
        f"--kubeconfig={KUBE_ROUTER_KUBECONFIG}", f"--hostname-override={REAL_NODE}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--service-node-port-range={NODE_PORT_RANGE}",
        f"--health-port={KUBE_ROUTER_HEALTH_PORT}", "--metrics-port=0",
    ], f"http://127.0.0.1:{KUBE_ROUTER_HEALTH_PORT}/healthz",
        ports=(KUBE_ROUTER_HEALTH_PORT,), marker=str(KUBE_ROUTER_BIN))


def components() -> list[Component]:
    """The policy controller, for `status` beside the real node's components."""
    return [kube_router_component()]


def build_command(gobin: Path) -> list[str]:
    """`go install` of the pinned kube-router into `gobin`, static, version stamped."""
    version = "github.com/cloudnativelabs/kube-router/v2/pkg/version"
    ldflags = (f"-s -w -X {version}.Version={KUBE_ROUTER_VERSION} "
               f"-X {version}.BuildDate=paless-sandbox")
    return ["go", "install", "-trimpath", f"-ldflags={ldflags}",
            f"{KUBE_ROUTER_PACKAGE}@{KUBE_ROUTER_VERSION}"]


def ensure_kube_router_binary() -> None:
    """Build kube-router unless cached (its own module: its dependencies are not the
    control plane's)."""
    if os.access(KUBE_ROUTER_BIN, os.X_OK):
        return
    if shutil.which("go") is None:
        raise SandboxError("building kube-router needs Go (https://go.dev/dl): `go` is not on "
                           "PATH")
    log = LOGS / "build-kube-router.log"
    LOGS.mkdir(parents=True, exist_ok=True)
    gobin = KUBE_ROUTER_BIN.parent.with_name("bin.tmp")
    shutil.rmtree(gobin, ignore_errors=True)
    gobin.mkdir(parents=True)
    say(f"building kube-router {KUBE_ROUTER_VERSION} from its Go module (cold: a few minutes "
        f"on 2 cores); log {log}")
    env = {**os.environ, "GOBIN": str(gobin), "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false",
           "GOTOOLCHAIN": "local"}
    started = time.monotonic()
    with open(log, "ab") as out:
        rc = subprocess.call(build_command(gobin), stdout=out, stderr=subprocess.STDOUT,
                             env=env, cwd=str(gobin))
    if rc != 0:
        raise SandboxError(f"Go build of kube-router failed (exit {rc}); see {log}:\n" + tail(log))
    shutil.rmtree(KUBE_ROUTER_BIN.parent, ignore_errors=True)
    gobin.rename(KUBE_ROUTER_BIN.parent)
    say(f"kube-router built in {time.monotonic() - started:.0f}s")


def iptables(*args: str, table: str = "filter") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", "10", "-t", table, *args], capture_output=True,
                          text=True, check=False)


def ensure_guard() -> None:
    """GUARD_CHAIN in mangle holding exactly GUARD_RULES, jumped to first from FORWARD."""
    if iptables("-S", GUARD_CHAIN, table="mangle").returncode != 0:
        iptables("-N", GUARD_CHAIN, table="mangle")
    listed = iptables("-S", GUARD_CHAIN, table="mangle").stdout.splitlines()[1:]
    if len(listed) != len(GUARD_RULES) or not all(
            iptables("-C", GUARD_CHAIN, *rule, table="mangle").returncode == 0
            for rule in GUARD_RULES):
        iptables("-F", GUARD_CHAIN, table="mangle")
        for rule in GUARD_RULES:
            res = iptables("-A", GUARD_CHAIN, *rule, table="mangle")
            if res.returncode != 0:
                raise SandboxError(f"network policies: iptables -t mangle -A {GUARD_CHAIN} "
                                   f"{' '.join(rule)} failed: {res.stderr.strip()}")
    if iptables("-C", "FORWARD", "-j", GUARD_CHAIN, table="mangle").returncode != 0:
        iptables("-I", "FORWARD", "1", "-j", GUARD_CHAIN, table="mangle")


def ensure_identity() -> None:
    """kube-router's client certificate, kubeconfig and the ClusterRole it reads with."""
    ensure_certificate("kube-router-client", f"/CN={KUBE_ROUTER_USER}",
                       "extendedKeyUsage=clientAuth")
    KUBE_ROUTER_KUBECONFIG.parent.mkdir(parents=True, exist_ok=True)
    write_kubeconfig(KUBE_ROUTER_KUBECONFIG, KUBE_ROUTER_USER, None, "kube-router-client")
    kubectl("apply", "--server-side", "--field-manager=paless-sandbox", "--force-conflicts",
            "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": RBAC}))


def start_policy_controller() -> None:
    """kube-router's firewall for the real node, once the node is Ready. Never fails `up`:
    without it the cluster does not enforce NetworkPolicies, and says so."""
    if os.environ.get("PALESS_SANDBOX_NETPOL", "1") == "0":
        stop_policy_controller()
        record_unavailable("turned off (PALESS_SANDBOX_NETPOL=0)")
        say("network policies: not enforced (PALESS_SANDBOX_NETPOL=0)")
        return
    try:
        ensure_kube_router_binary()
        if shutil.which("ipset") is None:
            raise SandboxError("kube-router needs the ipset command: `apt-get install ipset`")
        ensure_guard()
        ensure_identity()
        start(kube_router_component())
    except SandboxError as exc:
        stop_policy_controller()  # one that started but never became healthy
        record_unavailable(str(exc))
        say(f"network policies: NOT ENFORCED: {exc}")
        return
    UNAVAILABLE.unlink(missing_ok=True)
    kubectl("annotate", "node", REAL_NODE, "--overwrite",
            f"{DECLARATION}=kube-router {KUBE_ROUTER_VERSION} (firewall only, a host process "
            "of the sandbox)", check=False)
    say(f"network policies: enforced on {REAL_NODE} by kube-router {KUBE_ROUTER_VERSION} "
        "(firewall only)")


def record_unavailable(why: str) -> None:
    """Why policies are not enforced (read by `status` and the isolation tests)."""
    REALNODE.mkdir(parents=True, exist_ok=True)
    UNAVAILABLE.write_text(json.dumps({"why": why}) + "\n")


def read_unavailable() -> str | None:
    """Why policies are not enforced, as recorded (None: nothing recorded)."""
    try:
        why = json.loads(UNAVAILABLE.read_text()).get("why")
    except (OSError, ValueError, AttributeError):
        return None
    return str(why) if why else None


def policy_line(why_not: str | None) -> str:
    """`status`'s line on the real node's network policies."""
    if why_not:
        return f"  network policies: NOT enforced: {why_not}"
    return (f"  network policies: enforced by kube-router {KUBE_ROUTER_VERSION} (firewall "
            f"only), log {LOGS / 'kube-router.log'}")


def stop_policy_controller() -> None:
    """Stop kube-router (before the node's pods go: it would rewrite rules for each) and
    withdraw the node's declaration."""
    stop_component(kube_router_component())
    kubectl("annotate", "node", REAL_NODE, f"{DECLARATION}-", check=False)


def chains_to_remove(listing: str) -> list[str]:
    """kube-router's chains in an `iptables -S` listing of the filter table."""
    return [words[1] for words in (line.split() for line in listing.splitlines())
            if words[:1] == ["-N"] and words[1].startswith(CHAIN_PREFIXES)]


def ipsets_to_remove(names: str) -> list[str]:
    """kube-router's ipsets in `ipset list -n` output."""
    return [n for n in names.split() if n.removeprefix("inet6:").startswith(IPSET_PREFIXES)]


def remove_policy_rules() -> None:
    """kube-router's chains (and the jumps to them), its ipsets, and the guard."""
    remove_chains("iptables", "filter", TOP_CHAINS)
    remove_chains("iptables", "filter", tuple(chains_to_remove(iptables("-S").stdout)))
    if shutil.which("ipset"):
        names = subprocess.run(["ipset", "list", "-n"], capture_output=True, text=True,
                               check=False).stdout
        for name in ipsets_to_remove(names):
            subprocess.run(["ipset", "destroy", name], capture_output=True, check=False)
    remove_chains("iptables", "mangle", (GUARD_CHAIN,))
