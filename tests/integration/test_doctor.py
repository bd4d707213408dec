"""doctor against the sandbox: each check shown failing, and passing where the sandbox
provides the thing (Docker, registry, kustomize, IngressClass traefik, default StorageClass)."""

from __future__ import annotations

import socket
import time
import uuid

import pytest

from paless_deploy.commands.doctor import run_doctor


def run(sandbox, tmp_path, *, kubeconfig=None, namespace="paless-doctor", **values):
    from paless_deploy.core.configuration.context import ConsoleSettings, RunContext
    from paless_deploy.stages.project import load_config

    settings = {"PALESS_NAMESPACE": namespace, "REGISTRY": "127.0.0.1:5000", **values}
    config = load_config(tmp_path, [], settings, environ={}, validate=False)
    ctx = RunContext(config=config, started_monotonic=time.monotonic(),
                      started_at=time.time(), output="json", console=ConsoleSettings(quiet=True),
                     kubeconfig=str(kubeconfig or sandbox.kubeconfig))
    return run_doctor(ctx)


def by_prefix(result, prefix: str) -> dict:
    found = [c for c in result.extra["checks"] if c["name"].startswith(prefix)]
    assert len(found) == 1, (prefix, result.extra["checks"])
    return found[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.docker
@pytest.mark.cluster
def test_everything_the_sandbox_provides_passes(sandbox, registry, docker_client, tmp_path):
    result = run(sandbox, tmp_path, REGISTRY=registry.host)
    for prefix in ("Docker engine", "registry ", "kustomize", "cluster", "authorised in",
                   "kubectl version skew", "IngressClass traefik", "default StorageClass",
                   "StorageClass local-path"):
        check = by_prefix(result, prefix)
        assert check["ok"], check
    assert "local-path" in by_prefix(result, "default StorageClass")["detail"]
    # What the sandbox cannot provide is shown failing, as a warning only:
    metrics = by_prefix(result, "metrics-server")
    assert (metrics["ok"], metrics["required"], metrics["status"]) == (False, False, "warn")
    nodes = by_prefix(result, "nodes can pull from the registry")  # loopback registry, 3 kwok nodes
    assert not nodes["ok"] and "registries.yaml" in nodes["fix"]
    assert result.exit_code == 0, result.errors


@pytest.mark.cluster
def test_machine_checks_fail_with_a_fix(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free_port()}")
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))  # no kubectl, no kustomize
    result = run(sandbox, tmp_path, REGISTRY=f"127.0.0.1:{free_port()}",
                    INGRESS_CLASS="no-such-class", STORAGE_CLASS="no-such-class")
    failed_required = {c["name"].split(" ")[0] for c in result.extra["checks"]
                       if c["status"] == "FAIL"}
    assert {"Docker", "registry", "kustomize", "StorageClass"} <= failed_required
    for check in result.extra["checks"]:
        if not check["ok"]:
            assert check["fix"], check
    assert "PATH" in by_prefix(result, "kustomize")["detail"]
    skew = by_prefix(result, "kubectl version skew")
    assert not skew["ok"] and not skew["required"] and "not on PATH" in skew["detail"]
    ingress = by_prefix(result, "IngressClass no-such-class")
    assert ingress["status"] == "warn" and "traefik" in ingress["detail"]
    assert result.exit_code == 1 and result.result == "failed"
    assert {e.resource.split(" ")[0] for e in result.errors} == failed_required


