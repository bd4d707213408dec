"""The one door to Kubernetes: connect, plain JSON over REST, watches, errors, retries.

Every other module talks to the cluster through `Kube` and sees API objects as the API
server's own JSON dicts and failures as `ApiError` / `TransportError`. Requests go over
urllib3 with TLS and credentials from the kubeconfig (`adapters.kubeconfig` reads it as
kubectl does). The `kubernetes` package is imported only for kubeconfigs whose user has a
legacy `auth-provider`, in a process of its own bounded by --timeout (adapters/
authprovider.py): importing it costs about 0.3 s (its loader pulls in requests, oauthlib
and pydantic, its package every typed API), a third of a no-op redeploy.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.diagnosis.refusals import Answer, Refusal, classify
from paless_deploy.core.errors import ClusterError, ConfigError
from paless_deploy.core.manifests.kinds import Kind, kind_of
from paless_deploy.core.manifests.objects import ref_of

if TYPE_CHECKING:
    from paless_deploy.adapters.kubeconfig import ClusterAccess, Deadline
    from paless_deploy.core.configuration.context import RunContext

T = TypeVar("T")

K3S_KUBECONFIG = Path("/etc/rancher/k3s/k3s.yaml")
REQUEST_TIMEOUT = (5, 30)  # connect, read (seconds)
WATCH_SLICE_S = 60  # one watch request lasts at most this long, then reconnects


class ApiError(Exception):
    """The API server answered with an error status (its Status object's words kept)."""

    def __init__(self, status: int, reason: str, message: str, body: Mapping[str, Any]) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = dict(body)

    @property
    def causes(self) -> list[JsonDict]:
        """The Status details' causes (field, reason, message), as the server sent them."""
        return list(((self.body.get("details") or {}).get("causes")) or [])

    def answer(self, *, sent: Mapping[str, Any] | None = None,
               live: Mapping[str, Any] | None = None, namespace: str | None = None,
               doing: str = "", autoscaler: str | None = None) -> Answer:
        """What the server said, with what we know around it, for `core.diagnosis.refusals`
        (the object named from `sent`, else from the Status details)."""
        details = self.body.get("details") or {}
        resource = ref_of(sent) if sent is not None else (
            f"{details.get('kind')}/{details.get('name')}" if details.get("name") else "")
        causes = tuple({k: str(v) for k, v in c.items() if isinstance(k, str)}
                       for c in self.causes if isinstance(c, Mapping))
        return Answer(self.status, self.reason, self.message, causes, resource,
                      namespace or "", sent, live, doing, autoscaler)

    def refusal(self, **context: Any) -> Refusal | None:
        """This answer classified by the refusal table (None: not a refusal, e.g. a 5xx)."""
        return classify(self.answer(**context))


class TransportError(Exception):
    """No answer from the API server: connection refused or reset, timeout, TLS failure."""

    def __init__(self, message: str, tls: bool = False) -> None:
        super().__init__(message)
        self.tls = tls


# the body the kubelet sends (with 200) when a container's log file is gone
LOGS_GONE = "unable to retrieve container logs for "

# ---------------------------------------------------------------------------
# kubeconfig


@dataclass(frozen=True)
class KubeconfigSource:
    """Which kubeconfig file(s) to load, merged in order as kubectl does."""

    paths: tuple[Path, ...]
    origin: str  # "--kubeconfig", "KUBECONFIG", "~/.kube/config", "k3s"

    def describe(self) -> str:
        """For messages: the file, or the list of merged files."""
        return os.pathsep.join(str(p) for p in self.paths)


def resolve_kubeconfig(explicit: str | None, environ: Mapping[str, str] = os.environ
                       ) -> KubeconfigSource:
    """--kubeconfig, else every existing file of KUBECONFIG (merged), else ~/.kube/config,
    else k3s' own file. ClusterError (exit 4) when none exists."""
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_dir():
            raise ClusterError(f"The kubeconfig {path} given with --kubeconfig is a directory.",
                               "Pass the path of a kubeconfig file.", code="bad-kubeconfig")
        if not path.exists():
            raise ClusterError(f"The kubeconfig {path} given with --kubeconfig does not exist.",
                               "Pass the path of an existing kubeconfig file.",
                               code="no-kubeconfig")
        return KubeconfigSource((path,), "--kubeconfig")
    listed = [Path(p).expanduser() for p in (environ.get("KUBECONFIG") or "").split(os.pathsep)
              if p.strip()]
    existing = tuple(p for p in listed if p.is_file())
    if existing:
        return KubeconfigSource(existing, "KUBECONFIG")
    default = Path.home() / ".kube" / "config"
    for candidate, origin in ((default, "~/.kube/config"), (K3S_KUBECONFIG, "k3s")):
        if candidate.is_file():
            return KubeconfigSource((candidate,), origin)
    looked = f"KUBECONFIG ({os.pathsep.join(map(str, listed))}), " if listed else "KUBECONFIG, "
    raise ClusterError(
        f"No kubeconfig found (looked at --kubeconfig, {looked}~/.kube/config and "
        f"{K3S_KUBECONFIG}).",
        "Point --kubeconfig or KUBECONFIG at your cluster's kubeconfig "
        "(for the local sandbox: eval \"$(scripts/sandbox env)\").",
        code="no-kubeconfig")


# ---------------------------------------------------------------------------
# the client


@dataclass
class Kube:
    """A connection to one cluster, speaking plain JSON over REST."""

    api: Any  # kubernetes.client.ApiClient: auth, TLS and connection pooling
    server: str
    kubeconfig: str  # the file(s), for messages
    context: str | None
    _discovered: dict[tuple[str, str], Kind] = field(default_factory=dict, repr=False)
    _discovery_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- one request --------------------------------------------------------

    def request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
                body: Any = None, content_type: str = "application/json",
                timeout: Any = REQUEST_TIMEOUT) -> JsonDict:
        """One API call; the response body as a dict. ApiError / TransportError on failure."""
        resp = self._send(method, path, query=query, body=body, content_type=content_type,
                          timeout=timeout)
        data = resp.data
        if resp.status >= 400:
            raise _api_error(resp.status, resp.reason, data)
        return json.loads(data) if data else {}

    def get(self, path: str, **query: Any) -> JsonDict | None:
        """GET one object; None when it does not exist."""
        try:
            return self.request("GET", path, query=query or None)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: Kind, namespace: str | None = None, **query: Any
             ) -> tuple[list[JsonDict], str]:
        """Every object of a kind (in a namespace), with kind and apiVersion filled in, and
        the list's resourceVersion (to watch from)."""
        data = self.request("GET", kind.path(namespace), query=query or None, timeout=(5, 60))
        items = list(data.get("items") or [])
        for item in items:
            item.setdefault("kind", kind.kind)
            item.setdefault("apiVersion", kind.api_version)
        return items, str((data.get("metadata") or {}).get("resourceVersion") or "")

    def read(self, kind: Kind, name: str, namespace: str | None = None) -> JsonDict | None:
        """One object of a kind; None when it does not exist."""
        obj = self.get(kind.path(namespace, name))
        if obj is not None:
            obj.setdefault("kind", kind.kind)
            obj.setdefault("apiVersion", kind.api_version)
        return obj

    def create(self, kind: Kind, body: Mapping[str, Any], namespace: str | None = None) -> JsonDict:
        """POST a new object (ApiError 409 when it exists)."""
        return self.request("POST", kind.path(namespace), body=dict(body))

    def replace(self, kind: Kind, body: Mapping[str, Any], namespace: str | None = None
                ) -> JsonDict:
        """PUT an object (its metadata.resourceVersion, when set, makes the write conditional)."""
        return self.request("PUT", kind.path(namespace, body["metadata"]["name"]),
                            body=dict(body))

    def apply(self, kind: Kind, body: Mapping[str, Any], namespace: str | None, *,
              manager: str, force: bool = False, dry_run: bool = False) -> JsonDict:
        """Server-side apply (JSON is YAML, so the apply-patch content type takes it);
        with `dry_run` the server runs admission and validation and writes nothing."""
        query = {"fieldManager": manager, "force": "true" if force else None,
                 "dryRun": "All" if dry_run else None, "fieldValidation": "Strict"}
        return self.request("PATCH", kind.path(namespace, body["metadata"]["name"]),
                            query=query, body=json.dumps(body),
                            content_type="application/apply-patch+yaml")

    def patch(self, kind: Kind, name: str, namespace: str | None, body: Any, *,
              manager: str, json_patch: bool = False) -> JsonDict:
        """A merge patch (RFC 7386; a JSON patch, RFC 6902, with `json_patch`) written by
        `manager`: for the few changes that are not the manifests' (scaling a sleeping
        preview), so that no field of our applies changes hands."""
        content = "application/json-patch+json" if json_patch else "application/merge-patch+json"
        return self.request("PATCH", kind.path(namespace, name),
                            query={"fieldManager": manager}, body=json.dumps(body),
                            content_type=content)

    def delete(self, kind: Kind, name: str, namespace: str | None = None, *,
               propagation: str = "Background", dry_run: bool = False,
               resource_version: str | None = None) -> bool:
        """Delete an object; False when it was already gone.

        DeleteOptions travel in the body (the API server then ignores query parameters).
        """
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions",
                                "propagationPolicy": propagation}
        if dry_run:
            body["dryRun"] = ["All"]
        if resource_version:
            body["preconditions"] = {"resourceVersion": resource_version}
        try:
            self.request("DELETE", kind.path(namespace, name), body=body)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # -- watches --------------------------------------------------------------

    def stream(self, path: str, query: Mapping[str, Any], timeout: Any) -> Iterator[JsonDict]:
        """A watch: one decoded event per line until the server closes the stream."""
        resp = self._send("GET", path, query={**query, "watch": "true"}, timeout=timeout,
                          stream=True)
        try:
            if resp.status >= 400:
                raise _api_error(resp.status, resp.reason, resp.read())
            with transport_errors():
                for line in _lines(resp):
                    yield json.loads(line)
        finally:
            # A stream left before its end must not go back to the pool half read.
            resp.close()
            resp.release_conn()

    def watch(self, kind: Kind, namespace: str | None, *, resource_version: str,
              field_selector: str | None = None, timeout_s: int = WATCH_SLICE_S
              ) -> Iterator[JsonDict]:
        """One watch request on a kind from `resource_version` (bookmarks included)."""
        query = {"resourceVersion": resource_version, "timeoutSeconds": max(1, timeout_s),
                 "fieldSelector": field_selector, "allowWatchBookmarks": "true"}
        return self.stream(kind.path(namespace), query, timeout=(5, timeout_s + 15))

    def watch_until(self, kind: Kind, name: str, namespace: str | None,
                    done: Callable[[JsonDict | None], bool], timeout_s: float) -> JsonDict | None:
        """Watch one object until `done(obj)` is true (obj None: it does not exist) or time
        runs out; return its last state. The one "watch until" loop of the tool: reads the
        object, watches from its resourceVersion, reconnects when the stream ends or
        drops, and starts over from a fresh read when the version expired (410)."""
        deadline = time.monotonic() + timeout_s
        current = with_retries(lambda: self.read(kind, name, namespace))
        if done(current):
            return current
        selector = f"metadata.name={name}"
        while (left := deadline - time.monotonic()) > 0:
            if current is None:
                # Absent: watch the collection from its own version for the object to appear
                # (unless it appeared between the read and this list: then it is here).
                items, version = with_retries(lambda: self.list(kind, namespace,
                                                                fieldSelector=selector))
                if items:
                    current = items[0]
                    if done(current):
                        return current
                    version = str(current["metadata"].get("resourceVersion") or version)
            else:
                version = str(current["metadata"].get("resourceVersion") or "")
            try:
                for event in self.watch(kind, namespace, resource_version=version,
                                        field_selector=selector,
                                        timeout_s=int(min(left, WATCH_SLICE_S)) + 1):
                    etype, obj = event.get("type"), event.get("object") or {}
                    if etype == "ERROR":
                        raise _api_error(int(obj.get("code") or 500), str(obj.get("reason")),
                                         json.dumps(obj).encode())
                    if etype == "BOOKMARK":
                        continue
                    obj.setdefault("kind", kind.kind)
                    current = None if etype == "DELETED" else obj
                    if done(current) or time.monotonic() >= deadline:
                        return current
            except ApiError as exc:
                if exc.status != 410 and not is_transient(exc):
                    raise
                current = with_retries(lambda: self.read(kind, name, namespace))
                if done(current):
                    return current
            except TransportError:
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        return current

    # -- other verbs ----------------------------------------------------------

    def logs(self, namespace: str, pod: str, container: str, *, previous: bool = False,
             tail_lines: int | None = None, timeout: Any = (3, 5)) -> str:
        """A container's log (of its previous instance with `previous`); "" when the kubelet
        has no log file for it (it answers 200 with its own complaint as the body, e.g. for
        a dead container it is replacing)."""
        query = {"container": container, "previous": "true" if previous else None,
                 "tailLines": tail_lines}
        resp = self._send("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
                          query=query, timeout=timeout)
        data = resp.data
        if resp.status >= 400:
            raise _api_error(resp.status, resp.reason, data)
        text = data.decode("utf-8", errors="replace")
        return "" if text.startswith(LOGS_GONE) else text

    def follow_logs(self, namespace: str, pod: str, container: str, *,
                    since_time: str | None = None, idle_timeout_s: float = 300) -> Iterator[str]:
        """A container's log as it is written (`kubectl logs -f`), one line at a time, each
        starting with its RFC 3339 timestamp. Ends when the container stops or the stream
        drops (TransportError after `idle_timeout_s` without a line)."""
        query = {"container": container, "follow": "true", "timestamps": "true",
                 "sinceTime": since_time}
        resp = self._send("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
                          query=query, timeout=(5, idle_timeout_s), stream=True)
        try:
            if resp.status >= 400:
                raise _api_error(resp.status, resp.reason, resp.read())
            with transport_errors():
                for line in _lines(resp):
                    yield line.decode("utf-8", errors="replace")
        finally:
            resp.close()
            resp.release_conn()

    def may(self, verb: str, resource: str, group: str = "",
            namespace: str | None = None) -> bool:
        """A SelfSubjectAccessReview: may our user do `verb` on `resource`?"""
        attributes = {"verb": verb, "resource": resource, "group": group}
        if namespace:
            attributes["namespace"] = namespace
        review = self.request(
            "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body={"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": attributes}})
        return bool((review.get("status") or {}).get("allowed"))

    def version(self) -> JsonDict:
        """The API server's /version document (gitVersion, major, minor)."""
        return self.request("GET", "/version")

    # -- kinds ------------------------------------------------------------------

    def kind(self, api_version: str, kind: str) -> Kind:
        """The Kind of (apiVersion, kind): from the table, else from API discovery (once).

        ConfigError (exit 2) when the cluster does not serve it (a CRD not installed).
        """
        known = kind_of(api_version, kind)
        if known is not None:
            return known
        with self._discovery_lock:
            found = self._discovered.get((api_version, kind))
            if found is not None:
                return found
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            listing = with_retries(lambda: self.get(path)) or {}
            for resource in listing.get("resources") or []:
                if resource.get("kind") == kind and "/" not in str(resource.get("name")):
                    found = Kind(api_version, kind, str(resource["name"]),
                                 bool(resource.get("namespaced")))
                    self._discovered[(api_version, kind)] = found
                    return found
        raise ConfigError(
            f"The cluster at {self.server} does not serve {kind} in {api_version}.",
            "Install the CRD or controller that provides it (`kubectl api-resources` lists "
            "what the cluster serves), or remove the object from the manifests.",
            code="unknown-kind")

    # -- transport --------------------------------------------------------------

    def _send(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
              body: Any = None, content_type: str = "application/json",
              timeout: Any = REQUEST_TIMEOUT, stream: bool = False) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = body if isinstance(body, bytes) else (
                body.encode() if isinstance(body, str) else json.dumps(body).encode())
        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        if params:
            from urllib.parse import urlencode

            path = f"{path}?{urlencode(params)}"
        with transport_errors():
            return self.api.request(method, path, headers=headers, body=data,
                                    timeout=timeout, stream=stream)


def _api_error(status: int, reason: str | None, data: bytes | str | None) -> ApiError:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else (data or "")
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or text.strip() or reason or "")
    if int(status) == 500 and _TYPED_PATCH.match(message):
        # server-side apply answers 500 for a body its schema refuses (`replicas: "three"`,
        # an unknown field, Secret data that is not base64): the object is invalid, and
        # asking again will not help. Its
        # words, on one line: `.spec.replicas: expected numeric (int or float), got string`.
        lines = _TYPED_PATCH.sub("", message.strip()).splitlines()
        words = "; ".join(" ".join(line.split()) for line in lines if line.strip())
        return ApiError(422, "Invalid", words, body)
    return ApiError(int(status), str(body.get("reason") or reason or ""), message, body)


