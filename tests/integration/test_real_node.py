"""The sandbox's real node, through paless-deploy: the image the tool built is pulled from the
registry and run, probes are the kubelet's, failures are containerd's and the kernel's, and
logs, exec, port-forward and ClusterIP Services reach real containers.

No kwok failure marker is used here: every state below is produced by kubelet, containerd,
runc and the kernel. The tests of scripts/sandbox at the end stop and restart the real node
(kill -9, down/up) and leave the sandbox up and healthy.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import SANDBOX
from tests.fixtures.realnode import ON_REAL_NODE, REAL_KEY, STATE, busybox_rootfs
from tests.fixtures.realnode import real_node as real_node  # noqa: PLC0414 - the fixture
from tests.fixtures.waiting import eventually
from tests.integration.deploy_helpers import CliRun, Project, delete_instances, run_cli
from tests.integration.test_failures_cli import write_overlay
from tests.integration.test_sandbox_lifecycle import alive, pids, sandbox_cmd

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.realnode]

PROJECT_NAME = "realnode"  # images: localhost:5000/realnode-web:<content hash>
APPLETS = ("sh", "httpd", "wget", "timeout", "cat", "echo", "sleep", "dd", "ls")
INDEX = "<h1>paless real node</h1>\n"
QUICK = {"paless.io/failure-grace": "1s", "paless.io/allowed-restarts": "0"}
# Serves /www; /www/ready appears 3 s after start, so the readiness probe fails first.
SERVE = ("echo 'web: serving /www on :8080'; (sleep 3; echo ok > /www/ready) & "
         "exec httpd -f -v -p 8080 -h /www")
REAL_NODE_PROCESSES = ("containerd", "kubelet", "kube-proxy")


# ---------------------------------------------------------------------------
# the project: one app, `web`, a FROM-scratch busybox image with httpd


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    root = tmp_path_factory.mktemp("realnode")
    rootfs = busybox_rootfs(root / "web" / "rootfs", APPLETS)
    (rootfs / "www").mkdir()
    (rootfs / "www" / "index.html").write_text(INDEX)
    (root / "web" / "Dockerfile").write_text(
        f"FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nEXPOSE 8080\nCMD {json.dumps(['sh', '-c', SERVE])}\n")
    env_file = root / "test.env"
    env_file.write_text(f"PROJECT_NAME={PROJECT_NAME}\n")
    return Project(root, env_file)


def workload(name: str, *, image: str = "web", command: str | None = None,
             probe: dict | None = None, resources: dict | None = None,
             annotations: dict | None = None, pull_policy: str | None = None) -> dict:
    """A one-replica Deployment whose pod asks for the real node."""
    container: dict[str, Any] = {"name": name, "image": image,
                                 "ports": [{"name": "http", "containerPort": 8080}]}
    if command:
        container["command"] = ["sh", "-c", command]
    if probe:
        container["readinessProbe"] = probe
    if resources:
        container["resources"] = resources
    if pull_policy:
        container["imagePullPolicy"] = pull_policy
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/component": "web"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name},
                                               "annotations": annotations or {}},
                                  "spec": {**ON_REAL_NODE, "terminationGracePeriodSeconds": 1,
                                           "containers": [container]}}}}


PROBE = {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1, "failureThreshold": 1}


def deploy(project: Project, sandbox: Any, namespace: str, overlay: str) -> CliRun:
    return run_cli(project, sandbox.kubeconfig, namespace, "--overlay", overlay,
                   "--progress-deadline", "90s", "all", timeout=300)


def pods(sandbox: Any, namespace: str, app: str) -> list[dict]:
    out = sandbox.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json").stdout
    return json.loads(out)["items"]


def only_pod(sandbox: Any, namespace: str, app: str) -> dict:
    found = [p for p in pods(sandbox, namespace, app) if not p["metadata"].get("deletionTimestamp")]
    assert len(found) == 1, [p["metadata"]["name"] for p in found]
    return found[0]


def events_of(sandbox: Any, namespace: str, name: str) -> list[dict]:
    out = sandbox.kubectl("get", "events", "-n", namespace, "--field-selector",
                          f"involvedObject.name={name}", "-o", "json").stdout
    return json.loads(out)["items"]


def failure_run(project: Project, sandbox: Any, overlay: str, objects: list[dict]) -> tuple[
        CliRun, str]:
    write_overlay(project.dir, overlay, objects)
    namespace = f"t-realnode-{overlay}-{uuid.uuid4().hex[:5]}"
    run = deploy(project, sandbox, namespace, overlay)
    assert run.returncode == 1, str(run)
    assert run.doc and run.doc["result"] == "failed", str(run)
    return run, namespace


# ---------------------------------------------------------------------------
# a served app: web (probed), a Service in front of it, a client pod beside it


@dataclass(frozen=True)
class Served:
    namespace: str
    run: CliRun


@pytest.fixture(scope="module")
def served(project: Project, sandbox: Any, real_node: Any) -> Iterator[Served]:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"selector": {"app": "web"},
                        "ports": [{"port": 80, "targetPort": 8080, "name": "http"}]}}
    write_overlay(project.dir, "serve", [
        workload("web", probe=PROBE), service, workload("client", command="exec sleep 3600")])
    namespace = f"t-realnode-{uuid.uuid4().hex[:6]}"
    try:
        yield Served(namespace, deploy(project, sandbox, namespace, "serve"))
    finally:
        delete_instances(sandbox, [namespace])


def test_the_tools_image_is_pulled_from_the_registry_and_ready_through_a_real_probe(
        served, sandbox, registry, real_node):
    run = served.run
    assert run.returncode == 0 and run.doc["result"] == "success", str(run)
    image = next(i for i in run.doc["images"] if i["app"] == "web")
    pod = only_pod(sandbox, served.namespace, "web")
    assert pod["spec"]["nodeName"] == real_node.name
    status = pod["status"]["containerStatuses"][0]
    assert status["ready"] and "running" in status["state"], status
    # what runs is what the tool pushed: containerd pulled the registry's manifest
    host_repo, tag = image["ref"].rsplit(":", 1)
    digest = registry.manifest_digest(host_repo.split("/", 1)[1], tag)
    assert digest and status["imageID"].endswith(f"@{digest}"), (status["imageID"], digest)
    # the kubelet probed for real: /www/ready did not exist during the first seconds
    failed = [e["message"] for e in events_of(sandbox, served.namespace, pod["metadata"]["name"])
              if e["reason"] == "Unhealthy"]
    assert any(m.startswith("Readiness probe failed:") for m in failed), failed
    started = status["state"]["running"]["startedAt"]
    ready_at = next(c["lastTransitionTime"] for c in pod["status"]["conditions"]
                    if c["type"] == "Ready")
    assert seconds_between(started, ready_at) >= 2, (started, ready_at)
    assert real_node.runtime.startswith("containerd://")


def seconds_between(earlier: str, later: str) -> float:
    from datetime import datetime

    def parse(stamp: str) -> datetime:
        return datetime.fromisoformat(stamp)

    return (parse(later) - parse(earlier)).total_seconds()


def test_kubectl_logs_exec_and_port_forward_reach_the_container(served, sandbox):
    name = only_pod(sandbox, served.namespace, "web")["metadata"]["name"]
    logs = sandbox.kubectl("logs", "-n", served.namespace, name).stdout
    assert "web: serving /www on :8080" in logs
    assert sandbox.kubectl("exec", "-n", served.namespace, name, "--",
                           "cat", "/www/ready").stdout.strip() == "ok"
    forward = subprocess.Popen(
        [str(sandbox.bin_dir / "kubectl"), f"--kubeconfig={sandbox.kubeconfig}", "port-forward",
         "-n", served.namespace, f"pod/{name}", ":8080"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = forwarded_port(forward, timeout=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            assert resp.read().decode() == INDEX
    finally:
        forward.terminate()
        forward.wait(timeout=10)
    # httpd -v logged the request that came through the tunnel: containerd dials it from
    # inside the pod's network namespace (the kubelet's probes come from the bridge address)
    logs = sandbox.kubectl("logs", "-n", served.namespace, name).stdout
    assert re.search(r"127\.0\.0\.1\]:\d+: response:200", logs), logs


def forwarded_port(proc: subprocess.Popen, timeout: float) -> int:
    """The local port of `kubectl port-forward`, from its "Forwarding from" line."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sel.select(timeout=max(0.1, deadline - time.monotonic())):
            line = proc.stdout.readline()
            if line.startswith("Forwarding from 127.0.0.1:"):
                return int(line.split(":")[1].split()[0])
            if not line and proc.poll() is not None:
                break
    proc.kill()
    raise AssertionError(f"kubectl port-forward did not forward: {proc.stderr.read() if proc.stderr else ''}")


