"""Failure detection: each tool deploys a change that fails onto its healthy stack (as a
developer iterates); how long until it exits, and does its output name the cause?

The failures: a worker image that cannot be pulled, a worker that crash-loops, a worker
no node can fit, and a new Job that fails. Each run marks its pods (RUN annotation), so
the benchmark's own watch of the API notes when this run's failure first shows there;
for paless-deploy, the finding's line on its output gives its detection latency. The
other tools print what they print when they exit.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness import BenchError, add_to_overlay, patch_worker, say
from benchmarks.tools import PalessDeploy, Target, Tool

FAIL = "sandbox.paless.io/fail"  # the sandbox's failure marker (kwok stages)
RUN = "bench.paless.io/run"  # on the failing pods' template: which run made them
WORKER = "app.kubernetes.io/component=worker"
FAILING_JOB = "bench-failing-job"
ALONE = "(run alone)"  # a peer's sample measured again without the others beside it


def _waiting(reasons: set[str], min_restarts: int = 0) -> Callable[[Mapping[str, Any]], bool]:
    def holds(pod: Mapping[str, Any]) -> bool:
        return any(((s.get("state") or {}).get("waiting") or {}).get("reason") in reasons
                   and int(s.get("restartCount") or 0) >= min_restarts
                   for s in (pod.get("status") or {}).get("containerStatuses") or [])
    return holds


def _condition(ctype: str, status: str, reason: str | None = None
               ) -> Callable[[Mapping[str, Any]], bool]:
    def holds(obj: Mapping[str, Any]) -> bool:
        return any(c.get("type") == ctype and c.get("status") == status
                   and (reason is None or c.get("reason") == reason)
                   for c in (obj.get("status") or {}).get("conditions") or [])
    return holds


@dataclass(frozen=True)
class FailureCase:
    """One failure: how to make it, how the API shows it, which words name it."""

    code: str  # the finding code paless-deploy prints first on its line
    title: str
    cause: re.Pattern[str]  # in any tool's output, these words name the cause
    make: Callable[[Path, str], None]  # edits a project copy for one run (its RUN id)
    kind: str  # what the benchmark's own watch looks at
    selector: str  # label selector (Pod) or field selector (Job)
    holds: Callable[[Mapping[str, Any]], bool]

    def seen(self, obj: Mapping[str, Any], run_id: str) -> bool:
        """The condition, on an object of this run."""
        meta = (obj.get("metadata") or {}) if self.kind == "Pod" else (
            ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {})
        return (meta.get("annotations") or {}).get(RUN) == run_id and self.holds(obj)


def _worker(annotations: dict[str, str], spec: dict | None = None
            ) -> Callable[[Path, str], None]:
    def make(project: Path, run_id: str) -> None:
        template: dict[str, Any] = {"metadata": {"annotations": {**annotations, RUN: run_id}}}
        if spec:
            template["spec"] = spec
        patch_worker(project, {"spec": {"template": template}})
    return make


def _job(project: Path, run_id: str) -> None:
    add_to_overlay(project, "bench-failing-job.yaml", [{
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": FAILING_JOB, "labels": {"app.kubernetes.io/component": "bench"}},
        "spec": {"backoffLimit": 0, "template": {
            "metadata": {"annotations": {FAIL: "crash-loop", RUN: run_id}},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "job", "image": "worker", "command": ["false"],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                              "limits": {"cpu": "100m", "memory": "64Mi"}}}]}}}}])


CASES = (
    FailureCase("image-pull", "worker image cannot be pulled",
                re.compile(r"ErrImagePull|ImagePullBackOff|image-pull"),
                _worker({FAIL: "image-pull"}), "Pod", WORKER,
                _waiting({"ErrImagePull", "ImagePullBackOff"})),
    # paless.io/allowed-restarts 0: the first CrashLoopBackOff is fatal (default 3 restarts,
    # to let dependencies start); the other tools ignore the annotation
    FailureCase("crash-loop", "worker crash-loops",
                re.compile(r"CrashLoopBackOff|crash-loop|back-off restarting"),
                _worker({FAIL: "crash-loop", "paless.io/allowed-restarts": "0"}),
                "Pod", WORKER, _waiting({"CrashLoopBackOff"}, min_restarts=1)),
    FailureCase("unschedulable", "worker requests 64 CPUs, more than any node has",
                re.compile(r"[Uu]nschedulable|Insufficient cpu|FailedScheduling"),
                _worker({}, {"containers": [{"name": "worker", "resources": {
                    "requests": {"cpu": "64"}, "limits": {"cpu": "64"}}}]}),
                "Pod", WORKER, _condition("PodScheduled", "False", "Unschedulable")),
    FailureCase("job-failed", "a Job whose pod fails (backoffLimit 0)",
                re.compile(r"BackoffLimitExceeded|backoff limit|job-failed|Job [Ff]ailed"),
                _job, "Job", f"metadata.name={FAILING_JOB}", _condition("Failed", "True")),
)


@dataclass(frozen=True)
class FailureSample:
    """One failing deploy by one tool."""

    tool: str
    code: str
    exit_code: int
    exit_s: float  # process start to exit
    named: bool  # whether its output names the cause
    cause_s: float | None  # when the cause was named (paless-deploy: its finding's line;
    #                        the others print at exit); None when never
    latency_s: float | None = None  # paless-deploy: the API showing it -> its finding line
    note: str = ""


def run_peer(tool: Tool, target: Target, case: FailureCase, timeout_s: float) -> FailureSample:
    """A peer's failing deploy (its files prepared): its exit, whether it names the cause."""
    done = tool.deploy(target, timeout_s)
    named = bool(case.cause.search(done.output))
    last = done.tail(1).strip()[:160]
    return FailureSample(tool.name, case.code, done.returncode, done.seconds, named,
                         done.seconds if named else None, note=last)


