"""Registries spoken to as the Docker engine does, against real registries and the engine.

A name that resolves to loopback over plain HTTP (the `REGISTRY=<host-ip>:5000` case of a
k3s laptop, which asked HTTPS and failed before), TLS on loopback (insecure for Docker:
HTTPS without verification), TLS under a name Docker treats as secure (verified with the
CA of certs.d, refused without it) and a registry behind a login whose second push is
skipped. "Pushed" and "skipped" are read from the engine's event stream and the
registry, not from the tool's words.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paless_deploy.adapters.registry import forget_endpoints
from tests.fixtures.docker import _free_port
from tests.fixtures.registries import (
    docker_trusts,
    free_port_on,
    hosts_aliases,
    make_certificates,
    secure_loopback_address,
    start_registry,
)
from tests.integration.test_build_push import image_events, make_project, run

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def aliases() -> Iterator[dict[str, str]]:
    """Names of this machine's loopback addresses (IPv4, and IPv6 when the engine would
    treat ::1 as secure), for the whole module: the engine's resolver sees them too."""
    secure = secure_loopback_address()
    with hosts_aliases(["127.0.0.1"] + ([secure] if secure else [])) as names:
        yield names


@pytest.fixture(autouse=True)
def fresh_endpoints(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test decides anew how to reach its registries, with a Docker config of its own."""
    forget_endpoints()
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text("{}")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    yield
    forget_endpoints()


def push_twice(capsys: pytest.CaptureFixture[str], docker_client: Any, project: Path,
               registry: str, project_name: str) -> dict[str, Any]:
    """Push, then push again: the first uploads, the second neither builds nor pushes."""
    args = ("--project-dir", str(project), "--registry", registry, "push")
    code, doc, err = run(capsys, *args)
    assert code == 0, err
    (first,) = doc["images"]
    assert (first["action"], first["pushed"]) == ("pushed", True)
    assert first["ref"].startswith(f"{registry}/{project_name}-app:")
    assert first["digest"] and first["digest"].startswith("sha256:")
    since = time.time()
    code, doc, err = run(capsys, *args)
    until = time.time() + 0.5
    assert code == 0, err
    (second,) = doc["images"]
    assert (second["action"], second["built"], second["pushed"]) == ("skipped", False, False)
    assert second["digest"] == first["digest"]
    assert image_events(docker_client, since, until, project_name) == []
    return first


def test_name_resolving_to_loopback_speaks_plain_http(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        docker_client: Any, registry: Any, project_name: str,
        aliases: dict[str, str]) -> None:
    """REGISTRY=<a name of this machine>:5000 over plain HTTP: Docker treats it as insecure
    (it resolves into 127.0.0.0/8), so do we; before, the tool asked HTTPS and exited 3."""
    project = make_project(tmp_path / "p", {"app": "v1"})
    monkeypatch.setenv("PROJECT_NAME", project_name)
    port = registry.host.rsplit(":", 1)[1]
    name = aliases["127.0.0.1"]
    first = push_twice(capsys, docker_client, project, f"{name}:{port}", project_name)
    assert registry.manifest_digest(f"{project_name}-app", first["tag"]) == first["digest"]


def test_tls_registry_on_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str], docker_client: Any,
                                  project_name: str) -> None:
    """TLS on a loopback port: insecure for Docker (HTTPS without verification); the tool
    speaks HTTPS to it too and skips the second push."""
    certs = make_certificates(tmp_path / "certs", ["localhost", "127.0.0.1"])
    host = f"127.0.0.1:{_free_port()}"
    reg = start_registry(tmp_path / "tls-registry", host, tls=certs)
    try:
        with docker_trusts(host, certs.ca):
            project = make_project(tmp_path / "p", {"app": "v1"})
            monkeypatch.setenv("PROJECT_NAME", project_name)
            push_twice(capsys, docker_client, project, host, project_name)
        assert "http: TLS handshake error" not in (reg.workdir / "registry.log").read_text()
    finally:
        reg.stop()


def test_tls_registry_under_a_secure_name_needs_the_certs_d_ca(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        docker_client: Any, project_name: str, aliases: dict[str, str]) -> None:
    """A name Docker treats as secure: its certificate is verified with the CAs of
    /etc/docker/certs.d/<host>. Without the CA: exit 3 naming the directory, before any
    build; with it: pushed, and the second push skipped."""
    address = secure_loopback_address()
    if address is None:
        pytest.skip("every loopback address is insecure for this engine (its insecure "
                    "CIDRs cover ::1): no name Docker would verify can be served locally")
    project = make_project(tmp_path / "p", {"app": "v1"})
    monkeypatch.setenv("PROJECT_NAME", project_name)
    name = aliases[address]
    certs = make_certificates(tmp_path / "certs", [name])
    port = free_port_on(address)
    reg = start_registry(tmp_path / "tls-registry", f"[{address}]:{port}", tls=certs)
    host = f"{name}:{port}"
    try:
        code, doc, err = run(capsys, "--project-dir", str(project), "--registry", host, "push")
        assert code == 3, err
        assert doc["errors"][0]["code"] == "registry-tls"
        assert f"/etc/docker/certs.d/{host}" in err and "Traceback" not in err
        assert doc["images"] == []  # refused before anything was built
        with docker_trusts(host, certs.ca):
            forget_endpoints()
            push_twice(capsys, docker_client, project, host, project_name)
    finally:
        reg.stop()


def test_login_registry_second_push_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str],
                                            docker_client: Any, project_name: str) -> None:
    """htpasswd: with the login of `docker login` (the Docker config), the tag is asked with
    those credentials after the 401, so an unchanged image is not pushed again."""
    import bcrypt

    workdir = tmp_path / "auth-registry"
    workdir.mkdir()
    hashed = bcrypt.hashpw(b"s3cret-pass", bcrypt.gensalt()).decode()
    (workdir / "htpasswd").write_text(f"ci-bot:{hashed}\n")
    host = f"127.0.0.1:{_free_port()}"
    reg = start_registry(workdir, host, extra_config=(
        f"auth:\n  htpasswd:\n    realm: paless-test\n    path: {workdir / 'htpasswd'}\n"))
    try:
        config = Path(tmp_path / "docker-config" / "config.json")
        config.write_text(json.dumps({"auths": {host: {
            "auth": base64.b64encode(b"ci-bot:s3cret-pass").decode()}}}))
        project = make_project(tmp_path / "p", {"app": "v1"})
        monkeypatch.setenv("PROJECT_NAME", project_name)
        push_twice(capsys, docker_client, project, host, project_name)
        out = capsys.readouterr()
        assert "s3cret" not in out.out + out.err

        # the wrong password: one paragraph, exit 3, and the password nowhere
        forget_endpoints()
        config.write_text(json.dumps({"auths": {host: {
            "auth": base64.b64encode(b"ci-bot:wrong-pass").decode()}}}))
        (project / "app" / "file.txt").write_text("v2")
        code, doc, err = run(capsys, "--project-dir", str(project), "--registry", host, "push")
        assert code == 3, err
        assert doc["errors"][0]["code"] == "registry-auth"
        assert f"docker login {host}" in err and "wrong-pass" not in err + json.dumps(doc)
    finally:
        reg.stop()


def test_plain_http_registry_under_a_secure_name_says_insecure_registries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        project_name: str, aliases: dict[str, str]) -> None:
    """Plain HTTP under a name Docker treats as secure: the engine would refuse to push, so
    the tool says so at once (exit 3) with the daemon.json fix, before building."""
    address = secure_loopback_address()
    if address is None:
        pytest.skip("every loopback address is insecure for this engine")
    port = free_port_on(address)
    reg = start_registry(tmp_path / "plain-registry", f"[{address}]:{port}")
    host = f"{aliases[address]}:{port}"
    try:
        project = make_project(tmp_path / "p", {"app": "v1"})
        monkeypatch.setenv("PROJECT_NAME", project_name)
        code, doc, err = run(capsys, "--project-dir", str(project), "--registry", host, "push")
        assert code == 3, err
        assert doc["errors"][0]["code"] == "registry-insecure"
        assert f'"insecure-registries": ["{host}"]' in err and "Traceback" not in err
        assert doc["images"] == []
    finally:
        reg.stop()


def test_token_registry_second_push_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str],
                                            docker_client: Any, project_name: str) -> None:
    """A registry behind a token service (`auth: token`, as Docker Hub and most hosted
    registries): the 401's Bearer challenge is answered with a token for the pull scope,
    fetched with the Docker config's login, so the second push is skipped."""
    from tests.fixtures.registries import TokenService

    workdir = tmp_path / "token-registry"
    workdir.mkdir()
    tokens = TokenService(workdir, "paless-test-registry", "paless-test-issuer", "ci-bot",
                          "t0ken-pass").start()
    host = f"127.0.0.1:{_free_port()}"
    reg = start_registry(workdir, host, extra_config=tokens.registry_config())
    try:
        (tmp_path / "docker-config" / "config.json").write_text(json.dumps({"auths": {host: {
            "auth": base64.b64encode(b"ci-bot:t0ken-pass").decode()}}}))
        project = make_project(tmp_path / "p", {"app": "v1"})
        monkeypatch.setenv("PROJECT_NAME", project_name)
        before = len(tokens.asked)
        push_twice(capsys, docker_client, project, host, project_name)
        pull_only = f"repository:{project_name}-app:pull"
        assert pull_only in tokens.asked[before:]  # ours: the engine asks for pull,push
        out = capsys.readouterr()
        assert "t0ken" not in out.out + out.err
    finally:
        reg.stop()
        tokens.stop()