def test_a_cluster_ip_service_answers_from_another_pod(served, sandbox, real_node):
    web = only_pod(sandbox, served.namespace, "web")
    client = only_pod(sandbox, served.namespace, "client")
    assert client["spec"]["nodeName"] == web["spec"]["nodeName"] == real_node.name
    assert client["status"]["podIP"] != web["status"]["podIP"]
    ip = json.loads(sandbox.kubectl("get", "service", "web", "-n", served.namespace,
                                    "-o", "json").stdout)["spec"]["clusterIP"]
    assert ip.startswith("10.96.")

    def fetch() -> str:
        res = sandbox.kubectl("exec", "-n", served.namespace, client["metadata"]["name"], "--",
                              "timeout", "5", "wget", "-q", "-O", "-", f"http://{ip}/", check=False)
        return res.stdout

    # kube-proxy programs the Service within its minimum sync period of the endpoints appearing
    assert eventually(fetch, 30, f"the Service {ip} answering the client pod") == INDEX


# ---------------------------------------------------------------------------
# failures, as the kubelet and the kernel produce them


def test_a_reference_the_registry_lacks_is_a_real_image_pull_failure(project, sandbox, registry,
                                                                      real_node):
    # not named like our apps: preflight warns and lets the cluster say what it does
    ref = "localhost:5000/ghost-realnode:never-pushed"
    assert registry.manifest_digest("ghost-realnode", "never-pushed") is None
    run, namespace = failure_run(project, sandbox, "ghost", [workload("ghost", image=ref)])
    try:
        first = run.doc["errors"][0]
        assert first["code"] == "image-pull", run.doc["errors"]
        assert first["resource"].startswith("Pod/ghost-") and ref in first["message"]
        assert f"The image {ref} is not in the registry" in run.stderr, run.stderr[-3000:]
        # containerd's words for the registry's 404, in the report's evidence
        assert f'failed to resolve reference "{ref}"' in run.stderr, run.stderr[-3000:]
        pod = only_pod(sandbox, namespace, "ghost")
        waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["reason"] in ("ErrImagePull", "ImagePullBackOff"), waiting
        pulls = [e["message"] for e in events_of(sandbox, namespace, pod["metadata"]["name"])
                 if e["reason"] == "Failed"]
        assert any("not found" in m and "failed to resolve reference" in m for m in pulls), pulls
    finally:
        delete_instances(sandbox, [namespace])


