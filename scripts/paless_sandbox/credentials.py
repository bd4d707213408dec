"""Who may talk to whom: the sandbox CA and the certificates it issues, the service-account
key pair, the API server's static tokens, and the kubeconfigs built from them."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
from pathlib import Path

from paless_sandbox.layout import (
    APISERVER_PORT,
    BRIDGE_IP,
    COMPONENT_KUBECONFIGS,
    KUBECONFIG,
    PKI,
    REAL_NODE,
    RESTRICTED_KUBECONFIG,
    RESTRICTED_NAMESPACE,
)
from paless_sandbox.messages import SandboxError, say

# name -> (subject, extensions) of the certificates the sandbox CA issues
CERTIFICATES = {
    "apiserver": ("/CN=kube-apiserver",
                  ("subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
                   "DNS:kubernetes.default,DNS:kubernetes.default.svc")),
    # the API server calls the real node's kubelet (logs, exec, port-forward) with it
    "apiserver-kubelet-client": ("/O=system:masters/CN=kube-apiserver-kubelet-client",
                                 "extendedKeyUsage=clientAuth"),
    "kubelet-client": (f"/O=system:nodes/CN=system:node:{REAL_NODE}",
                       "extendedKeyUsage=clientAuth"),
    "kubelet-serving": (f"/CN={REAL_NODE}",
                        (f"subjectAltName=IP:{BRIDGE_IP},DNS:{REAL_NODE}\n"
                         "extendedKeyUsage=serverAuth")),
    "kube-proxy-client": ("/CN=system:kube-proxy", "extendedKeyUsage=clientAuth"),
}

# (user, id, groups) of the static tokens; the token itself is drawn when the file is written
TOKEN_USERS = (
    ("admin", "admin", "system:masters"),
    # system:masters: the controllers act with the manager's own identity
    ("system:kube-controller-manager", "kcm", "system:masters"),
    ("system:kube-scheduler", "scheduler", ""),
    ("restricted", "restricted", ""),
)

# (kubeconfig, user, namespace, client certificate) of each user the sandbox writes one for
KUBECONFIGS: tuple[tuple[Path, str, str | None, str | None], ...] = (
    (COMPONENT_KUBECONFIGS / "kcm", "system:kube-controller-manager", None, None),
    (COMPONENT_KUBECONFIGS / "scheduler", "system:kube-scheduler", None, None),
    (KUBECONFIG, "admin", None, None),
    (RESTRICTED_KUBECONFIG, "restricted", RESTRICTED_NAMESPACE, None),
    (COMPONENT_KUBECONFIGS / "kubelet", f"system:node:{REAL_NODE}", None, "kubelet-client"),
    (COMPONENT_KUBECONFIGS / "kube-proxy", "system:kube-proxy", None, "kube-proxy-client"),
)


def openssl(*args: str) -> None:
    """Run openssl; a failure names the subcommand and what openssl said."""
    res = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SandboxError(f"openssl {' '.join(args[:2])} failed: {res.stderr.strip()}")


def valid_cert(path: Path) -> bool:
    """Whether the certificate at `path` is still valid in a day."""
    return subprocess.run(["openssl", "x509", "-in", str(path), "-noout", "-checkend", "86400"],
                          capture_output=True, check=False).returncode == 0


def ensure_pki() -> None:
    """CA, certificates it issues, service-account key pair, static tokens."""
    PKI.mkdir(parents=True, exist_ok=True)
    ensure_ca()
    for name, (subject, extensions) in CERTIFICATES.items():
        ensure_certificate(name, subject, extensions)
    sa_key, sa_pub = PKI / "sa.key", PKI / "sa.pub"
    if not (sa_key.exists() and sa_pub.exists() and sa_pub.stat().st_size > 0):
        openssl("genrsa", "-out", str(sa_key), "2048")
        openssl("rsa", "-in", str(sa_key), "-pubout", "-out", str(sa_pub))
    tokens = PKI / "tokens.csv"
    if not tokens.exists() or not tokens_complete(tokens.read_text()):
        tokens.write_text(tokens_csv([secrets.token_hex(16) for _ in TOKEN_USERS]))
        tokens.chmod(0o600)


def ensure_ca() -> None:
    """The sandbox CA; a new one invalidates every certificate the old one issued."""
    ca, ca_key = PKI / "ca.crt", PKI / "ca.key"
    if ca.exists() and ca_key.exists() and valid_cert(ca):
        return
    say("creating the sandbox CA")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
            "-out", str(ca), "-days", "3650", "-subj", "/CN=paless-sandbox-ca")
    for name in CERTIFICATES:
        (PKI / f"{name}.crt").unlink(missing_ok=True)


def ensure_certificate(name: str, subject: str, extensions: str) -> None:
    """A key and a certificate the CA signed for `subject`, unless a valid one exists."""
    crt, key = PKI / f"{name}.crt", PKI / f"{name}.key"
    if crt.exists() and key.exists() and valid_cert(crt):
        return
    ext = PKI / f"{name}.ext"
    ext.write_text(extensions + "\n")
    csr = PKI / f"{name}.csr"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", subject)
    openssl("x509", "-req", "-in", str(csr), "-CA", str(PKI / "ca.crt"),
            "-CAkey", str(PKI / "ca.key"), "-CAcreateserial", "-out", str(crt), "-days", "3650",
            "-extfile", str(ext))
    key.chmod(0o600)


def tokens_csv(tokens: list[str]) -> str:
    """The API server's static token file: one `token,user,id,"groups"` row per user."""
    return "".join(f'{token},{user},{uid},"{groups}"\n'
                   for token, (user, uid, groups) in zip(tokens, TOKEN_USERS, strict=True))


