"""The one door to a registry's HTTP API (v2): does a tag exist, and its digest.

Asked before any build or push, so unchanged images cost one HEAD request each.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from paless_deploy.core.errors import BuildError
from paless_deploy.core.imageref import Registry

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


def split_registry(registry: str) -> tuple[str, str]:
    """(host[:port], path prefix) of a registry address."""
    host, _, prefix = registry.partition("/")
    return host, prefix


def registry_scheme(host: str) -> str:
    """Plain http for loopback registries (as Docker treats them), https otherwise."""
    return "http" if Registry(host.split("/", 1)[0]).loopback else "https"


class AuthRequired(Exception):
    """The registry wants credentials for reading; let the daemon push with its own."""


def registry_manifest_digest(registry: str, repository: str, tag: str,
                             timeout: float = 10.0) -> str | None:
    """Digest of `repository:tag` in the registry, None when the tag is absent.

    Raises BuildError when the registry cannot be reached, AuthRequired on 401/403.
    """
    host, prefix = split_registry(registry)
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
            raise AuthRequired() from exc
        raise BuildError(
            f"Registry {host} answered HTTP {exc.code} when asked for {name}:{tag}.",
            f"Check the registry's logs and that {url.rsplit('/v2/', 1)[0]}/v2/ answers.",
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise registry_unreachable(registry, str(reason)) from exc


def check_registry(registry: str, timeout: float = 10.0) -> None:
    """Fail fast, once, when the registry's API does not answer (401 counts as an answer)."""
    host, _ = split_registry(registry)
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
    host, _ = split_registry(registry)
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
    host, _ = split_registry(registry)
    return BuildError(
        f"Registry {host} refused authentication ({detail.strip()}).",
        f"Log in with `docker login {host}` (in CI, with a token that may push), "
        "then run again.",
        code="registry-auth",
    )
