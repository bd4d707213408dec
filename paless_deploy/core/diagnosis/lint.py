"""Lint at plan time: rendered objects that apply cleanly but will misbehave, or whose
policy annotations cannot be read, found before anything is built or applied.

Each rule is a function over the whole render (some need to see several objects: an HPA
and its target, a claim and everything mounting it) returning warnings that name the
object and the fix; tree rules judge the render as a whole (no NetworkPolicy at all). `--strict` makes them exit 2. An object opts out of a rule with the
annotation `paless.io/lint-ignore: <rule>[,<rule>...]` (write why beside it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.diagnosis.findings import policy_overrides
from paless_deploy.core.diagnosis.hints import SINGLE_INSTANCE_COMPONENT
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.images.imageref import parse_image
from paless_deploy.core.manifests.components import component_of
from paless_deploy.core.manifests.objects import name_of, nested, ref_of, whole_number
from paless_deploy.core.manifests.podspec import pod_containers, pod_spec

LINT_IGNORE = "paless.io/lint-ignore"
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
SINGLE_WRITER_MODES = ("ReadWriteOnce", "ReadWriteOncePod")


def check_policy_annotations(objects: Iterable[ApiObject]) -> None:
    """Raise ConfigError for the first `paless.io/allowed-restarts` or `paless.io/failure-grace`
    value (on an object or its pod template) that is not a whole number / a duration.

    The wait stage reads them only once pods misbehave; checked here, a typo stops the
    deploy before anything is applied instead of in the middle of a phase.
    """
    for obj in objects:
        policy_overrides(obj)


@dataclass(frozen=True)
class LintContext:
    """What the rules know besides the objects: our images, the cluster's size."""

    objects: Sequence[ApiObject]
    ours: frozenset[str] = frozenset()  # the references of the images we build
    node_count: int | None = None  # None: unknown (plan, render); 1: a laptop
    hpa_targets: dict[str, ApiObject] = field(default_factory=dict)  # name -> its HPA
    branch_namespace: bool = False  # deployed into a branch namespace of a shared cluster

    @classmethod
    def of(cls, objects: Iterable[ApiObject], ours: Iterable[str] = (),
           node_count: int | None = None, branch_namespace: bool = False) -> LintContext:
        objects = list(objects)
        targets = {str(nested(o, "spec", "scaleTargetRef", "name") or ""): o for o in objects
                   if o.get("kind") == "HorizontalPodAutoscaler"}
        return cls(objects, frozenset(ours), node_count, targets, branch_namespace)

    def may_run_more_than_once(self, obj: ApiObject) -> bool:
        replicas = nested(obj, "spec", "replicas")
        hpa = self.hpa_targets.get(name_of(obj))
        return (whole_number(replicas, 1) > 1
                or (hpa is not None and whole_number(nested(hpa, "spec", "maxReplicas"), 2) > 1))


Rule = Callable[[ApiObject, LintContext], list[str]]


def _scheduler_twice(obj: ApiObject, ctx: LintContext) -> list[str]:
    if obj.get("kind") not in WORKLOADS or not _is_scheduler(obj):
        return []
    name, out = name_of(obj), []
    if ctx.may_run_more_than_once(obj) or obj.get("kind") == "DaemonSet":
        out.append(f"{ref_of(obj)}: more than one scheduler would run and every periodic task "
                   "would run twice; keep replicas 1 and no HPA.")
    strategy = nested(obj, "spec", "strategy", "type") or "RollingUpdate"
    if obj.get("kind") == "Deployment" and strategy != "Recreate":
        out.append(f"Deployment/{name}: a {strategy} update briefly runs two schedulers "
                   "(duplicate periodic tasks); use strategy Recreate.")
    return out


def _is_scheduler(obj: ApiObject) -> bool:
    found = component_of(obj)
    if found is not None and found[0] == SINGLE_INSTANCE_COMPONENT:
        return True
    words = {w for c in pod_containers(obj) for w in [*(c.get("command") or []),
                                                       *(c.get("args") or [])]
             if isinstance(w, str)}
    return "beat" in words


def _floating_image(obj: ApiObject, ctx: LintContext) -> list[str]:
    out = []
    for container in pod_containers(obj):
        image = str(container.get("image") or "")
        try:
            floating = parse_image(image).floating
        except ValueError:
            continue
        if floating:
            out.append(f"{ref_of(obj)} container {container.get('name')} uses {image}: a "
                       "re-pushed :latest image is never rolled out; use an immutable tag.")
    return out


def _secret_env_from(obj: ApiObject, ctx: LintContext) -> list[str]:
    out = []
    for container in pod_containers(obj):
        if container.get("image") not in ctx.ours:
            continue
        for source in container.get("envFrom") or []:
            secret = (source.get("secretRef") or {}).get("name")
            if secret:
                out.append(f"{ref_of(obj)} container {container.get('name')} takes every key of "
                           f"Secret {secret} as environment (envFrom): every credential in it "
                           "reaches the app and its child processes; reference the keys it "
                           "needs with env[].valueFrom.secretKeyRef.")
    return out


def _no_readiness_probe(obj: ApiObject, ctx: LintContext) -> list[str]:
    if obj.get("kind") not in WORKLOADS:
        return []
    containers = (pod_spec(obj) or {}).get("containers") or []
    if containers and not any(c.get("readinessProbe") for c in containers):
        return [(f"{ref_of(obj)} has no readiness probe: it counts as ready as soon as its "
                "containers start, before it serves (the deploy only watches it run a few "
                "seconds, paless.io/settle); add a readinessProbe (or annotate "
                f"{LINT_IGNORE}: no-readiness-probe, saying why).")]
    return []


