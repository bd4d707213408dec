"""The apply half of `all`, `deploy` and `dev`: the namespace phase, the lock, the
definitions (CRDs, the tree's Namespaces) applied and awaited, the server-side dry run of
the rest, the rollout of the deploy graph, and what a failure or success leaves behind
(the failure's message, a rollback, the prune).

Whatever the exit path, `DeployRun.result` keeps what was done: each phase label's
objects with when they were applied and became ready, and what was not applied.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from paless_deploy.adapters.host import utc_now
from paless_deploy.adapters.kube import ApiError, Kube
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.configuration.config import Config
from paless_deploy.core.diagnosis.findings import Finding, Policy
from paless_deploy.core.errors import DeployFailed, PalessError
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.kinds import by_kind
from paless_deploy.core.manifests.objects import name_of
from paless_deploy.core.manifests.render import hpa_targets
from paless_deploy.core.plan.graph import DeployGraph
from paless_deploy.core.plan.lease import LEASE_NAME, LeaseState, lock_timeout, waiting_message
from paless_deploy.core.plan.references import namespace_in
from paless_deploy.core.reporting.report import ObjectAction, PhaseReport, Result, scrub
from paless_deploy.stages.apply import (
    Applied,
    LiveObjects,
    apply_object,
    nudge_claim,
    rollback_object,
    wait_volume_available,
)
from paless_deploy.stages.dataguard import DataGuard, DataOptions
from paless_deploy.stages.lock import lock_for
from paless_deploy.stages.namespaces import ensure_namespace
from paless_deploy.stages.nodes import NodeList, read_nodes
from paless_deploy.stages.preflight import check_writable
from paless_deploy.stages.prune import find_prunable, prune, tree_keys
from paless_deploy.stages.rollout import Rollout, members_of, now_iso, refs
from paless_deploy.stages.validate import dry_run_all
from paless_deploy.stages.wait import PhaseOutcome, PhaseWaiter, deadline_error
from paless_deploy.stages.warmup import clear_warm_up, start_warm_up
from paless_deploy.stages.watcher import NamespaceWatcher
from paless_deploy.ui.view import DeployView, make_view

if TYPE_CHECKING:
    from paless_deploy.core.configuration.context import RunContext

NAMESPACE_PHASE = "namespace"
LOG_LINES = 20


NO_DATA_OPTIONS = DataOptions()


@dataclass(frozen=True)
class DeployOptions:
    """What `all` and `deploy` are asked to do besides deploying."""

    only_apps: tuple[str, ...] = ()  # `deploy APP...`: build these, keep the others' images
    prune: bool = True
    force_conflicts: bool = False
    rollback: bool = False
    tolerate: bool = False
    strict: bool = False  # lint warnings are exit 2, before anything is built
    images_from: Path | None = None  # deploy the images a report names; build nothing
    data: DataOptions = NO_DATA_OPTIONS  # --seed-from, --rollback-data, --allow-reclaim-delete
    warm_up: bool = False  # pull later objects' images at the start (core.plan.warmup)


@dataclass(frozen=True)
class ClusterFacts:
    """What the rules need to know about the cluster: StorageClasses (WaitForFirstConsumer)
    and nodes (registry reach, capacity, whether claims can be shared)."""

    storage_classes: dict[str, JsonDict]
    nodes: NodeList


def cluster_facts(kube: Kube, nodes: NodeList | None = None) -> ClusterFacts:
    """Either list may be unreadable for a namespace-scoped user, which only costs hints;
    the nodes are listed here unless given (stages.nodes)."""
    classes: dict[str, JsonDict] = {}
    try:
        for sc in kube.list(by_kind("StorageClass"))[0]:
            classes[sc["metadata"]["name"]] = {"volumeBindingMode": sc.get("volumeBindingMode"),
                                               "provisioner": sc.get("provisioner")}
    except ApiError:
        pass
    return ClusterFacts(classes, nodes if nodes is not None else read_nodes(kube))


class DeployRun:
    """State of one deploy: the result document being built, the view, the rollout."""

    def __init__(self, run_ctx: RunContext, command: str) -> None:
        self.ctx = run_ctx
        self.config: Config = run_ctx.config
        self.namespace = run_ctx.config.namespace
        self.result = Result(command=command, namespace=self.namespace,
                             overlay=self.config.overlay)
        self.view: DeployView = make_view(run_ctx.console)
        self.stage = ""  # "namespace", "prune": a step outside the rollout
        self.rollout: Rollout | None = None
        self.lock_held = False  # the namespace lock was taken (an interrupt releases it)
        self.app_refs: dict[str, str] | None = None  # app -> its image this run deploys
        self.guard: DataGuard | None = None  # the data side of all/deploy (not dev's rollouts)
        self.applied: list[Applied] = []
        self.secrets = self.config.secret_values()

    @property
    def current_phase(self) -> str:
        """The phase being applied now (the earliest label in progress), "" before."""
        if self.stage:
            return self.stage
        return self.rollout.in_progress() if self.rollout is not None else ""

    def warn(self, text: str) -> None:
        self.view.warning(text)
        self.result.warnings.append(text)

    def show(self, findings: Sequence[Finding]) -> list[Finding]:
        """Show the findings, scrubbed of secret values (they quote container messages and
        logs); the scrubbed ones are what the report keeps."""
        shown = [f.scrubbed(self.secrets) for f in findings]
        for f in shown:
            self.view.finding(f)
        return shown

    def fail(self, error: PalessError, findings: Sequence[Finding] = ()) -> Result:
        """The result of a deploy that ran and failed (findings first, then the error)."""
        self.result.errors.extend(f.to_error_report() for f in findings)
        return self.result.fail_with(error)

    def not_applied(self, graph: DeployGraph, indices: Sequence[int]) -> None:
        """What a failure left unapplied, for the report (JUnit lists it as skipped)."""
        self.result.extra["not_applied"] = [
            {"phase": graph.nodes[i].phase, "kind": str(graph.nodes[i].obj.get("kind", "")),
             "name": name_of(graph.nodes[i].obj)} for i in indices]


def lock_waiting(run: DeployRun) -> Callable[[LeaseState], None]:
    """Said once, at once, when another deploy holds the namespace lock; then a spinner."""
    def say(state: LeaseState) -> None:
        run.view.info(waiting_message(run.namespace, state, utc_now(),
                                      lock_timeout(run.config)))
        run.view.waiting_on(f"Lease/{LEASE_NAME}", "another deploy holds it")
    return say


def apply_under_lock(run: DeployRun, kube: Kube, graph: DeployGraph,
                     options: DeployOptions, facts: ClusterFacts,
                     namespace_there: bool) -> Result:
    """The namespace phase; then, under the namespace lock, the definitions (applied and
    awaited after their own dry run), the dry run of everything else, the rollout and the
    prune."""
    ctx = run.ctx
    with run.view:
        run.stage = NAMESPACE_PHASE
        started_iso, started = now_iso(), time.monotonic()
        ns_report = ensure_namespace(kube, run.config,
                                     timeout_s=max(1.0, ctx.remaining_s(time.monotonic())),
                                     say=run.view.info)
        namespace_phase = PhaseReport(NAMESPACE_PHASE, started_iso,
                                      round(time.monotonic() - started, 3), [ns_report])
        run.result.phases.append(namespace_phase)
        if not namespace_there:
            check_writable(kube, run.namespace)
        with lock_for(kube, ctx, run.result.command, on_wait=lock_waiting(run)):
            run.lock_held = True
            run.view.waiting_done()
            run.stage = ""
            created = ns_report.action == ObjectAction.CREATED
            if run.guard is not None:  # a sleeping preview wakes before anything is applied
                run.guard.after_lock(created)
            return _roll_out(run, kube, graph, options, facts,
                             partial(_validate, run, kube, graph, options, created),
                             namespace_phase)


def _validate(run: DeployRun, kube: Kube, graph: DeployGraph, options: DeployOptions,
              namespace_created: bool, members: Sequence[int], applied_before: Sequence[str],
              listed: LiveObjects) -> None:
    """The server-side dry run of `members` (what already holds everything we would apply
    is neither dry-run nor applied: a no-op redeploy is one LIST per kind). A refusal
    says what was applied before it, and how to remove it."""
    objects = [graph.nodes[i].obj for i in members]
    try:
        dry_run_all(kube, objects, run.namespace, force_conflicts=options.force_conflicts,
                    unchanged=partial(listed.unchanged, kube), tree_crds=_crd_kinds(graph),
                    applied_before=applied_before)
    except PalessError as exc:
        if namespace_created or applied_before:
            what = (["the namespace itself, empty"] if namespace_created else []) + list(
                applied_before)
            exc.message += (f" (Only {', '.join(what)} {'was' if len(what) == 1 else 'were'} "
                            f"applied; `paless-deploy -n {run.namespace} destroy --yes` "
                            "removes it.)")
        raise


def _crd_kinds(graph: DeployGraph) -> dict[tuple[str, str], str]:
    """(group, kind) -> the CRD of the tree that defines it."""
    out = {}
    for node in graph.nodes:
        if node.obj.get("kind") == "CustomResourceDefinition":
            spec = node.obj.get("spec") or {}
            out[(str(spec.get("group")), str((spec.get("names") or {}).get("kind")))] = node.ref
    return out


def _roll_out(run: DeployRun, kube: Kube, graph: DeployGraph, options: DeployOptions,
              facts: ClusterFacts,
              validate: Callable[[Sequence[int], Sequence[str], LiveObjects], None] | None,
              namespace_phase: PhaseReport | None,
              stages: Sequence[Sequence[int]] | None = None) -> Result:
    """Each stage of objects (by default the definitions, then the rest), dry-run first
    when `validate` is given, then rolled out; then the failure's message, or the prune
    when asked."""
    stages = stages or [members_of(graph, True), members_of(graph, False)]
    watcher = NamespaceWatcher(kube, run.namespace).start()
    applier = _Applier(kube, options, hpa_targets([n.obj for n in graph.nodes]), run, graph)
    rollout = run.rollout = _rollout(run, kube, graph, watcher, applier, options, facts)
    run.view.rollout_started(sum(len(s) for s in stages))
    before = [namespace_phase] if namespace_phase is not None else []
    warnings: list[str] = []
    warming: list[str] = []
    try:
        done: list[int] = []
        for members in [s for s in stages if s]:
            applier.listed = LiveObjects(kube, [graph.nodes[i].obj for i in members])
            if validate is not None:
                validate(members, refs(graph, done), applier.listed)
            if options.warm_up and not warming:
                warming = _warm_up(run, kube, graph, members, facts)
            outcome = rollout.run(members, scope=[i for s in stages for i in s])
            done += members
            warnings += outcome.warnings
            if outcome.failed or outcome.timed_out:
                run.not_applied(graph, [i for s in stages for i in s
                                        if rollout.runs[i].applied is None])
                return _rollout_failed(run, kube, graph, rollout, outcome, options.rollback)
    finally:
        run.result.phases = [*before, *rollout.phase_reports()]
        run.view.rollout_done()
        watcher.stop()
        if warming:
            clear_warm_up(kube, run.namespace)
    for warning in warnings:
        run.warn(warning)
    if options.prune:
        _prune(run, kube, graph)
    return run.result


def _warm_up(run: DeployRun, kube: Kube, graph: DeployGraph, members: Sequence[int],
             facts: ClusterFacts) -> list[str]:
    """The warm-up pods of this stage (stages.warmup), said in one line when any."""
    made = start_warm_up(kube, run.namespace, graph, members, facts.nodes.items)
    if made:
        run.view.info(f"pulling the images of the objects that wait ahead of them: "
                      f"{', '.join(f'Pod/{name}' for name in made)}")
    return made


class _Applier:
    """Applies one object of the rollout: server-side apply with the run's options, the
    listing taken before the dry run (unchanged objects send nothing), a new volume
    awaited until the PV controller has seen it."""

    def __init__(self, kube: Kube, options: DeployOptions,
                 autoscalers: Mapping[tuple[str, str], str], run: DeployRun,
                 graph: DeployGraph) -> None:
        self.kube, self.options, self.autoscalers, self.run = kube, options, autoscalers, run
        self.listed: LiveObjects | None = None
        # the data guard's hook runs before the objects it asks for (the migrate Job, which
        # the graph applies only once the database it addresses is ready: a seed, a
        # snapshot before the migration), one at a time
        self.groups = {phase: [graph.nodes[i].obj for i in members]
                       for phase, members in graph.groups()}
        self.phase_of = {id(node.obj): node.phase for node in graph.nodes}
        self.hook_lock = threading.Lock()

    def _before(self, obj: JsonDict) -> None:
        guard, phase = self.run.guard, self.phase_of.get(id(obj))
        if guard is None or phase is None or not guard.wants(obj, phase):
            return
        with self.hook_lock:
            guard.before_object(obj, phase, self.groups.get(phase, []))

    def __call__(self, obj: JsonDict) -> Applied:
        self._before(obj)
        applied = apply_object(self.kube, obj, force_conflicts=self.options.force_conflicts,
                               autoscaler=self.autoscalers.get((obj["kind"], name_of(obj))),
                               listed=self.listed)
        self.run.applied.append(applied)
        wait_volume_available(self.kube, applied)
        return applied


def _rollout(run: DeployRun, kube: Kube, graph: DeployGraph, watcher: NamespaceWatcher,
             applier: _Applier, options: DeployOptions, facts: ClusterFacts) -> Rollout:
    policy = Policy(tolerate_all=options.tolerate, registry=run.config.registry,
                    app_images=None if run.app_refs is None else tuple(
                        (ref, app) for app, ref in run.app_refs.items())).with_nodes(facts.nodes)

    def fetch_logs(pod: str, container: str) -> str | None:
        """The crashed instance's last lines, else (its file gone: the kubelet was replacing
        it) the current instance's, which crashed the same way or is about to."""
        for previous in (True, False):
            try:
                text = kube.logs(run.namespace, pod, container, previous=previous,
                                 tail_lines=LOG_LINES)
            except Exception:  # noqa: BLE001, S112 - logs are evidence, never a reason to fail
                continue
            if text:
                return scrub(text, run.secrets)
        return None

    now = time.monotonic()
    waiter = PhaseWaiter(watcher, [], deadline=now + run.ctx.remaining_s(now),
                         progress_deadline_s=run.ctx.progress_deadline_s, policy=policy,
                         storage_classes=facts.storage_classes,
                         on_update=run.view.target_update, fetch_logs=fetch_logs,
                         nudge_claim=lambda name: nudge_claim(kube, run.namespace, name))
    return Rollout(kube, graph, waiter, applier,
                   partial(_should_wait, only_apps=options.only_apps), run.view,
                   run.namespace)


