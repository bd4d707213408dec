"""The deploy engine on the sandbox cluster (issue 4): the real dev overlay, the CLI as a
subprocess (real exit codes), the API as the witness.

One namespace is deployed once per module (watched from before the first apply) and the
read-only checks share it; the tests that change it (a new web image, `deploy web`)
come last in the file and read their own "before" state from the cluster. Failures and
errors use namespaces of their own.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
import yaml

from paless_deploy.core.diagnosis.readiness import readiness
from paless_deploy.core.manifests.objdiff import comparable
from paless_deploy.core.plan.plan import PHASE_ORDER, plan_phases
from tests.integration.deploy_helpers import (
    EventRecorder,
    Project,
    add_overlay,
    api_client,
    copy_project,
    delete_instances,
    get_json,
    make_project,
    objects_by_key,
    result_objects,
    run_cli,
)

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.timeout(300)]

UID = uuid.uuid4().hex[:6]
FIELD_MANAGER = "paless-deploy"
APP_DEPLOYMENTS = ("web", "worker", "scheduler")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    return make_project(tmp_path_factory.mktemp("deploy") / "proj")


@pytest.fixture(scope="module")
def cleanup(sandbox):
    """Collects namespaces to delete (with their PVs) at the end of the module."""
    names: list[str] = []
    yield names
    delete_instances(sandbox, names)


@pytest.fixture(scope="module")
def deployed(sandbox, project, cleanup):
    """`all` of the dev overlay into a fresh namespace, with every API event recorded."""
    ns = f"t-deploy-{UID}"
    cleanup.append(ns)
    recorder = EventRecorder(api_client(sandbox.kubeconfig), ns).start()
    run = run_cli(project, sandbox.kubeconfig, ns, "all")
    events = recorder.stop()
    assert run.returncode == 0, str(run)
    return ns, run, events


def _wfc_classes(sandbox) -> set[str]:
    return {sc["metadata"]["name"] for sc in get_json(sandbox, "storageclasses")["items"]
            if sc.get("volumeBindingMode") == "WaitForFirstConsumer"}


def _live_image(sandbox, ns: str, kind: str, name: str) -> str:
    obj = get_json(sandbox, kind, name, "-n", ns)
    return obj["spec"]["template"]["spec"]["containers"][0]["image"]


# ---------------------------------------------------------------------------
# order and readiness


def _api_history(events, sandbox) -> tuple[dict, dict]:
    """(kind, name) -> the etcd revision of its ADDED event, and of the first event that
    shows it ready (what the API server says, not what the tool says)."""
    wfc = _wfc_classes(sandbox)
    added: dict[tuple[str, str], int] = {}
    ready_at: dict[tuple[str, str], int] = {}
    for e in events:
        key = (e.kind, e.name)
        if e.type == "ADDED":
            added.setdefault(key, e.rv)
        if key in ready_at or e.type == "DELETED":
            continue
        cls = (e.obj.get("spec") or {}).get("storageClassName")
        if readiness(e.obj, wait_for_first_consumer=cls in wfc).ready:
            ready_at[key] = e.rv
    return added, ready_at


def test_each_object_is_applied_after_what_it_waits_for_is_ready(deployed, sandbox, project):
    ns, run, events = deployed
    doc = run.doc
    assert doc["result"] == "success" and doc["exit_code"] == 0 and doc["namespace"] == ns
    names = [p["name"] for p in doc["phases"]]
    assert names[0] == "namespace" and names[-1] == "prune"
    applied = [n for n in names if n not in ("namespace", "prune")]
    assert applied == [n for n in PHASE_ORDER if n in applied], "groups out of order"
    for p in doc["phases"]:
        for o in p["objects"]:
            assert o["ready"] is True, (p["name"], o)
            assert o["action"] == "created", (p["name"], o)

    # The groups are the phase labels the plan stage gives the rendered objects.
    rendered = run_cli(project, sandbox.kubeconfig, ns, "render")
    assert rendered.returncode == 0, str(rendered)
    planned = [(ph.name, sorted((o["kind"], o["metadata"]["name"]) for o in ph.objects))
               for ph in plan_phases(rendered.doc["objects"])]
    reported = [(p["name"], sorted((o["kind"], o["name"]) for o in p["objects"]))
                for p in doc["phases"] if p["name"] not in ("namespace", "prune")]
    assert reported == planned

    # Proof from the API: every object was created after each object it waits for (the
    # plan's graph) was ready; the namespace's objects only (volumes are cluster-scoped).
    plan = run_cli(project, sandbox.kubeconfig, ns, "plan")
    assert plan.returncode == 0, str(plan)
    added, ready_at = _api_history(events, sandbox)
    checked = 0
    for group in plan.doc["plan"]:
        for obj in group["objects"]:
            key = (obj["kind"], obj["name"])
            for need in obj["needs"]:
                other = (need["kind"], need["name"])
                if key not in added or other not in ready_at or not need["ready"]:
                    continue
                assert ready_at[other] < added[key], (
                    f"{key} was created at rv {added[key]} before {other} was ready "
                    f"(rv {ready_at[other]}): {need['why']}")
                checked += 1
    assert checked >= 20, "the graph's needs were checked against the API"
    # The waited kinds really went through not-ready states (the check is not vacuous).
    sts = ("StatefulSet", "postgres")
    assert ready_at[sts] > added[sts]


def test_the_stack_keeps_its_order_of_readiness_and_its_data_services_start_together(
        deployed, sandbox):
    _ns, run, events = deployed
    ready = {(o["kind"], o["name"]): o["ready_at"] for p in run.doc["phases"]
             for o in p["objects"] if o.get("ready_at")}
    applied = {(o["kind"], o["name"]): o["applied_at"] for p in run.doc["phases"]
               for o in p["objects"] if o.get("applied_at")}
    data = [("StatefulSet", n) for n in ("minio", "postgres", "redis")]
    jobs = [("Job", n) for n in ("minio-init", "postgres-init", "migrate")]
    apps = [("Deployment", n) for n in ("scheduler", "worker", "web")]
    # MinIO/PostgreSQL/Redis before their Jobs, the Jobs before the apps: the scheduler
    # and the workers, then web (as recorded in the report, ISO times compare as text)
    assert ready[("StatefulSet", "minio")] <= applied[("Job", "minio-init")]
    assert ready[("StatefulSet", "postgres")] <= applied[("Job", "postgres-init")]
    assert ready[("Job", "postgres-init")] <= applied[("Job", "migrate")]
    assert max(ready[k] for k in data + jobs) <= applied[apps[0]]
    assert max(ready[apps[0]], ready[apps[1]]) <= applied[apps[2]]
    # the scheduler and the workers were applied together: each before the other was ready
    assert applied[apps[0]] < ready[apps[1]] and applied[apps[1]] < ready[apps[0]]
    # ... and, from the API: the three data services were all created before any of them
    # was ready (applied together, not one after the other)
    added, ready_rv = _api_history(events, sandbox)
    assert max(added[k] for k in data) < min(ready_rv[k] for k in data)


def test_claims_bind(deployed, sandbox):
    ns, _, _ = deployed
    pvcs = {c["metadata"]["name"]: c
            for c in get_json(sandbox, "pvc", "-n", ns)["items"]}
    for claim, volume in (("paperless-data-pvc", "data"), ("paperless-media-pvc", "media")):
        pv_name = f"paless-{volume}-{ns}"
        assert pvcs[claim]["status"]["phase"] == "Bound"
        assert pvcs[claim]["spec"]["volumeName"] == pv_name
        pv = get_json(sandbox, "pv", pv_name)
        assert pv["status"]["phase"] == "Bound"
        assert ns in pv["spec"]["hostPath"]["path"]
        assert pv["spec"]["claimRef"]["namespace"] == ns
        assert pv["metadata"]["labels"]["app.kubernetes.io/instance"] == ns
        # a claim the PV controller missed is touched to bind at once: no trace is left
        # (get_json drops managedFields, so read them with --show-managed-fields)
        full = json.loads(sandbox.kubectl("get", "pvc", claim, "-n", ns, "-o", "json",
                                          "--show-managed-fields").stdout)
        assert "paless.io/bind-nudge" not in (full["metadata"].get("labels") or {})
        assert "paless-deploy-bind" not in {
            m.get("manager") for m in full["metadata"].get("managedFields") or []}
    sts_claims = [c for name, c in pvcs.items() if not name.startswith("paperless-")]
    assert sorted(c["metadata"]["name"] for c in sts_claims) == [
        "minio-data-minio-0", "postgres-data-postgres-0", "redis-data-redis-0"], sorted(pvcs)
    for c in sts_claims:
        assert c["spec"]["storageClassName"] == "local-path"
        assert c["status"]["phase"] == "Bound", c["metadata"]["name"]


def test_status_json_matches_the_cluster(deployed, sandbox, project):
    ns, _, _ = deployed
    run = run_cli(project, sandbox.kubeconfig, ns, "status")
    assert run.returncode == 0, str(run)
    st = run.doc["status"]
    assert st["namespace"] == ns and st["healthy"] is True, st["health"]

    live: dict[tuple[str, str], dict] = {}
    for kind, plural in (("Deployment", "deployments"), ("StatefulSet", "statefulsets"),
                         ("Job", "jobs")):
        for o in get_json(sandbox, plural, "-n", ns)["items"]:
            live[(kind, o["metadata"]["name"])] = o
    rows = {(w["kind"], w["name"]): w for w in st["workloads"]}
    assert set(rows) == set(live)
    for key, obj in live.items():
        row = rows[key]
        image = obj["spec"]["template"]["spec"]["containers"][0]["image"]
        assert row["image_tag"] == image.rsplit(":", 1)[1], key
        assert row["state"] == "ready", (key, row)
        if key[0] != "Job":
            assert row["desired"] == obj["spec"]["replicas"], key
            assert row["ready"] == obj["status"].get("readyReplicas", 0) == obj["spec"]["replicas"]
    for app in APP_DEPLOYMENTS:
        tag = rows[("Deployment", app)]["image_tag"]
        assert tag == _live_image(sandbox, ns, "deployment", app).rsplit(":", 1)[1]

    pods = {p["metadata"]["name"]: p for p in get_json(sandbox, "pods", "-n", ns)["items"]}
    assert {p["name"] for p in st["pods"]} == set(pods)
    for row in st["pods"]:
        assert row["phase"] == pods[row["name"]]["status"]["phase"]
        assert row["node"] == pods[row["name"]]["spec"].get("nodeName")

    pvcs = {c["metadata"]["name"]: c for c in get_json(sandbox, "pvc", "-n", ns)["items"]}
    assert {s["name"]: s["status"] for s in st["storage"]} == {
        n: c["status"]["phase"] for n, c in pvcs.items()}
    services = {s["metadata"]["name"] for s in get_json(sandbox, "services", "-n", ns)["items"]}
    assert {n["name"] for n in st["network"] if n["kind"] == "Service"} == services
    hpas = {h["metadata"]["name"] for h in get_json(sandbox, "hpa", "-n", ns)["items"]}
    assert {a["name"] for a in st["autoscaling"]} == hpas


def test_diff_is_clean_after_a_deploy_and_shows_a_change_but_no_secret(deployed, sandbox,
                                                                        project):
    ns, _, _ = deployed
    clean = run_cli(project, sandbox.kubeconfig, ns, "diff", json_output=False)
    assert clean.returncode == 0, str(clean)

    password = f"new-pw-{uuid.uuid4().hex}"
    changed = run_cli(project, sandbox.kubeconfig, ns, "diff", json_output=False,
                      env={"PAPERLESS_OCR_LANGUAGE": "deu", "POSTGRES_PASSWORD": password})
    assert changed.returncode == 1, str(changed)
    assert "ConfigMap/paperless-config" in changed.stdout
    assert "-  PAPERLESS_OCR_LANGUAGE: eng" in changed.stdout
    assert "+  PAPERLESS_OCR_LANGUAGE: deu" in changed.stdout
    assert "Secret/paless-secret" in changed.stdout, "the changed Secret is shown (redacted)"
    encoded = base64.b64encode(password.encode()).decode()
    for text in (changed.stdout, changed.stderr):
        assert password not in text and encoded not in text

    as_json = run_cli(project, sandbox.kubeconfig, ns, "diff",
                      env={"PAPERLESS_OCR_LANGUAGE": "deu", "POSTGRES_PASSWORD": password})
    assert as_json.returncode == 1 and as_json.doc["exit_code"] == 1
    assert {c["object"] for c in as_json.doc["changes"]} == {
        "ConfigMap/paperless-config", "Secret/paless-secret"}, as_json.doc["changes"]
    assert password not in as_json.stdout + as_json.stderr
    assert encoded not in as_json.stdout + as_json.stderr

    # A diff is a dry run: nothing changed on the server.
    again = run_cli(project, sandbox.kubeconfig, ns, "diff", json_output=False)
    assert again.returncode == 0, str(again)


def _apply_times(obj: dict) -> list[str]:
    return sorted(m.get("time", "") for m in obj["metadata"].get("managedFields") or []
                  if m.get("manager") == FIELD_MANAGER)


def test_a_second_run_changes_no_object(deployed, sandbox, project):
    ns, _, _ = deployed
    before = objects_by_key(sandbox, ns)
    run = run_cli(project, sandbox.kubeconfig, ns, "all")
    assert run.returncode == 0, str(run)
    after = objects_by_key(sandbox, ns)

    actions = {(o["kind"], o["name"]): o["action"] for p in run.doc["phases"]
               for o in p["objects"]}
    assert set(actions.values()) == {"unchanged"}, actions
    assert all(i["action"] == "skipped" for i in run.doc["images"]), run.doc["images"]
    assert set(after) == set(before)
    for key, obj in after.items():
        old = before[key]
        # Controllers keep writing status (an HPA every 15 s): only what we own must not move.
        assert comparable(obj) == comparable(old), f"{key}: spec, data or metadata changed"
        assert obj["metadata"].get("generation") == old["metadata"].get("generation"), key
        assert _apply_times(obj) == _apply_times(old), f"{key}: a new apply by {FIELD_MANAGER}"


# ---------------------------------------------------------------------------
# changes (these mutate the shared namespace: keep them after the read-only tests)


def _with_label(src: Project, dest: Path, *dockerfiles_and_labels: tuple[str, str]) -> Project:
    proj = copy_project(src, dest)
    for dockerfile, label in dockerfiles_and_labels:
        path = proj.dir / dockerfile
        path.write_text(path.read_text() + f'\nLABEL test.paless.io/change="{label}"\n')
    return proj


def test_changing_one_app_rolls_only_its_deployment(deployed, sandbox, project, tmp_path):
    ns, _, _ = deployed
    before = objects_by_key(sandbox, ns)
    old_web = _live_image(sandbox, ns, "deployment", "web")
    changed = _with_label(project, tmp_path / "proj", ("Dockerfile.web", "web-change-1"))

    run = run_cli(changed, sandbox.kubeconfig, ns, "all")
    assert run.returncode == 0, str(run)
    images = {i["app"]: i for i in run.doc["images"]}
    assert images["web"]["ref"] != old_web
    assert images["web"]["tag"] != old_web.rsplit(":", 1)[1]
    for app in ("worker", "scheduler"):
        assert images[app]["action"] == "skipped", images[app]
        assert images[app]["ref"] == _live_image(sandbox, ns, "deployment", app)

    objs = result_objects(run.doc)
    assert objs[("Deployment", "web")]["action"] == "configured"
    assert objs[("Deployment", "web")]["ready"] is True
    assert _live_image(sandbox, ns, "deployment", "web") == images["web"]["ref"]
    after = objects_by_key(sandbox, ns)
    for app in ("worker", "scheduler"):
        key = ("Deployment", app)
        assert objs[key]["action"] == "unchanged"
        assert (after[key]["metadata"]["resourceVersion"]
                == before[key]["metadata"]["resourceVersion"]), key
    # The migration Job runs the web image: replaced (a new Job), and waited to completion.
    migrate = objs[("Job", "migrate")]
    assert migrate["action"] == "replaced" and migrate["ready"] is True, migrate
    job = after[("Job", "migrate")]
    assert job["metadata"]["uid"] != before[("Job", "migrate")]["metadata"]["uid"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == images["web"]["ref"]
    assert any(c["type"] == "Complete" and c["status"] == "True"
               for c in job["status"].get("conditions") or [])
    # Nothing else of the stack was applied to (its status may move: the web PDB's does).
    untouched = {k for k, o in objs.items() if o["action"] == "unchanged"}
    assert untouched == set(objs) - {("Deployment", "web"), ("Job", "migrate")}, objs
    for key in untouched & set(before):
        assert _apply_times(after[key]) == _apply_times(before[key]), key
        assert (after[key]["metadata"].get("generation")
                == before[key]["metadata"].get("generation")), key


def test_deploy_app_keeps_the_other_apps_images(deployed, sandbox, project, tmp_path):
    ns, _, _ = deployed
    kept = {app: _live_image(sandbox, ns, "deployment", app) for app in APP_DEPLOYMENTS}
    # Both web and worker change in this copy; only web is deployed.
    changed = _with_label(project, tmp_path / "proj", ("Dockerfile.web", "web-change-2"),
                          ("Dockerfile.worker", "worker-change-2"))

    run = run_cli(changed, sandbox.kubeconfig, ns, "deploy", "web")
    assert run.returncode == 0, str(run)
    assert run.doc["command"] == "deploy"
    assert [i["app"] for i in run.doc["images"]] == ["web"]
    new_web = run.doc["images"][0]["ref"]
    assert new_web != kept["web"]
    assert _live_image(sandbox, ns, "deployment", "web") == new_web
    assert _live_image(sandbox, ns, "deployment", "worker") == kept["worker"]
    assert _live_image(sandbox, ns, "deployment", "scheduler") == kept["scheduler"]
    objs = result_objects(run.doc)
    assert objs[("Deployment", "web")]["action"] == "configured"
    assert objs[("Deployment", "worker")]["action"] == "unchanged"
    assert "prune" not in [p["name"] for p in run.doc["phases"]]


def test_deploy_app_into_a_never_deployed_namespace_exits_2(sandbox, project, cleanup):
    ns = f"t-never-{UID}"
    cleanup.append(ns)
    run = run_cli(project, sandbox.kubeconfig, ns, "deploy", "web")
    assert run.returncode == 2, str(run)
    assert run.doc["result"] == "error"
    text = json.dumps(run.doc["errors"])
    assert "`paless-deploy all`" in text or "all" in run.doc["errors"][0]["hint"]
    assert sandbox.kubectl("get", "namespace", ns, check=False).returncode != 0, (
        "nothing is applied, not even the namespace")


# ---------------------------------------------------------------------------
# failures and errors


FAIL_WORKER = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../dev
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: worker
      spec:
        template:
          metadata:
            annotations:
              sandbox.paless.io/fail: image-pull
"""


