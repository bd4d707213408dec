"""`plan`: the phases, their objects, and why each object landed in its phase.

Renders as `all` would (nothing is built, nothing touches the cluster) and shows the
placement of every object: annotation, kind default, component and where it was read,
the workload a Service selects, what a Job needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paless_deploy.core.diagnosis.lint import manifest_warnings, refuse_when_strict
from paless_deploy.core.plan.plan import fallback_warning, plan_phases
from paless_deploy.core.reporting.report import Result
from paless_deploy.stages.images import plan_images
from paless_deploy.stages.render import discovered_apps, render
from paless_deploy.ui.lines import warn
from paless_deploy.ui.tables import print_table

if TYPE_CHECKING:
    from paless_deploy.core.configuration.context import RunContext


def run_plan(run_ctx: RunContext, strict: bool = False) -> Result:
    """Print (or put in the JSON document) each phase with its objects and reasons, and
    what the lint says about the tree (with `strict`, any warning is exit 2)."""
    plans, warnings = plan_images(run_ctx.config, discovered_apps(run_ctx))
    refs = {p.app.name: p.ref for p in plans}
    rendered = render(run_ctx, refs)
    phases = plan_phases(rendered.objects)
    lint = [*rendered.warnings,
            *manifest_warnings(rendered.objects, refs.values(),
                               branch_namespace=run_ctx.config.branch_mode)]
    fallen = fallback_warning(phases)
    if fallen:
        lint.append(fallen)
    refuse_when_strict(lint, strict)
    warnings = [*warnings, *lint]
    rows: list[tuple[str, str, str, str]] = [
        ("namespace", "Namespace", run_ctx.config.namespace,
         "the target namespace (created when absent)")]
    rows += [(p.name, o["kind"], o["metadata"]["name"], r) for p in phases
             if p.name != "namespace" for o, r in zip(p.objects, p.reasons, strict=True)]
    doc = [{"name": name, "objects": [{"kind": k, "name": n, "reason": r}
                                      for phase, k, n, r in rows if phase == name]}
           for name in dict.fromkeys(row[0] for row in rows)]
    result = Result(command="plan", warnings=warnings, extra={"plan": doc})
    if not run_ctx.json_output:
        shown = [(phase if phase != rows[i - 1][0] or i == 0 else "", f"{kind}/{name}", why)
                 for i, (phase, kind, name, why) in enumerate(rows)]
        print_table(f"Plan for namespace {run_ctx.config.namespace} "
                    f"(overlay {run_ctx.config.overlay})", ("phase", "object", "why"), shown,
                    run_ctx.console.color)
        for warning in warnings:
            warn(warning)
    return result
