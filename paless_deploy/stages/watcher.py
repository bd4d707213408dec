"""An in-memory mirror of one namespace, kept current by watches (one thread per kind).

Lists once, then watches from the list's resourceVersion; on 410 Gone it relists,
on transient errors it reconnects from the last resourceVersion it saw.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Self

from paless_deploy.adapters.kube import ApiError, TransportError, is_transient
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.manifests.kinds import Kind, by_kind

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube

WATCH_TIMEOUT_S = 240  # server-side timeout of one watch request; then it reconnects
DEFAULT_KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "Job", "Pod", "PersistentVolumeClaim",
                 "Event")


class NamespaceWatcher:
    """Mirror of some kinds of a namespace; `changed` wakes waiters on every event."""

    def __init__(self, kube: Kube, namespace: str, kinds: list[str] | None = None) -> None:
        self.kube = kube
        self.namespace = namespace
        self._kinds: dict[str, Kind] = {k: by_kind(k) for k in kinds or DEFAULT_KINDS}
        self._cache: dict[str, dict[str, JsonDict]] = {k: {} for k in self._kinds}
        self._synced: dict[str, threading.Event] = {k: threading.Event() for k in self._kinds}
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)
        self._version = 0  # bumped on every event
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []

    # -- lifecycle -----------------------------------------------------------

    def start(self, timeout: float = 30.0) -> NamespaceWatcher:
        """Start one watch thread per kind and wait for every initial list."""
        for kind in self._kinds:
            self._start_thread(kind)
        deadline = time.monotonic() + timeout
        for kind in self._kinds:
            self._synced[kind].wait(max(0.0, deadline - time.monotonic()))
        return self

    def mirror(self, api_version: str, kind: str, timeout: float = 30.0) -> None:
        """Mirror one more kind (any the cluster serves, CRDs included) from now on."""
        with self._lock:
            if kind in self._kinds:
                return
            self._kinds[kind] = self.kube.kind(api_version, kind)
            self._cache[kind] = {}
            self._synced[kind] = threading.Event()
        self._start_thread(kind)
        self._synced[kind].wait(timeout)

    def _start_thread(self, kind: str) -> None:
        t = threading.Thread(target=self._run, args=(kind,), name=f"watch-{kind}", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        with self.changed:
            self.changed.notify_all()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reading -------------------------------------------------------------

    def get(self, kind: str, name: str) -> JsonDict | None:
        with self._lock:
            return self._cache.get(kind, {}).get(name)

    def items(self, kind: str) -> list[JsonDict]:
        with self._lock:
            return list(self._cache.get(kind, {}).values())

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Block until an event arrives after `since` (or timeout); the new version."""
        with self.changed:
            if self._version == since and not self._stop.is_set():
                self.changed.wait(timeout)
            return self._version

    def poke(self) -> None:
        """Wake the waiters as an event would: something they wait on changed outside the
        namespace's watches (an apply finished, an object became ready)."""
        with self.changed:
            self._version += 1
            self.changed.notify_all()

    def events_for(self, kind: str, name: str) -> list[JsonDict]:
        """Events whose involvedObject is kind/name, oldest first."""
        evs = [e for e in self.items("Event")
               if (e.get("involvedObject") or {}).get("kind") == kind
               and (e.get("involvedObject") or {}).get("name") == name]
        return sorted(evs, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    # -- the watch loop ------------------------------------------------------

    def _list(self, kind: str) -> str:
        items, version = self.kube.list(self._kinds[kind], self.namespace)
        with self.changed:
            self._cache[kind] = {item["metadata"]["name"]: item for item in items}
            self._version += 1
            self.changed.notify_all()
        self._synced[kind].set()
        return version

    def _run(self, kind: str) -> None:
        rv = ""
        backoff = 0.2
        while not self._stop.is_set():
            try:
                if not rv:
                    rv = self._list(kind)
                for event in self.kube.watch(self._kinds[kind], self.namespace, resource_version=rv,
                                             timeout_s=WATCH_TIMEOUT_S):
                    if self._stop.is_set():
                        return
                    rv = self._apply_event(kind, event, rv)
                    if not rv:
                        break
                backoff = 0.2
            except (ApiError, TransportError) as exc:
                if self._stop.is_set():
                    return
                if isinstance(exc, ApiError) and exc.status == 410:
                    rv = ""
                    continue
                if not is_transient(exc):
                    self.errors.append(f"watching {kind}: {exc}")
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _apply_event(self, kind: str, event: JsonDict, rv: str) -> str:
        """Mirror one watch event; the resourceVersion to resume from ("" to relist)."""
        obj = event.get("object") or {}
        etype = event.get("type")
        if etype == "ERROR":
            return "" if obj.get("code") == 410 else rv
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
        if etype == "BOOKMARK":
            return rv
        obj.setdefault("kind", kind)
        name = str((obj.get("metadata") or {}).get("name") or "")
        with self.changed:
            if etype == "DELETED":
                self._cache[kind].pop(name, None)
            else:
                self._cache[kind][name] = obj
            self._version += 1
            self.changed.notify_all()
        return rv


class PodsLoop:
    """Calls `handle(pods)` with the namespace's pods, from a daemon thread, at start and
    after every change (at least once a second), until stopped; `watcher` stays readable."""

    def __init__(self, kube: Kube, namespace: str, handle: Callable[[list[JsonDict]], None],
                 name: str) -> None:
        self.watcher = NamespaceWatcher(kube, namespace, kinds=["Pod"])
        self.handle = handle
        self.name = name
        self._stop = threading.Event()

    def start(self) -> PodsLoop:
        self.watcher.start()
        threading.Thread(target=self._run, name=self.name, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.watcher.stop()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        version = -1
        while not self._stop.is_set():
            self.handle(self.watcher.items("Pod"))
            version = self.watcher.wait_for_change(version, 1.0)