def parse_tokens(text: str) -> dict[str, str]:
    """User name -> bearer token, from the static token file's text."""
    out = {}
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) >= 2:
            out[parts[1]] = parts[0]
    return out


def tokens_complete(text: str) -> bool:
    """Whether a token file has every user (files of older sandboxes lack some)."""
    return len(parse_tokens(text)) >= 4 and "kcm,\"system:masters" in text


def read_tokens() -> dict[str, str]:
    """User name -> bearer token from the API server's static token file."""
    try:
        return parse_tokens((PKI / "tokens.csv").read_text())
    except OSError:
        return {}


def admin_token() -> str | None:
    """The admin's bearer token (health probes of the API server need it)."""
    return read_tokens().get("admin")


def kubeconfig_document(user: str, ca_data: str, credentials: dict[str, str],
                        namespace: str | None = None) -> dict[str, object]:
    """A kubeconfig for `user` on the sandbox's API server."""
    ctx = {"cluster": "paless-sandbox", "user": user}
    if namespace:
        ctx["namespace"] = namespace
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "paless-sandbox",
        "clusters": [{"name": "paless-sandbox", "cluster": {
            "server": f"https://127.0.0.1:{APISERVER_PORT}",
            "certificate-authority-data": ca_data}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": "paless-sandbox", "context": ctx}],
    }


def write_kubeconfig(path: Path, user: str, namespace: str | None = None,
                     certificate: str | None = None) -> None:
    """A kubeconfig for `user`: its static token, or the client `certificate` the CA issued."""
    ca = base64.b64encode((PKI / "ca.crt").read_bytes()).decode()
    credentials = ({"client-certificate": str(PKI / f"{certificate}.crt"),
                    "client-key": str(PKI / f"{certificate}.key")} if certificate
                   else {"token": read_tokens()[user]})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(kubeconfig_document(user, ca, credentials, namespace),
                              indent=2))  # JSON is YAML
    tmp.chmod(0o600)
    tmp.replace(path)


def write_component_kubeconfigs() -> None:
    """The controllers', the scheduler's, the admin's, the restricted user's and the real
    node's kubeconfigs."""
    COMPONENT_KUBECONFIGS.mkdir(parents=True, exist_ok=True)
    for path, user, namespace, certificate in KUBECONFIGS:
        write_kubeconfig(path, user, namespace, certificate)
