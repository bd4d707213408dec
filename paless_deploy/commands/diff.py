"""`diff`: what `all` would change, from a server-side dry run against live state.

Each rendered object goes through the same apply function as `all` with `dryRun=All`
(same field manager, Job and HPA rules, conflict reporting); the server's answer is
compared with the live object. Exit codes as `kubectl diff`: 0 no changes, 1 changes,
2 or more on errors (a conflict `all` would stop on is one, and every object the server
refuses, classified as `all`'s dry run classifies it; 4 when RBAC denies the user).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import Kube, connect_run
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.errors import ConfigError, DeployFailed, ExitCode, PalessError, Refused
from paless_deploy.core.manifests.kinds import api_group
from paless_deploy.core.manifests.objdiff import unified
from paless_deploy.core.manifests.render import crd_scopes, hpa_targets
from paless_deploy.core.reporting.report import ObjectAction, Result, RunResult
from paless_deploy.stages.apply import apply_object, object_ref
from paless_deploy.stages.images import plan_images
from paless_deploy.stages.namespaces import namespace_exists
from paless_deploy.stages.preflight import claim_shared_objects
from paless_deploy.stages.render import discovered_apps, render
from paless_deploy.ui.lines import say

if TYPE_CHECKING:
    from paless_deploy.core.configuration.context import RunContext


def run_diff(run_ctx: RunContext) -> Result:
    """Exit 0 when nothing would change, 1 when something would, 2 on errors."""
    kube = connect_run(run_ctx)
    plans, warnings = plan_images(run_ctx.config, discovered_apps(run_ctx))
    rendered = render(run_ctx, {p.app.name: p.ref for p in plans})
    objects = rendered.objects
    ns = run_ctx.config.namespace
    result = Result(command="diff", namespace=ns, warnings=[*warnings, *rendered.warnings])
    changes: list[JsonDict] = []
    problems: list[PalessError] = []
    objects, foreign = claim_shared_objects(kube, objects, ns)
    result.warnings += foreign
    autoscalers = hpa_targets(objects)
    existing = {n: namespace_exists(kube, n) for n in
                {str(o["metadata"].get("namespace") or "") for o in objects} - {""}}
    defined = crd_scopes(objects)  # kinds the tree's CRDs will serve once applied
    for obj in objects:
        change = _change(kube, obj, autoscalers.get((obj["kind"], obj["metadata"]["name"])),
                         existing, defined, problems)
        if change is not None:
            changes.append(change)
    if not run_ctx.json_output:
        for c in changes:
            say(c["diff"] if c["action"] not in ("invalid", "conflict")
                else f"# {c['object']}: {c['diff']}")
        say(f"# {len(changes)} object(s) would change" if changes else "# no changes",
            err=True)
    result.extra["changes"] = changes
    if problems:
        first = problems[0]
        more = f" ({len(problems) - 1} more listed in the diff)" if len(problems) > 1 else ""
        raise PalessError(first.message + more, first.hint, code=first.code,
                          resource=first.resource, reason=first.reason,
                          exit_code=ExitCode.USAGE).with_report(result)
    if changes:
        result.result = RunResult.CHANGES
        result.exit_code = ExitCode.FAILED
    return result


def _change(kube: Kube, obj: JsonDict, autoscaler: str | None, existing: Mapping[str, bool],
            defined: Mapping[tuple[str, str], bool], problems: list[PalessError]
            ) -> JsonDict | None:
    """What `all` would do to one object, from a server-side dry run (None: nothing); a
    conflict or a refusal is also added to `problems`."""
    ref = object_ref(obj)
    created = {"object": ref, "action": "create", "diff": unified(ref, None, obj)}
    if not existing.get(str(obj["metadata"].get("namespace") or ""), True):
        return created  # a dry run needs the namespace: shown as it would be created
    try:
        applied = apply_object(kube, obj, dry_run=True, autoscaler=autoscaler)
    except (DeployFailed, ConfigError, Refused) as exc:  # a conflict, a refused object
        if isinstance(exc, ConfigError) and exc.code != "unknown-kind":
            raise
        if exc.code == "unknown-kind" and (
                api_group(str(obj.get("apiVersion"))), obj["kind"]) in defined:
            return created  # its CRD is in the tree, not yet applied: `all` applies it first
        problems.append(exc)
        return {"object": ref, "action": "conflict" if exc.code == "apply-conflict"
                else "invalid", "diff": exc.message}
    if applied.action == ObjectAction.UNCHANGED:
        return None
    action = {ObjectAction.CREATED: "create", ObjectAction.REPLACED: "replace"}.get(
        applied.action, "update")
    text = unified(ref, applied.previous, applied.live)
    if not text and action != "replace":
        return None
    return {"object": ref, "action": action,
            "diff": text or f"# {ref} would be replaced (a Job is immutable)"}
