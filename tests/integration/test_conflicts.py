"""Server-side apply conflicts: another field manager is named; --force-conflicts takes over."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.integration.deploy_helpers import clean_env
from tests.integration.test_failures_cli import deployment, write_overlay
from tests.integration.test_failures_cli import tiny as tiny  # noqa: PLC0414 - the fixture

pytestmark = [pytest.mark.cluster, pytest.mark.docker]


def deploy(tiny, sandbox, ns, *extra, command="all"):
    res = subprocess.run(
        [sys.executable, "-m", "paless_deploy", "--project-dir", str(tiny), "--kubeconfig",
         str(sandbox.kubeconfig), "-n", ns, "--overlay", "plain", "--output", "json", command,
         *extra],
        capture_output=True, text=True, env=clean_env({"PROJECT_NAME": "tiny"}), timeout=180,
        check=False)
    assert "Traceback" not in res.stderr, res.stderr
    return res, json.loads(res.stdout)


def test_a_field_changed_by_another_manager_is_a_named_conflict(tiny, sandbox, namespace):
    write_overlay(tiny, "plain", [deployment()])
    res, doc = deploy(tiny, sandbox, namespace)
    assert res.returncode == 0, res.stderr
    sandbox.kubectl("scale", "deployment", "tiny", "--replicas=3", "-n", namespace)

    # diff applies as `all` does (dry run): it reports the conflict `all` would stop on
    res, doc = deploy(tiny, sandbox, namespace, command="diff")
    assert res.returncode == 2, res.stderr
    assert doc["errors"][0]["code"] == "apply-conflict"
    assert "kubectl" in doc["errors"][0]["message"]
    assert [c["action"] for c in doc["changes"]] == ["conflict"]

    res, doc = deploy(tiny, sandbox, namespace)
    assert res.returncode == 1, res.stderr
    error = doc["errors"][0]
    assert error["code"] == "apply-conflict"
    assert "Deployment/tiny" in error["message"] and "kubectl" in error["message"]
    assert "--force-conflicts" in error["hint"]
    replicas = sandbox.kubectl("get", "deployment", "tiny", "-n", namespace, "-o",
                               "jsonpath={.spec.replicas}").stdout
    assert replicas == "3", "a refused apply changes nothing"

    res, doc = deploy(tiny, sandbox, namespace, "--force-conflicts")
    assert res.returncode == 0, res.stderr
    replicas = sandbox.kubectl("get", "deployment", "tiny", "-n", namespace, "-o",
                               "jsonpath={.spec.replicas}").stdout
    assert replicas == "1"
