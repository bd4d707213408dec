"""Scale: the generated tree of N apps x 10 objects (benchmarks/tree.py), for each N: first
deploy, no-op redeploy and one app changed, for paless-deploy, Helm (with --peers) and
kubectl; peak RSS of each tool; the cost per object, so growth with N is visible.

Each size gets its own namespaces, deleted (and waited for) before the next size, so that
one size's pods and objects do not weigh on the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness import Finished, Tools, delete_namespaces, say
from benchmarks.report import Row, at_most, compare, median, no_target
from benchmarks.stack import DEPLOY_TIMEOUT_S, failed_note, rotated, say_round
from benchmarks.tools import KubectlApply, KubectlWait, PalessDeploy, Target, Tool
from benchmarks.tree import OBJECTS_PER_APP, write_tree

RSS_LIMIT_MB = 150
GROWTH_LIMIT = 1.2  # cost per object at the largest N / at N=100


@dataclass
class ScaleBench:
    """The scale measurements of one benchmark run."""

    tools: Tools
    workdir: Path
    bench_id: str
    runs: int
    sizes: list[int]
    paless: PalessDeploy
    peers: list[Tool]  # helm (with --peers), kubectl apply + rollout status
    bare: KubectlApply
    created: list[str] = field(default_factory=list)
    samples: dict[int, dict[str, dict[str, list[Finished]]]] = field(default_factory=dict)

    def run(self) -> None:
        for n in self.sizes:
            self.measure(n)

    def measure(self, n: int) -> None:
        objects = n * OBJECTS_PER_APP + 1  # and the namespace
        project = write_tree(self.workdir / f"tree-{n}", n)
        say(f"scale N={n} ({objects} objects): building and pushing the tree's image "
            "(not timed)")
        self.tools.check(self.tools.pd(f"bench-{self.bench_id}", "push", project=project),
                         "paless-deploy push")
        tools = [self.paless, *self.peers]
        names = {t.name: f"bench-{self.bench_id}-s{n}-{t.slug}" for t in tools}
        names[self.bare.name] = names[next(t.name for t in self.peers
                                           if isinstance(t, KubectlWait))]
        self.created.extend(set(names.values()))
        samples = self.samples.setdefault(n, {})

        timeout = max(DEPLOY_TIMEOUT_S, 3 * n)  # the peers' --timeout grows with the tree

        def deploy(tool: Tool, target: Target, what: str) -> None:
            done = tool.deploy_ok(target, timeout, f"N={n}, {what}")
            samples.setdefault(what, {}).setdefault(tool.name, []).append(done)

        targets = {t.name: t.target(project, names[t.name]) for t in tools}
        targets[self.bare.name] = targets[next(t.name for t in self.peers
                                               if isinstance(t, KubectlWait))]
        say(f"scale N={n}: first deploy to ready")
        for tool in tools:
            deploy(tool, targets[tool.name], "first")
            say(f"  {tool.name} {samples['first'][tool.name][-1].seconds:.1f}s")
        # (no `rollout status` here: at N=100 its hundred sequential checks took 25 s a round,
        # and the bare apply is the fastest kubectl there is)
        noop = [t for t in [*tools, self.bare] if not isinstance(t, KubectlWait)
                or isinstance(t, KubectlApply)]
        say(f"scale N={n}: no-op redeploy, {self.runs} round(s) of {len(noop)} tools")
        for r in range(self.runs):
            for tool in rotated(noop, r):
                deploy(tool, targets[tool.name], "noop")
            say_round(r, samples["noop"])
        # one round fewer than the others (Helm and `rollout status` of a hundred
        # Deployments take a minute and a half a round: the run fits in 15 minutes)
        rounds = max(1, self.runs - 1)
        say(f"scale N={n}: app-000 changed and rolled out, {rounds} round(s)")
        for r in range(rounds):
            write_tree(project, n, changed={0: r + 1})
            changed = {t.name: t.target(project, names[t.name]) for t in tools}
            for tool in rotated(tools, r):
                deploy(tool, changed[tool.name], "change")
            say_round(r, samples["change"])
        last = n == self.sizes[-1]
        say(f"scale N={n}: deleting its namespaces"
            + ("" if last else " (and waiting, so the next size starts clean)"))
        delete_namespaces(self.tools, sorted(set(names.values())), wait_s=0 if last else 180)

    # -- results ------------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        rows: list[Row] = []
        ours = self.paless.name
        for n, samples in self.samples.items():
            objects = n * OBJECTS_PER_APP
            for what, title, targets in (
                    ("first", "first deploy to ready", {"helm --wait": 1.0,
                                                        "kubectl apply + rollout status": 1.0}),
                    ("noop", "no-op redeploy", {"helm --wait": 0.5, "kubectl apply": 1.2,
                                                "kubectl apply + rollout status": 1.0}),
                    ("change", "one app changed, rolled out",
                     {"helm --wait": 1.0, "kubectl apply + rollout status": 1.0})):
                mine = [f.seconds for f in samples.get(what, {}).get(ours, [])]
                for name, theirs in samples.get(what, {}).items():
                    if name == ours:
                        continue
                    limit = targets.get(name)
                    rows.append(compare(
                        f"N={n} ({objects} objects): {title} vs {name}", mine,
                        [f.seconds for f in theirs], name,
                        f"≤ {limit}x" if limit else "–",
                        at_most(limit) if limit else no_target,
                        ours_note=f"{_per_object(mine, objects)} ms/object",
                        baseline_note=failed_note(theirs)))
            rss = {name: max(f.peak_rss_mb for runs in samples.values()
                             for f in runs.get(name, [])) for name in
                   {k for runs in samples.values() for k in runs}}
            for name, their_rss in rss.items():
                if name == ours or name == "kubectl apply":
                    continue
                rows.append(compare(
                    f"N={n} ({objects} objects): peak RSS vs {name}", [rss[ours]], [their_rss],
                    name, f"≤ {RSS_LIMIT_MB} MB", lambda m, _r: m <= RSS_LIMIT_MB, unit="MB",
                    baseline_note="largest process of its tree"))
        rows += self.growth_rows()
        return rows

    def growth_rows(self) -> list[Row]:
        """Cost per object at each larger N against N=100 (or the smallest N measured)."""
        sizes = sorted(self.samples)
        if len(sizes) < 2:
            return []
        base = 100 if 100 in sizes else sizes[0]
        rows = []
        for n in (s for s in sizes if s > base):
            for what, title in (("first", "first deploy"), ("noop", "no-op redeploy"),
                                ("change", "one app changed")):
                cost = {size: self.cost(size, what) for size in (base, n)}
                if None in cost.values():
                    continue
                rows.append(compare(
                    f"cost per object, {title}: N={n} vs N={base}", [cost[n]], [cost[base]],
                    f"paless-deploy at N={base}", f"≤ {GROWTH_LIMIT}x (within 20 %)",
                    at_most(GROWTH_LIMIT), unit="ms/object"))
        return rows

    def cost(self, n: int, what: str) -> float | None:
        runs = self.samples.get(n, {}).get(what, {}).get(self.paless.name, [])
        seconds = median([f.seconds for f in runs])
        return None if seconds is None else 1000 * seconds / (n * OBJECTS_PER_APP)


def _per_object(seconds: list[float], objects: int) -> str:
    value = median(seconds)
    return "–" if value is None else f"{1000 * value / objects:.2f}"
