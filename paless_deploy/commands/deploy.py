"""The deploy pipeline: images, render, preflight, then apply and wait phase by phase.

`run_all` and `run_deploy` differ only in which images they build, what they wait
for and whether they prune; `run_render` stops after rendering.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from paless_deploy.core.errors import ClusterError, ConfigError, DeployFailed, PalessError
from paless_deploy.core.report import ErrorReport, ObjectReport, PhaseReport, Result

NAMESPACE_PHASE = "namespace"


# ---------------------------------------------------------------------------
# images and render


def discovered_apps(run_ctx: Any) -> list[Any]:
    """Every app of the project (ConfigError when there is none)."""
    from paless_deploy.core.discover import select_apps

    return select_apps(run_ctx.config.project_dir)


def planned_refs(run_ctx: Any, apps: list[Any]) -> tuple[dict[str, str], list[str]]:
    """Every app's reference as a build would tag it, without building (for render/diff)."""
    from paless_deploy.core.errors import BuildError
    from paless_deploy.stages.images import (
        FileDigests,
        compute_tag,
        connect_docker,
        image_ref,
        plan_tags,
    )

    config = run_ctx.config
    try:
        api = connect_docker()
        return {p.app.name: p.ref for p in plan_tags(api, config, apps)}, []
    except BuildError:
        digests = FileDigests()
        refs = {a.name: image_ref(config, a.name, compute_tag(a, config.build_args(), {}, digests))
                for a in apps}
        return refs, [("Docker is not reachable: image tags were computed without the base "
                      "image IDs and may differ from what `build` produces.")]


def render(run_ctx: Any, app_images: dict[str, str]) -> list[dict]:
    from paless_deploy.stages.render import render_overlay

    config = run_ctx.config
    return render_overlay(config.project_dir, config.overlay, config.namespace,
                          config.substitution_values(), app_images)


def run_render(run_ctx: Any, show_secrets: bool = False) -> Result:
    """Print the rendered manifests (Secret values redacted unless asked)."""
    import click

    from paless_deploy.stages.render import redact_secrets, to_yaml

    apps = discovered_apps(run_ctx)
    refs, warnings = planned_refs(run_ctx, apps)
    objects = render(run_ctx, refs)
    shown = objects if show_secrets else redact_secrets(objects)
    result = Result(command="render", warnings=warnings)
    if run_ctx.json_output:
        result.extra["objects"] = shown
    else:
        click.echo(to_yaml(shown), nl=False)
    return result


# ---------------------------------------------------------------------------
# the cluster side


def deployed_app_refs(kube: Any, namespace: str, config: Any, apps: Sequence[str]) -> dict[str, str]:
    """The image reference each app currently runs in the namespace (read from workloads)."""
    from paless_deploy.adapters.kube import cluster_errors

    prefix = {config.image_repository(a): a for a in apps}
    found: dict[str, str] = {}
    with cluster_errors(kube, "reading the deployed images", namespace):
        items = [item for path in (f"/apis/apps/v1/namespaces/{namespace}/deployments",
                                   f"/apis/apps/v1/namespaces/{namespace}/statefulsets",
                                   f"/apis/batch/v1/namespaces/{namespace}/jobs")
                 for item in kube.request("GET", path).get("items") or []]
    for item in items:
        pod = item["spec"]["template"]["spec"]
        for c in list(pod.get("containers") or []) + list(pod.get("initContainers") or []):
            image = c.get("image", "")
            repo = image.split("@")[0] if "@" in image else image.rsplit(":", 1)[0]
            if repo in prefix:
                found.setdefault(prefix[repo], image)
    return found


def check_writable(kube: Any, namespace: str) -> None:
    """Exit 4 before anything is applied when we may not deploy into the namespace."""
    from paless_deploy.adapters.kube import cluster_errors

    checks = [("apps", "deployments", "patch"), ("", "secrets", "patch")]
    with cluster_errors(kube, "checking permissions", namespace):
        for group, resource, verb in checks:
            review = kube.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                                  body={"apiVersion": "authorization.k8s.io/v1",
                                        "kind": "SelfSubjectAccessReview",
                                        "spec": {"resourceAttributes": {
                                            "group": group, "resource": resource, "verb": verb,
                                            "namespace": namespace}}})
            if not (review.get("status") or {}).get("allowed"):
                raise ClusterError(
                    f"Not authorised to {verb} {resource} in namespace {namespace}.",
                    "Use a kubeconfig whose user may manage this namespace, or deploy into one "
                    "you are allowed to write (-n).", code="forbidden")


