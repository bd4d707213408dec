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
import getpass
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from paless_deploy.core.errors import ConfigError, LockHeld

LEASE_NAME = "paless-deploy"
DEFAULT_LEASE_DURATION_S = 30
MAX_IDENTITY = 250
_MICRO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # metav1.MicroTime wants exactly 6 fractional digits

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# Pure parts


@dataclass(frozen=True)
class LeaseState:
    """What we read of the Lease: who holds it, since when, when it was last renewed."""

    holder: str
    acquired_at: dt.datetime | None
    renewed_at: dt.datetime | None
    duration_s: int
    resource_version: str
    transitions: int = 0

    def expires_in(self, now: dt.datetime) -> float:
        """Seconds until the lease expires by its own timestamps (negative: expired)."""
        last = self.renewed_at or self.acquired_at
        if last is None:
            return -1.0
        return (last + dt.timedelta(seconds=self.duration_s) - now).total_seconds()

    def free(self, now: dt.datetime) -> bool:
        """No holder, or the holder's last renewal is older than the lease duration."""
        return not self.holder or self.expires_in(now) < 0


def utc_now() -> dt.datetime:
    """The local clock in UTC (timezone-aware)."""
    return dt.datetime.now(dt.UTC)


def micro_time(moment: dt.datetime) -> str:
    """A MicroTime string as the API server accepts it."""
    return moment.astimezone(dt.UTC).strftime(_MICRO_FORMAT)


