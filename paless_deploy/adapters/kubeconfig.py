"""Kubeconfig files read as kubectl reads them: merged, one context chosen, credentials found.

Part of the door to Kubernetes (only `adapters.kube` imports it): it reads files and runs
exec credential plugins, and opens no connection. It replaces the `kubernetes` package's
loader on the deploy path, which imports requests, oauthlib, pydantic and every typed API
(about 0.3 s of every run). Legacy `auth-provider` users (gcp, oidc, azure) are the one
case still handed to that loader (see `adapters.kube`).
"""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from paless_deploy.core.configuration.durations import span
from paless_deploy.core.errors import ClusterError

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_REFRESH_SKEW_S = 10  # refresh an exec credential this long before it expires
TOKEN_FILE_REREAD_S = 60  # client-go re-reads a tokenFile once a minute
# A plugin that cannot prompt and has not answered in a minute never will (kubectl waits
# forever); one that may prompt on the terminal gets what is left of the run's --timeout.
EXEC_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Deadline:
    """When the run must be over (`--timeout`), for the outside programs the door runs."""

    at: float | None = None  # time.monotonic() of the end; None: no overall limit
    timeout_s: float | None = None  # the --timeout it comes from, for messages

    def plugin_limit(self, interactive: bool, now: float) -> tuple[float | None, str]:
        """How long an exec plugin may run from `now`, and what sets that limit."""
        left = None if self.at is None else max(0.1, self.at - now)
        own = None if interactive else EXEC_TIMEOUT_S
        if left is not None and (own is None or left <= own):
            shown = span(self.timeout_s) if self.timeout_s else span(left)
            return left, f"--timeout {shown}"
        if own is None:
            return None, "none: it may prompt on the terminal"
        return own, f"the {span(EXEC_TIMEOUT_S)} a plugin that cannot prompt is given"


@dataclass(frozen=True)
class Credentials:
    """What authenticates our requests: a bearer token, basic auth, a client certificate."""

    token: str | None = None
    basic: tuple[str, str] | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    expires_at: float | None = None  # epoch seconds (exec credentials)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at - EXEC_REFRESH_SKEW_S


@dataclass(frozen=True)
class ClusterAccess:
    """One context of the merged kubeconfig: where the API server is and how to reach it."""

    where: str  # the file(s), for messages
    context: str
    server: str
    ca_pem: bytes | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None
    user: Mapping[str, Any] = field(default_factory=dict)  # the raw user entry
    user_dir: Path = Path(".")  # relative paths of the user entry start here
    cluster: Mapping[str, Any] = field(default_factory=dict)  # raw, for provideClusterInfo

    @property
    def exec_spec(self) -> Mapping[str, Any] | None:
        spec = self.user.get("exec")
        return spec if isinstance(spec, Mapping) else None

    @property
    def auth_provider(self) -> Mapping[str, Any] | None:
        spec = self.user.get("auth-provider")
        return spec if isinstance(spec, Mapping) else None


@dataclass(frozen=True)
class _Entry:
    """A named cluster, user or context, and the directory of the file that defined it."""

    fields: Mapping[str, Any]
    base: Path

    def get(self, key: str) -> Any:
        return self.fields.get(key)


def _bad(where: str, detail: str, hint: str = "") -> ClusterError:
    return ClusterError(f"The kubeconfig {where} cannot be used: {detail}.",
                        hint or "Check the file, or pick a context with --context.",
                        code="bad-kubeconfig")


