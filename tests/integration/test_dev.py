"""`paless-deploy dev` driven for real: a running dev process, files edited under it, the
cluster, containerd and localhost looked at, Ctrl-C at the end.

The tree (written here, not for the tool: `app:` labels, a Job running the web image) runs
on the sandbox's real node, so logs, crashes, readiness and port-forwards are the kubelet's
and containerd's own; images reach the node as on a k3s laptop, imported into its
containerd (IMAGE_DELIVERY=k3s-import), never pulled.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.realnode import ON_REAL_NODE, RealNode
from tests.fixtures.realnode import real_node as real_node  # noqa: PLC0414 - the fixture
from tests.integration.deploy_helpers import clean_env

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.realnode]

BASE = "ghcr.io/paperless-ngx/paperless-ngx:2.18.4"  # the sandbox's busybox stand-in
WEB_DOCKERFILE = (f"FROM {BASE}\nCOPY www/ /www/\nCOPY start.sh /start.sh\n"
                  'CMD ["sh", "/start.sh"]\n')
SERVE = ('echo "web: serving $(cat /www/index.html) as $POD_NAME"\n'
         'echo "$POD_NAME" > /www/pod\nexec busybox httpd -f -p 8000 -h /www\n')
QUICK = {"paless.io/failure-grace": "1s", "paless.io/allowed-restarts": "0"}


def on_real_node(name: str, containers: list[dict], **template: Any) -> dict:
    return {"metadata": {"labels": {"app": name}, **template},
            "spec": {**ON_REAL_NODE, "terminationGracePeriodSeconds": 1,
                     "containers": containers}}


def manifests() -> list[dict]:
    web = {"name": "web", "image": "web", "ports": [{"name": "http", "containerPort": 8000}],
           "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath":
                                                                     "metadata.name"}}}],
           "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}}
    migrate = on_real_node("migrate", [{"name": "migrate", "image": "web", "command": [
        "sh", "-c", "echo migrated $(cat /www/index.html)"]}])
    migrate["spec"]["restartPolicy"] = "Never"
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "labels": {"app": "web"}},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                  "template": on_real_node("web", [web], annotations=QUICK)}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web",
                                                            "labels": {"app": "web"}},
         "spec": {"selector": {"app": "web"},
                  "ports": [{"name": "http", "port": 8000, "targetPort": "http"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "worker", "labels": {"app": "worker"}},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "worker"}},
                  "template": on_real_node("worker", [{"name": "worker", "image": "worker"}],
                                           annotations=QUICK)}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
         "spec": {"backoffLimit": 0, "template": migrate}},
    ]


def make_tree(root: Path, project_name: str) -> Path:
    (root / "web" / "www").mkdir(parents=True)
    (root / "web" / "Dockerfile").write_text(WEB_DOCKERFILE)
    (root / "web" / "start.sh").write_text(SERVE)
    (root / "web" / "www" / "index.html").write_text("web v1\n")
    (root / "web" / "NOTES.md").write_text("not in the image\n")
    (root / "web" / ".dockerignore").write_text("NOTES.md\n")
    (root / "worker").mkdir()
    (root / "worker" / "version").write_text("worker v1\n")
    (root / "worker" / "Dockerfile").write_text(
        f"FROM {BASE}\nCOPY version /version\n"
        'CMD ["sh", "-c", "while true; do echo \\"worker: tick $(cat /version)\\"; '
        'sleep 1; done"]\n')
    overlay = root / "k8s" / "overlays" / "dev"
    overlay.mkdir(parents=True)
    (overlay / "app.yaml").write_text("\n---\n".join(json.dumps(o) for o in manifests()))
    (overlay / "kustomization.yaml").write_text("resources: [app.yaml]\n")
    (root / "paless.env").write_text(f"PROJECT_NAME={project_name}\n")
    return root


@dataclass
class Output:
    """Lines of one stream of the dev process, read as they come."""

    lines: list[str] = field(default_factory=list)
    fresh: queue.Queue[str] = field(default_factory=queue.Queue)

    def read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))
            self.fresh.put(line)

    def text(self) -> str:
        return "\n".join(self.lines)


class Dev:
    """A running `paless-deploy dev`."""

    def __init__(self, root: Path, kubeconfig: Path, namespace: str, env: dict[str, str]):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "paless_deploy", "--kubeconfig", str(kubeconfig), "-n",
             namespace, "dev", "--port-forward"], cwd=root, env=clean_env(env), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out, self.err = Output(), Output()
        for output, stream in ((self.out, self.proc.stdout), (self.err, self.proc.stderr)):
            threading.Thread(target=output.read, args=(stream,), daemon=True).start()

    def wait_for(self, pattern: str, timeout: float, *, stream: str = "err",
                 after: int = 0) -> re.Match[str]:
        """The first line matching `pattern` (among lines from index `after` on)."""
        output = self.err if stream == "err" else self.out
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in output.lines[after:]:
                found = regex.search(line)
                if found:
                    return found
            if self.proc.poll() is not None:
                raise AssertionError(f"dev exited ({self.proc.returncode}) before {pattern!r}:"
                                     f"\n{self.err.text()[-6000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no line {pattern!r} within {timeout}s:\n"
                                     f"{output.text()[-6000:]}")
            try:
                output.fresh.get(timeout=0.5)
            except queue.Empty:
                pass

    def mark(self) -> int:
        return len(self.err.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def kubectl_json(sandbox: Any, *args: str) -> dict:
    return json.loads(sandbox.kubectl("get", *args, "-o", "json").stdout)


def image_tag(sandbox: Any, namespace: str, name: str) -> tuple[str, int]:
    """(tag of the Deployment's image, its generation)."""
    deployment = kubectl_json(sandbox, "deployment", name, "-n", namespace)
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return image.rsplit(":", 1)[1], int(deployment["metadata"]["generation"])


def job_uid(sandbox: Any, namespace: str) -> str:
    job = kubectl_json(sandbox, "job", "migrate", "-n", namespace)
    assert any(c["type"] == "Complete" and c["status"] == "True"
               for c in job["status"].get("conditions") or []), job["status"]
    return str(job["metadata"]["uid"])


def get(url: str, timeout: float = 60) -> str:
    """The body at `url`, retrying while the forward is being re-established."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except (urllib.error.URLError, OSError, ConnectionError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout}s: {exc}") from exc
            time.sleep(0.3)


def wait_body(url: str, wanted: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while (body := get(url, timeout)) != wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} answered {body!r}, not {wanted!r}")
        time.sleep(0.3)
    return body


@pytest.fixture
def tree(tmp_path: Path, docker_client: Any, real_node: RealNode) -> Iterator[tuple[Path, str]]:
    name = f"dev{uuid.uuid4().hex[:8]}"
    yield make_tree(tmp_path / "tree", name), name
    try:
        for image in docker_client.images():
            for tag in image.get("RepoTags") or []:
                if f"/{name}-" in tag:
                    docker_client.remove_image(tag, force=True)
    except Exception:  # noqa: BLE001, S110 - best-effort cleanup (the engine may restart)
        pass
    listed = real_node.ctr("images", "ls", "-q", check=False).stdout.split()
    for ref in listed:
        if f"/{name}-" in ref:
            real_node.ctr("images", "rm", ref, check=False)


def test_dev_loop(sandbox: Any, real_node: RealNode, namespace: str,
                  tree: tuple[Path, str]) -> None:
    root, _ = tree
    dev = Dev(root, sandbox.kubeconfig, namespace, {
        "IMAGE_DELIVERY": "k3s-import",
        "PALESS_CONTAINERD_ADDRESS": str(real_node.containerd_socket)})
    try:
        # -- the first deploy, logs, the port-forward ----------------------------------------
        dev.wait_for(r"watching for changes", 300)
        url = dev.wait_for(r"web\s+\S\s+(http://127\.0\.0\.1:\d+/)", 60).group(1)
        web0, _ = image_tag(sandbox, namespace, "web")
        worker0, worker_gen0 = image_tag(sandbox, namespace, "worker")
        job0 = job_uid(sandbox, namespace)
        assert wait_body(url, "web v1\n") == "web v1\n"
        pod0 = get(url + "pod").strip()
        dev.wait_for(rf"^\[web/web\] web: serving web v1 as {pod0}$", 60, stream="out")
        dev.wait_for(r"^\[worker/worker\] worker: tick worker v1$", 60, stream="out")
        dev.wait_for(r"^\[web/migrate\] migrated web v1$", 60, stream="out")

        # -- a file .dockerignore excludes: no app, nothing done -------------------------------
        mark = dev.mark()
        (root / "web" / "NOTES.md").write_text("still not in the image\n")
        dev.wait_for(r"ignored: web/NOTES\.md", 30, after=mark)

        # -- web's content: only web (and the Job running its image) roll out ------------------
        mark = dev.mark()
        (root / "web" / "www" / "index.html").write_text("web v2\n")
        dev.wait_for(r"change: web/www/index\.html -> rebuild web$", 30, after=mark)
        ready = dev.wait_for(r"ready: web rolled out in .*\(edit to Ready ([0-9.]+)s\)", 240,
                             after=mark)
        assert float(ready.group(1)) > 0
        web1, _ = image_tag(sandbox, namespace, "web")
        assert web1 != web0
        assert image_tag(sandbox, namespace, "worker") == (worker0, worker_gen0)
        job1 = job_uid(sandbox, namespace)
        assert job1 != job0  # replaced: it runs the web image
        assert wait_body(url, "web v2\n") == "web v2\n"  # the forward follows the new pod
        pod1 = get(url + "pod").strip()
        assert pod1 != pod0
        dev.wait_for(rf"^\[web/web\] web: serving web v2 as {pod1}$", 60, stream="out")
        dev.wait_for(r"^\[web/migrate\] migrated web v2$", 60, stream="out")

        # -- the worker: only the worker rolls out, once git is done (.git/index.lock) ---------
        (root / ".git").mkdir(exist_ok=True)
        lock = root / ".git" / "index.lock"
        lock.write_text("")
        mark = dev.mark()
        (root / "worker" / "version").write_text("worker v2\n")
        time.sleep(1.5)  # a burst is due after 0.2 s: it must still be waiting for git
        assert not [line for line in dev.err.lines[mark:] if "change:" in line]
        lock.unlink()
        dev.wait_for(r"change: worker/version -> rebuild worker$", 30, after=mark)
        dev.wait_for(r"ready: worker rolled out", 240, after=mark)
        worker1, worker_gen1 = image_tag(sandbox, namespace, "worker")
        assert worker1 != worker0 and worker_gen1 == worker_gen0 + 1
        assert image_tag(sandbox, namespace, "web")[0] == web1
        assert job_uid(sandbox, namespace) == job1
        dev.wait_for(r"^\[worker/worker\] worker: tick worker v2$", 60, stream="out")

        # -- a broken Dockerfile: diagnosed, nothing rolled out, the loop goes on -------------
        mark = dev.mark()
        (root / "web" / "Dockerfile").write_text(WEB_DOCKERFILE + "COPY missing.txt /m\n")
        failed = dev.wait_for(r"failed: .*", 120, after=mark)
        assert "COPY missing.txt /m" in failed.group(0) and "exit 3" not in failed.group(0)
        dev.wait_for(r"fix it and save", 10, after=mark)
        assert image_tag(sandbox, namespace, "web")[0] == web1

        # -- fixed, but the new web crashes: diagnosed from the pod, the loop goes on ----------
        mark = dev.mark()
        (root / "web" / "start.sh").write_text("echo 'web: cannot start'; exit 1\n")
        (root / "web" / "Dockerfile").write_text(WEB_DOCKERFILE)
        dev.wait_for(r"crash-loop|CrashLoopBackOff|exited with code 1|keeps exiting", 240,
                     after=mark)
        dev.wait_for(r"failed: .*", 120, after=mark)
        dev.wait_for(r"^\[web/web\] web: cannot start$", 60, stream="out")
        assert dev.proc.poll() is None

        # -- fixed by the next edit, without restarting dev ------------------------------------
        mark = dev.mark()
        (root / "web" / "www" / "index.html").write_text("web v3\n")
        (root / "web" / "start.sh").write_text(SERVE)
        dev.wait_for(r"ready: web rolled out", 240, after=mark)
        assert wait_body(url, "web v3\n") == "web v3\n"

        # -- Ctrl-C during a rollout: exit 130, the lock released, the forward closed ----------
        mark = dev.mark()
        (root / "web" / "start.sh").write_text("sleep 30\n" + SERVE)
        dev.wait_for(r"waiting\s+Deployment/web", 120, after=mark)
        lease = kubectl_json(sandbox, "lease", "paless-deploy", "-n", namespace)
        assert "dev" in lease["spec"]["holderIdentity"]
        dev.proc.send_signal(signal.SIGINT)
        assert dev.proc.wait(timeout=60) == 130
        time.sleep(0.5)  # the reader threads take the last lines
        assert "dev stopped (Ctrl-C) after" in dev.err.text()
        assert sandbox.kubectl("get", "lease", "paless-deploy", "-n", namespace,
                               check=False).returncode != 0
        with pytest.raises((urllib.error.URLError, OSError)):
            urllib.request.urlopen(url, timeout=3)
        assert "Traceback" not in dev.err.text()
    finally:
        dev.stop()