_TYPED_PATCH = re.compile(r"^failed to (create typed patch|convert new) object \([^)]*\)"
                          r"( to proper version)?:\s*(errors:)?")


@contextlib.contextmanager
def transport_errors() -> Iterator[None]:
    """Turn urllib3, socket and TLS failures of a request into TransportError."""
    import ssl

    from urllib3.exceptions import HTTPError as Urllib3Error
    from urllib3.exceptions import MaxRetryError, SSLError

    try:
        yield
    except MaxRetryError as exc:  # only with retries; ours are explicit (with_retries)
        reason = exc.reason or exc
        tls = isinstance(reason, (SSLError, ssl.SSLError))
        raise TransportError(_short(str(reason)), tls=tls) from None
    except (SSLError, ssl.SSLError) as exc:
        raise TransportError(_short(str(exc)), tls=True) from None
    except (Urllib3Error, ConnectionError, TimeoutError, OSError) as exc:
        tls = isinstance(getattr(exc, "reason", None), (SSLError, ssl.SSLError))
        raise TransportError(_short(str(exc)), tls=tls) from None


def _lines(resp: Any) -> Iterator[bytes]:
    """The non-empty lines of a streamed response, each as soon as its chunk arrives."""
    buffer = b""
    for chunk in resp.stream(amt=None, decode_content=True):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        yield from (line for line in lines if line.strip())
    if buffer.strip():
        yield buffer


