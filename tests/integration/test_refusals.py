"""An admission webhook's denial, on the sandbox's real API server (issue 28).

The corpus (tests/corpus/cases/refusals.yaml) covers the other causes of the refusal
table with the server's own objects (a quota, a ValidatingAdmissionPolicy, a claim on a
static volume, a StatefulSet, RBAC); a webhook needs a server of its own: here an HTTPS
server on this machine (the sandbox's API server runs here too) that denies every
ConfigMap of one namespace, registered with a ValidatingWebhookConfiguration.
"""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.fixtures.http import send_json, serving
from tests.fixtures.registries import make_certificates
from tests.integration.deploy_helpers import (
    clean_env,
    delete_instances,
    tiny_project,
    write_overlay,
)

pytestmark = [pytest.mark.cluster, pytest.mark.docker]

WEBHOOK = "deny-debug.paless.test"
WORDS = "ConfigMaps may not carry a debug key here"


class Deny(BaseHTTPRequestHandler):
    """An AdmissionReview answered `allowed: false` with WORDS."""

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        send_json(self, 200, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                              "response": {"uid": review["request"]["uid"], "allowed": False,
                                           "status": {"code": 403, "message": WORDS}}})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook(sandbox, tmp_path: Path) -> Iterator[str]:
    """A namespace whose ConfigMaps the webhook denies (the webhook registered for it)."""
    certs = make_certificates(tmp_path / "certs", ["127.0.0.1"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certs.cert), str(certs.key))
    with serving(Deny, context) as port:
        yield from _registered(sandbox, port, certs.ca)


def _registered(sandbox, port: int, ca: Path) -> Iterator[str]:
    import base64

    namespace = f"t-webhook-{uuid.uuid4().hex[:6]}"
    config = f"{namespace}-deny"
    sandbox.kubectl("create", "namespace", namespace)
    sandbox.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration", "metadata": {"name": config},
        "webhooks": [{
            "name": WEBHOOK, "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail", "timeoutSeconds": 5,
            "clientConfig": {"url": f"https://127.0.0.1:{port}/",
                             "caBundle": base64.b64encode(ca.read_bytes()).decode()},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"],
                       "operations": ["CREATE", "UPDATE"]}],
            "objectSelector": {"matchLabels": {"paless-test-webhook": "deny"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}],
    }))
    try:
        yield namespace
    finally:
        sandbox.kubectl("delete", "validatingwebhookconfiguration", config, check=False)
        delete_instances(sandbox, [namespace])


@pytest.mark.parametrize("command", ["all", "diff"])
def test_a_webhook_denial_names_the_webhook_and_is_not_exit_4(sandbox, webhook, tmp_path,
                                                               command):
    import subprocess
    import sys

    project = tiny_project(tmp_path / "tiny")
    write_overlay(project, "dev", [{"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "settings",
                                                 "labels": {"paless-test-webhook": "deny"}},
                                    "data": {"debug": "true"}}])
    res = subprocess.run(
        [sys.executable, "-m", "paless_deploy", "--project-dir", str(project), "--kubeconfig",
         str(sandbox.kubeconfig), "-n", webhook, "--output", "json", command],
        capture_output=True, text=True, timeout=240, check=False,
        env=clean_env({"PROJECT_NAME": "tiny", "REGISTRY": "127.0.0.1:5000"}))
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 2, res.stderr
    error = json.loads(res.stdout)["errors"][0]
    assert error["code"] == "admission-denied", error
    assert f"denied by the admission webhook {WEBHOOK}: {WORDS}" in error["message"]
    assert error["resource"] == "ConfigMap/settings"
    assert "change the manifest" in error["hint"]
