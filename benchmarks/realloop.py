"""The inner loop on a real-size image, on the sandbox's real node (`--real-size`).

A tree laid out as Paless's repository: the root Dockerfile builds the base FROM the 1.3 GB
Paless stand-in (15 layers; `real-stack`'s image, else one of our own of the same shape)
and copies `src/`; Dockerfile.web starts FROM that base. Web serves what `src/app.py` held
when it loaded and reloads on SIGHUP (as Granian's workers do), so `dev` syncs into it.
The edit is one line of `src/app.py`; each way is timed from writing it:

- `dev` (registry): to the running pod answering the new code (the sync), and to
  Deployment/web Ready on its rebuilt image (the base and web rebuilt, pushed, rolled out);
- `dev` with IMAGE_DELIVERY=k3s-import into the real node's containerd: to Ready, and the
  import of web's one-layer change alone (what dev says it took);
- `paless-deploy web` run after the edit (registry): to Ready;
- the old script's way, in namespaces of its own: the base rebuilt as :latest by hand, the
  old script (web rebuilt FROM it, pushed as :latest), `kubectl rollout restart`, to Ready;
  and on k3s without a registry: both rebuilt, `docker save | ctr images import` of web,
  `kubectl rollout restart`, to Ready (its import alone is timed too).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    OLD_SCRIPT,
    BenchError,
    Tools,
    render_objects,
    say,
    write_manifests,
)
from benchmarks.innerloop import ready_after
from benchmarks.report import Row, compare

STAND_IN = "127.0.0.1:5000/ghcr.io/paperless-ngx/paperless-ngx:2.18.4"  # real-stack's
OWN_BIG = "localhost:5000/paless-bench-big:15-layers"  # ours, when the stand-in is missing
SMALL_BASE = "ghcr.io/paperless-ngx/paperless-ngx:2.18.4"  # the sandbox's busybox stand-in
BIG_BYTES = 1_000_000_000  # "real size": at least this
PROJECT = "paless-big"
REGISTRY = "127.0.0.1:5000"  # where the stand-in's layers are already
SRC = "/usr/src/paperless/src"
REAL_KEY = "sandbox.paless.io/real"
CONTAINERD = Path.home() / ".local/state/paless-sandbox/realnode/containerd/containerd.sock"
SYNC_TARGET_S, REBUILD_TARGET_S, IMPORT_TARGET_S = 1.5, 10.0, 3.0
TIMEOUT_S = 600.0
SERVE = f"""#!/bin/sh
export PATH=/opt/bench/bin:$PATH
load() {{ mkdir -p /tmp/www && cat {SRC}/app.py > /tmp/www/index.html; }}
load
trap load HUP
httpd -f -p 8080 -h /tmp/www &
while :; do sleep 1 & wait $!; done
"""


def big_image(tools: Tools) -> tuple[str, int, int]:
    """(reference, bytes, layers) of the real-size base: the stand-in, else ours."""
    for ref in (STAND_IN, OWN_BIG):
        found = _inspect(ref)
        if found and found[0] >= BIG_BYTES:
            return ref, *found
    say(f"real size: no {STAND_IN}; building {OWN_BIG} (14 layers of 90 MB of random data)")
    steps = "".join(f"RUN dd if=/dev/urandom of=/opt/filler/{i:02d} bs=1M count=90\n"
                    for i in range(14))
    dockerfile = f"FROM {SMALL_BASE}\nRUN mkdir -p /opt/filler\n{steps}"
    _build_stdin(dockerfile, OWN_BIG)
    found = _inspect(OWN_BIG)
    assert found is not None
    return OWN_BIG, *found


def _build_stdin(dockerfile: str, tag: str) -> None:
    done = subprocess.run(["docker", "build", "-q", "-t", tag, "-"], input=dockerfile,
                          text=True, capture_output=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise BenchError(f"building {tag} failed: {done.stderr[-1000:]}")


def _inspect(ref: str) -> tuple[int, int] | None:
    done = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        return None
    image = json.loads(done.stdout)[0]
    return int(image["Size"]), len(image["RootFS"]["Layers"])


def write_tree(root: Path, base: str, image_pull: str | None = None) -> Path:
    """Paless's layout on the real-size base; web on the real node, reloading on SIGHUP."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise BenchError("no busybox on PATH: `scripts/sandbox up` installs busybox-static")
    (root / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy2(busybox, root / "rootfs" / "bin" / "busybox")
    for applet in ("sh", "httpd", "cat", "sleep", "mkdir", "kill", "tar", "rm", "wget"):
        (root / "rootfs" / "bin" / applet).symlink_to("busybox")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("VERSION = 0\n")
    (root / "src" / "serve.sh").write_text(SERVE)
    (root / "Dockerfile").write_text(
        f"FROM {base}\nCOPY rootfs/ /opt/bench/\nCOPY src/ {SRC}/\n")
    (root / "Dockerfile.web").write_text(
        f"FROM {REGISTRY}/{PROJECT}:latest\nENTRYPOINT []\n"
        f'CMD ["/opt/bench/bin/sh", "{SRC}/serve.sh"]\n')
    (root / ".dockerignore").write_text("k8s\n*.env\nDockerfile.*\n")
    container: dict[str, Any] = {
        "name": "web", "image": "web", "ports": [{"containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}
    if image_pull:
        container["imagePullPolicy"] = image_pull
    web = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "labels": {"app.kubernetes.io/component": "web"}},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"},
                                              "annotations": {"paless.io/reload": "signal:HUP",
                                                              "paless.io/settle": "1s"}},
                                 "spec": {"nodeSelector": {REAL_KEY: "true"},
                                          "tolerations": [{"key": REAL_KEY, "operator": "Equal",
                                                           "value": "true",
                                                           "effect": "NoSchedule"}],
                                          "terminationGracePeriodSeconds": 1,
                                          "containers": [container]}}}}
    overlay = root / "k8s" / "overlays" / "dev"
    overlay.mkdir(parents=True)
    (overlay / "web.yaml").write_text(json.dumps(web))
    (overlay / "kustomization.yaml").write_text("resources: [web.yaml]\n")
    return root


