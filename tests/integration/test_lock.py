"""The namespace lock against the sandbox: serialised contenders, exit 5, crash and Ctrl-C.

Holders in other processes are real subprocesses killed with real signals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from paless_deploy.core.errors import ExitCode, LockHeld
from paless_deploy.stages.lock import LEASE_NAME, NamespaceLock, acquire

pytestmark = pytest.mark.cluster

HOLDER_SCRIPT = textwrap.dedent("""
    import sys, time
    from paless_deploy.adapters.kube import connect
    from paless_deploy.stages.lock import NamespaceLock
    kubeconfig, namespace, duration = sys.argv[1], sys.argv[2], int(sys.argv[3])
    kube = connect(kubeconfig)
    try:
        with NamespaceLock(kube, namespace, "holder-subprocess", 10, duration):
            print("HELD", flush=True)
            time.sleep(300)
    except KeyboardInterrupt:
        print("INTERRUPTED", flush=True)
        sys.exit(130)
""")


@pytest.fixture
def kube(sandbox):
    from paless_deploy.adapters.kube import connect

    return connect(str(sandbox.kubeconfig))


def lease_or_none(kube, namespace):
    from kubernetes import client, config

    typed = config.new_client_from_config(config_file=kube.kubeconfig)  # the typed Lease
    try:
        return client.CoordinationV1Api(typed).read_namespaced_lease(LEASE_NAME, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def start_holder(sandbox, namespace: str, duration: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, str(sandbox.kubeconfig), namespace, str(duration)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert proc.stdout is not None and proc.stderr is not None  # both are pipes
    line = proc.stdout.readline()
    if line.strip() != "HELD":
        proc.kill()
        raise AssertionError(f"holder did not take the lock: {line!r} {proc.stderr.read()}")
    return proc


def test_second_contender_waits_then_gets_the_lock(kube, namespace):
    first = acquire(kube, namespace, "first", timeout_s=5)
    assert lease_or_none(kube, namespace).spec.holder_identity == "first"
    got_at: list[float] = []

    def second() -> None:
        with NamespaceLock(kube, namespace, "second", timeout_s=30):
            got_at.append(time.monotonic())

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(1.5)
    assert not got_at, "the second contender must wait while the first holds the lock"
    released_at = time.monotonic()
    first.release()
    thread.join(timeout=30)
    assert got_at and got_at[0] - released_at < 3, "the watch must wake the waiter at once"
    assert lease_or_none(kube, namespace) is None, "released by the second holder"


def test_short_timeout_raises_lock_held_naming_holder(kube, namespace):
    with NamespaceLock(kube, namespace, "ci-job-42 on runner-7", timeout_s=5):
        started = time.monotonic()
        with pytest.raises(LockHeld) as caught:
            acquire(kube, namespace, "latecomer", timeout_s=1)
        assert 0.9 <= time.monotonic() - started < 5
    error = caught.value
    assert error.exit_code == ExitCode.LOCKED == 5
    assert "ci-job-42 on runner-7" in error.message
    assert "since" in error.message and "UTC" in error.message
    assert "PALESS_LOCK_TIMEOUT" in error.hint


def test_lock_is_renewed_while_held(kube, namespace):
    with NamespaceLock(kube, namespace, "renewer", timeout_s=5, lease_duration_s=3):
        first = lease_or_none(kube, namespace).spec.renew_time
        time.sleep(2.5)
        later = lease_or_none(kube, namespace).spec
        assert later.renew_time > first
        assert later.holder_identity == "renewer"


def test_killed_holder_does_not_block_past_lease_duration(sandbox, kube, namespace):
    holder = start_holder(sandbox, namespace, duration=5)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    started = time.monotonic()
    with NamespaceLock(kube, namespace, "after-crash", timeout_s=30):
        waited = time.monotonic() - started
        assert lease_or_none(kube, namespace).spec.lease_transitions == 1
    assert waited < 5 + 2, f"waited {waited:.1f}s for a 5s lease"


def test_ctrl_c_releases_the_lock_at_once(sandbox, kube, namespace):
    holder = start_holder(sandbox, namespace, duration=30)
    assert lease_or_none(kube, namespace).spec.holder_identity == "holder-subprocess"
    holder.send_signal(signal.SIGINT)
    out, err = holder.communicate(timeout=20)
    assert holder.returncode == 130, err
    assert "INTERRUPTED" in out
    assert lease_or_none(kube, namespace) is None, "released, not left to expire in 30s"
    started = time.monotonic()
    with NamespaceLock(kube, namespace, "next", timeout_s=2):
        assert time.monotonic() - started < 2


def test_missing_namespace_is_a_config_error(kube):
    from paless_deploy.core.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        acquire(kube, "t-no-such-namespace-lock", "x", timeout_s=1)
    assert "does not exist" in caught.value.message