def _should_wait(a: Applied, only_apps: Sequence[str]) -> bool:
    """`deploy APP`: wait for the apps' workloads and whatever this apply changed."""
    if not only_apps:
        return True
    component = ((a.live.get("metadata") or {}).get("labels") or {}).get(labels.COMPONENT)
    return component in only_apps or a.action != ObjectAction.UNCHANGED


def _rollout_failed(run: DeployRun, kube: Kube, graph: DeployGraph, rollout: Rollout,
                    outcome: PhaseOutcome, rollback: bool) -> Result:
    findings = run.show(outcome.findings)
    stuck = rollout.failed() or rollout.waiting()
    phase = graph.nodes[stuck[0]].phase if stuck else rollout.in_progress() or "apply"
    if outcome.timed_out:
        err = deadline_error(phase, rollout.waiter, outcome, run.namespace,
                             run.ctx.progress_deadline_s)
        outside = rollout.waiting_outside()
        if outside:
            err.message += " | outside the namespace: " + ", ".join(outside)
        err.message = scrub(err.message, run.secrets)
    else:
        failed = refs(graph, rollout.failed())
        fatal = [f for f in findings if f.fatal]
        first = fatal[0] if fatal else None
        what = ", ".join(failed) or (first.resource if first else phase)
        err = DeployFailed(
            f"Phase {phase} failed: {what}" + (f": {first.message}" if first else ""),
            (first.hint if first else "See the findings above.")
            + " What does not wait for it was applied and is ready; what waits for it was "
            "not applied (`paless-deploy plan` shows what waits for what).",
            code="phase-failed")
    rolled: list[str] = []
    if rollback or (run.guard is not None and run.guard.rolls_back_data):
        rolled = rollback_changed(kube, run)
        run.warn(("Rolled back: " + ", ".join(rolled)) if rolled else "Nothing to roll back.")
        run.result.extra["rolled_back"] = rolled
    if run.guard is not None:
        run.guard.on_failure(err, rolled)
    run.view.info(f"error: {err.message} {err.hint}")
    return run.fail(err, findings)


