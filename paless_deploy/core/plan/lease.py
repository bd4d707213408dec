"""The namespace lock's rules: who holds a Lease, since when, and when it expires.

Pure: the Lease is read as the API server's JSON, the time and who we are arrive as values;
the stage (stages/lock.py) does the I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from paless_deploy.core.apitypes import ApiObject, JsonDict, JsonValue
from paless_deploy.core.configuration.durations import parse_duration
from paless_deploy.core.manifests import labels

LEASE_NAME = labels.TOOL
DEFAULT_LEASE_DURATION_S = 30
MAX_IDENTITY = 250
_MICRO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # metav1.MicroTime wants exactly 6 fractional digits




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


def micro_time(moment: dt.datetime) -> str:
    """A MicroTime string as the API server accepts it."""
    return moment.astimezone(dt.UTC).strftime(_MICRO_FORMAT)


def holder_identity(command: str, process: str, environ: Mapping[str, str]) -> str:
    """`user@host pid N: command [CI job URL]`: enough to find who holds the lock
    (`process` is `user@host pid N`, adapters.host's `process_identity()`)."""
    identity = f"{process}: {command}"
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


def lock_timeout(config: JsonValue) -> float:
    """PALESS_LOCK_TIMEOUT in seconds (default 10m)."""
    return parse_duration(config.value("PALESS_LOCK_TIMEOUT") or "10m", "PALESS_LOCK_TIMEOUT",
                          allow_zero=True)


def parse_micro_time(text: object) -> dt.datetime | None:
    """A MicroTime/Time string of the API as an aware datetime; None when absent or bad."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def lease_state(lease: ApiObject) -> LeaseState:
    """What the lock needs of a Lease object (API JSON)."""
    spec = lease.get("spec") or {}
    return LeaseState(
        holder=str(spec.get("holderIdentity") or ""),
        acquired_at=parse_micro_time(spec.get("acquireTime")),
        renewed_at=parse_micro_time(spec.get("renewTime")),
        duration_s=int(spec.get("leaseDurationSeconds") or DEFAULT_LEASE_DURATION_S),
        resource_version=str((lease.get("metadata") or {}).get("resourceVersion") or ""),
        transitions=int(spec.get("leaseTransitions") or 0),
    )


def lease_body(namespace: str, holder: str, duration_s: int, now: dt.datetime,
               acquired: dt.datetime, transitions: int, resource_version: str | None
               ) -> JsonDict:
    """The Lease we write (conditioned on `resource_version` when given)."""
    metadata: JsonDict = {"name": LEASE_NAME, "namespace": namespace,
                                "labels": {labels.MANAGED_BY: labels.TOOL}}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration_s,
            "acquireTime": micro_time(acquired),
            "renewTime": micro_time(now),
            "leaseTransitions": transitions,
        },
    }


def waiting_message(namespace: str, state: LeaseState, now: dt.datetime, timeout_s: float
                    ) -> str:
    """Said at once when another holder makes a deploy wait: who, since when, when its
    lease expires unless renewed (a killed holder's does), and how long we wait."""
    expiry = now + dt.timedelta(seconds=max(0.0, state.expires_in(now)))
    gives_up = now + dt.timedelta(seconds=timeout_s)
    return (f"Waiting for the lock of namespace {namespace}: held by {state.holder} since "
            f"{ago(state.acquired_at, now)}; its lease expires at {clock(expiry, now)} unless "
            f"its holder renews it; waiting up to {clock(gives_up, now)} "
            "(PALESS_LOCK_TIMEOUT).")


def clock(moment: dt.datetime, now: dt.datetime) -> str:
    """A moment near now: `08:26:19 UTC (in 25s)`."""
    seconds = round((moment - now).total_seconds())
    span = f"in {seconds}s" if seconds < 120 else f"in {seconds // 60}m"
    return f"{moment.astimezone(dt.UTC).strftime('%H:%M:%S')} UTC ({span})"


def ago(moment: dt.datetime | None, now: dt.datetime) -> str:
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
