"""BuildKit builds on the sandbox's real Docker engine and registry, through the CLI.

What is asserted comes from the engine (image config, layers, events), the registry (its
manifests and blobs) and the cluster, not from the tool's own log: a modern Dockerfile
(FROM --platform=$BUILDPLATFORM, cache and secret mounts, heredocs, a per-Dockerfile
ignore file) builds, pushes and deploys; a second run builds and pushes nothing; the
secret is in no layer and no output; unused stages are not built; the classic builder
stays selectable; a `# syntax=` image that cannot be pulled gets one clear paragraph.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paless_deploy import cli
from paless_deploy.adapters.buildkit import find_buildkit
from paless_deploy.core.configuration.variables import BY_NAME, VARIABLES
from tests.fixtures.docker import MANIFEST_ACCEPT, Registry
from tests.integration.deploy_helpers import Project, get_json, run_cli
from tests.integration.test_build_push import image_events

pytestmark = pytest.mark.docker

FRONTEND = "127.0.0.1:5000/paless-sandbox/dockerfile:1"  # `scripts/sandbox up` pushes it
BASE = BY_NAME["BASE_IMAGE"].default  # the sandbox's busybox stand-in (sh, cat, busybox)
SANDBOX_HINT = "run `scripts/sandbox up` (it builds buildx and the Dockerfile frontend)"

# What the issue asks a BuildKit build to handle, in one Dockerfile. The `# syntax=` line
# is what the original Paless Dockerfiles start with: DOCKERFILE_FRONTEND replaces it
# offline. The `dev` stage copies a file that does not exist: building it would fail.
MODERN = """\
# syntax=docker/dockerfile:1
ARG BASE_IMAGE
FROM --platform=${{BUILDPLATFORM}} ${{BASE_IMAGE}} AS build
ARG TARGETARCH
COPY src/ /src/
RUN --mount=type=cache,id={cache_id},target=/cache \\
    echo run >> /cache/runs && busybox wc -l < /cache/runs > /cache-runs.txt
RUN --mount=type=secret,id=canary,required=true \\
    busybox sha256sum /run/secrets/canary | busybox cut -d' ' -f1 > /secret.sha256
RUN <<EOF
echo "heredoc ran for $TARGETARCH" > /heredoc.txt
EOF
COPY <<EOF /inline.txt
inline heredoc file
EOF

FROM scratch AS dev
COPY does-not-exist /nope

FROM scratch
COPY --from=build /src/ /src/
COPY --from=build /cache-runs.txt /secret.sha256 /heredoc.txt /inline.txt /
"""

MANIFESTS = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [deployment.yaml]
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, labels: {tier: backend}}
spec:
  replicas: 1
  selector: {matchLabels: {tier: backend}}
  template:
    metadata: {labels: {tier: backend}}
    spec:
      containers:
      - {name: api, image: api}
"""


@pytest.fixture(scope="session")
def buildkit_ready(registry: Registry) -> None:
    """BuildKit through the Docker CLI and the sandbox's Dockerfile frontend image."""
    cli_found, why_not = find_buildkit()
    if cli_found is None:
        pytest.skip(f"no BuildKit-capable Docker CLI ({why_not}): {SANDBOX_HINT}")
    repository, _, tag = FRONTEND.split("/", 1)[1].rpartition(":")
    if registry.manifest_digest(repository, tag) is None:
        pytest.skip(f"the Dockerfile frontend {FRONTEND} is not in the registry: {SANDBOX_HINT}")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)
    return monkeypatch