class RealSizeLoop:
    """The measurements of `--real-size`, each way in namespaces of its own."""

    def __init__(self, tools: Tools, workdir: Path, bench_id: str, runs: int) -> None:
        self.env = {**tools.env, "PROJECT_NAME": PROJECT, "REGISTRY": REGISTRY}
        self.tools = dataclasses.replace(tools, env=self.env)
        self.workdir, self.runs = workdir, runs
        self.namespaces = {way: f"bench-{bench_id}-big-{way}"
                           for way in ("dev", "import", "old", "oldimport")}
        self.samples: dict[str, list[float | None]] = {
            k: [] for k in ("sync", "dev_registry", "dev_import", "import", "deploy_web",
                            "old_script", "old_import_way", "old_import")}
        self.base = ("", 0, 0)
        self.version = 0
        self.trees: dict[str, Path] = {}  # way -> its copy of the tree
        self.created: list[str] = []

    # -- the clock -----------------------------------------------------------------------------

    def edit(self, way: str) -> str:
        """One line of src/app.py: a value never written before."""
        self.version += 1
        text = f"VERSION = {self.version}\n"
        (self.trees[way] / "src" / "app.py").write_text(text)
        return text

    def answered_after(self, namespace: str, write: Any) -> float:
        """Seconds from `write()` (returning the new text) to web's pod answering it."""
        ip = _pod_ip(self.tools, namespace)
        started = time.monotonic()
        wanted = write()
        while time.monotonic() - started < TIMEOUT_S:
            try:
                with urllib.request.urlopen(f"http://{ip}:8080/", timeout=2) as response:
                    if response.read().decode() == wanted:
                        return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.02)
        raise BenchError(f"web in {namespace} did not answer {wanted!r} in {TIMEOUT_S:.0f}s")

    # -- the ways ------------------------------------------------------------------------------

    def prepare(self) -> None:
        self.base = big_image(self.tools)
        say(f"real size: base {self.base[0]}, {self.base[1] / 1e9:.2f} GB in {self.base[2]} "
            "layers")
        for way in self.namespaces:
            pull = "IfNotPresent" if way == "oldimport" else None
            self.trees[way] = write_tree(self.workdir / f"big-{way}", self.base[0], pull)

    def measure(self) -> None:
        self.prepare()
        self._dev("dev", {}, "dev_registry")
        self._dev("import", {"IMAGE_DELIVERY": "k3s-import",
                             "PALESS_CONTAINERD_ADDRESS": str(CONTAINERD)}, "dev_import")
        say(f"real size: `paless-deploy web` after each edit, {self.runs} time(s)")
        for _ in range(self.runs):
            self.samples["deploy_web"].append(ready_after(
                self.tools, self.namespaces["dev"], self._deploy_web, timeout_s=TIMEOUT_S))
        self._old()

    def _pd(self, way: str, *args: str) -> list[str]:
        return self.tools.pd(self.namespaces[way], *args, project=self.trees[way])

    def _dev(self, way: str, extra: dict[str, str], sample: str) -> None:
        namespace = self.namespaces[way]
        say(f"real size: `dev` ({sample}) in {namespace}: first deploy")
        self.created.append(namespace)
        dev = DevProcess(self._pd(way, "--output", "json", "dev", "--no-logs"),
                         {**self.env, **extra})
        try:
            dev.wait("ready", TIMEOUT_S * 2)
            for i in range(self.runs):
                mark = dev.mark()
                took = ready_after(self.tools, namespace, lambda: self._sync(way, sample),
                                   timeout_s=TIMEOUT_S)
                self.samples[sample].append(took)
                dev.wait("ready", TIMEOUT_S, after=mark)
                imported = dev.import_seconds("web", mark)
                if way == "import":
                    self.samples["import"].append(imported)
                say(f"  edit {i + 1}: " + (f"sync {self.samples['sync'][-1]:.2f}s, "
                                           if way == "dev" else "")
                    + f"Ready {took:.2f}s" + (f", import of web {imported}s" if imported
                                               else ""))
        finally:
            dev.stop()

    def _sync(self, way: str, sample: str) -> None:
        if way == "dev":  # the edit, timed to the pod answering it
            self.samples["sync"].append(self.answered_after(
                self.namespaces[way], lambda: self.edit(way)))
        else:
            self.edit(way)

    def _deploy_web(self) -> None:
        self.edit("dev")
        self.tools.check(self._pd("dev", "web"), "paless-deploy web", env=self.env,
                         timeout=TIMEOUT_S)

    def _old(self) -> None:
        """The old script's way (registry), and by hand on k3s without one (save | import)."""
        for way in ("old", "oldimport"):
            namespace = self.namespaces[way]
            self.created.append(namespace)
            say(f"real size: the old way in {namespace}: first deploy")
            self._latest_manifests(way)
            self.tools.check(self.tools.kubectl("create", "namespace", namespace),
                             "kubectl create namespace")
            self._old_build(way, timed=False)
            self.tools.check(self.tools.kubectl("apply", "-n", namespace, "-f",
                                                str(self._manifests(way))), "kubectl apply")
            self.tools.check(self.tools.kubectl("rollout", "status", "-n", namespace,
                                                "deployment/web", "--timeout=600s"),
                             "kubectl rollout status", timeout=TIMEOUT_S + 60)
        say(f"real size: the old script + rollout restart, {self.runs} time(s)")
        for _ in range(self.runs):
            self.samples["old_script"].append(ready_after(
                self.tools, self.namespaces["old"], lambda: self._old_way("old"),
                timeout_s=TIMEOUT_S))
        say(f"real size: by hand on k3s (save | import, rollout restart), {self.runs} time(s)")
        for _ in range(self.runs):
            self.samples["old_import_way"].append(ready_after(
                self.tools, self.namespaces["oldimport"], lambda: self._old_way("oldimport"),
                timeout_s=TIMEOUT_S * 2))

    def _manifests(self, way: str) -> Path:
        return self.workdir / f"big-{way}.yaml"

    def _latest_manifests(self, way: str) -> None:
        """What the old way applies: the rendered objects, web's image as :latest."""
        objects = render_objects(self.tools, self.namespaces[way], self.trees[way])
        text = re.sub(rf"{re.escape(REGISTRY)}/{PROJECT}-web:\w+",
                      f"{REGISTRY}/{PROJECT}-web:latest", json.dumps(objects))
        write_manifests(json.loads(text), self._manifests(way))

    def _old_build(self, way: str, timed: bool = True) -> None:
        tree = self.trees[way]
        self.tools.check(["docker", "build", "-q", "-t", f"{REGISTRY}/{PROJECT}:latest", "."],
                         "the base by hand", cwd=tree, timeout=TIMEOUT_S)
        if way == "old":  # builds web FROM it, pushes :latest, applies, waits on app=web
            self.tools.check(["bash", str(OLD_SCRIPT)], "old script", cwd=tree, env={
                **self.env, "NAMESPACE": self.namespaces[way], "APPS": "web",
                "MANIFESTS": str(self._manifests(way)), "WAIT_TIMEOUT": "120s"},
                timeout=TIMEOUT_S)
            return
        web = f"{REGISTRY}/{PROJECT}-web:latest"
        self.tools.check(["docker", "build", "-q", "-t", web, "-f", "Dockerfile.web", "."],
                         "web by hand", cwd=tree, timeout=TIMEOUT_S)
        started = time.monotonic()
        save = subprocess.Popen(["docker", "save", web], stdout=subprocess.PIPE)
        imported = subprocess.run(["ctr", f"--address={CONTAINERD}", "-n", "k8s.io", "images",
                                   "import", "-"], stdin=save.stdout, capture_output=True,
                                  check=False, timeout=TIMEOUT_S * 2)
        save.wait()
        if imported.returncode != 0 or save.returncode != 0:
            raise BenchError(f"docker save | ctr import failed: {imported.stderr[-500:]!r}")
        if timed:
            self.samples["old_import"].append(time.monotonic() - started)

    def _old_way(self, way: str) -> None:
        self.edit(way)
        self._old_build(way)
        self.tools.check(self.tools.kubectl("rollout", "restart", "deployment/web", "-n",
                                            self.namespaces[way]), "kubectl rollout restart")

    # -- results ---------------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        s = self.samples
        size = f"{self.base[1] / 1e9:.1f} GB image, {self.base[2]} layers"
        old = "the old script + rollout restart"
        by_hand = "build, `docker save | ctr import`, rollout restart"

        def within(limit: float) -> Any:
            return lambda mine, _ratio: mine <= limit

        return [
            compare(f"edit to new code answering, `dev` sync ({size})", s["sync"],
                    s["old_script"], old, f"≤ {SYNC_TARGET_S:g} s", within(SYNC_TARGET_S)),
            compare(f"edit to Ready, `dev` rebuild through the registry ({size})",
                    s["dev_registry"], s["old_script"], old, f"≤ {REBUILD_TARGET_S:g} s",
                    within(REBUILD_TARGET_S)),
            compare(f"edit to Ready, `dev` rebuild through k3s import ({size})",
                    s["dev_import"], s["old_import_way"], by_hand, f"≤ {REBUILD_TARGET_S:g} s",
                    within(REBUILD_TARGET_S)),
            compare(f"edit to Ready, `paless-deploy web` ({size})", s["deploy_web"],
                    s["old_script"], old, f"≤ {REBUILD_TARGET_S:g} s", within(REBUILD_TARGET_S)),
            compare(f"k3s import of a one-layer change: layers vs the whole image ({size})",
                    s["import"], s["old_import"], "`docker save | ctr images import`",
                    f"≤ {IMPORT_TARGET_S:g} s", within(IMPORT_TARGET_S)),
        ]

    def notes(self) -> list[str]:
        return [(
            f"Real size: base {self.base[0]} ({self.base[1] / 1e9:.2f} GB, {self.base[2]} "
            "layers); a tree laid out as Paless's repository (root Dockerfile FROM it copying "
            "src/, Dockerfile.web FROM the base), web on the sandbox's real node, reloading "
            "on SIGHUP. The edit is one line of src/app.py; the base and web are rebuilt (one "
            "layer changes). Sync: from the write to web's pod answering the new text over "
            "HTTP (polled every 20 ms). Ready: our watch sees Deployment/web Ready on its new "
            "template. The old ways rebuild the base by hand as :latest, then web (the old "
            "script, pushed as :latest, or `docker save | ctr images import` into the node's "
            "containerd), then `kubectl rollout restart`.")]


