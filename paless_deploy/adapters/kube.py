"""Thin adapter to the Kubernetes API: connect, translate errors, retry transient ones.

Everything that talks to the cluster goes through `connect()`; decisions stay elsewhere.
Only this module (and the stages that use it) import the kubernetes package.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from paless_deploy.core.errors import ClusterError

T = TypeVar("T")

K3S_KUBECONFIG = Path("/etc/rancher/k3s/k3s.yaml")
REQUEST_TIMEOUT = (5, 30)  # connect, read (seconds)


def resolve_kubeconfig(explicit: str | None) -> Path:
    """--kubeconfig, else KUBECONFIG, else ~/.kube/config, else k3s' own file."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise ClusterError(f"The kubeconfig {path} given with --kubeconfig does not exist.",
                               "Pass the path of an existing kubeconfig file.")
        return path
    env = os.environ.get("KUBECONFIG")
    if env:
        first = Path(env.split(os.pathsep)[0]).expanduser()
        if first.exists():
            return first
    default = Path.home() / ".kube" / "config"
    for candidate in (default, K3S_KUBECONFIG):
        if candidate.exists():
            return candidate
    raise ClusterError(
        "No kubeconfig found (looked at --kubeconfig, KUBECONFIG, ~/.kube/config and "
        f"{K3S_KUBECONFIG}).",
        "Point --kubeconfig or KUBECONFIG at your cluster's kubeconfig "
        "(for the local sandbox: eval \"$(scripts/sandbox env)\").",
        code="no-kubeconfig")


@dataclass
class Kube:
    """A connection to one cluster; clients are created on first use."""

    api: Any  # kubernetes.client.ApiClient
    server: str
    kubeconfig: Path
    context: str | None
    _dynamic: Any = field(default=None, repr=False)

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api)

    @property
    def batch(self) -> Any:
        from kubernetes import client

        return client.BatchV1Api(self.api)

    @property
    def dynamic(self) -> Any:
        """A DynamicClient (discovery is fetched once, on first use)."""
        if self._dynamic is None:
            from kubernetes.dynamic import DynamicClient

            with cluster_errors(self, "discovering the cluster's API resources"):
                self._dynamic = DynamicClient(self.api)
        return self._dynamic

    # -- plain JSON over REST: no typed API module is imported (CoreV1Api alone costs
    # half a second to import), and objects stay the API server's own JSON.

    def request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
                body: Any = None, content_type: str = "application/json",
                timeout: Any = REQUEST_TIMEOUT) -> dict:
        """One API call; the response body as a dict. Errors raise ApiException."""
        import json

        from kubernetes.client.exceptions import ApiException

        resp = self._send(method, path, query=query, body=body, content_type=content_type,
                          timeout=timeout)
        data = resp.read()
        if resp.status >= 400:
            raise ApiException(http_resp=resp)
        return json.loads(data) if data else {}

    def get(self, path: str, **query: Any) -> dict | None:
        """GET an object; None when it does not exist."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.request("GET", path, query=query or None)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def stream(self, path: str, query: Mapping[str, Any], timeout: Any) -> Iterator[dict]:
        """A watch: one decoded event per line until the server closes the stream."""
        import json

        from kubernetes.client.exceptions import ApiException
        from kubernetes.watch.watch import iter_resp_lines

        resp = self._send("GET", path, query={**query, "watch": "true"}, timeout=timeout)
        if resp.status >= 400:
            resp.read()
            raise ApiException(http_resp=resp)
        try:
            for line in iter_resp_lines(resp.response):
                if line:
                    yield json.loads(line)
        finally:
            resp.response.release_conn()

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
        return self.api.call_api(method_, url, header_params=headers_, body=body_,
                                 _request_timeout=timeout)

    def resource(self, api_version: str, kind: str) -> Any:
        """The dynamic resource for (apiVersion, kind), or ConfigError-like ClusterError."""
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            raise ClusterError(
                f"The cluster does not serve {kind} in {api_version}.",
                "Install the CRD or controller that provides it, or remove the object.",
                code="unknown-kind") from None


# (apiVersion, kind) -> (plural, namespaced) for the kinds a Paless overlay uses; anything
# else is looked up once through API discovery.
KNOWN_KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "ConfigMap"): ("configmaps", True), ("v1", "Secret"): ("secrets", True),
    ("v1", "Service"): ("services", True), ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("v1", "PersistentVolume"): ("persistentvolumes", False),
    ("v1", "Namespace"): ("namespaces", False), ("v1", "LimitRange"): ("limitranges", True),
    ("v1", "ResourceQuota"): ("resourcequotas", True), ("v1", "Pod"): ("pods", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True), ("batch/v1", "Job"): ("jobs", True),
    ("batch/v1", "CronJob"): ("cronjobs", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("networking.k8s.io/v1", "IngressClass"): ("ingressclasses", False),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("storage.k8s.io/v1", "StorageClass"): ("storageclasses", False),
    ("coordination.k8s.io/v1", "Lease"): ("leases", True),
}


@dataclass(frozen=True)
class RestResource:
    """One kind of object, spoken to as plain JSON (paths built, no typed models)."""

    kube: Kube
    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base

    def get(self, name: str, namespace: str | None = None) -> dict | None:
        return self.kube.get(self.path(namespace, name))

    def apply(self, body: Mapping[str, Any], namespace: str | None, *, manager: str,
              force: bool = False, dry_run: bool = False) -> dict:
        """Server-side apply (JSON is YAML, so the apply-patch content type takes it)."""
        import json

        query = {"fieldManager": manager, "force": "true" if force else None,
                 "dryRun": "All" if dry_run else None}
        return self.kube.request("PATCH", self.path(namespace, body["metadata"]["name"]),
                                 query=query, body=json.dumps(body),
                                 content_type="application/apply-patch+yaml")

    def delete(self, name: str, namespace: str | None = None,
               propagation: str = "Background") -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.kube.request("DELETE", self.path(namespace, name),
                              body={"apiVersion": "v1", "kind": "DeleteOptions",
                                    "propagationPolicy": propagation})
        except ApiException as exc:
            if exc.status != 404:
                raise

    def watch(self, namespace: str | None, *, field_selector: str, resource_version: str,
              timeout_s: int) -> Iterator[dict]:
        query = {"fieldSelector": field_selector, "resourceVersion": resource_version,
                 "timeoutSeconds": timeout_s}
        return self.kube.stream(self.path(namespace), query, timeout=(5, timeout_s + 5))


def rest_resource(kube: Kube, api_version: str, kind: str) -> RestResource:
    """The RestResource of a kind: from the table, else from API discovery (CRDs)."""
    known = KNOWN_KINDS.get((api_version, kind))
    if known is None:
        found = kube.resource(api_version, kind)
        known = (found.name, bool(found.namespaced))
    return RestResource(kube, api_version, kind, known[0], known[1])


def connect(kubeconfig: str | None = None, context: str | None = None) -> Kube:
    """Load the kubeconfig and check that the API server answers (ClusterError if not)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    path = resolve_kubeconfig(kubeconfig)
    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=str(path), context=context, client_configuration=cfg)
    except ConfigException as exc:
        raise ClusterError(f"The kubeconfig {path} cannot be used: {exc}.",
                           "Check the file, or pick a context with --context.",
                           code="bad-kubeconfig") from None
    except (OSError, ValueError, TypeError) as exc:
        raise ClusterError(f"The kubeconfig {path} cannot be read: {exc}.",
                           "Check the file is a valid kubeconfig.", code="bad-kubeconfig") from None
    cfg.retries = 0  # our retries are explicit (tenacity); urllib3's would hide outages
    cfg.connection_pool_maxsize = 32  # one streaming watch per kind plus parallel applies
    api = client.ApiClient(cfg)
    kube = Kube(api=api, server=cfg.host, kubeconfig=path, context=context)
    with cluster_errors(kube, "asking the API server for its version"):
        client.VersionApi(api).get_code(_request_timeout=REQUEST_TIMEOUT)
    return kube


