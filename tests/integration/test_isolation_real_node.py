"""Isolation, for real: two branch namespaces of the Paless stack on the sandbox's real node,
NetworkPolicies enforced by the node's kube-router, credentials checked by the real
programs (PostgreSQL 18, Redis, MinIO, rclone, the Paless stand-in).

One module fixture deploys the stack twice through paless-deploy (the repository's k8s/
with tests/fixtures/overlays/realnode-stack on top: the pods on the real node, little
CPU); probe pods (the PostgreSQL image: bash, psql, timeout) then try each path from where
an attacker or a neighbour would be. Every "blocked" is paired with an "allowed" from a pod
the policies let in, so a probe that cannot connect at all proves nothing by itself.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from paless_deploy.core.configuration.branch import branch_namespace
from tests.fixtures.cluster import Sandbox
from tests.fixtures.realnode import ON_REAL_NODE, STATE
from tests.fixtures.realnode import real_node as real_node  # noqa: PLC0414 - the fixture
from tests.fixtures.realnode import real_stack as real_stack  # noqa: PLC0414 - the fixture
from tests.fixtures.realnodestack import (
    HOST_PATHS,
    ensure_shared_mount,
    stack_project,
    unmount_media,
)
from tests.fixtures.waiting import eventually
from tests.integration.deploy_helpers import Project, delete_instances, run_cli

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.realnode]

REGISTRY = "127.0.0.1:5000"
# the images the stack names, as the sandbox's registry must hold them (realstack builds them)
STACK_IMAGES = ("library/postgres:18.1", "library/redis:7.4.5-alpine",
                "minio/minio:RELEASE.2025-09-07T16-13-09Z", "minio/mc:RELEASE.2025-08-13T08-35-41Z",
                "rclone/rclone:1.71.1", "library/busybox:1.37.0",
                "ghcr.io/paperless-ngx/paperless-ngx:2.18.4")
PROBE_IMAGE = "postgres:18.1"
MEDIA_BUCKET = "paperless-media"
WEB, DATA = "app.kubernetes.io/component", "app.kubernetes.io/part-of"
TRAEFIK = {"app.kubernetes.io/name": "traefik"}
NOT_PROBE = "!isolation-test"  # the stack's own pods, not the probes labelled like them
CONVERGE_S = 90.0  # how long kube-router may take to let a new pod in (it syncs on events)


@dataclass(frozen=True)
class Stacks:
    """The two deployed namespaces and the credentials they were deployed with."""

    project: Project
    a: str
    b: str
    credentials: dict[str, str]


# ---------------------------------------------------------------------------
# preconditions


def registry_has(image: str) -> bool:
    name, tag = image.rsplit(":", 1)
    req = urllib.request.Request(f"http://{REGISTRY}/v2/{name}/manifests/{tag}", method="HEAD",
                                 headers={"Accept": "application/vnd.docker.distribution."
                                          "manifest.v2+json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def enforced(real_node, sandbox: Sandbox) -> None:
    """kube-router runs on the real node (skipped, a failure under CI=true, otherwise)."""
    try:
        why = json.loads((STATE / "realnode" / "netpol-unavailable.json").read_text())["why"]
    except (OSError, ValueError, KeyError):
        why = None
    if why:
        pytest.skip(f"NetworkPolicies are not enforced on the real node: {why}")
    node = json.loads(sandbox.kubectl("get", "node", real_node.name, "-o", "json").stdout)
    if "paless.io/network-policy-controller" not in node["metadata"].get("annotations", {}):
        pytest.skip("the real node declares no NetworkPolicy controller: run `scripts/sandbox up`")


@pytest.fixture(scope="module")
def stacks(enforced, real_stack, sandbox: Sandbox, tmp_path_factory) -> Iterator[Stacks]:
    """The stack in two branch namespaces, deployed by paless-deploy, on the real node (the
    real stack's images and cluster DNS made sure of by `real_stack`)."""
    missing = [i for i in STACK_IMAGES if not registry_has(i)]
    assert not missing, f"`realstack ensure` succeeded, yet the sandbox registry lacks {missing}"
    ensure_shared_mount(HOST_PATHS)
    credentials = {"REDIS_PASSWORD": f"redis-{secrets.token_hex(12)}",
                   "MINIO_APP_PASSWORD": f"minio-app-{secrets.token_hex(12)}",
                   "MINIO_ROOT_PASSWORD": f"minio-root-{secrets.token_hex(12)}"}
    project = stack_project(tmp_path_factory.mktemp("isolation"), {
        "PROJECT_NAME": "isolation", "PALESS_NAMESPACE": "auto", **credentials})
    run_id = uuid.uuid4().hex[:6]
    branches = [f"iso-{side}-{run_id}" for side in ("a", "b")]
    namespaces = [branch_namespace("isolation", branch) for branch in branches]
    try:
        for branch, namespace in zip(branches, namespaces, strict=True):
            # one after the other: the second reuses the images the first built
            run = run_cli(project, sandbox.kubeconfig, None, "all", timeout=1500,
                          env={"BRANCH_NAME": branch})
            assert run.returncode == 0 and run.doc["namespace"] == namespace, run
        yield Stacks(project, namespaces[0], namespaces[1], credentials)
    finally:
        sandbox.kubectl("delete", "pod", "-n", "kube-system", "-l", "isolation-test",
                        "--ignore-not-found", "--wait=false", check=False)
        delete_instances(sandbox, namespaces)
        unmount_media(namespaces)


# ---------------------------------------------------------------------------
# probe pods and what they try


class Probes:
    """Pods on the real node, in any namespace and with any labels, that try connections."""

    def __init__(self, sandbox: Sandbox, run_id: str) -> None:
        self.sandbox, self.run_id = sandbox, run_id
        self.made: dict[tuple[str, str], Any] = {}

    def pod(self, namespace: str, labels: dict[str, str]) -> str:
        """The probe pod with these labels in `namespace` (made once), Ready."""
        key = (namespace, json.dumps(labels, sort_keys=True))
        if key in self.made:
            return self.made[key]
        name = f"probe-{len(self.made)}-{self.run_id}"
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": namespace,
                            "labels": {**labels, "isolation-test": self.run_id}},
               "spec": {**ON_REAL_NODE, "terminationGracePeriodSeconds": 0,
                        "dnsPolicy": "None", "dnsConfig": {"nameservers": ["10.96.0.10"]},
                        "containers": [{"name": "probe", "image": PROBE_IMAGE,
                                        "command": ["sleep", "3600"],
                                        "resources": {"requests": {"cpu": "5m",
                                                                   "memory": "16Mi"}}}]}}
        self.sandbox.kubectl("apply", "-f", "-", input=json.dumps(pod))
        self.sandbox.kubectl("wait", "-n", namespace, "--for=condition=Ready", f"pod/{name}",
                             "--timeout=300s")
        self.made[key] = name
        return name

    def run(self, namespace: str, labels: dict[str, str], script: str,
            stdin: str | None = None) -> subprocess.CompletedProcess:
        pod = self.pod(namespace, labels)
        return self.sandbox.kubectl("exec", "-i", "-n", namespace, pod, "--", "bash", "-c",
                                    script, input=stdin, check=False)

    def connects(self, namespace: str, labels: dict[str, str], ip: str, port: int) -> bool:
        """Whether a TCP connection from such a pod to ip:port is accepted (one try)."""
        res = self.run(namespace, labels, f"timeout 5 bash -c 'exec 3<>/dev/tcp/{ip}/{port}'")
        return res.returncode == 0

    def eventually_connects(self, namespace: str, labels: dict[str, str], ip: str,
                            port: int) -> bool:
        """Connected within CONVERGE_S: a new pod is let in once kube-router synced it."""
        deadline = time.monotonic() + CONVERGE_S
        while True:
            if self.connects(namespace, labels, ip, port):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(2)


