"""Log streaming for `dev`: every container of the pods running our apps, as it writes,
each line prefixed `[app/container]`; new pods are followed as they start, terminated ones
dropped; a container that restarts is followed again. Secret values are scrubbed.

A watch on the namespace's pods says which pods run our images; one thread per container
follows its log (timestamps on, so a reconnect resumes after the last line seen).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from paless_deploy.adapters.kube import ApiError, TransportError
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.plan.devloop import app_of_pod
from paless_deploy.core.reporting.report import scrub
from paless_deploy.stages.watcher import PodsLoop

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube

RETRY_S = 1.0  # after a stream ended while the container still runs


class LogStreamer:
    """Follows the logs of the pods running images of `repositories` (repository -> app)."""

    def __init__(self, kube: Kube, namespace: str, repositories: Mapping[str, str],
                 emit: Callable[[str, str, str], None], secrets: Sequence[str]) -> None:
        self.kube = kube
        self.namespace = namespace
        self.repositories = dict(repositories)
        self.emit = emit  # (app, container, line)
        self.secrets = list(secrets)
        self._pods = PodsLoop(kube, namespace, self._follow_pods, "logs")
        self._watcher = self._pods.watcher
        self._followed: dict[tuple[str, str], threading.Thread] = {}  # (pod uid, container)

    def start(self) -> LogStreamer:
        self._pods.start()
        return self

    def stop(self) -> None:
        self._pods.stop()

    def _follow_pods(self, pods: list[JsonDict]) -> None:
        for pod in pods:
            self._follow_pod(pod)

    def _follow_pod(self, pod: JsonDict) -> None:
        app = app_of_pod(pod, self.repositories)
        if app is None:
            return
        meta = pod["metadata"]
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            key = (str(meta.get("uid")), str(status.get("name")))
            state = status.get("state") or {}
            if key in self._followed or not (state.get("running") or state.get("terminated")):
                continue  # followed already, or nothing written yet
            thread = threading.Thread(target=self._follow, args=(app, meta["name"], key),
                                      name=f"log-{meta['name']}-{key[1]}", daemon=True)
            self._followed[key] = thread
            thread.start()

    def _pod(self, name: str, uid: str) -> JsonDict | None:
        pod = self._watcher.get("Pod", name)
        return pod if pod is not None and pod["metadata"].get("uid") == uid else None

    def _container_state(self, name: str, key: tuple[str, str]) -> tuple[str, int]:
        """("running" | "terminated" | "waiting" | "gone", restart count)."""
        pod = self._pod(name, key[0])
        if pod is None:
            return "gone", 0
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") == key[1]:
                state = status.get("state") or {}
                for word in ("running", "terminated", "waiting"):
                    if word in state:
                        return word, int(status.get("restartCount") or 0)
        return "waiting", 0

    def _follow(self, app: str, pod: str, key: tuple[str, str]) -> None:
        """Follow one container until its pod is gone (or stopped for good)."""
        container = key[1]
        last = ""  # timestamp of the last line shown: a reconnect skips what came before
        while not self._pods.stopped:
            state, restarts = self._container_state(pod, key)
            if state == "gone":
                return
            if state == "waiting":
                self._watcher.wait_for_change(self._watcher.version, 1.0)
                continue
            try:
                for raw in self.kube.follow_logs(self.namespace, pod, container,
                                                 since_time=last[:19] + "Z" if last else None):
                    if self._pods.stopped:
                        return
                    stamp, _, line = raw.partition(" ")
                    if last and stamp <= last:
                        continue
                    last = stamp
                    self.emit(app, container, scrub(line, self.secrets))
            except (ApiError, TransportError):
                pass  # not ready to serve logs yet, or the stream dropped: try again
            state_after, restarts_after = self._container_state(pod, key)
            if state_after == "gone" or (state_after == "terminated"
                                         and restarts_after == restarts and _final(
                                             self._pod(pod, key[0]))):
                return
            time.sleep(RETRY_S)


def _final(pod: JsonDict | None) -> bool:
    """A pod whose containers will not start again (Succeeded/Failed, or being deleted)."""
    if pod is None:
        return True
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed") or bool(pod["metadata"].get("deletionTimestamp"))