def ensure_namespace(kube: Any, run_ctx: Any) -> ObjectReport:
    """The namespace phase (created with the tool's label and branch metadata when absent)."""
    from paless_deploy.stages.namespaces import ensure_namespace as ensure

    report = ensure(kube, run_ctx.config)
    if report.action == "created":
        _wait_default_serviceaccount(kube, run_ctx.config.namespace)
    return report


def _wait_default_serviceaccount(kube: Any, namespace: str, timeout: float = 30.0) -> None:
    """Pods are refused until the `default` ServiceAccount exists in a new namespace."""
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    listing = kube.request("GET", path)
    if any(sa["metadata"]["name"] == "default" for sa in listing.get("items") or []):
        return
    query = {"resourceVersion": listing["metadata"].get("resourceVersion"),
             "timeoutSeconds": int(timeout)}
    for event in kube.stream(path, query, timeout=(5, timeout + 5)):
        if (event.get("object") or {}).get("metadata", {}).get("name") == "default":
            return


def preflight(kube: Any, run_ctx: Any, objects: list[dict], refs: dict[str, str]) -> list[Any]:
    """References to Secrets/ConfigMaps/claims and our images in the registry, before applying."""
    from paless_deploy.adapters.kube import cluster_errors
    from paless_deploy.core.diagnosis.findings import Finding
    from paless_deploy.core.preflight import check_references
    from paless_deploy.stages.images import _AuthRequired, registry_manifest_digest

    plurals = {"Secret": "secrets", "ConfigMap": "configmaps",
               "PersistentVolumeClaim": "persistentvolumeclaims"}

    def existing(kind: str, namespace: str, name: str) -> dict | None:
        plural = plurals.get(kind)
        if plural is None:
            return None
        with cluster_errors(kube, f"reading {kind}/{name}", namespace):
            return kube.get(f"/api/v1/namespaces/{namespace}/{plural}/{name}")

    findings = list(check_references(objects, existing))
    config = run_ctx.config
    used = {img for obj in objects for img in _images_of(obj)}
    for app, ref in refs.items():
        if ref not in used or not ref.startswith(config.registry + "/"):
            continue
        repo, tag = ref[len(config.registry) + 1:].rsplit(":", 1)
        try:
            digest = registry_manifest_digest(config.registry, repo, tag)
        except _AuthRequired:
            continue
        except PalessError:
            continue  # unreachable from here; the nodes may still reach it
        if digest is None:
            findings.append(Finding(
                code="missing-image", resource=f"image/{app}", reason="NotInRegistry",
                message=f"The image {ref} of app {app} is not in the registry {config.registry}.",
                hint=f"Run `paless-deploy push {app}` (or `all`), then deploy again.",
                commands=(f"curl -sI http://{config.registry}/v2/{repo}/manifests/{tag}",),
                evidence=(), fatal=True))
    return findings


def _images_of(obj: dict) -> list[str]:
    from paless_deploy.core.podspec import pod_containers

    return [c.get("image", "") for c in pod_containers(obj)]


# ---------------------------------------------------------------------------
# the run


class _Run:
    """State of one deploy: the result document being built, the view, the cluster."""

    def __init__(self, run_ctx: Any, command: str) -> None:
        from paless_deploy.ui.view import make_view

        self.ctx = run_ctx
        self.config = run_ctx.config
        self.namespace = run_ctx.config.namespace
        self.result = Result(command=command, namespace=self.namespace, overlay=self.config.overlay)
        self.view = make_view(run_ctx.console)
        self.current_phase = ""
        self.applied: list[Any] = []

    def fail(self, error: PalessError, findings: Sequence[Any] = ()) -> Result:
        self.result.result = "failed" if error.exit_code == 1 else "error"
        self.result.exit_code = error.exit_code
        for f in findings:
            self.result.errors.append(f.to_error_report())
        self.result.errors.append(ErrorReport.from_error(error))
        return self.result