@pytest.fixture(scope="module")
def probes(stacks: Stacks, sandbox: Sandbox) -> Probes:
    return Probes(sandbox, uuid.uuid4().hex[:6])


def pod_ip(sandbox: Sandbox, namespace: str, component: str) -> str:
    pods = json.loads(sandbox.kubectl("get", "pods", "-n", namespace, "-l",
                                      f"{WEB}={component},{NOT_PROBE}", "-o",
                                      "json").stdout)["items"]
    running = [p for p in pods if p["status"].get("phase") == "Running"]
    assert running, f"no running {component} pod in {namespace}"
    return running[0]["status"]["podIP"]


def service_ip(sandbox: Sandbox, namespace: str, name: str) -> str:
    return json.loads(sandbox.kubectl("get", "service", "-n", namespace, name, "-o",
                                      "json").stdout)["spec"]["clusterIP"]


def as_component(component: str) -> dict[str, str]:
    return {WEB: component, DATA: "paless"}


DATA_PORTS = {"postgres": 5432, "redis": 6379, "minio": 9000}


# ---------------------------------------------------------------------------
# the tests


def test_both_stacks_are_healthy_and_show_their_policies(stacks: Stacks, sandbox: Sandbox) -> None:
    for namespace in (stacks.a, stacks.b):
        run = run_cli(stacks.project, sandbox.kubeconfig, namespace, "status")
        assert run.returncode == 0, run
        names = {row["name"] for row in run.doc["status"]["policies"]}
        assert names == {"default-deny-ingress", "postgres", "redis", "minio",
                         "data-services-egress", "web-from-ingress", "minio-console"}
    text = run_cli(stacks.project, sandbox.kubeconfig, stacks.a, "status", json_output=False)
    assert "Network policies" in text.stdout and "component in (web,worker,scheduler) on " \
        "6379/TCP" in text.stdout, text


