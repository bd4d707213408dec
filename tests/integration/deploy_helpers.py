"""Helpers for the deploy-engine integration tests: a project copy, the CLI as a
subprocess with a clean environment, cleanup of namespaces and their PVs, and an
API event recorder that proves ordering by resourceVersion (etcd revision).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paless_deploy.core.configuration.variables import VARIABLES

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "app.kubernetes.io/instance"

# Ambient settings that would leak into a deploy: kubeconfig, branch/commit detection,
# and every configuration variable of the tool.
_SCRUBBED = {"KUBECONFIG", "GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME",
             "BRANCH_NAME", "GITHUB_SHA", "CI_COMMIT_SHA", "GIT_COMMIT",
             *(v.name for v in VARIABLES)}


@dataclass(frozen=True)
class Project:
    """A copy of the repository's deployable parts, with its own env file."""

    dir: Path
    env_file: Path


def make_project(dest: Path, env: dict[str, str] | None = None) -> Project:
    """Copy k8s/, the Dockerfiles and .dockerignore into `dest`; write an env file."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "k8s", dest / "k8s")
    for f in [*REPO.glob("Dockerfile.*"), REPO / ".dockerignore"]:
        shutil.copy2(f, dest / f.name)
    env_file = dest / "test.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in (env or {}).items()))
    return Project(dest, env_file)


def copy_project(src: Project, dest: Path) -> Project:
    """Another copy of a project (to change a Dockerfile or add an overlay in it)."""
    shutil.copytree(src.dir, dest)
    return Project(dest, dest / src.env_file.name)


def add_overlay(project: Project, name: str, kustomization: str) -> None:
    """Write k8s/overlays/<name>/kustomization.yaml."""
    d = project.dir / "k8s" / "overlays" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "kustomization.yaml").write_text(kustomization)


def tiny_project(root: Path, text: str = "hello\n") -> Path:
    """A project of one app `tiny` (FROM scratch, one file): a deploy takes seconds."""
    (root / "tiny").mkdir(parents=True, exist_ok=True)
    (root / "tiny" / "hello.txt").write_text(text)
    (root / "tiny" / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    return root


def write_overlay(root: Path, name: str, objects: list[dict]) -> None:
    """k8s/overlays/<name> of `root` holding exactly these objects."""
    base = root / "k8s" / "overlays" / name
    base.mkdir(parents=True, exist_ok=True)
    (base / "objects.yaml").write_text("\n---\n".join(json.dumps(o) for o in objects))
    (base / "kustomization.yaml").write_text("resources:\n- objects.yaml\n")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The process environment without kubeconfig, branch or tool settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


@dataclass
class CliRun:
    """One finished CLI run: exit code, output and (with --output json) the document."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float
    document: dict | None = None  # stdout's JSON document (with --output json)

    @property
    def doc(self) -> dict:
        """The JSON document of a run with --output json (what every such test reads)."""
        assert self.document is not None, f"a run without --output json has no document:\n{self}"
        return self.document

    def __str__(self) -> str:
        return (f"paless-deploy {' '.join(self.args)} -> {self.returncode} in "
                f"{self.duration_s:.1f}s\n--- stdout ---\n{self.stdout[-4000:]}"
                f"\n--- stderr ---\n{self.stderr[-4000:]}")


def cli_args(project: Project, kubeconfig: Path | str, namespace: str | None, *args: str,
             json_output: bool = True) -> list[str]:
    base = ["--project-dir", str(project.dir), "--env-file", str(project.env_file),
            "--kubeconfig", str(kubeconfig)]
    if namespace:
        base += ["-n", namespace]
    if json_output:
        base += ["--output", "json"]
    return [*base, *args]


def start_cli(project: Project, kubeconfig: Path | str, namespace: str | None, *args: str,
              env: dict[str, str] | None = None, json_output: bool = True) -> tuple[
                  subprocess.Popen, list[str], float]:
    """Start `python -m paless_deploy ...` (for runs that must overlap)."""
    argv = cli_args(project, kubeconfig, namespace, *args, json_output=json_output)
    proc = subprocess.Popen([sys.executable, "-m", "paless_deploy", *argv], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(env),
                            cwd=project.dir)
    return proc, argv, time.monotonic()


def finish_cli(started: tuple[subprocess.Popen, list[str], float], timeout: float = 300,
               json_output: bool = True) -> CliRun:
    proc, argv, t0 = started
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"paless-deploy {' '.join(argv)} ran past {timeout}s:\n{err[-4000:]}")
    run = CliRun(argv, proc.returncode, out, err, time.monotonic() - t0)
    if json_output:
        try:
            run.document = json.loads(out)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"stdout is not one JSON document ({exc}):\n{run}") from exc
    assert "Traceback" not in err, f"a Python traceback in stderr:\n{run}"
    return run


