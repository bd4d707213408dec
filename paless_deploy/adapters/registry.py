"""The one door to a registry's HTTP API (v2): does a tag exist, and its digest.

Asked before any build or push, so unchanged images cost one HEAD request each. A
registry is spoken to as the Docker engine that pushes to it does (core.registryaccess):
HTTPS without verification then plain HTTP for the insecure ones (loopback, a name
resolving to loopback, the daemon's `insecure-registries`), verified HTTPS with the CAs
of Docker's `certs.d/<host>` for the others; a 401 is answered with the credentials of
the Docker config (Basic, or the v2 token flow), so an unchanged image is not pushed
again to a registry that wants a login.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from paless_deploy.core.errors import BuildError
from paless_deploy.core.images.imageref import Registry
from paless_deploy.core.images.registryaccess import (
    Challenge,
    DaemonRegistryConfig,
    hostname_of,
    is_insecure,
    literal_address,
    parse_challenge,
    pull_scope,
)

if TYPE_CHECKING:
    from paless_deploy.adapters.docker import RegistryCredentials

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
# Where Docker reads a registry's CAs (*.crt) and client certificates (*.cert + *.key):
# the engine's directory, and a rootless engine's.
CERTS_DIRS = (Path("/etc/docker/certs.d"), Path.home() / ".config" / "docker" / "certs.d")
PROBE_TIMEOUT_S = 5.0


def split_registry(registry: str) -> tuple[str, str]:
    """(host[:port], path prefix) of a registry address."""
    host, _, prefix = registry.partition("/")
    return host, prefix


def _daemon_config() -> DaemonRegistryConfig:
    from paless_deploy.adapters.docker import daemon_registry_config

    return daemon_registry_config()


def _credentials(host: str) -> RegistryCredentials | None:
    from paless_deploy.adapters.docker import registry_credentials

    return registry_credentials(host)


def registry_scheme(host: str) -> str:
    """The scheme to show in hints (`curl http://...`): plain http for a registry Docker
    treats as insecure by its name or literal address (no DNS lookup), https otherwise."""
    host = host.split("/", 1)[0]
    known = _endpoints.get(host)
    if known is not None:
        return known.scheme
    address = literal_address(host)
    addresses = [address] if address else (["127.0.0.1"] if Registry(host).loopback else [])
    return "http" if is_insecure(host, addresses, _daemon_config()) else "https"


class AuthRequired(Exception):
    """The registry wants credentials for reading; let the daemon push with its own."""


# ---------------------------------------------------------------------------
# How to reach one registry (decided once per process)


@dataclass
class _Endpoint:
    host: str
    scheme: str  # "https" or "http"
    context: ssl.SSLContext | None
    insecure: bool
    certs_dir: Path | None  # where the CAs came from (secure registries)
    authorization: dict[str, str] = field(default_factory=dict)  # scope ("" any) -> header

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}"


_endpoints: dict[str, _Endpoint] = {}
_endpoints_lock = threading.Lock()


def _addresses(host: str) -> list[str]:
    """What the host resolves to (as the engine would look it up); [] when it does not."""
    literal = literal_address(host)
    if literal:
        return [literal]
    try:
        infos = socket.getaddrinfo(hostname_of(host), None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def _certs_dir(host: str) -> Path | None:
    for root in CERTS_DIRS:
        candidate = root / host
        if candidate.is_dir():
            return candidate
    return None


def _verified_context(host: str) -> tuple[ssl.SSLContext, Path | None]:
    """System CAs plus Docker's certs.d/<host>: *.crt are CAs, *.cert/*.key client pairs."""
    context = ssl.create_default_context()
    directory = _certs_dir(host)
    if directory is not None:
        for ca in sorted(directory.glob("*.crt")):
            context.load_verify_locations(cafile=str(ca))
        for cert in sorted(directory.glob("*.cert")):
            key = cert.with_suffix(".key")
            if key.exists():
                context.load_cert_chain(str(cert), str(key))
    return context, directory


def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _speaks_tls(host: str, context: ssl.SSLContext, timeout: float) -> bool:
    """True when https://host/v2/ answers (any HTTP status) over TLS."""
    try:
        with urllib.request.urlopen(f"https://{host}/v2/", timeout=timeout, context=context):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _endpoint(host: str, timeout: float = PROBE_TIMEOUT_S) -> _Endpoint:
    with _endpoints_lock:
        found = _endpoints.get(host)
    if found is not None:
        return found
    insecure = is_insecure(host, _addresses(host), _daemon_config())
    if insecure:
        # Docker: HTTPS without verification first, then plain HTTP.
        context = _unverified_context()
        if _speaks_tls(host, context, min(timeout, PROBE_TIMEOUT_S)):
            endpoint = _Endpoint(host, "https", context, True, None)
        else:
            endpoint = _Endpoint(host, "http", None, True, None)
    else:
        try:
            context, directory = _verified_context(host)
        except (OSError, ssl.SSLError) as exc:
            raise BuildError(
                f"The certificates Docker keeps for registry {host} cannot be read ({exc}).",
                f"Check the files in {_certs_dir(host)} (*.crt: CAs in PEM; *.cert/*.key: a "
                "client certificate and its key).", code="registry-tls") from exc
        endpoint = _Endpoint(host, "https", context, False, directory)
    with _endpoints_lock:
        return _endpoints.setdefault(host, endpoint)


