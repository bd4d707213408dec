"""`status` through the CLI: a missing namespace is a clear exit 2; --watch redraws on change."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.deploy_helpers import clean_env

pytestmark = pytest.mark.cluster


def test_status_of_a_missing_namespace_exits_2(sandbox):
    res = subprocess.run([sys.executable, "-m", "paless_deploy", "--kubeconfig",
                          str(sandbox.kubeconfig), "-n", "t-no-such-namespace", "status"],
                         capture_output=True, text=True, env=clean_env(), check=False)
    assert res.returncode == 2
    assert "t-no-such-namespace does not exist" in res.stderr
    assert "Traceback" not in res.stderr


def test_status_watch_redraws_when_a_pod_appears(sandbox, namespace):
    proc = subprocess.Popen([sys.executable, "-m", "paless_deploy", "--kubeconfig",
                             str(sandbox.kubeconfig), "-n", namespace, "status", "--watch"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=clean_env())
    try:
        time.sleep(3)
        sandbox.kubectl("run", "watched-pod", "--image=busybox:1.36", "-n", namespace)
        time.sleep(4)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "watched-pod" in out
    assert "Traceback" not in err


def test_status_json_is_one_document(sandbox, namespace):
    res = subprocess.run([sys.executable, "-m", "paless_deploy", "--kubeconfig",
                          str(sandbox.kubeconfig), "-n", namespace, "--output", "json", "status"],
                         capture_output=True, text=True, env=clean_env(), check=False)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["command"] == "status" and doc["status"]["namespace"] == namespace
    assert doc["status"]["workloads"] == [] and doc["status"]["healthy"] is True