def holder_identity(command: str, environ: Mapping[str, str] = os.environ) -> str:
    """`user@host pid N: command [CI job URL]`: enough to find who holds the lock."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    identity = f"{user}@{socket.gethostname()} pid {os.getpid()}: {command}"
    url = ci_job_url(environ)
    if url:
        identity = f"{identity} ({url})"
    return identity[:MAX_IDENTITY]


def ci_job_url(environ: Mapping[str, str]) -> str | None:
    """The URL of the CI job we run in (GitHub Actions, GitLab CI, Jenkins), if any."""
    if environ.get("GITHUB_RUN_ID") and environ.get("GITHUB_REPOSITORY"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{environ['GITHUB_REPOSITORY']}/actions/runs/{environ['GITHUB_RUN_ID']}"
    return environ.get("CI_JOB_URL") or environ.get("BUILD_URL") or None


def lock_timeout(config: Any) -> float:
    """PALESS_LOCK_TIMEOUT in seconds (default 10m)."""
    from paless_deploy.core.config import parse_duration

    return parse_duration(config.value("PALESS_LOCK_TIMEOUT") or "10m", "PALESS_LOCK_TIMEOUT")


def _lease_state(lease: Any) -> LeaseState:
    spec = lease.spec
    return LeaseState(
        holder=spec.holder_identity or "",
        acquired_at=spec.acquire_time,
        renewed_at=spec.renew_time,
        duration_s=int(spec.lease_duration_seconds or DEFAULT_LEASE_DURATION_S),
        resource_version=lease.metadata.resource_version,
        transitions=int(spec.lease_transitions or 0),
    )


def _ago(moment: dt.datetime | None, now: dt.datetime) -> str:
    if moment is None:
        return "an unknown time"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 120:
        text = f"{seconds}s"
    elif seconds < 7200:
        text = f"{seconds // 60}m"
    else:
        text = f"{seconds // 3600}h"
    return f"{moment.strftime('%Y-%m-%d %H:%M:%S')} UTC ({text} ago)"


# ---------------------------------------------------------------------------
# The lock


class NamespaceLock:
    """The Lease lock of one namespace; a context manager (`with NamespaceLock(...):`).

    `acquire()` blocks (watching the Lease) up to `timeout_s`, then raises LockHeld
    (exit 5) naming the holder and since when. While held, a daemon thread renews the
    lease every `lease_duration_s / 3`. `release()` deletes the Lease only if we still
    hold it. `lost` turns true if someone took it over (we stopped renewing in time).
    """

    def __init__(self, kube: Any, namespace: str, holder: str, timeout_s: float,
                 lease_duration_s: int = DEFAULT_LEASE_DURATION_S) -> None:
        self.kube = kube
        self.namespace = namespace
        self.holder = holder[:MAX_IDENTITY]
        self.timeout_s = max(0.0, float(timeout_s))
        self.lease_duration_s = max(1, int(lease_duration_s))
        self.held = False
        self.lost = False
        self._resource_version: str | None = None
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"NamespaceLock({self.namespace!r}, holder={self.holder!r}, held={self.held})"

    @property
    def _api(self) -> Any:
        from kubernetes import client

        return client.CoordinationV1Api(self.kube.api)

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
        from paless_deploy.adapters.kube import cluster_errors

        deadline = time.monotonic() + self.timeout_s
        seen: tuple[str, float] | None = None  # (resourceVersion, monotonic first seen)
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
        from kubernetes.client.exceptions import ApiException

        from paless_deploy.adapters.kube import with_retries

        try:
            lease = with_retries(lambda: self._api.read_namespaced_lease(
                LEASE_NAME, self.namespace, _request_timeout=(5, 30)))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _lease_state(lease)

    def _body(self, now: dt.datetime, acquired: dt.datetime, transitions: int,
              resource_version: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": LEASE_NAME, "namespace": self.namespace,
                                    "labels": {"app.kubernetes.io/managed-by": "paless-deploy"}}
        if resource_version:
            metadata["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": self.holder,
                "leaseDurationSeconds": self.lease_duration_s,
                "acquireTime": micro_time(acquired),
                "renewTime": micro_time(now),
                "leaseTransitions": transitions,
            },
        }

    def _create(self, now: dt.datetime) -> bool:
        """Create the Lease; False when someone else created it first."""
        from kubernetes.client.exceptions import ApiException

        try:
            lease = self._api.create_namespaced_lease(
                self.namespace, self._body(now, now, 0, None), _request_timeout=(5, 30))
        except ApiException as exc:
            if exc.status == 409:
                return False
            if exc.status == 404:
                raise ConfigError(
                    f"Namespace {self.namespace} does not exist, so it cannot be locked.",
                    "Create the namespace first (the namespace phase of `all` does), "
                    "or check -n / PALESS_NAMESPACE.", code="no-namespace") from None
            raise
        self._won(lease.metadata.resource_version)
        return True

    def _take_over(self, state: LeaseState, now: dt.datetime) -> bool:
        """Replace a free or expired lease, conditioned on what we read; False on a race."""
        from kubernetes.client.exceptions import ApiException

        body = self._body(now, now, state.transitions + (1 if state.holder else 0),
                          state.resource_version)
        try:
            lease = self._api.replace_namespaced_lease(LEASE_NAME, self.namespace, body,
                                                       _request_timeout=(5, 30))
        except ApiException as exc:
            if exc.status in (404, 409):  # deleted or changed meanwhile: read again
                return False
            raise
        if state.holder:
            log.info("took over the expired lock of %s in %s", state.holder, self.namespace)
        self._won(lease.metadata.resource_version)
        return True

    def _won(self, resource_version: str) -> None:
        with self._state_lock:
            self._resource_version = resource_version
            self.held = True
            self.lost = False

    def _wait_for_change(self, resource_version: str, seconds: float) -> None:
        """Block until the Lease changes or `seconds` pass (a watch, not a sleep loop)."""
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error

        started = time.monotonic()
        w = watch.Watch()
        try:
            for event in w.stream(
                    self._api.list_namespaced_lease, self.namespace,
                    field_selector=f"metadata.name={LEASE_NAME}",
                    resource_version=resource_version,
                    timeout_seconds=max(1, int(seconds + 0.999)),
                    _request_timeout=(5, seconds + 10)):
                if event.get("type") in ("MODIFIED", "DELETED", "ADDED", "ERROR"):
                    return
                if time.monotonic() - started >= seconds:
                    return
        except ApiException as exc:
            if exc.status not in (410, 500, 503, 504):
                raise
        except (Urllib3Error, ConnectionError, TimeoutError):
            pass  # re-read and maybe watch again; the deadline still bounds us
        finally:
            w.stop()
        # A watch that ended early without an event (server-side timeout rounding):
        # never spin, and never wait longer than asked.
        left = seconds - (time.monotonic() - started)
        if left > 0:
            time.sleep(min(left, 0.5))

    def _held_error(self, state: LeaseState, now: dt.datetime) -> LockHeld:
        error = LockHeld(
            f"Namespace {self.namespace} is locked by {state.holder}, holding it since "
            f"{_ago(state.acquired_at, now)}, last renewed {_ago(state.renewed_at, now)}; "
            f"waited {self.timeout_s:g}s.",
            "Wait for that deploy to finish and run again, or raise PALESS_LOCK_TIMEOUT. "
            f"If the holder is gone, its lease expires {state.duration_s}s after its last "
            f"renewal; to break it now: kubectl -n {self.namespace} delete lease {LEASE_NAME}",
            code="locked",
        )
        error.resource = f"Lease/{LEASE_NAME}"  # type: ignore[attr-defined]
        error.reason = "LockHeld"  # type: ignore[attr-defined]
        error.commands = [  # type: ignore[attr-defined]
            f"kubectl -n {self.namespace} get lease {LEASE_NAME} -o yaml"]
        return error

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
        """Renew once; False (and `lost`) when the lease is no longer ours."""
        from kubernetes.client.exceptions import ApiException

        state = self._read()
        with self._state_lock:
            if not self.held:
                return False
            if state is None or state.holder != self.holder:
                self.held, self.lost = False, True
                if state is not None:  # deleted (destroy deletes the namespace) is quiet
                    log.warning("lost the lock of %s (now held by %s)", self.namespace,
                                state.holder)
                return False
        body = self._body(utc_now(), state.acquired_at or utc_now(), state.transitions,
                          state.resource_version)
        try:
            lease = self._api.replace_namespaced_lease(LEASE_NAME, self.namespace, body,
                                                       _request_timeout=(5, 10))
        except ApiException as exc:
            if exc.status in (404, 409):
                return self.renew() if exc.status == 409 else self._mark_lost()
            raise
        with self._state_lock:
            self._resource_version = lease.metadata.resource_version
        return True

    def _mark_lost(self) -> bool:
        with self._state_lock:
            self.held, self.lost = False, True
        return False

    # -- release

    def release(self) -> None:
        """Stop renewing and delete the Lease if it is still ours (idempotent, never raises
        for a lease that is gone or was taken over)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

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
            self._api.delete_namespaced_lease(
                LEASE_NAME, self.namespace, _request_timeout=(5, 10),
                body=client.V1DeleteOptions(
                    preconditions=client.V1Preconditions(
                        resource_version=state.resource_version)))
        except ApiException as exc:
            if exc.status not in (404, 409):
                print(f"warning: could not release the lock of {self.namespace} "
                      f"({exc.status} {exc.reason}); it expires in {self.lease_duration_s}s.",
                      file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - unreachable cluster: the lease expires
            print(f"warning: could not release the lock of {self.namespace} ({exc}); "
                  f"it expires in {self.lease_duration_s}s.", file=sys.stderr)


def acquire(kube: Any, namespace: str, holder: str, timeout_s: float,
            lease_duration_s: int = DEFAULT_LEASE_DURATION_S) -> NamespaceLock:
    """Take the namespace lock now and return it (release with `.release()` or `with`)."""
    return NamespaceLock(kube, namespace, holder, timeout_s, lease_duration_s).acquire()


def lock_for(kube: Any, run_ctx: Any, command: str) -> NamespaceLock:
    """The (not yet taken) lock of the run's namespace, timeout from PALESS_LOCK_TIMEOUT."""
    return NamespaceLock(kube, run_ctx.config.namespace, holder_identity(command),
                         lock_timeout(run_ctx.config))