def test_a_branch_cannot_reach_the_other_branchs_data_services(stacks: Stacks, probes: Probes,
                                                              sandbox: Sandbox) -> None:
    for mine, theirs in ((stacks.a, stacks.b), (stacks.b, stacks.a)):
        # allowed first: the same probe, labelled as the stack's web, in the stack's own
        # namespace, reaches each service (so "blocked" below is the policy's doing)
        for service, port in DATA_PORTS.items():
            ip = pod_ip(sandbox, theirs, service)
            assert probes.eventually_connects(theirs, as_component("web"), ip, port), \
                (theirs, service)
            # a pod of the other branch, labelled exactly as the stack's own web
            assert not probes.connects(mine, as_component("web"), ip, port), (mine, service)
        for service in ("redis", "minio"):  # through the Service's address too
            assert not probes.connects(mine, as_component("web"),
                                       service_ip(sandbox, theirs, service),
                                       DATA_PORTS[service])


def test_inside_a_namespace_only_the_stacks_clients_reach_the_data(stacks: Stacks,
                                                                  probes: Probes,
                                                                  sandbox: Sandbox) -> None:
    for service, port in DATA_PORTS.items():
        ip = pod_ip(sandbox, stacks.a, service)
        assert probes.eventually_connects(stacks.a, as_component("web"), ip, port)
        assert not probes.connects(stacks.a, as_component("debug"), ip, port), service
    # the web pod itself is closed to its neighbours: only the ingress controller gets in
    assert not probes.connects(stacks.a, as_component("worker"), pod_ip(sandbox, stacks.a, "web"),
                               8000)


def test_web_serves_the_ingress_controller_and_no_one_else(stacks: Stacks, probes: Probes,
                                                          sandbox: Sandbox) -> None:
    web = service_ip(sandbox, stacks.a, "web")
    request = (f"exec 3<>/dev/tcp/{web}/8000 && printf 'GET / HTTP/1.0\\r\\nHost: paless.local"
               "\\r\\n\\r\\n' >&3 && timeout 10 head -n 1 <&3")
    deadline = time.monotonic() + CONVERGE_S
    while True:
        res = probes.run("kube-system", TRAEFIK, f"timeout 15 bash -c \"{request}\"")
        if res.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert res.stdout.startswith("HTTP/1.1 302"), res  # Paperless sends anonymous users to log in
    assert not probes.connects(stacks.b, TRAEFIK, web, 8000)  # the label elsewhere: no
    assert not probes.connects("kube-system", {"app.kubernetes.io/name": "other"}, web, 8000)


