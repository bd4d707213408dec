"""Inner-loop speed: from a one-line change in web's build context to the new web pods Ready.

Three ways, measured in the same run, one edit at a time, on the stack the run deployed
already (the dev overlay on the sandbox's kwok nodes, images through the sandbox registry):
- `paless-deploy dev` running: it sees the change, rebuilds web, pushes it and rolls out
  what runs it (web and the migrate Job);
- `paless-deploy web` run after each edit (what a k3s user ran before `dev`);
- the old script's behaviour, in the old script's namespace: every image rebuilt and pushed
  as :latest, one apply, which rolls nothing out (the manifest does not change); the change
  reaches the pods only through the `kubectl rollout restart deployment/web` a user had to
  add, included here (not in --quick).
The edit is one line of Dockerfile.web (an ENV value), in web's build context only. The
clock runs from writing the file to the benchmark's own watch seeing Deployment/web Ready
on its new pod template (generation observed, updated = available = desired replicas, no
old replicas left).
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    OLD_SCRIPT,
    REGISTRY,
    REPO,
    BenchError,
    Tools,
    app_names,
    copy_project,
    render_objects,
    say,
    with_latest_images,
    write_manifests,
)
from benchmarks.report import Row, compare, skipped

TARGET_S = 3.0
READY_TIMEOUT_S = 300.0
EDIT_LINE = "ENV PALESS_BENCH_EDIT="


class InnerLoop:
    """The inner-loop measurements of one benchmark run, in namespaces the run deployed
    already: `namespace` (the stack, by paless-deploy) for dev then `paless-deploy web`,
    `old_namespace` (the stack, by the old script) for the old script's way."""

    def __init__(self, tools: Tools, workdir: Path, namespace: str, old_namespace: str,
                 runs: int, quick: bool, source: Path = REPO) -> None:
        self.tools, self.runs, self.quick = tools, runs, quick
        # a copy each of the project the stack was deployed from: dev must see only its own
        # edits, and nothing else may differ from what runs (e.g. the nodes it is placed on)
        self.source = source
        self.projects = {way: copy_project(workdir / f"inner-loop-{way}", source)
                         for way in ("dev", "web", "old")}
        self.namespace, self.old_namespace = namespace, old_namespace
        self.samples: dict[str, list[float | None]] = {"dev": [], "deploy_web": [],
                                                       "old_script": []}
        self._edits = 0  # every edit writes a value never written before
        self._dev: subprocess.Popen[str] | None = None
        self._dev_output: list[str] = []

    # -- the edit and the clock ----------------------------------------------------------------

    def edit(self, way: str) -> None:
        """Change one line of that way's Dockerfile.web: a new value every time (a new
        image)."""
        self._edits += 1
        path = self.projects[way] / "Dockerfile.web"
        lines = [line for line in path.read_text().splitlines() if not line.startswith(EDIT_LINE)]
        path.write_text("\n".join([*lines, f"{EDIT_LINE}{self._edits}"]) + "\n")

    def ready_after(self, namespace: str, action: Any) -> float:
        """Seconds from `action()` (the edit, then what the way does) to Deployment/web Ready
        on a newer template than before, seen by our own watch."""
        return ready_after(self.tools, namespace, action)

    # -- the ways ---------------------------------------------------------------------------

    def start_dev(self) -> None:
        """`paless-deploy dev` in the namespace, up to its first "watching" (its first pass
        redeploys what is there: nothing changes)."""
        self._dev = subprocess.Popen(
            self.tools.pd(self.namespace, "dev", "--no-logs", project=self.projects["dev"]),
            env=dict(self.tools.env), text=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        threading.Thread(target=self._read_dev, daemon=True).start()
        self._wait_dev("watching for changes", "dev's first pass")

    def _read_dev(self) -> None:
        assert self._dev is not None and self._dev.stderr is not None
        for line in self._dev.stderr:
            self._dev_output.append(line.rstrip())

    def _wait_dev(self, text: str, what: str, after: int = 0) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not any(text in line for line in self._dev_output[after:]):
            if self._dev is None or self._dev.poll() is not None:
                raise BenchError(f"paless-deploy dev exited before {what}:\n"
                                 + "\n".join(self._dev_output[-15:]))
            if time.monotonic() > deadline:
                raise BenchError(f"paless-deploy dev: no {what} within {READY_TIMEOUT_S:.0f}s:\n"
                                 + "\n".join(self._dev_output[-15:]))
            time.sleep(0.05)

    def _old_env(self) -> dict[str, str]:
        return {**self.tools.env, "NAMESPACE": self.old_namespace,
                "MANIFESTS": str(self.old_yaml),
                "APPS": " ".join(app_names()), "PROJECT_NAME": self.tools.env["PROJECT_NAME"],
                "REGISTRY": REGISTRY, "WAIT_TIMEOUT": "5s"}

    # -- the measurements ------------------------------------------------------------------------

    def measure(self) -> None:
        say(f"inner loop: edit to Ready of web with dev running in {self.namespace}, "
            f"{self.runs} edit(s)")
        self.start_dev()
        for i in range(self.runs):
            mark = len(self._dev_output)
            self.samples["dev"].append(self.ready_after(self.namespace,
                                                        lambda: self.edit("dev")))
            self._wait_dev("watching for changes", "the end of its rollout", after=mark)
            say(f"  dev, edit {i + 1}: {self.samples['dev'][-1]:.2f}s")
            if (self.samples["dev"][-1] or 0) > 2 * TARGET_S:  # say where the time went
                for line in self._dev_output[mark:]:
                    if "waiting" not in line:
                        say(f"    dev: {line}")
        self.stop()
        say(f"inner loop: the same with `paless-deploy web` after each edit, {self.runs} time(s)")
        for i in range(self.runs):
            self.samples["deploy_web"].append(self.ready_after(self.namespace,
                                                               self._deploy_web))
            say(f"  paless-deploy web, edit {i + 1}: {self.samples['deploy_web'][-1]:.2f}s")
        if self.quick:
            return
        say(f"inner loop: the old script + rollout restart in {self.old_namespace}, "
            f"{self.runs} time(s)")
        self.old_yaml = write_manifests(
            with_latest_images(render_objects(self.tools, self.old_namespace, self.source), app_names()),
            self.projects["old"].parent / "old-inner-loop.yaml")
        for i in range(self.runs):
            self.samples["old_script"].append(self.ready_after(self.old_namespace,
                                                               self._old_way))
            say(f"  old script + rollout restart, edit {i + 1}: "
                f"{self.samples['old_script'][-1]:.2f}s")

    def _deploy_web(self) -> None:
        self.edit("web")
        self.tools.check(self.tools.pd(self.namespace, "web", project=self.projects["web"]),
                         "paless-deploy web")

    def _old_way(self) -> None:
        self.edit("old")
        self.tools.check(["bash", str(OLD_SCRIPT)], "old script", cwd=self.projects["old"],
                         env=self._old_env())
        self.tools.check(self.tools.kubectl("rollout", "restart", "deployment/web", "-n",
                                            self.old_namespace), "kubectl rollout restart")

    def stop(self) -> None:
        if self._dev is not None and self._dev.poll() is None:
            self._dev.terminate()
            try:
                self._dev.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._dev.kill()

    # -- results ---------------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        s = self.samples
        name = "edit to Ready (web): `dev` vs `paless-deploy web`"
        rows = [compare(name, s["dev"], s["deploy_web"], "paless-deploy web", f"≤ {TARGET_S:g} s",
                        lambda m, _r: m <= TARGET_S)]
        old_name = "edit to Ready (web): `dev` vs the old script + rollout restart"
        if any(v is not None for v in s["old_script"]):
            rows.append(compare(old_name, s["dev"], s["old_script"],
                                "old script + rollout restart", f"≤ {TARGET_S:g} s",
                                lambda m, _r: m <= TARGET_S))
        elif not self.quick:  # --quick leaves the old script's way out on purpose
            rows.append(skipped(old_name, "old script + rollout restart", f"≤ {TARGET_S:g} s"))
        return rows

    def final_notes(self) -> list[str]:
        return [(
            "Edit to Ready: one line of Dockerfile.web changed (web's build context only), "
            "timed from the write to the benchmark's own watch seeing Deployment/web Ready on "
            "its new template. dev and `paless-deploy web` rebuild web alone and roll out web "
            "and the migrate Job (it runs the web image); images go through the sandbox "
            "registry to kwok nodes. The old script rebuilds and pushes every image as :latest "
            "and applies manifests that did not change, so nothing rolls out: its row adds the "
            "`kubectl rollout restart deployment/web` its users ran by hand. dev's edits come "
            "first, then `paless-deploy web`'s, then the old script's, one at a time.")]


def _rolled_out(deployment: Any) -> bool:
    status = deployment.status
    wanted = int(deployment.spec.replicas if deployment.spec.replicas is not None else 1)
    return (int(status.observed_generation or 0) >= int(deployment.metadata.generation)
            and int(status.updated_replicas or 0) == wanted
            and int(status.available_replicas or 0) == wanted
            and int(status.replicas or 0) == wanted)


def ready_after(tools: Tools, namespace: str, action: Any, name: str = "web",
                timeout_s: float = READY_TIMEOUT_S) -> float:
    """Seconds from `action()` (the edit, then what the way does) to Deployment `name` Ready
    on a newer template than before, seen by our own watch (from a list's resourceVersion,
    so nothing between the list and the action is missed)."""
    from kubernetes import client, config, watch
    from kubernetes.client.exceptions import ApiException

    apps = client.AppsV1Api(config.new_client_from_config(
        config_file=str(tools.sandbox.kubeconfig)))
    selector = f"metadata.name={name}"

    def listed() -> tuple[Any, str]:
        found = apps.list_namespaced_deployment(namespace, field_selector=selector)
        return found.items[0], str(found.metadata.resource_version if found.metadata else "")

    before, version = listed()
    generation = int(before.metadata.generation)
    seen = threading.Event()
    stream = watch.Watch()
    ready_at: list[float] = []
    deadline = time.monotonic() + timeout_s

    def done(obj: Any) -> bool:
        if int(obj.metadata.generation) > generation and _rolled_out(obj):
            ready_at.append(time.monotonic())
            seen.set()
            return True
        return False

    def follow() -> None:
        # from the list's version (an object's own may be older than etcd keeps: 410)
        rv = version
        while not seen.is_set() and time.monotonic() < deadline:
            try:
                for event in stream.stream(
                        apps.list_namespaced_deployment, namespace, field_selector=selector,
                        resource_version=rv,
                        timeout_seconds=max(1, int(deadline - time.monotonic()))):
                    if done(event["object"]):
                        stream.stop()
                        return
            except ApiException as exc:
                if exc.status != 410:
                    raise
            current, rv = listed()  # expired: start again from now
            if done(current):
                return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    started = time.monotonic()
    action()
    if not seen.wait(timeout_s):
        stream.stop()
        raise BenchError(f"Deployment/{name} in {namespace} was not Ready on a new template "
                         f"within {timeout_s:.0f}s of the edit")
    return ready_at[0] - started