def _deploy(run_ctx: Any, command: str, *, only_apps: Sequence[str] | None, prune: bool,
            force_conflicts: bool, rollback: bool, tolerate: bool) -> Result:
    from paless_deploy.adapters.kube import connect
    from paless_deploy.core.plan import plan_phases
    from paless_deploy.stages.images import build_images
    from paless_deploy.stages.lock import lock_for
    from paless_deploy.ui.progress import make_progress

    run = _Run(run_ctx, command)
    kube = connect(run_ctx.kubeconfig, run_ctx.context)
    from paless_deploy.core.discover import select_apps

    apps = discovered_apps(run_ctx)
    to_build = select_apps(run_ctx.config.project_dir, only_apps) if only_apps else apps
    refs: dict[str, str] = {}
    if only_apps:
        others = [a.name for a in apps if a.name not in only_apps]
        refs.update(deployed_app_refs(kube, run.namespace, run.config, others))
    # Tags are content hashes: known before building, so a bad overlay, variable or
    # phase annotation fails in a second, before any image is built or pushed.
    planned, _ = planned_refs(run_ctx, to_build)
    refs.update(planned)
    objects = render(run_ctx, _refs_for_render(run_ctx, apps, refs))
    phases = plan_phases(objects)
    images = build_images(run.config, to_build, push=True, progress=make_progress(run_ctx.console))
    run.result.images = images
    built = {r.app: r.ref for r in images}
    if any(refs.get(app) != ref for app, ref in built.items()):
        # the context changed while we built: render with what was really pushed
        refs.update(built)
        objects = render(run_ctx, _refs_for_render(run_ctx, apps, refs))
        phases = plan_phases(objects)

    check_writable_ns = _namespace_exists(kube, run.namespace)
    if check_writable_ns:
        check_writable(kube, run.namespace)
    findings = preflight(kube, run_ctx, objects, refs)
    if findings:
        for f in findings:
            run.view.finding(f)
        err = DeployFailed(f"Preflight found {len(findings)} problem(s); nothing was applied.",
                           "Fix the references or images named above, then deploy again.",
                           code="preflight")
        return run.fail(err, findings)

    from paless_deploy.core.diagnosis.lint import manifest_warnings

    for warning in manifest_warnings(objects):
        run.view.warning(warning)
        run.result.warnings.append(warning)
    with run.view:
        started = time.monotonic()
        ns_report = ensure_namespace(kube, run_ctx)
        run.result.phases.append(PhaseReport(NAMESPACE_PHASE, _now_iso(), time.monotonic() - started,
                                             [ns_report]))
        if not check_writable_ns:
            check_writable(kube, run.namespace)
        with lock_for(kube, run_ctx, command):
            return _apply_phases(run, kube, phases, objects, only_apps=only_apps, prune=prune,
                                 force=force_conflicts, rollback=rollback, tolerate=tolerate)


def _refs_for_render(run_ctx: Any, apps: list[Any], refs: dict[str, str]) -> dict[str, str]:
    """Apps without a deployed image (never deployed): exit 2 pointing at `all`."""
    missing = [a.name for a in apps if a.name not in refs]
    if missing:
        raise ConfigError(
            f"App(s) {', '.join(missing)} have never been deployed to namespace "
            f"{run_ctx.config.namespace}, so there is no image to keep for them.",
            "Run `paless-deploy all` first, or name them too: `paless-deploy deploy "
            + " ".join(a.name for a in apps) + "`.", code="never-deployed")
    return refs


