"""The Kubernetes transport against a real local TLS server: CA data and files, client
certificates, insecure-skip-tls-verify, tls-server-name, tokens, basic auth, exec credential
plugins (token, certificate, expiry, a refused credential) and the proxy rule.

Certificates are made with the openssl command (as the sandbox makes its own).
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

from paless_deploy.adapters.kube import (
    Kube,
    TransportError,
    _load,
    cluster_errors,
    proxy_for,
    resolve_kubeconfig,
)
from paless_deploy.core.errors import ClusterError
from tests.fixtures.http import send_json, serving

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass(frozen=True)
class Pki:
    dir: Path

    def pem(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()

    def b64(self, name: str) -> str:
        return base64.b64encode(self.pem(name)).decode()


def _issue(pki: Path, name: str, subject: str, ext: str, ca: str = "ca") -> None:
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
            f"{name}.csr", "-subj", subject, cwd=pki)
    (pki / f"{name}.ext").write_text(ext)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", "-extfile", f"{name}.ext",
            cwd=pki)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
                "-out", f"{ca}.crt", "-days", "2", "-subj", f"/CN={ca}", cwd=d)
    _issue(d, "server", "/CN=server",
           "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _issue(d, "named", "/CN=named", "subjectAltName=DNS:kube.test\nextendedKeyUsage=serverAuth\n")
    _issue(d, "client", "/CN=jane/O=devs", "extendedKeyUsage=clientAuth\n")
    return Pki(d)


class Echo(BaseHTTPRequestHandler):
    """Answers who it saw: the Authorization header and the client certificate's CN.
    `Bearer expired` is refused with 401, as an API server refuses an old token."""

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization")
        if auth == "Bearer expired":
            self._send(401, {"kind": "Status", "reason": "Unauthorized", "message": "expired"})
            return
        cert = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
        cn = None
        for rdn in (cert or {}).get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    cn = value
        self._send(200, {"auth": auth, "client": cn, "path": self.path,
                         "agent": self.headers.get("User-Agent")})

    def _send(self, status: int, body: dict) -> None:
        send_json(self, status, body)

    def log_message(self, *args: object) -> None:
        pass


def serve(pki: Pki, cert: str) -> Iterator[str]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.dir / f"{cert}.crt", pki.dir / f"{cert}.key")
    ctx.load_verify_locations(pki.dir / "ca.crt")
    ctx.verify_mode = ssl.CERT_OPTIONAL  # a client certificate when the client has one
    with serving(Echo, ctx) as port:
        yield f"https://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server(pki: Pki) -> Iterator[str]:
    yield from serve(pki, "server")


@pytest.fixture(scope="module")
def named_server(pki: Pki) -> Iterator[str]:
    """A server whose certificate names only kube.test, not the address it listens on."""
    yield from serve(pki, "named")


def write_kubeconfig(path: Path, cluster: dict, user: dict) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    return path


def whoami(kubeconfig: Path) -> dict:
    api, server = _load(resolve_kubeconfig(str(kubeconfig), {}), None)
    kube = Kube(api=api, server=server, kubeconfig=str(kubeconfig), context=None)
    with cluster_errors(kube, "asking who we are"):
        return kube.request("GET", "/whoami")


def test_ca_data_client_certificate_data_and_token(pki: Pki, server: str,
                                                   tmp_path: Path) -> None:
    kc = write_kubeconfig(tmp_path / "config",
                          {"server": server, "certificate-authority-data": pki.b64("ca.crt")},
                          {"client-certificate-data": pki.b64("client.crt"),
                           "client-key-data": pki.b64("client.key"), "token": "t0k"})
    seen = whoami(kc)
    assert seen["client"] == "jane" and seen["auth"] == "Bearer t0k"
    assert seen["path"] == "/whoami" and seen["agent"].startswith("paless-deploy/")
    # the key never stays on disk: nothing was left in the temporary directory
    assert not list(Path(__import__("tempfile").gettempdir()).glob("paless-tls-*"))


def test_files_relative_to_the_kubeconfig(pki: Pki, server: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "kube"
    (home / "certs").mkdir(parents=True)
    for name in ("ca.crt", "client.crt", "client.key"):
        shutil.copy(pki.dir / name, home / "certs" / name)
    (home / "token").write_text("from-file\n")
    kc = write_kubeconfig(home / "config",
                          {"server": server, "certificate-authority": "certs/ca.crt"},
                          {"client-certificate": "certs/client.crt",
                           "client-key": "certs/client.key", "tokenFile": "token"})
    monkeypatch.chdir(tmp_path)  # not the kubeconfig's directory
    seen = whoami(kc)
    assert seen["client"] == "jane" and seen["auth"] == "Bearer from-file"


def test_a_server_signed_by_another_ca_is_a_tls_error(pki: Pki, server: str,
                                                      tmp_path: Path) -> None:
    kc = write_kubeconfig(tmp_path / "config", {"server": server, "certificate-authority-data":
                                                pki.b64("other-ca.crt")}, {"token": "t"})
    with pytest.raises(ClusterError) as info:
        whoami(kc)
    assert info.value.code == "tls" and info.value.exit_code == 4


def test_the_system_store_does_not_trust_a_private_ca(server: str, tmp_path: Path) -> None:
    kc = write_kubeconfig(tmp_path / "config", {"server": server}, {"token": "t"})
    with pytest.raises(ClusterError) as info:
        whoami(kc)
    assert info.value.code == "tls"


def test_insecure_skip_tls_verify(server: str, tmp_path: Path) -> None:
    kc = write_kubeconfig(tmp_path / "config",
                          {"server": server, "insecure-skip-tls-verify": True},
                          {"username": "jane", "password": "s3cret"})
    seen = whoami(kc)
    assert seen["auth"] == "Basic " + base64.b64encode(b"jane:s3cret").decode()


def test_tls_server_name_is_the_name_checked(pki: Pki, named_server: str,
                                            tmp_path: Path) -> None:
    cluster = {"server": named_server, "certificate-authority-data": pki.b64("ca.crt")}
    with pytest.raises(ClusterError) as info:
        whoami(write_kubeconfig(tmp_path / "a", cluster, {"token": "t"}))
    assert info.value.code == "tls"  # its certificate does not name 127.0.0.1
    seen = whoami(write_kubeconfig(tmp_path / "b", {**cluster, "tls-server-name": "kube.test"},
                                   {"token": "t"}))
    assert seen["auth"] == "Bearer t"


PLUGIN = """\
import json, os, sys
from pathlib import Path
runs = Path(sys.argv[1])
n = int(runs.read_text()) + 1 if runs.exists() else 1
runs.write_text(str(n))
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert info["kind"] == "ExecCredential" and info["spec"]["interactive"] is False
assert os.environ["FROM_KUBECONFIG"] == "yes"
status = json.loads(sys.argv[2])
if "token" in status:
    status["token"] = status["token"].replace("N", str(n))
