"""Docker on the host: the engine (Debian's dockerd, started when none answers), the
registry on 127.0.0.1:5000, the FROM-scratch base image stand-in, and docker buildx with a
current Dockerfile frontend."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from paless_sandbox.components import Component
from paless_sandbox.layout import (
    BUILDKIT_VERSION,
    BUILDX_CACHE,
    BUILDX_VERSION,
    LOGS,
    PIDS,
    REGISTRY_ADDR,
    REPO,
    STATE,
    SUPPORT,
)
from paless_sandbox.messages import SandboxError, say, tail
from paless_sandbox.processes import pid_alive, read_pid, stop_pid

# the project's variable table, where BASE_IMAGE's default is (checked by a unit test)
VARIABLES = REPO / "paless_deploy" / "core" / "configuration" / "variables.py"
DOCKERD_PID = PIDS / "dockerd.pid"  # only a dockerd the sandbox started itself
DOCKERD_CONTAINERD_PID = Path("/var/run/docker/containerd/containerd.pid")
# what a killed dockerd leaves, and the next one refuses to start on
DOCKERD_LEFTOVERS = ("/var/run/docker.pid", "/var/run/docker.sock", str(DOCKERD_CONTAINERD_PID))
BUSYBOX_APPLETS = ("sh", "ls", "cat", "echo", "sleep", "true", "env", "mkdir", "ps")
BASE_IMAGE_DOCKERFILE = ("FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\n"
                         'LABEL io.paless.sandbox="base-image stand-in"\nCMD ["/bin/sh"]\n')


def docker_answers() -> bool:
    """Whether a Docker engine answers `docker info`."""
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def ensure_docker() -> None:
    """A Docker engine that answers: the one there is, or a dockerd started here."""
    if docker_answers():
        say("docker: engine answers")
        return
    pid = read_pid(DOCKERD_PID)
    if pid:
        stop_pid(pid, "dockerd")
    # a killed dockerd leaves its pid file and socket behind and refuses to start, and its
    # containerd, still exiting, makes the next dockerd wait for it and give up
    containerd = read_pid(DOCKERD_CONTAINERD_PID)
    if containerd:
        stop_pid(containerd, "dockerd's containerd", grace=3)
    for stale in DOCKERD_LEFTOVERS:
        Path(stale).unlink(missing_ok=True)
    log = LOGS / "dockerd.log"
    say(f"docker: starting dockerd, log {log}")
    with open(log, "ab") as out:
        proc = subprocess.Popen(["dockerd", "--host=unix:///var/run/docker.sock"], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    DOCKERD_PID.write_text(str(proc.pid))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SandboxError(f"dockerd exited with code {proc.returncode}; see {log}:\n"
                               + tail(log))
        if docker_answers():
            say("docker: engine answers")
            return
        time.sleep(0.3)
    raise SandboxError(f"dockerd did not answer within 60s; see {log}:\n" + tail(log))


def kill_dockerd(pid: int, grace: float) -> None:
    """Signal dockerd alone, SIGTERM then SIGKILL, `grace` seconds each: signalled with its
    group, its containerd goes first and dockerd hangs. ensure_docker clears what it leaves."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def registry_config() -> str:
    """docker-registry's configuration: storage under the state directory, deletes on."""
    return ("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {STATE / 'registry'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {REGISTRY_ADDR}\n")


def registry_component() -> Component:
    """The registry on REGISTRY_ADDR (one already serving there is used); writes its config."""
    config = STATE / "registry.yml"
    config.write_text(registry_config())
    return Component("registry", ["docker-registry", "serve", str(config)],
                     f"http://{REGISTRY_ADDR}/v2/", external_ok=True)


def manifest_url(image: str) -> str:
    """The registry API URL of an image's manifest (`host/repo:tag`)."""
    host, _, rest = image.partition("/")
    repo, _, tag = rest.rpartition(":")
    return f"http://{host}/v2/{repo}/manifests/{tag}"


def registry_has(image: str) -> bool:
    """Whether the registry holds `image` (a HEAD of its manifest)."""
    req = urllib.request.Request(manifest_url(image), method="HEAD", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                  "application/vnd.oci.image.manifest.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=5):
            return True
    except (urllib.error.URLError, OSError):
        return False


def default_base_image() -> str:
    """BASE_IMAGE's default from the project's variable table, read without installing the
    project (the sandbox runs before it is installed)."""
    spec = importlib.util.spec_from_file_location("paless_variables", VARIABLES)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["paless_variables"] = mod
    spec.loader.exec_module(mod)
    return str(mod.BY_NAME["BASE_IMAGE"].default)


def ensure_base_image() -> None:
    """A FROM-scratch busybox image under the name the Paless Dockerfiles start from."""
    name = default_base_image()
    inspect = ["docker", "image", "inspect", name]
    if subprocess.run(inspect, capture_output=True, check=False).returncode == 0:
        say(f"base image stand-in {name}: present")
        return
    busybox = shutil.which("busybox")
    if busybox is None:
        raise SandboxError("busybox is not on PATH: `apt-get install busybox-static` "
                           "(`up` installs it when missing)")
    with tempfile.TemporaryDirectory() as ctx:
        root = Path(ctx) / "rootfs"
        (root / "bin").mkdir(parents=True)
        shutil.copy2(busybox, root / "bin" / "busybox")
        for applet in BUSYBOX_APPLETS:
            (root / "bin" / applet).symlink_to("busybox")
        (Path(ctx) / "Dockerfile").write_text(BASE_IMAGE_DOCKERFILE)
        res = subprocess.run(["docker", "build", "-q", "-t", name, ctx], capture_output=True,
                             text=True, check=False)
    if res.returncode != 0:
        raise SandboxError(f"building the base image stand-in {name} failed: "
                           f"{res.stderr.strip()}")
    say(f"base image stand-in {name}: built")


def ensure_buildkit() -> None:
    """`docker buildx` and a current Dockerfile frontend image (sandbox.d/build-buildx.sh)."""
    log = LOGS / "build-buildx.log"
    started = time.monotonic()
    if not all(os.access(BUILDX_CACHE / "bin" / b, os.X_OK)
               for b in ("docker-buildx", "dockerfile-frontend")):
        say(f"buildkit: building docker-buildx {BUILDX_VERSION} and the Dockerfile frontend "
            f"from Go modules into {BUILDX_CACHE} (cold: about 8 minutes on 2 cores); log {log}")
    with open(log, "ab") as out:
        rc = subprocess.call(["bash", str(SUPPORT / "build-buildx.sh"), str(BUILDX_CACHE),
                              BUILDX_VERSION, BUILDKIT_VERSION, REGISTRY_ADDR],
                             stdout=out, stderr=subprocess.STDOUT)
    if rc != 0:
        raise SandboxError(f"building buildx / the Dockerfile frontend failed (exit {rc}); "
                           f"see {log}:\n" + tail(log))
    say(f"buildkit: docker buildx {BUILDX_VERSION}, frontend "
        f"{REGISTRY_ADDR}/paless-sandbox/dockerfile:1 ({time.monotonic() - started:.1f}s)")
