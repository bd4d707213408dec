"""The Kubernetes adapter without a cluster: kubeconfig resolution and merging, error mapping."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paless_deploy.adapters.kube import (
    ApiError,
    Kube,
    TransportError,
    _api_error,
    _load,
    cluster_errors,
    is_transient,
    resolve_kubeconfig,
    transport_errors,
)
from paless_deploy.core.errors import ClusterError, ConfigError, Refused


def kubeconfig(path: Path, name: str, server: str) -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": server}}],
        "users": [{"name": name, "user": {"token": "t"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
    }))
    return path


def test_kubeconfig_list_is_merged_as_kubectl_does(tmp_path: Path) -> None:
    a = kubeconfig(tmp_path / "a", "first", "https://first:6443")
    b = kubeconfig(tmp_path / "b", "second", "https://second:6443")
    source = resolve_kubeconfig(None, {"KUBECONFIG": f"{a}:{tmp_path / 'missing'}:{b}"})
    assert source.paths == (a, b) and source.origin == "KUBECONFIG"
    # the first file's current-context wins; a context of the second file is reachable
    assert _load(source, None)[1] == "https://first:6443"
    assert _load(source, "second")[1] == "https://second:6443"


def test_explicit_kubeconfig_wins_and_must_exist(tmp_path: Path) -> None:
    a = kubeconfig(tmp_path / "a", "first", "https://first:6443")
    assert resolve_kubeconfig(str(a), {"KUBECONFIG": "/nope"}).paths == (a,)
    with pytest.raises(ClusterError, match="does not exist") as info:
        resolve_kubeconfig(str(tmp_path / "nope"), {})
    assert info.value.exit_code == 4
    with pytest.raises(ClusterError, match="is a directory"):
        resolve_kubeconfig(str(tmp_path), {})


@pytest.mark.parametrize("content", ["{not yaml: [", "\x00\x01binary", "kind: Config\n"])
def test_unusable_kubeconfig_is_named_not_an_internal_error(tmp_path: Path,
                                                            content: str) -> None:
    path = tmp_path / "config"
    path.write_text(content)
    with pytest.raises(ClusterError) as info:
        _load(resolve_kubeconfig(str(path), {}), None)
    assert str(path) in info.value.message and info.value.code == "bad-kubeconfig"


def test_unknown_context_names_the_fix(tmp_path: Path) -> None:
    a = kubeconfig(tmp_path / "a", "first", "https://first:6443")
    with pytest.raises(ClusterError) as info:
        _load(resolve_kubeconfig(str(a), {}), "nope")
    assert "--context" in info.value.hint


def test_status_body_is_kept() -> None:
    body = json.dumps({"kind": "Status", "message": "jobs.batch \"x\" is forbidden",
                       "reason": "Forbidden", "details": {"causes": [{"field": "spec"}]}})
    err = _api_error(403, "Forbidden", body.encode())
    assert err.status == 403 and "is forbidden" in err.message and err.causes == [
        {"field": "spec"}]
    assert _api_error(500, "Internal", b"<html>").message == "<html>"


def test_transport_failures_are_classified() -> None:
    from urllib3.exceptions import NewConnectionError, SSLError

    with pytest.raises(TransportError) as info, transport_errors():
        raise SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    assert info.value.tls and not is_transient(info.value)
    with pytest.raises(TransportError) as info, transport_errors():
        raise NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    assert not info.value.tls and is_transient(info.value)
    assert is_transient(ApiError(503, "", "", {})) and not is_transient(ApiError(422, "", "", {}))


def kube() -> Kube:
    return Kube(api=None, server="https://k:6443", kubeconfig="/k/config", context=None)


def test_cluster_errors_map_to_exit_4_with_the_fix() -> None:
    with pytest.raises(ClusterError) as info, cluster_errors(kube(), "reading x"):
        raise TransportError("certificate verify failed", tls=True)
    assert info.value.code == "tls" and "certificate-authority" in info.value.hint
    with pytest.raises(ClusterError) as info, cluster_errors(kube(), "reading x"):
        raise TransportError("Connection refused")
    assert info.value.code == "unreachable" and "/k/config" in info.value.hint
    with pytest.raises(ClusterError) as info, cluster_errors(kube(), "reading x", "ns"):
        raise ApiError(403, "Forbidden", 'pods is forbidden: User "u" cannot list resource '
                       '"pods" in API group "" in the namespace "ns"', {})
    assert info.value.code == "forbidden" and "namespace ns" in info.value.message
    # a 403 that is not RBAC is a refusal of what was sent, not of the user (exit 2)
    with pytest.raises(Refused) as refused, cluster_errors(kube(), "creating x", "ns"):
        raise ApiError(403, "Forbidden", 'leases.coordination.k8s.io "l" is forbidden: exceeded '
                       "quota: q, requested: count/leases=1, used: count/leases=0, limited: "
                       "count/leases=0", {})
    assert refused.value.code == "quota-exceeded" and refused.value.exit_code == 2
    with pytest.raises(ApiError), cluster_errors(kube(), "reading x"):
        raise ApiError(422, "Invalid", "bad", {})


def test_unknown_kind_is_a_configuration_error() -> None:
    class Discovery(Kube):
        def get(self, path: str, **query: object) -> dict | None:
            assert path == "/apis/example.com/v1"
            return {"resources": [{"name": "widgets", "kind": "Widget", "namespaced": True},
                                  {"name": "widgets/status", "kind": "Widget"}]}

    k = Discovery(api=None, server="https://k", kubeconfig="/k", context=None)
    widget = k.kind("example.com/v1", "Widget")
    assert widget.plural == "widgets" and widget.namespaced
    assert widget.path("ns", "w") == "/apis/example.com/v1/namespaces/ns/widgets/w"
    with pytest.raises(ConfigError, match="does not serve Gadget") as info:
        k.kind("example.com/v1", "Gadget")
    assert info.value.exit_code == 2 and "CRD" in info.value.hint


def test_a_body_the_schema_refuses_is_invalid_not_an_outage() -> None:
    """Server-side apply answers 500 for `replicas: "three"` or an unknown field: an invalid
    object (422, its words on one line), never retried."""
    message = ('failed to create typed patch object (ns/web; apps/v1, Kind=Deployment): '
               'errors:\n  .spec.replicas: expected numeric (int or float), got string\n'
               '  .spec.template.spec.containers[name="app"].bogus: field not declared in '
               'schema')
    err = _api_error(500, "Internal Server Error", json.dumps({"message": message}).encode())
    assert (err.status, err.reason) == (422, "Invalid") and not is_transient(err)
    assert err.message == ('.spec.replicas: expected numeric (int or float), got string; '
                           '.spec.template.spec.containers[name="app"].bogus: field not '
                           'declared in schema')
    convert = ("failed to convert new object (ns/app; /v1, Kind=Secret) to proper version: "
               "unable to convert unstructured object to /v1, Kind=Secret: error decoding "
               "from json: illegal base64 data at input byte 6")
    err = _api_error(500, "", json.dumps({"message": convert}).encode())
    assert err.status == 422 and err.message.startswith("unable to convert unstructured")
    assert is_transient(_api_error(500, "", b'{"message": "etcdserver: request timed out"}'))


def test_a_tls_failure_under_urllib3s_retry_error_is_tls() -> None:
    from urllib3.exceptions import MaxRetryError, SSLError

    with pytest.raises(TransportError) as info, transport_errors():
        raise MaxRetryError(None, "/version",  # type: ignore[arg-type]
                            SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
                                     "failed: unable to get local issuer certificate"))
    assert info.value.tls and "CERTIFICATE_VERIFY_FAILED" in str(info.value)


@pytest.mark.parametrize(("text", "words"), [
    ("clusters: [ {name: a\n", "is not YAML at line"), ("hello\n", "holds plain text"),
    ("- a\n- b\n", "holds a list")])
def test_a_kubeconfig_that_is_not_one_says_what_it_is(tmp_path: Path, text: str,
                                                     words: str) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(ClusterError) as info:
        _load(resolve_kubeconfig(str(path)), None)
    assert words in info.value.message and info.value.exit_code == 4


def test_an_api_server_still_unavailable_after_the_retries_is_exit_4() -> None:
    with pytest.raises(ClusterError) as info, cluster_errors(kube(), "listing pods"):
        raise ApiError(503, "ServiceUnavailable", "apiserver is shutting down", {})
    assert info.value.code == "unavailable" and "shutting down" in info.value.message


def test_watch_until_sees_an_object_created_between_its_read_and_its_list() -> None:
    """A namespace's default ServiceAccount appears within milliseconds: the read may miss
    it and the list have it; waiting for a watch event then would wait the whole timeout."""
    from paless_deploy.core.manifests.kinds import Kind, by_kind

    class Racy(Kube):
        def read(self, kind: Kind, name: str, namespace: str | None = None) -> None:
            return None

        def list(self, kind: Kind, namespace: str | None = None, **query: object
                 ) -> tuple[list[dict[str, Any]], str]:
            return [{"metadata": {"name": "default", "resourceVersion": "5"}}], "5"

        def watch(self, kind: Kind, namespace: str | None, *, resource_version: str,
                  field_selector: str | None = None, timeout_s: int = 0
                  ) -> Iterator[dict[str, Any]]:
            raise AssertionError("nothing to wait for")

    k = Racy(api=None, server="https://k", kubeconfig="/k", context=None)
    found = k.watch_until(by_kind("ServiceAccount"), "default", "ns",
                          lambda sa: sa is not None, 5)
    assert found is not None and found["metadata"]["name"] == "default"
