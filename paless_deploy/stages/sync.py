"""Sync stage for `dev`: copy the files a change calls for into the running containers of
their apps (a tar stream through `kubectl exec`), reload each process by its rule, and
bring every container that starts meanwhile from an image lacking synced changes (a pod
deleted, rescheduled or restarted before the rebuilt image rolled out) up to date.

What to sync, where, and how each process reloads is decided in core (plan.sync); which
changes each container still lacks is its `SyncLedger`. A failed sync or reload is said
and the loop goes on: the rebuilt image brings the change anyway.
"""

from __future__ import annotations

import io
import posixpath
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from paless_deploy.adapters.buildcontext import sync_archive
from paless_deploy.adapters.kube.kubectl import kubectl_exec
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.images.buildspec import ignore_file_candidates
from paless_deploy.core.plan.devloop import AppContext, app_of_pod
from paless_deploy.core.plan.sync import ReloadRule, SyncLedger, SyncPlan, plan_sync
from paless_deploy.stages.images import app_images, relative_path
from paless_deploy.stages.watcher import PodsLoop

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube
    from paless_deploy.core.configuration.config import Config
    from paless_deploy.core.images.discover import App

SETTLE_S = 2.0  # a started container without a readiness probe has its signal handlers by then
MISSING = (126, 127)  # the shell's "cannot run" and "not found"
# Deletes the given paths, unpacks the tar from stdin at /, then signals PID 1 ($1).
SCRIPT = ('sig="$1"; shift; [ "$#" -eq 0 ] || rm -f -- "$@"; '
          'tar -xf - -C / && kill -"$sig" 1')


@dataclass(frozen=True)
class Synced:
    """What one sync into one container did."""

    app: str
    pod: str
    container: str
    files: int
    reload: str  # "SIGHUP (granian)", or "" when the process waits for its image
    error: str = ""
    seconds: float = 0.0