def _shared_single_writer_claim(obj: ApiObject, ctx: LintContext) -> list[str]:
    if obj.get("kind") != "PersistentVolumeClaim" or ctx.node_count == 1:
        return []
    modes = nested(obj, "spec", "accessModes") or []
    if not modes or not all(m in SINGLE_WRITER_MODES for m in modes):
        return []
    claim = name_of(obj)
    users = [w for w in ctx.objects if w.get("kind") in WORKLOADS and claim in _claims(w)]
    several = len(users) > 1 or any(ctx.may_run_more_than_once(w) for w in users)
    if not several:
        return []
    nodes = f"the cluster has {ctx.node_count} nodes" if ctx.node_count else "on several nodes"
    return [(f"PersistentVolumeClaim/{claim} is {'/'.join(modes)} and mounted by "
            f"{', '.join(ref_of(w) for w in users)} (more than one pod): {nodes}, so pods on "
            "another node fail with a Multi-Attach error; use ReadWriteMany "
            "(SHARED_VOLUME_ACCESS_MODE) or keep them on one node.")]


def _claims(obj: ApiObject) -> set[str]:
    return {str((v.get("persistentVolumeClaim") or {}).get("claimName"))
            for v in (pod_spec(obj) or {}).get("volumes") or [] if v.get("persistentVolumeClaim")}


def _privileged(obj: ApiObject, ctx: LintContext) -> list[str]:
    return [f"{ref_of(obj)} container {c.get('name')} is privileged (full access to its node); "
            "keep it only if it needs it (a FUSE mount does), and say so with "
            f"{LINT_IGNORE}: privileged."
            for c in pod_containers(obj) if nested(c, "securityContext", "privileged") is True]


def _pull_always(obj: ApiObject, ctx: LintContext) -> list[str]:
    return [f"{ref_of(obj)} container {c.get('name')} pulls {c.get('image')} with "
            "imagePullPolicy Always: our tags are immutable content hashes, so every pod start "
            "asks the registry for nothing (and fails when it is down); use IfNotPresent."
            for c in pod_containers(obj)
            if c.get("image") in ctx.ours and c.get("imagePullPolicy") == "Always"]


def _no_network_policy(ctx: LintContext) -> list[str]:
    if not ctx.branch_namespace or any(o.get("kind") == "NetworkPolicy" for o in ctx.objects):
        return []
    workloads = [ref_of(o) for o in ctx.objects if o.get("kind") in WORKLOADS]
    if not workloads:
        return []
    shown = ", ".join(workloads[:4]) + (f" and {len(workloads) - 4} more"
                                        if len(workloads) > 4 else "")
    return [(f"the tree has no NetworkPolicy and goes into a branch namespace of a shared "
            f"cluster: pods of every other namespace reach {shown}; add a default-deny "
            "ingress policy and the paths the stack needs (as k8s/base/network-policies.yaml "
            f"does), or annotate an object {LINT_IGNORE}: no-network-policy, saying why.")]


# Rules over the whole tree (not one object): an object of the tree opts the tree out.
TREE_RULES: dict[str, Callable[[LintContext], list[str]]] = {
    "no-network-policy": _no_network_policy,
}

RULES: dict[str, Rule] = {
    "scheduler-twice": _scheduler_twice,
    "floating-image": _floating_image,
    "secret-envfrom": _secret_env_from,
    "no-readiness-probe": _no_readiness_probe,
    "shared-rwo-claim": _shared_single_writer_claim,
    "privileged": _privileged,
    "pull-always": _pull_always,
}


def _ignored(obj: ApiObject) -> set[str]:
    text = str(nested(obj, "metadata", "annotations", LINT_IGNORE) or "")
    return {part.strip() for part in text.split(",") if part.strip()}


def manifest_warnings(objects: Iterable[ApiObject], ours: Iterable[str] = (),
                      node_count: int | None = None, branch_namespace: bool = False) -> list[str]:
    """Warnings about rendered objects that will misbehave although they apply cleanly.

    `ours`: the references of the images we build (the app-image rules look at those);
    `node_count`: the cluster's nodes when known (a single-writer claim shared by pods is
    fine on one node); `branch_namespace`: the tree goes into a branch namespace (other
    branches share the cluster).
    """
    ctx = LintContext.of(objects, ours, node_count, branch_namespace)
    warnings: list[str] = []
    for obj in ctx.objects:
        skip = _ignored(obj)
        for name, rule in RULES.items():
            if name not in skip:
                warnings += rule(obj, ctx)
    tree_skip = set().union(*(_ignored(o) for o in ctx.objects))
    for name, tree_rule in TREE_RULES.items():
        if name not in tree_skip:
            warnings += tree_rule(ctx)
    return warnings


def refuse_when_strict(warnings: list[str], strict: bool) -> None:
    """With `--strict`, any warning about the manifests is exit 2, naming them all."""
    if strict and warnings:
        raise ConfigError(
            f"--strict: the manifests have {len(warnings)} warning(s): " + " | ".join(warnings),
            "Fix each (the warning says how), or opt an object out of a lint rule with the "
            f"annotation {LINT_IGNORE}: <rule> and a comment saying why.", code="strict")