@pytest.fixture
def canary() -> str:
    return f"canary-{uuid.uuid4().hex}"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str, str]:
    """The CLI in this process: exit code, JSON document, raw stdout, stderr."""
    code = cli.main(["--output", "json", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), out, err


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def modern_project(root: Path) -> Path:
    """Root `Dockerfile.api` with its own ignore file, which wins over `.dockerignore`."""
    write(root / "Dockerfile.api", MODERN.format(cache_id=f"paless-test-{uuid.uuid4().hex}"))
    write(root / ".dockerignore", "*.md\nk8s\n")  # would drop README.md ...
    write(root / "Dockerfile.api.dockerignore", "src/notes.txt\nk8s\n")  # ... this file rules
    write(root / "src" / "app.py", "print('v1')\n")
    write(root / "src" / "README.md", "kept: only the per-Dockerfile ignore file counts\n")
    write(root / "src" / "notes.txt", "ignored by Dockerfile.api.dockerignore\n")
    write(root / "k8s" / "overlays" / "dev" / "kustomization.yaml", MANIFESTS)
    write(root / "k8s" / "overlays" / "dev" / "deployment.yaml", DEPLOYMENT)
    return root


def image_files(docker_client: Any, ref: str) -> dict[str, bytes]:
    """Every regular file of an image, from `docker save` (later layers win)."""
    saved = b"".join(docker_client.get_image(ref))
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer in manifest[0]["Layers"]:
            data = outer.extractfile(layer).read()  # type: ignore[union-attr]
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as inner:
                for member in inner.getmembers():
                    if member.isfile():
                        files[member.name] = inner.extractfile(member).read()  # type: ignore[union-attr]
    return files


def saved_bytes(docker_client: Any, ref: str) -> list[bytes]:
    """The `docker save` archive and every member, layers uncompressed: config, history,
    each layer's file names and contents."""
    saved = b"".join(docker_client.get_image(ref))
    found = [saved]
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        for member in outer.getmembers():
            if member.isfile():
                data = outer.extractfile(member).read()  # type: ignore[union-attr]
                found.append(data)
                if member.name.endswith(".tar") or "/blobs/" in member.name:
                    try:
                        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as inner:
                            found += [inner.extractfile(m).read()  # type: ignore[union-attr]
                                      for m in inner.getmembers() if m.isfile()]
                            found += [m.name.encode() for m in inner.getmembers()]
                    except tarfile.ReadError:
                        pass  # a JSON blob
    return found


def registry_bytes(registry: Registry, repository: str, tag: str) -> list[bytes]:
    """The pushed manifest, config and layers (gunzipped) as the registry serves them."""
    def get(path: str, accept: str = "*/*") -> bytes:
        request = urllib.request.Request(f"{registry.url}{repository}/{path}",
                                         headers={"Accept": accept})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    manifest_raw = get(f"manifests/{tag}", MANIFEST_ACCEPT)
    manifest = json.loads(manifest_raw)
    found = [manifest_raw, get(f"blobs/{manifest['config']['digest']}")]
    for layer in manifest["layers"]:
        blob = get(f"blobs/{layer['digest']}")
        found += [blob, gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob]
    return found


@pytest.mark.cluster
def test_modern_dockerfile_builds_pushes_deploys_then_nothing_to_do(
        tmp_path: Path, sandbox: Any, namespace: str, docker_client: Any, registry: Registry,
        project_name: str, canary: str, buildkit_ready: None) -> None:
    project = modern_project(tmp_path / "p")
    env_file = write(project / "test.env", "".join(f"{k}={v}\n" for k, v in {
        "PROJECT_NAME": project_name, "REGISTRY": registry.host,
        "BUILD_SECRETS": "canary=PALESS_TEST_CANARY", "DOCKERFILE_FRONTEND": FRONTEND}.items()))
    proj = Project(project, env_file)
    secret_env = {"PALESS_TEST_CANARY": canary}

    first = run_cli(proj, sandbox.kubeconfig, namespace, "all", env=secret_env)
    assert first.returncode == 0, first
    (image,) = first.doc["images"]
    assert (image["action"], image["built"], image["pushed"], image["builder"]) == (
        "pushed", True, True, "buildkit")
    ref = image["ref"]
    assert ref == f"{registry.host}/{project_name}-api:{image['tag']}"
    assert registry.manifest_digest(f"{project_name}-api", image["tag"]) == image["digest"]
    files = image_files(docker_client, ref)
    assert files["secret.sha256"].decode().strip() == hashlib.sha256(canary.encode()).hexdigest()
    arch = docker_client.version()["Arch"]
    assert files["heredoc.txt"] == f"heredoc ran for {arch}\n".encode()
    assert files["inline.txt"] == b"inline heredoc file\n"
    assert files["cache-runs.txt"].strip() == b"1"
    assert "src/README.md" in files and "src/notes.txt" not in files  # Dockerfile.api.dockerignore
    assert "nope" not in files  # the `dev` stage was not built (it would have failed)
    deployment = get_json(sandbox, "deployment", "api", "-n", namespace)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == ref
    assert deployment["status"].get("readyReplicas") == 1

    # The canary: in no layer, config or history (as saved and as pushed), in no output.
    blobs = saved_bytes(docker_client, ref) + registry_bytes(
        registry, f"{project_name}-api", image["tag"])
    assert not [b for b in blobs if canary.encode() in b]
    for text in (first.stdout, first.stderr, json.dumps(first.doc)):
        assert canary not in text

    # A second run builds and pushes nothing (the engine's events say so, not our log).
    since = time.time()
    second = run_cli(proj, sandbox.kubeconfig, namespace, "all", env=secret_env)
    assert second.returncode == 0, second
    assert image_events(docker_client, since, time.time() + 0.5,
                        project_name) == []
    (again,) = second.doc["images"]
    assert (again["action"], again["built"], again["pushed"], again["tag"]) == (
        "skipped", False, False, image["tag"])
    assert canary not in second.stdout + second.stderr

    # An ignored file changes nothing; a file the build receives makes a new tag.
    write(project / "src" / "notes.txt", "still ignored\n")
    code, doc, _, err = _build(project, env_file, secret_env)
    assert code == 0 and doc["images"][0]["tag"] == image["tag"], err
    write(project / "src" / "app.py", "print('v2')\n")
    code, doc, out, err = _build(project, env_file, secret_env)
    assert code == 0, err
    rebuilt = doc["images"][0]
    assert rebuilt["tag"] != image["tag"] and rebuilt["action"] == "built"
    # the cache mount kept its content between the two builds
    assert image_files(docker_client, rebuilt["ref"])["cache-runs.txt"].strip() == b"2"
    assert canary not in out + err


def _build(project: Path, env_file: Path, extra: dict[str, str]) -> tuple[int, dict, str, str]:
    """`build` as a subprocess (its own environment, like a user's shell)."""
    env = {k: v for k, v in os.environ.items() if k not in {v.name for v in VARIABLES}}
    res = subprocess.run([sys.executable, "-m", "paless_deploy", "--project-dir",
                          str(project), "--env-file", str(env_file), "--output", "json",
                          "build"], capture_output=True, text=True, env={**env, **extra},
                         timeout=300, check=False)
    assert "Traceback" not in res.stderr, res.stderr
    return res.returncode, json.loads(res.stdout), res.stdout, res.stderr


def test_secret_printed_by_a_failing_step_is_scrubbed(tmp_path: Path, env: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str],
                                                     project_name: str, canary: str,
                                                     buildkit_ready: None) -> None:
    write(tmp_path / "leaky" / "Dockerfile",
          f"FROM {BASE}\nRUN --mount=type=secret,id=token "
          "echo \"token is $(cat /run/secrets/token)\"; exit 7\n")
    env.setenv("PROJECT_NAME", project_name)
    env.setenv("BUILD_SECRETS", "token=PALESS_TEST_TOKEN")
    env.setenv("PALESS_TEST_TOKEN", canary)
    code, doc, out, err = run(capsys, "--project-dir", str(tmp_path), "build")
    assert code == 3, err
    assert doc["errors"][0]["code"] == "build-failed"
    message = doc["errors"][0]["message"]
    assert "token is <redacted>" in message and "exit code: 7" in message
    assert canary not in out and canary not in err