class Syncer:
    """Syncs into the running containers of the namespace's pods running our images."""

    def __init__(self, kube: Kube, namespace: str, root: Path,
                 repositories: Mapping[str, str], report: Callable[[Synced, str], None]
                 ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.root = root
        self.repositories = dict(repositories)  # repository -> app
        self.report = report  # (what happened, "sync" | "catch-up")
        self.ledger = SyncLedger()
        self.rules: dict[tuple[str, str], ReloadRule | None] = {}  # (app, container) -> rule
        self._done: dict[tuple[str, str, str], int] = {}  # (pod uid, container, id) -> gen
        self._lock = threading.Lock()
        self._pods = PodsLoop(kube, namespace, self._catch_up, "sync")

    def start(self) -> Syncer:
        self._pods.start()
        return self

    def stop(self) -> None:
        self._pods.stop()

    def waiting(self, apps: Sequence[str], plan: SyncPlan) -> dict[str, str]:
        """The apps of `apps` running containers that take no sync (a process without a
        reload in place), and why; those the plan refused are said by the plan."""
        found: dict[str, str] = {}
        for (app, _), rule in sorted(self.rules.items()):
            if app in apps and app not in plan.why_not and not (rule and rule.signal):
                found.setdefault(app, rule.why if rule else "no reload rule for its process")
        return {app: why for app, why in found.items() if app not in plan.apps}

    def reloadable(self) -> set[str]:
        """The apps with a container whose process reloads in place (a signal)."""
        return {app for (app, _), rule in self.rules.items() if rule and rule.signal}

    # -- a sync ------------------------------------------------------------------------------

    def sync(self, plan: SyncPlan) -> list[Synced]:
        """Copy the plan's files into every running container of their apps now."""
        pods = self._pods.watcher.items("Pod")
        targets = [(app, *found) for app in plan.apps for found in self._containers(app, pods)]
        with self._lock:  # recorded and claimed at once: the catch-up leaves these alone
            generation = self.ledger.record(plan.files)
            for _, pod, container, cid in targets:
                self._done[(pod["metadata"].get("uid", ""), container, cid)] = generation
        return [self._bring(app, pod, container, cid) for app, pod, container, cid in targets]

    def _containers(self, app: str, pods: list[JsonDict]) -> list[tuple[JsonDict, str, str]]:
        """(pod, container name, container ID) of the app's running containers."""
        found = []
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp") or \
                    app_of_pod(pod, self.repositories) != app:
                continue
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                if (status.get("state") or {}).get("running") and \
                        (app, status.get("name")) in self.rules:
                    found.append((pod, str(status["name"]), str(status.get("containerID"))))
        return found

    def _bring(self, app: str, pod: JsonDict, container: str, cid: str) -> Synced:
        """Bring one container up to date: every change its image lacks, then its reload."""
        started = time.monotonic()
        name, uid = pod["metadata"]["name"], pod["metadata"].get("uid", "")
        rule = self.rules.get((app, container))
        with self._lock:
            owed = self.ledger.owed(app, _image(pod, container))
            generation = self.ledger.generation
            self._done[(uid, container, cid)] = generation
        if rule is None or rule.signal is None:
            why = rule.why if rule else "no reload rule for its process"
            return Synced(app, name, container, 0, "", f"waits for its image: {why}")
        if not owed:
            return Synced(app, name, container, 0, "")
        archive, deleted = sync_archive(self.root, owed)
        code, said = _exec(self.kube, self.namespace, name, container,
                           ["sh", "-c", SCRIPT, "sh", rule.signal, *deleted], archive)
        took = time.monotonic() - started
        reload = f"SIG{rule.signal} ({rule.name})"
        if code == 0:
            return Synced(app, name, container, len(owed), reload, seconds=took)
        return Synced(app, name, container, len(owed), reload, _failure(code, said),
                      seconds=took)

    # -- containers that start meanwhile -----------------------------------------------------

    def _catch_up(self, pods: list[JsonDict]) -> None:
        """Every running container of an app with owed changes that it has not received
        (a new pod, a restarted container) gets them once it can take a signal."""
        with self._lock:
            apps = {app for app in self.ledger.pending()}
        for app in apps:
            for pod, container, cid in self._containers(app, pods):
                key = (pod["metadata"].get("uid", ""), container, cid)
                with self._lock:
                    fresh = key not in self._done
                    if not fresh and self._done[key] >= self.ledger.last(app):
                        continue
                if fresh and not _settled(pod, container):
                    continue
                done = self._bring(app, pod, container, cid)
                if done.files or (done.error and done.reload):
                    self.report(done, "catch-up")  # not a container that owed nothing

    def settled(self, app: str, ref: str, generation: int) -> None:
        """The app's workloads run `ref`, planned at `generation`: what it holds is owed no
        more."""
        with self._lock:
            self.ledger.covers(ref, generation)
            self.ledger.settle(app, ref)

    def covers(self, ref: str, generation: int) -> None:
        """`ref` was planned from the files as they were at `generation`."""
        with self._lock:
            self.ledger.covers(ref, generation)


def plan_burst(config: Config, apps: Sequence[App], contexts: Sequence[AppContext],
               paths: Sequence[str], reloadable: Collection[str]) -> SyncPlan:
    """What of a burst can be synced (core plan.sync), from the project as it is now: each
    app's image (its Dockerfiles, through the build graph), its context files before and
    after the burst, which changed paths are gone, and the ignore files builds read."""
    root = config.project_dir
    files = {c.name: {posixpath.join(c.context, f) if c.context else f for f in c.files}
             for c in contexts}
    deleted = {p for p in paths if not (root / p).exists()}
    ignore = {relative_path(candidate, root) for app in apps
              for candidate in ignore_file_candidates(app)}
    return plan_sync(paths, app_images(config, apps), files, deleted, reloadable, ignore)


def _image(pod: JsonDict, container: str) -> str:
    for c in (pod.get("spec") or {}).get("containers") or []:
        if c.get("name") == container:
            return str(c.get("image") or "")
    return ""


def _settled(pod: JsonDict, container: str) -> bool:
    """A container that started a moment ago may not have its signal handlers yet: it
    counts once Ready, or SETTLE_S after it started when it has no readiness probe."""
    spec: JsonDict = next((c for c in (pod.get("spec") or {}).get("containers") or []
                 if c.get("name") == container), {})
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") != container:
            continue
        if status.get("ready"):
            return True
        if spec.get("readinessProbe"):
            return False
        started = ((status.get("state") or {}).get("running") or {}).get("startedAt")
        if not started:
            return False
        since = datetime.now(UTC) - datetime.fromisoformat(str(started))
        return since.total_seconds() >= SETTLE_S
    return False


def _failure(code: int, said: str) -> str:
    if code in MISSING:
        return (f"the container cannot run `sh` or `tar` ({said or f'exit code {code}'}): the "
                "rebuilt image brings the change")
    return f"{said or f'exit code {code}'}: the rebuilt image brings the change"


def describe(synced: list[Synced]) -> str:
    """One line of what a sync did, per app: files, pods, reloads, failures."""
    parts = []
    for app in dict.fromkeys(s.app for s in synced):
        mine = [s for s in synced if s.app == app]
        ok = [s for s in mine if not s.error and s.reload]
        files = max((s.files for s in mine), default=0)
        text = f"{app}: {files} file(s) into {len(ok)} of {len(mine)} container(s)"
        reloads = sorted({s.reload for s in ok})
        if reloads:
            text += f", reloaded by {', '.join(reloads)}"
        parts.append(text)
    return "; ".join(parts)


EXEC_TIMEOUT_S = 60.0


def _exec(kube: Kube, namespace: str, pod: str, container: str, argv: list[str],
          stdin: bytes) -> tuple[int, str]:
    """`argv` run in one container with `stdin` fed to it: (exit code, the end of what it
    said); an exit code of 127 or 126 means the command is missing in the container, -1
    that kubectl could not run it."""
    try:
        done = kubectl_exec(kube.kubeconfig, kube.context, namespace, pod, container, argv,
                            stdin=io.BytesIO(stdin), timeout_s=EXEC_TIMEOUT_S)
    except FileNotFoundError:
        return -1, "kubectl is not on PATH"
    said = (done.stdout.decode(errors="replace") + done.stderr).strip()
    return done.exit_code, said[-600:]