def _read(path: Path) -> Mapping[str, Any]:
    """One kubeconfig file as a mapping ({} when empty); what makes it not one, in words."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        why = getattr(exc, "problem", None) or getattr(exc, "reason", None) or "unreadable"
        raise _unreadable(path, f"{path} is not YAML{at} ({why})") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc).splitlines()[0][:200] \
            if str(exc) else type(exc).__name__
        raise _unreadable(path, f"{path}: {detail}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        held = "a list" if isinstance(data, list) else "plain text"
        raise _unreadable(path, f"{path} holds {held}, not a kubeconfig (a mapping of "
                                "clusters, contexts and users)")
    return data


def _unreadable(path: Path, detail: str) -> ClusterError:
    return ClusterError(f"The kubeconfig {path} cannot be read: {detail}.",
                        "Check that the file is a valid kubeconfig "
                        "(`kubectl config view` reads it the same way).",
                        code="bad-kubeconfig")


def load_access(paths: tuple[Path, ...], context: str | None) -> ClusterAccess:
    """The chosen context of the files merged as kubectl merges KUBECONFIG: for each named
    cluster, user and context the first file defining it wins, and so does the first
    current-context. Relative paths count from the directory of the file that names them.
    ClusterError (exit 4, code bad-kubeconfig) names what is missing and the fix."""
    where = os.pathsep.join(str(p) for p in paths)
    named: dict[str, dict[str, _Entry]] = {"clusters": {}, "users": {}, "contexts": {}}
    current = None
    empty = 0
    for path in paths:
        data = _read(path)
        empty += not data
        current = current or data.get("current-context") or None
        for section, inner in (("clusters", "cluster"), ("users", "user"),
                               ("contexts", "context")):
            for item in data.get(section) or []:
                if not isinstance(item, Mapping) or not item.get("name"):
                    continue
                if str(item["name"]) in named[section]:
                    continue
                named[section][str(item["name"])] = _Entry(item.get(inner) or {},
                                                           path.resolve().parent)
    chosen = context or current
    if empty == len(paths):
        raise _bad(where, "the file is empty" if len(paths) == 1 else "every file is empty",
                   "Point --kubeconfig or KUBECONFIG at your cluster's kubeconfig "
                   "(k3s writes /etc/rancher/k3s/k3s.yaml).")
    if not chosen:
        raise _bad(where, "it sets no current-context",
                   "Pick a context with --context (`kubectl config get-contexts` lists them).")
    ctx = named["contexts"].get(str(chosen))
    if ctx is None:
        raise _bad(where, f"context {chosen!r} is not in it",
                   "Pick an existing context with --context (`kubectl config get-contexts` "
                   "lists them).")
    cluster = named["clusters"].get(str(ctx.get("cluster") or ""))
    if cluster is None:
        raise _bad(where, f"context {chosen!r} names cluster {ctx.get('cluster')!r}, "
                          "which is not in it")
    user_name = str(ctx.get("user") or "")
    user = named["users"].get(user_name) if user_name else _Entry({}, cluster.base)
    if user is None:
        raise _bad(where, f"context {chosen!r} names user {user_name!r}, which is not in it")
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise _bad(where, f"cluster {ctx.get('cluster')!r} has no server")
    insecure = bool(cluster.get("insecure-skip-tls-verify"))
    ca = None if insecure else _file_or_data(where, cluster.fields, "certificate-authority",
                                             cluster.base)
    return ClusterAccess(where=where, context=str(chosen), server=server, ca_pem=ca,
                         insecure=insecure,
                         tls_server_name=cluster.get("tls-server-name") or None,
                         proxy_url=cluster.get("proxy-url") or None, user=dict(user.fields),
                         user_dir=user.base, cluster=dict(cluster.fields))


def _file_or_data(where: str, entry: Mapping[str, Any], key: str, base: Path) -> bytes | None:
    """`<key>-data` (base64) wins over `<key>` (a file, relative to the kubeconfig's dir)."""
    data = entry.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=False)
        except ValueError:
            raise _bad(where, f"{key}-data is not base64") from None
    name = entry.get(key)
    if not name:
        return None
    path = base / Path(str(name)).expanduser()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _bad(where, f"{key} {path}: {exc.strerror or exc}") from None


def static_credentials(access: ClusterAccess) -> Credentials:
    """Token (or tokenFile), basic auth and client certificate of the user entry."""
    user, where, base = access.user, access.where, access.user_dir
    token = user.get("token") or None
    if not token and user.get("tokenFile"):
        token = read_token_file(where, base / str(user["tokenFile"]))
    basic = None
    if user.get("username") and user.get("password"):
        basic = (str(user["username"]), str(user["password"]))
    cert = _file_or_data(where, user, "client-certificate", base)
    key = _file_or_data(where, user, "client-key", base)
    if bool(cert) != bool(key):
        raise _bad(where, "the user has a client certificate without its key, or a key "
                          "without its certificate")
    return Credentials(token=str(token) if token else None, basic=basic, cert_pem=cert,
                       key_pem=key)