def _short(detail: str) -> str:
    text = detail.split("Caused by")[-1].strip(" ()'\"") if detail else "no answer"
    # urllib3 nests the cause in reprs: keep its words ("[Errno 111] Connection refused")
    words = re.findall(r"\[(?:Errno -?\d+|SSL: [A-Z_]+)\] [^'\"()]+", text)
    return (words[-1].strip() if words else text)[:240]


# ---------------------------------------------------------------------------
# connecting


def connect(kubeconfig: str | None = None, context: str | None = None,
            deadline: Deadline | None = None) -> Kube:
    """Load the kubeconfig (merged as kubectl does) and check that the API server answers.
    An exec credential plugin runs within `deadline` (the run's --timeout)."""
    source = resolve_kubeconfig(kubeconfig)
    api, server = _load(source, context, deadline)
    kube = Kube(api=api, server=server, kubeconfig=source.describe(), context=context)
    with cluster_errors(kube, "asking the API server for its version"):
        kube.version()
    return kube


def connect_run(run_ctx: RunContext) -> Kube:
    """`connect` for a command: its --kubeconfig, --context, and --timeout as the deadline
    of everything the connection runs (exec credential plugins)."""
    from paless_deploy.adapters.kubeconfig import Deadline

    deadline = Deadline(run_ctx.started_monotonic + run_ctx.timeout_s, run_ctx.timeout_s)
    return connect(run_ctx.kubeconfig, run_ctx.context, deadline)


