"""Exec credential plugins run within a deadline, and an interrupt says only what happened.

Real plugins (shell scripts) through the real adapter and the CLI; no cluster is needed,
since the plugin is what hangs (issue 28: `status` and `all --timeout 20s` hung until
killed, and SIGTERM then said "the namespace lock is released" though none was taken).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paless_deploy.adapters.kubeconfig import (
    EXEC_TIMEOUT_S,
    ClusterAccess,
    Deadline,
    exec_credentials,
)
from paless_deploy.core.errors import ClusterError


def access(tmp_path: Path, script: str) -> ClusterAccess:
    plugin = tmp_path / "plugin.sh"
    plugin.write_text(f"#!/bin/sh\n{script}\n")
    plugin.chmod(0o755)
    return ClusterAccess(where=str(tmp_path / "kubeconfig"), context="x",
                         server="https://127.0.0.1:1",
                         user={"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                        "command": str(plugin), "interactiveMode": "Never"}})


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_plugin_that_hangs_is_stopped_with_what_it_started(tmp_path):
    pid_file = tmp_path / "child.pid"
    hung = access(tmp_path, f"sleep 600 & echo $! > {pid_file}; wait")
    started = time.monotonic()
    with pytest.raises(ClusterError) as caught:
        exec_credentials(hung, Deadline(time.monotonic() + 2, 2))
    error = caught.value
    assert error.code == "exec-timeout" and error.exit_code == 4
    assert "plugin.sh" in error.message and "did not answer within 2s" in error.message
    assert "(the limit: --timeout 2s)" in error.message
    assert "plugin.sh" in error.hint and "--timeout" in error.hint
    assert time.monotonic() - started < 60, "the deadline, not the plugin, ended it"
    child = int(pid_file.read_text())
    for _ in range(50):  # the kill is asynchronous: the child may take a moment to go
        if not alive(child):
            break
        time.sleep(0.1)
    assert not alive(child), "the plugin's own child outlived it"


def test_the_limit_is_the_runs_deadline_or_the_plugin_default():
    now = 100.0
    assert Deadline(now + 5, 5).plugin_limit(False, now) == (5, "--timeout 5s")
    limit, why = Deadline(now + 600, 600).plugin_limit(False, now)
    assert limit == EXEC_TIMEOUT_S and "cannot prompt" in why
    # a plugin that may prompt on the terminal gets what is left of the run
    assert Deadline(now + 600, 600).plugin_limit(True, now) == (600, "--timeout 10m")
    assert Deadline().plugin_limit(True, now)[0] is None


def test_a_plugin_that_answers_in_time_is_read(tmp_path):
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": "t0ken"}}
    fine = access(tmp_path, f"echo '{json.dumps(credential)}'")
    assert exec_credentials(fine, Deadline(time.monotonic() + 30, 30)).token == "t0ken"


def test_sigterm_while_the_plugin_hangs_says_no_lock_was_released(tmp_path):
    started = tmp_path / "started"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": "sh",
            "args": ["-c", f"touch {started}; sleep 600"], "interactiveMode": "Never"}}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}]}))
    project = tmp_path / "project"
    (project / "k8s" / "overlays" / "dev").mkdir(parents=True)
    (project / "k8s" / "overlays" / "dev" / "kustomization.yaml").write_text("resources: []\n")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "paless_deploy", "--project-dir", str(project), "--kubeconfig",
         str(kubeconfig), "-n", "x", "--output", "json", "all"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for _ in range(300):  # until the plugin runs (the CLI starts in about a second)
            if started.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert started.exists(), proc.communicate(timeout=30)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "lock" not in err.lower(), err
    assert json.loads(out)["errors"][0]["code"] == "interrupted"