def test_a_container_that_exits_is_a_real_crash_loop_with_its_log_lines(project, sandbox,
                                                                         real_node):
    # it fails a moment after starting, as apps do once they have read their configuration
    # (an instant exit races the kubelet's removal of the previous instance and its log)
    crash = ("echo 'crash: reading /config/app.yaml'; sleep 2; "
             "echo 'crash: fatal: /config/app.yaml: no such file' >&2; exit 3")
    # with a readiness probe, as apps have: without one the container counts as available
    # for the second it runs, and the deploy passes before it first exits
    run, namespace = failure_run(project, sandbox, "crash", [
        workload("crash", command=crash, probe=PROBE, annotations=QUICK)])
    try:
        first = run.doc["errors"][0]
        assert first["code"] == "crash-loop", run.doc["errors"]
        assert "exit code 3" in first["message"], first
        # the container's own lines, read from the kubelet through the API server
        assert "log: crash: fatal: /config/app.yaml: no such file" in run.stderr, run.stderr[-3000:]
        def backing_off() -> dict | None:
            status = only_pod(sandbox, namespace, "crash")["status"]["containerStatuses"][0]
            waiting = status["state"].get("waiting") or {}
            return status if waiting.get("reason") == "CrashLoopBackOff" else None

        status = eventually(backing_off, 60, "the kubelet's CrashLoopBackOff")
        assert status["restartCount"] >= 1
        assert status["lastState"]["terminated"]["exitCode"] == 3
    finally:
        delete_instances(sandbox, [namespace])