def test_unset_secret_variable_is_a_configuration_error(tmp_path: Path, env: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str],
                                                        project_name: str,
                                                        buildkit_ready: None) -> None:
    write(tmp_path / "app" / "Dockerfile", "FROM scratch\nCOPY f /f\n")
    write(tmp_path / "app" / "f", "x")
    env.setenv("PROJECT_NAME", project_name)
    env.setenv("BUILD_SECRETS", "npm=PALESS_TEST_UNSET_TOKEN")
    env.delenv("PALESS_TEST_UNSET_TOKEN", raising=False)
    code, doc, _, err = run(capsys, "--project-dir", str(tmp_path), "build")
    assert code == 2, err
    error = doc["errors"][0]
    assert error["code"] == "build-secret-missing"
    assert "PALESS_TEST_UNSET_TOKEN" in error["message"] and "not set" in error["message"]
    assert "Traceback" not in err


STAGES = """\
FROM scratch AS base
COPY f /f
FROM scratch AS dev
COPY does-not-exist /nope
FROM base AS runtime
COPY g /g
FROM runtime AS debug
COPY also-missing /nope
"""


def test_target_stage_builds_only_what_it_needs_and_classic_stays_selectable(
        tmp_path: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        docker_client: Any, project_name: str, buildkit_ready: None) -> None:
    write(tmp_path / "svc" / "Dockerfile", STAGES)
    write(tmp_path / "svc" / "f", "f")
    write(tmp_path / "svc" / "g", "g")
    env.setenv("PROJECT_NAME", project_name)
    env.setenv("BUILD_TARGETS", "svc=runtime")
    code, doc, _, err = run(capsys, "--project-dir", str(tmp_path), "build")
    assert code == 0, err
    (image,) = doc["images"]
    assert image["builder"] == "buildkit"
    assert set(image_files(docker_client, image["ref"])) == {"f", "g"}

    # The classic builder builds every stage before the target, so `dev` breaks it.
    env.setenv("BUILDER", "classic")
    write(tmp_path / "svc" / "g", "g2")  # a new tag: nothing to reuse
    code, doc, _, err = run(capsys, "--project-dir", str(tmp_path), "build")
    assert code == 3
    assert "Step 4/6 : COPY does-not-exist /nope" in doc["errors"][0]["message"]
    assert "COPY does-not-exist /nope" in doc["errors"][0]["message"]

    # and builds what it can, with the same per-app target
    env.setenv("BUILD_TARGETS", "svc=base")
    code, doc, _, err = run(capsys, "--project-dir", str(tmp_path), "build")
    assert code == 0, err
    assert doc["images"][0]["builder"] == "classic"
    assert set(image_files(docker_client, doc["images"][0]["ref"])) == {"f"}


