"""The door to BuildKit: find a Docker CLI that builds with it, run the build, read its progress.

`docker buildx build --load` (or `DOCKER_BUILDKIT=1 docker build` with a Docker 18.09-22.x
client, which has BuildKit built in) talks to the engine's BuildKit; its `--progress=plain`
output drives the per-image progress and, on failure, names the failing step and its output.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from paless_deploy.adapters.docker import Cancelled
from paless_deploy.core.errors import BuildError
from paless_deploy.core.images.buildspec import BuildSpec, build_failed
from paless_deploy.core.images.discover import App
from paless_deploy.core.images.dockerfile import syntax_directive
from paless_deploy.core.reporting.report import scrub

if TYPE_CHECKING:
    from paless_deploy.core.reporting.progress import ImageProgress

OUTPUT_TAIL = 15
PROBE_TIMEOUT_S = 20
FIRST_BUILDKIT_CLIENT = (18, 9)  # DOCKER_BUILDKIT=1 works from Docker 18.09 ...
FIRST_BUILDX_ONLY_CLIENT = 23  # ... and from 23.0 only through the buildx plugin
BUILDX_HINT = (
    "Install the buildx plugin (Docker's apt/yum repository: docker-buildx-plugin; or a "
    "release binary from https://github.com/docker/buildx/releases saved as "
    "~/.docker/cli-plugins/docker-buildx and made executable); on the sandbox "
    "`scripts/sandbox up` provides it.")


@dataclass(frozen=True)
class BuildkitCli:
    """A Docker CLI that builds with BuildKit, and how to call it."""

    argv: tuple[str, ...]  # the build command without options
    env: Mapping[str, str] = field(default_factory=dict)  # added to the environment
    load: bool = False  # buildx: `--load` puts the image into the engine
    description: str = ""  # for doctor and messages: what runs, and which version


def _client_version(docker: str) -> tuple[int, int] | None:
    """`docker --version` -> (major, minor); client only, the engine is not asked."""
    try:
        out = subprocess.run([docker, "--version"], capture_output=True, text=True,
                             timeout=PROBE_TIMEOUT_S, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"version (\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _buildx_version(docker: str) -> str | None:
    """`docker buildx version` (e.g. `v0.38.2`), None when the plugin is missing or broken."""
    try:
        res = subprocess.run([docker, "buildx", "version"], capture_output=True, text=True,
                             timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if res.returncode != 0:
        return None
    match = re.search(r"\bv?\d+\.\d+\.\d+\S*", res.stdout)
    return match.group(0) if match else res.stdout.strip()[:40] or "?"


def _docker_clients(path: str) -> list[str]:
    """Every `docker` executable on PATH, in order, each real file once."""
    found: list[str] = []
    seen: set[str] = set()
    for directory in path.split(os.pathsep):
        candidate = shutil.which("docker", path=directory) if directory else None
        if candidate and os.path.realpath(candidate) not in seen:
            seen.add(os.path.realpath(candidate))
            found.append(candidate)
    return found


@cache
def _find(path: str, docker_config: str) -> tuple[BuildkitCli | None, str]:
    clients = _docker_clients(path)
    if not clients:
        return None, "no `docker` command on PATH"
    notes = []
    for docker in clients:
        buildx = _buildx_version(docker)
        if buildx:
            return BuildkitCli((docker, "buildx", "build"), load=True,
                               description=f"docker buildx {buildx} ({docker})"), ""
        version = _client_version(docker)
        if version and FIRST_BUILDKIT_CLIENT <= version < (FIRST_BUILDX_ONLY_CLIENT, 0):
            return BuildkitCli((docker, "build"), env={"DOCKER_BUILDKIT": "1"},
                               description=f"DOCKER_BUILDKIT=1 docker build, Docker "
                                           f"{version[0]}.{version[1]} client ({docker})"), ""
        shown = f"{version[0]}.{version[1]}" if version else "unknown version"
        notes.append(f"{docker} (Docker {shown}) has no buildx plugin")
    return None, "; ".join(notes)


def find_buildkit() -> tuple[BuildkitCli | None, str]:
    """The first Docker CLI on PATH that builds with BuildKit, else (None, why not).

    Asked once per process for a PATH and DOCKER_CONFIG (where CLI plugins live): each
    probe starts the CLI.
    """
    return _find(os.environ.get("PATH", os.defpath), os.environ.get("DOCKER_CONFIG", ""))


# ---------------------------------------------------------------------------
# Progress: BuildKit's `--progress=plain` output

_LINE = re.compile(r"^#(\d+) (.*)$")
_STEP = re.compile(r"^\[(?:(?P<stage>\S+) )?(?P<i>\d+)/(?P<n>\d+)\] (?P<what>.+)$")
_LOG = re.compile(r"^\d+\.\d+ (.*)$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ERROR_PREFIX = re.compile(r"^(?:ERROR|error):?\s*")


@dataclass
class _Vertex:
    name: str
    state: str = "running"  # running, done, cached, error, canceled
    error: str = ""
    logs: deque[str] = field(default_factory=lambda: deque(maxlen=OUTPUT_TAIL))


@dataclass(frozen=True)
class BuildFailure:
    """What a failed build's output says: the failing step, the error, its last lines."""

    step: str
    error: str
    lines: tuple[str, ...]
    resolving: str = ""  # the image BuildKit could not resolve at that step, if any


