"""Build and push stage: content-derived immutable tags, build and push only what is missing.

Tag = hash of what the Docker SDK sends as context (after .dockerignore), the
Dockerfile, build args and local base image IDs; the Docker daemon and the
registry's HTTP API are asked before any work, so unchanged apps cost nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paless_deploy.core.discover import App
from paless_deploy.core.errors import BuildError

if TYPE_CHECKING:
    import docker

    from paless_deploy.core.config import Config
    from paless_deploy.ui.progress import ImageProgress

TAG_LENGTH = 12
TAG_SCHEMA = b"paless-deploy/image-tag/v1\0"
MAX_PARALLEL = 3
PUSH_ATTEMPTS = 4
PUSH_RETRY_INITIAL_S = 1.0
OUTPUT_TAIL = 15
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)

ACTION_BUILT = "built"  # built in this run and not pushed (`build`)
ACTION_PUSHED = "pushed"  # uploaded to the registry in this run (built first if missing)
ACTION_SKIPPED = "skipped"  # neither built nor pushed: it already existed where needed


@dataclass(frozen=True)
class ImageResult:
    """What happened to one app's image in this run.

    `action` is the most significant thing done: "pushed" if it was uploaded
    (whether or not it was also built), else "built" if it was built, else
    "skipped". `digest` is the registry manifest digest, None when the registry
    was not asked (`build`).
    """

    app: str
    ref: str
    tag: str
    digest: str | None
    action: str
    image_id: str | None = None
    built: bool = False
    pushed: bool = False


# ---------------------------------------------------------------------------
# Tags: pure functions over the files of the context


def read_dockerignore(context: Path) -> list[str]:
    """The .dockerignore patterns exactly as `docker.APIClient.build` reads them."""
    path = context / ".dockerignore"
    if not path.exists():
        return []
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def context_paths(app: App) -> list[str]:
    """Relative paths of the context the SDK would send for this app, sorted."""
    from docker.utils.build import exclude_paths

    patterns = read_dockerignore(app.context)
    return sorted(exclude_paths(str(app.context), list(patterns),
                                dockerfile=app.dockerfile_in_context))


def base_images(dockerfile_text: str, build_args: Mapping[str, str]) -> list[str]:
    """Images named by FROM lines (ARGs substituted), without scratch and stage names."""
    text = re.sub(r"\\\r?\n", " ", dockerfile_text)
    args: dict[str, str] = {}
    stages: set[str] = set()
    bases: list[str] = []
    seen_from = False
    for raw in text.splitlines():
        words = raw.strip().split()
        if not words or words[0].startswith("#"):
            continue
        keyword = words[0].upper()
        if keyword == "ARG" and not seen_from and len(words) > 1:
            name, _, default = words[1].partition("=")
            args[name] = build_args.get(name, default.strip("\"'"))
        elif keyword == "FROM":
            seen_from = True
            rest = [w for w in words[1:] if not w.startswith("--")]
            if not rest:
                continue
            image = _expand(rest[0], args)
            if len(rest) >= 3 and rest[1].upper() == "AS":
                stages.add(rest[2].lower())
            if image.lower() != "scratch" and image.lower() not in stages and image not in bases:
                bases.append(image)
    return bases


def _expand(word: str, args: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        default = match.group(2)
        value = args.get(name, "")
        return value if value or default is None else default

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)",
                  substitute, word)


class FileDigests:
    """Content hashes of files, cached by path, size and mtime for one run."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def digest(self, path: Path, st: os.stat_result) -> str:
        """sha256 of a regular file's content."""
        key = (str(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(key)
        if cached:
            return cached
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        value = h.hexdigest()
        with self._lock:
            self._cache[key] = value
        return value


def compute_tag(
    app: App,
    build_args: Mapping[str, str],
    base_image_ids: Mapping[str, str | None],
    digests: FileDigests | None = None,
) -> str:
    """The immutable tag of an app's image: first 12 hex chars of a content hash.

    Covers each sent path with its type, permission bits and content (not mtimes,
    owners), the Dockerfile, the sorted build args and each base image's local ID.
    """
    digests = digests or FileDigests()
    h = hashlib.sha256(TAG_SCHEMA)
    for rel in context_paths(app):
        full = app.context / rel
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            continue  # removed while hashing; the next run sees the new state
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            entry = f"L {rel} {os.readlink(full)}"
        elif stat.S_ISDIR(st.st_mode):
            entry = f"D {rel} {mode:o}"
        elif stat.S_ISREG(st.st_mode):
            entry = f"F {rel} {mode:o} {digests.digest(full, st)}"
        else:
            continue  # sockets, fifos: the SDK skips them too
        h.update(entry.encode("utf-8", "surrogateescape") + b"\0")
    h.update(b"dockerfile " + app.dockerfile_in_context.encode() + b"\0")
    h.update(app.dockerfile.read_bytes() + b"\0")
    for name in sorted(build_args):
        h.update(f"arg {name}={build_args[name]}\0".encode())
    for ref in sorted(base_image_ids):
        h.update(f"base {ref}={base_image_ids[ref] or 'not-local'}\0".encode())
    return h.hexdigest()[:TAG_LENGTH]


def image_ref(config: Config, app: str, tag: str) -> str:
    """`{REGISTRY}/{PROJECT_NAME}-{app}:{tag}`."""
    return f"{config.image_repository(app)}:{tag}"


# ---------------------------------------------------------------------------
# Registry: the HTTP API, asked whether a tag exists


def _split_registry(registry: str) -> tuple[str, str]:
    host, _, prefix = registry.partition("/")
    return host, prefix


def registry_scheme(host: str) -> str:
    """Plain http for loopback registries (as Docker treats them), https otherwise."""
    hostname = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    hostname = hostname.strip("[]")
    if hostname in ("localhost", "::1") or hostname.startswith("127."):
        return "http"
    return "https"


class _AuthRequired(Exception):
    """The registry wants credentials for reading; let the daemon push with its own."""


def registry_manifest_digest(registry: str, repository: str, tag: str,
                             timeout: float = 10.0) -> str | None:
    """Digest of `repository:tag` in the registry, None when the tag is absent.

    Raises BuildError when the registry cannot be reached, _AuthRequired on 401/403.
    """
    host, prefix = _split_registry(registry)
    name = f"{prefix}/{repository}" if prefix else repository
    url = f"{registry_scheme(host)}://{host}/v2/{name}/manifests/{tag}"
    request = urllib.request.Request(url, method="HEAD",
                                     headers={"Accept": ", ".join(MANIFEST_TYPES)})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.headers.get("Docker-Content-Digest") or "unknown"
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        if exc.code in (401, 403):
            raise _AuthRequired() from exc
        raise BuildError(
            f"Registry {host} answered HTTP {exc.code} when asked for {name}:{tag}.",
            f"Check the registry's logs and that {url.rsplit('/v2/', 1)[0]}/v2/ answers.",
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise registry_unreachable(registry, str(reason)) from exc


def check_registry(registry: str, timeout: float = 10.0) -> None:
    """Fail fast, once, when the registry's API does not answer (401 counts as an answer)."""
    host, _ = _split_registry(registry)
    url = f"{registry_scheme(host)}://{host}/v2/"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return
        raise BuildError(
            f"Registry {host} answered HTTP {exc.code} at {url}; it does not look like a "
            "Docker registry.",
            "Check REGISTRY / --registry (host:port of a registry speaking the v2 API).",
            code="registry-unreachable",
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise registry_unreachable(registry, str(getattr(exc, "reason", exc))) from exc


def registry_unreachable(registry: str, reason: str) -> BuildError:
    """The one paragraph for a registry we cannot reach."""
    host, _ = _split_registry(registry)
    return BuildError(
        f"Registry {host} is not reachable ({reason}), so images cannot be pushed "
        f"to {registry}.",
        f"Start it (`scripts/sandbox up` starts the sandbox registry on 127.0.0.1:5000), "
        f"or set REGISTRY / --registry to a reachable one; check with "
        f"`curl {registry_scheme(host)}://{host}/v2/`.",
        code="registry-unreachable",
    )


def registry_auth_refused(registry: str, detail: str) -> BuildError:
    """The one paragraph for a registry that refuses our credentials."""
    host, _ = _split_registry(registry)
    return BuildError(
        f"Registry {host} refused authentication ({detail.strip()}).",
        f"Log in with `docker login {host}` (in CI, with a token that may push), "
        "then run again.",
        code="registry-auth",
    )


# ---------------------------------------------------------------------------
# Docker engine adapter


def connect_docker() -> docker.APIClient:
    """An API client for the local engine (DOCKER_HOST honoured); BuildError if down."""
    import docker
    from docker.errors import DockerException

    kwargs: dict[str, Any] = {}
    try:
        kwargs = docker.utils.kwargs_from_env()
        client = docker.APIClient(version="auto", timeout=30, **kwargs)
        client.ping()
    except (DockerException, OSError) as exc:
        where = kwargs.get("base_url") or os.environ.get("DOCKER_HOST") or \
            "unix:///var/run/docker.sock"
        reason = str(exc).split("\n")[0]
        if len(reason) > 160:
            reason = reason[:160] + "..."
        raise BuildError(
            f"The Docker engine is not reachable at {where} ({reason}).",
            "Start it (`scripts/sandbox up` starts the sandbox's engine; elsewhere "
            "`sudo systemctl start docker`), or set DOCKER_HOST to where it listens.",
            code="docker-unreachable",
        ) from exc
    client.timeout = 900  # a silent build step must not look like a dead daemon
    return client


def local_image_id(api: docker.APIClient, ref: str) -> str | None:
    """ID of a local image, None when absent."""
    from docker.errors import ImageNotFound, NotFound

    try:
        return api.inspect_image(ref)["Id"]
    except (ImageNotFound, NotFound):
        return None


class _Cancelled(Exception):
    """The user interrupted; workers stop reading their streams."""


_STEP = re.compile(r"^Step \d+/\d+ : .*")
_STEP_COUNT = re.compile(r"^Step (\d+)/(\d+) :")


def build_image(api: docker.APIClient, app: App, ref: str, build_args: Mapping[str, str],
                progress: ImageProgress, stop: threading.Event) -> str:
    """Build one image (classic builder via the SDK) and return its ID."""
    from docker.errors import APIError

    tail: deque[str] = deque(maxlen=OUTPUT_TAIL)
    step = "the start of the build"
    error: str | None = None
    image_id: str | None = None
    try:
        stream = api.build(
            path=str(app.context), dockerfile=app.dockerfile_in_context, tag=ref,
            buildargs=dict(build_args), rm=True, forcerm=True, decode=True,
        )
        for chunk in stream:
            if stop.is_set():
                raise _Cancelled()
            for line in str(chunk.get("stream", "")).splitlines():
                line = line.rstrip()
                if not line:
                    continue
                tail.append(line)
                if _STEP.match(line):
                    step = line
                    count = _STEP_COUNT.match(line)
                    assert count is not None
                    progress.update(app.name, line, int(count.group(1)), int(count.group(2)))
            if "error" in chunk or "errorDetail" in chunk:
                detail = chunk.get("errorDetail") or {}
                error = str(detail.get("message") or chunk.get("error")).strip()
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = aux["ID"]
    except APIError as exc:
        error = str(exc.explanation or exc)
    except _Cancelled:
        raise
    except OSError as exc:
        raise BuildError(f"Lost the Docker engine while building {app.name}: {exc}.",
                         "Check that the engine is running, then run again.") from exc
    if error is not None:
        output = "\n".join(f"    {line}" for line in tail) or "    (no output)"
        raise BuildError(
            f"Building {app.name} ({app.dockerfile.name}, image {ref}) failed at "
            f"`{step}`: {error}\n  Last build output:\n{output}",
            f"Fix that step of {app.dockerfile} or the files it uses, then run again.",
            code="build-failed",
        )
    return image_id or local_image_id(api, ref) or ""


_AUTH_WORDS = ("unauthorized", "authentication required", "denied", "no basic auth",
               "authorization")
_UNREACHABLE_WORDS = ("connection refused", "no such host", "dial tcp", "i/o timeout")
_TRANSIENT_WORDS = ("connection reset", "broken pipe", "eof", "timeout", "503", "502",
                    "500 internal", "temporar", "unexpected status", "too many requests")


class _TransientPushError(Exception):
    """A push error worth another attempt."""


def push_image(api: docker.APIClient, registry: str, ref: str, app: str,
               progress: ImageProgress, stop: threading.Event) -> str | None:
    """Push one image, retrying transient errors; return the manifest digest."""
    from tenacity import (
        retry,
        retry_if_exception_type,
        stop_after_attempt,
        wait_exponential,
        wait_random,
    )

    repository, _, tag = ref.rpartition(":")

    @retry(retry=retry_if_exception_type(_TransientPushError),
           stop=stop_after_attempt(PUSH_ATTEMPTS),
           wait=wait_exponential(multiplier=PUSH_RETRY_INITIAL_S, max=15)
           + wait_random(0, PUSH_RETRY_INITIAL_S),  # jitter, portable across tenacity 8/9
           reraise=True)
    def attempt() -> str | None:
        layers: dict[str, tuple[int, int]] = {}
        digest: str | None = None
        try:
            for chunk in api.push(repository, tag=tag, stream=True, decode=True):
                if stop.is_set():
                    raise _Cancelled()
                if "error" in chunk or "errorDetail" in chunk:
                    detail = chunk.get("errorDetail") or {}
                    _raise_push_error(registry, ref,
                                      str(detail.get("message") or chunk.get("error")))
                detail = chunk.get("progressDetail") or {}
                if chunk.get("id") and detail.get("total"):
                    layers[chunk["id"]] = (int(detail.get("current", 0)), int(detail["total"]))
                    done = sum(c for c, _ in layers.values())
                    total = sum(t for _, t in layers.values())
                    progress.update(app, f"pushing {len(layers)} layer(s)", done, total)
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = aux["Digest"]
        except OSError as exc:
            raise _TransientPushError(str(exc)) from exc
        return digest

    try:
        return attempt()
    except _TransientPushError as exc:
        raise BuildError(
            f"Pushing {ref} failed after {PUSH_ATTEMPTS} attempts: {exc}.",
            f"Check the registry {registry} (its logs, disk space), then run again.",
            code="push-failed",
        ) from exc


def _raise_push_error(registry: str, ref: str, message: str) -> None:
    lowered = message.lower()
    if any(word in lowered for word in _AUTH_WORDS):
        raise registry_auth_refused(registry, message)
    if "http response to https client" in lowered:
        host, _ = _split_registry(registry)
        raise BuildError(
            f"The Docker engine pushes to {host} over HTTPS but the registry speaks plain "
            "HTTP.",
            f'Add "insecure-registries": ["{host}"] to /etc/docker/daemon.json and restart '
            "the engine, or use localhost:<port>, which Docker treats as insecure.",
            code="registry-insecure",
        )
    if any(word in lowered for word in _UNREACHABLE_WORDS):
        raise registry_unreachable(registry, message.strip())
    if any(word in lowered for word in _TRANSIENT_WORDS):
        raise _TransientPushError(message.strip())
    raise BuildError(f"Pushing {ref} failed: {message.strip()}.",
                     f"Check the registry {registry} and its logs, then run again.",
                     code="push-failed")


# ---------------------------------------------------------------------------
# The stage: tags, then bounded parallel build (and push) per app


@dataclass(frozen=True)
class _Plan:
    app: App
    tag: str
    ref: str


def plan_tags(api: docker.APIClient, config: Config, apps: Sequence[App]) -> list[_Plan]:
    """Compute every app's tag and reference (base image IDs asked from the engine)."""
    build_args = config.build_args()
    digests = FileDigests()
    ids: dict[str, str | None] = {}
    plans = []
    for app in apps:
        bases = base_images(app.dockerfile.read_text(errors="replace"), build_args)
        for base in bases:
            if base not in ids:
                ids[base] = local_image_id(api, base)
        tag = compute_tag(app, build_args, {b: ids[b] for b in bases}, digests)
        plans.append(_Plan(app, tag, image_ref(config, app.name, tag)))
    return plans


def build_images(config: Config, apps: Sequence[App], *, push: bool = False,
                 progress: ImageProgress | None = None,
                 max_parallel: int = MAX_PARALLEL) -> list[ImageResult]:
    """Build (and with `push`, push) the apps' images; only what is missing is done.

    With `push`, an image whose tag the registry already has is neither built nor
    pushed. Results come back in the order of `apps`. Raises BuildError for the
    first failure after every started job has finished.
    """
    from paless_deploy.ui.progress import NullProgress

    progress = progress or NullProgress()
    api = connect_docker()
    if push:
        check_registry(config.registry)
    plans = plan_tags(api, config, apps)
    build_args = config.build_args()
    stop = threading.Event()

    def run(plan: _Plan) -> ImageResult:
        return _process(api, config, plan, build_args, push, progress, stop)

    with progress:
        for plan in plans:
            progress.add(plan.app.name, plan.ref)
        executor = ThreadPoolExecutor(max_workers=max(1, max_parallel),
                                      thread_name_prefix="image")
        futures: list[Future[ImageResult]] = [executor.submit(run, p) for p in plans]
        try:
            results, failures = _collect(futures)
        except KeyboardInterrupt:
            stop.set()
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        executor.shutdown(wait=True)
    if failures:
        first = failures[0]
        others = ", ".join(str(getattr(f, "app", "?")) for f in failures[1:]
                           if f.message != first.message)
        if others:
            first.hint = f"{first.hint} (Also failed: {others}.)"
        raise first
    return results


def _collect(futures: Iterable[Future[ImageResult]]) -> tuple[list[ImageResult],
                                                               list[BuildError]]:
    results: list[ImageResult] = []
    failures: list[BuildError] = []
    for future in futures:
        try:
            results.append(future.result())
        except BuildError as exc:
            failures.append(exc)
    return results, failures


def _process(api: docker.APIClient, config: Config, plan: _Plan,
             build_args: Mapping[str, str], push: bool, progress: ImageProgress,
             stop: threading.Event) -> ImageResult:
    """One app: ask the registry, build if missing locally, push if missing remotely."""
    name, ref = plan.app.name, plan.ref
    try:
        if push:
            progress.update(name, "asking the registry")
            digest = _remote_digest(config.registry, config, plan)
            if digest:
                progress.finish(name, "in the registry, nothing to do", ok=True)
                return ImageResult(name, ref, plan.tag, digest, ACTION_SKIPPED,
                                   image_id=local_image_id(api, ref))
        image_id = local_image_id(api, ref)
        built = False
        if image_id is None:
            progress.update(name, "building")
            image_id = build_image(api, plan.app, ref, build_args, progress, stop)
            built = True
        if not push:
            progress.finish(name, "built" if built else "up to date, not rebuilt", ok=True)
            return ImageResult(name, ref, plan.tag, None,
                               ACTION_BUILT if built else ACTION_SKIPPED,
                               image_id=image_id, built=built)
        progress.update(name, "pushing")
        digest = push_image(api, config.registry, ref, name, progress, stop)
        digest = digest or _remote_digest(config.registry, config, plan)
        progress.finish(name, "built and pushed" if built else "pushed", ok=True)
        return ImageResult(name, ref, plan.tag, digest, ACTION_PUSHED,
                           image_id=image_id, built=built, pushed=True)
    except BuildError as exc:
        exc.app = name  # type: ignore[attr-defined]
        progress.finish(name, exc.code, ok=False)
        raise
    except _Cancelled:
        progress.finish(name, "interrupted", ok=False)
        raise BuildError(f"Interrupted while working on {ref}.", "") from None


def _remote_digest(registry: str, config: Config, plan: _Plan) -> str | None:
    repository = f"{config.project_name}-{plan.app.name}"
    try:
        return registry_manifest_digest(registry, repository, plan.tag)
    except _AuthRequired:
        return None  # cannot tell; the daemon pushes with its own credentials


__all__: list[str] = [
    "ACTION_BUILT",
    "ACTION_PUSHED",
    "ACTION_SKIPPED",
    "FileDigests",
    "ImageResult",
    "base_images",
    "build_image",
    "build_images",
    "check_registry",
    "compute_tag",
    "connect_docker",
    "context_paths",
    "image_ref",
    "local_image_id",
    "plan_tags",
    "push_image",
    "read_dockerignore",
    "registry_manifest_digest",
    "registry_scheme",
]
