"""Shared test wiring: markers, the CI rule that a skipped integration test fails.

Service fixtures live in tests/fixtures/ (docker.py: engine and registry;
cluster.py: the sandbox's kube-apiserver) and are loaded as plugins here.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.fixtures.docker", "tests.fixtures.cluster"]

INTEGRATION_MARKERS = ("docker", "cluster")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true an integration test that was skipped is reported as failed.

    A skipped integration test would otherwise let CI pass without having
    talked to Docker, the registry or the cluster at all.
    """
    outcome = yield
    report = outcome.get_result()
    if not _in_ci() or not report.skipped:
        return
    if any(item.get_closest_marker(m) for m in INTEGRATION_MARKERS):
        report.outcome = "failed"
        report.longrepr = f"integration test skipped under CI=true: {report.longrepr}"
