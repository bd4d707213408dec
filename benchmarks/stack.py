"""The Paless stack (dev overlay), every tool in one run: first deploy to ready, no-op
redeploy, one app changed and rolled out, and failure detection.

Each tool has its own namespace (bench-<id>-<tool>); the kubectl apply variants share
one. Rounds are interleaved, each round in a rotated order, so that load from other work
falls on every tool alike. The project is a copy of the checkout whose pods go to the
benchmark's own nodes (harness.place_on_bench_nodes); images are built and pushed before
anything is timed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.failures import (
    CASES,
    FailureCase,
    FailureSample,
    describe,
    run_paless,
    run_peer,
    say_sample,
    wait_failures_gone,
)
from benchmarks.harness import (
    BenchError,
    Finished,
    Tools,
    copy_project,
    delete_namespaces,
    patch_worker_template,
    place_on_bench_nodes,
    render_objects,
    say,
)
from benchmarks.report import Row, at_most, compare, median, no_target
from benchmarks.tools import KubectlApply, KubectlWait, PalessDeploy, Target, Tool
from benchmarks.tree import CHANGE_ANNOTATION

DEPLOY_TIMEOUT_S = 300  # a healthy deploy that takes longer is a broken benchmark
PODS_PER_STACK = 14
CPU_PER_STACK = 4.0


def rotated(items: Sequence[Tool], by: int) -> list[Tool]:
    """The tools in the order of round `by`: each goes first in turn."""
    by %= max(1, len(items))
    return [*items[by:], *items[:by]]


@dataclass
class StackBench:
    """The stack measurements of one benchmark run."""

    tools: Tools
    workdir: Path
    bench_id: str
    runs: int
    quick: bool
    paless: PalessDeploy
    peers: list[Tool]  # helm (with --peers), kubectl apply + rollout status, the old script
    bare: KubectlApply
    peer_timeout_s: float
    created: list[str] = field(default_factory=list)
    samples: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @staticmethod
    def pods_needed(peers: int, quick: bool) -> tuple[int, float]:
        """Pods and CPUs at the busiest moment (the failure runs: a stack per tool and
        failure kind, beside the tools' own)."""
        kinds = 1 if quick else len(CASES)
        stacks = (peers + 1) * (kinds + 1) + 2
        return stacks * PODS_PER_STACK, stacks * CPU_PER_STACK

    # -- set-up -------------------------------------------------------------------------------

    def project(self) -> Path:
        """A copy of the checkout on the benchmark's nodes, its images in the registry."""
        project = place_on_bench_nodes(copy_project(self.workdir / "stack"))
        say("building and pushing the stack's images (not timed)")
        self.tools.check(self.tools.pd(f"bench-{self.bench_id}", "push", project=project),
                         "paless-deploy push")
        return project

    def target(self, tool: Tool, project: Path, namespace: str) -> Target:
        """The target of one deploy; its files written (outside the timing)."""
        objects = () if isinstance(tool, PalessDeploy) else tuple(
            render_objects(self.tools, namespace, project))
        target = Target(namespace, project, objects)
        tool.prepare(target)
        return target

    def record(self, what: str, tool: Tool, done: Finished) -> None:
        self.samples.setdefault(what, {}).setdefault(tool.name, []).append(done)

    def ok(self, done: Finished, what: str) -> Finished:
        if done.returncode != 0:
            raise BenchError(f"{what} exited {done.returncode}:\n{done.tail()}")
        return done

    # -- measurements -------------------------------------------------------------------------

    def run(self, core: Any) -> None:
        project = self.project()
        tools = [self.paless, *self.peers]
        rounds = 1 if self.quick else self.runs
        say(f"stack: first deploy to ready, {rounds} round(s) of {len(tools)} tools")
        main: dict[str, Target] = {}
        for r in range(rounds):
            for tool in rotated(tools, r):
                ns = f"bench-{self.bench_id}-{tool.slug}-{r}"
                self.created.append(ns)
                target = self.target(tool, project, ns)
                done = self.ok(tool.deploy(target, DEPLOY_TIMEOUT_S), f"{tool.name} first deploy")
                self.record("first", tool, done)
                say(f"  round {r + 1}: {tool.name} {done.seconds:.2f}s")
                if r < rounds - 1:
                    delete_namespaces(self.tools, [ns])
                else:
                    main[tool.name] = target
        main[self.bare.name] = main[next(t.name for t in self.peers if isinstance(t, KubectlWait))]

        say(f"stack: no-op redeploy, {self.runs} round(s)")
        for r in range(self.runs):
            for tool in rotated([*tools, self.bare], r):
                done = self.ok(tool.deploy(main[tool.name], DEPLOY_TIMEOUT_S),
                               f"{tool.name} no-op")
                self.record("noop", tool, done)
            say(f"  round {r + 1}: " + ", ".join(
                f"{name} {seconds[-1].seconds:.2f}s" for name, seconds in
                self.samples["noop"].items()))

        say(f"stack: the worker changed and rolled out, {rounds} round(s)")
        for r in range(rounds):
            patch_worker_template(project, {CHANGE_ANNOTATION: f"{self.bench_id}-{r}"})
            targets = {t.name: self.target(t, project, main[t.name].namespace) for t in tools}
            for tool in rotated(tools, r):
                done = self.ok(tool.deploy(targets[tool.name], DEPLOY_TIMEOUT_S),
                               f"{tool.name} change")
                self.record("change", tool, done)
            say(f"  round {r + 1}: " + ", ".join(
                f"{name} {seconds[-1].seconds:.2f}s" for name, seconds in
                self.samples["change"].items()))
        self.failures(core, project, main)

    def failures(self, core: Any, base: Path, main: dict[str, Target]) -> None:
        """Each tool deploys each failing change onto a healthy stack: the peers all at once
        in the background, each pair in a namespace of its own deployed healthy first (not
        timed; they mostly wait for their timeout); paless-deploy meanwhile, one run after
        the other on its own stack, restored after each (contended by the peers' deploys:
        not flattered)."""
        cases = CASES[:1] if self.quick else CASES
        runs = 1 if self.quick else min(self.runs, 3)
        say(f"stack: failure detection ({', '.join(c.code for c in cases)}): peers once each "
            f"(--timeout {self.peer_timeout_s:.0f}s) in the background, paless-deploy "
            f"{runs} run(s) each")
        self.samples["failures"] = {}
        namespace = main[self.paless.name].namespace
        pairs = [(i, case, tool) for i, case in enumerate(cases) for tool in self.peers]
        with ThreadPoolExecutor(max_workers=len(pairs)) as pool:
            # first every peer's healthy stack (not timed), so that paless-deploy's runs
            # are not contended by a dozen first deploys
            failing = list(pool.map(lambda p: self.healthy_peer(*p, base), pairs))
            futures = [pool.submit(run_peer, tool, target, case, self.peer_timeout_s)
                       for (_, case, tool), target in zip(pairs, failing, strict=True)]
            for r in range(runs):
                for i, case in enumerate(cases):
                    run_id = f"{self.bench_id}-{i}-{r}"
                    project = copy_project(self.workdir / f"fail-{i}-{r}", base)
                    case.make(project, run_id)
                    sample = run_paless(self.paless, core, Target(namespace, project), case,
                                        run_id, self.peer_timeout_s)
                    say_sample(sample)
                    self.samples["failures"].setdefault(case.code, []).append(sample)
                    self.restore(core, Target(namespace, base))
            for future in futures:
                sample = future.result()
                say_sample(sample)
                self.samples["failures"].setdefault(sample.code, []).append(sample)

    def healthy_peer(self, index: int, case: FailureCase, tool: Tool, base: Path) -> Target:
        """A peer's healthy stack in a namespace of its own; the failing target for it."""
        # (never the case's code in a name: the output must not name the cause by chance)
        ns = f"bench-{self.bench_id}-f{index}-{tool.slug}"
        self.created.append(ns)
        self.ok(tool.deploy(self.target(tool, base, ns), DEPLOY_TIMEOUT_S),
                f"{tool.name} (healthy, before {case.code})")
        project = copy_project(self.workdir / f"fail-{index}-{tool.slug}", base)
        case.make(project, f"{self.bench_id}-{index}-{tool.slug}")
        objects = tuple(render_objects(self.tools, ns, project))
        target = Target(ns, project, objects)
        tool.prepare(target)
        return target

    def restore(self, core: Any, target: Target, attempts: int = 3) -> None:
        """paless-deploy the healthy stack again until it exits 0 and no object of a failing
        run is left (a run may report the previous, failing ReplicaSet's pods while they go
        away: then it runs again)."""
        for attempt in range(1, attempts + 1):
            done = self.paless.deploy(target, DEPLOY_TIMEOUT_S)
            gone = wait_failures_gone(core, target.namespace)
            if done.returncode == 0 and gone:
                return
            say(f"restoring {target.namespace}: exit {done.returncode} (attempt {attempt})")
        raise BenchError(f"could not restore a healthy stack in {target.namespace}:\n"
                         f"{done.tail()}")

    # -- results ------------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        rows: list[Row] = []
        ours = self.paless.name
        for what, title in (("first", "stack: first deploy to ready"),
                            ("noop", "stack: no-op redeploy"),
                            ("change", "stack: worker changed, rolled out")):
            samples = self.samples.get(what, {})
            mine = [f.seconds for f in samples.get(ours, [])]
            for name, theirs in samples.items():
                if name == ours:
                    continue
                target, limit = TARGETS[(what, name)]
                rows.append(compare(f"{title} vs {name}", mine, [f.seconds for f in theirs],
                                    name, target, at_most(limit) if limit else no_target,
                                    baseline_note=NOTES.get(name, "")))
        rows += self.failure_rows()
        return rows

    def failure_rows(self) -> list[Row]:
        rows = []
        for case in CASES:
            samples: list[FailureSample] = self.samples.get("failures", {}).get(case.code, [])
            mine = [s for s in samples if s.tool == self.paless.name]
            if not mine:
                continue
            cause = [math.inf if s.cause_s is None else s.cause_s for s in mine]
            named = sum(s.named for s in mine)
            note = (f"names it in {named}/{len(mine)}, exit "
                    + "/".join(sorted({str(s.exit_code) for s in mine})))
            for peer in (s for s in samples if s.tool != self.paless.name):
                target, limit = FAILURE_TARGETS.get(peer.tool, ("–", math.inf))
                if peer.tool == "old script":
                    rows.append(Row(
                        f"failure `{case.code}` ({case.title}): cause named vs {peer.tool}",
                        median(cause), peer.exit_s, peer.tool, None,
                        "exit 1 naming the cause", named == len(mine) and all(
                            s.exit_code == 1 for s in mine), ours_note=note,
                        baseline_note=describe(peer)))
                    continue
                rows.append(compare(
                    f"failure `{case.code}` ({case.title}): cause named vs {peer.tool}",
                    cause, [peer.exit_s], peer.tool, target, at_most(limit), ours_note=note,
                    baseline_note=describe(peer)))
            latency = median([math.inf if s.latency_s is None else s.latency_s for s in mine])
            rows.append(Row(f"detection latency `{case.code}`: in the API -> reported",
                            latency, None, "the benchmark's own watch", None, "≤ 5 s",
                            None if latency is None else latency <= 5))
        return rows


# (measurement, peer) -> (target as printed, ratio limit; None: no target)
TARGETS: dict[tuple[str, str], tuple[str, float | None]] = {
    ("first", "helm --wait"): ("≤ 1.0x (no slower than Helm)", 1.0),
    ("first", "kubectl apply + rollout status"): ("≤ 1.0x", 1.0),
    ("first", "old script"): ("–", None),
    ("noop", "helm --wait"): ("≤ 0.5x", 0.5),
    ("noop", "kubectl apply + rollout status"): ("≤ 1.0x", 1.0),
    ("noop", "kubectl apply"): ("≤ 1.5x", 1.5),
    ("noop", "old script"): ("≤ 0.2x (≥ 5x faster)", 0.2),
    ("change", "helm --wait"): ("≤ 1.0x", 1.0),
    ("change", "kubectl apply + rollout status"): ("≤ 1.0x", 1.0),
    ("change", "old script"): ("–", None),
}
FAILURE_TARGETS: dict[str, tuple[str, float]] = {
    "helm --wait": ("≤ 0.05x (≥ 20x sooner)", 0.05),
    "kubectl apply + rollout status": ("≤ 0.05x (≥ 20x sooner)", 0.05),
}
NOTES = {"kubectl apply": "waits for nothing", "old script": "waits for nothing, exits 0"}
