"""`all` and `deploy APP...`: images, render, preflight, then apply and wait phase by phase.

The two differ only in which images they build, what they wait for and whether they
prune. Whatever the exit path (failure, error, interrupt), the result document keeps
what was done: images built or pushed, phases applied, the phase that was cut.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from paless_deploy.adapters.host import utc_now
from paless_deploy.adapters.kube import ApiError, Kube, cluster_errors, connect, with_retries
from paless_deploy.core.configuration.config import Config
from paless_deploy.core.diagnosis.findings import Finding, Policy
from paless_deploy.core.diagnosis.lint import manifest_warnings, refuse_when_strict
from paless_deploy.core.errors import ConfigError, DeployFailed, Interrupted, PalessError
from paless_deploy.core.images.delivery import (
    REGISTRY,
    Delivery,
    choose_delivery,
    node_facts,
    with_pull_policy,
)
from paless_deploy.core.images.discover import App
from paless_deploy.core.images.imageref import in_repository
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.kinds import by_kind, object_key
from paless_deploy.core.manifests.objects import name_of
from paless_deploy.core.manifests.podspec import pod_containers
from paless_deploy.core.manifests.render import hpa_targets
from paless_deploy.core.plan.lease import (
    LEASE_NAME,
    LeaseState,
    lock_timeout,
    waiting_message,
)
from paless_deploy.core.plan.plan import Phase, fallback_warning, plan_phases
from paless_deploy.core.reporting.deployurl import deployment_url
from paless_deploy.core.reporting.report import (
    ErrorReport,
    ObjectReport,
    PhaseReport,
    Result,
    scrub,
)
from paless_deploy.core.reporting.reportfile import PriorReport
from paless_deploy.stages.apply import (
    CONFIGURED,
    Applied,
    LiveObjects,
    apply_object,
    nudge_claim,
    rollback_object,
    wait_volume_available,
)
from paless_deploy.stages.dataguard import DataGuard, DataOptions, SeedPlan, seed_source
from paless_deploy.stages.delivery import config_for, deliver_images, delivery_facts
from paless_deploy.stages.images import ImageResult, build_images, plan_images
from paless_deploy.stages.lock import lock_for
from paless_deploy.stages.namespaces import ensure_namespace, namespace_exists
from paless_deploy.stages.nodes import NodeList, read_nodes
from paless_deploy.stages.preflight import check_writable, claim_cluster_objects, preflight
from paless_deploy.stages.project import selected_apps
from paless_deploy.stages.prune import find_prunable, prune
from paless_deploy.stages.render import Rendered, discovered_apps, render
from paless_deploy.stages.reports import check_reported_images, load_report
from paless_deploy.stages.validate import dry_run_all
from paless_deploy.stages.wait import PhaseOutcome, PhaseWaiter, deadline_error
from paless_deploy.stages.watcher import NamespaceWatcher
from paless_deploy.ui.lines import say
from paless_deploy.ui.progress import make_progress
from paless_deploy.ui.view import DeployView, make_view

if TYPE_CHECKING:
    from paless_deploy.core.configuration.context import RunContext

NAMESPACE_PHASE = "namespace"
NO_DATA_OPTIONS = DataOptions()
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
    strict: bool = False  # lint warnings are exit 2, before anything is built
    images_from: Path | None = None  # deploy the images a report names; build nothing
    data: DataOptions = NO_DATA_OPTIONS  # --seed-from, --rollback-data, --allow-reclaim-delete


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
        self.secrets = self.config.secret_values()
        self.guard: DataGuard | None = None  # the data side of all/deploy (not dev's rollouts)

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
        self.result.result = "failed" if error.exit_code == 1 else "error"
        self.result.exit_code = error.exit_code
        self.result.errors.append(ErrorReport.from_error(error))
        return self.result


def run_all(run_ctx: RunContext, no_prune: bool = False, force_conflicts: bool = False,
            rollback_on_failure: bool = False, tolerate_failures: bool = False,
            strict: bool = False, images_from: Path | None = None,
            data: DataOptions = NO_DATA_OPTIONS) -> Result:
    """Build and push every app (or take them from a report), apply the whole overlay in
    phases, wait, prune."""
    return _deploy(run_ctx, "all", DeployOptions(
        prune=not no_prune, force_conflicts=force_conflicts, rollback=rollback_on_failure,
        tolerate=tolerate_failures, strict=strict, images_from=images_from, data=data))


def run_deploy(run_ctx: RunContext, apps: Sequence[str] = (), force_conflicts: bool = False,
               rollback_on_failure: bool = False, tolerate_failures: bool = False,
               strict: bool = False, images_from: Path | None = None,
               data: DataOptions = NO_DATA_OPTIONS) -> Result:
    """Build and push APPS (or take them from a report); the others keep their deployed
    images; no prune."""
    return _deploy(run_ctx, "deploy", DeployOptions(
        only_apps=tuple(apps), prune=False, force_conflicts=force_conflicts,
        rollback=rollback_on_failure, tolerate=tolerate_failures, strict=strict,
        images_from=images_from, data=data))


def _deploy(run_ctx: RunContext, command: str, options: DeployOptions) -> Result:
    run = _Run(run_ctx, command)
    try:
        result = _run_pipeline(run, options)
    except KeyboardInterrupt:
        done = [p.name for p in run.result.phases]
        cut = run.current_phase or "(before apply)"
        say(f"\nInterrupted during phase {cut}; phases done: {', '.join(done) or 'none'}. "
            "The namespace lock is released; re-run to finish.", err=True)
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
    # A report that is missing or not one is the user's mistake: said before any I/O.
    report = load_report(options.images_from, "--images-from") if options.images_from else None
    seed = seed_source(options.data, run.namespace, partial(make_progress, ctx.console))
    kube = connect(ctx.kubeconfig, ctx.context)
    facts = _cluster_facts(kube)
    # A project may build nothing (only images from elsewhere): `all` deploys it as it is.
    apps = discovered_apps(ctx)
    # How images reach the nodes (a report's are in their registry already).
    delivery = choose_delivery(delivery_facts(kube, run.config, facts.nodes)) \
        if report is None else Delivery(REGISTRY, "--images-from: the report's registry")
    run.config = config_for(run.config, delivery)
    run.result.extra["delivery"] = {"method": delivery.method, "reason": delivery.reason}
    if report is None:
        run.view.info(f"images reach the nodes by {delivery.method}: {delivery.reason}")
    if delivery.warning:
        run.warn(delivery.warning)
    if report is not None:
        to_build: list[App] = []
        pinned = report.pinned_refs(options.only_apps)
        _check_report_covers(report, apps, options.only_apps)
    else:
        to_build = selected_apps(ctx.config.project_dir, options.only_apps) \
            if options.only_apps else apps
        pinned = {}
    refs: dict[str, str] = {app: str(ref) for app, ref in pinned.items()}
    kept: dict[str, str] = {}
    if options.only_apps:
        others = [a.name for a in apps if a.name not in options.only_apps]
        kept = deployed_app_refs(kube, run.namespace, run.config, others,
                                 also=(delivery.image_registry,))
        refs.update(kept)
    # Tags are content hashes: known before building, so a bad overlay, variable, phase
    # annotation or an object of another namespace fails in seconds, before any build.
    plans = plan_images(run.config, to_build)[0] if to_build else []
    refs.update({p.app.name: delivery.pulled_ref(p.ref) for p in plans})
    rendered = delivered(render(ctx, _refs_for_render(run.config, apps, refs)), delivery,
                          refs)
    phases = plan_phases(rendered.objects)
    _render_warnings(run, rendered.warnings, phases, rendered.objects, refs, facts, options)
    run.guard = _data_guard(run, kube, options, seed, rendered.objects)
    run.result.url = deployment_url(rendered.objects, namespace=run.namespace,
                                    tenant=run.config.project_name,
                                    base_domain=run.config.value("PALESS_BASE_DOMAIN"))
    namespace_there = namespace_exists(kube, run.namespace)
    if namespace_there:
        check_writable(kube, run.namespace)
    objects, foreign = claim_cluster_objects(kube, rendered.objects, run.namespace)

    if report is not None:
        images = check_reported_images(report, pinned, run.warn)
    elif to_build:
        images = build_images(run.config, to_build, push=delivery.pushes,
                              progress=make_progress(ctx.console), plans=plans, warn=run.warn)
        images = deliver_images(run.config, delivery, images,
                                [node_facts(n) for n in facts.nodes], run.view.info)
    else:
        images = []
    run.result.images = images
    built = {r.app: delivery.pulled_ref(r.ref) for r in images} if report is None else {}
    if any(refs.get(app) != ref for app, ref in built.items()):
        refs.update(built)  # what was really pushed
        rendered = delivered(render(ctx, _refs_for_render(run.config, apps, refs)), delivery,
                              refs)
        objects, foreign = claim_cluster_objects(kube, rendered.objects, run.namespace)
    for warning in foreign:
        run.warn(warning)
    phases = plan_phases(objects)
    # the report's digests were just found in their registry: no second look; our images
    # delivered without a registry are in none
    verified = {str(ref) for ref in pinned.values()}
    if not delivery.pushes:
        verified |= set(refs.values())
    findings = preflight(kube, run.config, objects, refs, kept=kept, warn=run.warn,
                         verified=verified)
    if findings:
        shown = run.show(findings)
        err = DeployFailed(f"Preflight found {len(findings)} problem(s); nothing was applied.",
                           "Fix the references or images named above, then deploy again.",
                           code="preflight")
        run.view.info(f"error: {err.message} {err.hint}")
        _not_applied(run, phases)
        return run.fail(err, shown)
    with run.view:
        run.current_phase = NAMESPACE_PHASE
        started_iso, started = _now_iso(), time.monotonic()
        ns_report = ensure_namespace(kube, run.config,
                                     timeout_s=max(1.0, ctx.remaining_s(time.monotonic())),
                                     say=run.view.info)
        run.result.phases.append(PhaseReport(NAMESPACE_PHASE, started_iso,
                                             round(time.monotonic() - started, 3), [ns_report]))
        if not namespace_there:
            check_writable(kube, run.namespace)
        with lock_for(kube, ctx, run.result.command, on_wait=_lock_waiting(run)):
            run.view.waiting_done()
            # a sleeping preview wakes before anything is applied
            run.guard.after_lock(ns_report.action == "created")
            try:
                # what already holds everything we would apply is neither dry-run nor (in
                # its phase) applied: a no-op redeploy is one LIST per kind, not a request
                # per object
                listed = LiveObjects(kube, objects)
                dry_run_all(kube, objects, run.namespace,
                            force_conflicts=options.force_conflicts,
                            unchanged=partial(listed.unchanged, kube))
            except PalessError as exc:
                if ns_report.action == "created":
                    exc.message += (f" (Only the namespace itself was created, empty; "
                                    f"`paless-deploy -n {run.namespace} destroy --yes` removes "
                                    "it.)")
                raise
            return _apply_phases(run, kube, phases, objects, options, facts, listed)


def _render_warnings(run: _Run, render_warnings: list[str], phases: list[Phase],
                     objects: list[dict], refs: dict[str, str], facts: ClusterFacts,
                     options: DeployOptions) -> None:
    """What the render and the lint say about the tree; with --strict, any of it is exit 2
    before anything is built or applied."""
    warnings = list(render_warnings)
    fallen = fallback_warning(phases)
    if fallen:
        warnings.append(fallen)
    warnings += manifest_warnings(objects, refs.values(), node_count=len(facts.nodes) or None)
    refuse_when_strict(warnings, options.strict)
    for warning in warnings:
        run.warn(warning)


def _data_guard(run: _Run, kube: Kube, options: DeployOptions, seed: SeedPlan,
                objects: list[dict]) -> DataGuard:
    """The data side of the deploy, once the manifests are rendered: the prod reclaim rule
    and --seed-from's source namespace are exit 2 before anything is built."""
    guard = DataGuard(kube, run.config, options.data, run.result, run.view.info, run.warn,
                      partial(make_progress, run.ctx.console), *seed)
    guard.before_apply(objects)
    return guard