def forget_endpoints() -> None:
    """Decide again how to reach each registry (after the engine's configuration changed)."""
    with _endpoints_lock:
        _endpoints.clear()


# ---------------------------------------------------------------------------
# Requests


@dataclass(frozen=True)
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes


def _open(endpoint: _Endpoint, request: urllib.request.Request, timeout: float) -> _Response:
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=endpoint.context) as resp:
            return _Response(resp.status, {k.lower(): v for k, v in resp.headers.items()},
                             resp.read())
    except urllib.error.HTTPError as exc:
        return _Response(exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()},
                         exc.read() if exc.fp else b"")
    except (urllib.error.URLError, OSError) as exc:
        raise _transport_error(endpoint, getattr(exc, "reason", exc)) from exc


def _transport_error(endpoint: _Endpoint, reason: object) -> BuildError:
    """A registry that did not answer as a registry: unreachable, or a TLS problem."""
    text = str(reason)
    if isinstance(reason, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        where = endpoint.certs_dir or CERTS_DIRS[0] / endpoint.host
        return BuildError(
            f"Registry {endpoint.host} presents a TLS certificate that cannot be verified "
            f"({getattr(reason, 'verify_message', '') or text}); Docker verifies it with the "
            f"system CAs and those in {where}, so its push would fail the same way.",
            f"Put the CA that signed the registry's certificate in {where}/ca.crt (the engine "
            f"reads the same directory, no restart needed); or, for a registry meant to be "
            f"insecure, add \"insecure-registries\": [\"{endpoint.host}\"] to "
            "/etc/docker/daemon.json and restart the engine.", code="registry-tls")
    if not endpoint.insecure and ("WRONG_VERSION_NUMBER" in text or "record layer" in text
                                  or isinstance(reason, ssl.SSLError)):
        return BuildError(
            f"Registry {endpoint.host} does not speak TLS ({text}), and Docker treats it as "
            "secure (it is neither loopback nor in the engine's insecure-registries), so "
            "the engine would refuse to push to it too.",
            f"Add \"insecure-registries\": [\"{endpoint.host}\"] to /etc/docker/daemon.json "
            "and restart the engine (`docker info` then lists it under Insecure Registries); "
            "or serve the registry over TLS; or push to localhost:<port>, which Docker treats "
            "as insecure.", code="registry-insecure")
    return registry_unreachable(endpoint.host, text)


def _request(host: str, method: str, path: str, *, scope: str, timeout: float,
             headers: dict[str, str] | None = None) -> _Response:
    """One request; a 401 is answered once (Basic or a bearer token), as Docker does."""
    endpoint = _endpoint(host, timeout)
    wanted = dict(headers or {})
    authorization = endpoint.authorization.get(scope) or endpoint.authorization.get("")
    for attempt in range(2):
        sent = {**wanted, **({"Authorization": authorization} if authorization else {})}
        request = urllib.request.Request(f"{endpoint.base}{path}", method=method, headers=sent)
        response = _open(endpoint, request, timeout)
        if response.status != 401:
            return response
        if attempt == 1:
            break
        authorization = _authorize(endpoint, parse_challenge(response.headers.get(
            "www-authenticate")), scope, timeout)
    # Our credentials were refused (a first 401 without any raised AuthRequired already).
    raise registry_auth_refused(host, "the credentials of the Docker config were refused")


def _authorize(endpoint: _Endpoint, challenge: Challenge | None, scope: str,
               timeout: float) -> str:
    """The Authorization header answering a 401's challenge; AuthRequired when we have no
    credentials the challenge can use (the daemon then pushes with its own)."""
    if challenge is None:
        raise AuthRequired()
    creds = _credentials(endpoint.host)
    if challenge.scheme == "basic":
        if creds is None or not creds.username:
            raise AuthRequired()
        pair = f"{creds.username}:{creds.password}".encode()
        value = "Basic " + base64.b64encode(pair).decode()
        endpoint.authorization[""] = value
        return value
    if challenge.scheme == "bearer":
        value = "Bearer " + _token(endpoint, challenge, scope, creds, timeout)
        endpoint.authorization[scope] = value
        return value
    raise AuthRequired()


def _token(endpoint: _Endpoint, challenge: Challenge, scope: str,
           creds: RegistryCredentials | None, timeout: float) -> str:
    """The registry v2 token flow: ask the realm for a token of this scope, with the
    login (GET, Basic) or the identity token (POST, OAuth2 refresh) of the Docker config,
    anonymously when there is none."""
    realm = challenge.realm
    if not realm.startswith(("https://", "http://")):
        raise AuthRequired()
    wanted_scope = challenge.params.get("scope") or scope
    params = {"service": challenge.params.get("service", ""), "scope": wanted_scope}
    context = endpoint.context if urllib.parse.urlsplit(realm).netloc == endpoint.host \
        else ssl.create_default_context()
    if creds is not None and creds.identity_token:
        form = urllib.parse.urlencode({**params, "grant_type": "refresh_token",
                                       "refresh_token": creds.identity_token,
                                       "client_id": "paless-deploy"}).encode()
        request = urllib.request.Request(realm, data=form, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded"})
    else:
        headers = {}
        if creds is not None and creds.username:
            pair = f"{creds.username}:{creds.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v})
        request = urllib.request.Request(f"{realm}{'&' if '?' in realm else '?'}{query}",
                                         headers=headers)
    token_endpoint = _Endpoint(endpoint.host, "", context, endpoint.insecure,
                               endpoint.certs_dir)
    response = _open(token_endpoint, request, timeout)
    if response.status in (401, 403):
        if creds is None:
            raise AuthRequired()
        raise registry_auth_refused(endpoint.host, f"its token service {realm} answered HTTP "
                                    f"{response.status} to the Docker config's credentials")
    try:
        document = json.loads(response.body or b"{}")
    except ValueError:
        document = {}
    token = document.get("token") or document.get("access_token") if isinstance(
        document, dict) else None
    if response.status >= 400 or not token:
        raise BuildError(
            f"The token service of registry {endpoint.host} ({realm}) answered HTTP "
            f"{response.status} without a token.",
            "Check the registry's token service and its logs, then run again.",
            code="registry-auth")
    return str(token)


def registry_manifest_digest(registry: str, repository: str, tag: str,
                             timeout: float = 10.0) -> str | None:
    """Digest of `repository:tag` in the registry, None when the tag is absent.

    Raises BuildError when the registry cannot be reached (or refuses our credentials),
    AuthRequired when it wants credentials the Docker config does not have.
    """
    host, prefix = split_registry(registry)
    name = f"{prefix}/{repository}" if prefix else repository
    response = _request(host, "HEAD", f"/v2/{name}/manifests/{tag}", scope=pull_scope(name),
                        timeout=timeout, headers={"Accept": ", ".join(MANIFEST_TYPES)})
    if response.status < 300:
        return response.headers.get("docker-content-digest") or "unknown"
    if response.status == 404:
        return None
    if response.status == 403:
        raise AuthRequired()
    if response.status >= 500:
        raise registry_server_error(host, response.status, f"when asked for {name}:{tag}")
    raise BuildError(
        f"Registry {host} answered HTTP {response.status} when asked for {name}:{tag}.",
        f"Check the registry's logs and that {registry_base_url(host)}/v2/ answers.")


def registry_base_url(host: str) -> str:
    """`scheme://host` as this tool reaches the registry (known once it was asked)."""
    known = _endpoints.get(host)
    return known.base if known is not None else f"{registry_scheme(host)}://{host}"


def check_registry(registry: str, timeout: float = 10.0) -> None:
    """Fail fast, once, when the registry's API does not answer (401 counts as an answer)."""
    host, _ = split_registry(registry)
    try:
        response = _request(host, "GET", "/v2/", scope="", timeout=timeout)
    except AuthRequired:
        return
    if response.status < 300 or response.status in (401, 403):
        return
    if response.status >= 500:
        raise registry_server_error(host, response.status,
                                    f"at {registry_base_url(host)}/v2/")
    raise BuildError(
        f"Registry {host} answered HTTP {response.status} at {registry_base_url(host)}/v2/; it "
        "does not look like a Docker registry.",
        "Check REGISTRY / --registry (host:port of a registry speaking the v2 API).",
        code="registry-unreachable")


def registry_unreachable(registry: str, reason: str) -> BuildError:
    """The one paragraph for a registry we cannot reach."""
    host, _ = split_registry(registry)
    return BuildError(
        f"Registry {host} is not reachable ({reason}), so images cannot be pushed "
        f"to {registry}.",
        f"Start it (`scripts/sandbox up` starts the sandbox registry on 127.0.0.1:5000), "
        f"or set REGISTRY / --registry to a reachable one; check with "
        f"`curl {registry_base_url(host)}/v2/`.",
        code="registry-unreachable",
    )


def registry_server_error(host: str, status: int, where: str) -> BuildError:
    """The one paragraph for a registry that answers, with a server error: it runs (it is
    reachable, and may well be a Docker registry), and fails."""
    return BuildError(
        f"Registry {host} answered HTTP {status} (a server error) {where}: it is reachable "
        "but fails to answer (its storage, or a proxy in front of it).",
        f"Look at the registry's logs (the sandbox's: `scripts/sandbox status` lists them); "
        f"`curl -i {registry_base_url(host)}/v2/` shows its answer; run again once it answers "
        "200 or 401.", code="registry-server-error")


def registry_auth_refused(registry: str, detail: str) -> BuildError:
    """The one paragraph for a registry that refuses our credentials."""
    host, _ = split_registry(registry)
    return BuildError(
        f"Registry {host} refused authentication ({detail.strip()}).",
        f"Log in with `docker login {host}` (in CI, with a token that may push), "
        "then run again.",
        code="registry-auth",
    )