def test_a_container_without_a_probe_that_exits_a_moment_after_starting_fails_the_deploy(
        project, sandbox, real_node):
    # no readiness probe: Kubernetes calls it available the moment it starts; the deploy
    # watches it run its settle window (5s by default) and sees the exit, not a success
    crash = "echo 'noprobe: starting'; sleep 2; echo 'noprobe: fatal: no config' >&2; exit 4"
    run, namespace = failure_run(project, sandbox, "noprobe", [
        workload("noprobe", command=crash, annotations=QUICK)])
    try:
        first = run.doc["errors"][0]
        assert first["code"] == "crash-loop", run.doc["errors"]
        assert "exit code 4" in first["message"], first
        assert "log: noprobe: fatal: no config" in run.stderr, run.stderr[-3000:]
    finally:
        delete_instances(sandbox, [namespace])


def memory_limits_are_enforced() -> str | None:
    """None when the kernel OOM-kills a container over its limit, else why it cannot here."""
    swaps = Path("/proc/swaps").read_text().splitlines()[1:]
    if swaps:
        return ("swap is on: with cgroup v1 the kubelet limits memory without swap, so a "
                f"container over its limit swaps instead of being OOM-killed ({swaps[0]})")
    if Path("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists():
        return None
    unified = Path("/sys/fs/cgroup/cgroup.controllers")
    if unified.exists() and "memory" in unified.read_text().split():
        return None
    return "no memory cgroup controller (CONFIG_MEMCG): the kernel enforces no memory limit"


def test_a_memory_limit_gives_a_real_oom_kill(project, sandbox, real_node):
    why_not = memory_limits_are_enforced()
    assert why_not is None, f"this kernel cannot OOM-kill a container: {why_not}"
    hog = "echo 'hog: allocating 256 MiB'; exec dd if=/dev/zero of=/dev/null bs=256M count=1"
    run, namespace = failure_run(project, sandbox, "hog", [workload(
        "hog", command=hog, probe=PROBE, resources={"limits": {"memory": "24Mi"}},
        annotations=QUICK)])
    try:
        first = run.doc["errors"][0]
        assert first["code"] == "oom-killed", run.doc["errors"]
        assert "24Mi" in first["message"]
        pod = only_pod(sandbox, namespace, "hog")
        terminated = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
        assert (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137), terminated
        # the limit the kernel enforced is the kubelet's, in the pod's memory cgroup
        limits = [int(p.read_text()) for p in Path("/sys/fs/cgroup/memory").glob(
            f"paless-sandbox/kubepods/**/pod{pod['metadata']['uid']}/memory.limit_in_bytes")]
        assert not Path("/sys/fs/cgroup/memory").exists() or limits == [24 * 2**20], limits
    finally:
        delete_instances(sandbox, [namespace])


def test_an_image_imported_into_containerd_runs_without_the_registry(project, sandbox, registry,
                                                                      real_node, tmp_path):
    # what the k3s import path does: `ctr -n k8s.io images import`, then IfNotPresent
    tag = uuid.uuid4().hex[:10]
    ref = f"localhost:5000/imported-realnode:{tag}"  # never pushed
    context = tmp_path / "imported"
    shutil.copytree(project.dir / "web", context, symlinks=True)
    (context / "rootfs" / "www" / "index.html").write_text("imported\n")
    subprocess.run(["docker", "build", "-q", "-t", ref, str(context)], check=True,
                   capture_output=True)
    archive = tmp_path / "imported.tar"
    try:
        subprocess.run(["docker", "save", "-o", str(archive), ref], check=True, capture_output=True)
        real_node.ctr("images", "import", str(archive))
        assert ref in real_node.ctr("images", "ls", "-q").stdout.split()
        namespace = f"t-realnode-imported-{tag[:5]}"
        write_overlay(project.dir, "imported", [workload(
            "imported", image=ref, pull_policy="IfNotPresent",
            probe={"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1})])
        try:
            run = deploy(project, sandbox, namespace, "imported")
            assert run.returncode == 0 and run.doc["result"] == "success", str(run)
            pod = only_pod(sandbox, namespace, "imported")
            assert pod["spec"]["nodeName"] == real_node.name
            assert pod["spec"]["containers"][0]["image"] == ref
            pulled = [e["message"] for e in events_of(sandbox, namespace, pod["metadata"]["name"])
                      if e["reason"] == "Pulled"]
            assert any("already present on machine" in m for m in pulled), pulled
            assert registry.manifest_digest("imported-realnode", tag) is None
        finally:
            delete_instances(sandbox, [namespace])
    finally:
        subprocess.run(["docker", "rmi", "-f", ref], check=False, capture_output=True)


def test_the_image_of_what_waits_is_pulled_while_it_waits(project, sandbox, real_node,
                                                          tmp_path):
    """Image warm-up: `late` waits for the Job `gate` (5 s); its image, new to the node, is
    pulled by the warm-up pod meanwhile, so `late`'s pod finds it on the machine; the
    warm-up pod is gone after the deploy."""
    root = tmp_path / "warm"
    shutil.copytree(project.dir, root, symlinks=True)
    shutil.copytree(root / "web", root / "late", symlinks=True)
    (root / "late" / "rootfs" / "www" / "stamp.txt").write_text(uuid.uuid4().hex)  # new image
    gate = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "gate"},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                **ON_REAL_NODE, "restartPolicy": "Never",
                "containers": [{"name": "gate", "image": "web",
                                "command": ["sh", "-c", "sleep 5"]}]}}}}
    late = workload("late", image="late", probe={"httpGet": {"path": "/stamp.txt",
                                                              "port": 8080}, "periodSeconds": 1})
    late["metadata"]["annotations"] = {"paless.io/depends-on": "Job/gate"}
    write_overlay(root, "warm", [gate, late])
    namespace = f"t-realnode-warm-{uuid.uuid4().hex[:5]}"
    try:
        run = deploy(Project(root, project.env_file), sandbox, namespace, "warm")
        assert run.returncode == 0 and run.doc["result"] == "success", str(run)
        said = next((line for line in run.stderr.splitlines()
                     if "pulling the images of the objects that wait" in line), "")
        assert "Pod/paless-warm-up-" in said, run.stderr
        image = next(i["ref"] for i in run.doc["images"] if i["app"] == "late")
        events = json.loads(sandbox.kubectl("get", "events", "-n", namespace, "-o",
                                            "json").stdout)["items"]
        warm_pulled = [e for e in events if e["reason"] == "Pulled" and e["involvedObject"][
            "name"].startswith("paless-warm-up-") and image in e["message"]]
        assert warm_pulled and "Successfully pulled" in warm_pulled[0]["message"], events
        pod = only_pod(sandbox, namespace, "late")
        assert seconds_between(warm_pulled[0]["firstTimestamp"],
                               pod["metadata"]["creationTimestamp"]) >= 0
        pulled = [e["message"] for e in events_of(sandbox, namespace, pod["metadata"]["name"])
                  if e["reason"] == "Pulled"]
        assert any("already present on machine" in m for m in pulled), pulled
        eventually(lambda: not json.loads(sandbox.kubectl(
            "get", "pods", "-n", namespace, "-l", "paless.io/warm-up", "-o", "json").stdout
        )["items"], 30, "the warm-up pod gone")
    finally:
        delete_instances(sandbox, [namespace])


