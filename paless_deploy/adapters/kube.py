"""The one door to Kubernetes: connect, plain JSON over REST, watches, errors, retries.

Only this module imports the `kubernetes` package (for its kubeconfig loader, auth and
TLS handling); every other module talks to the cluster through `Kube` and sees API
objects as the API server's own JSON dicts and failures as `ApiError` / `TransportError`.
The typed API modules are never imported: they cost half a second at start-up.
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
from typing import Any, TypeVar

from paless_deploy.core.errors import ClusterError, ConfigError
from paless_deploy.core.kinds import Kind, kind_of

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
    def causes(self) -> list[dict]:
        """The Status details' causes (field, reason, message), as the server sent them."""
        return list(((self.body.get("details") or {}).get("causes")) or [])


class TransportError(Exception):
    """No answer from the API server: connection refused or reset, timeout, TLS failure."""

    def __init__(self, message: str, tls: bool = False) -> None:
        super().__init__(message)
        self.tls = tls


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
                timeout: Any = REQUEST_TIMEOUT) -> dict:
        """One API call; the response body as a dict. ApiError / TransportError on failure."""
        resp = self._send(method, path, query=query, body=body, content_type=content_type,
                          timeout=timeout)
        data = resp.read()
        if resp.status >= 400:
            raise _api_error(resp.status, resp.reason, data)
        return json.loads(data) if data else {}

    def get(self, path: str, **query: Any) -> dict | None:
        """GET one object; None when it does not exist."""
        try:
            return self.request("GET", path, query=query or None)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: Kind, namespace: str | None = None, **query: Any) -> tuple[list[dict], str]:
        """Every object of a kind (in a namespace), with kind and apiVersion filled in, and
        the list's resourceVersion (to watch from)."""
        data = self.request("GET", kind.path(namespace), query=query or None, timeout=(5, 60))
        items = list(data.get("items") or [])
        for item in items:
            item.setdefault("kind", kind.kind)
            item.setdefault("apiVersion", kind.api_version)
        return items, str((data.get("metadata") or {}).get("resourceVersion") or "")

    def read(self, kind: Kind, name: str, namespace: str | None = None) -> dict | None:
        """One object of a kind; None when it does not exist."""
        obj = self.get(kind.path(namespace, name))
        if obj is not None:
            obj.setdefault("kind", kind.kind)
            obj.setdefault("apiVersion", kind.api_version)
        return obj

    def create(self, kind: Kind, body: Mapping[str, Any], namespace: str | None = None) -> dict:
        """POST a new object (ApiError 409 when it exists)."""
        return self.request("POST", kind.path(namespace), body=dict(body))

    def replace(self, kind: Kind, body: Mapping[str, Any], namespace: str | None = None) -> dict:
        """PUT an object (its metadata.resourceVersion, when set, makes the write conditional)."""
        return self.request("PUT", kind.path(namespace, body["metadata"]["name"]),
                            body=dict(body))

    def apply(self, kind: Kind, body: Mapping[str, Any], namespace: str | None, *,
              manager: str, force: bool = False, dry_run: bool = False) -> dict:
        """Server-side apply (JSON is YAML, so the apply-patch content type takes it);
        with `dry_run` the server runs admission and validation and writes nothing."""
        query = {"fieldManager": manager, "force": "true" if force else None,
                 "dryRun": "All" if dry_run else None, "fieldValidation": "Strict"}
        return self.request("PATCH", kind.path(namespace, body["metadata"]["name"]),
                            query=query, body=json.dumps(body),
                            content_type="application/apply-patch+yaml")

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

    def stream(self, path: str, query: Mapping[str, Any], timeout: Any) -> Iterator[dict]:
        """A watch: one decoded event per line until the server closes the stream."""
        resp = self._send("GET", path, query={**query, "watch": "true"}, timeout=timeout)
        if resp.status >= 400:
            raise _api_error(resp.status, resp.reason, resp.read())
        from kubernetes.watch.watch import iter_resp_lines

        try:
            with transport_errors():
                for line in iter_resp_lines(resp.response):
                    if line:
                        yield json.loads(line)
        finally:
            resp.response.release_conn()

    def watch(self, kind: Kind, namespace: str | None, *, resource_version: str,
              field_selector: str | None = None, timeout_s: int = WATCH_SLICE_S
              ) -> Iterator[dict]:
        """One watch request on a kind from `resource_version` (bookmarks included)."""
        query = {"resourceVersion": resource_version, "timeoutSeconds": max(1, timeout_s),
                 "fieldSelector": field_selector, "allowWatchBookmarks": "true"}
        return self.stream(kind.path(namespace), query, timeout=(5, timeout_s + 15))

    def watch_until(self, kind: Kind, name: str, namespace: str | None,
                    done: Callable[[dict | None], bool], timeout_s: float) -> dict | None:
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
                # Absent: watch the collection from its own version for the object to appear.
                _, version = with_retries(lambda: self.list(kind, namespace,
                                                            fieldSelector=selector))
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
        """A container's log (of its previous instance with `previous`)."""
        query = {"container": container, "previous": "true" if previous else None,
                 "tailLines": tail_lines}
        resp = self._send("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
                          query=query, timeout=timeout)
        data = resp.read()
        if resp.status >= 400:
            raise _api_error(resp.status, resp.reason, data)
        return data.decode("utf-8", errors="replace")

    def follow_logs(self, namespace: str, pod: str, container: str, *,
                    since_time: str | None = None, idle_timeout_s: float = 300) -> Iterator[str]:
        """A container's log as it is written (`kubectl logs -f`), one line at a time, each
        starting with its RFC 3339 timestamp. Ends when the container stops or the stream
        drops (TransportError after `idle_timeout_s` without a line)."""
        query = {"container": container, "follow": "true", "timestamps": "true",
                 "sinceTime": since_time}
        resp = self._send("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
                          query=query, timeout=(5, idle_timeout_s))
        if resp.status >= 400:
            raise _api_error(resp.status, resp.reason, resp.read())
        from kubernetes.watch.watch import iter_resp_lines

        try:
            with transport_errors():
                yield from iter_resp_lines(resp.response)
        finally:
            resp.response.release_conn()

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

    def version(self) -> dict:
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
              timeout: Any = REQUEST_TIMEOUT) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        method_, url, headers_, body_, _ = self.api.param_serialize(
            method=method, resource_path=path,
            query_params=[(k, v) for k, v in (query or {}).items() if v is not None],
            header_params=headers, body=body, auth_settings=["BearerToken"])
        with transport_errors():
            return self.api.call_api(method_, url, header_params=headers_, body=body_,
                                     _request_timeout=timeout)


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

    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error
    from urllib3.exceptions import SSLError

    try:
        yield
    except ApiException as exc:  # the client's own wrapping of transport failures
        reason = str(exc.reason or "")
        if not exc.status:
            raise TransportError(_short(reason), tls="SSLError" in reason) from None
        raise _api_error(int(exc.status), exc.reason, exc.body) from None
    except (SSLError, ssl.SSLError) as exc:
        raise TransportError(_short(str(exc)), tls=True) from None
    except (Urllib3Error, ConnectionError, TimeoutError, OSError) as exc:
        tls = isinstance(getattr(exc, "reason", None), (SSLError, ssl.SSLError))
        raise TransportError(_short(str(exc)), tls=tls) from None


