"""Images delivered without a registry, and the delivery chosen per cluster.

The k3s import runs against a real containerd, the sandbox real node's, standing for a k3s
node's: the image appears in `ctr -n k8s.io images ls`, the node's pod runs it without
any pull, and a second run imports nothing (containerd's own event stream is read). The
detection tests give the sandbox a node carrying a k3s kubelet version and images (a Node
object no kubelet runs, tainted, deleted afterwards), and advertise a registry through the
KEP-1755 ConfigMap.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.realnode import ON_REAL_NODE, REAL_NODE, RealNode
from tests.fixtures.realnode import real_node as real_node  # noqa: PLC0414 - the fixture
from tests.integration.deploy_helpers import Project, run_cli, write_overlay

pytestmark = [pytest.mark.cluster, pytest.mark.docker]

BASE = "ghcr.io/paperless-ngx/paperless-ngx:2.18.4"  # the sandbox's busybox stand-in


def sleeper(root: Path, name: str, text: str) -> None:
    """App `name`: the busybox stand-in plus one file; it sleeps."""
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "note.txt").write_text(text)
    (root / name / "Dockerfile").write_text(
        f"FROM {BASE}\nCOPY note.txt /note.txt\nCMD [\"sleep\", \"3600\"]\n")


def deployment(name: str, *, real_node: bool) -> dict:
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": 1,
                            "containers": [{"name": name, "image": name}]}
    if real_node:
        spec.update(ON_REAL_NODE)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/component": name}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


@pytest.fixture
def project(tmp_path: Path, docker_client: Any) -> Iterator[Project]:
    """One app `app` (a sleeping busybox) with a unique PROJECT_NAME; its images go after."""
    name = f"d{uuid.uuid4().hex[:8]}"
    root = tmp_path / "project"
    sleeper(root, "app", name)
    env_file = root / "test.env"
    env_file.write_text(f"PROJECT_NAME={name}\n")
    yield Project(root, env_file)
    for image in docker_client.images():
        for tag in image.get("RepoTags") or []:
            if f"/{name}-" in tag:
                docker_client.remove_image(tag, force=True)


def image_of(sandbox: Any, namespace: str, name: str) -> dict:
    out = sandbox.kubectl("get", "deployment", name, "-n", namespace, "-o", "json").stdout
    return json.loads(out)["spec"]["template"]["spec"]["containers"][0]


# ---------------------------------------------------------------------------
# the import into a real containerd


@pytest.mark.realnode
def test_k3s_import_into_the_nodes_containerd(sandbox: Any, real_node: RealNode,
                                              project: Project, namespace: str) -> None:
    if shutil.which("ctr") is None:
        pytest.skip("ctr (containerd's client) is not installed: `scripts/sandbox up` installs it")
    write_overlay(project.dir, "dev", [deployment("app", real_node=True)])
    env = {"IMAGE_DELIVERY": "k3s-import",
           "PALESS_CONTAINERD_ADDRESS": str(real_node.containerd_socket)}
    first = run_cli(project, sandbox.kubeconfig, namespace, "--progress-deadline", "90s", "all",
                    env=env)
    assert first.returncode == 0, first
    (image,) = first.doc["images"]
    ref = image["ref"]
    try:
        assert (image["action"], image["pushed"], image["delivery"]) == ("built", False,
                                                                        "imported")
        assert first.doc["delivery"]["method"] == "k3s-import"
        listed = real_node.ctr("images", "ls", "-q").stdout.split()
        assert ref in listed
        container = image_of(sandbox, namespace, "app")
        assert (container["image"], container["imagePullPolicy"]) == (ref, "IfNotPresent")
        pod = json.loads(sandbox.kubectl("get", "pods", "-n", namespace, "-l", "app=app",
                                         "-o", "json").stdout)["items"][0]
        assert pod["spec"]["nodeName"] == REAL_NODE
        assert pod["status"]["phase"] == "Running"
        assert pod["status"]["containerStatuses"][0]["image"] == ref
        # nothing pulled it: the kubelet found it in containerd
        events = json.loads(sandbox.kubectl(
            "get", "events", "-n", namespace, "--field-selector",
            f"involvedObject.name={pod['metadata']['name']}", "-o", "json").stdout)["items"]
        pulled = [e["message"] for e in events if e["reason"] == "Pulled"]
        assert pulled and all("already present on machine" in m for m in pulled), pulled

        # A second run imports nothing (the node's status.images lists it, or, as here where
        # the kubelet reports only its 50 largest images and this one is 1 MB compressed,
        # its containerd holds it): containerd records no image event while it runs.
        events_proc = subprocess.Popen(
            ["ctr", f"--address={real_node.containerd_socket}", "events"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            second = run_cli(project, sandbox.kubeconfig, namespace, "all", env=env)
        finally:
            events_proc.terminate()
            seen, _ = events_proc.communicate(timeout=10)
        assert second.returncode == 0, second
        (again,) = second.doc["images"]
        assert (again["ref"], again["action"], again["delivery"]) == (ref, "skipped", "on-node")
        assert "/images/" not in seen, seen
    finally:
        real_node.ctr("images", "rm", ref, check=False)


@pytest.mark.realnode
def test_k3s_import_of_a_one_file_change_moves_only_its_layer(
        sandbox: Any, real_node: RealNode, project: Project, namespace: str) -> None:
    """The import goes through a registry of our own on 127.0.0.1: after a change of one
    file, containerd receives that layer and the image's config and manifest, not the
    8 MB layer below it, and the pod runs the change."""
    if shutil.which("ctr") is None:
        pytest.skip("ctr (containerd's client) is not installed: `scripts/sandbox up` installs it")
    app = project.dir / "app"
    (app / "bulk.bin").write_bytes(uuid.uuid4().bytes * (8 << 16))  # 8 MiB, its own layer
    (app / "Dockerfile").write_text(f"FROM {BASE}\nCOPY bulk.bin /bulk.bin\n"
                                    "COPY note.txt /note.txt\nCMD [\"sleep\", \"3600\"]\n")
    write_overlay(project.dir, "dev", [deployment("app", real_node=True)])
    env = {"IMAGE_DELIVERY": "k3s-import",
           "PALESS_CONTAINERD_ADDRESS": str(real_node.containerd_socket)}
    refs = []
    try:
        first = run_cli(project, sandbox.kubeconfig, namespace, "--progress-deadline", "90s",
                        "all", env=env)
        assert first.returncode == 0, first
        refs.append(first.doc["images"][0]["ref"])
        before = set(real_node.ctr("content", "ls", "-q").stdout.split())
        (app / "note.txt").write_text("one line changed\n")
        second = run_cli(project, sandbox.kubeconfig, namespace, "--progress-deadline", "90s",
                         "all", env=env)
        assert second.returncode == 0, second
        (image,) = second.doc["images"]
        refs.append(image["ref"])
        assert (image["action"], image["delivery"]) == ("built", "imported")
        new = set(real_node.ctr("content", "ls", "-q").stdout.split()) - before
        assert len(new) == 3, new  # the changed layer, the config, the manifest
        assert "app: imported" in second.stderr and "2 blob(s), 0.0 MB sent" in second.stderr, \
            second.stderr
        pod = json.loads(sandbox.kubectl("get", "pods", "-n", namespace, "-l", "app=app",
                                         "-o", "json").stdout)["items"]
        running = [p for p in pod if not p["metadata"].get("deletionTimestamp")]
        assert len(running) == 1 and running[0]["status"]["containerStatuses"][0]["image"] == \
            image["ref"]
        assert sandbox.kubectl("exec", "-n", namespace, running[0]["metadata"]["name"], "--",
                               "cat", "/note.txt").stdout == "one line changed\n"
    finally:
        for ref in refs:
            real_node.ctr("images", "rm", ref, check=False)


# ---------------------------------------------------------------------------
# detection


@pytest.fixture
def k3s_node(sandbox: Any) -> Iterator[str]:
    """A Node object that says it is k3s (kubelet v1.34.4+k3s1) and lists one image; no
    kubelet runs it, and a taint keeps every pod off it. Deleted afterwards."""
    name = f"t-k3s-{uuid.uuid4().hex[:6]}"
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"paless-test": "true"}},
            "spec": {"taints": [{"key": "paless-test/no-kubelet", "effect": "NoSchedule"}]}}
    sandbox.kubectl("create", "-f", "-", input=json.dumps(node))
    try:
        yield name
    finally:
        sandbox.kubectl("delete", "node", name, "--ignore-not-found", "--wait=false",
                        check=False)


def report_status(sandbox: Any, node: str, images: list[str]) -> None:
    status = {"status": {
        "nodeInfo": {"kubeletVersion": "v1.34.4+k3s1",
                     "containerRuntimeVersion": "containerd://1.7.23-k3s2",
                     "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
                     "osImage": "", "kubeProxyVersion": "", "operatingSystem": "linux",
                     "architecture": "amd64"},
        "addresses": [{"type": "InternalIP", "address": "192.0.2.250"}],
        "images": [{"names": images, "sizeBytes": 1000}]}}
    sandbox.kubectl("patch", "node", node, "--subresource=status", "--type=merge", "-p",
                    json.dumps(status))


def doctor(project: Project, sandbox: Any, namespace: str, env: dict[str, str]) -> dict:
    run = run_cli(project, sandbox.kubeconfig, namespace, "doctor", env=env)
    return next(c for c in run.doc["checks"] if c["name"] == "image delivery")


def test_k3s_node_on_this_machine_means_import_and_listed_images_are_not_imported(
        sandbox: Any, project: Project, namespace: str, k3s_node: str,
        docker_client: Any) -> None:
    """auto: a k3s node that is this machine (PALESS_NODE_NAME) means k3s-import; doctor
    says so and why; an image the node already lists in status.images is not imported
    (the containerd given is never asked to import it)."""
    write_overlay(project.dir, "dev", [deployment("app", real_node=False)])
    planned = run_cli(project, sandbox.kubeconfig, namespace, "build")
    (image,) = planned.doc["images"]
    report_status(sandbox, k3s_node, [image["ref"], "docker.io/rancher/mirrored-pause:3.6"])

    elsewhere = doctor(project, sandbox, namespace, {})
    assert elsewhere["detail"].startswith("registry:"), elsewhere
    assert "k3s (kubelet v1.34.4+k3s1)" in elsewhere["detail"]
    assert "none of its nodes runs on this machine" in elsewhere["detail"]

    env = {"PALESS_NODE_NAME": k3s_node, "PALESS_CONTAINERD_ADDRESS": "/nonexistent/socket"}
    here = doctor(project, sandbox, namespace, env)
    assert here["detail"].startswith("k3s-import:"), here
    assert f"node {k3s_node} is k3s (kubelet v1.34.4+k3s1) and runs on this machine" in \
        here["detail"]
    assert "cannot find the images" in here["fix"]  # the other (kwok) nodes

    run = run_cli(project, sandbox.kubeconfig, namespace, "all", env=env)
    assert run.returncode == 0, run
    (image,) = run.doc["images"]
    assert image["delivery"] == "on-node"
    assert f"not imported: node {k3s_node} lists it" in run.stderr
    assert image_of(sandbox, namespace, "app")["imagePullPolicy"] == "IfNotPresent"


def test_delivery_none_builds_without_pushing(sandbox: Any, project: Project, namespace: str,
                                             registry: Any) -> None:
    write_overlay(project.dir, "dev", [deployment("app", real_node=False)])
    run = run_cli(project, sandbox.kubeconfig, namespace, "all", env={"IMAGE_DELIVERY": "none"})
    assert run.returncode == 0, run
    (image,) = run.doc["images"]
    assert (image["action"], image["pushed"], image["delivery"]) == ("built", False, "none")
    repository = image["ref"].split("/", 1)[1].rsplit(":", 1)[0]
    assert registry.tags(repository) == []
    assert image_of(sandbox, namespace, "app")["imagePullPolicy"] == "IfNotPresent"


def test_advertised_registry_kep_1755(sandbox: Any, project: Project, namespace: str,
                                      registry: Any) -> None:
    """REGISTRY unset and the cluster advertises a registry: images are pushed to `host`
    and referenced as `hostFromContainerRuntime` (here another spelling of the sandbox
    registry, so concurrent runs elsewhere are not disturbed); `push` pushes there too."""
    # one an interrupted run of this test left is ours to remove; anyone else's is not
    sandbox.kubectl("delete", "configmap", "-n", "kube-public", "-l", "paless-test=true",
                    "--ignore-not-found", check=False)
    existing = sandbox.kubectl("get", "configmap", "local-registry-hosting", "-n",
                               "kube-public", check=False)
    if existing.returncode == 0:
        pytest.fail("kube-public/local-registry-hosting exists and is not this test's: "
                    "the sandbox advertises a registry of its own")
    port = registry.host.rsplit(":", 1)[1]
    hosting = {"host": f"localhost:{port}", "hostFromContainerRuntime": f"127.0.0.1:{port}",
               "help": "https://example.invalid/registry"}
    cm: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "local-registry-hosting", "namespace": "kube-public",
                       "labels": {"paless-test": "true"}},
          "data": {"localRegistryHosting.v1": json.dumps(hosting)}}
    write_overlay(project.dir, "dev", [deployment("app", real_node=False)])
    sandbox.kubectl("create", "-f", "-", input=json.dumps(cm))
    try:
        run = run_cli(project, sandbox.kubeconfig, namespace, "all")
        check = doctor(project, sandbox, namespace, {})
        # `push` goes where `all` would: advertised under another spelling, it pushes there
        cm["data"]["localRegistryHosting.v1"] = json.dumps({"host": f"127.0.0.1:{port}"})
        sandbox.kubectl("replace", "-f", "-", input=json.dumps(cm))
        pushed = run_cli(project, sandbox.kubeconfig, namespace, "push")
    finally:
        sandbox.kubectl("delete", "configmap", "local-registry-hosting", "-n", "kube-public",
                        "--ignore-not-found", check=False)
    assert run.returncode == 0, run
    (image,) = run.doc["images"]
    assert image["ref"].startswith(f"localhost:{port}/") and image["pushed"]
    container = image_of(sandbox, namespace, "app")
    assert container["image"] == f"127.0.0.1:{port}/" + image["ref"].split("/", 1)[1]
    repository = image["ref"].split("/", 1)[1].rsplit(":", 1)[0]
    assert image["tag"] in registry.tags(repository)
    assert run.doc["delivery"]["method"] == "registry"
    assert "local-registry-hosting" in check["detail"]
    assert f"referenced as 127.0.0.1:{port}" in check["detail"]
    assert pushed.returncode == 0, pushed
    (image,) = pushed.doc["images"]
    assert image["ref"].startswith(f"127.0.0.1:{port}/"), image
    assert "the registry the cluster advertises" in pushed.stderr