print(json.dumps({"apiVersion": info["apiVersion"], "kind": "ExecCredential",
                  "status": status}))
"""


def exec_user(tmp_path: Path, status: dict, api: str = "client.authentication.k8s.io/v1"
              ) -> tuple[dict, Path]:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN)
    runs = tmp_path / "runs"
    return {"exec": {"apiVersion": api, "command": sys.executable,
                     "args": [str(plugin), str(runs), json.dumps(status)],
                     "env": [{"name": "FROM_KUBECONFIG", "value": "yes"}],
                     "interactiveMode": "Never"}}, runs


def test_exec_plugin_token_is_cached_until_it_expires(pki: Pki, server: str,
                                                      tmp_path: Path) -> None:
    user, runs = exec_user(tmp_path, {"token": "tok-N",
                                      "expirationTimestamp": "2999-01-01T00:00:00Z"})
    kc = write_kubeconfig(tmp_path / "config", {"server": server, "certificate-authority-data":
                                                pki.b64("ca.crt")}, user)
    api, server_url = _load(resolve_kubeconfig(str(kc), {}), None)
    kube = Kube(api=api, server=server_url, kubeconfig=str(kc), context=None)
    assert [kube.request("GET", "/a")["auth"] for _ in range(3)] == ["Bearer tok-1"] * 3
    assert runs.read_text() == "1"


def test_an_expired_exec_credential_is_fetched_again(pki: Pki, server: str,
                                                     tmp_path: Path) -> None:
    user, _ = exec_user(tmp_path, {"token": "tok-N",
                                   "expirationTimestamp": "2000-01-01T00:00:00Z"},
                           api="client.authentication.k8s.io/v1beta1")
    kc = write_kubeconfig(tmp_path / "config", {"server": server, "certificate-authority-data":
                                                pki.b64("ca.crt")}, user)
    api, server_url = _load(resolve_kubeconfig(str(kc), {}), None)
    kube = Kube(api=api, server=server_url, kubeconfig=str(kc), context=None)
    assert kube.request("GET", "/a")["auth"] == "Bearer tok-1"
    assert kube.request("GET", "/a")["auth"] == "Bearer tok-2"


def test_a_refused_exec_credential_is_fetched_again_once(pki: Pki, server: str,
                                                         tmp_path: Path) -> None:
    # the first run answers a token the server refuses; the second a good one
    user, runs = exec_user(tmp_path, {"token": "tok-N"})
    user["exec"]["args"][2] = json.dumps({"token": "tok-N"})
    plugin = Path(user["exec"]["args"][0])
    plugin.write_text(PLUGIN.replace('status["token"].replace("N", str(n))',
                                     '"expired" if n == 1 else status["token"].replace('
                                     '"N", str(n))'))
    kc = write_kubeconfig(tmp_path / "config", {"server": server, "certificate-authority-data":
                                                pki.b64("ca.crt")}, user)
    assert whoami(kc)["auth"] == "Bearer tok-2"
    assert runs.read_text() == "2"


def test_exec_plugin_client_certificate(pki: Pki, server: str, tmp_path: Path) -> None:
    user, _ = exec_user(tmp_path, {"clientCertificateData": pki.pem("client.crt").decode(),
                                   "clientKeyData": pki.pem("client.key").decode()})
    kc = write_kubeconfig(tmp_path / "config", {"server": server, "certificate-authority-data":
                                                pki.b64("ca.crt")}, user)
    seen = whoami(kc)
    assert seen["client"] == "jane" and seen["auth"] is None


def test_a_failing_exec_plugin_is_exit_4_naming_it(server: str, tmp_path: Path) -> None:
    kc = write_kubeconfig(tmp_path / "config", {"server": server}, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "interactiveMode": "Never",
        "command": "paless-no-such-plugin", "installHint": "brew install the-plugin"}})
    with pytest.raises(ClusterError) as info:
        whoami(kc)
    assert "paless-no-such-plugin" in info.value.message
    assert info.value.hint == "brew install the-plugin" and info.value.exit_code == 4


def test_connection_refused_is_transient_not_tls(tmp_path: Path) -> None:
    kc = write_kubeconfig(tmp_path / "config", {"server": "https://127.0.0.1:1"},
                          {"token": "t"})
    api, server = _load(resolve_kubeconfig(str(kc), {}), None)
    kube = Kube(api=api, server=server, kubeconfig=str(kc), context=None)
    with pytest.raises(TransportError) as info:
        kube.request("GET", "/version")
    assert not info.value.tls


@pytest.mark.parametrize(("server", "proxy_url", "env", "expected"), [
    ("https://k.example:6443", None, {"HTTPS_PROXY": "http://p:3128"}, "http://p:3128"),
    ("https://k.example:6443", None, {"https_proxy": "http://p:3128"}, "http://p:3128"),
    ("http://k.example:8080", None, {"HTTPS_PROXY": "http://p:3128"}, None),
    ("http://k.example:8080", None, {"HTTP_PROXY": "http://p:3128"}, "http://p:3128"),
    ("https://k.example:6443", None, {"HTTPS_PROXY": "http://p", "NO_PROXY": "example"}, None),
    ("https://k.example:6443", None, {"HTTPS_PROXY": "http://p", "NO_PROXY": ".example"}, None),
    ("https://k.example:6443", None, {"HTTPS_PROXY": "http://p", "NO_PROXY": "*"}, None),
    ("https://10.1.2.3:6443", None, {"HTTPS_PROXY": "http://p", "NO_PROXY": "10.0.0.0/8"}, None),
    ("https://10.1.2.3:6443", None, {"HTTPS_PROXY": "http://p", "NO_PROXY": "k.example"},
     "http://p"),
    ("https://127.0.0.1:6443", None, {"HTTPS_PROXY": "http://p"}, None),  # kubectl's rule
    ("https://localhost:6443", None, {"HTTPS_PROXY": "http://p"}, None),
    ("https://k.example:6443", "socks5://s:1080", {"NO_PROXY": "*"}, "socks5://s:1080"),
    ("https://k.example:6443", None, {}, None),
])
def test_the_proxy_kubectl_would_use(server: str, proxy_url: str | None, env: dict,
                                     expected: str | None) -> None:
    assert proxy_for(server, proxy_url, env) == expected