def _load(source: KubeconfigSource, context: str | None, deadline: Deadline | None = None
          ) -> tuple[Transport, str]:
    """The transport to the chosen context's API server, and the server's URL."""
    from paless_deploy.adapters.kubeconfig import Deadline, auth_provider_header, load_access

    access = load_access(source.paths, context)
    if access.auth_provider is not None:
        header = auth_provider_header(source.describe(), access, deadline or Deadline())
        return Transport(access, header), access.server
    return Transport(access, deadline=deadline), access.server


class Transport:
    """HTTPS (or HTTP) to one API server: the kubeconfig's TLS settings and credentials, a
    pool of kept-alive connections, the proxy kubectl would use. Thread-safe."""

    POOL_SIZE = 32  # one streaming watch per kind plus parallel applies

    def __init__(self, access: ClusterAccess, auth_header: str | None = None,
                 deadline: Deadline | None = None) -> None:
        from paless_deploy.adapters.kubeconfig import CredentialSource, Deadline

        self.access = access
        self.credentials = CredentialSource(access, deadline=deadline or Deadline())
        self._auth_header = auth_header  # fixed (auth-provider); else from the credentials
        self._lock = threading.Lock()
        self._pool: Any = None
        self._pool_cert: tuple[bytes | None, bytes | None] = (None, None)
        self._user_agent = f"paless-deploy/{_version()}"

    def request(self, method: str, path: str, *, headers: Mapping[str, str],
                body: bytes | None, timeout: Any, stream: bool = False) -> Any:
        """One HTTP request (no retries: ours are explicit); the urllib3 response, its body
        read unless `stream`. A 401 from an exec credential runs the plugin once more."""
        for attempt in (1, 2):
            pool, auth = self._prepared()
            all_headers = {**headers, "User-Agent": self._user_agent}
            if auth:
                all_headers["Authorization"] = auth
            resp = pool.request(method, self.access.server + path, body=body,
                                headers=all_headers, timeout=_timeout(timeout),
                                retries=False, redirect=False, preload_content=not stream)
            if resp.status == 401 and attempt == 1 and self._auth_header is None \
                    and self.credentials.refused():
                resp.drain_conn()
                resp.release_conn()
                continue
            return resp
        raise AssertionError("unreachable")

    def _prepared(self) -> tuple[Any, str | None]:
        with self._lock:
            creds = self.credentials.current()
            if self._pool is None or self._pool_cert != (creds.cert_pem, creds.key_pem):
                self._pool = _pool_manager(self.access, creds.cert_pem, creds.key_pem)
                self._pool_cert = (creds.cert_pem, creds.key_pem)
            pool = self._pool
        if self._auth_header is not None:
            return pool, self._auth_header
        if creds.token:
            return pool, f"Bearer {creds.token}"
        if creds.basic:
            import base64

            pair = f"{creds.basic[0]}:{creds.basic[1]}".encode()
            return pool, "Basic " + base64.b64encode(pair).decode()
        return pool, None