class PlainProgress:
    """Reads BuildKit's plain progress line by line: steps, counts and the failure.

    Vertices are numbered (`#5 [build 2/3] RUN ...`); their logs, `DONE`, `CACHED`,
    `ERROR: ...` lines follow, interleaved. Steps are the `[stage i/n]` vertices: BuildKit
    only shows the stages the target needs, so the counts cover what is really built.
    """

    def __init__(self) -> None:
        self.vertices: dict[int, _Vertex] = {}
        self.stages: dict[str, int] = {}  # stage -> its step count
        self.tail: deque[str] = deque(maxlen=OUTPUT_TAIL)  # any output, for the failure
        self.trailer: list[str] = []  # lines after the progress (the error summary)
        self.current = ""

    def feed(self, line: str) -> bool:
        """Take one line; True when the step or the counts changed."""
        line = line.rstrip()
        if not line:
            return False
        match = _LINE.match(line)
        if not match:
            self.trailer.append(line)
            self.tail.append(line)
            return False
        number, rest = int(match.group(1)), match.group(2)
        vertex = self.vertices.get(number)
        if vertex is None:
            self.vertices[number] = _Vertex(rest)
            step = _STEP.match(rest)
            if step:
                self.stages[step.group("stage") or ""] = int(step.group("n"))
                self.current = rest
                return True
            return False
        return self._update(vertex, rest)

    def _update(self, vertex: _Vertex, rest: str) -> bool:
        if rest == vertex.name or _DIGEST.match(rest):
            return False
        if rest.startswith("DONE") or rest == "CACHED":
            vertex.state = "done" if rest.startswith("DONE") else "cached"
            return _STEP.match(vertex.name) is not None
        if rest.startswith("ERROR"):
            vertex.state, vertex.error = "error", _ERROR_PREFIX.sub("", rest)
            return False
        if rest == "CANCELED":
            vertex.state = "canceled"
            return False
        log = _LOG.match(rest)
        text = log.group(1) if log else rest
        vertex.logs.append(text)
        self.tail.append(text)
        return False

    def _summary(self) -> str:
        """The CLI's last word after the progress: its `ERROR:` line (buildx), else the
        last line that is not part of the failing step's excerpt (Docker 20.10)."""
        found = [line for line in self.trailer if re.match(r"^(ERROR|error)\b", line)]
        if found:
            return _ERROR_PREFIX.sub("", found[-1])
        return next((line for line in reversed(self.trailer)
                     if not line.startswith(("-", " ", ">")) and not _LOG.match(line)
                     and not re.match(r"^\S+:\d+$", line)), "")

    @property
    def counts(self) -> tuple[int, int]:
        """(steps done or cached, steps of the stages seen)."""
        done = sum(1 for v in self.vertices.values()
                   if v.state in ("done", "cached") and _STEP.match(v.name))
        return done, sum(self.stages.values())

    def failure(self) -> BuildFailure:
        """The failing step (or the first failing vertex), its error and last lines."""
        failed = next((v for v in self.vertices.values() if v.state == "error"), None)
        summary = self._summary()
        if failed is None:
            lines = tuple(line for line in self.tail if _ERROR_PREFIX.sub("", line) != summary)
            return BuildFailure("the start of the build", summary or "the build failed", lines)
        resolving = ""
        found = re.match(r"^(?:\[internal\] )?resolve image config for (?:docker-image://)?(\S+)",
                         failed.name)
        if found:
            resolving = found.group(1)
        return BuildFailure(failed.name, failed.error or summary, tuple(failed.logs), resolving)


# ---------------------------------------------------------------------------
# The build


def buildkit_command(cli: BuildkitCli, app: App, ref: str, spec: BuildSpec,
                     iidfile: str, dockerfile: Path | None = None) -> list[str]:
    """The argv of one build; secrets are named, their values travel in the environment.
    `dockerfile`: where the Dockerfile to build is, when not the app's own."""
    argv = [*cli.argv, "--progress=plain", "--iidfile", iidfile, "--tag", ref,
            "--file", str(dockerfile or app.dockerfile)]
    if cli.load:
        argv.append("--load")
    for name in sorted(spec.args):
        argv += ["--build-arg", f"{name}={spec.args[name]}"]
    if spec.target:
        argv += ["--target", spec.target]
    if spec.platform:
        argv += ["--platform", spec.platform]
    for secret in spec.secrets:
        argv += ["--secret", f"id={secret.id},env={secret.variable}"]
    if spec.frontend:
        argv += ["--build-arg", f"BUILDKIT_SYNTAX={spec.frontend}"]
    argv.append(str(app.context))
    return argv


