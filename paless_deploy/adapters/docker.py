"""The one door to the Docker engine: connect, inspect, build (classic builder), push.

Only this module imports the `docker` SDK (lazily: it is not needed for --help).
Streams are read to drive per-image progress; failures become BuildError paragraphs.
BuildKit builds go through the Docker CLI (adapters.buildkit).
"""

from __future__ import annotations

import os
import re
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from paless_deploy.adapters.buildcontext import read_dockerignore
from paless_deploy.adapters.registry import (
    registry_auth_refused,
    registry_unreachable,
    split_registry,
)
from paless_deploy.core.errors import BuildError, whole_words
from paless_deploy.core.images.buildspec import BuildSpec, build_failed
from paless_deploy.core.images.discover import App
from paless_deploy.core.images.registryaccess import DaemonRegistryConfig

if TYPE_CHECKING:
    import docker

    from paless_deploy.core.reporting.progress import ImageProgress

    DockerClient: TypeAlias = docker.APIClient

OUTPUT_TAIL = 15
PUSH_ATTEMPTS = 4
PUSH_RETRY_INITIAL_S = 1.0


def context_paths(app: App) -> list[str]:
    """Relative paths of the app's build context after its ignore file, sorted: what
    either builder receives (classic builds are sent exactly these)."""
    from docker.utils.build import exclude_paths

    patterns = read_dockerignore(app)
    return sorted(exclude_paths(str(app.context), list(patterns),
                                dockerfile=app.dockerfile_in_context))


def connect_docker() -> DockerClient:
    """An API client for the local engine (DOCKER_HOST honoured); BuildError if down, or
    `docker-tls` when DOCKER_TLS_VERIFY / DOCKER_CERT_PATH cannot be used."""
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
        reason = whole_words(str(exc).split("\n")[0], 240)
        tls = _tls_problem(exc, where, reason, os.environ)
        if tls is not None:
            raise tls from exc
        raise BuildError(
            f"The Docker engine is not reachable at {where} ({reason}).",
            "Start it (`scripts/sandbox up` starts the sandbox's engine; elsewhere "
            "`sudo systemctl start docker`), or set DOCKER_HOST to where it listens.",
            code="docker-unreachable",
        ) from exc
    client.timeout = 900  # a silent build step must not look like a dead daemon
    return client


TLS_FILES = ("ca.pem", "cert.pem", "key.pem")


def _tls_problem(exc: BaseException, where: str, reason: str,
                 environ: Mapping[str, str]) -> BuildError | None:
    """The engine's TLS settings, when they are what is wrong: certificates DOCKER_CERT_PATH
    lacks, TLS asked of an engine that does not speak it, or the other way round."""
    from docker.errors import TLSParameterError

    verify = environ.get("DOCKER_TLS_VERIFY")
    cert_path = environ.get("DOCKER_CERT_PATH") or str(Path.home() / ".docker")
    named = (f"DOCKER_CERT_PATH={cert_path}" if environ.get("DOCKER_CERT_PATH") else
             f"DOCKER_CERT_PATH unset, so {cert_path}")
    text = str(exc)
    if isinstance(exc, TLSParameterError):
        missing = [f for f in TLS_FILES if not (Path(cert_path) / f).is_file()]
        return BuildError(
            f"The Docker engine at {where} is to be reached over TLS (DOCKER_TLS_VERIFY="
            f"{verify or '(unset)'}), and its client certificates cannot be used: {named} "
            + (f"lacks {', '.join(missing)}" if missing else "cannot be read") + f" ({reason}).",
            f"Point DOCKER_CERT_PATH at the directory holding ca.pem, cert.pem and key.pem for "
            f"{where}; or, when the engine does not use TLS, unset DOCKER_TLS_VERIFY and "
            "DOCKER_CERT_PATH (and use its plain port, usually 2375, or its socket).",
            code="docker-tls")
    if verify and re.search(r"WRONG_VERSION_NUMBER|record layer|SSL", text):
        return BuildError(
            f"The Docker engine at {where} does not answer over TLS, and DOCKER_TLS_VERIFY="
            f"{verify} asks for TLS ({reason}).",
            "Unset DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for an engine without TLS, or point "
            "DOCKER_HOST at its TLS port (usually 2376).", code="docker-tls")
    if not verify and "HTTP request to an HTTPS server" in text:
        return BuildError(
            f"The Docker engine at {where} speaks TLS, and DOCKER_TLS_VERIFY is unset.",
            "Set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the directory holding ca.pem, "
            "cert.pem and key.pem for it.", code="docker-tls")
    return None


def local_image_id(api: DockerClient, ref: str) -> str | None:
    """ID of a local image, None when absent."""
    from docker.errors import ImageNotFound, NotFound

    try:
        return api.inspect_image(ref)["Id"]
    except (ImageNotFound, NotFound):
        return None


class Cancelled(Exception):
    """The user interrupted; workers stop reading their streams."""


_STEP = re.compile(r"^Step \d+/\d+ : .*")
_STEP_COUNT = re.compile(r"^Step (\d+)/(\d+) :")


def engine_platform(api: DockerClient) -> str | None:
    """The engine's own platform (`linux/amd64`), what it builds when PLATFORM is unset."""
    from docker.errors import DockerException

    try:
        version = api.version()
    except (DockerException, OSError):
        return None
    os_name, arch = version.get("Os"), version.get("Arch")
    return f"{os_name}/{arch}".lower() if os_name and arch else None


def connection_lost(exc: BaseException) -> bool:
    """A stream from the engine broke (it stopped or restarted): an OSError, or what the
    HTTP libraries under the SDK raise for a cut response (urllib3's ProtocolError)."""
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in (
        "urllib3", "requests", "http")


