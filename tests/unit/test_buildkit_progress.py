"""BuildKit's plain progress, as recorded from real builds on the sandbox's engine.

Recorded with `docker buildx build --progress=plain` (buildx v0.38.2) and
`DOCKER_BUILDKIT=1 docker build --progress=plain` (Docker 20.10 client), both against
dockerd 20.10's BuildKit, into tests/fixtures/recorded/buildkit/:
- `*-success.txt`: a multi-stage Dockerfile (FROM --platform=$BUILDPLATFORM, RUN
  --mount=type=cache, RUN --mount=type=secret) whose unused stage `dev` copies a
  missing file: BuildKit does not build it;
- `*-run-failed.txt`: `[3/4] RUN ...` prints three lines and exits 3;
- `*-syntax-offline.txt`: `# syntax=docker/dockerfile:1` with no way to pull it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from paless_deploy.adapters.buildkit import (
    BuildkitCli,
    PlainProgress,
    buildkit_command,
    explain_failure,
)
from paless_deploy.core.images.buildspec import BuildSecret, BuildSpec
from paless_deploy.core.images.discover import App

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded" / "buildkit"
CLIENTS = ("buildx", "legacy")


def replay(name: str) -> tuple[PlainProgress, list[tuple[str, int, int]]]:
    parser = PlainProgress()
    updates = []
    for line in (RECORDED / name).read_text().splitlines():
        if parser.feed(line):
            updates.append((parser.current, *parser.counts))
    return parser, updates


@pytest.fixture
def app(tmp_path: Path) -> App:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return App("api", tmp_path / "Dockerfile", tmp_path)


@pytest.mark.parametrize("client", CLIENTS)
def test_success_counts_only_the_stages_built(client: str) -> None:
    parser, updates = replay(f"{client}-success.txt")
    # stage `build` has 3 steps, the final stage 2; `dev` is never built or shown
    assert parser.counts == (5, 5)
    assert set(parser.stages) == {"build", "stage-2"}
    assert not any("dev" in text or "missing" in text for text, _, _ in updates)
    assert updates[-1][1:] == (5, 5)
    assert any(text.startswith("[build 3/3] RUN --mount=type=secret") for text, _, _ in updates)
    done = [d for _, d, _ in updates]
    assert done == sorted(done)  # the bar never goes back


@pytest.mark.parametrize("client", CLIENTS)
def test_failed_run_step_names_the_step_its_error_and_its_output(client: str,
                                                                  app: App) -> None:
    parser, _ = replay(f"{client}-run-failed.txt")
    failure = parser.failure()
    assert failure.step.startswith("[3/4] RUN echo compiling one")
    assert "exit code: 3" in failure.error
    assert failure.lines == ("compiling one", "compiling two", "cannot find module x")
    error = explain_failure(app, "reg/p-api:1", BuildSpec(), failure, [])
    assert error.exit_code == 3 and error.code == "build-failed"
    assert "failed at `[3/4] RUN echo compiling one" in error.message
    assert "    cannot find module x" in error.message
    assert "[4/4]" not in error.message


@pytest.mark.parametrize("client", CLIENTS)
def test_unpullable_syntax_image_names_the_directive_and_the_fix(client: str,
                                                                 app: App) -> None:
    app.dockerfile.write_text("# syntax=docker/dockerfile:1\nFROM scratch\n")
    parser, _ = replay(f"{client}-syntax-offline.txt")
    failure = parser.failure()
    assert failure.resolving == "docker.io/docker/dockerfile:1"
    error = explain_failure(app, "reg/p-api:1", BuildSpec(), failure, [])
    assert error.code == "build-frontend-unavailable" and error.exit_code == 3
    assert "`# syntax=docker/dockerfile:1` (line 1 of Dockerfile)" in error.message
    assert "docker.io/docker/dockerfile:1" in error.message
    assert "no such host" in error.message  # the engine's own reason, shortened by nothing
    assert "DOCKERFILE_FRONTEND" in error.hint and "Remove the `# syntax=` line" in error.hint
    assert "------" not in error.message  # not the raw BuildKit log


def test_secret_values_are_scrubbed_from_the_failure(app: App) -> None:
    parser = PlainProgress()
    for line in ("#5 [2/2] RUN --mount=type=secret,id=tok cat /run/secrets/tok; exit 1",
                 "#5 0.101 s3cr3t-canary-value", "#5 ERROR: failed: s3cr3t-canary-value",
                 "------", "ERROR: failed to solve: s3cr3t-canary-value"):
        parser.feed(line)
    error = explain_failure(app, "r/p-api:1", BuildSpec(), parser.failure(),
                            ["s3cr3t-canary-value"])
    assert "s3cr3t-canary-value" not in str(error)
    assert "<redacted>" in error.message


def test_no_step_failed_uses_the_summary(app: App) -> None:
    parser = PlainProgress()
    summary = ("failed to solve with frontend dockerfile.v0: failed to create LLB definition: "
               "dockerfile parse error line 5: unknown instruction: ECHO")
    for line in ("#1 [internal] load build definition from Dockerfile", "#1 DONE 0.0s", summary):
        parser.feed(line)
    failure = parser.failure()
    assert failure.step == "the start of the build"
    assert failure.error.endswith("unknown instruction: ECHO")


def test_command_names_secrets_but_never_carries_values(app: App) -> None:
    spec = BuildSpec(args={"B": "2", "A": "1"}, target="runtime", platform="linux/arm64",
                     secrets=(BuildSecret("npm", "NPM_TOKEN"),))
    buildx = buildkit_command(BuildkitCli(("docker", "buildx", "build"), load=True), app,
                              "r/p-api:1", spec, "/tmp/iid")
    assert buildx[:3] == ["docker", "buildx", "build"] and "--load" in buildx
    assert buildx[buildx.index("--secret") + 1] == "id=npm,env=NPM_TOKEN"
    assert buildx[buildx.index("--target") + 1] == "runtime"
    assert buildx[buildx.index("--platform") + 1] == "linux/arm64"
    args = [buildx[i + 1] for i, word in enumerate(buildx) if word == "--build-arg"]
    assert args == ["A=1", "B=2"]
    assert buildx[-1] == str(app.context)
    legacy = buildkit_command(BuildkitCli(("docker", "build"), env={"DOCKER_BUILDKIT": "1"}),
                              app, "r/p-api:1", BuildSpec(), "/tmp/iid")
    assert "--load" not in legacy and "--platform" not in legacy and "--secret" not in legacy


def test_summary_is_the_error_line_even_with_warnings_after_it() -> None:
    parser = PlainProgress()
    for line in ("#1 [internal] load build definition from Dockerfile", "#1 DONE 0.0s",
                 "ERROR: failed to build: failed to solve: dockerfile parse error on line 3",
                 "1 warning found (use docker --debug to expand):",
                 " - JSONArgsRecommended: JSON arguments recommended for CMD (line 4)"):
        parser.feed(line)
    failure = parser.failure()
    assert failure.error == "failed to build: failed to solve: dockerfile parse error on line 3"
    assert failure.error not in failure.lines  # the excerpt does not repeat the error
