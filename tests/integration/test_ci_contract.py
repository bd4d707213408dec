"""The CI contract on the sandbox (issue 14): what a pipeline gets from one deploy.

Real runs of the CLI with GITHUB_ACTIONS=true / GITLAB_CI=true and temporary files for
GITHUB_OUTPUT and GITHUB_STEP_SUMMARY, read back by the platforms' own rules
(tests/ci_parsers); a canary secret value, which the failing container's message quotes,
must appear in none of the outputs. Then build once / deploy many (--images-from), the
TTL renewal, the keep label and gc, and destroy --from-report without a checkout.

A tiny project (one app, one Deployment) keeps each run to a few seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.ci_parsers import (
    gitlab_sections,
    parse_github_output,
    parse_gitlab_dotenv,
    parse_workflow_command,
)
from tests.integration.deploy_helpers import (
    clean_env,
    delete_instances,
    get_json,
    tiny_project,
    write_overlay,
)

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.timeout(600)]

CANARY = "cAnArY-100%-zq8x:v3,Kp"  # %, : and , would change if escaped instead of scrubbed
DOMAIN = "ci.paless.test"
CI_VARIABLES = ("GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITLAB_CI")


def deployment(annotations: dict | None = None, image: str = "tiny") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "tiny", "labels": {"app.kubernetes.io/component": "web"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "tiny"}},
                     "template": {"metadata": {"labels": {"app": "tiny"},
                                               "annotations": annotations or {}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}


SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "tiny"},
           "spec": {"selector": {"app": "tiny"}, "ports": [{"name": "http", "port": 80}]}}
INGRESS = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "tiny"},
           "spec": {"tls": [{"hosts": ["${INGRESS_HOST}"], "secretName": "tiny-tls"}],
                    "rules": [{"host": "${INGRESS_HOST}", "http": {"paths": [{
                        "path": "/", "pathType": "Prefix",
                        "backend": {"service": {"name": "tiny", "port": {"name": "http"}}}}]}}]}}
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
          "stringData": {"password": "${POSTGRES_PASSWORD}"}}
# The container cannot start, and its state quotes the secret (as a real error might).
BROKEN = deployment({"sandbox.paless.io/fail": "config-error",
                     "sandbox.paless.io/message": f"couldn't find key {CANARY} in Secret creds",
                     "paless.io/failure-grace": "1s"})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tiny_project(tmp_path_factory.mktemp("ci"), "hello from the ci contract\n")
    write_overlay(root, "ok", [SECRET, deployment(), SERVICE, INGRESS])
    write_overlay(root, "broken", [SECRET, BROKEN])
    return root


@pytest.fixture
def namespaces(sandbox):
    """Unique namespace names for one test, deleted (with their PVs) afterwards."""
    token = uuid.uuid4().hex[:6]
    made: list[str] = []

    def make(suffix: str) -> str:
        made.append(f"t-ci-{suffix}-{token}")
        return made[-1]

    yield make
    delete_instances(sandbox, made)


def cli(sandbox, project: Path, *args: str, env: dict | None = None, cwd: Path | None = None,
        timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """The CLI as CI runs it: no terminal, the tool's own settings only from `env`."""
    environ = clean_env({"PROJECT_NAME": "tiny", "POSTGRES_PASSWORD": CANARY, **(env or {})})
    for name in CI_VARIABLES:
        if name not in (env or {}):
            environ.pop(name, None)
    raw = subprocess.run([sys.executable, "-m", "paless_deploy", "--project-dir", str(project),
                          "--kubeconfig", str(sandbox.kubeconfig), *args],
                         capture_output=True, env=environ, timeout=timeout,
                         cwd=cwd or project, check=False)
    # bytes, decoded here: text mode would turn GitLab's \r into a line break
    res = subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(),
                                      raw.stderr.decode())
    assert "Traceback" not in res.stderr, res.stderr
    return res


