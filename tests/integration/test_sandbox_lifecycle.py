"""`scripts/sandbox` itself: idempotent up, recovery after kill -9, a clean down.

These tests stop and restart the sandbox; each leaves it up and healthy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures.cluster import SANDBOX

pytestmark = pytest.mark.cluster


def sandbox_cmd(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([str(SANDBOX), *args], check=False, capture_output=True, text=True,
                         timeout=600)
    if check and res.returncode != 0:
        raise AssertionError(f"scripts/sandbox {' '.join(args)} exited {res.returncode}:\n"
                             f"{res.stdout}\n{res.stderr}")
    return res


def state_dir() -> Path:
    return Path(os.environ.get("PALESS_SANDBOX_STATE", Path.home() / ".local/state/paless-sandbox"))


def pids() -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in (state_dir() / "pids").glob("*.pid")}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
                 "local-path-provisioner")


def test_up_twice_restarts_nothing(sandbox):
    before = pids()
    sandbox_cmd("up")
    after = pids()
    for name in CONTROL_PLANE:
        assert after[name] == before[name], f"{name} was restarted by a second `up`"
    status = sandbox_cmd("status")
    for name in CONTROL_PLANE:
        assert any(line.startswith(name) and "healthy" in line for line in status.stdout.splitlines())
    assert "logs" in status.stdout


def test_up_recovers_after_kill_9(sandbox):
    before = pids()
    for name in ("kwok", "kube-scheduler", "kube-controller-manager"):
        os.kill(before[name], signal.SIGKILL)
    time.sleep(0.5)
    assert sandbox_cmd("status", check=False).returncode == 1
    sandbox_cmd("up")
    after = pids()
    for name in ("kwok", "kube-scheduler", "kube-controller-manager"):
        assert after[name] != before[name] and alive(after[name])
    assert sandbox_cmd("status").returncode == 0
    nodes = sandbox.kubectl("get", "nodes", "--no-headers").stdout
    assert nodes.count(" Ready") >= 2


def test_down_stops_everything_and_up_comes_back(sandbox):
    before = pids()
    sandbox_cmd("down")
    for name in CONTROL_PLANE:
        assert not alive(before[name]), f"{name} still runs after down"
    assert not list((state_dir() / "pids").glob("*.pid"))
    assert sandbox_cmd("status", check=False).returncode == 1
    sandbox_cmd("up")
    assert sandbox_cmd("status").returncode == 0
    assert sandbox.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"


def test_env_prints_kubeconfig_and_pinned_kubectl_path():
    out = sandbox_cmd("env").stdout
    assert f"export KUBECONFIG={state_dir() / 'kubeconfig'}" in out
    path_line = next(line for line in out.splitlines() if line.startswith("export PATH="))
    bin_dir = Path(path_line.split("=", 1)[1].split(":")[0])
    assert (bin_dir / "kubectl").exists()


def test_usage_error_exits_2():
    assert sandbox_cmd("bogus", check=False).returncode == 2


def test_up_names_the_component_whose_port_is_taken(sandbox):
    import socket

    before = pids()
    os.kill(before["kube-scheduler"], signal.SIGKILL)
    time.sleep(0.5)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", 20259))
    squatter.listen()
    try:
        res = sandbox_cmd("up", check=False)
        assert res.returncode == 1
        assert "kube-scheduler cannot start: port 127.0.0.1:20259 is used by another process" in (
            res.stderr)
        assert "kube-scheduler.log" in res.stderr
    finally:
        squatter.close()
    sandbox_cmd("up")
    assert sandbox_cmd("status").returncode == 0


def test_up_says_how_much_disk_the_build_needs(tmp_path):
    small = tmp_path / "small-cache"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)],
                             check=False, capture_output=True, text=True)
    assert mounted.returncode == 0, f"cannot mount a small tmpfs: {mounted.stderr}"
    try:
        res = subprocess.run([str(SANDBOX), "up"], check=False, capture_output=True, text=True,
                             timeout=120, env={**os.environ, "PALESS_SANDBOX_CACHE": str(small)})
        assert res.returncode == 1
        assert "needs about 6 GB free" in res.stderr and str(small) in res.stderr
    finally:
        subprocess.run(["umount", str(small)], check=False)
