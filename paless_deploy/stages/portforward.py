"""Port-forwards for `dev --port-forward`: web's port and the MinIO console on localhost,
kept pointing at a Ready pod as rollouts replace pods.

Each target runs one port-forward through the Kubernetes door (adapters.kube.kubectl) on
a local port that stays the same for the whole session (the Service's port, else the next
free one, adapters.host), restarted on a new Ready pod when its pod goes away or is no
longer Ready, or when the forward ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from paless_deploy.adapters.host import free_local_port
from paless_deploy.adapters.kube.kubectl import KubectlPortForward
from paless_deploy.core.plan.devloop import ForwardTarget, forward_pod, pod_port
from paless_deploy.stages.watcher import PodsLoop

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube


@dataclass
class Forward:
    """One target's forward: its local port (fixed for the session) and current pod."""

    target: ForwardTarget
    local_port: int
    pod: str | None = None
    process: KubectlPortForward | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"{self.target.scheme}://127.0.0.1:{self.local_port}/"


class PortForwards:
    """Supervises the forwards of one namespace until stopped."""

    def __init__(self, kube: Kube, namespace: str, targets: Sequence[ForwardTarget],
                 say: Callable[[str], None],
                 on_table: Callable[[list[Forward]], None]) -> None:
        self.kube = kube
        self.namespace = namespace
        self.say = say
        self.on_table = on_table
        taken: set[int] = set()
        self.forwards: list[Forward] = []
        for target in targets:
            port = free_local_port(target.port, taken)
            taken.add(port)
            self.forwards.append(Forward(target, port))
        self._pods = PodsLoop(kube, namespace, self._point, "port-forward")
        self._lock = threading.Lock()
        self._shown: tuple[tuple[str, str | None], ...] = ()

    def start(self) -> PortForwards:
        if self.forwards:
            self._pods.start()
        return self

    def stop(self) -> None:
        """Close every forward (the local ports are free afterwards)."""
        self._pods.stop()
        with self._lock:
            for forward in self.forwards:
                _end(forward)

    def _point(self, pods: list[dict]) -> None:
        """Every forward at a Ready pod; the table again when one moved."""
        changed = False
        for forward in self.forwards:
            changed |= self._keep(forward, pods)
        shown = tuple((f.url, f.pod) for f in self.forwards)
        if changed and shown != self._shown and all(f.pod for f in self.forwards):
            self._shown = shown
            self.on_table(list(self.forwards))

    def _keep(self, forward: Forward, pods: list[dict]) -> bool:
        """Point the forward at a Ready pod; True when it changed."""
        alive = forward.process is not None and forward.process.alive()
        pod = forward_pod(pods, forward.target, forward.pod if alive else None)
        name = pod["metadata"]["name"] if pod is not None else None
        if alive and name == forward.pod:
            return False
        if forward.process is not None and not alive:
            said = forward.process.said
            self.say(f"port-forward {forward.target.name}: kubectl ended "
                     f"({' '.join(said[-2:]) or 'no output'}); starting it again")
        with self._lock:
            if self._pods.stopped:
                return False
            _end(forward)
            if pod is None or name is None:
                if forward.pod is not None:
                    self.say(f"port-forward {forward.target.name}: no Ready pod, waiting")
                forward.pod = None
                return True
            remote = pod_port(pod, forward.target.target_port)
            if remote is None:
                self.say(f"port-forward {forward.target.name}: pod {name} has no port "
                         f"{forward.target.target_port!r}")
                return False
            forward.process = KubectlPortForward(self.kube.kubeconfig, self.kube.context,
                                                 self.namespace, name, forward.local_port,
                                                 remote)
            problem = forward.process.wait_listening()
            if problem:
                self.say(f"port-forward {forward.target.name} to pod {name} failed: {problem}")
                _end(forward)
                forward.pod = None
                time.sleep(0.5)  # a pod that just became Ready may refuse for a moment
                return False
            again = forward.pod is not None
            forward.pod = name
            if again:
                self.say(f"port-forward {forward.target.name}: {forward.url} now reaches pod "
                         f"{name}")
            return True


def _end(forward: Forward) -> None:
    process, forward.process = forward.process, None
    if process is not None:
        process.stop()