def _version() -> str:
    from paless_deploy import __version__

    return __version__


def _timeout(value: Any) -> Any:
    import urllib3

    if isinstance(value, tuple):
        return urllib3.Timeout(connect=value[0], read=value[1])
    return urllib3.Timeout(total=value) if value is not None else urllib3.Timeout(connect=5)


def _pool_manager(access: ClusterAccess, cert_pem: bytes | None, key_pem: bytes | None) -> Any:
    """A urllib3 pool manager for the server: TLS from the kubeconfig, the proxy to use."""
    import urllib3

    kwargs: dict[str, Any] = {"maxsize": Transport.POOL_SIZE, "block": False,
                              "retries": False}
    if access.server.startswith("https://"):
        kwargs["ssl_context"] = tls_context(access, cert_pem, key_pem)
        if access.insecure:
            import warnings

            from urllib3.exceptions import InsecureRequestWarning

            # The user chose insecure-skip-tls-verify; kubectl does not warn on each request.
            warnings.filterwarnings("ignore", category=InsecureRequestWarning)
            kwargs.update(cert_reqs="CERT_NONE", assert_hostname=False)
        if access.tls_server_name:
            kwargs["server_hostname"] = access.tls_server_name
    proxy = proxy_for(access.server, access.proxy_url, os.environ)
    if proxy is None:
        return urllib3.PoolManager(**kwargs)
    if proxy.split("://", 1)[0].lower().startswith("socks"):
        try:
            from urllib3.contrib.socks import SOCKSProxyManager
        except ImportError:
            raise ClusterError(
                f"The proxy {proxy} for {access.server} is a SOCKS proxy, and PySocks is not "
                "installed.", "pip install pysocks (or use an HTTP proxy).",
                code="unreachable") from None
        return SOCKSProxyManager(proxy, **kwargs)
    return urllib3.ProxyManager(proxy, **kwargs)