def build_with_buildkit(cli: BuildkitCli, app: App, ref: str, spec: BuildSpec,
                        secret_values: Mapping[str, str], progress: ImageProgress,
                        stop: threading.Event, dockerfile: str | None = None) -> str:
    """Build one image with BuildKit and return its ID; BuildError paragraphs on failure.

    `secret_values` maps each secret's variable to its value: they reach the CLI through
    its environment only, and are scrubbed from every line this function reports.
    `dockerfile` replaces the Dockerfile's text (its FROMs naming exact tags).
    """
    parser = PlainProgress()
    hidden = [v for v in secret_values.values() if v]
    with tempfile.TemporaryDirectory(prefix="paless-build-") as tmp:
        iidfile = str(Path(tmp) / "iid")
        env = {**os.environ, **cli.env, **secret_values}
        written = None if dockerfile is None else _write_dockerfile(app, dockerfile, Path(tmp))
        try:
            proc = subprocess.Popen(buildkit_command(cli, app, ref, spec, iidfile, written),
                                    env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace",
                                    start_new_session=True)
        except OSError as exc:
            raise BuildError(f"Cannot run {cli.argv[0]} to build {app.name}: {exc}.",
                             "Check the Docker CLI, or set BUILDER=classic.",
                             code="build-failed") from exc
        _stop_on(stop, proc)
        assert proc.stdout is not None
        for line in proc.stdout:
            if parser.feed(line):
                done, total = parser.counts
                progress.update(app.name, scrub(parser.current, hidden), done, total)
        code = proc.wait()
        if stop.is_set():
            raise Cancelled()
        if code == 0:
            iid = Path(iidfile).read_text().strip() if Path(iidfile).exists() else ""
            return iid
    raise explain_failure(app, ref, spec, parser.failure(), hidden)


def _write_dockerfile(app: App, text: str, directory: Path) -> Path:
    """`text` as the app's Dockerfile in `directory`, with the ignore file BuildKit reads
    beside a Dockerfile (`<name>.dockerignore`) copied next to it when the app has one;
    else BuildKit reads the context's `.dockerignore`, as for the app's own."""
    path = directory / "dockerfile" / app.dockerfile.name
    path.parent.mkdir()
    path.write_text(text)
    beside = app.dockerfile.with_name(app.dockerfile.name + ".dockerignore")
    if beside.is_file():
        shutil.copyfile(beside, path.with_name(beside.name))
    return path


def _stop_on(stop: threading.Event, proc: subprocess.Popen[str]) -> None:
    """Terminate the build when `stop` is set (Ctrl-C in the main thread).

    The build runs in its own session (a terminal's Ctrl-C does not reach it), so this
    watcher is its only way out: not a daemon, so that an exiting interpreter waits for it
    to stop the build rather than leave it running.
    """
    def watch() -> None:
        while proc.poll() is None:
            if stop.wait(0.5):
                proc.terminate()
                return

    threading.Thread(target=watch, name="build-stop").start()


def explain_failure(app: App, ref: str, spec: BuildSpec, failure: BuildFailure,
                    hidden: Sequence[str]) -> BuildError:
    """The one-paragraph error of a failed BuildKit build (secret values scrubbed)."""
    syntax = syntax_directive(app.dockerfile.read_text(errors="replace"))
    if failure.resolving and (syntax or spec.frontend):
        return _frontend_unavailable(app, failure, syntax, spec.frontend)
    return build_failed(app, ref, scrub(failure.step, hidden), scrub(failure.error, hidden),
                        [scrub(line, hidden) for line in failure.lines])


def _frontend_unavailable(app: App, failure: BuildFailure, syntax: tuple[int, str] | None,
                          frontend: str | None) -> BuildError:
    if frontend:
        return BuildError(
            f"Building {app.name}: DOCKERFILE_FRONTEND={frontend} makes BuildKit fetch the "
            f"Dockerfile frontend image {failure.resolving}, which the engine cannot pull "
            f"({failure.error}).",
            "Push that image to a registry the engine reaches (`docker pull "
            f"{frontend}` checks it), correct DOCKERFILE_FRONTEND, or unset it to use the "
            "engine's built-in frontend.",
            code="build-frontend-unavailable")
    assert syntax is not None
    return BuildError(
        f"Building {app.name}: the parser directive `# syntax={syntax[1]}` (line {syntax[0]} "
        f"of {app.dockerfile.name}) makes BuildKit fetch the Dockerfile frontend image "
        f"{failure.resolving}, which the engine cannot pull ({failure.error}).",
        "Remove the `# syntax=` line to use the engine's built-in frontend (Docker 23 and "
        "later have heredocs, COPY --link and RUN --mount built in), or mirror the image into "
        "a registry the engine reaches and set DOCKERFILE_FRONTEND=<registry>/docker/"
        "dockerfile:1: it replaces the directive without editing the Dockerfile.",
        code="build-frontend-unavailable")