def _namespace_exists(kube: Any, name: str) -> bool:
    from kubernetes.client.exceptions import ApiException

    from paless_deploy.adapters.kube import cluster_errors

    with cluster_errors(kube, f"reading namespace {name}", name):
        try:
            return kube.get(f"/api/v1/namespaces/{name}") is not None
        except ApiException as exc:
            if exc.status == 403:
                return True  # may not read namespaces: let the access review decide
            raise


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _apply_phases(run: _Run, kube: Any, phases: list[Any], objects: list[dict], *,
                  only_apps: Sequence[str] | None, prune: bool, force: bool, rollback: bool,
                  tolerate: bool) -> Result:
    from paless_deploy.stages.apply import apply_object, wait_volume_available
    from paless_deploy.stages.watcher import NamespaceWatcher

    ctx = run.ctx
    deadline = time.monotonic() + ctx.remaining_s()
    from paless_deploy.core.diagnosis.findings import Policy

    storage_classes, nodes = _cluster_facts(kube)
    policy = Policy(tolerate_all=tolerate, registry=run.config.registry).with_nodes(nodes)
    watcher = NamespaceWatcher(kube, run.namespace).start()
    try:
        for phase in phases:
            if phase.name == NAMESPACE_PHASE:
                continue
            run.current_phase = phase.name
            started_iso, started = _now_iso(), time.monotonic()
            run.view.phase_started(phase.name, len(phase.objects))
            applied = []
            for group in _apply_groups(phase.objects):
                # objects of one group do not depend on each other: apply them at once
                with ThreadPoolExecutor(max_workers=APPLY_PARALLELISM) as pool:
                    results = list(pool.map(
                        lambda o: apply_object(kube, o, force_conflicts=force), group))
                for a in results:
                    applied.append(a)
                    run.applied.append(a)
                    run.view.applied(a)
                    wait_volume_available(kube, a)
            waited = [a for a in applied if _should_wait(a, only_apps)]
            outcome, waiter = _wait(run, watcher, waited, deadline, storage_classes, policy)
            verdicts = {t.ref: t.verdict for t in outcome.targets}
            reports = [ObjectReport(a.kind, a.name, a.action,
                                    verdicts[a.ref].ready if a.ref in verdicts else True,
                                    verdicts[a.ref].reason if a.ref in verdicts else "")
                       for a in applied]
            run.result.phases.append(PhaseReport(phase.name, started_iso,
                                                 round(time.monotonic() - started, 3), reports))
            for w in outcome.warnings:
                run.view.warning(w)
                run.result.warnings.append(w)
            ok = not outcome.failed and not outcome.timed_out
            run.view.phase_done(phase.name, ok, "")
            if not ok:
                return _phase_failed(run, kube, phase.name, outcome, waiter, rollback)
        if prune:
            _prune(run, kube, objects)
        run.current_phase = ""
        return run.result
    except KeyboardInterrupt:
        done = [p.name for p in run.result.phases]
        print(f"\nInterrupted during phase {run.current_phase or '(before apply)'}; phases done: "
              f"{', '.join(done) or 'none'}. The namespace lock is released; re-run to finish.",
              file=__import__("sys").stderr)
        raise
    finally:
        watcher.stop()


APPLY_PARALLELISM = 8


def _apply_groups(objects: Sequence[dict]) -> list[list[dict]]:
    """StorageClasses, then volumes, then everything else (claims must find their volume)."""
    rank = {"StorageClass": 0, "PersistentVolume": 1}
    groups: dict[int, list[dict]] = {}
    for obj in objects:
        groups.setdefault(rank.get(obj.get("kind", ""), 2), []).append(obj)
    return [groups[k] for k in sorted(groups)]


