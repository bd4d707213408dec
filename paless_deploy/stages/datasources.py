"""A namespace's data services, reached: PostgreSQL through exec in its pod, MinIO's S3 API
through a port-forward to its pod, with the credentials its own container reads.

Both go through the Kubernetes door (kubectl exec and port-forward, with the kubeconfig
the tool uses); the S3 calls through the object-store door.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, BinaryIO

from paless_deploy.adapters.host import free_local_port
from paless_deploy.adapters.kube import cluster_errors, with_retries
from paless_deploy.adapters.kube.kubectl import (
    ExecResult,
    KubectlPortForward,
    Writer,
    kubectl_exec,
)
from paless_deploy.adapters.objectstore import ObjectStore
from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.data import services
from paless_deploy.core.data.services import MINIO, POSTGRES, Service
from paless_deploy.core.errors import ClusterError, ConfigError, DeployFailed
from paless_deploy.core.manifests.kinds import by_kind

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube

LOCAL_PORT = 19000  # the first local port tried for MinIO's forward


@dataclass(frozen=True)
class DataServices:
    """What a namespace runs for its data, as read from the cluster."""

    namespace: str
    objects: tuple[JsonDict, ...]  # its Deployments, StatefulSets and Jobs
    postgres: Service | None
    minio: Service | None


def read_services(kube: Kube, namespace: str) -> DataServices:
    """The namespace's workloads and pods, and which of them are PostgreSQL and MinIO."""
    with cluster_errors(kube, f"reading the workloads of {namespace}", namespace):
        objects = [o for kind in ("StatefulSet", "Deployment", "Job")
                   for o in with_retries(partial(kube.list, by_kind(kind), namespace))[0]]
        pods = with_retries(partial(kube.list, by_kind("Pod"), namespace))[0]
    return DataServices(namespace, tuple(objects), services.find_service(objects, pods, POSTGRES),
                        services.find_service(objects, pods, MINIO))


def require(found: Service | None, namespace: str, what: str) -> Service:
    """The service with a Ready pod, or the error that says why not (exit 2 when the
    namespace has none at all, exit 1 when it has one that is not Ready)."""
    if found is None:
        raise ConfigError(
            f"Namespace {namespace} has no {what} (no Deployment or StatefulSet whose "
            "component, name or image says so).",
            f"Check -n: is the Paless stack deployed in {namespace}? Deploy it first "
            f"(`paless-deploy -n {namespace} all`).", code=f"no-{what.lower()}",
            resource=namespace)
    if found.pod is None:
        raise DeployFailed(
            f"{found.workload} in {namespace} has no Ready pod.",
            f"If the namespace sleeps, wake it (`paless-deploy -n {namespace} wake`); else "
            f"see why it is not ready (`paless-deploy -n {namespace} status`).",
            code="not-ready", resource=found.workload)
    return found


def exec_in(kube: Kube, namespace: str, service: Service, command: Sequence[str], *,
            stdin: BinaryIO | None = None, sink: Writer | None = None,
            on_bytes: Callable[[int], None] | None = None) -> ExecResult:
    """Run `command` in the service's container; ClusterError (exit 4) when kubectl could
    not run it at all, ConfigError when there is no kubectl."""
    assert service.pod is not None
    try:
        result = kubectl_exec(kube.kubeconfig, kube.context, namespace, service.pod,
                              service.container, command, stdin=stdin, sink=sink,
                              on_bytes=on_bytes)
    except FileNotFoundError:
        raise ConfigError("kubectl is not on PATH; backup and restore run their commands in "
                          "the cluster through `kubectl exec`.",
                          "Install kubectl (the version of the cluster, or one minor apart).",
                          code="no-kubectl") from None
    if not result.reached:
        raise ClusterError(
            f"Could not run a command in pod {service.pod} ({service.container}) of "
            f"{namespace}: {result.stderr.strip()[-300:] or 'kubectl said nothing'}.",
            f"Check that the pod runs (`kubectl -n {namespace} get pod {service.pod}`) and "
            "that your user may exec into it (pods/exec).", code="exec-failed",
            resource=f"Pod/{service.pod}")
    return result


def store_credentials(kube: Kube, namespace: str, service: Service) -> tuple[str, str]:
    """MinIO's root user and password as its container reads them (from the namespace's
    Secrets and ConfigMaps)."""
    secret_names, map_names = services.references(service)
    with cluster_errors(kube, f"reading MinIO's credentials in {namespace}", namespace):
        secrets = {n: s for n in secret_names
                   if (s := with_retries(partial(kube.read, by_kind("Secret"), n, namespace)))}
        maps = {n: m for n in map_names
                if (m := with_retries(partial(kube.read, by_kind("ConfigMap"), n, namespace)))}
    user = services.env_value(service, services.MINIO_USER_VARIABLES, secrets, maps)
    password = services.env_value(service, services.MINIO_PASSWORD_VARIABLES, secrets, maps)
    if not user or not password:
        raise ConfigError(
            f"Cannot tell MinIO's credentials in {namespace}: {service.workload} sets neither "
            "MINIO_ROOT_USER and MINIO_ROOT_PASSWORD nor MINIO_ACCESS_KEY and MINIO_SECRET_KEY "
            "from a value, a Secret or a ConfigMap this user may read.",
            "Give MinIO its root credentials through its environment (the Paless manifests "
            "read them from the Secret paless-secret).", code="no-store-credentials",
            resource=service.workload)
    return user, password


@contextlib.contextmanager
def open_store(kube: Kube, namespace: str, service: Service) -> Iterator[ObjectStore]:
    """MinIO's S3 API on 127.0.0.1 through a port-forward, for as long as the block runs."""
    assert service.pod is not None
    user, password = store_credentials(kube, namespace, service)
    port = free_local_port(LOCAL_PORT, set())
    try:
        forward = KubectlPortForward(kube.kubeconfig, kube.context, namespace, service.pod,
                                     port, service.port)
    except FileNotFoundError:
        raise ConfigError("kubectl is not on PATH; backup and restore reach MinIO through "
                          "`kubectl port-forward`.", "Install kubectl.",
                          code="no-kubectl") from None
    store = ObjectStore(f"http://127.0.0.1:{port}", user, password)
    try:
        problem = forward.wait_listening()
        if problem:
            raise ClusterError(
                f"Could not forward a local port to MinIO ({service.pod}:{service.port}) in "
                f"{namespace}: {problem}.",
                f"Check the pod (`kubectl -n {namespace} get pod {service.pod}`) and that your "
                "user may port-forward to it (pods/portforward).", code="forward-failed",
                resource=f"Pod/{service.pod}")
        yield store
    finally:
        store.close()
        forward.stop()