def _lock_waiting(run: _Run) -> Callable[[LeaseState], None]:
    """Said once, at once, when another deploy holds the namespace lock; then a spinner."""
    def say(state: LeaseState) -> None:
        run.view.info(waiting_message(run.namespace, state, utc_now(),
                                      lock_timeout(run.config)))
        run.view.waiting_on(f"Lease/{LEASE_NAME}", "another deploy holds it")
    return say


def deployed_app_refs(kube: Kube, namespace: str, config: Config,
                      apps: Sequence[str], also: Sequence[str] = ()) -> dict[str, str]:
    """The image reference each app currently runs in the namespace (read from workloads),
    in REGISTRY or in the registries `also` names (how the nodes name an advertised one)."""
    found: dict[str, str] = {}
    with cluster_errors(kube, "reading the deployed images", namespace):
        items = [item for kind in ("Deployment", "StatefulSet", "Job")
                 for item in with_retries(partial(kube.list, by_kind(kind), namespace))[0]]
    registries = [config.registry, *(r for r in also if r)]
    for item in items:
        for c in pod_containers(item):
            image = str(c.get("image", ""))
            for app in apps:
                if any(in_repository(image, registry, f"{config.project_name}-{app}")
                       for registry in registries):
                    found.setdefault(app, image)
    return found


