"""Rebuild after a one-line change: `paless-deploy build` with BuildKit vs the classic builder.

The project is what most multi-stage Dockerfiles look like: a dependency stage, a test
stage no image needs (here one second of `sleep` standing for the test run), and the
runtime stage; the context holds 20 MB of sources and assets. Each run appends one unique
line to a source file (so each builder gets a new tag and rebuilds from the COPY of the
sources) and times the whole command. BuildKit skips the test stage and sends only the
changed file; the classic builder builds every stage and is sent the whole context.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Mapping
from pathlib import Path

from benchmarks.harness import Tools, say

BUILDERS = ("buildkit", "classic")
ASSET_FILES, ASSET_BYTES = 200, 100_000  # 20 MB of context

DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE} AS deps
COPY requirements.txt /app/
RUN busybox sh -c 'mkdir -p /deps && for p in $(cat /app/requirements.txt); do echo "$p" > "/deps/$p"; done'

FROM deps AS test
COPY src/ /app/src/
RUN busybox sleep 1 && busybox ls -R /app/src > /test-report

FROM deps AS runtime
COPY src/ /app/src/
RUN busybox sh -c 'busybox find /app/src -name "*.py" | busybox wc -l > /app/modules'
"""


def make_project(root: Path) -> Path:
    """The benchmark's project: one app `svc` with a 20 MB context."""
    app = root / "svc"
    (app / "src" / "assets").mkdir(parents=True)
    (app / "Dockerfile").write_text(DOCKERFILE)
    (app / "requirements.txt").write_text("\n".join(f"package{i}" for i in range(50)) + "\n")
    (app / "src" / "main.py").write_text("print('hello')\n")
    for i in range(ASSET_FILES):
        (app / "src" / "assets" / f"asset{i:03}.bin").write_bytes(os.urandom(ASSET_BYTES))
    return root


def measure_rebuilds(tools: Tools, workdir: Path, runs: int) -> dict[str, list[float]]:
    """Seconds of `build` after a one-line change, per builder, alternating builders."""
    project = make_project(workdir / "rebuild-project")
    main = project / "svc" / "src" / "main.py"
    samples: dict[str, list[float]] = {b: [] for b in BUILDERS}
    envs: Mapping[str, dict[str, str]] = {
        b: {**tools.env, "BUILDER": b, "PROJECT_NAME": f"bench-rebuild-{secrets.token_hex(3)}"}
        for b in BUILDERS}
    say(f"rebuild after a one-line change: BuildKit vs classic, {runs} run(s) each")
    try:
        for builder in BUILDERS:  # first builds: the dependency stage into each builder's cache
            tools.check(tools.pd("default", "build", project=project), f"first {builder} build",
                        env=envs[builder])
        for i in range(runs):
            for builder in BUILDERS:
                with main.open("a") as f:
                    f.write(f"print('{secrets.token_hex(8)}')\n")
                done = tools.check(tools.pd("default", "build", project=project),
                                   f"{builder} rebuild", env=envs[builder])
                samples[builder].append(done.seconds)
            say(f"  round {i + 1}: BuildKit {samples['buildkit'][-1]:.2f}s, classic "
                f"{samples['classic'][-1]:.2f}s")
    finally:
        _remove_images(tools, [env["PROJECT_NAME"] for env in envs.values()])
    return samples


def _remove_images(tools: Tools, prefixes: list[str]) -> None:
    """Remove the benchmark's local images (best effort)."""
    listed = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                            capture_output=True, text=True, check=False, env=dict(tools.env))
    refs = [r for r in listed.stdout.split() if any(f"/{p}-" in r for p in prefixes)]
    if refs:
        subprocess.run(["docker", "rmi", "-f", *refs], capture_output=True, check=False,
                       env=dict(tools.env))
