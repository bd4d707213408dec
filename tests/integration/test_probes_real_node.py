"""The web probes of our manifests against a stand-in that answers as Paperless does, on the
sandbox's real node (a kubelet that runs the probes for real).

The stand-in (a static Go server, FROM scratch) answers `/` with 302 to the login page,
the login page with 200 and `/api/` with 401, as a fresh, unauthenticated request to
Paperless-ngx gets. With the manifests' probes its pod becomes Ready; with `/api/`
probes paless-deploy reports it not ready, with the probe's failure from the events.
"""

from __future__ import annotations

import copy
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.realnode import ON_REAL_NODE
from tests.fixtures.realnode import real_node as real_node  # noqa: PLC0414 - the fixture
from tests.integration.deploy_helpers import Project, delete_instances, run_cli
from tests.integration.test_failures_cli import write_overlay

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.realnode]

REPO = Path(__file__).resolve().parents[2]
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
SERVER = """package main

import "net/http"

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/":
			http.Redirect(w, r, "/accounts/login/?next=/", http.StatusFound)
		case r.URL.Path == "/accounts/login/":
			w.Write([]byte("<form>login</form>"))
		case len(r.URL.Path) >= 5 && r.URL.Path[:5] == "/api/":
			w.Header().Set("WWW-Authenticate", "Token")
			http.Error(w, `{"detail":"Authentication credentials were not provided."}`, 401)
		default:
			http.NotFound(w, r)
		}
	})
	http.ListenAndServe(":8000", nil)
}
"""


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory) -> Project:
    """A project whose one app, `web`, is the stand-in server."""
    root = tmp_path_factory.mktemp("standin")
    src = root / "src"
    src.mkdir()
    (src / "main.go").write_text(SERVER)
    (src / "go.mod").write_text("module standin\n\ngo 1.22\n")
    (root / "web").mkdir()
    subprocess.run(["go", "build", "-o", str(root / "web" / "server"), "."], cwd=src, check=True,
                   env={**__import__("os").environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"},
                   capture_output=True, timeout=300)
    (root / "web" / "Dockerfile").write_text(
        'FROM scratch\nCOPY server /server\nEXPOSE 8000\nENTRYPOINT ["/server"]\n')
    env = root / "test.env"
    env.write_text("PROJECT_NAME=standin\n")
    return Project(root, env)


def manifest_probes() -> dict[str, Any]:
    """The probes of the web container as our dev overlay renders them."""
    from paless_deploy.stages.project import load_config
    from paless_deploy.stages.render import render_overlay

    config = load_config(REPO, [REPO / "paless.env.example"], {}, environ={}, validate=False)
    refs = {app: f"localhost:5000/paless-{app}:0123456789ab" for app in ("web", "worker",
                                                                         "scheduler")}
    objects = render_overlay(REPO, "dev", "probes", config.substitution_values(), refs)
    (web,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "web"]
    (container,) = [c for c in web["spec"]["template"]["spec"]["containers"]
                    if c["name"] == "web"]
    return {p: container[p] for p in PROBES if p in container}


def stand_in_deployment(probes: dict[str, Any]) -> dict:
    container = {"name": "web", "image": "web", "ports": [{"containerPort": 8000}], **probes}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app.kubernetes.io/component": "web"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "standin"}},
                     "template": {"metadata": {"labels": {"app": "standin"}},
                                  "spec": {**ON_REAL_NODE, "terminationGracePeriodSeconds": 1,
                                           "containers": [container]}}}}


@pytest.fixture
def namespace(sandbox):
    name = f"t-probes-{uuid.uuid4().hex[:6]}"
    yield name
    delete_instances(sandbox, [name])


def test_the_manifests_probes_pass_against_a_paperless_stand_in(stand_in, sandbox, real_node,
                                                                 namespace):
    probes = manifest_probes()
    assert {p["httpGet"]["path"] for p in probes.values() if "httpGet" in p} == {"/"}
    write_overlay(stand_in.dir, "manifest-probes", [stand_in_deployment(probes)])
    run = run_cli(stand_in, sandbox.kubeconfig, namespace, "--overlay", "manifest-probes",
                  "--progress-deadline", "90s", "all", timeout=300)
    assert run.returncode == 0, str(run)
    pods = sandbox.kubectl("get", "pods", "-n", namespace, "-l", "app=standin", "-o",
                           "jsonpath={.items[*].status.containerStatuses[*].ready}").stdout
    assert pods.split() == ["true"]


def test_api_probes_are_reported_not_ready_with_the_probes_words(stand_in, sandbox, real_node,
                                                                  namespace):
    probes = copy.deepcopy(manifest_probes())
    for probe in probes.values():
        probe["httpGet"]["path"] = "/api/"
    write_overlay(stand_in.dir, "api-probes", [stand_in_deployment(probes)])
    run = run_cli(stand_in, sandbox.kubeconfig, namespace, "--overlay", "api-probes",
                  "--progress-deadline", "25s", "all", timeout=300)
    assert run.returncode == 1, str(run)
    (finding,) = [e for e in run.doc["errors"] if e["code"] == "not-ready"]
    assert finding["resource"].startswith("Pod/web-")
    words = " ".join([finding["message"], *finding.get("evidence", [])])
    assert "probe failed" in words and "401" in words, finding
