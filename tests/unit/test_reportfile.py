"""Reading an earlier run's report back (--images-from, destroy --from-report)."""

from __future__ import annotations

import json

import pytest

from paless_deploy.core.errors import ConfigError, ExitCode
from paless_deploy.core.reporting.reportfile import parse_report

DIGEST = "sha256:" + "ab" * 32


def report(**overrides) -> str:
    doc = {"version": 1, "command": "push", "result": "success", "namespace": "paless-x",
           "images": [{"app": "web", "ref": "localhost:5000/paless-web:1a2b", "tag": "1a2b",
                       "digest": DIGEST, "action": "pushed"},
                      {"app": "worker", "ref": "localhost:5000/paless-worker:3c4d",
                       "tag": "3c4d", "digest": DIGEST, "action": "skipped"}],
           "phases": [{"name": "storage", "objects": [
               {"kind": "PersistentVolume", "name": "pv-1", "action": "created",
                "api_version": "v1"},
               {"kind": "PersistentVolumeClaim", "name": "data", "action": "unchanged"},
               {"kind": "ConfigMap", "name": "old", "action": "pruned"}]}]}
    doc.update(overrides)
    return json.dumps(doc)


def test_pinned_refs_carry_tag_and_digest():
    refs = parse_report(report(), "r.json").pinned_refs([])
    assert str(refs["web"]) == f"localhost:5000/paless-web:1a2b@{DIGEST}"
    assert set(refs) == {"web", "worker"}
    assert set(parse_report(report(), "r.json").pinned_refs(["worker"])) == {"worker"}


def test_objects_are_what_was_applied_not_pruned():
    objects = parse_report(report(), "r.json").objects
    assert [(o.api_version, o.kind, o.name) for o in objects] == [
        ("v1", "PersistentVolume", "pv-1"), ("", "PersistentVolumeClaim", "data")]


@pytest.mark.parametrize(("text", "words"), [
    ("{", "is not a JSON report"),
    ("[]", "not a paless-deploy report"),
    (json.dumps({"version": 2}), "not a paless-deploy report"),
    (json.dumps({"version": 1, "images": [{"app": "web"}]}), "has no app or ref"),
])
def test_what_is_not_a_report_is_exit_2(text, words):
    with pytest.raises(ConfigError, match=words) as caught:
        parse_report(text, "--images-from r.json")
    assert caught.value.exit_code == ExitCode.USAGE and "--output json" in caught.value.hint


def test_missing_app_digest_or_images_are_exit_2_with_the_fix():
    parsed = parse_report(report(), "r.json")
    with pytest.raises(ConfigError, match="no image for app\\(s\\) api"):
        parsed.pinned_refs(["api"])
    unpushed = parse_report(report(images=[{"app": "web", "ref": "r/paless-web:1",
                                            "digest": None}]), "r.json")
    with pytest.raises(ConfigError, match="did not push") as caught:
        unpushed.pinned_refs([])
    assert "push" in caught.value.hint
    with pytest.raises(ConfigError, match="names no images"):
        parse_report(report(images=[]), "r.json").pinned_refs([])
