"""Detection latency: from a failure appearing in the API to paless-deploy reporting it.

The benchmark watches the namespace's worker pods itself and notes when a pod of this run
first shows the failure; it reads the tool's output through pipes and notes when the
finding is printed (or, failing that, when the tool exits 1). Both on one monotonic clock.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness import BenchError, Tools, patch_worker_template, run, say

WORKER_SELECTOR = "app.kubernetes.io/component=worker"
RUN_ANNOTATION = "bench.paless.io/run"  # makes each run's template (and pods) unique
FAIL_ANNOTATION = "sandbox.paless.io/fail"  # the sandbox's failure marker (kwok stages)
# The old script's only failure signal: `kubectl wait --timeout=120s`. A pod stuck in
# ImagePullBackOff or CrashLoopBackOff never becomes Ready, so even a wait that matched the
# pods would report at the timeout; its real `-l app=<app>` matches nothing and never reports.
OLD_SCRIPT_DETECTION_S = 120.0
TOOL_DEADLINES = ("--progress-deadline", "60s", "--timeout", "2m")  # bounds a missed detection


@dataclass(frozen=True)
class FailureCase:
    """A failure the sandbox injects into the worker's pods and the tool must report."""

    code: str  # the sandbox marker, also the finding code the tool prints first on its line
    annotations: Mapping[str, str]
    waiting_reasons: frozenset[str]  # a container waiting with one of these ...
    min_restarts: int = 0  # ... and at least this many restarts: the condition holds

    def holds(self, pod: Mapping[str, Any]) -> bool:
        """Whether the pod's container statuses show the failure."""
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            if (waiting.get("reason") in self.waiting_reasons
                    and int(status.get("restartCount") or 0) >= self.min_restarts):
                return True
        return False


IMAGE_PULL = FailureCase("image-pull", {FAIL_ANNOTATION: "image-pull"},
                         frozenset({"ErrImagePull", "ImagePullBackOff"}))
# diagnose.Policy: a crash loop is fatal once restarts exceed paless.io/allowed-restarts
# (default 3, to let dependencies start); 0 makes the first CrashLoopBackOff fatal.
CRASH_LOOP = FailureCase("crash-loop", {FAIL_ANNOTATION: "crash-loop",
                                        "paless.io/allowed-restarts": "0"},
                         frozenset({"CrashLoopBackOff"}), min_restarts=1)


@dataclass
class ConditionWatch:
    """Watches worker pods from a listed resourceVersion; notes when a pod of `run_id`
    first shows the case's condition."""

    core: Any  # kubernetes.client.CoreV1Api
    namespace: str
    case: FailureCase
    run_id: str
    seen_at: float | None = None
    pod: str = ""
    error: str = ""
    _found: threading.Event = field(default_factory=threading.Event)
    _watch: Any = None

    def start(self) -> None:
        """List (for the resourceVersion), then watch in a daemon thread from there on."""
        from kubernetes import watch

        listed = self.core.list_namespaced_pod(self.namespace, label_selector=WORKER_SELECTOR)
        self._watch = watch.Watch()
        threading.Thread(target=self._follow, args=(listed.metadata.resource_version,),
                         daemon=True).start()

    def _follow(self, resource_version: str) -> None:
        try:
            for event in self._watch.stream(
                    self.core.list_namespaced_pod, self.namespace,
                    label_selector=WORKER_SELECTOR, resource_version=resource_version,
                    timeout_seconds=180, deserialize=False):
                pod = event.get("object") or {}
                mine = ((pod.get("metadata") or {}).get("annotations") or {}).get(RUN_ANNOTATION)
                if mine == self.run_id and self.case.holds(pod):
                    self.seen_at = time.monotonic()
                    self.pod = pod["metadata"]["name"]
                    self._found.set()
                    return
        except Exception as exc:  # noqa: BLE001 - reported with the sample, not raised
            self.error = f"watch failed: {exc}"
        self._found.set()

    def wait(self, timeout: float) -> None:
        """Until the condition was seen (or the watch ended), then stop watching."""
        self._found.wait(timeout)
        if self._watch is not None:
            self._watch.stop()


