"""The sandbox behaves like a real cluster: controllers, scheduler, storage, failure markers.

Every assertion reads real state from the sandbox's kube-apiserver (or the real
Docker engine and registry); nothing here is simulated by the test itself.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster


def wait_for(list_fn, namespace: str, name: str, predicate, timeout: float = 60.0):
    """Watch objects of one kind until `name` satisfies `predicate`; return it."""
    from kubernetes import watch

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        w = watch.Watch()
        for event in w.stream(list_fn, namespace, field_selector=f"metadata.name={name}",
                              timeout_seconds=max(1, int(deadline - time.monotonic()))):
            last = event["object"]
            if predicate(last):
                w.stop()
                return last
    raise AssertionError(f"{name} did not reach the expected state in {timeout}s; last: {last}")


def apply(sandbox, namespace: str, manifest: dict) -> None:
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def pod_template(name: str, annotations: dict | None = None, requests: dict | None = None,
                 restart: str = "Always") -> dict:
    container = {"name": "app", "image": "busybox:1.36"}
    if requests:
        container["resources"] = {"requests": requests}
    return {
        "metadata": {"labels": {"app": name}, "annotations": annotations or {}},
        "spec": {"restartPolicy": restart, "containers": [container]},
    }


def deployment(name: str, replicas: int = 2, **kw) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": pod_template(name, **kw)}}


def test_nodes_are_ready_with_capacity(kube_api):
    from kubernetes import client

    # the sandbox's simulated nodes (the real node has this machine's capacity; tests may add
    # kwok nodes of their own)
    nodes = [n for n in client.CoreV1Api(kube_api).list_node(label_selector="type=kwok").items
             if n.metadata.name.startswith("sandbox-node-")]
    ready = [n for n in nodes if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)]
    assert len(ready) >= 2
    for n in ready:
        assert n.status.allocatable["cpu"] == "8"
        assert n.status.allocatable["memory"] == "32Gi"
        assert n.status.allocatable["pods"] == "110"


def test_server_version_is_the_pinned_release(sandbox):
    version = json.loads(sandbox.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.34.4"
    assert version["clientVersion"]["gitVersion"] == "v1.34.4"


def test_deployment_becomes_available(sandbox, kube_api, namespace):
    from kubernetes import client

    apply(sandbox, namespace, deployment("web", replicas=3))
    apps = client.AppsV1Api(kube_api)
    dep = wait_for(apps.list_namespaced_deployment, namespace, "web",
                   lambda d: (d.status.available_replicas or 0) == 3)
    assert any(c.type == "Available" and c.status == "True" for c in dep.status.conditions)


def test_job_completes(sandbox, kube_api, namespace):
    from kubernetes import client

    apply(sandbox, namespace, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
                               "spec": {"template": pod_template("once", restart="Never")}})
    job = wait_for(client.BatchV1Api(kube_api).list_namespaced_job, namespace, "once",
                   lambda j: (j.status.succeeded or 0) == 1)
    assert any(c.type == "Complete" and c.status == "True" for c in job.status.conditions)


def test_statefulset_local_path_claim_binds_to_the_pods_node(sandbox, kube_api, namespace):
    from kubernetes import client

    apply(sandbox, namespace, {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                 "template": pod_template("db"),
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                     "resources": {"requests": {"storage": "1Gi"}}}}]}})
    core = client.CoreV1Api(kube_api)
    pvc = wait_for(core.list_namespaced_persistent_volume_claim, namespace, "data-db-0",
                   lambda c: c.status.phase == "Bound")
    pod = wait_for(core.list_namespaced_pod, namespace, "db-0", lambda p: p.status.phase == "Running")
    pv = core.read_persistent_volume(pvc.spec.volume_name)
    assert pv.spec.storage_class_name == "local-path"
    terms = pv.spec.node_affinity.required.node_selector_terms
    assert terms[0].match_expressions[0].values == [pod.spec.node_name]
    wait_for(client.AppsV1Api(kube_api).list_namespaced_stateful_set, namespace, "db",
             lambda s: (s.status.ready_replicas or 0) == 1)


def test_static_manual_pv_binds_through_the_pv_controller(sandbox, kube_api, namespace):
    from kubernetes import client

    pv_name = f"{namespace}-manual"
    core = client.CoreV1Api(kube_api)
    core.create_persistent_volume({
        "metadata": {"name": pv_name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "storageClassName": "manual", "persistentVolumeReclaimPolicy": "Retain",
                 "hostPath": {"path": f"/tmp/{pv_name}"}}})
    try:
        apply(sandbox, namespace, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                   "metadata": {"name": "data"},
                                   "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                                            "volumeName": pv_name,
                                            "resources": {"requests": {"storage": "1Gi"}}}})
        pvc = wait_for(core.list_namespaced_persistent_volume_claim, namespace, "data",
                       lambda c: c.status.phase == "Bound")
        assert pvc.spec.volume_name == pv_name
    finally:
        core.delete_persistent_volume(pv_name)


MARKERS = {
    "image-pull": lambda cs: cs.state.waiting and cs.state.waiting.reason == "ImagePullBackOff",
    "config-error": lambda cs: cs.state.waiting and cs.state.waiting.reason == "CreateContainerConfigError",
    "crash-loop": lambda cs: (cs.restart_count >= 2 and cs.last_state.terminated
                              and cs.last_state.terminated.exit_code == 1),
    "oom": lambda cs: (cs.restart_count >= 1 and cs.last_state.terminated
                       and cs.last_state.terminated.reason == "OOMKilled"),
    "never-ready": lambda cs: cs.state.running is not None and cs.ready is False,
}


@pytest.mark.parametrize("marker", sorted(MARKERS))
def test_failure_marker_produces_its_container_state(sandbox, kube_api, namespace, marker):
    from kubernetes import client

    apply(sandbox, namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "marked", "annotations": {"sandbox.paless.io/fail": marker}},
        "spec": pod_template("marked")["spec"]})
    check = MARKERS[marker]
    pod = wait_for(client.CoreV1Api(kube_api).list_namespaced_pod, namespace, "marked",
                   lambda p: bool(p.status.container_statuses) and bool(check(p.status.container_statuses[0])),
                   timeout=30)
    ready = [c for c in pod.status.conditions if c.type == "Ready"]
    assert ready and ready[0].status == "False"


def test_crash_loop_reaches_crashloopbackoff(sandbox, kube_api, namespace):
    from kubernetes import client

    apply(sandbox, namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "crashy", "annotations": {"sandbox.paless.io/fail": "crash-loop"}},
        "spec": pod_template("crashy")["spec"]})
    wait_for(client.CoreV1Api(kube_api).list_namespaced_pod, namespace, "crashy",
             lambda p: bool(p.status.container_statuses) and p.status.container_statuses[0].state.waiting
             is not None and p.status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff",
             timeout=30)


def test_marked_job_pod_fails_the_job(sandbox, kube_api, namespace):
    from kubernetes import client

    apply(sandbox, namespace, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "bad"},
                               "spec": {"backoffLimit": 1, "template": pod_template(
                                   "bad", annotations={"sandbox.paless.io/fail": "crash-loop"},
                                   restart="Never")}})
    job = wait_for(client.BatchV1Api(kube_api).list_namespaced_job, namespace, "bad",
                   lambda j: any(c.type == "Failed" and c.status == "True" for c in (j.status.conditions or [])),
                   timeout=90)
    failed = next(c for c in job.status.conditions if c.type == "Failed")
    assert failed.reason == "BackoffLimitExceeded"


def test_ready_delay_delays_readiness(sandbox, kube_api, namespace):
    from kubernetes import client

    apply(sandbox, namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "slow", "annotations": {"sandbox.paless.io/ready-delay": "3s"}},
        "spec": pod_template("slow")["spec"]})
    core = client.CoreV1Api(kube_api)
    pod = wait_for(core.list_namespaced_pod, namespace, "slow", lambda p: p.spec.node_name is not None)
    assert pod.status.phase == "Pending"
    pod = wait_for(core.list_namespaced_pod, namespace, "slow", lambda p: p.status.phase == "Running")
    started = pod.status.container_statuses[0].state.running.started_at
    assert (started - pod.metadata.creation_timestamp).total_seconds() >= 2


def test_pod_that_fits_no_node_stays_pending_with_scheduler_reason(sandbox, kube_api, namespace):
    from kubernetes import client

    apply(sandbox, namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "huge"},
                               "spec": pod_template("huge", requests={"cpu": "64"})["spec"]})
    core = client.CoreV1Api(kube_api)
    deadline = time.monotonic() + 30
    messages: list[str] = []
    while time.monotonic() < deadline:
        events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=huge").items
        messages = [e.message for e in events if e.reason == "FailedScheduling"]
        if any("Insufficient cpu" in m for m in messages):
            break
        time.sleep(0.5)
    assert any("Insufficient cpu" in m for m in messages), messages
    assert core.read_namespaced_pod("huge", namespace).status.phase == "Pending"


def test_restricted_user_is_limited_to_its_namespace(sandbox):
    assert sandbox.restricted_kubeconfig is not None
    ok = sandbox.kubectl("auth", "can-i", "create", "deployments", "-n", sandbox.restricted_namespace,
                         kubeconfig=sandbox.restricted_kubeconfig, check=False)
    assert ok.stdout.strip() == "yes"
    denied = sandbox.kubectl("get", "pods", "-n", "default", kubeconfig=sandbox.restricted_kubeconfig,
                             check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()


@pytest.mark.docker
def test_docker_builds_from_scratch_and_pushes_to_the_registry(tmp_path: Path):
    name = f"127.0.0.1:5000/sandbox-test-{uuid.uuid4().hex[:8]}"
    (tmp_path / "hello.txt").write_text("hello\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    subprocess.run(["docker", "build", "-q", "-t", f"{name}:v1", str(tmp_path)], check=True,
                   capture_output=True)
    subprocess.run(["docker", "push", f"{name}:v1"], check=True, capture_output=True)
    repo = name.split("/", 1)[1]
    # the catalog pages by name: ask for the page that starts just before ours
    url = f"http://127.0.0.1:5000/v2/_catalog?n=100&last={repo[:-1]}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        catalog = json.load(resp)["repositories"]
    assert repo in catalog
    with urllib.request.urlopen(f"http://127.0.0.1:5000/v2/{repo}/tags/list", timeout=10) as resp:
        assert json.load(resp)["tags"] == ["v1"]


@pytest.mark.docker
def test_build_from_the_base_image_name_works_offline(tmp_path: Path):
    from paless_deploy.core.configuration.variables import BY_NAME

    base = BY_NAME["BASE_IMAGE"].default
    (tmp_path / "Dockerfile").write_text(f"FROM {base}\nENV PALESS_COMPONENT=test\n")
    res = subprocess.run(["docker", "build", "--pull=false", "-q", "-t", "sandbox-base-test:v1", str(tmp_path)],
                         check=False, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_crash_looping_pod_has_previous_logs(sandbox, kube_api, namespace):
    from kubernetes import client

    apply(sandbox, namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "crashlogs", "annotations": {"sandbox.paless.io/fail": "crash-loop"}},
        "spec": pod_template("crashlogs")["spec"]})
    core = client.CoreV1Api(kube_api)
    wait_for(core.list_namespaced_pod, namespace, "crashlogs",
             lambda p: bool(p.status.container_statuses)
             and (p.status.container_statuses[0].restart_count or 0) >= 1, timeout=30)
    previous = core.read_namespaced_pod_log("crashlogs", namespace, container="app", previous=True)
    assert "exited with code 1" in previous
    assert "container started" in core.read_namespaced_pod_log("crashlogs", namespace, container="app")


KWOK_FORWARD_PORT = 10265  # paless_sandbox.layout: where port-forwards to simulated pods arrive


def test_port_forward_to_a_simulated_pod_reaches_the_local_stand_in(sandbox, kube_api,
                                                                    namespace):
    """kwok's ClusterPortForward: our port-forward stage, pointed at a simulated pod's port,
    answers on localhost with what the stand-in server on KWOK_FORWARD_PORT serves."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from kubernetes import client

    from paless_deploy.adapters.kube import connect
    from paless_deploy.core.plan.devloop import ForwardTarget
    from paless_deploy.stages.portforward import PortForwards

    body = f"stand-in {uuid.uuid4().hex[:8]}\n".encode()

    class StandIn(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", KWOK_FORWARD_PORT), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    manifest = deployment("standin", replicas=1)
    manifest["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 8000}]
    apply(sandbox, namespace, manifest)
    wait_for(client.AppsV1Api(kube_api).list_namespaced_deployment, namespace, "standin",
             lambda d: (d.status.available_replicas or 0) == 1)
    tables: list = []
    said: list[str] = []
    forwards = PortForwards(connect(str(sandbox.kubeconfig)), namespace,
                            [ForwardTarget("web", "standin", 18000, 8000, {"app": "standin"})],
                            said.append, tables.append).start()
    try:
        deadline = time.monotonic() + 30
        while not tables and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tables, f"no forward was established: {said}"
        (forward,) = tables[-1]
        with urllib.request.urlopen(forward.url, timeout=10) as resp:
            assert resp.read() == body
    finally:
        forwards.stop()
        server.shutdown()
        server.server_close()
