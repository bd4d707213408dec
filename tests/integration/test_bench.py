"""scripts/bench runs on the sandbox and prints its table; its timings are not asserted
(performance claims come only from the benchmark itself, never from tests).

The quick mode runs every section once, small: the Paless stack against kubectl, the old
script and Helm (built from Go modules into the sandbox's cache the first time, like the
sandbox's own binaries), one failure kind, and a generated tree of two apps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report import HEADER

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench"
HELM_BUILD_S = 900  # a cold Helm build (modules and build cache empty): about 8 minutes here


def env(sandbox) -> dict[str, str]:
    """The kubeconfig in the environment, not on the command line (`scripts/sandbox down`
    stops every process whose command line names the sandbox's state directory)."""
    return {**os.environ, "KUBECONFIG": str(sandbox.kubeconfig)}


@pytest.mark.cluster
@pytest.mark.docker
@pytest.mark.timeout(HELM_BUILD_S + 900)
def test_quick_benchmark_runs_and_prints_the_table(sandbox, registry, docker_client):
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--peers", "--scale", "2"],
                          env=env(sandbox), capture_output=True, text=True,
                          timeout=HELM_BUILD_S + 800, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert HEADER in lines
    rows = [line for line in lines if line.startswith("| ") and line != HEADER]
    for expected in ("--help", "stack: first deploy to ready vs helm --wait",
                     "stack: no-op redeploy vs kubectl apply",
                     "stack: worker changed, rolled out vs kubectl apply + rollout status",
                     "failure `image-pull`", "detection latency `image-pull`",
                     "N=2 (20 objects): no-op redeploy vs helm --wait",
                     "N=2 (20 objects): peak RSS vs helm --wait"):
        assert any(expected in row for row in rows), (expected, done.stdout)
    for row in rows[1:]:  # every measured row has a figure, a target and a verdict
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 6 and cells[1] != "–" and cells[5] in (
            "yes", "**no**", "not measured"), row
    assert "bench-" in done.stderr  # it said which namespaces it used and deleted


@pytest.mark.cluster
def test_the_json_document_has_every_row_and_sample(sandbox, tmp_path):
    """--json on a scale-only quick run (no Helm, no stack: seconds)."""
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--no-stack", "--scale", "1",
                           "--json"], env=env(sandbox), capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    assert doc["scale"] == [1] and doc["rows"] and "1" in doc["samples"]["scale"]
    first = doc["samples"]["scale"]["1"]["first"]["paless-deploy"][0]
    assert first["returncode"] == 0 and first["peak_rss_mb"] > 0 and "output" not in first