def rollback_changed(kube: Kube, run: DeployRun) -> list[str]:
    """Deployments and StatefulSets this run changed go back to their previous template."""
    rolled = []
    for a in run.applied:
        if a.kind in ("Deployment", "StatefulSet") and a.action == ObjectAction.CONFIGURED and a.previous:
            try:
                rollback_object(kube, a)
            except PalessError as exc:
                run.warn(f"Could not roll back {a.ref}: {exc.message}")
                continue
            rolled.append(a.ref)
    return rolled


def _prune(run: DeployRun, kube: Kube, graph: DeployGraph) -> None:
    run.stage = "prune"
    started_iso, started = now_iso(), time.monotonic()
    found = find_prunable(kube, run.namespace, tree_keys([n.obj for n in graph.nodes]))
    reports = prune(kube, found, dry_run=False)
    for r in reports:
        run.view.info(f"pruned {r.kind}/{r.name}" + (f" in {r.namespace}" if r.namespace
                                                     and r.namespace != run.namespace else ""))
    run.result.phases.append(PhaseReport("prune", started_iso,
                                         round(time.monotonic() - started, 3), list(reports)))
    run.stage = ""


def roll_out_only(run: DeployRun, kube: Kube, graph: DeployGraph, members: Sequence[int],
                  options: DeployOptions, facts: ClusterFacts) -> Result:
    """`dev`: apply and await only `members` of the graph (what a rebuild changed), with
    no dry run and no prune; what they wait for outside them is there already."""
    return _roll_out(run, kube, graph, options, facts, None, None, [members])


def object_indices(graph: DeployGraph, objects: Sequence[JsonDict]) -> list[int]:
    """The graph's indices of these rendered objects (by kind, namespace and name)."""
    wanted = {(o.get("kind"), namespace_in(o), name_of(o)) for o in objects}
    return [i for i, n in enumerate(graph.nodes)
            if (n.obj.get("kind"), namespace_in(n.obj), name_of(n.obj)) in wanted]