def delivered(rendered: Rendered, delivery: Delivery, refs: Mapping[str, str]) -> Rendered:
    """Images that no registry holds (imported, on the node's Docker) must not be pulled."""
    return Rendered(with_pull_policy(rendered.objects, list(refs.values()),
                                     delivery.pull_policy), rendered.warnings)


def _check_report_covers(report: PriorReport, apps: Sequence[App],
                         only_apps: Sequence[str]) -> None:
    """`all --images-from`: every app this checkout builds must have its image in the report."""
    missing = [a.name for a in apps if not only_apps and report.image_of(a.name) is None]
    if missing:
        raise ConfigError(
            f"{report.source} has no image for app(s) {', '.join(missing)}, which this "
            "checkout builds (a Dockerfile for each).",
            "Use the report of a build of this checkout (the build job's `push` or `all` with "
            "--output json), or deploy only the apps it has: `paless-deploy deploy APP... "
            "--images-from ...`.", code="report-missing-app")


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
                  options: DeployOptions, facts: ClusterFacts,
                  listed_before: LiveObjects | None = None) -> Result:
    """Apply and wait for each phase. `listed_before` (the objects as listed before the
    dry run) spares a phase whose every object it shows unchanged its own listing: such
    a phase applies nothing. A phase with anything to apply lists its objects afresh."""
    now = time.monotonic()
    deadline = now + run.ctx.remaining_s(now)
    policy = Policy(tolerate_all=options.tolerate,
                    registry=run.config.registry).with_nodes(facts.nodes)
    autoscalers = hpa_targets(objects)
    watcher = NamespaceWatcher(kube, run.namespace).start()
    try:
        for index, phase in enumerate(phases):
            if phase.name == NAMESPACE_PHASE:
                continue
            run.current_phase = phase.name
            started_iso, started = _now_iso(), time.monotonic()
            run.view.phase_started(phase.name, len(phase.objects))
            reports: list[ObjectReport] = []
            # the phase is in the report from its first apply, so a failure keeps it
            run.result.phases.append(PhaseReport(phase.name, started_iso, 0.0, reports))
            if listed_before is not None and all(
                    listed_before.unchanged(kube, o) for o in phase.objects):
                listed = listed_before
            else:
                listed = LiveObjects(kube, list(phase.objects))
            if run.guard is not None:  # a seed or a snapshot before the migrate phase
                run.guard.before_phase(phase.name, phase.objects)
            applied = _apply_phase(run, kube, phase, listed, options, autoscalers, reports)
            waited = [a for a in applied if _should_wait(a, options.only_apps)]
            outcome, waiter = _wait(run, watcher, waited, deadline, facts.storage_classes,
                                    policy)
            verdicts = {t.ref: t.verdict for t in outcome.targets}
            reports[:] = [_object_report(a, verdicts[a.ref].ready if a.ref in verdicts else True,
                                         verdicts[a.ref].reason if a.ref in verdicts else "")
                          for a in applied]
            run.result.phases[-1] = PhaseReport(phase.name, started_iso,
                                                round(time.monotonic() - started, 3), reports)
            for w in outcome.warnings:
                run.warn(w)
            ok = not outcome.failed and not outcome.timed_out
            run.view.phase_done(phase.name, ok, "")
            if not ok:
                _not_applied(run, phases[index + 1:])
                return _phase_failed(run, kube, phase.name, outcome, waiter, options.rollback)
        if options.prune:
            _prune(run, kube, objects)
        run.current_phase = ""
        return run.result
    finally:
        watcher.stop()


