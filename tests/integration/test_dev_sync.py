"""`dev`'s sync on the real node, on a tree laid out as Paless's repository (the base built
by the root Dockerfile FROM the real stack's 1.3 GB Paperless stand-in, web, worker and
scheduler FROM it): a change in `src/` is answered
by the running web pod before any new image exists, then the workload runs a rebuilt image
holding the same change; a pod deleted right after a sync comes back with the change; the
scheduler (a process without a reload in place) waits for its image; a Dockerfile change
rebuilds without a sync. Editors' JSON events (`--output json`) are read on the way.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from benchmarks.realloop import DevProcess
from tests.fixtures.paless_layout import SRC, real_node_workload, write_paless_layout
from tests.fixtures.realdata import BASE_IMAGE, require_real_stack
from tests.fixtures.realnode import RealNode
from tests.fixtures.realnode import real_node as real_node  # noqa: PLC0414 - the fixture
from tests.fixtures.waiting import eventually
from tests.integration.deploy_helpers import clean_env, delete_instances
from tests.integration.test_image_graph import _file_in_image

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.realnode]


class Dev(DevProcess):
    """A running `paless-deploy --output json dev --no-logs`: its stderr lines and events."""

    def __init__(self, root: Path, kubeconfig: Path, namespace: str) -> None:
        super().__init__(
            [sys.executable, "-m", "paless_deploy", "--kubeconfig", str(kubeconfig), "-n",
             namespace, "--env-file", str(root / "test.env"), "--output", "json", "dev",
             "--no-logs"], clean_env(), cwd=root, keep_stdout=True)

    def events(self, after: int = 0) -> list[dict]:
        return [json.loads(line) for line in self.lines[after:] if line.startswith('{"event"')]

    def wait_event(self, name: str, timeout: float, after: int = 0,
                   where: Any = None, **match: Any) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events(after):
                if event["event"] == name and all(event.get(k) == v for k, v in match.items()) \
                        and (where is None or where(event)):
                    return event
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no event {name} {match} (dev exited: "
                                     f"{self.proc.poll()}):\n" + "\n".join(self.lines[-60:]))
            time.sleep(0.1)

    def finish(self) -> dict:
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=60)
        return json.loads(out)


def pods(sandbox: Any, namespace: str, app: str) -> list[dict]:
    items = json.loads(sandbox.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}",
                                       "-o", "json").stdout)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def answer(sandbox: Any, namespace: str, pod: str) -> str:
    return sandbox.kubectl("exec", "-n", namespace, pod, "--", "wget", "-q", "-O", "-",
                           "http://127.0.0.1:8080/", check=False).stdout


def image_of(sandbox: Any, namespace: str, app: str) -> str:
    deployment = json.loads(sandbox.kubectl("get", "deployment", app, "-n", namespace,
                                            "-o", "json").stdout)
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def test_dev_syncs_into_running_pods_then_rolls_out_the_rebuilt_image(
        tmp_path: Path, sandbox: Any, registry: Any, real_node: RealNode) -> None:
    require_real_stack(sandbox)  # the 1.3 GB Paperless stand-in the base starts FROM
    project = f"ls{uuid.uuid4().hex[:6]}"
    root = write_paless_layout(tmp_path / "paless", project, base=BASE_IMAGE)
    (root / "test.env").write_text(f"PROJECT_NAME={project}\n")
    # web's build waits a little after its base: a pod deleted after a sync comes back
    # from the old image, before the rebuilt one rolls out
    (root / "Dockerfile.web").write_text((root / "Dockerfile.web").read_text().replace(
        "\nCMD", "\nRUN sleep 6\nCMD", 1))
    # a second container of worker's image whose files cannot be written: its sync fails,
    # is said, and the loop goes on
    overlay = root / "k8s" / "overlays" / "dev" / "objects.yaml"
    locked = real_node_workload("worker")
    locked["metadata"]["name"] = "locked"
    template = locked["spec"]["template"]
    locked["spec"]["selector"]["matchLabels"] = template["metadata"]["labels"] = {
        "app": "locked"}
    template["spec"]["containers"][0].update(
        name="locked", securityContext={"readOnlyRootFilesystem": True})
    overlay.write_text(overlay.read_text() + "\n---\n" + json.dumps(locked))
    namespace = f"t-sync-{uuid.uuid4().hex[:5]}"
    dev = Dev(root, sandbox.kubeconfig, namespace)
    try:
        dev.wait_event("ready", 400)  # the first deploy
        (web,) = pods(sandbox, namespace, "web")
        old_ref = image_of(sandbox, namespace, "web")
        assert answer(sandbox, namespace, web["metadata"]["name"]) == "VERSION = 1\n"

        # -- a change in src/: the running pod answers it, before a new image exists --------
        mark = len(dev.lines)
        (root / "src" / "app.py").write_text("VERSION = 2\n")
        synced = dev.wait_event("synced", 60, after=mark)
        done = {(c["app"], c["container"]): c for c in synced["containers"]}
        assert set(done) == {("web", "web"), ("worker", "worker"), ("worker", "locked")}
        assert all(not c["error"] and c["reload"] for key, c in done.items()
                   if key != ("worker", "locked")), synced
        failed = dev.wait_event("sync-failed", 10, after=mark, container="locked")
        assert "Read-only file system" in failed["error"], failed
        assert dev.wait_event("waits", 10, after=mark, app="scheduler")
        assert answer(sandbox, namespace, web["metadata"]["name"]) == "VERSION = 2\n"
        assert image_of(sandbox, namespace, "web") == old_ref  # no new image yet
        (same,) = pods(sandbox, namespace, "web")
        assert same["metadata"]["uid"] == web["metadata"]["uid"]
        assert same["status"]["containerStatuses"][0]["restartCount"] == 0
        worker = pods(sandbox, namespace, "worker")[0]["metadata"]["name"]
        assert "worker: started with VERSION = 2" in sandbox.kubectl(
            "logs", "-n", namespace, worker).stdout  # Celery-like: re-executed on SIGHUP

        # -- then the workload runs a rebuilt image holding the same change -----------------
        dev.wait_event("ready", 300, after=mark)
        new_ref = image_of(sandbox, namespace, "web")
        assert new_ref != old_ref
        assert _file_in_image(new_ref, f"{SRC}/app.py") == "VERSION = 2\n"
        (rolled,) = eventually(lambda: [p for p in pods(sandbox, namespace, "web")
                                        if p["spec"]["containers"][0]["image"] == new_ref
                                        and p["status"].get("phase") == "Running"], 60,
                               "new pod", interval=0.2)
        assert answer(sandbox, namespace, rolled["metadata"]["name"]) == "VERSION = 2\n"
        scheduler = pods(sandbox, namespace, "scheduler")[0]["metadata"]["name"]
        assert "scheduler: started with VERSION = 2" in sandbox.kubectl(
            "logs", "-n", namespace, scheduler).stdout

        # -- a pod deleted right after a sync comes back with the change --------------------
        mark = len(dev.lines)
        (root / "src" / "app.py").write_text("VERSION = 3\n")
        dev.wait_event("synced", 60, after=mark)
        sandbox.kubectl("delete", "pod", "-n", namespace, rolled["metadata"]["name"],
                        "--wait=false")
        back = eventually(lambda: [p for p in pods(sandbox, namespace, "web")
                                   if p["metadata"]["uid"] != rolled["metadata"]["uid"]
                                   and p["spec"]["containers"][0]["image"] == new_ref], 60,
                          "a pod of the image deleted", interval=0.2)[0]["metadata"]["name"]
        caught = dev.wait_event("caught-up", 60, after=mark, where=lambda e: any(
            c["pod"] == back for c in e["containers"]))
        assert next(c for c in caught["containers"] if c["pod"] == back)["files"] == 1
        assert answer(sandbox, namespace, back) == "VERSION = 3\n"
        dev.wait_event("ready", 300, after=mark)

        # -- a Dockerfile change rebuilds, no sync ------------------------------------------
        mark = len(dev.lines)
        with (root / "Dockerfile.web").open("a") as f:
            f.write("ENV EDITED=1\n")
        refused = dev.wait_event("not-synced", 60, after=mark, app="web")
        assert "Dockerfile.web is its Dockerfile" in refused["reason"]
        dev.wait_event("ready", 300, after=mark)
        assert not [e for e in dev.events(mark) if e["event"] == "synced"]
        doc = dev.finish()
        last = doc["iterations"][-1]
        assert last["trigger"] == ["Dockerfile.web"] and last["synced"] == []
        assert last["result"] == "success"
        first = next(i for i in doc["iterations"] if i["synced"])
        assert 0 < first["edit_to_sync_s"] < first["edit_to_ready_s"], first
    finally:
        (tmp_path / "dev.stderr").write_text("\n".join(dev.lines))  # for a failure's reader
        if dev.proc.poll() is None:
            dev.proc.kill()
        delete_instances(sandbox, [namespace])