def test_redis_refuses_a_client_without_the_password(stacks: Stacks, probes: Probes,
                                                     sandbox: Sandbox) -> None:
    ip = pod_ip(sandbox, stacks.a, "redis")
    assert probes.eventually_connects(stacks.a, as_component("web"), ip, 6379)
    talk = (f"exec 3<>/dev/tcp/{ip}/6379; cat >&3; timeout 3 cat <&3; true")

    def say(lines: str) -> str:
        return probes.run(stacks.a, as_component("web"), talk, stdin=lines).stdout

    assert say("PING\r\n").startswith("-NOAUTH")
    assert say("AUTH not-the-password\r\nPING\r\n").startswith("-WRONGPASS")
    answer = say(f"AUTH {stacks.credentials['REDIS_PASSWORD']}\r\nPING\r\n")
    assert answer.split() == ["+OK", "+PONG"], answer


def test_postgres_refuses_a_client_without_the_password(stacks: Stacks, probes: Probes,
                                                        sandbox: Sandbox) -> None:
    ip = pod_ip(sandbox, stacks.a, "postgres")
    assert probes.eventually_connects(stacks.a, as_component("web"), ip, 5432)
    psql = f"PGCONNECT_TIMEOUT=5 psql -h {ip} -U paless_app -d paperless -w -c 'select 1'"
    none = probes.run(stacks.a, as_component("web"), psql)
    assert none.returncode != 0 and "no password supplied" in none.stderr, none
    wrong = probes.run(stacks.a, as_component("web"), f"PGPASSWORD=wrong {psql}")
    assert "password authentication failed" in wrong.stderr, wrong


def mc_pod(sandbox: Sandbox, namespace: str, user: str, script: str) -> str:
    """A one-shot pod with mc and the credentials of `user` (ROOT or APP, from the stack's
    Secret), let in as the bucket Job is, with the alias `minio` set; its log."""
    name = f"mc-{uuid.uuid4().hex[:6]}"
    keys = {"MC_USER": f"MINIO_{user}_USER", "MC_PASSWORD": f"MINIO_{user}_PASSWORD"}
    env = [{"name": var, "valueFrom": {"secretKeyRef": {"name": "paless-secret", "key": key}}}
           for var, key in keys.items()]
    # kube-router lets a new pod in once it synced it: try for a minute
    alias = ("export MC_CONFIG_DIR=/tmp/mc\n"
             "for i in $(seq 30); do printf '%s\\n%s\\n' \"$MC_USER\" \"$MC_PASSWORD\" | "
             "mc alias set minio http://minio:9000 >/dev/null && mc ls minio >/dev/null && break; "
             "sleep 2; done\n")
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": namespace,
                        "labels": {**as_component("minio-init"), "isolation-test": "mc"}},
           "spec": {**ON_REAL_NODE, "restartPolicy": "Never",
                    "dnsPolicy": "None", "dnsConfig": {
                        "nameservers": ["10.96.0.10"],
                        "searches": [f"{namespace}.svc.cluster.local"]},
                    "containers": [{"name": "mc", "image": "minio/mc:RELEASE.2025-08-13T08-35-41Z",
                                    "command": ["sh", "-ec", alias + script], "env": env,
                                    "resources": {"requests": {"cpu": "5m"}}}]}}
    sandbox.kubectl("apply", "-f", "-", input=json.dumps(pod))
    sandbox.kubectl("wait", "-n", namespace, f"pod/{name}", "--timeout=300s",
                    "--for=jsonpath={.status.phase}=Succeeded")
    return sandbox.kubectl("logs", "-n", namespace, name).stdout