def _apply_phase(run: _Run, kube: Kube, phase: Phase, listed: LiveObjects,
                 options: DeployOptions, autoscalers: Mapping[tuple[str, str], str],
                 reports: list[ObjectReport]) -> list[Applied]:
    """Apply one phase's objects, group by group; each is reported as it is applied."""
    applied: list[Applied] = []
    for group in _apply_groups(phase.objects):
        # objects of one group do not depend on each other: apply them at once
        with ThreadPoolExecutor(max_workers=APPLY_PARALLELISM) as pool:
            results = list(pool.map(
                lambda o: apply_object(
                    kube, o, force_conflicts=options.force_conflicts,
                    autoscaler=autoscalers.get((o["kind"], o["metadata"]["name"])),
                    listed=listed),
                group))
        for a in results:
            applied.append(a)
            run.applied.append(a)
            run.view.applied(a)
            reports.append(_object_report(a, None, ""))
            wait_volume_available(kube, a)
    return applied


def _object_report(a: Applied, ready: bool | None, reason: str) -> ObjectReport:
    api_version = str((a.body or a.live or {}).get("apiVersion") or "")
    return ObjectReport(a.kind, a.name, a.action, ready, reason, api_version=api_version)


def _not_applied(run: _Run, phases: Sequence[Phase]) -> None:
    """What a failure left unapplied, for the report (JUnit lists it as skipped)."""
    run.result.extra["not_applied"] = [
        {"phase": p.name, "kind": str(o.get("kind", "")), "name": name_of(o)}
        for p in phases if p.name != NAMESPACE_PHASE for o in p.objects]


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