def read_token_file(where: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise _bad(where, f"tokenFile {path}: {exc.strerror or exc}") from None


def exec_credentials(access: ClusterAccess, deadline: Deadline = Deadline()) -> Credentials:
    """Run the user's exec credential plugin, as kubectl does, and read its ExecCredential.

    The plugin gets KUBERNETES_EXEC_INFO (and the cluster with provideClusterInfo), the
    terminal when interactive, and may answer a token or a client certificate and key,
    with an expiry after which it is run again. It runs within `deadline` (ClusterError
    `exec-timeout` naming it and how long it ran when it does not answer in time), and is
    stopped with its children on a timeout or Ctrl-C."""
    spec = access.exec_spec or {}
    where = access.where
    api_version = str(spec.get("apiVersion") or "")
    command = str(spec.get("command") or "")
    if api_version not in EXEC_API_VERSIONS:
        raise _bad(where, f"the exec plugin's apiVersion {api_version or '(none)'!r} is not "
                          f"one of {', '.join(EXEC_API_VERSIONS)}")
    if not command:
        raise _bad(where, "the exec plugin has no command")
    if os.sep in command and not os.path.isabs(command):
        command = str(access.user_dir / command)  # kubectl: relative to the kubeconfig
    mode = str(spec.get("interactiveMode") or "IfAvailable")
    interactive = mode != "Never" and sys.stdin.isatty()
    if mode == "Always" and not interactive:
        raise ClusterError(
            f"The exec credential plugin {command} of {where} needs a terminal "
            "(interactiveMode: Always) and this run has none.",
            "Log in once from a terminal (e.g. run `kubectl get ns`), or use a kubeconfig "
            "whose credentials need no prompt in CI.", code="unauthorised")
    info: dict[str, Any] = {"apiVersion": api_version, "kind": "ExecCredential",
                            "spec": {"interactive": interactive}}
    if spec.get("provideClusterInfo"):
        info["spec"]["cluster"] = _cluster_info(access)
    env = dict(os.environ)
    for item in spec.get("env") or []:
        if isinstance(item, Mapping) and item.get("name"):
            env[str(item["name"])] = str(item.get("value") or "")
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    argv = [command, *[str(a) for a in spec.get("args") or []]]
    limit, limited_by = deadline.plugin_limit(interactive, time.monotonic())
    try:
        code, out, stderr = _run_plugin(argv, env, interactive, limit)
    except OSError as exc:
        hint = str(spec.get("installHint") or "") or (
            f"Install {command} or fix the exec command of the user in {where}.")
        raise ClusterError(f"The exec credential plugin {command} of {where} cannot run: "
                           f"{exc.strerror or exc}.", hint, code="unauthorised") from None
    except subprocess.TimeoutExpired:
        shown = span(math.ceil(limit or 0))
        raise ClusterError(
            f"The exec credential plugin {command} of {where} did not answer within {shown} "
            f"and was stopped (the limit: {limited_by}).",
            f"Run `{' '.join(argv)}` yourself to see where it waits (a login it wants, a "
            "service it cannot reach); log in first from a terminal, or give the command a "
            "longer --timeout.", code="exec-timeout") from None
    if code != 0:
        raise ClusterError(
            f"The exec credential plugin {command} of {where} exited {code}"
            + (f": {stderr[-400:]}" if stderr else "") + ".",
            f"Run `{' '.join(argv)}` yourself to see why (expired login?).",
            code="unauthorised")
    return _parse_exec_output(where, command, api_version, out)


def auth_provider_header(kubeconfig: str, access: ClusterAccess,
                         deadline: Deadline = Deadline()) -> str:
    """The Authorization header of a legacy auth-provider user (gcp, oidc, azure), read by
    the `kubernetes` package's loader in a process of its own (authprovider.py), within
    `deadline` as an exec plugin is: a provider that hangs (its cmd-path, its token
    endpoint) is stopped with what it started, and named."""
    import paless_deploy

    name = str((access.auth_provider or {}).get("name") or "(unnamed)")
    what = f"The auth-provider {name} of the kubeconfig {kubeconfig}"
    root = str(Path(paless_deploy.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    argv = [sys.executable, "-m", "paless_deploy.adapters.kube.authprovider", kubeconfig,
            access.context]
    limit, limited_by = deadline.plugin_limit(False, time.monotonic())
    try:
        code, out, stderr = _run_plugin(argv, env, False, limit)
    except subprocess.TimeoutExpired:
        raise ClusterError(
            f"{what} did not answer within {span(math.ceil(limit or 0))} and was stopped "
            f"(the limit: {limited_by}).",
            "Log in again with the provider's tool (its token may need a refresh it cannot "
            "get from here), give the command a longer --timeout, or use a kubeconfig with "
            "an exec plugin (the auth-provider mechanism is deprecated).",
            code="exec-timeout") from None
    try:
        answer = json.loads(out) if code == 0 else {}
    except ValueError:
        answer = {}
    if not isinstance(answer, dict) or ("header" not in answer and "error" not in answer):
        answer = {"error": stderr.splitlines()[-1][:200] if stderr else f"exit {code}"}
    if answer.get("error") or not answer.get("header"):
        detail = f": {answer['error']}" if answer.get("error") else " (no token)"
        raise ClusterError(f"{what} gave no credentials{detail}.",
                           "Log in again with the provider's tool, or use a kubeconfig with "
                           "an exec plugin (the auth-provider mechanism is deprecated).",
                           code="unauthorised")
    return str(answer["header"])


def _run_plugin(argv: list[str], env: dict[str, str], interactive: bool,
                limit: float | None) -> tuple[int, bytes, str]:
    """Run a plugin for at most `limit` seconds: (exit code, stdout, stderr). On a timeout
    or an interrupt it is killed with whatever it started (its own process group, unless it
    talks to the terminal), so that nothing it runs outlives us."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                            stderr=None if interactive else subprocess.PIPE,
                            stdin=None if interactive else subprocess.DEVNULL,
                            process_group=None if interactive else 0)
    try:
        out, err = proc.communicate(timeout=limit)
    except BaseException:  # the timeout, Ctrl-C, SIGTERM: stop it, then say why
        _stop(proc, group=not interactive)
        raise
    return proc.returncode, out or b"", (err or b"").decode("utf-8", errors="replace").strip()


def _stop(proc: subprocess.Popen[bytes], group: bool) -> None:
    import signal

    try:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    proc.communicate()


def _cluster_info(access: ClusterAccess) -> dict[str, Any]:
    cluster = access.cluster
    info: dict[str, Any] = {"server": access.server}
    if access.ca_pem:
        info["certificate-authority-data"] = base64.b64encode(access.ca_pem).decode()
    for key in ("tls-server-name", "insecure-skip-tls-verify", "proxy-url",
                "disable-compression"):
        if key in cluster:
            info[key] = cluster[key]
    for ext in cluster.get("extensions") or []:
        if isinstance(ext, Mapping) and ext.get("name") == "client.authentication.k8s.io/exec":
            info["config"] = ext.get("extension")
    return info


def _parse_exec_output(where: str, command: str, api_version: str, out: bytes) -> Credentials:
    def bad(detail: str) -> ClusterError:
        return ClusterError(f"The exec credential plugin {command} of {where} answered "
                            f"{detail}.", "Update the plugin, or check its configuration.",
                            code="unauthorised")

    try:
        data = json.loads(out or b"{}")
    except ValueError:
        raise bad("something that is not JSON") from None
    if not isinstance(data, Mapping) or data.get("kind") != "ExecCredential":
        raise bad("no ExecCredential")
    if data.get("apiVersion") != api_version:
        raise bad(f"apiVersion {data.get('apiVersion')!r} instead of {api_version!r}")
    status = data.get("status") or {}
    token = status.get("token") or None
    cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
    if not token and not (cert and key):
        raise bad("neither a token nor a client certificate and key")
    expires = None
    if status.get("expirationTimestamp"):
        try:
            expires = datetime.fromisoformat(
                str(status["expirationTimestamp"])).timestamp()
        except ValueError:
            raise bad(f"an unreadable expirationTimestamp {status['expirationTimestamp']!r}"
                      ) from None
    return Credentials(token=str(token) if token else None,
                       cert_pem=str(cert).encode() if cert else None,
                       key_pem=str(key).encode() if key else None, expires_at=expires)


class CredentialSource:
    """The credentials of one user, current: exec credentials are run again when they
    expire (or when the server refused them), a tokenFile is re-read once a minute."""

    def __init__(self, access: ClusterAccess, clock: Any = time.time,
                 deadline: Deadline = Deadline()) -> None:
        self.access = access
        self._clock = clock
        self._deadline = deadline
        self._static = static_credentials(access)
        self._exec: Credentials | None = None
        self._token_read_at = clock()

    @property
    def uses_exec(self) -> bool:
        # kubectl's order: a static token wins over an exec plugin
        return self.access.exec_spec is not None and not self._static.token

    def current(self) -> Credentials:
        if self.uses_exec:
            if self._exec is None or self._exec.expired(self._clock()):
                self._exec = exec_credentials(self.access, self._deadline)
            static = self._static
            return Credentials(token=self._exec.token,
                               basic=None if self._exec.token else static.basic,
                               cert_pem=self._exec.cert_pem or static.cert_pem,
                               key_pem=self._exec.key_pem or static.key_pem,
                               expires_at=self._exec.expires_at)
        token_file = self.access.user.get("tokenFile")
        if (token_file and not self.access.user.get("token")
                and self._clock() - self._token_read_at >= TOKEN_FILE_REREAD_S):
            token = read_token_file(self.access.where, self.access.user_dir / str(token_file))
            self._static = Credentials(token=token, basic=self._static.basic,
                                       cert_pem=self._static.cert_pem,
                                       key_pem=self._static.key_pem)
            self._token_read_at = self._clock()
        return self._static

    def refused(self) -> bool:
        """The server answered 401: forget an exec credential; True when a retry may help."""
        if self.uses_exec:
            self._exec = None
            return True
        return False