def test_target_the_dockerfile_lacks_is_named_before_building(
        tmp_path: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        project_name: str, buildkit_ready: None) -> None:
    write(tmp_path / "svc" / "Dockerfile", STAGES)
    env.setenv("PROJECT_NAME", project_name)
    env.setenv("BUILD_TARGETS", "svc=prod")
    code, doc, _, err = run(capsys, "--project-dir", str(tmp_path), "build")
    assert code == 2 and "Traceback" not in err
    assert "stage 'prod' of svc" in doc["errors"][0]["message"]
    assert "base, dev, runtime, debug" in doc["errors"][0]["message"]
    env.setenv("BUILD_TARGETS", "svcc=runtime")
    code, doc, _, _ = run(capsys, "--project-dir", str(tmp_path), "build")
    assert code == 2 and "names svcc, which is not an app here" in doc["errors"][0]["message"]


PLATFORM_DOCKERFILE = f"""\
FROM --platform=$BUILDPLATFORM {BASE} AS build
ARG TARGETPLATFORM
RUN echo "$TARGETPLATFORM" > /target.txt
FROM scratch
COPY --from=build /target.txt /
"""


def test_platform_builds_for_the_cluster_architecture(tmp_path: Path, env: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str],
                                                      docker_client: Any, project_name: str,
                                                      buildkit_ready: None) -> None:
    write(tmp_path / "app" / "Dockerfile", PLATFORM_DOCKERFILE)
    env.setenv("PROJECT_NAME", project_name)
    code, doc, _, err = run(capsys, "--project-dir", str(tmp_path), "build")
    assert code == 0, err
    native = doc["images"][0]
    arch = docker_client.version()["Arch"]
    assert native["platform"] == f"linux/{arch}"
    other = "arm64" if platform.machine() in ("x86_64", "amd64") else "amd64"
    env.setenv("PLATFORM", other)
    code, doc, _, err = run(capsys, "--project-dir", str(tmp_path), "build")
    assert code == 0, err
    cross = doc["images"][0]
    assert cross["platform"] == f"linux/{other}" and cross["tag"] != native["tag"]
    inspected = docker_client.inspect_image(cross["ref"])
    assert (inspected["Os"], inspected["Architecture"]) == ("linux", other)
    assert image_files(docker_client, cross["ref"])["target.txt"] == f"linux/{other}\n".encode()