def test_an_image_pull_failure_exits_1_naming_the_worker_pod(sandbox, project, tmp_path,
                                                            cleanup):
    ns = f"t-fail-pull-{UID}"
    cleanup.append(ns)
    proj = copy_project(project, tmp_path / "proj")
    add_overlay(proj, "fail-worker", FAIL_WORKER)
    run = run_cli(proj, sandbox.kubeconfig, ns, "--overlay", "fail-worker",
                  "--timeout", "150", "--progress-deadline", "120", "all")
    assert run.returncode == 1, str(run)
    doc = run.doc
    assert doc["result"] == "failed" and doc["exit_code"] == 1
    err = doc["errors"][0]
    assert err["code"] == "image-pull", doc["errors"]
    assert err["resource"].startswith("Pod/worker-"), err
    assert err["hint"] and err["commands"], err
    assert doc["errors"][-1]["message"].startswith("Phase worker failed"), doc["errors"]
    assert {"kind": "Deployment", "name": "web", "phase": "web"} in doc["not_applied"]
    worker = result_objects(doc)[("Deployment", "worker")]
    assert worker["ready"] is False
    res = sandbox.kubectl("get", "deployment", "web", "-n", ns, check=False)
    assert res.returncode != 0 and "NotFound" in res.stderr, "phase web must not be applied"
    for later in ("ingress/web", "hpa/web", "service/web"):
        assert sandbox.kubectl("get", later, "-n", ns, check=False).returncode != 0, later


