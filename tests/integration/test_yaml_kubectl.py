"""YAML read as kubectl reads it: trees of different shapes rendered through the tool
(its kustomize door, the reading every command uses) and through
`kubectl kustomize | kubectl create --dry-run=client -o json -f -`, compared as JSON.

The trees: the Paless dev overlay, the hand-written tree of the fixtures, the vendored
operator stack (CRDs, a bare `=` in an enum, a 1 MB ConfigMap; its CRDs are installed
under a group of this run's own so kubectl can map the custom resources), and a tree of
YAML's corner cases (bare `=`, `<<` merges, `y`/`no`/`on`, numbers PyYAML reads otherwise,
hundreds of documents). The corner cases are also read without kustomize in between.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from paless_deploy.adapters.kustomize import kustomize_build
from paless_deploy.core.manifests.yamlread import load_documents
from tests.fixtures.trees.operator import KINDS, crd, group_of, write_operator_tree

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]

CORNER_CASES = """\
# comments, anchors, merges and the scalars YAML 1.1 reads otherwise
apiVersion: v1
kind: ConfigMap
metadata:
  name: corner-cases
  annotations:
    note: plain text
    equals: =
data:
  equals: =
  quoted: "yes"
  time: '1:20'
---
apiVersion: example.paless.test/v1
kind: Odd
metadata:
  name: odd
  labels: &notes {note: plain, equals: x}
  annotations: {<<: *notes, note: overridden}
spec:
  flags: [y, n, yes, No, on, OFF, true, ~, null]
  numbers: [1:20, 08, 0777, 0x1F, 0o17, 0b101, 1_000, 1e3, 1.0, 1.5, .5, +12, -0]
  texts: [2024-01-31, 1.2.3, v1, =, <<, =~, '!=']
  defaults: &defaults {replicas: 2, image: "a:1"}
  merged: {<<: *defaults, replicas: 3}
  listed: [{<<: [*defaults, {port: 80}]}]
  block: |
    line one
      indented: yes
  folded: >
    folded
    text
