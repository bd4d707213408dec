"""The benchmark's own kwok nodes: tainted, so only the generated trees' pods land on them.

The sandbox's kwok manages every Node object (`--manage-all-nodes`), so a node is one API
object away. Scale runs need hundreds of pods per tool at once (N=300: 900 pods for three
tools), more than the sandbox's four shared nodes hold, and other work shares those nodes.
Each run creates its nodes named after its id and deletes them at the end; nodes left by a
run that was killed are deleted by the next run after two hours.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from datetime import UTC, datetime, timedelta

from benchmarks.harness import BenchError, Tools, run, say
from benchmarks.tree import NODE_LABEL

PODS_PER_NODE = 110  # the kubelet's default, as on the sandbox's nodes
CPUS_PER_NODE = 32
CAPACITY = {"cpu": str(CPUS_PER_NODE), "memory": "256Gi", "pods": str(PODS_PER_NODE),
            "ephemeral-storage": "200Gi"}
RUN_LABEL = "paless.io/bench-run"
STALE_AFTER = timedelta(hours=2)


def nodes_for(pods: int, cpus: float = 0) -> int:
    """Nodes for `pods` pods requesting `cpus` CPUs, and one more for rolling updates."""
    return max(math.ceil(pods / PODS_PER_NODE), math.ceil(cpus / CPUS_PER_NODE)) + 1


class BenchNodes:
    """Creates and deletes the tainted kwok nodes of one benchmark run."""

    def __init__(self, tools: Tools, bench_id: str) -> None:
        self.tools, self.bench_id = tools, bench_id
        self.names: list[str] = []

    def ensure(self, count: int) -> None:
        """At least `count` Ready nodes of this run."""
        self._delete_stale()
        wanted = [f"bench-{self.bench_id}-node-{i}" for i in range(1, count + 1)]
        new = [n for n in wanted if n not in self.names]
        if not new:
            return
        say(f"adding {len(new)} tainted kwok node(s) for the generated trees' pods")
        items = [self._node(name) for name in new]
        manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        self._kubectl_stdin(manifest, "apply", "--server-side", "--field-manager=paless-bench",
                            "-f", "-")
        self.names.extend(new)
        for name in new:  # capacity is status: kwok keeps what the status subresource says
            self._kubectl("patch", "node", name, "--subresource=status", "--type=merge", "-p",
                          json.dumps({"status": {"capacity": CAPACITY,
                                                 "allocatable": CAPACITY}}))
        self._wait_ready(new)

    def delete(self, attempts: int = 3) -> None:
        """Delete this run's nodes (their pods went with the namespaces); a few tries, for
        an API server that is restarting. What is left is deleted by a later run."""
        for attempt in range(attempts):
            if not self.names:
                return
            done = run(self.tools.kubectl("delete", "node", *self.names, "--ignore-not-found",
                                          "--wait=false"), self.tools.env, timeout=120)
            if done.returncode == 0:
                self.names = []
                return
            time.sleep(2 * (attempt + 1))
        say(f"could not delete nodes {', '.join(self.names)}: {done.tail(2)}")

    def _node(self, name: str) -> dict:
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name,
                             "labels": {"kubernetes.io/hostname": name,
                                        "kubernetes.io/os": "linux",
                                        "kubernetes.io/arch": "amd64", "type": "kwok",
                                        NODE_LABEL: "true", RUN_LABEL: self.bench_id},
                             "annotations": {"kwok.x-k8s.io/node": "fake",
                                             "node.alpha.kubernetes.io/ttl": "0"}},
                "spec": {"taints": [{"key": NODE_LABEL, "value": "true",
                                     "effect": "NoSchedule"}]},
                "status": {"capacity": CAPACITY, "allocatable": CAPACITY}}

    def _wait_ready(self, names: list[str], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self._kubectl("get", "nodes", "-l", f"{RUN_LABEL}={self.bench_id}",
                                 "-o", "json")
            ready = {n["metadata"]["name"] for n in json.loads(done.stdout)["items"]
                     if any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in (n.get("status") or {}).get("conditions") or [])}
            if set(names) <= ready:
                return
            time.sleep(0.5)
        raise BenchError(f"kwok did not make nodes {', '.join(names)} Ready within "
                         f"{timeout:.0f}s (is kwok running? `scripts/sandbox status`)")

    def _delete_stale(self) -> None:
        """Nodes of runs that were killed before they could delete theirs."""
        done = self._kubectl("get", "nodes", "-l", RUN_LABEL, "-o", "json")
        now = datetime.now(UTC)
        stale = [n["metadata"]["name"] for n in json.loads(done.stdout)["items"]
                 if n["metadata"]["labels"].get(RUN_LABEL) != self.bench_id
                 and now - datetime.fromisoformat(n["metadata"]["creationTimestamp"]) > STALE_AFTER]
        if stale:
            say(f"deleting {len(stale)} node(s) left by an earlier benchmark run")
            self._kubectl("delete", "node", *stale, "--ignore-not-found", "--wait=false")

    def _kubectl(self, *args: str) -> subprocess.CompletedProcess:
        return self._kubectl_stdin(None, *args)

    def _kubectl_stdin(self, stdin: str | None, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(self.tools.kubectl(*args), input=stdin, text=True,
                              capture_output=True, env=dict(self.tools.env), check=False,
                              timeout=120)
        if done.returncode != 0:
            raise BenchError(f"kubectl {' '.join(args[:3])} failed: {done.stderr.strip()}")
        return done