def test_the_apps_minio_user_reaches_its_bucket_and_nothing_else(stacks: Stacks, probes: Probes,
                                                                sandbox: Sandbox) -> None:
    mc_pod(sandbox, stacks.a, "ROOT", "mc mb --ignore-existing minio/iso-other\n"
                                      "echo confidential | mc pipe minio/iso-other/other.txt\n")
    worker = json.loads(sandbox.kubectl("get", "pods", "-n", stacks.a, "-l",
                                        f"{WEB}=worker,{NOT_PROBE}", "-o",
                                        "json").stdout)["items"][0]["metadata"]["name"]

    def rclone(*args: str) -> subprocess.CompletedProcess:
        return sandbox.kubectl("exec", "-n", stacks.a, worker, "-c", "rclone", "--", "rclone",
                               "--config", "/config/rclone/rclone.conf", *args, check=False)

    key = sandbox.kubectl("exec", "-n", stacks.a, worker, "-c", "rclone", "--", "printenv",
                          "AWS_ACCESS_KEY_ID").stdout.strip()
    assert key == "paless-app"  # the sidecar holds the app user, not MinIO's root
    # its own bucket: write, list, read
    assert rclone("touch", f"minio:{MEDIA_BUCKET}/iso-probe.txt").returncode == 0
    assert "iso-probe.txt" in rclone("lsf", f"minio:{MEDIA_BUCKET}").stdout
    assert rclone("cat", f"minio:{MEDIA_BUCKET}/iso-probe.txt").returncode == 0
    # another bucket: no read, no list, no write
    other = rclone("cat", "minio:iso-other/other.txt")
    assert other.returncode != 0 and "confidential" not in other.stdout
    assert "AccessDenied" in other.stderr or "Access Denied" in other.stderr, other
    assert rclone("lsf", "minio:iso-other").returncode != 0
    assert rclone("touch", "minio:iso-other/x.txt").returncode != 0
    # and no bucket of its own making (asked with mc: rclone does not report the refusal)
    made = mc_pod(sandbox, stacks.a, "APP", "if mc mb minio/iso-made-by-app; then echo CREATED; "
                                            "else echo REFUSED; fi\nmc ls minio\n")
    assert "REFUSED" in made and "CREATED" not in made, made
    assert "iso-other" not in made and MEDIA_BUCKET in made, made  # it lists its bucket only
    # and anonymously, from a pod the policy lets in: nothing
    ip = pod_ip(sandbox, stacks.a, "minio")
    anonymous = probes.run(stacks.a, as_component("web"), (
        f"exec 3<>/dev/tcp/{ip}/9000; printf 'GET /{MEDIA_BUCKET}/ HTTP/1.1\\r\\nHost: minio:9000"
        "\\r\\nConnection: close\\r\\n\\r\\n' >&3; timeout 5 head -n 1 <&3"))
    assert anonymous.stdout.startswith("HTTP/1.1 403"), anonymous


def test_a_rollout_of_web_leaves_the_new_pod_its_mount(stacks: Stacks, sandbox: Sandbox) -> None:
    """Each app pod's rclone sidecar mounts onto a volume of its own: a rollout of web (as
    `dev` makes) leaves the new pod's mount alive when the old pod's sidecar unmounts. On
    the dev overlay's shared hostPath the sidecars' mounts stacked in one node directory,
    the old sidecar took the new one's with it, and the new pod never started again
    (failed to stat the media path: transport endpoint is not connected). The next test
    then writes through the new pod."""
    selector = f"{WEB}=web,{NOT_PROBE}"

    def pods() -> list[dict]:
        return json.loads(sandbox.kubectl("get", "pods", "-n", stacks.a, "-l", selector,
                                          "-o", "json").stdout)["items"]

    before = {p["metadata"]["name"] for p in pods()}
    sandbox.kubectl("rollout", "restart", "deployment/web", "-n", stacks.a)
    sandbox.kubectl("rollout", "status", "deployment/web", "-n", stacks.a, "--timeout=180s")
    eventually(lambda: not before & {p["metadata"]["name"] for p in pods()}, 90,
               "the replaced web pod gone")
    time.sleep(8)  # the old sidecar's unmount, then the new sidecar's probes (every 5 s)
    (pod,) = pods()
    statuses = {c["name"]: c for c in pod["status"]["containerStatuses"]}
    assert all(c["ready"] and c["restartCount"] == 0 for c in statuses.values()), statuses
    looked = sandbox.kubectl("exec", "-n", stacks.a, pod["metadata"]["name"], "-c", "web", "--",
                             "ls", "/usr/src/paperless/media", check=False)
    assert looked.returncode == 0, looked.stderr