def _assert_nothing_created(sandbox, ns: str) -> None:
    assert sandbox.kubectl("get", "namespace", ns, check=False).returncode != 0
    assert not get_json(sandbox, "pv", "-l", f"app.kubernetes.io/instance={ns}")["items"]


def test_a_variable_without_value_exits_2_naming_object_and_field(sandbox, project):
    ns = f"t-novar-{UID}"
    run = run_cli(project, sandbox.kubeconfig, ns, "all", env={"MINIO_BUCKET": ""})
    assert run.returncode == 2, str(run)
    msg = run.doc["errors"][0]["message"]
    assert "ConfigMap/paperless-config" in msg and "data.MINIO_BUCKET" in msg, msg
    assert "${MINIO_BUCKET}" in msg
    assert run.doc["errors"][0]["hint"]
    _assert_nothing_created(sandbox, ns)


def test_a_broken_kustomization_exits_2(sandbox, project, tmp_path):
    ns = f"t-broken-{UID}"
    proj = copy_project(project, tmp_path / "proj")
    add_overlay(proj, "broken", "resources:\n  - ../dev\npatches: [ {unclosed\n")
    run = run_cli(proj, sandbox.kubeconfig, ns, "--overlay", "broken", "all")
    assert run.returncode == 2, str(run)
    err = run.doc["errors"][0]
    assert "broken" in err["message"] and err["hint"], err
    _assert_nothing_created(sandbox, ns)


