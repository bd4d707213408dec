"""What the sandbox needs before anything runs: Debian packages, and the control plane's and
the real node's binaries built from Go modules into a version-keyed cache."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time

from paless_sandbox.layout import (
    BIN,
    CACHE,
    CNI_BIN,
    ETCD_VERSION,
    K8S_VERSION,
    KWOK_VERSION,
    LOGS,
    SUPPORT,
)
from paless_sandbox.messages import SandboxError, say, tail

OWN_BINARIES = ("etcd", "local-path-provisioner", "pause", "realnode-sweep")  # sandbox.d/cmd/*
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl",
            "kwok", "local-path-provisioner", "kubelet", "kube-proxy", "pause", "realnode-sweep")
BUILD_DISK_GB = 6  # module downloads (~1 GB), Go build cache (~3 GB), binaries (~0.5 GB)
# command (or file) -> the Debian package that provides it
APT_PACKAGES = {"dockerd": "docker.io", "docker-registry": "docker-registry",
                "busybox": "busybox-static", "openssl": "openssl",
                "containerd": "containerd", "runc": "runc", "iptables": "iptables",
                "ipset": "ipset",  # the real node's NetworkPolicy controller (netpol)
                "debootstrap": "debootstrap",  # the real stack's Debian bases (realstack)
                str(CNI_BIN / "bridge"): "containernetworking-plugins"}


def missing_packages() -> list[str]:
    """The Debian packages whose command is not on PATH."""
    return [pkg for cmd, pkg in APT_PACKAGES.items() if shutil.which(cmd) is None]


def ensure_packages() -> None:
    """apt-get install what is missing (logged to logs/apt.log)."""
    missing = missing_packages()
    if not missing:
        return
    say(f"installing Debian packages: {' '.join(missing)}")
    log = LOGS / "apt.log"
    LOGS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open(log, "ab") as out:
        for argv in (["apt-get", "update"],
                     ["apt-get", "install", "-y", "--no-install-recommends", *missing]):
            if subprocess.call(argv, stdout=out, stderr=subprocess.STDOUT, env=env) != 0:
                raise SandboxError(f"package install failed: {' '.join(argv)}; see {log}:\n"
                                   + tail(log))


def provisioner_hash() -> str:
    """A digest of our own Go sources (sandbox.d/cmd): what the built binaries came from."""
    h = hashlib.sha256()
    for p in sorted((SUPPORT / "cmd").rglob("*.go")):
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def missing_binaries() -> list[str]:
    """The binaries to build: absent ones, and our own when their sources changed."""
    stamp = BIN / ".sources"
    if stamp.exists() and stamp.read_text() != provisioner_hash():
        # our own Go sources changed: rebuild those binaries (a link from the Go build
        # cache when only another one changed), keep Kubernetes'
        for name in OWN_BINARIES:
            (BIN / name).unlink(missing_ok=True)
    return [b for b in BINARIES if not os.access(BIN / b, os.X_OK)]


def ensure_binaries() -> None:
    """Build what `missing_binaries` names (sandbox.d/build-binaries.sh), after checking that
    Go and the disk space are there."""
    missing = missing_binaries()
    if not missing:
        return
    if shutil.which("go") is None:
        raise SandboxError("building the control plane needs Go (https://go.dev/dl): "
                           "`go` is not on PATH")
    CACHE.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(CACHE).free / 2**30
    if free_gb < BUILD_DISK_GB:
        raise SandboxError(f"building {', '.join(missing)} needs about {BUILD_DISK_GB} GB free "
                           f"under {CACHE} (module downloads and Go build cache); only "
                           f"{free_gb:.1f} GB is free")
    log = LOGS / "build.log"
    LOGS.mkdir(parents=True, exist_ok=True)
    say(f"building {', '.join(missing)} from Go modules into {BIN} "
        f"(cold: 10-25 minutes on 2 cores); log {log}")
    started = time.monotonic()
    with open(log, "ab") as out:
        rc = subprocess.call(["bash", str(SUPPORT / "build-binaries.sh"), str(BIN.parent),
                              K8S_VERSION, ETCD_VERSION, KWOK_VERSION, str(SUPPORT)],
                             stdout=out, stderr=subprocess.STDOUT)
    if rc != 0:
        raise SandboxError(f"Go build of the control plane failed (exit {rc}); see {log}:\n"
                           + tail(log))
    (BIN / ".sources").write_text(provisioner_hash())
    say(f"binaries built in {time.monotonic() - started:.0f}s")
