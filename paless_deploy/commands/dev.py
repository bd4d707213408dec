"""`dev`: the inner loop on a laptop. Deploy once, then watch the project: each burst of
changes is first synced into the running containers where it can be (files a COPY of the
app's image takes verbatim, into processes with a reload rule), then rebuilds the apps
whose image it touches (and the apps built FROM them), delivers them, and rolls out only
the workloads (and Jobs) running them; `k8s/` or an env file means a new render and apply.
Bursts are taken, and synced, by a thread of their own while the main thread rebuilds, so
an edit during a rollout reaches the containers at once. Logs of our pods stream
meanwhile; `--port-forward` brings web and the MinIO console to localhost. A failure is
shown and the loop waits for the next change; Ctrl-C ends it (exit 130) with the namespace
lock free and the forwards closed.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from paless_deploy.adapters.docker import context_paths
from paless_deploy.adapters.filewatch import ProjectWatch
from paless_deploy.adapters.kube import Kube, connect_run
from paless_deploy.commands.deploy import delivered, run_all, run_rollout
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.configuration.config import DEFAULT_ENV_FILES
from paless_deploy.core.errors import ClusterError, ExitCode, Interrupted, PalessError
from paless_deploy.core.images.delivery import Delivery, choose_delivery
from paless_deploy.core.images.discover import App, app_repository
from paless_deploy.core.plan.devloop import (
    GIT_LOCK,
    AppContext,
    Change,
    Coalescer,
    app_of_image,
    changed_objects,
    classify,
    forward_targets,
    is_watched,
)
from paless_deploy.core.plan.sync import container_rules
from paless_deploy.core.reporting.report import ErrorReport, Result, RunResult, scrub
from paless_deploy.stages.delivery import config_for, deliver_images, delivery_facts
from paless_deploy.stages.images import (
    app_images,
    build_images,
    plan_images,
    project_graph,
    relative_path,
)
from paless_deploy.stages.logs import LogStreamer
from paless_deploy.stages.nodes import NodeList, read_nodes
from paless_deploy.stages.portforward import PortForwards
from paless_deploy.stages.render import discovered_apps, render
from paless_deploy.stages.sync import Synced, Syncer, describe, plan_burst
from paless_deploy.ui.devview import DevView
from paless_deploy.ui.lines import say
from paless_deploy.ui.progress import make_progress

if TYPE_CHECKING:
    from paless_deploy.core.configuration.context import RunContext

IDLE_TICK_S = 1.0  # re-check (git's lock, the watcher's health) at least this often


@dataclasses.dataclass
class Iteration:
    """One pass of the loop, for the JSON document."""

    trigger: list[str]
    apps: list[str]
    render: bool
    result: RunResult = RunResult.SUCCESS  # success, failed, error, unchanged
    exit_code: ExitCode = ExitCode.OK
    duration_s: float = 0.0
    edit_to_ready_s: float | None = None
    images: list[JsonDict] = dataclasses.field(default_factory=list)
    errors: list[JsonDict] = dataclasses.field(default_factory=list)
    synced: list[JsonDict] = dataclasses.field(default_factory=list)  # what the sync did first
    edit_to_sync_s: float | None = None


@dataclasses.dataclass
class Request:
    """A rebuild the burst thread asks of the main thread (bursts merge while it works)."""

    change: Change
    first: float  # when the first edit of it was seen
    synced: list[JsonDict] = dataclasses.field(default_factory=list)
    edit_to_sync_s: float | None = None

    def merged(self, other: Request) -> Request:
        a, b = self.change, other.change
        change = Change(tuple(sorted(set(a.paths) | set(b.paths))),
                        tuple(dict.fromkeys(a.apps + b.apps)), a.render or b.render,
                        a.reload or b.reload, tuple(dict.fromkeys(a.ignored + b.ignored)))
        return Request(change, min(self.first, other.first), self.synced + other.synced,
                       self.edit_to_sync_s if self.edit_to_sync_s is not None
                       else other.edit_to_sync_s)


class DevSession:
    """The state of one `dev` run between changes."""

    def __init__(self, run_ctx: RunContext, reload: Callable[[], RunContext], *,
                 logs: bool, port_forward: bool, sync: bool = True) -> None:
        self.ctx = run_ctx
        self.reload = reload
        self.logs = logs
        self.port_forward = port_forward
        self.sync = sync
        self.view = DevView(run_ctx.console, json_output=run_ctx.json_output,
                            secrets=run_ctx.config.secret_values())
        self.root = run_ctx.config.project_dir
        self.kube: Kube | None = None
        self.delivery: Delivery | None = None
        self.apps: list[App] = []
        self.contexts: dict[str, AppContext] = {}
        self.refs: dict[str, str] = {}  # app -> the reference its workloads run
        self.applied: list[JsonDict] | None = None  # what the last apply left (None: unknown)
        self.iterations: list[Iteration] = []
        self.coalescer = Coalescer()
        self.changes = threading.Condition()
        self.watch: ProjectWatch | None = None
        self.streamer: LogStreamer | None = None
        self.forwards: PortForwards | None = None
        self.syncer: Syncer | None = None
        self.repositories: dict[str, str] = {}  # repository -> app, in every registry used
        self.state = threading.RLock()  # apps and contexts: read by both threads
        self.requests = threading.Condition()
        self.request: Request | None = None
        self.busy = False  # the main thread works on a request

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> Result:
        try:
            self.kube = connect_run(self.ctx)
            self.watch = ProjectWatch(self.root, is_watched, self._changed).start()
            self._pass(Change(paths=(), render=True), started=time.monotonic())
            self._start_streams()
            threading.Thread(target=self._bursts, name="dev-bursts", daemon=True).start()
            while True:
                request = self._next_request()
                self._pass(request.change, request.first, request)
        except KeyboardInterrupt:
            raise self._stopped() from None
        except Interrupted:
            raise self._stopped() from None
        finally:
            self._close()

    # -- bursts: taken, synced and turned into rebuild requests by a thread of their own ----

    def _bursts(self) -> None:
        while True:
            paths, first = self._next_burst()
            try:
                self._burst(paths, first)
            except PalessError as exc:  # two Dockerfiles for one app, say: fix and save
                self.view.failed(exc)
            except Exception as exc:  # noqa: BLE001 - the loop must go on; said, not hidden
                self.view.warning(f"a change could not be handled ({type(exc).__name__}: "
                                  f"{exc}); save again to retry")

    def _burst(self, paths: frozenset[str], first: float) -> None:
        change, contexts = self._classify(paths)
        if not change.anything:
            self.view.note(f"ignored: {_listed(change.ignored)} (in no app's build "
                           "context, not k8s/, not an env file)")
            return
        request = Request(change, first)
        if self.syncer is not None and change.apps and not change.render:
            request.synced = self._sync(change, contexts)
            if request.synced:
                request.edit_to_sync_s = round(time.monotonic() - first, 3)
        with self.requests:
            self.request = request if self.request is None else self.request.merged(request)
            self.requests.notify_all()

    def _sync(self, change: Change, contexts: list[AppContext]) -> list[JsonDict]:
        """Copy what can be synced into the running containers now; say why the rest waits
        for its rebuilt image."""
        assert self.syncer is not None
        with self.state:
            apps = list(self.apps)
        plan = plan_burst(self.ctx.config, apps, contexts, change.paths,
                          self.syncer.reloadable())
        for app, why in plan.why_not.items():
            self.view.event("not-synced", f"{app}: not synced ({why}); rebuilding",
                            app=app, reason=why)
        for app, why in self.syncer.waiting(change.apps, plan).items():
            self.view.event("waits", f"{app}: waits for its rebuilt image ({why})",
                            app=app, reason=why)
        if not plan.files:
            return []
        started = time.monotonic()
        done = self.syncer.sync(plan)
        self._said_synced(done, "sync", time.monotonic() - started)
        return [dataclasses.asdict(d) for d in done]

    def _said_synced(self, done: list[Synced], how: str, took: float | None = None) -> None:
        for failed in (d for d in done if d.error):
            self.view.event("sync-failed", f"sync into {failed.app} pod {failed.pod}: "
                            f"{failed.error}", **dataclasses.asdict(failed))
        if any(not d.error for d in done):
            took_text = f" in {took:.2f}s" if took is not None else ""
            self.view.event("synced" if how == "sync" else "caught-up",
                            f"{'synced' if how == 'sync' else 'caught up'}: "
                            f"{describe(done)}{took_text}; the rebuilt image follows",
                            containers=[dataclasses.asdict(d) for d in done])

    def _next_request(self) -> Request:
        with self.requests:
            self.busy = False
            while self.request is None:
                self.view.watching()
                self.requests.wait(IDLE_TICK_S)
            request, self.request = self.request, None
            self.busy = True
            return request

    def _changed(self, paths: set[str]) -> None:
        with self.changes:
            self.coalescer.add(paths, time.monotonic())
            self.changes.notify_all()

    def _next_burst(self) -> tuple[frozenset[str], float]:
        """Wait for a complete burst of changes (and for git to finish, if it works)."""
        self.view.watching()
        with self.changes:
            while True:
                if self.watch is not None and self.watch.error:
                    self.view.warning(self.watch.error)
                    self.watch.error = None
                now = time.monotonic()
                if self.coalescer.due(now) and not (self.root / GIT_LOCK).exists():
                    first = self.coalescer.first_at or now
                    return self.coalescer.take(), first
                wait = self.coalescer.wait_s(now)
                self.changes.wait(IDLE_TICK_S if wait is None else max(0.02, min(wait,
                                                                                  IDLE_TICK_S)))

    def _classify(self, paths: frozenset[str]) -> tuple[Change, list[AppContext]]:
        """What a burst calls for (the apps built FROM a changed app rebuild too), and each
        app's context before and after it (a deleted file counts)."""
        with self.state:
            before = dict(self.contexts)
            self._read_contexts(paths)
            merged = [AppContext(a.name, a.context, a.dockerfile, a.files | (
                before[a.name].files if a.name in before else frozenset()))
                for a in self.contexts.values()]
            apps = list(self.apps)
        root = self.root.resolve()
        env_files = {str(p.resolve().relative_to(root)) for p in self.ctx.config.env_files
                     if p.resolve().is_relative_to(root)} | set(DEFAULT_ENV_FILES)
        change = classify(paths, merged, env_files)
        discovered = {a.name for a in discovered_apps(self.ctx)}
        if discovered != {a.name for a in apps}:  # a Dockerfile came or went
            return dataclasses.replace(change, render=True), merged
        if change.apps:
            graph = project_graph(self.ctx.config, apps)
            derived = [d for app in change.apps for d in graph.derived(app)]
            change = dataclasses.replace(change, apps=tuple(dict.fromkeys(
                [a for a in graph.order if a in {*change.apps, *derived}])))
        return change, merged

    def _read_contexts(self, paths: frozenset[str] | None = None) -> None:
        """Each app's context as Docker receives it; with `paths`, only the contexts that
        may hold one of them are read again (under `state`: both threads read them)."""
        self.apps = discovered_apps(self.ctx)
        for app in self.apps:
            context = relative_path(app.context, self.root)
            if paths is not None and app.name in self.contexts and not any(
                    context == "" or p == context or p.startswith(context + "/") for p in paths):
                continue
            self.contexts[app.name] = AppContext(
                app.name, context, relative_path(app.dockerfile, self.root),
                frozenset(context_paths(app)))
        self.contexts = {a.name: self.contexts[a.name] for a in self.apps}

    # -- one pass ---------------------------------------------------------------------------

    def _pass(self, change: Change, started: float, request: Request | None = None) -> None:
        """Rebuild, deliver, roll out; a failure is shown and kept in the report."""
        self.ctx = dataclasses.replace(self.ctx, started_monotonic=time.monotonic(),
                                       started_at=time.time())  # --timeout counts per pass
        iteration = Iteration(list(change.paths), list(change.apps), change.render)
        if request is not None:
            iteration.synced, iteration.edit_to_sync_s = request.synced, request.edit_to_sync_s
        self.iterations.append(iteration)
        self.view.change(change)
        try:
            if change.reload:  # an env file: the configuration as it is now
                self.ctx = dataclasses.replace(self.reload(), started_monotonic=time.monotonic(),
                                               started_at=time.time())
            if change.render or self.applied is None:
                result = self._deploy_all()
            else:
                result = self._rebuild(change.apps)
        except PalessError as exc:
            if isinstance(exc, Interrupted):
                raise
            if isinstance(exc, ClusterError) and self.applied is None and not self.refs:
                raise  # the cluster never answered: nothing to develop against
            self._failed(iteration, exc)
        else:
            iteration.images = _images(result)
            iteration.errors = [dataclasses.asdict(e) for e in result.errors]
            iteration.exit_code = result.exit_code
            if result.result == RunResult.UNCHANGED:
                iteration.result = RunResult.UNCHANGED
                self.view.unchanged(change.apps)
            elif result.exit_code:
                iteration.result = result.result
                self.view.rollout_failed(result)
            else:
                if change.paths:  # the first deploy follows no edit
                    iteration.edit_to_ready_s = round(time.monotonic() - started, 3)
                self.view.ready(change.apps, time.monotonic() - self.ctx.started_monotonic,
                                iteration.edit_to_ready_s)
        iteration.duration_s = round(time.monotonic() - self.ctx.started_monotonic, 3)

    def _failed(self, iteration: Iteration, exc: PalessError) -> None:
        """A pass that raised: shown, and kept (secrets scrubbed) in the session's report."""
        self.view.failed(exc)
        iteration.result = RunResult.of_failure(exc.exit_code)
        iteration.exit_code = exc.exit_code
        report = ErrorReport.from_error(exc)
        secrets = self.ctx.config.secret_values()
        iteration.errors = [dataclasses.asdict(dataclasses.replace(
            report, message=scrub(report.message, secrets), hint=scrub(report.hint, secrets)))]
        iteration.images = _images(exc.report)

    def _decide(self, nodes: NodeList, said: bool = False) -> Delivery:
        """How images reach the nodes now (said when it changed, unless `said` already)."""
        assert self.kube is not None
        delivery = choose_delivery(delivery_facts(self.kube, self.ctx.config, nodes))
        if delivery != self.delivery and self.delivery is not None and not said:
            self.view.note(f"images reach the nodes by {delivery.method}: {delivery.reason}")
        self.delivery = delivery
        return delivery

    def _deploy_all(self) -> Result:
        """The whole overlay, as `all` without prune (first pass, a new render, or after a
        failure left the cluster in an unknown state); then the state to diff against."""
        with self.state:
            self._read_contexts()
        generation = self._generation()
        self.applied = None  # unknown until this apply went through
        result = run_all(self.ctx, no_prune=True)
        assert self.kube is not None
        delivery = self._decide(read_nodes(self.kube), said=True)  # the deploy said it
        self.refs = {r.app: delivery.pulled_ref(r.ref) for r in result.images}
        self.applied = self._render(delivery) if result.exit_code == 0 else None
        self._rolled_out(self.refs, generation, result)
        return result

    def _render(self, delivery: Delivery) -> list[JsonDict]:
        return delivered(render(self.ctx, self.refs), delivery, self.refs).objects

    def _rebuild(self, names: tuple[str, ...]) -> Result:
        """Build and deliver `names`, then apply only the objects that changed."""
        assert self.kube is not None
        nodes = read_nodes(self.kube)
        delivery = self._decide(nodes)
        config = config_for(self.ctx.config, delivery)
        with self.state:
            apps = [a for a in self.apps if a.name in names]
        generation = self._generation()  # the files as they are now: what the tags cover
        plans = plan_images(config, apps)[0]
        planned = {p.app.name: delivery.pulled_ref(p.ref) for p in plans}
        if self.syncer is not None:  # a pod of these images owes nothing synced before
            for ref in planned.values():
                self.syncer.covers(ref, generation)
        if all(self.refs.get(app) == ref for app, ref in planned.items()):
            unchanged = Result(command="dev", result=RunResult.UNCHANGED)
            self._rolled_out(planned, generation, unchanged)
            return unchanged
        images = build_images(config, apps, push=delivery.pushes, plans=plans,
                              progress=make_progress(self.ctx.console))
        images = deliver_images(config, delivery, images, list(nodes),
                                self.view.note)
        self.refs.update({r.app: delivery.pulled_ref(r.ref) for r in images})
        rendered = self._render(delivery)
        changed = changed_objects(rendered, self.applied)
        self.applied = None  # unknown until this rollout went through
        result = run_rollout(self.ctx, self.kube, rendered, changed, names, images, nodes)
        # a failure that left objects unapplied leaves the cluster unknown: apply all next
        self.applied = rendered if not result.extra.get("not_applied") else None
        self._rolled_out(planned, generation, result)
        return result

    def _generation(self) -> int:
        return self.syncer.ledger.generation if self.syncer is not None else 0

    def _rolled_out(self, refs: dict[str, str], generation: int, result: Result) -> None:
        """Tell the syncer which synced changes the images now hold (all it synced before
        they were planned), and, once they run, what no container is owed any more; and
        the reload rules of what runs now."""
        if self.syncer is None:
            return
        for app, ref in refs.items():
            if result.exit_code == 0:
                self.syncer.settled(app, ref, generation)
            else:
                self.syncer.covers(ref, generation)
        if self.applied is not None:
            with self.state:
                apps = list(self.apps)
            images = app_images(self.ctx.config, apps)
            self.syncer.rules = container_rules(
                self.applied, images, lambda image: app_of_image(image, self.repositories))

    # -- logs and port-forwards -----------------------------------------------------------

    def _start_streams(self) -> None:
        """Logs and port-forwards; a tree that cannot be rendered yet forwards nothing."""
        try:
            self._start_streams_now()
        except PalessError as exc:
            self.view.warning(f"no log stream or port-forward: {exc.message}")

    def _start_streams_now(self) -> None:
        assert self.kube is not None
        config = self.ctx.config
        delivery = self.delivery or self._decide(read_nodes(self.kube))
        namespace = config.namespace
        registries = {config.registry, config_for(config, delivery).registry,
                      delivery.image_registry} - {""}
        self.repositories = {f"{r}/{app_repository(config.project_name, a.name)}": a.name
                             for r in registries for a in self.apps}
        if self.sync:
            self.syncer = Syncer(self.kube, namespace, self.root, self.repositories,
                                 lambda done, how: self._said_synced([done], how)).start()
            self._rolled_out(self.refs, 0, Result(command="dev"))
        if self.logs:
            self.streamer = LogStreamer(self.kube, namespace, self.repositories,
                                        self.view.log_line, config.secret_values()).start()
        if self.port_forward:
            objects = self.applied
            if objects is None:
                plans = plan_images(config_for(config, delivery), self.apps)[0]
                refs = {**{p.app.name: p.ref for p in plans}, **self.refs}
                objects = render(self.ctx, refs).objects
            targets = forward_targets(objects)
            if not targets:
                self.view.warning("--port-forward: the manifests have no Service of web or "
                                  "of the MinIO console to forward")
                return
            self.forwards = PortForwards(self.kube, namespace, targets, self.view.note,
                                         self.view.forward_table).start()

    def _close(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        if self.syncer is not None:
            self.syncer.stop()
        if self.streamer is not None:
            self.streamer.stop()
        if self.forwards is not None:
            self.forwards.stop()

    def _stopped(self) -> Interrupted:
        done = [i for i in self.iterations if i.trigger]
        result = Result(command="dev", namespace=self.ctx.config.namespace,
                        overlay=self.ctx.config.overlay,
                        extra={"iterations": [dataclasses.asdict(i) for i in self.iterations],
                               "delivery": ({"method": self.delivery.method,
                                             "reason": self.delivery.reason}
                                            if self.delivery else None),
                               "forwards": [{"name": f.target.name, "url": f.url}
                                            for f in (self.forwards.forwards
                                                      if self.forwards else [])]})
        closed = " and the port-forwards closed" if self.forwards else ""
        stopped = Interrupted(
            f"dev stopped (Ctrl-C) after {len(done)} change(s); the namespace lock is free"
            f"{closed}.", "Run `paless-deploy dev` again to go on; what runs stays deployed "
            "(`paless-deploy status`).")
        stopped.report = result
        return stopped


def _images(result: Result | None) -> list[JsonDict]:
    if result is None:
        return []
    return [dataclasses.asdict(i) if dataclasses.is_dataclass(i) and not isinstance(i, type)
            else dict(i) for i in result.images]


def _listed(paths: tuple[str, ...]) -> str:
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def run_dev(run_ctx: RunContext, reload: Callable[[], RunContext], *, logs: bool = True,
            port_forward: bool = False, sync: bool = True) -> Result:
    """Run the loop until Ctrl-C (raised as Interrupted, exit 130, with the session's
    report); a cluster that never answers is exit 4. `sync=False` (`--no-sync`): every
    change waits for its rebuilt image."""
    if run_ctx.json_output:
        say("dev: --output json prints one JSON document when the session ends (Ctrl-C), "
            "and one JSON line per event on stderr (`{\"event\": ...}`), beside the "
            "progress and the logs.", err=True)
    return DevSession(run_ctx, reload, logs=logs, port_forward=port_forward, sync=sync).run()

