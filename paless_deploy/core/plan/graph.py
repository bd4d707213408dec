"""The deploy graph: each rendered object, the phase that labels its group, and what it
waits for (core.plan.rules), checked for cycles and cut into waves.

A deploy applies an object as soon as everything it needs is ready (or, for the needs
that ask no more, applied), so independent objects go at once. Definitions (CRDs and
the tree's Namespaces) need nothing: they are applied and awaited before the server-side
dry run of everything else. The waves are what `plan` shows: an object's wave is one more
than the latest wave among its needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.diagnosis.lint import check_policy_annotations
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.manifests.kinds import DEFINITION_KINDS
from paless_deploy.core.manifests.labels import DEPENDS_ON, PHASE
from paless_deploy.core.manifests.objects import ref_of
from paless_deploy.core.plan.plan import PHASE_ORDER, Phase, Placement, group_phases, place
from paless_deploy.core.plan.references import namespace_in
from paless_deploy.core.plan.rules import RULES, Need, Tree


@dataclass(frozen=True)
class Node:
    """One object of the deploy: its phase label, why, and what it waits for."""

    obj: JsonDict
    phase: str
    reason: str  # why it carries that phase label
    needs: tuple[Need, ...] = ()

    @property
    def ref(self) -> str:
        return ref_of(self.obj)

    @property
    def definition(self) -> bool:
        """Applied and awaited before the dry run of the rest (CRDs, Namespaces)."""
        return self.obj.get("kind") in DEFINITION_KINDS


@dataclass(frozen=True)
class DeployGraph:
    """The objects of one deploy (in render order) and their needs."""

    nodes: tuple[Node, ...]

    def waves(self) -> list[list[int]]:
        """Indices by wave: wave 0 needs nothing, wave n needs something of wave n-1."""
        level: dict[int, int] = {}

        def wave(i: int) -> int:
            if i not in level:
                stack, order = [i], []
                while stack:  # iterative: a long chain of needs must not hit recursion
                    j = stack.pop()
                    order.append(j)
                    stack += [n.on for n in self.nodes[j].needs if n.on not in level]
                for j in reversed(order):
                    level[j] = 1 + max((level.get(n.on, 0) for n in self.nodes[j].needs),
                                       default=-1)
            return level[i]

        out: list[list[int]] = []
        for i in range(len(self.nodes)):
            w = wave(i)
            out += [[] for _ in range(w + 1 - len(out))]
            out[w].append(i)
        return out

    def waiting(self) -> set[int]:
        """The objects that wait for another to be ready, directly or through what they
        need (an object needing only applied ones waits for nothing running)."""
        out: set[int] = set()
        for members in self.waves():  # needs are always of an earlier wave
            out.update(i for i in members
                       if any(n.ready or n.on in out for n in self.nodes[i].needs))
        return out

    def wave_of(self) -> dict[int, int]:
        return {i: w for w, members in enumerate(self.waves()) for i in members}

    def phases(self) -> list[Phase]:
        """The objects grouped by their phase labels (core.plan.plan.Phase)."""
        return group_phases([n.obj for n in self.nodes],
                            [Placement(n.phase, n.reason) for n in self.nodes])

    def groups(self) -> list[tuple[str, list[int]]]:
        """The phase labels in their order, each with its objects (render order)."""
        return [(phase, members) for phase in PHASE_ORDER
                if (members := [i for i, n in enumerate(self.nodes) if n.phase == phase])]

    def describe_needs(self, i: int) -> list[str]:
        """What object `i` waits for, one line each (`Service/minio: why`); the needs an
        annotated phase brings are one line naming the phases."""
        node = self.nodes[i]
        lines, phases = [], []
        for need in node.needs:
            if need.rule == "phase":
                phases.append(self.nodes[need.on].phase)
                continue
            other = self.nodes[need.on].obj
            where = namespace_in(other)
            shown = self.nodes[need.on].ref + (
                f" in {where}" if where and where != namespace_in(node.obj) else "")
            lines.append(f"{shown}{'' if need.ready else ' (applied)'}: {need.why}")
        if phases:
            lines.append(f"every workload and Job of the phases before {node.phase}: "
                         f"annotation {PHASE}={node.phase}")
        return lines

    def dependents(self) -> dict[int, list[int]]:
        """For each object, the objects that wait for it."""
        out: dict[int, list[int]] = {i: [] for i in range(len(self.nodes))}
        for i, node in enumerate(self.nodes):
            for need in node.needs:
                out[need.on].append(i)
        return out


def build_graph(objects: Sequence[JsonDict]) -> DeployGraph:
    """The deploy graph of the rendered objects.

    ConfigError (exit 2) for an annotation that cannot be read (a phase that does not
    exist, a `paless.io/depends-on` naming nothing of the tree, a policy annotation) and
    for a cycle among the needs, naming it.
    """
    check_policy_annotations(list(objects))
    placements = place(objects)
    tree = Tree(objects, placements)
    found: list[dict[int, Need]] = [{} for _ in objects]
    inferred: list[tuple[int, Need]] = []
    for rule in RULES:
        for i, obj in enumerate(objects):
            if obj.get("kind") in DEFINITION_KINDS:
                continue  # definitions go first, needing nothing
            for need in rule.finds(i, obj, tree):
                need = Need(need.on, need.why, rule.name, need.ready)
                if need.on == i:
                    continue
                if rule.inferred:
                    inferred.append((i, need))
                else:
                    _add(found[i], need)
    cycle = _cycle(found)
    if cycle:
        raise _cycle_error(objects, found, cycle)
    for i, need in inferred:
        if need.on not in found[i] and not _reaches(found, need.on, i):
            _add(found[i], need)
    return DeployGraph(tuple(Node(obj, p.phase, p.reason, tuple(found[i].values()))
                             for i, (obj, p) in enumerate(zip(objects, placements,
                                                              strict=True))))


def _add(needs: dict[int, Need], need: Need) -> None:
    """One need per object needed: the first reason, waiting for ready if any asks it."""
    first = needs.get(need.on)
    if first is None:
        needs[need.on] = need
    elif need.ready and not first.ready:
        needs[need.on] = Need(first.on, first.why, first.rule, True)


def _reaches(found: Sequence[dict[int, Need]], start: int, goal: int) -> bool:
    """`start` waits, directly or through others, for `goal`."""
    seen, stack = {start}, [start]
    while stack:
        i = stack.pop()
        if i == goal:
            return True
        for j in found[i]:
            if j not in seen:
                seen.add(j)
                stack.append(j)
    return False


def _cycle(found: Sequence[dict[int, Need]]) -> list[int]:
    """One cycle of needs (each waits for the next, the last for the first), or []."""
    state = [0] * len(found)  # 0 unseen, 1 on the path, 2 done
    for root in range(len(found)):
        if state[root]:
            continue
        path: list[int] = []
        stack: list[tuple[int, list[int]]] = [(root, list(found[root]))]
        state[root] = 1
        path.append(root)
        while stack:
            i, todo = stack[-1]
            if not todo:
                stack.pop()
                path.pop()
                state[i] = 2
                continue
            j = todo.pop()
            if state[j] == 1:
                return path[path.index(j):]
            if state[j] == 0:
                state[j] = 1
                path.append(j)
                stack.append((j, list(found[j])))
    return []


def _cycle_error(objects: Sequence[JsonDict], found: Sequence[dict[int, Need]],
                 cycle: list[int]) -> ConfigError:
    steps = []
    for k, i in enumerate(cycle):
        j = cycle[(k + 1) % len(cycle)]
        steps.append(f"{_where(objects[i])} waits for {_where(objects[j])} "
                     f"({found[i][j].why})")
    return ConfigError(
        "The manifests' dependencies form a cycle, so no order can deploy them: "
        + "; ".join(steps) + ".",
        f"Break the cycle: remove or change the {DEPENDS_ON} or {PHASE} annotation among "
        "them, or the reference that makes one wait for the other (`paless-deploy plan` "
        "shows each object's needs and why).",
        code="dependency-cycle", resource=ref_of(objects[cycle[0]]))


def _where(obj: JsonDict) -> str:
    namespace = namespace_in(obj)
    return ref_of(obj) + (f" (in {namespace})" if namespace else "")