@dataclass
class OutputTimes:
    """The lines a subprocess prints, each with the monotonic time it arrived."""

    lines: list[tuple[float, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def follow(self, stream: Any) -> threading.Thread:
        """Read `stream` line by line in a thread."""
        def read() -> None:
            for line in stream:
                with self._lock:
                    self.lines.append((time.monotonic(), line.rstrip("\n")))
        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread

    def first(self, matches: Callable[[str], bool]) -> float | None:
        """Arrival time of the first line that matches."""
        with self._lock:
            return next((t for t, line in self.lines if matches(line)), None)


@dataclass(frozen=True)
class DetectionSample:
    """One failing deploy: when the failure was in the API, when the tool reported it."""

    code: str
    latency_s: float | None  # reported - condition; None when either is missing
    reported_by: str  # "finding" (its panel header printed), "exit" (exit 1), or "" (neither)
    exit_code: int
    pod: str
    note: str = ""


def measure_detection(tools: Tools, core: Any, project: Path, namespace: str,
                      case: FailureCase, run_id: str) -> DetectionSample:
    """Deploy the project copy with the case's marker on the worker and time the report."""
    patch_worker_template(project, {**case.annotations, RUN_ANNOTATION: run_id})
    watcher = ConditionWatch(core, namespace, case, run_id)
    watcher.start()
    argv = tools.pd(namespace, *TOOL_DEADLINES, "all", project=project)
    proc = subprocess.Popen(argv, env=dict(tools.env), text=True, bufsize=1,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output = OutputTimes()
    readers = [output.follow(proc.stdout), output.follow(proc.stderr)]
    try:
        exit_code = proc.wait(timeout=200)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.wait()
        raise BenchError(f"paless-deploy did not end within 200s on {case.code}") from exc
    exited_at = time.monotonic()
    for reader in readers:
        reader.join(timeout=5)
    watcher.wait(timeout=10)  # the bench's own watch may trail the tool's by a moment
    reported_at = output.first(lambda line: line.startswith(f"{case.code} "))
    reported_by = "finding" if reported_at is not None else ""
    if reported_at is None and exit_code == 1:
        reported_at, reported_by = exited_at, "exit"
    note = watcher.error
    if exit_code != 1:
        note = (note + f" paless-deploy exited {exit_code}, expected 1: "
                + " | ".join(line for _, line in output.lines[-5:])).strip()
    latency = (reported_at - watcher.seen_at
               if reported_at is not None and watcher.seen_at is not None else None)
    return DetectionSample(case.code, latency, reported_by, exit_code, watcher.pod, note)


def restore_worker(tools: Tools, core: Any, namespace: str, attempts: int = 3) -> int:
    """Deploy the checkout again until it exits 0 and no pod of a failing run is left.

    Returns the number of `paless-deploy all` runs it took (more than 1 when a run
    reported the previous, failing ReplicaSet's pods while they were going away).
    """
    for attempt in range(1, attempts + 1):
        done = run(tools.pd(namespace, "all"), tools.env)
        _wait_for_failing_pods_gone(core, namespace)
        if done.returncode == 0:
            return attempt
        say(f"restoring the worker: paless-deploy exited {done.returncode} "
            f"(attempt {attempt}); retrying")
    raise BenchError(f"could not restore a healthy worker in {namespace}:\n{done.tail()}")


def _wait_for_failing_pods_gone(core: Any, namespace: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(namespace, label_selector=WORKER_SELECTOR).items
        if not any(RUN_ANNOTATION in (p.metadata.annotations or {}) for p in pods):
            return
        time.sleep(0.3)
    raise BenchError(f"pods of a failing run are still in {namespace} after {timeout:.0f}s")