def tls_context(access: ClusterAccess, cert_pem: bytes | None, key_pem: bytes | None) -> Any:
    """Verify the server against the kubeconfig's CA only (the system's when it names none),
    or not at all with insecure-skip-tls-verify; present the client certificate, if any."""
    import ssl
    import tempfile

    if access.insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif access.ca_pem:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, checks the hostname
        try:
            ctx.load_verify_locations(cadata=access.ca_pem.decode("ascii", errors="replace"))
        except (ssl.SSLError, ValueError) as exc:
            raise ClusterError(f"The certificate-authority of {access.where} cannot be read: "
                               f"{exc}.", "Check certificate-authority(-data) of the cluster.",
                               code="bad-kubeconfig") from None
    else:
        ctx = ssl.create_default_context()
    # Go (kubectl) trusts a configured intermediate CA and does not apply Python 3.13's
    # strict RFC 5280 profile; verification stays on either way.
    ctx.verify_flags |= getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0)
    ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    if cert_pem and key_pem:
        # load_cert_chain reads files only: write them where only we can read, for a moment.
        with tempfile.TemporaryDirectory(prefix="paless-tls-") as tmp:
            cert_file, key_file = Path(tmp) / "client.crt", Path(tmp) / "client.key"
            for path, pem in ((cert_file, cert_pem), (key_file, key_pem)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(pem)
            try:
                ctx.load_cert_chain(str(cert_file), str(key_file))
            except (ssl.SSLError, ValueError) as exc:
                raise ClusterError(
                    f"The client certificate or key of {access.where} cannot be used: {exc}.",
                    "Check client-certificate(-data) and client-key(-data) of the user.",
                    code="bad-kubeconfig") from None
    return ctx


def proxy_for(server: str, proxy_url: str | None, environ: Mapping[str, str]) -> str | None:
    """The proxy kubectl would use for the server: the cluster's proxy-url, else HTTPS_PROXY
    (HTTP_PROXY for http://) unless NO_PROXY matches; loopback is never proxied."""
    if proxy_url:
        return proxy_url
    from ipaddress import ip_address, ip_network
    from urllib.parse import urlsplit

    parts = urlsplit(server)
    scheme = parts.scheme or "https"
    env = {k.lower(): v for k, v in environ.items() if v}
    proxy = env.get(f"{scheme}_proxy")
    if not proxy:
        return None
    host = (parts.hostname or "").lower()
    host_port = parts.netloc.lower().rsplit("@", 1)[-1]
    try:
        ip = ip_address(host)
    except ValueError:
        ip = None
    if host == "localhost" or (ip is not None and ip.is_loopback):
        return None
    for entry in (e.strip().lower() for e in env.get("no_proxy", "").split(",")):
        if entry == "*":
            return None
        if not entry:
            continue
        if ip is not None:
            with contextlib.suppress(ValueError):
                if ip in ip_network(entry, strict=False):
                    return None
        entry = entry.lstrip(".")
        if any(name == entry or name.endswith("." + entry) for name in (host, host_port)):
            return None
    return proxy


# ---------------------------------------------------------------------------
# errors and retries


def refused_patch(exc: BaseException) -> bool:
    """A server-side apply the API server cannot type (a string where a number goes, a
    field its schema lacks) comes back as 500 "failed to create typed patch object": the
    manifest's mistake, not the server's, and never worth another try."""
    return isinstance(exc, ApiError) and exc.status == 500 and (
        "failed to create typed patch object" in exc.message)


def is_transient(exc: BaseException) -> bool:
    """Connection failures (not TLS), 5xx and 429 are worth another try; nothing else is."""
    if refused_patch(exc):
        return False
    if isinstance(exc, ApiError):
        return exc.status in (0, 429, 500, 502, 503, 504)
    if isinstance(exc, TransportError):
        return not exc.tls
    return isinstance(exc, (ConnectionError, TimeoutError))


def with_retries(fn: Callable[[], T], *, seconds: float = 30.0) -> T:
    """Call fn, retrying transient API errors with exponential backoff and jitter."""
    import tenacity

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        # exponential backoff with jitter (spelled so that tenacity 8 and 9 both accept it)
        wait=tenacity.wait_exponential(multiplier=0.2, max=5) + tenacity.wait_random(0, 0.2),
        stop=tenacity.stop_after_delay(seconds),
        reraise=True,
    )
    return retrying(fn)