def workflow_commands(log: str) -> list[tuple[str, dict, str]]:
    """Every workflow command of a log, as the runner reads them: each well-formed, groups
    balanced, nothing processed between `::stop-commands::TOKEN` and `::TOKEN::`."""
    commands: list[tuple[str, dict, str]] = []
    stopped: str | None = None
    open_group = False
    for line in log.splitlines():
        if stopped is not None:
            if line.strip() == f"::{stopped}::":
                stopped = None
            continue
        if not line.lstrip().startswith("::"):
            continue
        name, props, data = parse_workflow_command(line)
        if name == "stop-commands":
            assert len(data) >= 16, "an unguessable token"
            stopped = data
            continue
        if name == "group":
            assert not open_group, "a group inside a group"
            open_group = True
        elif name == "endgroup":
            assert open_group, "endgroup without group"
            open_group = False
        commands.append((name, props, data))
    assert not open_group and stopped is None
    return commands


def assert_no_canary(*texts: str) -> None:
    for text in texts:
        assert CANARY not in text, "a secret value leaked into a CI output"


def junit_cases(path: Path) -> dict[tuple[str, str], ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites" and root.find("testsuite") is not None
    return {(c.get("classname", ""), c.get("name", "")): c for c in root.iter("testcase")}


def github_env(tmp: Path) -> dict:
    (tmp / "output").touch()
    (tmp / "summary").touch()
    return {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(tmp / "output"),
            "GITHUB_STEP_SUMMARY": str(tmp / "summary"), "PALESS_BASE_DOMAIN": DOMAIN}


def test_github_actions_success_and_failure(sandbox, tiny, tmp_path, namespaces):
    ok_dir, bad_dir = tmp_path / "ok", tmp_path / "bad"
    ok_dir.mkdir(), bad_dir.mkdir()
    ok_ns, bad_ns = namespaces("gh-ok"), namespaces("gh-bad")

    ok = cli(sandbox, tiny, "-n", ok_ns, "--overlay", "ok", "--output", "json", "all",
             "--junit", str(ok_dir / "junit.xml"), env=github_env(ok_dir))
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    url = f"https://tiny.{ok_ns}.{DOMAIN}/"  # TLS covers the wildcard host; tenant = project
    assert doc["url"] == url
    commands = workflow_commands(ok.stderr)
    groups = [data for name, _, data in commands if name == "group"]
    # one fold for the apply (the phase labels of a graph overlap); each label's start
    # and readiness are lines inside it
    assert groups == ["phase apply"]
    for p in doc["phases"]:
        if p["name"] not in ("namespace", "prune"):
            assert f"phase {p['name']}: ready in" in ok.stderr, p["name"]
    assert ("notice", {"title": "paless-deploy"},
            f"Deployed to namespace {ok_ns}: {url}") in commands
    outputs = parse_github_output((ok_dir / "output").read_text())
    assert outputs["result"] == "success" and outputs["exit_code"] == "0"
    assert outputs["namespace"] == ok_ns and outputs["url"] == url
    images = json.loads(outputs["images"])
    assert [(i["app"], i["digest"]) for i in images] == [
        (i["app"], i["digest"]) for i in doc["images"]]
    assert images[0]["digest"].startswith("sha256:")
    summary = (ok_dir / "summary").read_text()
    assert "| phase | duration | objects | result |" in summary
    for phase in doc["phases"]:
        assert f"| {phase['name']} | {phase['duration_s']:.1f} s |" in summary
    assert images[0]["digest"] in summary and ok_ns in summary
    cases = junit_cases(ok_dir / "junit.xml")
    assert ("web", "Deployment/tiny") in cases
    assert not any(c.find("failure") is not None for c in cases.values())

    bad = cli(sandbox, tiny, "-n", bad_ns, "--overlay", "broken", "--progress-deadline", "30s",
              "--output", "json", "all", "--junit", str(bad_dir / "junit.xml"),
              env=github_env(bad_dir))
    assert bad.returncode == 1, bad.stderr
    doc = json.loads(bad.stdout)
    assert doc["result"] == "failed" and doc["errors"][0]["code"] == "config-error"
    errors = [(props, data) for name, props, data in workflow_commands(bad.stderr)
              if name == "error"]
    assert errors and errors[0][0]["title"].startswith("config-error Pod/tiny-")
    assert doc["errors"][0]["hint"] in errors[0][1]
    outputs = parse_github_output((bad_dir / "output").read_text())
    assert outputs["result"] == "failed" and outputs["exit_code"] == "1"
    assert outputs["errors"].splitlines()[0].startswith("config-error Pod/tiny-")
    summary = (bad_dir / "summary").read_text()
    assert "| web |" in summary and "FAILED" in summary and "**Fix:**" in summary
    cases = junit_cases(bad_dir / "junit.xml")
    failed = {key for key, case in cases.items() if case.find("failure") is not None}
    assert failed == {("web", "Deployment/tiny")}, "one failure, for the failing workload"
    failure = cases[("web", "Deployment/tiny")].find("failure")
    assert failure is not None and failure.get("type") == "config-error"
    assert "cause:" in (failure.text or "") and "evidence:" in (failure.text or "")
    assert "<redacted>" in (failure.text or ""), "the quoted secret is replaced, not dropped"

    for run, out_dir in ((ok, ok_dir), (bad, bad_dir)):
        assert_no_canary(run.stdout, run.stderr, *(p.read_text() for p in out_dir.iterdir()))


def test_gitlab_sections_and_dotenv(sandbox, tiny, tmp_path, namespaces):
    ns = namespaces("gl")
    job_dir = tmp_path / "job"  # the job's working directory: deploy.env lands there
    job_dir.mkdir()
    env = {"GITLAB_CI": "true", "PALESS_BASE_DOMAIN": DOMAIN}
    ok = cli(sandbox, tiny, "-n", ns, "--overlay", "ok", "all", env=env, cwd=job_dir)
    assert ok.returncode == 0, ok.stderr
    assert f"URL: https://tiny.{ns}.{DOMAIN}/" in ok.stdout
    sections = gitlab_sections(ok.stderr)
    assert [s[1] for s in sections] == ["phase apply"]
    assert "phase config: ready in" in ok.stderr and "phase web: ready in" in ok.stderr
    values = parse_gitlab_dotenv((job_dir / "deploy.env").read_text())
    assert values == {"DEPLOY_NAMESPACE": ns, "DEPLOY_URL": f"https://tiny.{ns}.{DOMAIN}/",
                      "DEPLOY_RESULT": "success", "DEPLOY_EXIT_CODE": "0",
                      "DEPLOY_OVERLAY": "ok"}
    assert "::" not in ok.stderr.replace("https://", ""), "no GitHub commands under GitLab"

    bad_ns = namespaces("gl-bad")
    bad = cli(sandbox, tiny, "-n", bad_ns, "--overlay", "broken", "--progress-deadline", "30s",
              "all", "--dotenv", str(tmp_path / "failed.env"), env=env, cwd=job_dir)
    assert bad.returncode == 1, bad.stderr
    gitlab_sections(bad.stderr)
    values = parse_gitlab_dotenv((tmp_path / "failed.env").read_text())
    assert values["DEPLOY_RESULT"] == "failed" and values["DEPLOY_EXIT_CODE"] == "1"
    assert_no_canary(bad.stdout, bad.stderr, (tmp_path / "failed.env").read_text())


def test_a_report_path_in_a_missing_directory_is_exit_2_before_anything(sandbox, tiny,
                                                                          namespaces):
    ns = namespaces("nodir")
    res = cli(sandbox, tiny, "-n", ns, "--overlay", "ok", "all", "--junit",
              "/nonexistent-dir/junit.xml")
    assert res.returncode == 2 and "/nonexistent-dir does not exist" in res.stderr
    assert sandbox.kubectl("get", "namespace", ns, check=False).returncode != 0


# ---------------------------------------------------------------------------
# build once, deploy many


def pod_images(sandbox, ns: str) -> set[str]:
    pods = get_json(sandbox, "pods", "-n", ns)["items"]
    assert pods, f"no pods in {ns}"
    return {c["image"] for p in pods for c in p["spec"]["containers"]}


def test_images_from_one_report_deploys_identical_digests_and_builds_nothing(
        sandbox, tiny, tmp_path, namespaces):
    pushed = cli(sandbox, tiny, "--output", "json", "push")
    assert pushed.returncode == 0, pushed.stderr
    report = tmp_path / "images.json"
    report.write_text(pushed.stdout)
    image = json.loads(pushed.stdout)["images"][0]
    pinned = f"{image['ref']}@{image['digest']}"

    no_docker = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}  # a build would exit 3
    for suffix in ("many-a", "many-b"):
        ns = namespaces(suffix)
        res = cli(sandbox, tiny, "-n", ns, "--overlay", "ok", "--output", "json", "all",
                  "--images-from", str(report), env=no_docker)
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        assert [(i["app"], i["digest"], i["action"]) for i in doc["images"]] == [
            ("tiny", image["digest"], "skipped")], "nothing built or pushed"
        assert pod_images(sandbox, ns) == {pinned}
        live = get_json(sandbox, "deployment", "tiny", "-n", ns)
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == pinned

    # `deploy APP` takes that app's image from the report too (the others keep theirs)
    res = cli(sandbox, tiny, "-n", ns, "--overlay", "ok", "--output", "json", "deploy", "tiny",
              "--images-from", str(report), env=no_docker)
    assert res.returncode == 0, res.stderr
    assert [i["action"] for i in json.loads(res.stdout)["images"]] == ["skipped"]
    assert pod_images(sandbox, ns) == {pinned}

    # A tree that builds nothing (no Dockerfile; its image comes from elsewhere) deploys.
    foreign = tmp_path / "foreign"
    write_overlay(foreign, "ok", [deployment(image=pinned)])
    ns = namespaces("foreign")
    res = cli(sandbox, foreign, "-n", ns, "--overlay", "ok", "--output", "json", "all",
              env=no_docker)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["images"] == [] and pod_images(sandbox, ns) == {pinned}