# ---------------------------------------------------------------------------
# scripts/sandbox and the real node


def test_status_and_wide_node_list_show_the_real_node(sandbox, real_node):
    status = sandbox_cmd("status")
    assert f"real node: {real_node.name} Ready, containerd://" in status.stdout, status.stdout
    assert str(real_node.containerd_socket) in status.stdout
    for component in REAL_NODE_PROCESSES:
        assert any(line.startswith(component) and "healthy" in line
                   for line in status.stdout.splitlines()), status.stdout
    assert "kubelet.log" in status.stdout
    wide = sandbox.kubectl("get", "nodes", "-o", "wide", "--no-headers").stdout.splitlines()
    real = [line for line in wide if line.startswith(real_node.name + " ")]
    assert len(real) == 1 and " Ready " in real[0] and "containerd://" in real[0], wide
    simulated = [line for line in wide if line.startswith("sandbox-node-")]
    assert len(simulated) >= 2 and all("kwok" in line for line in simulated), wide
    labels = json.loads(sandbox.kubectl("get", "node", real_node.name, "-o", "json").stdout)
    assert labels["metadata"]["labels"].get(REAL_KEY) == "true"
    assert {"key": REAL_KEY, "value": "true", "effect": "NoSchedule"} in labels["spec"]["taints"]