@contextlib.contextmanager
def cluster_errors(kube: Kube, doing: str, namespace: str | None = None) -> Iterator[None]:
    """Turn unreachable-cluster, TLS and not-authorised failures into ClusterError (exit 4)."""
    try:
        yield
    except ApiError as exc:
        if exc.status == 401:
            raise ClusterError(
                f"The API server {kube.server} rejected our credentials while {doing}.",
                f"Refresh the credentials in {kube.kubeconfig} (expired token or certificate?).",
                code="unauthorised") from None
        if exc.status == 403:
            # RBAC is exit 4; a quota, a policy, a claim that cannot grow are refusals of
            # the manifests (the table of core.diagnosis.refusals says which)
            refusal = exc.refusal(namespace=namespace, doing=doing)
            assert refusal is not None  # every 403 has a row
            raise refusal.error() from None
        if exc.status == 0:
            raise _unreachable(kube, doing, exc.message) from None
        if exc.status >= 500 or exc.status == 429:  # still so after the retries
            raise ClusterError(
                f"The API server {kube.server} is unavailable ({doing}): {exc.status} "
                f"{exc.reason}: {exc.message}",
                "It is restarting or overloaded: run the command again once it answers "
                "(`kubectl get --raw /readyz`); what was applied stays applied.",
                code="unavailable", reason=exc.reason) from None
        raise
    except TransportError as exc:
        if exc.tls:
            raise ClusterError(
                f"The TLS certificate of the API server {kube.server} could not be verified "
                f"({doing}): {exc}.",
                f"Check the certificate-authority(-data) of the cluster in {kube.kubeconfig}: "
                "it must be the CA that signed the server's certificate (`kubectl cluster-info` "
                "fails the same way).", code="tls") from None
        raise _unreachable(kube, doing, str(exc)) from None


def _unreachable(kube: Kube, doing: str, detail: str) -> ClusterError:
    return ClusterError(
        f"The cluster at {kube.server} is unreachable ({doing}): {detail or 'no answer'}.",
        f"Check that the cluster runs and that {kube.kubeconfig} points at it "
        "(`kubectl cluster-info`; for the sandbox: `scripts/sandbox up`).",
        code="unreachable")