def is_transient(exc: BaseException) -> bool:
    """Connection failures, 5xx and 429 are worth another try; anything else is not."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error

    if isinstance(exc, ApiException):
        return exc.status in (429, 500, 502, 503, 504) or exc.status == 0
    return isinstance(exc, (Urllib3Error, ConnectionError, TimeoutError))


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


def api_status(exc: BaseException) -> int | None:
    """The HTTP status of an ApiException, else None."""
    from kubernetes.client.exceptions import ApiException

    return exc.status if isinstance(exc, ApiException) else None


def api_message(exc: BaseException) -> str:
    """The API server's own message of an ApiException (its Status body), else str(exc)."""
    import json

    body = getattr(exc, "body", None)
    if body:
        try:
            return str(json.loads(body).get("message") or body)
        except (ValueError, AttributeError):
            return str(body)
    return str(getattr(exc, "reason", "") or exc)


@contextlib.contextmanager
def cluster_errors(kube: Kube, doing: str, namespace: str | None = None) -> Iterator[None]:
    """Turn unreachable-cluster and not-authorised failures into ClusterError (exit 4)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error

    try:
        yield
    except ApiException as exc:
        if exc.status == 401:
            raise ClusterError(
                f"The API server {kube.server} rejected our credentials while {doing}.",
                f"Refresh the credentials in {kube.kubeconfig} (expired token or certificate?).",
                code="unauthorised") from None
        if exc.status == 403:
            where = f" in namespace {namespace}" if namespace else ""
            raise ClusterError(
                f"Not authorised{where} while {doing}: {api_message(exc)}",
                "Use a kubeconfig whose user may manage this namespace, or deploy into a "
                "namespace you are allowed to write (-n).", code="forbidden") from None
        if exc.status == 0 or exc.status is None:
            raise _unreachable(kube, doing, str(exc.reason)) from None
        raise
    except (Urllib3Error, ConnectionError, TimeoutError) as exc:
        raise _unreachable(kube, doing, str(exc)) from None


def _unreachable(kube: Kube, doing: str, detail: str) -> ClusterError:
    short = detail.split("Caused by")[-1].strip(" ()'\"") if detail else "no answer"
    return ClusterError(
        f"The cluster at {kube.server} is unreachable ({doing}): {short[:200]}.",
        f"Check that the cluster runs and that {kube.kubeconfig} points at it "
        "(`kubectl cluster-info`; for the sandbox: `scripts/sandbox up`).",
        code="unreachable")
