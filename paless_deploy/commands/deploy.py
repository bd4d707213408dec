"""`all` and `deploy APP...`: images, render, preflight, then apply and wait phase by phase.

The two differ only in which images they build, what they wait for and whether they
prune. Whatever the exit path (failure, error, interrupt), the result document keeps
what was done: images built or pushed, phases applied, the phase that was cut.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import ApiError, Kube, cluster_errors, connect, with_retries
from paless_deploy.core import labels
from paless_deploy.core.config import Config
from paless_deploy.core.diagnosis.findings import Finding, Policy
from paless_deploy.core.diagnosis.lint import manifest_warnings
from paless_deploy.core.discover import App, select_apps
from paless_deploy.core.errors import ConfigError, DeployFailed, Interrupted, PalessError
from paless_deploy.core.imageref import in_repository
from paless_deploy.core.kinds import by_kind, object_key
from paless_deploy.core.lease import LeaseState, ago, utc_now
from paless_deploy.core.plan import Phase, plan_phases
from paless_deploy.core.podspec import pod_containers
from paless_deploy.core.report import ErrorReport, ObjectReport, PhaseReport, Result, scrub
from paless_deploy.stages.apply import (
    CONFIGURED,
    Applied,
    LiveObjects,
    apply_object,
    rollback_object,
    wait_volume_available,
)
from paless_deploy.stages.images import build_images, plan_images
from paless_deploy.stages.lock import lock_for
from paless_deploy.stages.namespaces import ensure_namespace, namespace_exists
from paless_deploy.stages.preflight import check_writable, preflight
from paless_deploy.stages.prune import find_prunable, prune
from paless_deploy.stages.render import discovered_apps, render
from paless_deploy.stages.wait import PhaseOutcome, PhaseWaiter, deadline_error
from paless_deploy.stages.watcher import NamespaceWatcher
from paless_deploy.ui.progress import make_progress
from paless_deploy.ui.view import DeployView, make_view

if TYPE_CHECKING:
    from paless_deploy.core.context import RunContext

NAMESPACE_PHASE = "namespace"
APPLY_PARALLELISM = 8
LOG_LINES = 20


@dataclass(frozen=True)
class DeployOptions:
    """What `all` and `deploy` are asked to do besides deploying."""

    only_apps: tuple[str, ...] = ()  # `deploy APP...`: build these, keep the others' images
    prune: bool = True
    force_conflicts: bool = False
    rollback: bool = False
    tolerate: bool = False


class _Run:
    """State of one deploy: the result document being built, the view, the cluster."""

    def __init__(self, run_ctx: RunContext, command: str) -> None:
        self.ctx = run_ctx
        self.config: Config = run_ctx.config
        self.namespace = run_ctx.config.namespace
        self.result = Result(command=command, namespace=self.namespace,
                             overlay=self.config.overlay)
        self.view: DeployView = make_view(run_ctx.console)
        self.current_phase = ""
        self.applied: list[Applied] = []

    def warn(self, text: str) -> None:
        self.view.warning(text)
        self.result.warnings.append(text)

    def fail(self, error: PalessError, findings: Sequence[Finding] = ()) -> Result:
        """The result of a deploy that ran and failed (findings first, then the error)."""
        self.result.errors.extend(f.to_error_report() for f in findings)
        self.result.result = "failed" if error.exit_code == 1 else "error"
        self.result.exit_code = error.exit_code
        self.result.errors.append(ErrorReport.from_error(error))
        return self.result


def run_all(run_ctx: RunContext, no_prune: bool = False, force_conflicts: bool = False,
            rollback_on_failure: bool = False, tolerate_failures: bool = False) -> Result:
    """Build and push every app, apply the whole overlay in phases, wait, prune."""
    return _deploy(run_ctx, "all", DeployOptions(
        prune=not no_prune, force_conflicts=force_conflicts, rollback=rollback_on_failure,
        tolerate=tolerate_failures))


def run_deploy(run_ctx: RunContext, apps: Sequence[str] = (), force_conflicts: bool = False,
               rollback_on_failure: bool = False, tolerate_failures: bool = False) -> Result:
    """Build and push APPS; the others keep their deployed images; no prune."""
    return _deploy(run_ctx, "deploy", DeployOptions(
        only_apps=tuple(apps), prune=False, force_conflicts=force_conflicts,
        rollback=rollback_on_failure, tolerate=tolerate_failures))


def _deploy(run_ctx: RunContext, command: str, options: DeployOptions) -> Result:
    run = _Run(run_ctx, command)
    try:
        result = _run_pipeline(run, options)
    except KeyboardInterrupt:
        done = [p.name for p in run.result.phases]
        cut = run.current_phase or "(before apply)"
        print(f"\nInterrupted during phase {cut}; phases done: {', '.join(done) or 'none'}. "
              "The namespace lock is released; re-run to finish.", file=sys.stderr)
        run.result.extra["interrupted_phase"] = run.current_phase or None
        raise Interrupted(f"Interrupted during phase {cut}.",
                          "Nothing more was done; run the command again to continue where it "
                          "stopped.", resource=cut).with_report(run.result) from None
    except PalessError as exc:
        raise exc.with_report(run.result) from None
    _finish(run_ctx, result)
    return result


def _run_pipeline(run: _Run, options: DeployOptions) -> Result:
    ctx = run.ctx
    kube = connect(ctx.kubeconfig, ctx.context)
    apps = discovered_apps(ctx)
    to_build = select_apps(ctx.config.project_dir, options.only_apps) if options.only_apps \
        else apps
    refs: dict[str, str] = {}
    if options.only_apps:
        others = [a.name for a in apps if a.name not in options.only_apps]
        refs.update(deployed_app_refs(kube, run.namespace, run.config, others))
    # Tags are content hashes: known before building, so a bad overlay, variable or
    # phase annotation fails in a second, before any image is built or pushed.
    plans, _ = plan_images(run.config, to_build)
    refs.update({p.app.name: p.ref for p in plans})
    objects = render(ctx, _refs_for_render(run.config, apps, refs))
    phases = plan_phases(objects)
    images = build_images(run.config, to_build, push=True, progress=make_progress(ctx.console),
                          plans=plans)
    run.result.images = images
    built = {r.app: r.ref for r in images}
    if any(refs.get(app) != ref for app, ref in built.items()):
        refs.update(built)  # what was really pushed
        objects = render(ctx, _refs_for_render(run.config, apps, refs))
        phases = plan_phases(objects)

    namespace_there = namespace_exists(kube, run.namespace)
    if namespace_there:
        check_writable(kube, run.namespace)
    findings = preflight(kube, run.config, objects, refs)
    if findings:
        for f in findings:
            run.view.finding(f)
        err = DeployFailed(f"Preflight found {len(findings)} problem(s); nothing was applied.",
                           "Fix the references or images named above, then deploy again.",
                           code="preflight")
        return run.fail(err, findings)
    for warning in manifest_warnings(objects):
        run.warn(warning)
    with run.view:
        run.current_phase = NAMESPACE_PHASE
        started_iso, started = _now_iso(), time.monotonic()
        ns_report = ensure_namespace(kube, run.config, timeout_s=max(1.0, ctx.remaining_s()),
                                     say=run.view.info)
        run.result.phases.append(PhaseReport(NAMESPACE_PHASE, started_iso,
                                             round(time.monotonic() - started, 3), [ns_report]))
        if not namespace_there:
            check_writable(kube, run.namespace)
        with lock_for(kube, ctx, run.result.command, on_wait=_lock_waiting(run)):
            return _apply_phases(run, kube, phases, objects, options)


def _lock_waiting(run: _Run) -> Callable[[LeaseState], None]:
    """Said once, at once, when another deploy holds the namespace lock."""
    def say(state: LeaseState) -> None:
        run.view.info(f"Waiting for the lock of namespace {run.namespace}: held by "
                      f"{state.holder} since {ago(state.acquired_at, utc_now())}.")
    return say


def deployed_app_refs(kube: Kube, namespace: str, config: Config,
                      apps: Sequence[str]) -> dict[str, str]:
    """The image reference each app currently runs in the namespace (read from workloads)."""
    found: dict[str, str] = {}
    with cluster_errors(kube, "reading the deployed images", namespace):
        items = [item for kind in ("Deployment", "StatefulSet", "Job")
                 for item in with_retries(partial(kube.list, by_kind(kind), namespace))[0]]
    for item in items:
        for c in pod_containers(item):
            image = str(c.get("image", ""))
            for app in apps:
                if in_repository(image, config.registry, f"{config.project_name}-{app}"):
                    found.setdefault(app, image)
    return found


def _refs_for_render(config: Config, apps: list[App], refs: dict[str, str]) -> dict[str, str]:
    """Apps without a deployed image (never deployed): exit 2 pointing at `all`."""
    missing = [a.name for a in apps if a.name not in refs]
    if missing:
        raise ConfigError(
            f"App(s) {', '.join(missing)} have never been deployed to namespace "
            f"{config.namespace}, so there is no image to keep for them.",
            "Run `paless-deploy all` first, or name them too: `paless-deploy deploy "
            + " ".join(a.name for a in apps) + "`.", code="never-deployed")
    return refs


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _apply_phases(run: _Run, kube: Kube, phases: list[Phase], objects: list[dict],
                  options: DeployOptions) -> Result:
    deadline = time.monotonic() + run.ctx.remaining_s()
    storage_classes, nodes = _cluster_facts(kube)
    policy = Policy(tolerate_all=options.tolerate, registry=run.config.registry).with_nodes(nodes)
    watcher = NamespaceWatcher(kube, run.namespace).start()
    try:
        for phase in phases:
            if phase.name == NAMESPACE_PHASE:
                continue
            run.current_phase = phase.name
            started_iso, started = _now_iso(), time.monotonic()
            run.view.phase_started(phase.name, len(phase.objects))
            applied: list[Applied] = []
            reports: list[ObjectReport] = []
            # the phase is in the report from its first apply, so a failure keeps it
            run.result.phases.append(PhaseReport(phase.name, started_iso, 0.0, reports))
            listed = LiveObjects(kube, list(phase.objects))
            for group in _apply_groups(phase.objects):
                # objects of one group do not depend on each other: apply them at once
                with ThreadPoolExecutor(max_workers=APPLY_PARALLELISM) as pool:
                    results = list(pool.map(
                        lambda o, listed=listed: apply_object(
                            kube, o, force_conflicts=options.force_conflicts, listed=listed),
                        group))
                for a in results:
                    applied.append(a)
                    run.applied.append(a)
                    run.view.applied(a)
                    reports.append(ObjectReport(a.kind, a.name, a.action, None, ""))
                    wait_volume_available(kube, a)
            waited = [a for a in applied if _should_wait(a, options.only_apps)]
            outcome, waiter = _wait(run, watcher, waited, deadline, storage_classes, policy)
            verdicts = {t.ref: t.verdict for t in outcome.targets}
            reports[:] = [ObjectReport(a.kind, a.name, a.action,
                                       verdicts[a.ref].ready if a.ref in verdicts else True,
                                       verdicts[a.ref].reason if a.ref in verdicts else "")
                          for a in applied]
            run.result.phases[-1] = PhaseReport(phase.name, started_iso,
                                                round(time.monotonic() - started, 3), reports)
            for w in outcome.warnings:
                run.warn(w)
            ok = not outcome.failed and not outcome.timed_out
            run.view.phase_done(phase.name, ok, "")
            if not ok:
                return _phase_failed(run, kube, phase.name, outcome, waiter, options.rollback)
        if options.prune:
            _prune(run, kube, objects)
        run.current_phase = ""
        return run.result
    finally:
        watcher.stop()


def _apply_groups(objects: Sequence[dict]) -> list[list[dict]]:
    """StorageClasses, then volumes, then everything else (claims must find their volume)."""
    rank = {"StorageClass": 0, "PersistentVolume": 1}
    groups: dict[int, list[dict]] = {}
    for obj in objects:
        groups.setdefault(rank.get(obj.get("kind", ""), 2), []).append(obj)
    return [groups[k] for k in sorted(groups)]


def _should_wait(a: Applied, only_apps: Sequence[str]) -> bool:
    """`deploy APP`: wait for the apps' workloads and whatever this apply changed."""
    if not only_apps:
        return True
    component = ((a.live.get("metadata") or {}).get("labels") or {}).get(labels.COMPONENT)
    return component in only_apps or a.action != "unchanged"