def run_cli(project: Project, kubeconfig: Path | str, namespace: str | None, *args: str,
            env: dict[str, str] | None = None, json_output: bool = True,
            timeout: float = 300) -> CliRun:
    """Run the CLI to completion; stdout parsed as JSON when asked; never a traceback."""
    return finish_cli(start_cli(project, kubeconfig, namespace, *args, env=env,
                                json_output=json_output), timeout, json_output)


def delete_instances(sandbox: Any, namespaces: list[str]) -> None:
    """Delete namespaces (without waiting) and the cluster-scoped PVs labelled for them."""
    if not namespaces:
        return
    sandbox.kubectl("delete", "namespace", "--ignore-not-found", "--wait=false", *namespaces,
                    check=False)
    sandbox.kubectl("delete", "pv", "--wait=false", "-l",
                    f"{INSTANCE} in ({','.join(namespaces)})", check=False)


def api_client(kubeconfig: Path | str) -> Any:
    """A kubernetes ApiClient with a connection pool large enough for one watch per kind."""
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    cfg.connection_pool_maxsize = 32
    return client.ApiClient(cfg)


def get_json(sandbox: Any, *args: str) -> dict:
    return json.loads(sandbox.kubectl("get", *args, "-o", "json").stdout)


def objects_by_key(sandbox: Any, namespace: str) -> dict[tuple[str, str], dict]:
    """Every object of the kinds the stack uses in the namespace, plus its PVs."""
    kinds = ("configmaps,secrets,persistentvolumeclaims,statefulsets,services,jobs,"
             "deployments,horizontalpodautoscalers,poddisruptionbudgets,ingresses,"
             "networkpolicies")
    items = get_json(sandbox, kinds, "-n", namespace)["items"]
    items += get_json(sandbox, "persistentvolumes", "-l", f"{INSTANCE}={namespace}")["items"]
    return {(o["kind"], o["metadata"]["name"]): o for o in items}


def result_objects(doc: dict) -> dict[tuple[str, str], dict]:
    """(kind, name) -> object report of a JSON result, across phases."""
    return {(o["kind"], o["name"]): {**o, "phase": p["name"]}
            for p in doc["phases"] for o in p["objects"]}


def refused_as_not_ours(run: CliRun, *phrases: str) -> None:
    """A deploy refused before anything was applied (exit 2, `not-ours`), its message
    naming each of `phrases` (the object and its owner)."""
    assert run.returncode == 2, str(run)
    assert run.doc is not None
    error = run.doc["errors"][-1]
    assert error["code"] == "not-ours", error
    for phrase in (*phrases, "Nothing was applied"):
        assert phrase in error["message"], error["message"]
    assert run.doc["phases"] == []


# ---------------------------------------------------------------------------
# recording API events by resourceVersion


@dataclass(frozen=True)
class Event:
    type: str
    kind: str
    name: str
    rv: int
    obj: dict


