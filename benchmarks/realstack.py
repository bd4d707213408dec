"""The whole Paless stack's first deploy on the sandbox's real node, with real-size images
(`--real-size`): the images the node must get before anything runs are what a first deploy
costs on a laptop.

The project is the repository's k8s/ with the realnode-stack overlay (the tests' fixture:
every pod on the real node, the real PostgreSQL, Redis, MinIO, mc, rclone and CoreDNS); web,
worker, scheduler and the migrate Job run images built FROM the 1.3 GB Paless stand-in. The
images are built and pushed before anything is timed. Before each first deploy the node
forgets the Paless images (the previous namespace deleted, its containers gone, the images
removed from containerd and their content collected), so every first deploy moves the 1.3 GB
base into the node again; the data services' images (PostgreSQL, Redis, MinIO, mc, rclone,
busybox) stay, as on a laptop that ran the stack before. Each way is timed from its command
to the whole stack Ready (every workload rolled out, every Job complete):

- registry: `paless-deploy all` (IMAGE_DELIVERY=registry: the node pulls) against
  `kubectl apply --server-side` of the same objects and `kubectl rollout status` / `kubectl
  wait` of every workload and Job;
- k3s import: `paless-deploy all` with IMAGE_DELIVERY=k3s-import (the layers the node lacks,
  into its containerd) against `docker save` of the three app images `| ctr images import`,
  then the same kubectl apply and waits;
- no-op: each deploys its namespace again, nothing changed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from benchmarks.harness import BenchError, Finished, Tools, delete_namespaces, run, say
from benchmarks.realloop import CONTAINERD
from benchmarks.report import Row, at_most, compare, skipped
from benchmarks.tools import KubectlWait, PalessDeploy, Target, Tool

PROJECT = "paless-rs"
REGISTRY = "127.0.0.1:5000"
DEPLOY_TIMEOUT_S = 600.0
APPS = ("web", "worker", "scheduler")
# what the node keeps before each first deploy: the data services' and the node's own
# images; it forgets every other (any image built FROM the stand-in holds its 1.3 GB)
KEEP = ("library/postgres:", "library/redis:", "minio/minio:", "minio/mc:", "rclone/rclone:",
        "library/busybox:", "coredns/coredns:", "/pause:")
STAND_IN_MANIFEST = "http://127.0.0.1:5000/v2/ghcr.io/paperless-ngx/paperless-ngx/manifests/2.18.4"
KUBECTL = "kubectl apply + rollout status"
BY_HAND = "`docker save | ctr images import`, kubectl apply + rollout status"


class ImportByHand(KubectlWait):
    """k3s without a registry, as its documentation says: `docker save` of the app images
    piped into `ctr images import` on the node, then kubectl apply and the waits."""

    name = BY_HAND

    def __init__(self, tools: Tools, workdir: Path, images: list[str]) -> None:
        super().__init__(tools, workdir)
        self.images = images

    def deploy(self, target: Target, timeout_s: float) -> Finished:
        started = time.perf_counter()
        save = subprocess.Popen(["docker", "save", *self.images], stdout=subprocess.PIPE)
        imported = subprocess.run(["ctr", f"--address={CONTAINERD}", "-n", "k8s.io", "images",
                                   "import", "-"], stdin=save.stdout, capture_output=True,
                                  text=True, check=False, timeout=timeout_s)
        save.wait()
        if imported.returncode != 0 or save.returncode != 0:
            return Finished(time.perf_counter() - started, 1,
                            f"docker save | ctr images import failed: {imported.stderr[-500:]}")
        done = super().deploy(target, timeout_s)
        return dataclasses.replace(done, seconds=time.perf_counter() - started)

    @property
    def slug(self) -> str:
        return "byhand"


@dataclasses.dataclass
class RealStackFirst:
    """The whole stack's first deploy and no-op on the real node, registry and k3s import."""

    tools: Tools
    workdir: Path
    bench_id: str
    runs: int
    created: list[str] = dataclasses.field(default_factory=list)
    samples: dict[str, list[float | None]] = dataclasses.field(default_factory=dict)
    size: str = ""
    why_not: str = ""
    held: list[int] = dataclasses.field(default_factory=list)  # stand-in layers left, per run
    # container restarts in the namespace when each first deploy ended, per way
    restarts: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        credentials = {"REDIS_PASSWORD": f"redis-{secrets.token_hex(12)}",
                       "MINIO_APP_PASSWORD": f"minio-app-{secrets.token_hex(12)}",
                       "MINIO_ROOT_PASSWORD": f"minio-root-{secrets.token_hex(12)}"}
        self.env = {**self.tools.env, "PROJECT_NAME": PROJECT, "REGISTRY": REGISTRY,
                    **credentials}
        self.samples = {k: [] for k in ("first", "first_kubectl", "first_import",
                                        "first_byhand", "noop", "noop_kubectl")}

    def _tools(self, **extra: str) -> Tools:
        return dataclasses.replace(self.tools, env={**self.env, **extra})

    def measure(self) -> None:
        from tests.fixtures.realdata import real_stack_missing
        from tests.fixtures.realnodestack import (
            OVERLAY,
            STAND_IN,
            ensure_shared_mount,
            stack_project,
        )

        why = real_stack_missing(self.tools.kubectl())
        if why:
            self.why_not = why
            say(f"real size, whole stack: skipped ({why})")
            return
        self.env.update(OVERLAY=OVERLAY, BASE_IMAGE=STAND_IN)
        ensure_shared_mount()
        project = stack_project(self.workdir / "realstack", {}).dir
        registry = self._tools()
        imports = self._tools(IMAGE_DELIVERY="k3s-import",
                              PALESS_CONTAINERD_ADDRESS=str(CONTAINERD))
        say("real size, whole stack: building and pushing its images (not timed)")
        registry.check(registry.pd(f"bench-{self.bench_id}", "push", project=project),
                       "paless-deploy push", timeout=1800)
        images = self._app_images(KubectlWait(registry, self.workdir).target(
            project, f"bench-{self.bench_id}-rs-probe"))
        ways: list[tuple[str, Tool, str | None]] = [
            ("first", PalessDeploy(registry, self.workdir), "noop"),
            ("first_kubectl", KubectlWait(registry, self.workdir), "noop_kubectl"),
            ("first_import", PalessDeploy(imports, self.workdir), None),
            ("first_byhand", ImportByHand(imports, self.workdir, images), None)]
        for r in range(self.runs):
            for i in range(len(ways)):  # each way goes first in turn
                sample, tool, noop = ways[(i + r) % len(ways)]
                self._first_deploy(project, sample, tool, noop, r)

    def _app_images(self, target: Target) -> list[str]:
        """The apps' image references in the rendered objects, and what they weigh."""
        found = sorted({c["image"] for o in target.objects
                        for c in o.get("spec", {}).get("template", {}).get("spec", {})
                        .get("containers", []) if f"/{PROJECT}-" in c.get("image", "")})
        if not found:
            raise BenchError(f"no {PROJECT} image in the rendered stack")
        sizes = [_image_bytes(ref) for ref in found]
        self.size = (f"{len(found)} app images of {max(sizes) / 1e9:.2f} GB on the stand-in's "
                     "layers")
        return found

    def _first_deploy(self, project: Path, sample: str, tool: Tool, noop: str | None,
                      r: int) -> None:
        namespace = f"bench-{self.bench_id}-rs-{sample.replace('_', '-')}-{r}"
        self._forget()
        self.created.append(namespace)
        target = tool.target(project, namespace)
        done = tool.deploy_ok(target, DEPLOY_TIMEOUT_S, f"first deploy ({sample})")
        self.samples[sample].append(done.seconds if done.returncode == 0 else None)
        restarts = self._restarts(namespace)
        self.restarts.setdefault(tool.name, []).append(restarts)
        said = (f"real size, whole stack: {tool.name} first deploy {done.seconds:.1f}s "
                f"({restarts} container restart(s))")
        if noop:
            again = tool.deploy_ok(target, DEPLOY_TIMEOUT_S, "no-op")
            self.samples[noop].append(again.seconds if again.returncode == 0 else None)
            said += f", no-op {again.seconds:.2f}s"
        say(said)
        self._delete(namespace)

    def _restarts(self, namespace: str) -> int:
        """The restarts of every container of the namespace's pods (the apps of a tool that
        starts everything at once restart until the database answers)."""
        done = run(self.tools.kubectl("get", "pods", "-n", namespace, "-o", "json"),
                   self.tools.env, timeout=60)
        try:
            pods = json.loads(done.output)["items"] if done.returncode == 0 else None
        except ValueError:
            pods = None
        if pods is None:
            return -1  # not known (said as such in the notes)
        return sum(int(c.get("restartCount") or 0) for pod in pods
                   for c in (pod.get("status") or {}).get("containerStatuses") or [])

    def _delete(self, namespace: str) -> None:
        from tests.fixtures.realnodestack import HOST_PATHS, unmount_media

        delete_namespaces(self.tools, [namespace], wait_s=300)
        unmount_media([namespace])
        shutil.rmtree(HOST_PATHS / namespace, ignore_errors=True)

    def _forget(self) -> None:
        """The node without the Paless images: every image but the data services' and its
        own removed (the tests' and the other benchmarks' images are built FROM the
        stand-in too) with the stopped containers that use them, their content collected
        (`--sync`); then how many of the stand-in's layers it still holds is noted."""
        rows = [line.split() for line in _ctr("images", "ls").splitlines()[1:] if line.strip()]
        kept = {row[2] for row in rows if any(k in row[0] for k in KEEP)}
        refs = [row[0] for row in rows if row[2] not in kept]
        forgotten = {ref.split("@", 1)[0].rsplit(":", 1)[0] for ref in refs
                     if not ref.startswith("sha256:")}
        # the namespaces were awaited gone (`_delete`), so their pods' containers are
        # stopped; the kubelet collects them later: removed here instead
        for line in _ctr("containers", "ls").splitlines()[1:]:
            if line.strip() and line.split()[1].rsplit(":", 1)[0] in forgotten:
                _ctr("containers", "rm", line.split()[0], check=False)
        if refs:
            _ctr("images", "rm", "--sync", *refs)
        held = _stand_in_layers_held()
        self.held.append(held)
        if held:
            say(f"real size, whole stack: the node still holds {held} of the stand-in's "
                "layers (shared with a kept image, or used by a container of another "
                "namespace)")

    def rows(self) -> list[Row]:
        s = self.samples
        title = "whole stack on the real node"
        if self.why_not:
            return [skipped(f"{title}: first deploy ({self.why_not})", KUBECTL, "≤ 1.0x")]
        size = f"{self.size}, node without them"
        return [
            compare(f"{title}: first deploy to Ready, registry ({size})", s["first"],
                    s["first_kubectl"], KUBECTL, "≤ 1.0x", at_most(1.0)),
            compare(f"{title}: first deploy to Ready, k3s import ({size})", s["first_import"],
                    s["first_byhand"], BY_HAND, "≤ 1.0x", at_most(1.0)),
            compare(f"{title}: no-op redeploy ({self.size})", s["noop"], s["noop_kubectl"],
                    KUBECTL, "≤ 1.0x", at_most(1.0)),
        ]

    def notes(self) -> list[str]:
        if self.why_not:
            return []
        return [(
            f"Whole stack, real size: the repository's k8s/ with the realnode-stack overlay "
            f"on the sandbox's real node; {self.size}. Before each first deploy the node "
            "forgets every image but the data services' and its own (containers removed, "
            "images removed from containerd, content collected); the stand-in's layers it "
            f"still held before each first deploy: {self.held or 'not measured'} (0: a cold "
            "node). Timed from the command to "
            "every workload rolled out and every Job complete; the namespace is deleted "
            "after each way. Container restarts when each first deploy ended: "
            + "; ".join(f"{name}: {counts}" for name, counts in self.restarts.items()) + ".")]


def _ctr(*args: str, check: bool = True) -> str:
    done = run(["ctr", f"--address={CONTAINERD}", "-n", "k8s.io", *args], os.environ,
               timeout=300)
    if check and done.returncode != 0:
        raise BenchError(f"ctr {' '.join(args[:3])} failed: {done.tail(3)}")
    return done.output


def _stand_in_layers_held() -> int:
    """How many of the stand-in's layers the node's content store still holds."""
    import urllib.request

    accept = ("application/vnd.docker.distribution.manifest.v2+json, "
              "application/vnd.oci.image.manifest.v1+json")
    request = urllib.request.Request(STAND_IN_MANIFEST, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=30) as answer:
        layers = {layer["digest"] for layer in json.load(answer)["layers"]}
    held = {line.split()[0] for line in _ctr("content", "ls").splitlines()[1:] if line.strip()}
    return len(layers & held)


def _image_bytes(ref: str) -> int:
    done = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", ref],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"docker image inspect {ref}: {done.stderr.strip()}")
    return int(done.stdout.strip())
