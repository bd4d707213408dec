"""Faults survived, on the sandbox's real parts: the API server restarted mid-apply and
mid-wait, etcd mid-wait, the registry stopped mid-push, dockerd restarted mid-build, the
tool killed with SIGKILL mid-apply.

Each fault is `scripts/sandbox restart COMPONENT`: one component at a time, for a few
seconds, healthy again before the test ends (others' tests share the sandbox). After each,
the run ends with its documented exit code and no traceback, and a re-run converges.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.cluster import SANDBOX
from tests.integration.deploy_helpers import (
    LiveCli,
    Project,
    delete_instances,
    result_objects,
    run_cli,
    tiny_project,
    write_overlay,
)

pytestmark = [pytest.mark.cluster, pytest.mark.docker]

CONFIGMAPS = 40
REGISTRY = "127.0.0.1:5000"


PID_FILES = {"apiserver": "kube-apiserver", "etcd": "etcd", "registry": "registry",
             "dockerd": "dockerd"}


def sandbox_pids() -> dict[str, int]:
    state = Path(os.environ.get("PALESS_SANDBOX_STATE",
                                Path.home() / ".local" / "state" / "paless-sandbox"))
    return {p.stem: int(p.read_text()) for p in (state / "pids").glob("*.pid")}


def restart(component: str, *extra: str) -> subprocess.CompletedProcess:
    """`scripts/sandbox restart COMPONENT` to its end: the component is healthy again, under
    a new pid, and every other component kept its own."""
    before = sandbox_pids()
    done = subprocess.run([str(SANDBOX), "restart", component, *extra], capture_output=True,
                          text=True, timeout=180, check=False)
    assert done.returncode == 0, f"restart {component} failed:\n{done.stderr}"
    after = sandbox_pids()
    name = PID_FILES[component]
    assert after[name] != before[name], f"{component} kept pid {before[name]}"
    changed = {k for k in before if k != name and after.get(k) != before[k]}
    assert not changed, f"restart {component} touched {changed} too"
    return done


def deployment(name: str, ready_delay: str = "", component: str = "web") -> dict:
    annotations = {"sandbox.paless.io/ready-delay": ready_delay} if ready_delay else {}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/component": component}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name},
                                               "annotations": annotations},
                                  "spec": {"containers": [{"name": "app", "image": "tiny"}]}}}}


def configmaps(count: int) -> list[dict]:
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"settings-{i}"},
             "data": {"index": str(i)}} for i in range(count)]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tiny_project(tmp_path / "project", f"{uuid.uuid4().hex}\n")
    (root / "test.env").write_text(f"PROJECT_NAME=tiny\nREGISTRY={REGISTRY}\n")
    return Project(root, root / "test.env")


@pytest.fixture
def ns(sandbox) -> Iterator[str]:
    name = f"t-fault-{uuid.uuid4().hex[:6]}"
    yield name
    delete_instances(sandbox, [name])


def assert_converged(project: Project, sandbox, ns: str, overlay: str) -> dict:
    """A re-run succeeds and changes nothing: every object unchanged."""
    again = run_cli(project, sandbox.kubeconfig, ns, "--overlay", overlay, "all", timeout=240)
    assert again.returncode == 0, str(again)
    actions = {key: o["action"] for key, o in result_objects(again.doc).items()
               if key[0] != "Namespace"}
    assert actions and set(actions.values()) == {"unchanged"}, actions
    return again.doc


def test_apiserver_restarted_mid_apply_deploy_completes_and_converges(project, sandbox, ns):
    write_overlay(project.dir, "faults", [*configmaps(CONFIGMAPS),
                                          deployment("tiny", ready_delay="2s")])
    run = LiveCli(project, sandbox.kubeconfig, ns, "--overlay", "faults", "all")
    applying_at = run.wait_for("phase config: applying", timeout=180)
    restart("apiserver")
    restarted_at = time.monotonic() - run.started
    done = run.finish(timeout=240)
    # the outage came after the first phase began, before the next one was applied
    web_at = run.first_at("phase web: applying")
    assert web_at is not None and applying_at < web_at, str(done)
    assert done.returncode == 0, str(done)
    assert done.doc["result"] == "success"
    objects = result_objects(done.doc)
    assert all(("ConfigMap", f"settings-{i}") in objects for i in range(CONFIGMAPS)), objects
    assert objects[("Deployment", "tiny")]["ready"] is True
    assert restarted_at > applying_at
    assert_converged(project, sandbox, ns, "faults")


@pytest.mark.parametrize("component", ["apiserver", "etcd"])
def test_control_plane_restarted_mid_wait_watches_resume(project, sandbox, ns, component):
    write_overlay(project.dir, "faults", [deployment("tiny", ready_delay="12s")])
    run = LiveCli(project, sandbox.kubeconfig, ns, "--overlay", "faults", "all")
    waiting_at = run.wait_for("waiting    Deployment/tiny", timeout=180)
    restart(component)
    back_at = time.monotonic() - run.started
    done = run.finish(timeout=240)
    assert done.returncode == 0, str(done)
    ready_at = run.first_at("ready      Deployment/tiny")
    # readiness was seen after the API server came back: the wait resumed its watches
    assert ready_at is not None and ready_at > waiting_at, str(done)
    assert result_objects(done.doc)[("Deployment", "tiny")]["ready"] is True
    assert back_at > waiting_at
    assert_converged(project, sandbox, ns, "faults")


def big_and_small(root: Path) -> None:
    """Two apps: `small` pushes in a blink, `big` has a 96 MB layer to build and push."""
    import os

    for app, payload in (("small", b"small\n"), ("big", os.urandom(96 * 2**20))):
        (root / app).mkdir(parents=True, exist_ok=True)
        (root / app / "payload").write_bytes(payload + uuid.uuid4().bytes)
        (root / app / "Dockerfile").write_text("FROM scratch\nCOPY payload /payload\n")


def test_registry_stopped_mid_push_exit_3_then_rerun_pushes_only_what_is_missing(
        tmp_path, sandbox):
    root = tmp_path / "images"
    big_and_small(root)
    env_file = root / "test.env"
    env_file.write_text(f"PROJECT_NAME=t{uuid.uuid4().hex[:8]}\nREGISTRY={REGISTRY}\n")
    project = Project(root, env_file)
    run = LiveCli(project, sandbox.kubeconfig, None, "push")
    run.wait_for("small: built and pushed", timeout=180)
    assert run.first_at("big: built and pushed") is None, "big was pushed before the outage"
    # the registry stays down until the push gave up; Ctrl-C on the restart brings it back
    outage = subprocess.Popen([str(SANDBOX), "restart", "registry", "--down", "120"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        done = run.finish(timeout=240)
    finally:
        outage.send_signal(signal.SIGINT)
        _, err = outage.communicate(timeout=120)
    assert "registry: started" in err, err
    assert done.returncode == 3, str(done)
    error = done.doc["errors"][0]
    assert REGISTRY in error["message"] + error["hint"], error
    assert error["resource"] == "image/big", error
    images = {i["app"]: i["action"] for i in done.doc["images"]}
    assert images.get("small") in (None, "pushed"), images
    again = run_cli(project, sandbox.kubeconfig, None, "push", timeout=240)
    assert again.returncode == 0, str(again)
    actions = {i["app"]: i["action"] for i in again.doc["images"]}
    assert actions == {"small": "skipped", "big": "pushed"}, actions


def test_dockerd_restarted_mid_build_exit_3_then_rerun_builds(tmp_path, sandbox):
    root = tmp_path / "slow"
    (root / "slow").mkdir(parents=True)
    (root / "slow" / "nonce").write_text(uuid.uuid4().hex)
    # the base image stand-in has a shell: a build step that lasts long enough to cut
    (root / "slow" / "Dockerfile").write_text(
        "ARG BASE_IMAGE=ghcr.io/paperless-ngx/paperless-ngx:2.18.4\nFROM ${BASE_IMAGE}\n"
        "COPY nonce /nonce\nRUN sleep 10\n")
    env_file = root / "test.env"
    env_file.write_text(f"PROJECT_NAME=t{uuid.uuid4().hex[:8]}\nREGISTRY={REGISTRY}\n")
    project = Project(root, env_file)
    run = LiveCli(project, sandbox.kubeconfig, None, "push")
    run.wait_for("sleep 10", timeout=180)
    restart("dockerd")
    done = run.finish(timeout=240)
    assert done.returncode == 3, str(done)
    assert done.doc["errors"][0]["resource"] == "image/slow", done.doc["errors"]
    again = run_cli(project, sandbox.kubeconfig, None, "push", timeout=300)
    assert again.returncode == 0, str(again)
    assert [i["action"] for i in again.doc["images"]] == ["pushed"], again.doc["images"]


def test_sigkill_mid_apply_rerun_says_it_waits_for_the_lease_then_converges(
        project, sandbox, ns):
    write_overlay(project.dir, "faults", [*configmaps(3), deployment("tiny", ready_delay="20s")])
    first = LiveCli(project, sandbox.kubeconfig, ns, "--overlay", "faults", "all")
    first.wait_for("phase web: applying", timeout=180)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=30)
    killed = time.monotonic()
    second = LiveCli(project, sandbox.kubeconfig, ns, "--overlay", "faults", "all")
    said_at = second.wait_for("Waiting for the lock of namespace", timeout=60)
    line = next(text for _, text in second.lines if "Waiting for the lock" in text)
    assert "pid " in line and "expires at" in line and "UTC" in line, line
    done = second.finish(timeout=300)
    assert done.returncode == 0, str(done)
    # the dead holder's lease expired (30 s after its last renewal): not much longer waited
    waited = time.monotonic() - killed
    assert waited < 30 + 20 + 60, f"{waited:.0f}s"
    phases_at = second.first_at("phase web: applying")
    assert phases_at is not None and phases_at > said_at
    assert said_at < 15, f"the wait was said {said_at:.0f}s after the start"
    assert_converged(project, sandbox, ns, "faults")
    lease = sandbox.kubectl("get", "lease", "-n", ns, "-o", "name").stdout
    assert "paless-deploy" not in lease, "a lease was left behind"


def test_sigterm_mid_wait_the_report_names_the_cut_phase_and_keeps_what_was_done(
        project, sandbox, ns):
    write_overlay(project.dir, "faults", [*configmaps(2), deployment("tiny", ready_delay="30s")])
    run = LiveCli(project, sandbox.kubeconfig, ns, "--overlay", "faults", "all")
    run.wait_for("waiting    Deployment/tiny", timeout=180)
    # the phase in progress is the earliest label with an object not yet judged: the
    # ConfigMaps' verdicts may come a moment after tiny's first line (a loaded machine)
    run.wait_for("phase config: ready", timeout=60)
    run.proc.send_signal(signal.SIGTERM)
    done = run.finish(timeout=60)
    assert done.returncode == 130, str(done)
    doc = done.doc
    assert doc["exit_code"] == 130 and doc["errors"][-1]["code"] == "interrupted"
    assert doc["interrupted_phase"] == "web" and "during phase web" in done.stderr
    assert [i["app"] for i in doc["images"]] == ["tiny"], doc["images"]
    phases = [p["name"] for p in doc["phases"]]
    assert phases[:2] == ["namespace", "config"] and "web" in phases, phases
    assert doc["duration_s"] > 0
    lease = sandbox.kubectl("get", "lease", "-n", ns, "-o", "name").stdout
    assert "paless-deploy" not in lease, "the lock was not released at once"


def test_a_namespace_still_terminating_is_awaited_then_created_anew(project, sandbox, ns):
    """The usual CI flow, destroy then deploy: a namespace held in Terminating by a finalizer
    is waited for (said at once), and the deploy creates it anew once it is gone."""
    write_overlay(project.dir, "faults", configmaps(1))
    first = run_cli(project, sandbox.kubeconfig, ns, "--overlay", "faults", "all", timeout=240)
    assert first.returncode == 0, str(first)
    sandbox.kubectl("-n", ns, "patch", "configmap", "settings-0", "--type=merge", "-p",
                    '{"metadata": {"finalizers": ["paless.test/hold"]}}')
    sandbox.kubectl("delete", "namespace", ns, "--wait=false")
    run = LiveCli(project, sandbox.kubeconfig, ns, "--overlay", "faults", "all")
    run.wait_for(f"Namespace {ns} is still being deleted; waiting up to", timeout=60)
    sandbox.kubectl("-n", ns, "patch", "configmap", "settings-0", "--type=json", "-p",
                    '[{"op": "remove", "path": "/metadata/finalizers"}]')
    done = run.finish(timeout=240)
    assert done.returncode == 0, str(done)
    objects = result_objects(done.doc)
    assert objects[("Namespace", ns)]["action"] == "created", objects
    assert objects[("ConfigMap", "settings-0")]["action"] == "created", objects