def test_syntax_directive_that_cannot_be_pulled_is_one_clear_paragraph(
        tmp_path: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        project_name: str, buildkit_ready: None) -> None:
    write(tmp_path / "app" / "Dockerfile",
          "# syntax=docker/dockerfile:1\nFROM scratch\nCOPY <<EOF /x.txt\nx\nEOF\n")
    env.setenv("PROJECT_NAME", project_name)
    code, doc, _, err = run(capsys, "--project-dir", str(tmp_path), "build")
    assert code == 3, err
    error = doc["errors"][0]
    assert error["code"] == "build-frontend-unavailable"
    assert "`# syntax=docker/dockerfile:1` (line 1 of Dockerfile)" in error["message"]
    assert "docker.io/docker/dockerfile:1" in error["message"]
    assert "DOCKERFILE_FRONTEND" in error["hint"] and "Remove the `# syntax=` line" in error["hint"]
    assert "------" not in err and "Traceback" not in err

    env.setenv("DOCKERFILE_FRONTEND", "127.0.0.1:5000/paless-sandbox/no-such-frontend:1")
    code, doc, _, err = run(capsys, "--project-dir", str(tmp_path), "build")
    assert code == 3 and doc["errors"][0]["code"] == "build-frontend-unavailable"
    assert doc["errors"][0]["message"].startswith(
        "Building app: DOCKERFILE_FRONTEND=127.0.0.1:5000/paless-sandbox/no-such-frontend:1")

    env.setenv("DOCKERFILE_FRONTEND", FRONTEND)  # the mirrored frontend: builds
    code, doc, _, err = run(capsys, "--project-dir", str(tmp_path), "build")
    assert code == 0, err