def _pod_ip(tools: Tools, namespace: str) -> str:
    done = tools.check(tools.kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o",
                                     "json"), "kubectl get pods")
    pods = [p for p in json.loads(done.output)["items"]
            if not p["metadata"].get("deletionTimestamp") and p["status"].get("podIP")]
    if not pods:
        raise BenchError(f"no web pod with an address in {namespace}")
    return str(pods[0]["status"]["podIP"])


class DevProcess:
    """`paless-deploy --output json dev`, its stderr read as it comes (its stdout, the
    session's document, kept with `keep_stdout`; the tests read it)."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path | None = None,
                 keep_stdout: bool = False) -> None:
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, text=True,
                                     stdout=subprocess.PIPE if keep_stdout
                                     else subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def mark(self) -> int:
        return len(self.lines)

    def wait(self, event: str, timeout: float, after: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while not any(line.startswith(f'{{"event": "{event}"') for line in self.lines[after:]):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"dev: no {event} event (exit {self.proc.poll()}):\n"
                                 + "\n".join(self.lines[-20:]))
            time.sleep(0.05)

    def import_seconds(self, app: str, after: int) -> float | None:
        """What dev said web's import took (`web: imported ... (0.5s)`)."""
        for line in self.lines[after:]:
            found = re.search(rf"\b{app}: imported .*\(([0-9.]+)s\)$", line)
            if found:
                return float(found.group(1))
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