def _cluster_facts(kube: Kube) -> tuple[dict[str, dict], list[dict]]:
    """StorageClasses (for WaitForFirstConsumer) and the nodes (registry and capacity hints);
    either may be unreadable for a namespace-scoped user, which only costs hints."""
    classes: dict[str, dict] = {}
    nodes: list[dict] = []
    try:
        for sc in kube.list(by_kind("StorageClass"))[0]:
            classes[sc["metadata"]["name"]] = {"volumeBindingMode": sc.get("volumeBindingMode"),
                                               "provisioner": sc.get("provisioner")}
    except ApiError:
        pass
    try:
        nodes = kube.list(by_kind("Node"))[0]
    except ApiError:
        pass
    return classes, nodes


def _wait(run: _Run, watcher: NamespaceWatcher, waited: list[Applied], deadline: float,
          storage_classes: dict, policy: Policy) -> tuple[PhaseOutcome, PhaseWaiter]:
    secrets = run.config.secret_values()

    def fetch_logs(pod: str, container: str) -> str | None:
        try:
            text = watcher.kube.logs(run.namespace, pod, container, previous=True,
                                     tail_lines=LOG_LINES)
        except Exception:  # noqa: BLE001 - logs are evidence, never a reason to fail
            return None
        return scrub(text, secrets) if text else text

    waiter = PhaseWaiter(watcher, waited, deadline=deadline,
                         progress_deadline_s=run.ctx.progress_deadline_s, policy=policy,
                         storage_classes=storage_classes, on_update=run.view.target_update,
                         fetch_logs=fetch_logs)
    return waiter.run(), waiter