@pytest.fixture
def no_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A DOCKER_CONFIG without CLI plugins: no `docker buildx` for any client."""
    config = tmp_path / "docker-config"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    yield config


def _clients() -> list[tuple[str, tuple[int, int]]]:
    import re

    found = []
    for directory in os.environ["PATH"].split(os.pathsep):
        docker = shutil.which("docker", path=directory) if directory else None
        if docker:
            out = subprocess.run([docker, "--version"], capture_output=True, text=True,
                                 check=False).stdout
            m = re.search(r"version (\d+)\.(\d+)", out)
            if m:
                found.append((docker, (int(m.group(1)), int(m.group(2)))))
    return found


def test_a_docker_20_client_builds_with_its_own_buildkit(
        tmp_path: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        docker_client: Any, project_name: str, no_plugins: Path, canary: str) -> None:
    """Without buildx, a Docker 18.09-22.x CLI (Debian's docker.io) builds with
    DOCKER_BUILDKIT=1: the same Dockerfile features, except the newer frontend's."""
    old = [d for d, v in _clients() if (18, 9) <= v < (23, 0)]
    if not old:
        pytest.skip("no Docker 18.09-22.x CLI on PATH (the sandbox installs docker.io 20.10)")
    cli_found, _ = find_buildkit()
    assert cli_found is not None and "DOCKER_BUILDKIT=1" in cli_found.description
    write(tmp_path / "app" / "Dockerfile",
          f"FROM --platform=$BUILDPLATFORM {BASE} AS build\n"
          # BuildKit's cache keys leave secret values out: a new command for a new canary
          f"RUN --mount=type=secret,id=canary busybox sha256sum /run/secrets/canary > /s "
          f"&& echo {uuid.uuid4().hex} > /run-id\n"
          "FROM scratch AS dev\nCOPY missing /m\nFROM scratch\nCOPY --from=build /s /s\n")
    env.setenv("PROJECT_NAME", project_name)
    env.setenv("BUILDER", "buildkit")
    env.setenv("BUILD_SECRETS", "canary=PALESS_TEST_CANARY")
    env.setenv("PALESS_TEST_CANARY", canary)
    code, doc, out, err = run(capsys, "--project-dir", str(tmp_path), "build")
    assert code == 0, err
    assert doc["images"][0]["builder"] == "buildkit"
    digest = hashlib.sha256(canary.encode()).hexdigest()
    assert image_files(docker_client, doc["images"][0]["ref"])["s"].startswith(digest.encode())
    assert canary not in out + err


def test_without_buildkit_auto_falls_back_once_and_buildkit_fails(
        tmp_path: Path, env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        docker_client: Any, project_name: str, no_plugins: Path) -> None:
    new = [d for d, v in _clients() if v >= (23, 0)]
    if not new:
        pytest.skip("no Docker 23+ CLI on PATH to stand for a client without buildx")
    only = tmp_path / "only-docker"
    only.mkdir()
    (only / "docker").symlink_to(new[0])
    env.setenv("PATH", str(only))
    for name in ("one", "two"):
        write(tmp_path / "p" / name / "Dockerfile", "FROM scratch\nCOPY f /f\n")
        write(tmp_path / "p" / name / "f", name)
    env.setenv("PROJECT_NAME", project_name)
    code, doc, _, err = run(capsys, "--project-dir", str(tmp_path / "p"), "build")
    assert code == 0, err
    assert {i["builder"] for i in doc["images"]} == {"classic"}
    fallback = [w for w in doc["warnings"] if w.startswith("BuildKit is not available")]
    assert len(fallback) == 1 and "has no buildx plugin" in fallback[0]
    assert err.count("BuildKit is not available") == 1  # said once, for two builds

    env.setenv("BUILDER", "buildkit")
    write(tmp_path / "p" / "one" / "f", "changed")
    code, doc, _, err = run(capsys, "--project-dir", str(tmp_path / "p"), "build", "one")
    assert code == 3
    assert doc["errors"][0]["code"] == "buildkit-missing"
    assert "docker-buildx" in doc["errors"][0]["hint"] and "Traceback" not in err


@pytest.mark.parametrize(("builder", "step"), [
    ("buildkit", "[2/2] COPY missing.txt /m"), ("classic", "Step 3/3 : COPY missing.txt /m")])
def test_failing_step_is_named_by_either_builder(builder: str, step: str, tmp_path: Path,
                                                 env: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str],
                                                 project_name: str) -> None:
    write(tmp_path / "bad" / "Dockerfile", "FROM scratch\nCOPY present.txt /p\n"
                                           "COPY missing.txt /m\n")
    write(tmp_path / "bad" / "present.txt", "here")
    env.setenv("PROJECT_NAME", project_name)
    env.setenv("BUILDER", builder)
    code, doc, _, err = run(capsys, "--project-dir", str(tmp_path), "build")
    assert code == 3
    assert doc["errors"][0]["code"] == "build-failed"
    assert f"failed at `{step}`" in doc["errors"][0]["message"]
    assert "missing.txt" in doc["errors"][0]["message"] and "Traceback" not in err


def test_classic_builds_send_the_per_dockerfile_context(tmp_path: Path, env: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str],
                                                        docker_client: Any,
                                                        project_name: str) -> None:
    """The classic builder receives the same context BuildKit would: tags mean one thing."""
    write(tmp_path / "Dockerfile.api", "FROM scratch\nCOPY . /ctx/\n")
    write(tmp_path / ".dockerignore", "*.md\n")
    write(tmp_path / "Dockerfile.api.dockerignore", "secret-notes.txt\n")
    write(tmp_path / "README.md", "readme")
    write(tmp_path / "secret-notes.txt", "notes")
    env.setenv("PROJECT_NAME", project_name)
    env.setenv("BUILDER", "classic")
    code, doc, _, err = run(capsys, "--project-dir", str(tmp_path), "build")
    assert code == 0, err
    files = set(image_files(docker_client, doc["images"][0]["ref"]))
    assert "ctx/README.md" in files and "ctx/secret-notes.txt" not in files