def run_paless(tool: PalessDeploy, core: Any, target: Target, case: FailureCase,
               run_id: str, timeout_s: float) -> FailureSample:
    """paless-deploy's failing deploy, its output read line by line as it arrives, the API
    watched by the benchmark itself."""
    watch = ConditionWatch(core, target.namespace, case, run_id)
    watch.start()
    argv = tool.tools.pd(target.namespace, "--progress-deadline", f"{timeout_s:.0f}s",
                         "--timeout", f"{timeout_s + 60:.0f}s", "all", project=target.project)
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=dict(tool.tools.env), text=True, bufsize=1,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output = OutputTimes()
    readers = [output.follow(proc.stdout), output.follow(proc.stderr)]
    try:
        exit_code = proc.wait(timeout=timeout_s + 120)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.wait()
        raise BenchError(f"paless-deploy did not end within {timeout_s + 120:.0f}s on "
                         f"{case.code}") from exc
    exited = time.monotonic()
    for reader in readers:
        reader.join(timeout=5)
    watch.wait(timeout=10)  # the benchmark's own watch may trail the tool's by a moment
    found = output.first(lambda line: line.startswith(f"{case.code} "))
    named = found is not None or bool(case.cause.search(output.text()))
    cause_at = found if found is not None else (exited if named else None)
    note = watch.error
    if exit_code != 1:
        note = (note + f" exited {exit_code}, expected 1: " + output.tail()).strip()
    latency = (found - watch.seen_at if found is not None and watch.seen_at is not None
               else None)
    return FailureSample(tool.name, case.code, exit_code, exited - start, named,
                         None if cause_at is None else cause_at - start, latency, note)


@dataclass
class ConditionWatch:
    """Watches the namespace from a listed resourceVersion (it may not exist yet); notes
    when an object first shows the case's condition."""

    core: Any  # kubernetes.client.CoreV1Api
    namespace: str
    case: FailureCase
    run_id: str
    seen_at: float | None = None
    error: str = ""
    _found: threading.Event = field(default_factory=threading.Event)
    _watch: Any = None

    def start(self) -> None:
        from kubernetes import client, watch

        # the client's list_namespaced_* for the case's kind, and its selector
        lister: Callable[..., Any] = self.core.list_namespaced_pod
        query: dict[str, Any] = {"label_selector": self.case.selector}
        if self.case.kind == "Job":
            lister = client.BatchV1Api(self.core.api_client).list_namespaced_job
            query = {"field_selector": self.case.selector}
        listed = lister(self.namespace, **query)
        self._watch = watch.Watch()
        threading.Thread(target=self._follow, daemon=True, args=(
            lister, query, listed.metadata.resource_version)).start()

    def _follow(self, lister: Any, query: dict, resource_version: str) -> None:
        try:
            for event in self._watch.stream(lister, self.namespace, **query,
                                            resource_version=resource_version,
                                            timeout_seconds=300, deserialize=False):
                if event.get("type") != "DELETED" and self.case.seen(
                        event.get("object") or {}, self.run_id):
                    self.seen_at = time.monotonic()
                    break
        except Exception as exc:  # noqa: BLE001 - reported with the sample, not raised
            self.error = f"watch failed: {exc}"
        self._found.set()

    def wait(self, timeout: float) -> None:
        self._found.wait(timeout)
        if self._watch is not None:
            self._watch.stop()


@dataclass
class OutputTimes:
    """The lines a subprocess prints, each with the monotonic time it arrived."""

    lines: list[tuple[float, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def follow(self, stream: Any) -> threading.Thread:
        def read() -> None:
            for line in stream:
                with self._lock:
                    self.lines.append((time.monotonic(), line.rstrip("\n")))
        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread

    def first(self, matches: Callable[[str], bool]) -> float | None:
        with self._lock:
            return next((t for t, line in self.lines if matches(line)), None)

    def text(self) -> str:
        with self._lock:
            return "\n".join(line for _, line in self.lines)

    def tail(self, n: int = 3) -> str:
        with self._lock:
            return " | ".join(line for _, line in self.lines[-n:])


def wait_failures_gone(core: Any, namespace: str, timeout: float = 60) -> bool:
    """Until no pod of a failing run and no failing Job is left in the namespace."""
    from kubernetes import client

    jobs = client.BatchV1Api(core.api_client)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(namespace).items
        left = [p for p in pods if RUN in (p.metadata.annotations or {})]
        left += jobs.list_namespaced_job(namespace,
                                         field_selector=f"metadata.name={FAILING_JOB}").items
        if not left:
            return True
        time.sleep(0.3)
    return False


def describe(sample: FailureSample) -> str:
    """A peer's side of a table cell: its exit and whether it named the cause."""
    return (f"exit {sample.exit_code}, " + ("names the cause" if sample.named
                                            else "cause not named")
            + (", run alone" if sample.note.startswith(ALONE) else ""))


def say_sample(sample: FailureSample) -> None:
    when = "never" if sample.cause_s is None else f"{sample.cause_s:.1f}s"
    say(f"  {sample.code} / {sample.tool}: exit {sample.exit_code} after {sample.exit_s:.1f}s, "
        f"cause named: {when}"
        + ("" if sample.latency_s is None else f", {sample.latency_s:.2f}s after the API")
        + (f" ({sample.note})" if sample.note and not sample.named else ""))