def test_an_unknown_overlay_exits_2(sandbox, project):
    run = run_cli(project, sandbox.kubeconfig, f"t-nooverlay-{UID}", "--overlay", "nope", "all")
    assert run.returncode == 2, str(run)
    err = run.doc["errors"][0]
    assert "nope" in err["message"]
    assert all(o in err["hint"] for o in ("dev", "staging", "prod")), err


def test_an_unreachable_cluster_exits_4(sandbox, project, tmp_path):
    kc = yaml.safe_load(sandbox.kubeconfig.read_text())
    for c in kc["clusters"]:
        c["cluster"]["server"] = "https://127.0.0.1:1"
    bad = tmp_path / "kubeconfig-unreachable"
    bad.write_text(yaml.safe_dump(kc))
    run = run_cli(project, bad, f"t-unreach-{UID}", "all", timeout=120)
    assert run.returncode == 4, str(run)
    err = run.doc["errors"][0]
    assert "127.0.0.1:1" in err["message"] and "unreachable" in err["message"], err
    assert err["hint"]


def test_a_namespace_the_user_may_not_write_exits_4_and_applies_nothing(sandbox, project):
    if sandbox.restricted_kubeconfig is None or not sandbox.restricted_kubeconfig.exists():
        pytest.skip("no restricted sandbox user with PALESS_TEST_KUBECONFIG")

    def ours() -> list:
        return [o["metadata"]["name"] for o in get_json(
            sandbox, "configmaps,secrets,services,deployments,statefulsets,jobs,pvc",
            "-n", "default", "-l", "app.kubernetes.io/instance=default")["items"]]

    assert ours() == []
    run = run_cli(project, sandbox.restricted_kubeconfig, "default", "all")
    assert run.returncode == 4, str(run)
    err = run.doc["errors"][0]
    assert "default" in err["message"] and "authori" in err["message"].lower(), err
    assert run.doc["phases"] == []
    assert ours() == []
    assert not get_json(sandbox, "pv", "-l", "app.kubernetes.io/instance=default")["items"]
