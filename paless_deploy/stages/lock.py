"""The namespace lock: one Lease `paless-deploy` per namespace, so two deploys never interleave.

Taken after the namespace phase of `all`/`deploy` and by `destroy`; renewed from a
daemon thread while held; released on exit, Ctrl-C included; a crashed holder's lease
expires after `leaseDurationSeconds`.

Expiry (clock semantics). A Lease carries the holder's own timestamps (`renewTime`,
written by the holder's clock) and the API server does not interpret them. A lease is
expired for us when either
  1. `renewTime + leaseDurationSeconds` is before our local UTC clock (fast path for a
     holder that died long ago; assumes clocks agree to within ~2/3 of the lease
     duration, which NTP gives: a live holder renews every duration/3), or
  2. we have watched the Lease and seen no change (same resourceVersion) for
     `leaseDurationSeconds` of our own monotonic clock (client-go's leader-election
     rule, immune to clock skew).
Every write is conditioned on the resourceVersion we read, so of two contenders
taking a free or expired lease exactly one wins (the other gets 409 and re-reads).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Self

from paless_deploy.adapters.host import process_identity, utc_now
from paless_deploy.adapters.kube import ApiError, cluster_errors, with_retries
from paless_deploy.core.errors import ConfigError, LockHeld
from paless_deploy.core.manifests.kinds import by_kind
from paless_deploy.core.plan.lease import (
    DEFAULT_LEASE_DURATION_S,
    LEASE_NAME,
    MAX_IDENTITY,
    LeaseState,
    ago,
    holder_identity,
    lease_body,
    lease_state,
    lock_timeout,
    waiting_message,
)
from paless_deploy.ui.lines import say, warn

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube
    from paless_deploy.core.configuration.context import RunContext

log = logging.getLogger(__name__)
LEASE = by_kind("Lease")


class NamespaceLock:
    """The Lease lock of one namespace; a context manager (`with NamespaceLock(...):`).

    `acquire()` blocks (watching the Lease) up to `timeout_s`, then raises LockHeld
    (exit 5) naming the holder and since when; `on_wait(state)` is told once, at once,
    when another holder makes us wait. While held, a daemon thread renews the lease
    every `lease_duration_s / 3`. `release()` deletes the Lease only if we still hold
    it. `held` turns false if someone took it over (we stopped renewing in time).
    """

    def __init__(self, kube: Kube, namespace: str, holder: str, timeout_s: float,
                 lease_duration_s: int = DEFAULT_LEASE_DURATION_S,
                 on_wait: Callable[[LeaseState], None] | None = None) -> None:
        self.kube = kube
        self.namespace = namespace
        self.holder = holder[:MAX_IDENTITY]
        self.timeout_s = max(0.0, float(timeout_s))
        self.lease_duration_s = max(1, int(lease_duration_s))
        self.on_wait = on_wait
        self.held = False
        self._resource_version: str | None = None
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"NamespaceLock({self.namespace!r}, holder={self.holder!r}, held={self.held})"

    # -- context manager

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Runs for KeyboardInterrupt and SystemExit too: Ctrl-C frees the namespace now.
        self.release()

    # -- acquire

    def acquire(self) -> NamespaceLock:
        """Take the lease, waiting up to timeout_s; LockHeld (exit 5) when it stays taken."""
        deadline = time.monotonic() + self.timeout_s
        seen: tuple[str, float] | None = None  # (resourceVersion, monotonic first seen)
        told = False
        try:
            with cluster_errors(self.kube, "taking the namespace lock", self.namespace):
                while True:
                    state = self._read()
                    now = utc_now()
                    if state is None:
                        if self._create(now):
                            break
                        continue
                    if seen is None or seen[0] != state.resource_version:
                        seen = (state.resource_version, time.monotonic())
                    unchanged_for = time.monotonic() - seen[1]
                    if state.free(now) or unchanged_for >= state.duration_s:
                        if self._take_over(state, now):
                            break
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise self._held_error(state, now)
                    if not told and self.on_wait is not None:
                        self.on_wait(state)
                        told = True
                    until_expiry = min(state.expires_in(now), state.duration_s - unchanged_for)
                    self._wait_for_change(state.resource_version,
                                          min(remaining, max(0.2, until_expiry + 0.2)))
        except BaseException:
            if self.held:  # interrupted right after winning: do not leave it behind
                self.release()
            raise
        self._start_renewer()
        return self

    def _read(self) -> LeaseState | None:
        lease = with_retries(lambda: self.kube.read(LEASE, LEASE_NAME, self.namespace))
        return lease_state(lease) if lease is not None else None

    def _body(self, now: dt.datetime, acquired: dt.datetime, transitions: int,
              resource_version: str | None) -> dict:
        return lease_body(self.namespace, self.holder, self.lease_duration_s, now, acquired,
                          transitions, resource_version)

    def _create(self, now: dt.datetime) -> bool:
        """Create the Lease; False when someone else created it first."""
        try:
            lease = self.kube.create(LEASE, self._body(now, now, 0, None), self.namespace)
        except ApiError as exc:
            if exc.status == 409:
                return False
            if exc.status == 404:
                raise ConfigError(
                    f"Namespace {self.namespace} does not exist, so it cannot be locked.",
                    "Create the namespace first (the namespace phase of `all` does), "
                    "or check -n / PALESS_NAMESPACE.", code="no-namespace") from None
            raise
        self._won(lease["metadata"]["resourceVersion"])
        return True

    def _take_over(self, state: LeaseState, now: dt.datetime) -> bool:
        """Replace a free or expired lease, conditioned on what we read; False on a race."""
        body = self._body(now, now, state.transitions + (1 if state.holder else 0),
                          state.resource_version)
        try:
            lease = self.kube.replace(LEASE, body, self.namespace)
        except ApiError as exc:
            if exc.status in (404, 409):  # deleted or changed meanwhile: read again
                return False
            raise
        if state.holder:
            log.info("took over the expired lock of %s in %s", state.holder, self.namespace)
        self._won(lease["metadata"]["resourceVersion"])
        return True

    def _won(self, resource_version: str) -> None:
        with self._state_lock:
            self._resource_version = resource_version
            self.held = True

    def _wait_for_change(self, resource_version: str, seconds: float) -> None:
        """Block until the Lease changes or `seconds` pass (a watch, not a sleep loop)."""
        self.kube.watch_until(
            LEASE, LEASE_NAME, self.namespace,
            lambda lease: lease is None or lease["metadata"].get("resourceVersion")
            != resource_version, seconds)

    def _held_error(self, state: LeaseState, now: dt.datetime) -> LockHeld:
        return LockHeld(
            f"Namespace {self.namespace} is locked by {state.holder}, holding it since "
            f"{ago(state.acquired_at, now)}, last renewed {ago(state.renewed_at, now)}; "
            f"waited {self.timeout_s:g}s.",
            "Wait for that deploy to finish and run again, or raise PALESS_LOCK_TIMEOUT. "
            f"If the holder is gone, its lease expires {state.duration_s}s after its last "
            f"renewal; to break it now: kubectl -n {self.namespace} delete lease {LEASE_NAME}",
            code="locked", resource=f"Lease/{LEASE_NAME}", reason="LockHeld",
            commands=[f"kubectl -n {self.namespace} get lease {LEASE_NAME} -o yaml"])

    # -- renew

    def _start_renewer(self) -> None:
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, daemon=True,
                                         name=f"lease-renew-{self.namespace}")
        self._renewer.start()

    def _renew_loop(self) -> None:
        interval = max(0.5, self.lease_duration_s / 3)
        while not self._stop.wait(interval):
            try:
                if not self.renew():
                    return
            except Exception as exc:  # noqa: BLE001 - a missed renewal is retried next tick
                log.warning("could not renew the lock of %s: %s", self.namespace, exc)

    def renew(self) -> bool:
        """Renew once; False (and no longer `held`) when the lease is no longer ours."""
        state = self._read()
        with self._state_lock:
            if not self.held:
                return False
            if state is None or state.holder != self.holder:
                self.held = False
                if state is not None:  # deleted (destroy deletes the namespace) is quiet
                    log.warning("lost the lock of %s (now held by %s)", self.namespace,
                                state.holder)
                return False
        body = self._body(utc_now(), state.acquired_at or utc_now(), state.transitions,
                          state.resource_version)
        try:
            lease = self.kube.replace(LEASE, body, self.namespace)
        except ApiError as exc:
            if exc.status in (404, 409):
                return self.renew() if exc.status == 409 else self._mark_lost()
            raise
        with self._state_lock:
            self._resource_version = lease["metadata"]["resourceVersion"]
        return True

    def _mark_lost(self) -> bool:
        with self._state_lock:
            self.held = False
        return False

    # -- release

    def release(self) -> None:
        """Stop renewing and delete the Lease if it is still ours (idempotent, never raises
        for a lease that is gone or was taken over)."""
        self._stop.set()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join(timeout=15)
        with self._state_lock:
            was_held, self.held = self.held, False
        if not was_held and self._resource_version is None:
            return  # never won it
        try:
            # Decide on the holder written in the Lease, not on our flag: an interrupt can
            # land between our write and our bookkeeping. The identity carries our pid.
            state = self._read()
            if state is None or state.holder != self.holder:
                return
            self.kube.delete(LEASE, LEASE_NAME, self.namespace,
                             resource_version=state.resource_version)
        except ApiError as exc:
            if exc.status not in (404, 409):
                warn(f"could not release the lock of {self.namespace} "
                     f"({exc.status} {exc.reason}); it expires in {self.lease_duration_s}s.")
        except Exception as exc:  # noqa: BLE001 - unreachable cluster: the lease expires
            warn(f"could not release the lock of {self.namespace} ({exc}); "
                 f"it expires in {self.lease_duration_s}s.")


def acquire(kube: Kube, namespace: str, holder: str, timeout_s: float,
            lease_duration_s: int = DEFAULT_LEASE_DURATION_S) -> NamespaceLock:
    """Take the namespace lock now and return it (release with `.release()` or `with`)."""
    return NamespaceLock(kube, namespace, holder, timeout_s, lease_duration_s).acquire()


def lock_for(kube: Kube, run_ctx: RunContext, command: str,
             on_wait: Callable[[LeaseState], None] | None = None) -> NamespaceLock:
    """The (not yet taken) lock of the run's namespace, timeout from PALESS_LOCK_TIMEOUT;
    without `on_wait`, a wait is said on stderr (who holds it, until when)."""
    namespace, timeout_s = run_ctx.config.namespace, lock_timeout(run_ctx.config)

    def tell(state: LeaseState) -> None:
        if not run_ctx.console.quiet:
            say(waiting_message(namespace, state, utc_now(), timeout_s), err=True)

    return NamespaceLock(kube, namespace, lock_holder(command), timeout_s,
                         on_wait=on_wait or tell)


def lock_holder(command: str) -> str:
    """Who takes a lock for `command`: `user@host pid N: command [CI job URL]`."""
    return holder_identity(command, process_identity(), os.environ)