def _should_wait(a: Any, only_apps: Sequence[str] | None) -> bool:
    """`deploy APP`: wait for the apps' workloads and whatever this apply changed."""
    if not only_apps:
        return True
    component = ((a.live.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component")
    return component in only_apps or a.action != "unchanged"


def _cluster_facts(kube: Any) -> tuple[dict[str, dict], list[dict]]:
    """StorageClasses (for WaitForFirstConsumer) and the nodes (registry and capacity hints)."""
    from kubernetes.client.exceptions import ApiException

    classes: dict[str, dict] = {}
    nodes: list[dict] = []
    try:
        for sc in kube.request("GET", "/apis/storage.k8s.io/v1/storageclasses").get("items") or []:
            classes[sc["metadata"]["name"]] = {"volumeBindingMode": sc.get("volumeBindingMode"),
                                               "provisioner": sc.get("provisioner")}
    except ApiException:
        pass
    try:
        nodes = kube.request("GET", "/api/v1/nodes").get("items") or []
    except ApiException:
        pass
    return classes, nodes


def _wait(run: _Run, watcher: Any, waited: list[Any], deadline: float,
          storage_classes: dict, policy: Any) -> tuple[Any, Any]:
    from paless_deploy.core.report import scrub
    from paless_deploy.stages.wait import PhaseWaiter

    secrets = run.config.secret_values()

    def fetch_logs(pod: str, container: str) -> str | None:
        try:
            text = run_logs(watcher.kube, run.namespace, pod, container)
        except Exception:  # noqa: BLE001 - logs are evidence, never a reason to fail
            return None
        return scrub(text, secrets) if text else text

    waiter = PhaseWaiter(watcher, waited, deadline=deadline,
                         progress_deadline_s=run.ctx.progress_deadline_s, policy=policy,
                         storage_classes=storage_classes, on_update=run.view.target_update,
                         fetch_logs=fetch_logs)
    return waiter.run(), waiter


def run_logs(kube: Any, namespace: str, pod: str, container: str, lines: int = 20) -> str | None:
    """The last lines of the previous instance of a container, if the cluster keeps them."""
    from kubernetes.client.exceptions import ApiException

    resp = kube._send("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
                      query={"container": container, "previous": "true", "tailLines": lines},
                      timeout=(3, 5))
    data = resp.read()
    if resp.status >= 400:
        raise ApiException(http_resp=resp)
    return data.decode("utf-8", errors="replace")


def _phase_failed(run: _Run, kube: Any, phase: str, outcome: Any, waiter: Any,
                  rollback: bool) -> Result:
    from paless_deploy.stages.wait import deadline_error

    for f in outcome.findings:
        run.view.finding(f)
    if outcome.timed_out:
        err = deadline_error(phase, waiter, outcome, run.namespace, run.ctx.progress_deadline_s)
    else:
        failed = [t.ref for t in outcome.targets if t.verdict.failed]
        fatal = [f for f in outcome.findings if getattr(f, "fatal", False)]
        first = fatal[0] if fatal else None
        what = ", ".join(failed) or (first.resource if first else phase)
        err = DeployFailed(
            f"Phase {phase} failed: {what}"
            + (f": {first.message}" if first else ""),
            (first.hint if first else "See the findings above.")
            + f" Phases before {phase} are applied and ready; later phases were not applied.",
            code="phase-failed")
    if rollback:
        rolled = rollback_changed(kube, run)
        msg = ("Rolled back: " + ", ".join(rolled)) if rolled else "Nothing to roll back."
        run.view.warning(msg)
        run.result.warnings.append(msg)
        run.result.extra["rolled_back"] = rolled
    run.view.info(f"error: {err.message} {err.hint}")
    return run.fail(err, outcome.findings)


def rollback_changed(kube: Any, run: _Run) -> list[str]:
    """Deployments and StatefulSets this run changed go back to their previous template."""
    from paless_deploy.stages.apply import CONFIGURED, rollback_object

    rolled = []
    for a in run.applied:
        if a.kind in ("Deployment", "StatefulSet") and a.action == CONFIGURED and a.previous:
            try:
                rollback_object(kube, a)
            except PalessError as exc:
                msg = f"Could not roll back {a.ref}: {exc.message}"
                run.view.warning(msg)
                run.result.warnings.append(msg)
                continue
            rolled.append(a.ref)
    return rolled


def _prune(run: _Run, kube: Any, objects: list[dict]) -> None:
    from paless_deploy.stages.prune import find_prunable, object_key, prune

    started_iso, started = _now_iso(), time.monotonic()
    keep = {object_key(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects}
    refs = find_prunable(kube, run.namespace, keep)
    reports = prune(kube, refs, dry_run=False)
    for r in reports:
        run.view.info(f"pruned {r.kind}/{r.name}")
    run.result.phases.append(PhaseReport("prune", started_iso, round(time.monotonic() - started, 3),
                                         list(reports)))


# ---------------------------------------------------------------------------
# entry points


def run_all(run_ctx: Any, no_prune: bool = False, force_conflicts: bool = False,
            rollback_on_failure: bool = False, tolerate_failures: bool = False) -> Result:
    """Build and push every app, apply the whole overlay in phases, wait, prune."""
    result = _deploy(run_ctx, "all", only_apps=None, prune=not no_prune,
                     force_conflicts=force_conflicts, rollback=rollback_on_failure,
                     tolerate=tolerate_failures)
    _finish(run_ctx, result)
    return result


def run_deploy(run_ctx: Any, apps: Sequence[str] = (), force_conflicts: bool = False,
               rollback_on_failure: bool = False, tolerate_failures: bool = False) -> Result:
    """Build and push APPS; the others keep their deployed images; no prune."""
    result = _deploy(run_ctx, "deploy", only_apps=list(apps), prune=False,
                     force_conflicts=force_conflicts, rollback=rollback_on_failure,
                     tolerate=tolerate_failures)
    _finish(run_ctx, result)
    return result


def _finish(run_ctx: Any, result: Result) -> None:
    """On success in text mode, the status tables, as the bash script ended with its pod list."""
    if result.exit_code or run_ctx.json_output or run_ctx.console.quiet:
        return
    try:
        from paless_deploy.commands.status import print_status

        print_status(run_ctx)
    except PalessError:
        pass
    print(f"Deployment complete: namespace {run_ctx.config.namespace}, "
          f"{sum(len(p.objects) for p in result.phases)} objects, {run_ctx.elapsed_s():.1f}s.")


__all__ = ["discovered_apps", "planned_refs", "render", "run_all", "run_deploy", "run_render"]