def _short(detail: str) -> str:
    text = detail.split("Caused by")[-1].strip(" ()'\"") if detail else "no answer"
    # urllib3 nests the cause in reprs: keep its words ("[Errno 111] Connection refused")
    words = re.findall(r"\[(?:Errno -?\d+|SSL: [A-Z_]+)\] [^'\"()]+", text)
    return (words[-1].strip() if words else text)[:240]


# ---------------------------------------------------------------------------
# connecting


def connect(kubeconfig: str | None = None, context: str | None = None) -> Kube:
    """Load the kubeconfig (merged as kubectl does) and check that the API server answers."""
    source = resolve_kubeconfig(kubeconfig)
    api, server = _load(source, context)
    kube = Kube(api=api, server=server, kubeconfig=source.describe(), context=context)
    with cluster_errors(kube, "asking the API server for its version"):
        kube.version()
    return kube


def first_current_context(paths: tuple[Path, ...]) -> str | None:
    """The current-context of the first file that sets one (kubectl's merge rule)."""
    import yaml

    for path in paths:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, ValueError, yaml.YAMLError):
            continue  # the loader names the broken file
        if isinstance(data, dict) and data.get("current-context"):
            return str(data["current-context"])
    return None


def _kubeconfig_problem(paths: tuple[Path, ...]) -> str | None:
    """What makes a kubeconfig file unreadable, in words (None when each is a YAML mapping)."""
    import yaml

    for path in paths:
        try:
            data = yaml.safe_load(path.read_bytes())
        except OSError as exc:
            return f"{path}: {exc.strerror}"
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            why = getattr(exc, "problem", None) or getattr(exc, "reason", None) or "unreadable"
            return f"{path} is not YAML{at} ({why})"
        if data is not None and not isinstance(data, dict):
            held = "a list" if isinstance(data, list) else "plain text"
            return (f"{path} holds {held}, not a kubeconfig (a mapping of clusters, contexts "
                    "and users)")
    return None


def _load(source: KubeconfigSource, context: str | None) -> tuple[Any, str]:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    cfg = client.Configuration()
    where = source.describe()
    if context is None and len(source.paths) > 1:
        # The client's merge lets the last file's current-context win; kubectl lets the
        # first file that sets one win. Choose it ourselves.
        context = first_current_context(source.paths)
    try:
        # A path list is merged by the client's KubeConfigMerger, as kubectl merges KUBECONFIG.
        config.load_kube_config(config_file=where, context=context, client_configuration=cfg)
    except ConfigException as exc:
        hint = ("Pick an existing context with --context (`kubectl config get-contexts` lists "
                "them)." if context else "Check the file, or pick a context with --context.")
        raise ClusterError(f"The kubeconfig {where} cannot be used: {exc}.", hint,
                           code="bad-kubeconfig") from None
    except Exception as exc:  # noqa: BLE001 - YAML, base64, file errors: all the user's file
        detail = _kubeconfig_problem(source.paths) or (
            str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
        raise ClusterError(f"The kubeconfig {where} cannot be read: {detail}.",
                           "Check that the file is a valid kubeconfig "
                           "(`kubectl config view` reads it the same way).",
                           code="bad-kubeconfig") from None
    cfg.retries = 0  # our retries are explicit (tenacity); urllib3's would hide outages
    cfg.connection_pool_maxsize = 32  # one streaming watch per kind plus parallel applies
    return client.ApiClient(cfg), str(cfg.host)


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
            where = f" in namespace {namespace}" if namespace else ""
            raise ClusterError(
                f"Not authorised{where} while {doing}: {exc.message}",
                "Use a kubeconfig whose user may manage this namespace, or deploy into a "
                "namespace you are allowed to write (-n).", code="forbidden") from None
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