def node_ready(sandbox: Any, name: str) -> bool:
    res = sandbox.kubectl("get", "node", name, "-o", "json", check=False)
    if res.returncode != 0:
        return False
    conditions = json.loads(res.stdout)["status"].get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_up_after_kill_9_recovers_the_real_node_and_its_running_containers(served, sandbox,
                                                                           real_node):
    before = only_pod(sandbox, served.namespace, "web")["status"]["containerStatuses"][0]
    running = pids()
    for name in REAL_NODE_PROCESSES:
        os.kill(running[name], signal.SIGKILL)
    eventually(lambda: not any(alive(running[n]) for n in REAL_NODE_PROCESSES), 10,
               "the killed processes to go")
    assert sandbox_cmd("status", check=False).returncode == 1
    sandbox_cmd("up")
    after = pids()
    for name in REAL_NODE_PROCESSES:
        assert after[name] != running[name] and alive(after[name]), name
    assert node_ready(sandbox, real_node.name)
    assert sandbox_cmd("status").returncode == 0
    # the containers ran on under their shims: same container, no restart
    now = only_pod(sandbox, served.namespace, "web")["status"]["containerStatuses"][0]
    assert (now["containerID"], now["restartCount"]) == (before["containerID"],
                                                         before["restartCount"]), (before, now)
    name = only_pod(sandbox, served.namespace, "web")["metadata"]["name"]
    assert sandbox.kubectl("exec", "-n", served.namespace, name, "--",
                           "cat", "/www/ready").stdout.strip() == "ok"


def real_node_leftovers() -> list[str]:
    """What `down` must have removed: mounts, processes, bridge, iptables rules, cgroups."""
    left = []
    prefix = f"{STATE / 'realnode'}/"
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if line.split()[4].startswith(prefix)]
    left += [f"mount {m}" for m in mounts]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(STATE / "realnode") in cmdline:
                left.append(f"process {proc.name}: {cmdline[:120]}")
    if subprocess.run(["ip", "link", "show", "paless0"], capture_output=True,
                      check=False).returncode == 0:
        left.append("bridge paless0")
    for save in ("iptables-save", "ip6tables-save"):  # kube-proxy's, the kubelet's, ours
        rules = subprocess.run([save], capture_output=True, text=True, check=False).stdout
        left += [f"{save}: {line}" for line in rules.splitlines()
                 if "KUBE-" in line or "PALESS" in line or "paless0" in line]
    left += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob("*/paless-sandbox")]
    return left


def test_down_removes_the_real_nodes_mounts_network_and_processes_and_up_restores_it(
        served, sandbox, real_node):
    # the hard case: containerd was killed, its shims and containers run on unmanaged
    assert only_pod(sandbox, served.namespace, "web")["status"]["containerStatuses"][0]["ready"]
    os.kill(pids()["containerd"], signal.SIGKILL)
    try:
        sandbox_cmd("down")
        assert real_node_leftovers() == []
    finally:
        sandbox_cmd("up")
    assert node_ready(sandbox, real_node.name)
    assert sandbox_cmd("status").returncode == 0
    # the kubelet puts the Deployment's pod back on the node
    eventually(lambda: any(p["status"].get("podIP") and all(
        c["ready"] for c in p["status"].get("containerStatuses", [{"ready": False}]))
        for p in pods(sandbox, served.namespace, "web")), 90, "the web pod Ready again")


def test_a_missing_kernel_feature_is_named_and_the_sandbox_goes_on(tmp_path):
    """`up` on a machine without (say) veth pairs: the real node is skipped with the reason,
    the reason is recorded for `status` and the tests, and `up` does not fail.

    The kernel here has every feature, so the check is replaced by one naming a missing one;
    everything after it is the sandbox's own code, on a throw-away state directory (a process
    of its own: the package reads PALESS_SANDBOX_STATE when it is imported).
    """
    script = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from paless_sandbox import kernel, realnode\n"
        "kernel.missing_kernel_features = lambda: ['veth pairs (CONFIG_VETH): pod network interfaces']\n"
        "realnode.start_real_node()\n")
    res = subprocess.run([sys.executable, "-c", script, str(SANDBOX.parent)], capture_output=True,
                         text=True, timeout=60, check=False,
                         env={**os.environ, "PALESS_SANDBOX_STATE": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    assert "real node: UNAVAILABLE: this machine lacks veth pairs (CONFIG_VETH)" in res.stderr
    assert "simulated nodes only" in res.stderr
    recorded = json.loads((tmp_path / "realnode" / "unavailable.json").read_text())
    assert recorded["kernel"] is True and "CONFIG_VETH" in recorded["why"]
    assert not (tmp_path / "realnode" / "containerd").exists()  # nothing was started