@dataclass(frozen=True)
class ClusterFacts:
    """What the rules need to know about the cluster: StorageClasses (WaitForFirstConsumer)
    and nodes (registry reach, capacity, whether claims can be shared)."""

    storage_classes: dict[str, dict]
    nodes: NodeList


def _cluster_facts(kube: Kube, nodes: NodeList | None = None) -> ClusterFacts:
    """Either list may be unreadable for a namespace-scoped user, which only costs hints;
    the nodes are listed here unless given (stages.nodes)."""
    classes: dict[str, dict] = {}
    try:
        for sc in kube.list(by_kind("StorageClass"))[0]:
            classes[sc["metadata"]["name"]] = {"volumeBindingMode": sc.get("volumeBindingMode"),
                                               "provisioner": sc.get("provisioner")}
    except ApiError:
        pass
    return ClusterFacts(classes, nodes if nodes is not None else read_nodes(kube))


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
                         fetch_logs=fetch_logs,
                         nudge_claim=lambda name: nudge_claim(watcher.kube, run.namespace, name))
    return waiter.run(), waiter


def _phase_failed(run: _Run, kube: Kube, phase: str, outcome: PhaseOutcome,
                  waiter: PhaseWaiter, rollback: bool) -> Result:
    findings = run.show(outcome.findings)
    if outcome.timed_out:
        err = deadline_error(phase, waiter, outcome, run.namespace, run.ctx.progress_deadline_s)
        err.message = scrub(err.message, run.secrets)
    else:
        failed = [t.ref for t in outcome.targets if t.verdict.failed]
        fatal = [f for f in findings if f.fatal]
        first = fatal[0] if fatal else None
        what = ", ".join(failed) or (first.resource if first else phase)
        err = DeployFailed(
            f"Phase {phase} failed: {what}" + (f": {first.message}" if first else ""),
            (first.hint if first else "See the findings above.")
            + f" Phases before {phase} are applied and ready; later phases were not applied.",
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
    objects = sum(len(p.objects) for p in result.phases)
    say(f"Deployment complete: namespace {run_ctx.config.namespace}, {objects} objects, "
        f"{run_ctx.elapsed_s(time.monotonic()):.1f}s.")
    if result.url:
        say(f"URL: {result.url}")
    for key, what in (("snapshot", "Snapshot taken before the migration"),
                      ("seed", "Seeded")):
        if isinstance(result.extra.get(key), dict):
            data = result.extra[key]
            say(f"{what}: {data.get('path') or data.get('from')} "
                f"({data.get('duration_s', 0):.1f}s).")


def run_rollout(run_ctx: RunContext, kube: Kube, objects: list[dict], apps: Sequence[str],
                images: Sequence[ImageResult] = (), nodes: NodeList | None = None) -> Result:
    """Apply only `objects` (what a rebuild of `apps` changed: their workloads, the Jobs
    running their images) phase by phase and wait, under the namespace lock: `dev`'s
    rollout once a whole deploy went through. Failures are findings and exit 1 in the
    result, as for `deploy`; no dry run of the rest, no prune. `nodes`: the Nodes the
    caller listed already (else listed here)."""
    run = _Run(run_ctx, "dev")
    run.result.images = list(images)
    facts = _cluster_facts(kube, nodes)
    try:
        with run.view, lock_for(kube, run_ctx, "dev", on_wait=_lock_waiting(run)):
            return _apply_phases(run, kube, plan_phases(objects), objects,
                                 DeployOptions(only_apps=tuple(apps), prune=False), facts)
    except PalessError as exc:
        raise exc.with_report(run.result) from None