def test_images_from_failures_are_explained_with_their_exit_code(sandbox, tiny, tmp_path,
                                                                  namespaces):
    ns = namespaces("badrep")
    pushed = cli(sandbox, tiny, "--output", "json", "push")
    doc = json.loads(pushed.stdout)
    missing_digest = json.loads(pushed.stdout)
    missing_digest["images"][0]["digest"] = "sha256:" + "0" * 64
    down = json.loads(pushed.stdout)
    down["images"][0]["ref"] = down["images"][0]["ref"].replace("localhost:5000",
                                                                "127.0.0.1:1")
    unpushed = {**doc, "images": [{**doc["images"][0], "digest": None}]}
    cases = {
        "absent.json": (None, 2, "no such file"),
        "garbage.json": ("{ not json", 2, "is not a JSON report"),
        "unpushed.json": (unpushed, 2, "did not push it"),
        "lost.json": (missing_digest, 2, "is not in the registry localhost:5000"),
        "down.json": (down, 3, "Registry 127.0.0.1:1 is not reachable"),
    }
    for name, (content, code, words) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_text(content if isinstance(content, str) else json.dumps(content))
        res = cli(sandbox, tiny, "-n", ns, "--overlay", "ok", "--output", "json", "all",
                  "--images-from", str(path))
        assert res.returncode == code, (name, res.stderr)
        assert words in res.stderr, (name, res.stderr)
        result = json.loads(res.stdout)
        assert result["exit_code"] == code and result["errors"][-1]["hint"], name
    assert sandbox.kubectl("get", "namespace", ns, check=False).returncode != 0, \
        "nothing is applied, not even the namespace"