def build_image(api: DockerClient, app: App, ref: str, spec: BuildSpec,
                progress: ImageProgress, stop: threading.Event,
                dockerfile: str | None = None) -> str:
    """Build one image with the engine's classic builder (via the SDK) and return its ID.

    The context sent is `context_paths(app)`, so the per-Dockerfile ignore file counts
    here as with BuildKit; build secrets need BuildKit and are not passed. `dockerfile`
    replaces the Dockerfile's text in the context sent (its FROMs naming exact tags).
    """
    from docker.errors import APIError
    from docker.utils.build import create_archive

    tail: deque[str] = deque(maxlen=OUTPUT_TAIL)
    step = "the start of the build"
    error: str | None = None
    image_id: str | None = None
    try:
        extra = [] if dockerfile is None else [(app.dockerfile_in_context, dockerfile)]
        archive = create_archive(root=str(app.context), files=context_paths(app),
                                 extra_files=extra)
        stream = api.build(
            fileobj=archive, custom_context=True, dockerfile=app.dockerfile_in_context,
            tag=ref, buildargs=dict(spec.args), target=spec.target, platform=spec.platform,
            rm=True, forcerm=True, decode=True,
        )
        for chunk in stream:
            if stop.is_set():
                raise Cancelled()
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
    except Cancelled:
        raise
    except Exception as exc:
        if not connection_lost(exc):
            raise
        raise BuildError(f"Lost the Docker engine while building {app.name}: {exc}.",
                         "Check that the engine is running (`docker info`), then run again: "
                         "what was built and pushed is not done twice.",
                         code="engine-lost") from exc
    if error is not None:
        raise build_failed(app, ref, step, error, tail, classic=True)
    return image_id or local_image_id(api, ref) or ""


_AUTH_WORDS = ("unauthorized", "authentication required", "denied", "no basic auth",
               "authorization")
_UNREACHABLE_WORDS = ("connection refused", "no such host", "dial tcp", "i/o timeout")
_TRANSIENT_WORDS = ("connection reset", "broken pipe", "eof", "timeout", "503", "502",
                    "500 internal", "temporar", "unexpected status", "too many requests")


class _TransientPushError(Exception):
    """A push error worth another attempt."""


def push_image(api: DockerClient, registry: str, ref: str, app: str,
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
                    raise Cancelled()
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
        except Exception as exc:
            if not connection_lost(exc):
                raise
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
        host, _ = split_registry(registry)
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
# What the engine knows about registries (read by adapters.registry to speak as it does)


_registry_config: DaemonRegistryConfig | None = None
_registry_config_lock = threading.Lock()


def daemon_registry_config() -> DaemonRegistryConfig:
    """The engine's insecure registries and CIDRs (`docker info`), read once per process;
    Docker's defaults (loopback is insecure) when the engine does not answer."""
    global _registry_config
    with _registry_config_lock:
        if _registry_config is None:
            try:
                info = connect_docker().info()
                _registry_config = DaemonRegistryConfig.from_info(info.get("RegistryConfig"))
            except (BuildError, OSError, ValueError):
                _registry_config = DaemonRegistryConfig()
            except Exception:  # noqa: BLE001 - a half-broken engine: Docker's defaults
                _registry_config = DaemonRegistryConfig()
        return _registry_config


@dataclass(frozen=True)
class RegistryCredentials:
    """What the Docker config holds for one registry: a login or an identity token."""

    username: str = ""
    password: str = ""
    identity_token: str = ""


def registry_credentials(host: str) -> RegistryCredentials | None:
    """The credentials `docker login` stored for `host` (config file, credsStore or a
    credential helper, as the SDK resolves them), None when there are none."""
    from docker import auth
    from docker.errors import DockerException

    try:
        found = auth.load_config().resolve_authconfig(host)
    except (DockerException, OSError, ValueError):
        return None
    if not found:
        return None
    lowered = {str(k).lower(): str(v or "") for k, v in found.items()}
    creds = RegistryCredentials(lowered.get("username", ""), lowered.get("password", ""),
                                lowered.get("identitytoken", ""))
    return creds if (creds.username or creds.identity_token) else None


def tag_image(api: DockerClient, ref: str, new_ref: str) -> None:
    """Give the local image `ref` the name `new_ref` too (`docker tag`)."""
    from docker.errors import APIError

    repository, _, tag = new_ref.rpartition(":")
    try:
        api.tag(ref, repository, tag, force=True)
    except APIError as exc:
        raise BuildError(f"The Docker engine could not tag {ref} as {new_ref}: {exc}.",
                         "Check the engine (`docker tag` reproduces it), then run again.",
                         code="export-failed") from exc


def untag_image(api: DockerClient, ref: str) -> None:
    """Remove the name `ref` (the image stays under its other names); gone already is fine."""
    from docker.errors import APIError

    try:
        api.remove_image(ref, noprune=True)
    except APIError:
        pass  # a name left behind costs nothing; the next delivery replaces it


def save_image(api: DockerClient, ref: str) -> Iterator[bytes]:
    """`docker save REF` as a stream of archive chunks (for an import into containerd)."""
    from docker.errors import APIError, ImageNotFound, NotFound

    try:
        yield from api.get_image(ref)
    except (ImageNotFound, NotFound) as exc:
        raise BuildError(f"Image {ref} is not in the local Docker engine, so it cannot be "
                         "imported.", "Build it first (`paless-deploy build`), then run again.",
                         code="image-missing") from exc
    except (APIError, OSError) as exc:
        raise BuildError(f"The Docker engine failed to export {ref}: {exc}.",
                         "Check the engine (`docker save` reproduces it), then run again.",
                         code="export-failed") from exc
