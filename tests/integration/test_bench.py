"""scripts/bench runs on the sandbox and prints its table; its timings are not asserted
(performance claims come only from the benchmark itself, never from tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report import HEADER

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench"


@pytest.mark.cluster
@pytest.mark.docker
def test_quick_benchmark_runs_and_prints_the_table(sandbox, registry, docker_client):
    done = subprocess.run([sys.executable, str(BENCH), "--runs", "1", "--quick",
                           "--kubeconfig", str(sandbox.kubeconfig)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert HEADER in done.stdout.splitlines()
    assert "bench-" in done.stderr  # it said which namespaces it used and deleted