def _phase_failed(run: _Run, kube: Kube, phase: str, outcome: PhaseOutcome,
                  waiter: PhaseWaiter, rollback: bool) -> Result:
    for f in outcome.findings:
        run.view.finding(f)
    if outcome.timed_out:
        err = deadline_error(phase, waiter, outcome, run.namespace, run.ctx.progress_deadline_s)
    else:
        failed = [t.ref for t in outcome.targets if t.verdict.failed]
        fatal = [f for f in outcome.findings if f.fatal]
        first = fatal[0] if fatal else None
        what = ", ".join(failed) or (first.resource if first else phase)
        err = DeployFailed(
            f"Phase {phase} failed: {what}" + (f": {first.message}" if first else ""),
            (first.hint if first else "See the findings above.")
            + f" Phases before {phase} are applied and ready; later phases were not applied.",
            code="phase-failed")
    if rollback:
        rolled = rollback_changed(kube, run)
        run.warn(("Rolled back: " + ", ".join(rolled)) if rolled else "Nothing to roll back.")
        run.result.extra["rolled_back"] = rolled
    run.view.info(f"error: {err.message} {err.hint}")
    return run.fail(err, outcome.findings)


def rollback_changed(kube: Kube, run: _Run) -> list[str]:
    """Deployments and StatefulSets this run changed go back to their previous template."""
    rolled = []
    for a in run.applied:
        if a.kind in ("Deployment", "StatefulSet") and a.action == CONFIGURED and a.previous:
            try:
                rollback_object(kube, a)
            except PalessError as exc:
                run.warn(f"Could not roll back {a.ref}: {exc.message}")
                continue
            rolled.append(a.ref)
    return rolled


def _prune(run: _Run, kube: Kube, objects: list[dict]) -> None:
    run.current_phase = "prune"
    started_iso, started = _now_iso(), time.monotonic()
    refs = find_prunable(kube, run.namespace, {object_key(o) for o in objects})
    reports = prune(kube, refs, dry_run=False)
    for r in reports:
        run.view.info(f"pruned {r.kind}/{r.name}")
    run.result.phases.append(PhaseReport("prune", started_iso,
                                         round(time.monotonic() - started, 3), list(reports)))


def _finish(run_ctx: RunContext, result: Result) -> None:
    """On success in text mode, the status tables, as the bash script ended with its pod list."""
    if result.exit_code or run_ctx.json_output or run_ctx.console.quiet:
        return
    from paless_deploy.commands.status import print_status

    try:
        print_status(run_ctx)
    except PalessError:
        pass
    print(f"Deployment complete: namespace {run_ctx.config.namespace}, "
          f"{sum(len(p.objects) for p in result.phases)} objects, {run_ctx.elapsed_s():.1f}s.")
