"""`all` and `deploy APP...`: images, render, preflight, then the deploy graph applied
(commands.applying): each object as soon as what it needs is ready.

The two differ only in which images they build, what they wait for and whether they
prune. Whatever the exit path (failure, error, interrupt), the result document keeps
what was done: images built or pushed, objects applied and when, the phases cut.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import Kube, cluster_errors, connect_run, with_retries
from paless_deploy.commands.applying import (
    NO_DATA_OPTIONS,
    ClusterFacts,
    DeployOptions,
    DeployRun,
    apply_under_lock,
    cluster_facts,
    lock_waiting,
    object_indices,
    roll_out_only,
)
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.configuration.config import Config
from paless_deploy.core.diagnosis.findings import Finding
from paless_deploy.core.diagnosis.lint import manifest_warnings, refuse_when_strict
from paless_deploy.core.errors import ConfigError, DeployFailed, Interrupted, PalessError
from paless_deploy.core.images.delivery import Delivery, DeliveryMethod, with_pull_policy
from paless_deploy.core.images.discover import App, app_repository
from paless_deploy.core.images.imageref import in_repository
from paless_deploy.core.manifests.kinds import by_kind
from paless_deploy.core.manifests.podspec import pod_containers
from paless_deploy.core.plan.graph import DeployGraph, build_graph
from paless_deploy.core.plan.plan import fallback_warning
from paless_deploy.core.reporting.deployurl import deployment_url
from paless_deploy.core.reporting.report import Result
from paless_deploy.stages.dataguard import DataGuard, DataOptions, SeedPlan, seed_source
from paless_deploy.stages.delivery import config_for
from paless_deploy.stages.images import ImageResult
from paless_deploy.stages.imagesource import Say, image_source
from paless_deploy.stages.lock import lock_for
from paless_deploy.stages.namespaces import namespace_exists
from paless_deploy.stages.nodes import NodeList
from paless_deploy.stages.preflight import (
    check_writable,
    claim_shared_objects,
    preflight,
    shared_refs,
)
from paless_deploy.stages.render import Rendered, discovered_apps, render
from paless_deploy.ui.lines import say
from paless_deploy.ui.progress import make_progress

if TYPE_CHECKING:
    from paless_deploy.core.configuration.context import RunContext

__all__ = ["DeployOptions", "delivered", "deployed_app_refs", "run_all", "run_deploy",
           "run_rollout"]


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
    run = DeployRun(run_ctx, command)
    try:
        result = _run_pipeline(run, options)
    except KeyboardInterrupt:
        done = [p.name for p in run.result.phases]
        cut = run.current_phase or "(before apply)"
        released = "The namespace lock is released. " if run.lock_held else ""
        say(f"\nInterrupted during phase {cut}; phases done: {', '.join(done) or 'none'}. "
            f"{released}Re-run to finish.", err=True)
        run.result.extra["interrupted_phase"] = run.current_phase or None
        raise Interrupted(f"Interrupted during phase {cut}.",
                          "Nothing more was done; run the command again to continue where it "
                          "stopped.", resource=cut).with_report(run.result) from None
    except PalessError as exc:
        raise exc.with_report(run.result) from None
    _finish(run_ctx, result)
    return result


def _run_pipeline(run: DeployRun, options: DeployOptions) -> Result:
    ctx = run.ctx
    # A project may build nothing (only images from elsewhere): `all` deploys it as it is.
    apps = discovered_apps(ctx)
    source = image_source(options.images_from, apps, options.only_apps)
    seed = seed_source(options.data, run.namespace, partial(make_progress, ctx.console))
    kube = connect_run(ctx)
    facts = cluster_facts(kube)
    say = Say(run.view.info, run.warn, ctx.console)
    delivery = source.delivery(kube, run.config, facts.nodes, say)
    run.config = config_for(run.config, delivery)
    run.result.extra["delivery"] = {"method": delivery.method, "reason": delivery.reason}
    if delivery.warning:
        run.warn(delivery.warning)
    kept = (deployed_app_refs(kube, run.namespace, run.config,
                              [a.name for a in apps if a.name not in options.only_apps],
                              also=(delivery.image_registry,))
            if options.only_apps else {})
    refs = {**kept, **source.planned_refs(run.config, delivery)}
    # A bad overlay, variable, phase annotation or an object of another namespace fails
    # here, in seconds, before any build.
    rendered = _render(run, apps, refs, delivery)
    # the graph of the tree as rendered: a bad annotation or a cycle is exit 2 here
    _render_warnings(run, rendered, build_graph(rendered.objects), refs, facts, options)
    run.guard = _data_guard(run, kube, options, seed, rendered.objects)
    run.result.url = deployment_url(rendered.objects, namespace=run.namespace,
                                    tenant=run.config.project_name,
                                    base_domain=run.config.value("PALESS_BASE_DOMAIN"))
    namespace_there = namespace_exists(kube, run.namespace)
    if namespace_there:
        check_writable(kube, run.namespace)
    claimed = claim_shared_objects(kube, rendered.objects, run.namespace)
    run.result.images = source.obtain(run.config, delivery, facts.nodes, say)
    built = source.obtained_refs(run.result.images, delivery)
    if any(refs.get(app) != ref for app, ref in built.items()):
        refs.update(built)  # what was really pushed
        claimed = claim_shared_objects(kube, _render(run, apps, refs, delivery).objects,
                                       run.namespace)
    objects, foreign = claimed
    for warning in foreign:
        run.warn(warning)
    graph = build_graph(objects)
    # our images delivered without a registry are in none: nothing to look for
    verified = source.verified_refs() | (set() if delivery.pushes else set(refs.values()))
    run.app_refs = dict(refs)
    findings = preflight(kube, run.config, objects, refs, kept=kept, warn=run.warn,
                         verified=verified)
    if findings:
        return _preflight_failed(run, findings, graph)
    # the apps' images pulled while what they wait for starts: `all` through a registry
    warm = delivery.method == DeliveryMethod.REGISTRY and not options.only_apps
    return apply_under_lock(run, kube, graph, replace(options, warm_up=warm), facts,
                            namespace_there)


def _render(run: DeployRun, apps: list[App], refs: dict[str, str], delivery: Delivery
            ) -> Rendered:
    """The tree rendered with these app references, fit for how images are delivered."""
    return delivered(render(run.ctx, _refs_for_render(run.config, apps, refs)), delivery, refs)


def _preflight_failed(run: DeployRun, findings: Sequence[Finding], graph: DeployGraph
                      ) -> Result:
    shown = run.show(findings)
    err = DeployFailed(f"Preflight found {len(findings)} problem(s); nothing was applied.",
                       "Fix the references or images named above, then deploy again.",
                       code="preflight")
    run.view.info(f"error: {err.message} {err.hint}")
    run.not_applied(graph, range(len(graph.nodes)))
    return run.fail(err, shown)


def _render_warnings(run: DeployRun, rendered: Rendered, graph: DeployGraph,
                     refs: dict[str, str], facts: ClusterFacts, options: DeployOptions) -> None:
    """What the render and the lint say about the tree, and which shared objects a branch
    deploy touches; with --strict, any of it is exit 2 before anything is built or
    applied."""
    warnings = list(rendered.warnings)
    fallen = fallback_warning(graph.phases())
    if fallen:
        warnings.append(fallen)
    warnings += manifest_warnings(rendered.objects, refs.values(),
                                  node_count=len(facts.nodes) or None,
                                  branch_namespace=run.config.branch_mode)
    refuse_when_strict(warnings, options.strict)
    for warning in warnings:
        run.warn(warning)
    shared = shared_refs(rendered.objects, run.namespace)
    if run.config.branch_mode and shared:
        same = [ref for ref in shared if run.namespace not in ref]
        run.view.info(f"this branch deploy touches {len(shared)} shared object(s) outside "
                      f"namespace {run.namespace}: {', '.join(shared)}" + (
                          f"; another branch deploying {', '.join(same)} under the same "
                          "name is refused (give them per-namespace names)" if same else ""))
        run.result.extra["shared_objects"] = shared


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
                if any(in_repository(image, registry,
                                     app_repository(config.project_name, app))
                       for registry in registries):
                    found.setdefault(app, image)
    return found


def delivered(rendered: Rendered, delivery: Delivery, refs: Mapping[str, str]) -> Rendered:
    """Images that no registry holds (imported, on the node's Docker) must not be pulled."""
    return Rendered(with_pull_policy(rendered.objects, list(refs.values()),
                                     delivery.pull_policy), rendered.warnings)


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
        data = result.extra.get(key)
        if isinstance(data, dict):
            say(f"{what}: {data.get('path') or data.get('from')} "
                f"({data.get('duration_s', 0):.1f}s).")


def _data_guard(run: DeployRun, kube: Kube, options: DeployOptions, seed: SeedPlan,
                objects: list[JsonDict]) -> DataGuard:
    """The data side of the deploy, once the manifests are rendered: the prod reclaim rule
    and --seed-from's source namespace are exit 2 before anything is built."""
    guard = DataGuard(kube, run.config, options.data, run.result, run.view.info, run.warn,
                      partial(make_progress, run.ctx.console), *seed)
    guard.remaining_s = lambda: run.ctx.remaining_s(time.monotonic())
    guard.before_apply(objects)
    return guard


def run_rollout(run_ctx: RunContext, kube: Kube, rendered: list[JsonDict], objects: list[JsonDict],
                apps: Sequence[str], images: Sequence[ImageResult] = (),
                nodes: NodeList | None = None) -> Result:
    """Apply only `objects` (what a rebuild of `apps` changed: their workloads, the Jobs
    running their images) of the `rendered` tree and wait, under the namespace lock:
    `dev`'s rollout once a whole deploy went through. Failures are findings and exit 1 in
    the result, as for `deploy`; no dry run of the rest, no prune. `nodes`: the Nodes the
    caller listed already (else listed here)."""
    run = DeployRun(run_ctx, "dev")
    run.result.images = list(images)
    graph = build_graph(rendered)
    try:
        with run.view, lock_for(kube, run_ctx, "dev", on_wait=lock_waiting(run)):
            return roll_out_only(run, kube, graph, object_indices(graph, objects),
                                 DeployOptions(only_apps=tuple(apps), prune=False),
                                 cluster_facts(kube, nodes))
    except PalessError as exc:
        raise exc.with_report(run.result) from None