"""


def kubectl_json(sandbox, text: str) -> list[dict]:
    """What `kubectl create --dry-run=client -o json -f -` makes of a stream."""
    res = sandbox.kubectl("create", "--dry-run=client", "-o", "json", "-f", "-", input=text)
    decoder, out, at = json.JSONDecoder(), [], 0  # one JSON document per object, in a row
    while at < len(res.stdout.rstrip()):
        doc, at = decoder.raw_decode(res.stdout, at)
        out.append(doc)
        while at < len(res.stdout) and res.stdout[at].isspace():
            at += 1
    return out


def kubectl_kustomize(sandbox, overlay: Path) -> str:
    return sandbox.kubectl("kustomize", str(overlay)).stdout


def same_as_kubectl(ours: list[dict], theirs: list[dict]) -> None:
    """Equal object by object; kubectl adds `namespace: default` where none is set."""
    assert len(ours) == len(theirs)
    for mine, kubectl in zip(ours, theirs, strict=True):
        if "namespace" not in (mine.get("metadata") or {}):
            (kubectl.get("metadata") or {}).pop("namespace", None)
        assert mine == kubectl, f"{mine.get('kind')}/{mine['metadata'].get('name')} differs"


def through_both(sandbox, overlay: Path, monkeypatch) -> list[dict]:
    monkeypatch.setenv("PALESS_NO_RENDER_CACHE", "1")
    ours = kustomize_build(overlay, overlay.name)
    same_as_kubectl(ours, kubectl_json(sandbox, kubectl_kustomize(sandbox, overlay)))
    return ours


@pytest.fixture
def corner_tree(tmp_path: Path) -> Path:
    overlay = tmp_path / "k8s" / "overlays" / "dev"
    overlay.mkdir(parents=True)
    many = "".join(f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n"
                   f"data:\n  n: '{i}'\n  flag: 'on'\n" for i in range(300))
    (overlay / "corner.yaml").write_text(CORNER_CASES + many)
    (overlay / "kustomization.yaml").write_text("resources:\n- corner.yaml\n")
    return overlay


@pytest.fixture(scope="module")
def odd_kind(sandbox):
    """The CRD that serves kind Odd (so kubectl can map it); removed afterwards."""
    text = crd("example.paless.test", "Odd", "odds").replace(
        "type: object\n        properties:\n          spec:",
        "type: object\n        x-kubernetes-preserve-unknown-fields: true\n"
        "        properties:\n          spec:")
    sandbox.kubectl("apply", "-f", "-", input=text)
    sandbox.kubectl("wait", "--for=condition=Established", "crd/odds.example.paless.test",
                    "--timeout=60s")
    yield
    sandbox.kubectl("delete", "crd", "odds.example.paless.test", "--ignore-not-found",
                    check=False)


def test_the_paless_overlay_reads_as_kubectl_reads_it(sandbox, monkeypatch):
    objects = through_both(sandbox, REPO / "k8s" / "overlays" / "dev", monkeypatch)
    assert {"StatefulSet", "Deployment", "Job", "Ingress"} <= {o["kind"] for o in objects}


def test_the_handwritten_tree_reads_as_kubectl_reads_it(sandbox, monkeypatch):
    overlay = REPO / "tests" / "fixtures" / "trees" / "handwritten" / "k8s" / "overlays" / "dev"
    objects = through_both(sandbox, overlay, monkeypatch)
    assert any(o["kind"] == "Namespace" for o in objects)


def test_the_operator_stack_reads_as_kubectl_reads_it(sandbox, monkeypatch, tmp_path):
    suffix = uuid.uuid4().hex[:6]
    root = write_operator_tree(tmp_path, suffix)
    crds = "---\n".join(crd(group_of(suffix), kind, plural) for kind, plural in KINDS)
    sandbox.kubectl("apply", "-f", "-", input=crds)
    names = [f"crd/{plural}.{group_of(suffix)}" for _, plural in KINDS]
    try:
        sandbox.kubectl("wait", "--for=condition=Established", *names, "--timeout=60s")
        objects = through_both(sandbox, root / "k8s" / "overlays" / "dev", monkeypatch)
    finally:
        sandbox.kubectl("delete", "--ignore-not-found", "--wait=false", *names, check=False)
    enum = objects[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"]["properties"]["matchers"]["items"]["properties"]["matchType"]["enum"]
    assert enum[0] == "="
    dashboards = next(o for o in objects if o["metadata"]["name"] == "grafana-dashboards")
    assert sum(len(v) for v in dashboards["data"].values()) > 900_000


def test_yaml_corner_cases_read_as_kubectl_reads_them(sandbox, odd_kind, corner_tree,
                                                      monkeypatch):
    objects = through_both(sandbox, corner_tree, monkeypatch)
    assert len(objects) == 302


def test_yaml_corner_cases_without_kustomize_read_as_kubectl_reads_them(sandbox, odd_kind):
    ours = [d for d in load_documents(CORNER_CASES) if isinstance(d, dict)]
    theirs = kubectl_json(sandbox, CORNER_CASES)
    same_as_kubectl(ours, theirs)
    odd = ours[1]["spec"]
    assert odd["flags"][:4] == [True, False, True, False]  # YAML 1.1 words, as kubectl
    assert odd["numbers"][:3] == ["1:20", 8, 511]
    assert odd["merged"] == {"replicas": 3, "image": "a:1"}


def test_kubectl_on_path_is_the_sandbox_one(sandbox):
    # the comparison means something only against the kubectl the tool itself runs
    version = subprocess.run([str(sandbox.bin_dir / "kubectl"), "version", "--client",
                              "-o", "json"], capture_output=True, text=True, check=True)
    assert json.loads(version.stdout)["clientVersion"]["major"] == "1"