@dataclass
class EventRecorder:
    """One watch thread per kind in a namespace, recording every event in order.

    Each kind is listed first (synchronously) and watched from the list's
    resourceVersion, so nothing that happens after `start()` returns is missed.
    """

    api_client: Any
    namespace: str
    events: list[Event] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.api_client)
        apps = client.AppsV1Api(self.api_client)
        ns = self.namespace
        self._kinds: dict[str, tuple[Callable[..., Any], tuple[str, ...], dict[str, str]]] = {
            "ConfigMap": (core.list_namespaced_config_map, (ns,), {}),
            "Secret": (core.list_namespaced_secret, (ns,), {}),
            "PersistentVolumeClaim": (core.list_namespaced_persistent_volume_claim, (ns,), {}),
            "StatefulSet": (apps.list_namespaced_stateful_set, (ns,), {}),
            "Service": (core.list_namespaced_service, (ns,), {}),
            "Job": (client.BatchV1Api(self.api_client).list_namespaced_job, (ns,), {}),
            "Deployment": (apps.list_namespaced_deployment, (ns,), {}),
            "HorizontalPodAutoscaler": (
                client.AutoscalingV2Api(self.api_client).list_namespaced_horizontal_pod_autoscaler,
                (ns,), {}),
            "PodDisruptionBudget": (
                client.PolicyV1Api(self.api_client).list_namespaced_pod_disruption_budget,
                (ns,), {}),
            "Ingress": (client.NetworkingV1Api(self.api_client).list_namespaced_ingress,
                        (ns,), {}),
            "NetworkPolicy": (
                client.NetworkingV1Api(self.api_client).list_namespaced_network_policy, (ns,), {}),
            "PersistentVolume": (core.list_persistent_volume, (),
                                 {"label_selector": f"{INSTANCE}={ns}"}),
        }
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> EventRecorder:
        for kind, (fn, args, kwargs) in self._kinds.items():
            listed = fn(*args, **kwargs)
            assert not listed.items, f"{kind} objects exist in {self.namespace} before the deploy"
            t = threading.Thread(target=self._watch, daemon=True, name=f"rec-{kind}",
                                 args=(kind, fn, args, kwargs, listed.metadata.resource_version))
            t.start()
            self._threads.append(t)
        return self

    def _watch(self, kind: str, fn: Any, args: tuple, kwargs: dict, rv: str) -> None:
        from kubernetes import watch

        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for ev in w.stream(fn, *args, resource_version=rv, timeout_seconds=2, **kwargs):
                    raw = ev["raw_object"]
                    if ev["type"] == "ERROR":
                        self.errors.append(f"{kind}: {raw}")
                        return
                    raw.setdefault("kind", kind)
                    rv = raw["metadata"]["resourceVersion"]
                    with self._lock:
                        self.events.append(Event(ev["type"], kind, raw["metadata"]["name"],
                                                 int(rv), raw))
            except Exception as exc:  # noqa: BLE001 - recorded; the test fails on any
                self.errors.append(f"{kind}: {exc!r}")
                return

    def stop(self, settle_timeout: float = 15.0) -> list[Event]:
        """Wait until the final state of every kind was seen, then stop the threads."""
        deadline = time.monotonic() + settle_timeout
        for kind, (fn, args, kwargs) in self._kinds.items():
            for item in fn(*args, **kwargs).items:
                want = int(item.metadata.resource_version)
                while not self._seen(kind, item.metadata.name, want):
                    assert time.monotonic() < deadline, (
                        f"the recorder never saw {kind}/{item.metadata.name} at rv {want}")
                    time.sleep(0.05)
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        assert not self.errors, f"watch errors: {self.errors}"
        return sorted(self.events, key=lambda e: e.rv)

    def _seen(self, kind: str, name: str, rv: int) -> bool:
        with self._lock:
            return any(e.kind == kind and e.name == name and e.rv >= rv for e in self.events)


# ---------------------------------------------------------------------------
# a CLI run watched line by line (to act at a moment of it: a fault, a signal)


class LiveCli:
    """`python -m paless_deploy ...` started now, its stderr read line by line as it comes,
    so a test can wait for a line (a phase starting) and act then."""

    def __init__(self, project: Project, kubeconfig: Path | str, namespace: str | None,
                 *args: str, env: dict[str, str] | None = None, json_output: bool = True
                 ) -> None:
        self.json_output = json_output
        self.proc, self.argv, self.started = start_cli(project, kubeconfig, namespace, *args,
                                                       env=env, json_output=json_output)
        self.lines: list[tuple[float, str]] = []  # (seconds since start, line)
        self._stdout: list[str] = []
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read_err, daemon=True),
                         threading.Thread(target=self._read_out, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        self._stdout.append(self.proc.stdout.read())

    def wait_for(self, text: str, timeout: float = 120.0) -> float:
        """Seconds since start at which a stderr line containing `text` appeared; fails when
        the run ends or `timeout` passes first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for at, line in self.lines:
                    if text in line:
                        return at
                if self.proc.poll() is not None and not self._readers[0].is_alive():
                    raise AssertionError(f"the run ended before {text!r}:\n" + self.stderr)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {text!r} within {timeout:.0f}s:\n" + self.stderr)
                self._changed.wait(min(left, 0.5))

    def first_at(self, text: str) -> float | None:
        """When a line containing `text` appeared (None: not yet)."""
        with self._changed:
            return next((at for at, line in self.lines if text in line), None)

    @property
    def stderr(self) -> str:
        with self._changed:
            return "\n".join(line for _, line in self.lines)

    def finish(self, timeout: float = 300.0) -> CliRun:
        """Wait for the end; the run as run_cli returns it (JSON parsed, no traceback)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"paless-deploy {' '.join(self.argv)} ran past {timeout}s:\n"
                                 + self.stderr[-4000:]) from None
        for reader in self._readers:
            reader.join(timeout=10)
        run = CliRun(self.argv, self.proc.returncode, "".join(self._stdout), self.stderr,
                     time.monotonic() - self.started)
        if self.json_output:
            try:
                run.document = json.loads(run.stdout)
            except json.JSONDecodeError as exc:
                raise AssertionError(f"stdout is not one JSON document ({exc}):\n{run}") from exc
        assert "Traceback" not in run.stderr, f"a Python traceback in stderr:\n{run}"
        return run
