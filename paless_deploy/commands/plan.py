"""`plan`: the deploy graph: each object's wave, its phase label and why, what it waits
for and why.

Renders as `all` would (nothing is built, nothing touches the cluster). An object's
wave is where it stands in the graph: wave 0 waits for nothing, wave n for something of
wave n-1; `all` applies each object as soon as what it waits for is ready, so waves are
a reading aid, not barriers. The phase labels (and the reason for each) group the
objects in the output and the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paless_deploy.core.apitypes import JsonValue
from paless_deploy.core.diagnosis.lint import manifest_warnings, refuse_when_strict
from paless_deploy.core.images.graph import describe_bases
from paless_deploy.core.plan.graph import DeployGraph, build_graph
from paless_deploy.core.plan.plan import fallback_warning
from paless_deploy.core.plan.references import namespace_in
from paless_deploy.core.reporting.report import Result
from paless_deploy.stages.images import plan_images, project_graph
from paless_deploy.stages.render import discovered_apps, render
from paless_deploy.ui.lines import warn
from paless_deploy.ui.tables import print_table

if TYPE_CHECKING:
    from paless_deploy.core.configuration.context import RunContext


def run_plan(run_ctx: RunContext, strict: bool = False) -> Result:
    """Print (or put in the JSON document) the graph: waves, each object's phase and
    needs with their reasons, and what the lint says about the tree (with `strict`, any
    warning is exit 2)."""
    apps = discovered_apps(run_ctx)
    plans, warnings = plan_images(run_ctx.config, apps)
    refs = {p.app.name: p.ref for p in plans}
    images = project_graph(run_ctx.config, apps)
    builds = [{"app": p.app.name, "ref": p.ref, "from": list(p.needs),
               "graph": describe_bases(images, p.app.name, refs)} for p in plans]
    rendered = render(run_ctx, refs)
    graph = build_graph(rendered.objects)
    lint = [*rendered.warnings,
            *manifest_warnings(rendered.objects, refs.values(),
                               branch_namespace=run_ctx.config.branch_mode)]
    fallen = fallback_warning(graph.phases())
    if fallen:
        lint.append(fallen)
    refuse_when_strict(lint, strict)
    warnings = [*warnings, *lint]
    namespace = run_ctx.config.namespace
    result = Result(command="plan", warnings=warnings,
                    extra={"plan": plan_document(graph, namespace),
                           "waves": [[_shown(graph, i, namespace) for i in wave]
                                     for wave in graph.waves()],
                           "builds": builds})
    if not run_ctx.json_output:
        if images.bases:  # apps built FROM apps: the order images are built in, and why
            print_table("Images, in build order", ("app", "image", "build graph"),
                        [(str(b["app"]), str(b["ref"]), str(b["graph"])) for b in builds],
                        run_ctx.console.color)
        waves = graph.wave_of()
        rows: list[tuple[str, str, str, str]] = [
            ("", f"Namespace/{namespace}",
             "namespace: the target namespace (created when absent)", "")]
        for i in sorted(range(len(graph.nodes)), key=lambda i: (waves[i], i)):
            node = graph.nodes[i]
            needs = graph.describe_needs(i)
            rows.append((str(waves[i]), _shown(graph, i, namespace),
                         f"{node.phase}: {node.reason}", needs[0] if needs else "nothing"))
            rows += [("", "", "", line) for line in needs[1:]]
        print_table(f"Plan for namespace {namespace} (overlay {run_ctx.config.overlay}): "
                    f"{len(graph.nodes)} objects in {len(graph.waves())} waves; each is "
                    "applied as soon as what it waits for is ready",
                    ("wave", "object", "phase", "waits for"), rows, run_ctx.console.color)
        for warning in warnings:
            warn(warning)
    return result


def plan_document(graph: DeployGraph, namespace: str) -> list[JsonValue]:
    """The `plan` key: the phases in order, each with its objects, their wave, why they
    carry that phase, and what they wait for (extend, don't rename)."""
    waves = graph.wave_of()
    doc: list[JsonValue] = [{"name": "namespace", "objects": [
        {"kind": "Namespace", "name": namespace,
         "reason": "the target namespace (created when absent)", "namespace": "",
         "wave": None, "needs": []}]}]
    for phase, members in graph.groups():
        objects: list[JsonValue] = []
        for i in members:
            node = graph.nodes[i]
            objects.append({
                "kind": node.obj.get("kind"), "name": node.obj["metadata"]["name"],
                "reason": node.reason, "namespace": namespace_in(node.obj),
                "wave": waves[i],
                "needs": [{"kind": graph.nodes[n.on].obj.get("kind"),
                           "name": graph.nodes[n.on].obj["metadata"]["name"],
                           "namespace": namespace_in(graph.nodes[n.on].obj),
                           "why": n.why, "rule": n.rule, "ready": n.ready}
                          for n in node.needs]})
        doc.append({"name": phase, "objects": objects})
    return doc


def _shown(graph: DeployGraph, i: int, namespace: str) -> str:
    where = namespace_in(graph.nodes[i].obj)
    return graph.nodes[i].ref + (f" in {where}" if where and where != namespace else "")
