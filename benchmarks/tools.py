"""The tools compared, each deploying one target (a namespace) the way its users do.

- paless-deploy: `all` of the project (it renders, builds, applies its dependency graph, waits).
- Helm 4: `helm upgrade --install --wait --wait-for-jobs` of a chart of static templates:
  the objects paless-deploy renders for Helm's namespace, packed unchanged.
- kubectl: `kubectl apply --server-side` of the same objects, then `kubectl rollout status`
  of every Deployment and StatefulSet and `kubectl wait --for=condition=complete` of every
  Job, as a script would (and the bare apply, which waits for nothing).
- the old script: benchmarks/old_script.sh, defects included.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.harness import (
    OLD_SCRIPT,
    REGISTRY,
    REPO,
    BenchError,
    Finished,
    Tools,
    outage,
    render_objects,
    run,
    say,
    wait_for_sandbox,
    with_latest_images,
    write_manifests,
)

HELM_VERSION = "v4.3.2"
BUILD_HELM = Path(__file__).resolve().parent / "build-helm.sh"
WORKLOADS = ("Deployment", "StatefulSet")


@dataclass(frozen=True)
class Target:
    """One deploy: the namespace, the project paless-deploy reads, and (for the others) the
    objects paless-deploy renders for that namespace."""

    namespace: str
    project: Path
    objects: tuple[dict, ...] = ()


class Tool:
    """A deploy tool; `deploy` is what is timed, `prepare` (files it reads) is not."""

    name = ""
    waits = True  # whether it waits for readiness at all

    def __init__(self, tools: Tools, workdir: Path) -> None:
        self.tools, self.workdir = tools, workdir

    def prepare(self, target: Target) -> None:
        """Write what the tool reads for this target (outside the timing)."""

    def target(self, project: Path, namespace: str) -> Target:
        """What one deploy into `namespace` takes, its files written (outside the timing):
        the objects paless-deploy renders for that namespace."""
        target = Target(namespace, project,
                        tuple(render_objects(self.tools, namespace, project)))
        self.prepare(target)
        return target

    def deploy(self, target: Target, timeout_s: float) -> Finished:
        raise NotImplementedError

    def deploy_ok(self, target: Target, timeout_s: float, what: str) -> Finished:
        """A deploy that should succeed; one cut by the sandbox going away (others' tests run
        `scripts/sandbox down`) is run again once it is back, so no sample spans an outage.
        paless-deploy failing stops the benchmark; a peer failing (its --timeout passed)
        is its result: kept, and said in the table."""
        for _ in range(3):
            done = self.deploy(target, timeout_s)
            if done.returncode == 0 or not outage(done):
                break
            say(f"{self.name} ({what}): the sandbox went away; waiting for it, then again")
            wait_for_sandbox(self.tools.sandbox)
        if done.returncode != 0:
            if isinstance(self, PalessDeploy) or outage(done):
                raise BenchError(f"{self.name} ({what}) exited {done.returncode}:\n"
                                 f"{done.tail()}")
            say(f"{self.name} ({what}) failed after {done.seconds:.0f}s (exit "
                f"{done.returncode}): {done.tail(1)[:200]}")
        return done

    def files(self, target: Target) -> Path:
        path = self.workdir / self.slug / target.namespace
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def slug(self) -> str:
        return self.name.split()[0].replace("-", "")


class PalessDeploy(Tool):
    name = "paless-deploy"

    def target(self, project: Path, namespace: str) -> Target:
        return Target(namespace, project)  # it renders for itself

    def deploy(self, target: Target, timeout_s: float) -> Finished:
        # a missed failure ends at the deadline, like the others' --timeout
        argv = self.tools.pd(target.namespace, "--progress-deadline", f"{timeout_s:.0f}s",
                             "--timeout", f"{timeout_s + 60:.0f}s", "all",
                             project=target.project)
        return run(argv, self.tools.env, timeout=timeout_s + 120)


class Helm(Tool):
    name = "helm --wait"

    def __init__(self, tools: Tools, workdir: Path, binary: Path) -> None:
        super().__init__(tools, workdir)
        self.binary = binary
        home = workdir / "helm-home"
        self.env = {**tools.env, "HELM_CACHE_HOME": str(home / "cache"),
                    "HELM_CONFIG_HOME": str(home / "config"),
                    "HELM_DATA_HOME": str(home / "data")}

    def prepare(self, target: Target) -> None:
        write_chart(self.files(target), target.objects)

    def deploy(self, target: Target, timeout_s: float) -> Finished:
        argv: list[str | Path] = [
            self.binary, "upgrade", "--install", "bench", self.files(target),
            "--namespace", target.namespace, "--create-namespace", "--wait",
            "--wait-for-jobs", "--timeout", f"{timeout_s:.0f}s"]
        return run(argv, self.env, timeout=timeout_s + 120)


def write_chart(chart: Path, objects: tuple[dict, ...]) -> Path:
    """A chart whose one template emits the objects verbatim (never parsed as templates)."""
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    (chart / "objects").mkdir(exist_ok=True)
    for old in (chart / "objects").glob("*.yaml"):
        old.unlink()
    (chart / "Chart.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "v2", "name": "bench", "version": "0.1.0", "type": "application"}))
    for i, obj in enumerate(objects):
        if obj.get("kind") != "Namespace":
            (chart / "objects" / f"{i:05d}.yaml").write_text(yaml.safe_dump(obj))
    (chart / "templates" / "objects.yaml").write_text(
        '{{- range $path, $_ := .Files.Glob "objects/*.yaml" }}\n---\n'
        "{{ $.Files.Get $path }}\n{{- end }}\n")
    return chart


class KubectlWait(Tool):
    """`kubectl apply --server-side`, then rollout status of each workload, then the Jobs."""

    name = "kubectl apply + rollout status"

    def prepare(self, target: Target) -> None:
        write_kubectl_files(self.files(target), target)

    def deploy(self, target: Target, timeout_s: float) -> Finished:
        return run(["bash", "-e", self.files(target) / "deploy.sh", f"{timeout_s:.0f}s"],
                   self.tools.env, timeout=3 * timeout_s + 120)

    @property
    def slug(self) -> str:
        return "kubectl"


class KubectlApply(KubectlWait):
    """The bare `kubectl apply --server-side`: no waiting (the fastest anything can be)."""

    name = "kubectl apply"
    waits = False

    def deploy(self, target: Target, timeout_s: float) -> Finished:
        return run(self.tools.kubectl("apply", "--server-side", "--field-manager=bench",
                                      "-f", str(self.files(target) / "objects.yaml")),
                   self.tools.env, timeout=timeout_s + 120)


def write_kubectl_files(where: Path, target: Target) -> None:
    """objects.yaml (the Namespace first) and deploy.sh: apply, then wait as a script does."""
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": target.namespace, "labels": {"paless.io/bench": "true"}}}
    objects = [ns, *(o for o in target.objects if o.get("kind") != "Namespace")]
    write_manifests(objects, where / "objects.yaml")
    workloads = [f"{o['kind'].lower()}/{o['metadata']['name']}" for o in objects
                 if o["kind"] in WORKLOADS]
    jobs = [f"job/{o['metadata']['name']}" for o in objects if o["kind"] == "Job"]
    kubectl = f"kubectl -n {target.namespace}"
    lines = ['timeout="$1"',
             f'{kubectl} apply --server-side --field-manager=bench -f "{where}/objects.yaml"']
    if workloads:
        lines.append(f'{kubectl} rollout status --timeout="$timeout" {" ".join(workloads)}')
    if jobs:
        lines.append(f'{kubectl} wait --for=condition=complete --timeout="$timeout" '
                     f'{" ".join(jobs)}')
    (where / "deploy.sh").write_text("\n".join(lines) + "\n")


class OldScript(Tool):
    """The old bash script's behaviour: rebuild and push :latest, one client-side apply,
    `kubectl wait -l app=<app>` that matches nothing, exit 0."""

    name = "old script"
    waits = False

    def __init__(self, tools: Tools, workdir: Path, apps: list[str],
                 wait_timeout: str) -> None:
        super().__init__(tools, workdir)
        self.apps, self.wait_timeout = apps, wait_timeout

    def prepare(self, target: Target) -> None:
        write_manifests(with_latest_images([o for o in target.objects
                                            if o.get("kind") != "Namespace"], self.apps),
                        self.files(target) / "objects.yaml")
        ensure_namespace(self.tools, target.namespace)

    def deploy(self, target: Target, timeout_s: float) -> Finished:
        env = {**self.tools.env, "NAMESPACE": target.namespace,
               "MANIFESTS": str(self.files(target) / "objects.yaml"),
               "APPS": " ".join(self.apps), "REGISTRY": REGISTRY,
               "WAIT_TIMEOUT": self.wait_timeout}
        return run(["bash", OLD_SCRIPT], env, cwd=target.project, timeout=timeout_s + 300)


def ensure_namespace(tools: Tools, name: str) -> None:
    """Create the namespace unless it exists (the old script never created one)."""
    manifest = yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name, "labels": {"paless.io/bench": "true"}}})
    done = subprocess.run(tools.kubectl("apply", "-f", "-"), input=manifest, text=True,
                          capture_output=True, env=dict(tools.env), check=False)
    if done.returncode != 0:
        raise BenchError(f"creating namespace {name} failed: {done.stderr.strip()}")


def helm_binary(version: str = HELM_VERSION) -> Path:
    """Helm from the sandbox's binary cache, built from Go modules the first time."""
    cache = Path(os.environ.get("PALESS_SANDBOX_CACHE",
                                Path.home() / ".cache" / "paless-sandbox"))
    binary = cache / f"helm-{version}" / "bin" / "helm"
    if binary.exists():
        return binary
    say(f"building Helm {version} from Go modules (once; several minutes): {BUILD_HELM}")
    done = subprocess.run(["bash", str(BUILD_HELM), version], capture_output=True, text=True,
                          check=False, cwd=REPO)
    if done.returncode != 0 or not binary.exists():
        raise BenchError(f"building Helm failed ({BUILD_HELM}):\n{done.stderr[-2000:]}")
    return binary
