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
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.failures import (
    ALONE,
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
    say,
)
from benchmarks.report import Row, at_most, compare, median, no_target
from benchmarks.tools import KubectlApply, KubectlWait, PalessDeploy, Target, Tool
from benchmarks.tree import CHANGE_ANNOTATION

DEPLOY_TIMEOUT_S = 300  # a healthy deploy that takes longer is a broken benchmark
PODS_PER_STACK = 14
CPU_PER_STACK = 4.0


def failed_note(runs: Sequence[Finished], note: str = "") -> str:
    """A peer's note, and how many of its runs failed (their time: until they gave up)."""
    failed = [f for f in runs if f.returncode != 0]
    if not failed:
        return note
    said = f"failed {len(failed)} of {len(runs)} (timed out: counted when it gave up)"
    return f"{note}; {said}" if note else said


def say_round(r: int, samples: Mapping[str, list[Finished]]) -> None:
    say(f"  round {r + 1}: " + ", ".join(f"{name} {runs[-1].seconds:.2f}s"
                                         for name, runs in samples.items()))


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
    # after run(): the healthy stack each tool deployed last, and the project it came from
    # (the inner loop edits copies of it in those namespaces)
    deployed: dict[str, Target] = field(default_factory=dict)
    source: Path | None = None

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

    def record(self, what: str, tool: Tool, done: Finished) -> None:
        self.samples.setdefault(what, {}).setdefault(tool.name, []).append(done)

    def round(self, what: str, r: int, tools: list[Tool], targets: Mapping[str, Target]
              ) -> None:
        """One interleaved round: each tool deploys its target, in round `r`'s order."""
        for tool in rotated(tools, r):
            self.record(what, tool, tool.deploy_ok(targets[tool.name], DEPLOY_TIMEOUT_S, what))
        say_round(r, self.samples[what])

    # -- measurements -------------------------------------------------------------------------

    def run(self, core: Any) -> None:
        project = self.project()
        tools = [self.paless, *self.peers]
        waiting = [t for t in tools if t.waits]  # the old script only where it means something
        rounds = 1 if self.quick else self.runs
        say(f"stack: first deploy to ready, {rounds} round(s) of {len(waiting)} tools")
        main: dict[str, Target] = {}
        for tool in tools:
            if not tool.waits:  # set up once, not timed
                main[tool.name] = tool.target(project, f"bench-{self.bench_id}-{tool.slug}-0")
                self.created.append(main[tool.name].namespace)
                tool.deploy_ok(main[tool.name], DEPLOY_TIMEOUT_S, "first deploy")
        for r in range(rounds):
            for tool in rotated(waiting, r):
                ns = f"bench-{self.bench_id}-{tool.slug}-{r}"
                self.created.append(ns)
                target = tool.target(project, ns)
                done = tool.deploy_ok(target, DEPLOY_TIMEOUT_S, "first deploy")
                self.record("first", tool, done)
                say(f"  round {r + 1}: {tool.name} {done.seconds:.2f}s")
                if r < rounds - 1:
                    delete_namespaces(self.tools, [ns])
                else:
                    main[tool.name] = target
        main[self.bare.name] = main[next(t.name for t in self.peers if isinstance(t, KubectlWait))]

        say(f"stack: no-op redeploy, {self.runs} round(s)")
        for r in range(self.runs):
            self.round("noop", r, [*tools, self.bare], main)

        say(f"stack: the worker changed and rolled out, {rounds} round(s)")
        for r in range(rounds):
            # not number-like: kustomize reads YAML 1.2, where an unquoted 17937e-0 is a float
            patch_worker_template(project, {CHANGE_ANNOTATION: f"rev-{self.bench_id}-{r}"})
            self.round("change", r, waiting, {t.name: t.target(project, main[t.name].namespace)
                                              for t in waiting})
        self.failures(core, project, main)
        self.deployed, self.source = main, project

    def failures(self, core: Any, base: Path, main: dict[str, Target]) -> None:
        """Each tool deploys each failing change onto a healthy stack: paless-deploy one run
        after the other on its own stack, restored after each; the peers all at once, each
        pair in a namespace of its own, deployed healthy first."""
        cases = CASES[:1] if self.quick else CASES
        runs = 1 if self.quick else self.runs
        say(f"stack: failure detection ({', '.join(c.code for c in cases)}): paless-deploy "
            f"{runs} run(s) each, then the peers once each, all at once (--timeout "
            f"{self.peer_timeout_s:.0f}s)")
        self.samples["failures"] = {}
        namespace = main[self.paless.name].namespace
        pairs = [(i, case, tool) for i, case in enumerate(cases) for tool in self.peers]
        with ThreadPoolExecutor(max_workers=len(pairs)) as pool:
            # every peer's healthy stack first (not timed): a dozen first deploys at once
            setup = pool.map(lambda p: self.healthy_peer(p[0], p[1], p[2], base), pairs)
            failing = list(setup)
            for r in range(runs):  # then paless-deploy's runs, not contended by those
                for i, case in enumerate(cases):
                    run_id = f"{self.bench_id}-{i}-{r}"
                    project = copy_project(self.workdir / f"fail-{i}-{r}", base)
                    case.make(project, run_id)
                    sample = run_paless(self.paless, core, Target(namespace, project), case,
                                        run_id, self.peer_timeout_s)
                    say_sample(sample)
                    self.samples["failures"].setdefault(case.code, []).append(sample)
                    self.restore(core, Target(namespace, base))
            # then the peers', all at once: they mostly wait for their timeout
            samples = list(pool.map(lambda pt: run_peer(pt[0][2], pt[1], pt[0][1],
                                                        self.peer_timeout_s),
                                    zip(pairs, failing, strict=True)))
        for (i, case, tool), sample in zip(pairs, samples, strict=True):
            if tool.waits and sample.exit_s < self.peer_timeout_s:
                # it ended before its timeout, so a dozen peers beside it weighed on its
                # figure: measure it again alone (on a fresh healthy stack)
                alone = run_peer(tool, self.healthy_peer(i, case, tool, base, "a"), case,
                                 self.peer_timeout_s)
                sample = replace(alone, note=f"{ALONE} {alone.note}")
            say_sample(sample)
            self.samples["failures"].setdefault(sample.code, []).append(sample)

    def healthy_peer(self, index: int, case: FailureCase, tool: Tool, base: Path,
                     again: str = "") -> Target:
        """A peer's healthy stack in a namespace of its own; the failing target for it."""
        # (never the case's code in a name: the output must not name the cause by chance)
        ns = f"bench-{self.bench_id}-f{index}{again}-{tool.slug}"
        self.created.append(ns)
        tool.deploy_ok(tool.target(base, ns), DEPLOY_TIMEOUT_S, f"healthy, before {case.code}")
        project = copy_project(self.workdir / f"fail-{index}{again}-{tool.slug}", base)
        case.make(project, f"{self.bench_id}-{index}-{tool.slug}")
        return tool.target(project, ns)

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
                                    baseline_note=failed_note(theirs, NOTES.get(name, ""))))
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
