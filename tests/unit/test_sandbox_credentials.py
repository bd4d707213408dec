"""The sandbox's credentials: the static token file, the certificates' subjects and names, and
the kubeconfigs written from them."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from paless_sandbox import credentials
from paless_sandbox.layout import (
    APISERVER_PORT,
    BRIDGE_IP,
    KUBECONFIG,
    REAL_NODE,
    RESTRICTED_KUBECONFIG,
    RESTRICTED_NAMESPACE,
)


def test_the_token_file_round_trips_every_user() -> None:
    text = credentials.tokens_csv(["t-admin", "t-kcm", "t-sched", "t-restricted"])
    assert text.splitlines()[0] == 't-admin,admin,admin,"system:masters"'
    assert credentials.parse_tokens(text) == {
        "admin": "t-admin", "system:kube-controller-manager": "t-kcm",
        "system:kube-scheduler": "t-sched", "restricted": "t-restricted"}
    assert credentials.tokens_complete(text)


def test_a_token_file_of_an_older_sandbox_is_rewritten() -> None:
    full = credentials.tokens_csv(["a", "b", "c", "d"])
    three_users = "".join(full.splitlines(keepends=True)[:3])
    kcm_not_master = full.replace('kcm,"system:masters"', 'kcm,""')
    assert not credentials.tokens_complete(three_users)
    assert not credentials.tokens_complete(kcm_not_master)
    assert not credentials.tokens_complete("")


def test_a_token_file_needs_one_token_per_user() -> None:
    with pytest.raises(ValueError):
        credentials.tokens_csv(["only-one"])


def test_the_kubelet_serving_certificate_names_the_bridge_address() -> None:
    subject, extensions = credentials.CERTIFICATES["kubelet-serving"]
    assert subject == f"/CN={REAL_NODE}"
    assert f"IP:{BRIDGE_IP}" in extensions and "serverAuth" in extensions
    # the API server is reached as 127.0.0.1 and as the in-cluster Service names
    assert "IP:127.0.0.1" in credentials.CERTIFICATES["apiserver"][1]
    assert "DNS:kubernetes.default.svc" in credentials.CERTIFICATES["apiserver"][1]


def test_node_and_proxy_clients_are_in_the_groups_kubernetes_binds() -> None:
    assert credentials.CERTIFICATES["kubelet-client"][0] == \
        f"/O=system:nodes/CN=system:node:{REAL_NODE}"
    assert credentials.CERTIFICATES["kube-proxy-client"][0] == "/CN=system:kube-proxy"


def test_a_token_kubeconfig_points_at_the_local_api_server() -> None:
    doc = credentials.kubeconfig_document("admin", "Q0E=", {"token": "secret"})
    assert doc["current-context"] == "paless-sandbox"
    assert doc["clusters"] == [{"name": "paless-sandbox", "cluster": {
        "server": f"https://127.0.0.1:{APISERVER_PORT}", "certificate-authority-data": "Q0E="}}]
    assert doc["users"] == [{"name": "admin", "user": {"token": "secret"}}]
    assert doc["contexts"] == [{"name": "paless-sandbox",
                                "context": {"cluster": "paless-sandbox", "user": "admin"}}]


def test_a_namespaced_kubeconfig_names_its_namespace() -> None:
    doc = credentials.kubeconfig_document("restricted", "Q0E=", {"token": "t"}, "ns-1")
    assert doc["contexts"] == [{"name": "paless-sandbox", "context": {
        "cluster": "paless-sandbox", "user": "restricted", "namespace": "ns-1"}}]


def test_the_kubeconfigs_written_and_for_whom() -> None:
    by_path = {path: (user, ns, cert) for path, user, ns, cert in credentials.KUBECONFIGS}
    assert by_path[KUBECONFIG] == ("admin", None, None)
    assert by_path[RESTRICTED_KUBECONFIG] == ("restricted", RESTRICTED_NAMESPACE, None)
    # the real node's components authenticate with certificates, the others with tokens
    certified = {user: cert for user, _, cert in by_path.values() if cert}
    assert certified == {f"system:node:{REAL_NODE}": "kubelet-client",
                         "system:kube-proxy": "kube-proxy-client"}
    tokens = {u for u, _, _ in credentials.TOKEN_USERS}
    assert {user for user, _, cert in by_path.values() if not cert} <= tokens


def test_write_kubeconfig_is_private_and_uses_the_token(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credentials, "PKI", tmp_path)
    (tmp_path / "ca.crt").write_bytes(b"CA")
    (tmp_path / "tokens.csv").write_text(credentials.tokens_csv(["a1", "k2", "s3", "r4"]))
    target = tmp_path / "out" / "kubeconfig"
    target.parent.mkdir()
    credentials.write_kubeconfig(target, "restricted", "ns")
    written = json.loads(target.read_text())
    assert written["users"] == [{"name": "restricted", "user": {"token": "r4"}}]
    assert written["clusters"][0]["cluster"]["certificate-authority-data"] == "Q0E="
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not list(target.parent.glob("*.tmp"))


def test_write_kubeconfig_with_a_certificate_names_its_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credentials, "PKI", tmp_path)
    (tmp_path / "ca.crt").write_bytes(b"CA")
    target = tmp_path / "kubelet"
    credentials.write_kubeconfig(target, "system:node:x", certificate="kubelet-client")
    user = json.loads(target.read_text())["users"][0]["user"]
    assert user == {"client-certificate": str(tmp_path / "kubelet-client.crt"),
                    "client-key": str(tmp_path / "kubelet-client.key")}
