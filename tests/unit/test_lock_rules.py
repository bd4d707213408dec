"""Pure rules of the namespace lock: expiry from the lease's timestamps, identity."""

from __future__ import annotations

import datetime as dt

from paless_deploy.adapters.host import process_identity
from paless_deploy.core.plan.lease import LeaseState, ci_job_url, holder_identity, micro_time

NOW = dt.datetime(2025, 5, 1, 12, 0, 0, tzinfo=dt.UTC)


def state(holder="a", renewed_s_ago=0.0, duration=30) -> LeaseState:
    renewed = NOW - dt.timedelta(seconds=renewed_s_ago)
    return LeaseState(holder, renewed, renewed, duration, "1")


def test_fresh_lease_is_held_expired_or_empty_is_free():
    assert not state(renewed_s_ago=29).free(NOW)
    assert state(renewed_s_ago=31).free(NOW)
    assert state(holder="").free(NOW)
    assert state(renewed_s_ago=10).expires_in(NOW) == 20


def test_micro_time_always_has_six_fraction_digits():
    assert micro_time(NOW) == "2025-05-01T12:00:00.000000Z"
    local = NOW.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert micro_time(local) == "2025-05-01T12:00:00.000000Z"


def test_identity_names_user_host_pid_command_and_ci_job():
    env = {"GITHUB_RUN_ID": "7", "GITHUB_REPOSITORY": "o/r"}
    identity = holder_identity("all", process_identity(), env)
    assert " pid " in identity and "@" in identity and ": all" in identity
    assert identity.endswith("(https://github.com/o/r/actions/runs/7)")
    assert ci_job_url({"CI_JOB_URL": "https://gitlab/x/-/jobs/1"}) == "https://gitlab/x/-/jobs/1"
    assert ci_job_url({}) is None