@pytest.mark.cluster
def test_unreachable_cluster_fails_required(sandbox, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""
apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:{free_port()}"}}}}]
users: [{{name: u, user: {{token: nothing}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
current-context: c
""")
    result = run(sandbox, tmp_path, kubeconfig=kubeconfig)
    cluster = by_prefix(result, "cluster")
    assert cluster["status"] == "FAIL" and "unreachable" in cluster["detail"]
    assert result.exit_code == 1


@pytest.mark.cluster
def test_authorisation_in_the_namespace(sandbox, tmp_path):
    restricted = sandbox.restricted_kubeconfig
    if restricted is None or not restricted.exists():
        pytest.skip("no restricted kubeconfig in this sandbox")
    result = run(sandbox, tmp_path, kubeconfig=restricted, namespace="default")
    auth = by_prefix(result, "authorised in default")
    assert auth["status"] == "FAIL" and "not allowed" in auth["detail"] and auth["fix"]
    assert result.exit_code == 1

    result = run(sandbox, tmp_path, kubeconfig=restricted,
                    namespace=sandbox.restricted_namespace)
    assert by_prefix(result, "authorised in")["ok"]
    # cluster-scoped reads the restricted user may not do are "could not check" warnings
    storage = by_prefix(result, "default StorageClass")
    assert storage["status"] in ("ok", "warn")


def test_pure_rules():
    from paless_deploy.commands.doctor import parse_minor, registry_usable_by_nodes
    from paless_deploy.core.images.imageref import parse_registry

    assert parse_minor("34+") == 34 and parse_minor(None) is None
    assert parse_registry("localhost:5000").hostname == "localhost"
    assert parse_registry("[::1]:5000/x").hostname == "::1"
    assert parse_registry("registry.example.com/team").hostname == "registry.example.com"
    assert registry_usable_by_nodes("localhost:5000", 1)
    assert not registry_usable_by_nodes("127.0.0.1:5000", 3)
    assert registry_usable_by_nodes("10.0.0.5:5000", 3)


@pytest.mark.docker
@pytest.mark.cluster
def test_builder_and_platform_on_the_sandbox(sandbox, docker_client, tmp_path):
    """The sandbox provides BuildKit; its nodes are amd64, so an arm64 build is warned about."""
    import platform
    import re

    result = run(sandbox, tmp_path)
    builder = by_prefix(result, "image builder")
    assert builder["ok"] and builder["detail"].startswith("BuildKit: "), builder
    assert "docker" in builder["detail"]
    ok = by_prefix(result, "nodes run the build's platform")
    engine_arch = docker_client.version()["Arch"]
    assert ok["ok"] and f"images for linux/{engine_arch}" in ok["detail"], ok
    assert "PLATFORM unset" in ok["detail"]

    other = "arm64" if platform.machine() in ("x86_64", "amd64") else "amd64"
    result = run(sandbox, tmp_path, PLATFORM=other)
    warned = by_prefix(result, "nodes run the build's platform")
    assert (warned["ok"], warned["status"]) == (False, "warn"), warned
    assert f"built for linux/{other} (PLATFORM)" in warned["detail"]
    # every node of the sandbox is amd64 (other test runs add kwok nodes of their own)
    assert re.search(r"but (\d+) of \1 node\(s\) run another architecture: \S+ \(amd64\)",
                     warned["detail"]), warned
    assert warned["fix"].startswith("Set PLATFORM=linux/amd64")
    assert result.exit_code == 0  # a warning, not a failed required check

    result = run(sandbox, tmp_path, BUILDER="classic")
    assert "classic builder (BUILDER=classic)" in by_prefix(result, "image builder")["detail"]


@pytest.mark.cluster
def test_builder_missing_says_how_to_get_buildkit(sandbox, tmp_path, monkeypatch):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))  # no docker CLI at all
    result = run(sandbox, tmp_path)
    builder = by_prefix(result, "image builder")
    assert builder["status"] == "warn" and "no `docker` command on PATH" in builder["detail"]
    assert "fall back to the classic builder" in builder["detail"]
    assert "docker-buildx" in builder["fix"]
    result = run(sandbox, tmp_path, BUILDER="buildkit")
    assert by_prefix(result, "image builder")["status"] == "FAIL"
    assert result.exit_code == 1


def test_nodes_of_other_arch():
    from paless_deploy.commands.doctor import nodes_of_other_arch

    nodes = {"b": "amd64", "a": "arm64", "c": ""}
    assert nodes_of_other_arch("linux/amd64", nodes) == {"a": "arm64"}
    assert nodes_of_other_arch("linux/arm64/v8", nodes) == {"b": "amd64"}


@pytest.mark.docker
@pytest.mark.parametrize("overlay", ["dev", "staging", "prod"])
def test_doctor_passes_on_the_stack_we_ship(sandbox, registry, tmp_path, overlay):
    """A check that fails must mean a deploy would fail: every overlay of k8s/ deploys on
    the sandbox (dev: tests/integration/test_stack_sandbox.py; staging and prod pass its
    server-side dry run), so doctor on it must find no FAIL (it failed `StorageClass
    manual` on dev, whose claims are pre-bound to static volumes)."""
    from tests.integration.deploy_helpers import make_project, run_cli
    from tests.integration.test_stack_sandbox import PROD_CREDENTIALS

    # prod's claims bind through the sandbox's local-path class, whose volumes go with
    # their claims: doctor refuses that unless told (the next test), as a deploy does
    prod = {**PROD_CREDENTIALS, "PALESS_ALLOW_RECLAIM_DELETE": "true"}
    env = {"REGISTRY": registry.host, **(prod if overlay == "prod" else {})}
    project = make_project(tmp_path / "project", env)
    run = run_cli(project, sandbox.kubeconfig, f"t-doctor-{overlay}-{uuid.uuid4().hex[:5]}",
                  "--overlay", overlay, "doctor", timeout=180)
    failed = [c for c in run.doc["checks"] if c["status"] == "FAIL"]
    assert failed == [], run
    assert run.returncode == 0, run
    names = {c["name"] for c in run.doc["checks"]}
    assert "StorageClass local-path" in names  # the classes the overlay's claims need


@pytest.mark.cluster
def test_prod_volumes_deleted_with_their_claims_fail_the_check(sandbox, tmp_path):
    from tests.integration.deploy_helpers import make_project
    from tests.integration.test_stack_sandbox import PROD_CREDENTIALS

    project = make_project(tmp_path / "project").dir
    strong = dict(PROD_CREDENTIALS)  # every secret prod renders (Redis's, MinIO app user's)
    refused = run(sandbox, project, OVERLAY="prod", **strong)
    check = by_prefix(refused, "prod volumes outlive their claims")
    assert (check["ok"], check["required"]) == (False, True), check
    assert "StorageClass local-path (reclaim policy Delete)" in check["detail"]
    assert "reclaimPolicy: Retain" in check["fix"] and "--allow-reclaim-delete" in check["fix"]
    assert refused.exit_code == 1
    accepted = run(sandbox, project, OVERLAY="prod", PALESS_ALLOW_RECLAIM_DELETE="true",
                   **strong)
    check = by_prefix(accepted, "prod volumes outlive their claims")
    assert check["ok"] and check["detail"].startswith("accepted")
    dev = run(sandbox, project)
    assert not [c for c in dev.extra["checks"] if c["name"].startswith("prod volumes")]