def test_a_file_web_writes_under_its_media_path_reaches_the_bucket(stacks: Stacks,
                                                                   sandbox: Sandbox) -> None:
    """The rclone sidecar's FUSE mount, end to end: web writes a file where Paperless keeps
    its originals, and MinIO holds it (read back over S3 from another pod, not through the
    mount), as a document uploaded to Paperless would go."""
    def running(component: str) -> str:
        pods = json.loads(sandbox.kubectl("get", "pods", "-n", stacks.a, "-l",
                                          f"{WEB}={component},{NOT_PROBE}", "-o",
                                          "json").stdout)["items"]
        return next(p["metadata"]["name"] for p in pods if p["status"].get("phase") == "Running")

    key = f"documents/originals/mount-{uuid.uuid4().hex[:8]}.txt"
    content = f"written by web through the rclone mount {uuid.uuid4().hex}"
    written = sandbox.kubectl(
        "exec", "-n", stacks.a, running("web"), "-c", "web", "--", "sh", "-c",
        'mkdir -p "$(dirname "$1")" && printf %s "$2" > "$1"', "sh",
        f"/usr/src/paperless/media/{key}", content, check=False)
    assert written.returncode == 0, written.stderr
    worker = running("worker")

    def in_bucket() -> bool:
        read = sandbox.kubectl("exec", "-n", stacks.a, worker, "-c", "rclone", "--", "rclone",
                               "--config", "/config/rclone/rclone.conf", "cat",
                               f"minio:{MEDIA_BUCKET}/{key}", check=False)
        return read.returncode == 0 and read.stdout == content

    # rclone's full VFS cache uploads a closed file after its write-back delay (5 s)
    try:
        eventually(in_bucket, 90, f"{key} in the bucket {MEDIA_BUCKET}", interval=2)
    except AssertionError as exc:
        mounts = sandbox.kubectl("exec", "-n", stacks.a, running("web"), "-c", "web", "--",
                                 "grep", "media", "/proc/mounts", check=False).stdout
        listed = sandbox.kubectl("exec", "-n", stacks.a, worker, "-c", "rclone", "--",
                                 "rclone", "--config", "/config/rclone/rclone.conf", "lsf",
                                 "-R", f"minio:{MEDIA_BUCKET}", check=False)
        logs = {c: sandbox.kubectl("logs", "-n", stacks.a, running(c), "-c", "rclone",
                                   check=False).stdout[-1500:]
                for c in ("web", "worker", "scheduler")}
        raise AssertionError(f"{exc}; web's media mounts: {mounts!r}; the bucket holds: "
                             f"{listed.stdout[-800:]!r} {listed.stderr[-400:]!r}; the rclone "
                             f"sidecars said: {logs}") from None


def container_logs(sandbox: Sandbox, namespace: str) -> dict[str, str]:
    """pod/container -> its log, for every container of the namespace's pods."""
    logs = {}
    pods = json.loads(sandbox.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)
    for pod in pods["items"]:
        spec = pod["spec"]
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            res = sandbox.kubectl("logs", "-n", namespace, pod["metadata"]["name"], "-c",
                                  container["name"], check=False)
            logs[f"{pod['metadata']['name']}/{container['name']}"] = res.stdout
    return logs


