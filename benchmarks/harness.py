"""The sandbox as the benchmark sees it: kubeconfig, pinned kubectl, paless-deploy, namespaces.

Every tool runs as a subprocess, the way a user runs it, in an environment the benchmark
controls: no paless.env, no ambient PALESS_* or stack variables, colour off.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from paless_deploy.core.configuration.variables import VARIABLES

REPO = Path(__file__).resolve().parents[1]
SANDBOX_SCRIPT = REPO / "scripts" / "sandbox"
OLD_SCRIPT = Path(__file__).resolve().parent / "old_script.sh"

PROJECT_NAME = "paless-bench"  # its own image names: the benchmark never touches paless-*
REGISTRY = "localhost:5000"  # the sandbox registry, under the name the dev default uses
OVERLAY = "dev"
NAMESPACE_PREFIX = "bench-"
INSTANCE_LABEL = "app.kubernetes.io/instance"
# Left out of the project copy: none of it is in a build context (.dockerignore), so the
# copy's image tags equal the checkout's and a failing variant rebuilds nothing.
COPY_IGNORE = (".git", ".hypothesis", ".ruff_cache", ".pytest_cache", ".mypy_cache",
               "__pycache__", "*.egg-info", ".venv", "node_modules", "build", "dist")


class BenchError(Exception):
    """A step the benchmark depends on failed; the message says which and why."""


_START = time.monotonic()


def say(message: str) -> None:
    """A progress line on stderr (stdout carries only the table or the JSON)."""
    print(f"[bench {time.monotonic() - _START:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Finished:
    """A finished subprocess: wall time, exit code, merged output, peak memory."""

    seconds: float
    returncode: int
    output: str
    peak_rss_mb: float = 0.0  # the largest process of its tree (itself or a waited child)

    def tail(self, lines: int = 15) -> str:
        """The last lines of the output, for error messages."""
        return "\n".join(self.output.rstrip().splitlines()[-lines:])


def run(argv: Sequence[str | Path], env: Mapping[str, str], *, cwd: Path | None = None,
        timeout: float = 600) -> Finished:
    """Run argv to completion and time it (wall clock, process start to exit).

    The child is reaped with wait4, whose rusage gives the peak RSS of the child and of
    the children it waited for (a kubectl of a script, paless-deploy's kustomize)."""
    start = time.perf_counter()
    proc = subprocess.Popen([str(a) for a in argv], env=dict(env), cwd=cwd, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.append(proc.stdout.read()),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=10)
    if seconds >= timeout:
        raise BenchError(f"{' '.join(map(str, argv))} did not finish in {timeout:.0f}s")
    return Finished(seconds, proc.returncode, "".join(output), usage.ru_maxrss / 1024)


@dataclass(frozen=True)
class Sandbox:
    """Where the cluster is and which kubectl talks to it."""

    kubeconfig: Path
    bin_dir: Path  # the pinned kubectl (and kustomize) of `scripts/sandbox env`

    @property
    def kubectl(self) -> Path:
        """The pinned kubectl binary."""
        return self.bin_dir / "kubectl"


def find_sandbox(kubeconfig: str | None) -> Sandbox:
    """The sandbox from `scripts/sandbox env`; the kubeconfig from the flag, KUBECONFIG, or it.

    Raises BenchError when the API server does not answer.
    """
    try:
        out = subprocess.run([str(SANDBOX_SCRIPT), "env"], capture_output=True, text=True,
                             check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"`scripts/sandbox env` failed: {exc}") from exc
    exported = dict(re.findall(r"^export (\w+)=(.*)$", out, re.MULTILINE))
    bin_dir = Path(exported.get("PATH", "").split(":")[0])
    chosen = kubeconfig or os.environ.get("KUBECONFIG") or exported.get("KUBECONFIG", "")
    sandbox = Sandbox(kubeconfig=Path(chosen), bin_dir=bin_dir)
    if not sandbox.kubectl.exists():
        raise BenchError(f"no pinned kubectl at {sandbox.kubectl}: run `scripts/sandbox up`")
    why = sandbox_down(sandbox)
    if why:
        raise BenchError(f"the cluster of {sandbox.kubeconfig} does not answer ({why}): run "
                         "`scripts/sandbox up`")
    return sandbox


def sandbox_down(sandbox: Sandbox) -> str:
    """Why the API server or Docker does not answer ('' when both do)."""
    ready = subprocess.run([str(sandbox.kubectl), "get", "--raw", "/readyz",
                            "--request-timeout=5s"], capture_output=True, text=True, check=False,
                           env={**os.environ, "KUBECONFIG": str(sandbox.kubeconfig)})
    if ready.returncode != 0:
        return ready.stderr.strip()[-300:] or "not ready"
    docker = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    return "" if docker.returncode == 0 else "Docker does not answer"


# What a tool prints when the sandbox went away under it (others' tests run `down`/`up`).
OUTAGE = re.compile(r"connection refused|connection to the server .* was refused|"
                    r"Cannot connect to the Docker daemon|is unreachable|etcd.*failed|"
                    r"the server is currently unable|no route to host", re.IGNORECASE)


def outage(done: Finished) -> bool:
    """Whether a failed run failed because the sandbox went away (or stopped it)."""
    return done.returncode != 0 and (done.returncode < 0 or done.returncode in (130, 143)
                                     or bool(OUTAGE.search(done.output)))


def wait_for_sandbox(sandbox: Sandbox, timeout: float = 900) -> None:
    """Until the API server and Docker answer again (BenchError after `timeout`)."""
    deadline = time.monotonic() + timeout
    while why := sandbox_down(sandbox):
        if time.monotonic() > deadline:
            raise BenchError(f"the sandbox did not come back in {timeout:.0f}s: {why}")
        time.sleep(5)
    time.sleep(10)  # its controllers and kwok catch up


@dataclass(frozen=True)
class Tools:
    """Command lines for paless-deploy and kubectl against the sandbox, and their environment."""

    sandbox: Sandbox
    paless_deploy: tuple[str, ...]  # this interpreter running this checkout's package
    env_file: Path  # empty: replaces paless.env and .context-management/.env
    env: Mapping[str, str]

    @classmethod
    def create(cls, sandbox: Sandbox, workdir: Path, checkout: Path = REPO) -> Tools:
        """Tools whose environment holds only the benchmark's settings; paless-deploy is the
        package of `checkout` (this one, unless comparing with another, e.g. main)."""
        env_file = workdir / "empty.env"
        env_file.write_text("")
        ours = {v.name for v in VARIABLES}
        env = {k: v for k, v in os.environ.items()
               if k not in ours and not k.startswith("PALESS_")}
        env.update(PATH=f"{sandbox.bin_dir}:{env.get('PATH', '')}",
                   KUBECONFIG=str(sandbox.kubeconfig), PROJECT_NAME=PROJECT_NAME,
                   REGISTRY=REGISTRY, OVERLAY=OVERLAY, NO_COLOR="1", PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join(
                       p for p in (str(checkout), env.get("PYTHONPATH", "")) if p))
        # `python -m paless_deploy` of this checkout (PYTHONPATH first), not whichever
        # checkout an installed console script points at: the branch is what is measured.
        return cls(sandbox, (sys.executable, "-m", "paless_deploy"), env_file, env)

    # The kubeconfig travels in KUBECONFIG, never on a command line: `scripts/sandbox down`
    # stops every process whose command line names the sandbox's state directory.

    def pd(self, namespace: str, *args: str, project: Path = REPO) -> list[str]:
        """paless-deploy with explicit env file, project and namespace."""
        return [*self.paless_deploy, "--env-file", str(self.env_file), "--project-dir",
                str(project), "--no-color", "-n", namespace, *args]

    def kubectl(self, *args: str) -> list[str]:
        """The pinned kubectl (the sandbox's kubeconfig from KUBECONFIG)."""
        return [str(self.sandbox.kubectl), *args]

    def check(self, argv: Sequence[str | Path], what: str, *, cwd: Path | None = None,
              env: Mapping[str, str] | None = None, timeout: float = 600) -> Finished:
        """Run argv; BenchError naming `what` and the output's tail unless it exits 0."""
        done = run(argv, env or self.env, cwd=cwd, timeout=timeout)
        if done.returncode != 0:
            raise BenchError(f"{what} exited {done.returncode}:\n{done.tail()}")
        return done


def create_namespace(tools: Tools, name: str) -> None:
    """A plain namespace for the kubectl and old-script baselines."""
    manifest = yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": name, "labels": {"paless.io/bench": "true"}}})
    done = subprocess.run(tools.kubectl("create", "-f", "-"), input=manifest, text=True,
                          capture_output=True, env=dict(tools.env), check=False)
    if done.returncode != 0:
        raise BenchError(f"creating namespace {name} failed: {done.stderr.strip()}")


def delete_namespaces(tools: Tools, names: Sequence[str], wait_s: float = 0) -> None:
    """Delete the benchmark's namespaces and their PVs (labelled with the instance); with
    `wait_s`, wait (up to that long) until they are gone, so that their pods and objects
    do not weigh on the next measurement.

    Only names with the benchmark's prefix are ever passed here.
    """
    names = [n for n in names if n.startswith(NAMESPACE_PREFIX)]
    if not names:
        return
    selector = f"{INSTANCE_LABEL} in ({','.join(names)})"
    for argv in (("delete", "namespace", *names), ("delete", "pv", "-l", selector)):
        for attempt in range(3):  # an API server that restarts must not leave them behind
            done = run(tools.kubectl(*argv, "--ignore-not-found", "--wait=false"), tools.env,
                       timeout=120)
            if done.returncode == 0:
                break
            time.sleep(2 * (attempt + 1))
        else:
            say(f"could not {' '.join(argv[:2])} {', '.join(names)}: {done.tail(2)}")
    if wait_s:
        done = run(tools.kubectl("wait", "--for=delete", "--timeout", f"{wait_s:.0f}s",
                                 *(f"namespace/{n}" for n in names)), tools.env,
                   timeout=wait_s + 60)
        if done.returncode != 0 and "not found" not in done.output:
            say(f"namespaces still going after {wait_s:.0f}s: {done.tail(3)}")


def render_objects(tools: Tools, namespace: str, project: Path = REPO) -> list[dict]:
    """The objects `paless-deploy render --show-secrets` gives for the namespace."""
    import json

    argv = tools.pd(namespace, "--output", "json", "render", "--show-secrets", project=project)
    done = subprocess.run(argv, env=dict(tools.env), capture_output=True, text=True,
                          timeout=300, check=False)
    try:
        objects = json.loads(done.stdout).get("objects")
    except ValueError:
        objects = None
    if done.returncode != 0 or not objects:
        raise BenchError(f"render for {namespace} exited {done.returncode}:\n"
                         f"{done.stderr.strip()[-2000:]}")
    return list(objects)


def app_names(project: Path = REPO) -> list[str]:
    """The Paless apps: root Dockerfile.<app> (web, worker, scheduler)."""
    return sorted(p.name.split(".", 1)[1] for p in project.glob("Dockerfile.*"))


def with_latest_images(objects: list[dict], apps: Sequence[str]) -> list[dict]:
    """The objects with our app images as {REGISTRY}/{PROJECT}-{app}:latest, as the old
    manifests named them (the old script only ever pushed :latest)."""
    text = yaml.safe_dump_all(objects)
    for app in apps:
        repo = re.escape(f"{REGISTRY}/{PROJECT_NAME}-{app}")
        latest = f"{REGISTRY}/{PROJECT_NAME}-{app}:latest"
        text = re.sub(rf"(image: ['\"]?){repo}:[\w.-]+", rf"\g<1>{latest}", text)
    return list(yaml.safe_load_all(text))


def write_manifests(objects: list[dict], path: Path) -> Path:
    """Multi-document YAML, as `kubectl apply -f` reads it."""
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return path


def copy_project(dest: Path, src: Path = REPO) -> Path:
    """A copy of the checkout to edit (the failing overlays), with the same image tags."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(*COPY_IGNORE), symlinks=True)
    return dest


def place_on_bench_nodes(project: Path, directory: str = "k8s/base") -> Path:
    """Every pod template of the project's base tolerates and selects the benchmark's own
    nodes (benchmarks/nodes.py), so the stacks of one run never crowd shared nodes. (Only
    whole objects: in a strategic merge patch, a toleration list would replace theirs.)"""
    from benchmarks.tree import NODE_LABEL

    for path in (project / directory).rglob("*.yaml"):
        docs = list(yaml.safe_load_all(path.read_text()))
        changed = False
        for doc in docs:
            pod = (((doc or {}).get("spec") or {}).get("template") or {}).get("spec")
            if not isinstance(pod, dict) or (doc or {}).get("kind") not in (
                    "Deployment", "StatefulSet", "Job", "DaemonSet"):
                continue
            toleration = {"key": NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}
            if toleration not in pod.setdefault("tolerations", []):
                pod["tolerations"].append(toleration)
                pod.setdefault("nodeSelector", {})[NODE_LABEL] = "true"
                changed = True
        if changed:
            path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return project


def patch_worker(project: Path, patch: Mapping[str, Any], overlay: str = OVERLAY) -> None:
    """A strategic merge patch of Deployment/worker, appended to the overlay's
    kustomization.yaml (replacing an earlier one of ours)."""
    path = project / "k8s" / "overlays" / overlay / "kustomization.yaml"
    kustomization = yaml.safe_load(path.read_text())
    marker = "# paless-bench"
    patches = [p for p in kustomization.get("patches") or []
               if not str(p.get("patch", "")).startswith(marker)]
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "worker"},
            **patch}
    patches.append({"target": {"kind": "Deployment", "name": "worker"},
                    "patch": f"{marker}\n{yaml.safe_dump(body)}"})
    kustomization["patches"] = patches
    path.write_text(yaml.safe_dump(kustomization, sort_keys=False))


def patch_worker_template(project: Path, annotations: Mapping[str, str],
                          overlay: str = OVERLAY) -> None:
    """Set pod-template annotations of Deployment/worker in the overlay."""
    patch_worker(project, {"spec": {"template": {"metadata": {
        "annotations": dict(annotations)}}}}, overlay)


def add_to_overlay(project: Path, name: str, objects: Sequence[Mapping[str, Any]],
                   overlay: str = OVERLAY) -> None:
    """Write objects as a file of the overlay and list it in its resources."""
    directory = project / "k8s" / "overlays" / overlay
    (directory / name).write_text(yaml.safe_dump_all(list(objects), sort_keys=False))
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    if name not in kustomization.setdefault("resources", []):
        kustomization["resources"].append(name)
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization,
                                                                  sort_keys=False))