# ---------------------------------------------------------------------------
# expiry: TTL renewal, the keep label, gc


def namespace_annotations(sandbox, ns: str) -> dict:
    return get_json(sandbox, "namespace", ns)["metadata"].get("annotations") or {}


def backdate(sandbox, ns: str, hours: float) -> None:
    """Pretend the namespace was created and last deployed `hours` ago."""
    import datetime as dt

    then = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sandbox.kubectl("annotate", "namespace", ns, "--overwrite",
                    f"paless.io/created-at={then}", f"paless.io/deployed-at={then}")


def gc(sandbox, tiny, selector: str, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    res = cli(sandbox, tiny, "--output", "json", "gc", "-l", selector, *args)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    return res, {d["name"]: d.get("reason", "") for d in doc["deleted"]} | {
        k["name"]: "kept: " + k.get("reason", "") for k in doc["kept"]}


def test_ttl_renewed_on_deploy_keep_label_and_gc(sandbox, tiny, namespaces):
    ns = namespaces("ttl")
    token = ns.rsplit("-", 1)[1]
    first = cli(sandbox, tiny, "-n", ns, "--overlay", "ok", "all", env={"PALESS_TTL": "1h"})
    assert first.returncode == 0, first.stderr
    ann = namespace_annotations(sandbox, ns)
    assert ann["paless.io/ttl"] == "1h" and ann["paless.io/deployed-at"] >= ann[
        "paless.io/created-at"]
    sandbox.kubectl("label", "namespace", ns, f"paless-test-ci={token}")
    selector = f"paless-test-ci={token}"

    backdate(sandbox, ns, 2)
    res, seen = gc(sandbox, tiny, selector, "--dry-run")
    assert seen[ns].startswith("dry run: ttl 1h expired"), seen
    assert f"would delete namespace {ns}: ttl 1h expired" in res.stderr
    assert sandbox.kubectl("get", "namespace", ns, check=False).returncode == 0, \
        "a dry run deletes nothing"

    again = cli(sandbox, tiny, "-n", ns, "--overlay", "ok", "all", env={"PALESS_TTL": "1h"})
    assert again.returncode == 0, again.stderr
    renewed = namespace_annotations(sandbox, ns)
    assert renewed["paless.io/created-at"] < renewed["paless.io/deployed-at"], \
        "created-at stays, the deploy time moves"
    _, seen = gc(sandbox, tiny, selector, "--older-than", "30m")
    assert seen[ns].startswith("kept: ttl 1h expires in"), "a branch in use is never collected"

    backdate(sandbox, ns, 2)
    sandbox.kubectl("label", "namespace", ns, "paless.io/keep=true")
    _, seen = gc(sandbox, tiny, selector)
    assert seen[ns] == "kept: labelled paless.io/keep=true"

    sandbox.kubectl("label", "namespace", ns, "paless.io/keep-")
    res, seen = gc(sandbox, tiny, selector)
    assert seen[ns].startswith("ttl 1h expired")
    assert f"deleting namespace {ns}: ttl 1h expired" in res.stderr
    res = sandbox.kubectl("get", "namespace", ns, check=False)
    assert res.returncode != 0 and "NotFound" in res.stderr


# ---------------------------------------------------------------------------
# destroy --from-report


def test_destroy_from_report_without_a_checkout(sandbox, tiny, tmp_path, namespaces):
    ns = namespaces("fromrep")
    volume = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{ns}-pv"},
              "spec": {"capacity": {"storage": "1Mi"}, "accessModes": ["ReadWriteOnce"],
                       "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "manual",
                       "hostPath": {"path": f"/tmp/paless-test/{ns}"}}}
    project = tiny_project(tmp_path / "project", "hello from the ci contract\n")
    write_overlay(project, "pv", [volume, deployment(), SERVICE])
    deployed = cli(sandbox, project, "-n", ns, "--overlay", "pv", "--output", "json", "all")
    assert deployed.returncode == 0, deployed.stderr
    report = tmp_path / "deploy.json"
    report.write_text(deployed.stdout)

    empty = tmp_path / "no-checkout"  # the pull-request-closed job has no checkout
    empty.mkdir()
    wrong = cli(sandbox, empty, "-n", "someone-else", "destroy", "--yes", "--from-report",
                str(report), cwd=empty)
    assert wrong.returncode == 2 and "contradicts" in wrong.stderr

    res = cli(sandbox, empty, "--output", "json", "destroy", "--yes", "--from-report",
              str(report), cwd=empty)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["namespace"] == ns
    assert {(d["kind"], d["name"]) for d in doc["deleted"]} == {
        ("Namespace", ns), ("PersistentVolume", f"{ns}-pv")}
    for args in (("namespace", ns), ("pv", f"{ns}-pv")):
        gone = sandbox.kubectl("get", *args, check=False)
        assert gone.returncode != 0 and "NotFound" in gone.stderr, args

    again = cli(sandbox, empty, "destroy", "--yes", "--from-report", str(report), cwd=empty)
    assert again.returncode == 0 and "does not exist" in again.stderr