APP_CONTAINERS = ("/web", "/worker", "/scheduler", "/migrate")


def leaks(stacks: Stacks, logs: dict[str, str]) -> dict[str, list[str]]:
    return {where: [name for name, value in stacks.credentials.items() if value in text]
            for where, text in logs.items()
            if any(value in text for value in stacks.credentials.values())}


def test_no_credential_in_the_logs_of_the_data_services_jobs_and_sidecars(
        stacks: Stacks, sandbox: Sandbox) -> None:
    logs = container_logs(sandbox, stacks.a)
    ours = {k: v for k, v in logs.items() if not k.endswith(APP_CONTAINERS)}
    assert any(k.endswith("/create-bucket") for k in ours) and any(
        k.endswith("/redis") for k in ours), sorted(logs)
    assert leaks(stacks, ours) == {}


def test_no_credential_in_the_apps_logs(stacks: Stacks, sandbox: Sandbox) -> None:
    logs = container_logs(sandbox, stacks.a)
    apps = {k: v for k, v in logs.items() if k.endswith(APP_CONTAINERS)}
    assert apps and leaks(stacks, apps) == {}


def test_doctor_says_the_policies_are_enforced_and_by_what(stacks: Stacks,
                                                           sandbox: Sandbox) -> None:
    run = run_cli(stacks.project, sandbox.kubeconfig, stacks.a, "doctor", timeout=600)
    check = next(c for c in run.doc["checks"] if c["name"] == "NetworkPolicy enforced")
    assert check["status"] == "ok" and "kube-router" in check["detail"], check


# ---------------------------------------------------------------------------
# last: a real failure on stack b (it leaves b's web broken)

def overlay_patching(deployment: str, container: str, variable: str, value: str) -> str:
    """A kustomization on realnode-stack giving one container a literal `variable`."""
    return f"""\
resources: [../realnode-stack]
patches:
  - patch: |
      apiVersion: apps/v1
      kind: Deployment
      metadata: {{name: {deployment}}}
      spec:
        template:
          spec:
            containers:
              - name: {container}
                env:
                  - {{name: {variable}, value: {value}, valueFrom: null}}
"""


def deploy_broken(stacks: Stacks, sandbox: Sandbox, name: str, kustomization: str) -> str:
    """`all` of stack b with the overlay `name`: exit 1; its errors as JSON text."""
    overlay = stacks.project.dir / "k8s" / "overlays" / name
    overlay.mkdir(exist_ok=True)
    (overlay / "kustomization.yaml").write_text(kustomization)
    run = run_cli(stacks.project, sandbox.kubeconfig, stacks.b, "--overlay", name,
                  "--progress-deadline", "40s", "all", timeout=900)
    assert run.returncode == 1, run
    assert not [v for v in stacks.credentials.values() if v in run.stdout + run.stderr]
    return json.dumps(run.doc["errors"])


def test_a_minio_secret_that_does_not_match_is_named_with_minios_answer(
        stacks: Stacks, sandbox: Sandbox) -> None:
    said = deploy_broken(stacks, sandbox, "realnode-wrong-minio-secret", overlay_patching(
        "worker", "rclone", "AWS_SECRET_ACCESS_KEY", "not-the-minio-secret"))
    # the worker's sidecar: its start-up probe's event, with MinIO's answer in it
    assert "SignatureDoesNotMatch" in said and "Pod/worker-" in said, said


def test_a_wrong_database_password_is_named_with_postgresqls_words(stacks: Stacks,
                                                                   sandbox: Sandbox) -> None:
    # the worker comes back with its own secret; web (after it) gets a wrong password
    said = deploy_broken(stacks, sandbox, "realnode-wrong-db-password", overlay_patching(
        "web", "web", "PAPERLESS_DBPASS", "not-the-apps-password"))
    # the stand-in's own log line, with PostgreSQL's words in it
    assert 'password authentication failed for user \\"paless_app\\"' in said, said
