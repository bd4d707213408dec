"""The configuration's rule table (core/configuration/validation RULES): every rule passes
on the defaults, fires on a bad value of what it reads, in exactly the scopes it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from paless_deploy.core.configuration.config import Config
from paless_deploy.core.configuration.context import Scope
from paless_deploy.core.configuration.validation import FORMS, RULES, config_problems
from paless_deploy.core.configuration.variables import BY_NAME
from paless_deploy.core.errors import ExitCode
from paless_deploy.stages.project import load_config

BY_RULE = {rule.name: rule for rule in RULES}

# A value of what each rule reads that it must refuse (every variable of FORMS takes a
# value with a space and a '!' for none of its forms).
BAD: dict[str, dict[str, str]] = {
    "PROJECT_NAME empty": {"PROJECT_NAME": " "},
    "REGISTRY empty": {"REGISTRY": ""},
    "PALESS_NAMESPACE empty": {"PALESS_NAMESPACE": ""},
    "OVERLAY empty": {"OVERLAY": " "},
    **{f"{form.variable} form": {form.variable: "not one!"} for form in FORMS},
    "PROJECT_NAME image name": {"PROJECT_NAME": "My App"},
    "BUILDER parses": {"BUILDER": "fast"},
    "PLATFORM parses": {"PLATFORM": "linux/amd64,linux/arm64"},
    "BUILD_TARGETS parses": {"BUILD_TARGETS": "web"},
    "BUILD_SECRETS parses": {"BUILD_SECRETS": "a b"},
    "REGISTRY parses": {"REGISTRY": "http://registry.example.com"},
    "PALESS_IMAGES parses": {"PALESS_IMAGES": "web"},
    "IMAGE_DELIVERY parses": {"IMAGE_DELIVERY": "carrier-pigeon"},
    "namespace name": {"PALESS_NAMESPACE": "Not_A_Name"},
    "OVERLAY name": {"OVERLAY": "../etc"},
    "OVERLAY exists": {"OVERLAY": "qa"},
    "project has overlays": {},  # a project without k8s/overlays
    "MINIO_ROOT_PASSWORD length": {"MINIO_ROOT_PASSWORD": "short"},
    "MINIO_APP_PASSWORD length": {"MINIO_APP_PASSWORD": "short"},
    "MINIO_APP_USER not root": {"MINIO_APP_USER": "admin", "MINIO_ROOT_USER": "admin"},
}


def project(tmp_path: Path, overlays: tuple[str, ...] = ("dev",)) -> Path:
    for overlay in overlays:
        directory = tmp_path / "k8s" / "overlays" / overlay
        directory.mkdir(parents=True)
        (directory / "kustomization.yaml").write_text("resources: []\n")
    return tmp_path


def configured(root: Path, environ: dict[str, str]) -> Config:
    return load_config(root, [], {}, environ, validate=False)


def test_every_rule_is_named_once_reads_known_variables_and_has_a_bad_value() -> None:
    assert len(BY_RULE) == len(RULES)
    assert all(set(rule.reads) <= set(BY_NAME) and rule.reads and rule.scopes
               for rule in RULES)
    assert set(BAD) == set(BY_RULE)


def test_no_rule_fires_on_the_defaults(tmp_path: Path) -> None:
    config = configured(project(tmp_path), {})
    assert {rule.name: rule.problem(config) for rule in RULES} == {
        rule.name: None for rule in RULES}
    assert all(config_problems(config, scope=scope) == [] for scope in Scope)


@pytest.mark.parametrize("name", list(BAD))
def test_each_rule_fires_on_a_bad_value_and_names_what_it_reads(tmp_path: Path,
                                                                name: str) -> None:
    rule = BY_RULE[name]
    root = project(tmp_path, () if name == "project has overlays" else ("dev",))
    config = configured(root, BAD[name])
    problem = rule.problem(config)
    assert problem is not None, f"{name} did not fire on {BAD[name]}"
    assert problem.exit_code == rule.exit_code == ExitCode.USAGE
    assert problem.message and problem.hint and problem.code
    assert "{" not in problem.message + problem.hint + problem.code  # every field filled
    words = f"{problem.message} {problem.hint} {problem.resource}"
    assert any(variable in words for variable in rule.reads), words
    # the table runs it in its scopes only
    for scope in Scope:
        found = [p.message for p in config_problems(config, scope=scope)]
        assert (problem.message in found) == (scope in rule.scopes), (scope, found)


def test_the_table_reports_in_its_order(tmp_path: Path) -> None:
    """load_config raises the first problem: an empty value comes before what it breaks."""
    config = configured(project(tmp_path), {"OVERLAY": "", "BUILDER": "fast",
                                            "MINIO_ROOT_PASSWORD": "x"})
    codes = [p.code for p in config_problems(config, scope=Scope.DEPLOY)]
    assert codes == ["empty-value", "config", "config", "config"]
    messages = [p.message for p in config_problems(config, scope=Scope.DEPLOY)]
    assert messages[1].startswith("BUILDER") and messages[2].startswith("Overlay ''")
    assert messages[3].startswith("MINIO_ROOT_PASSWORD")
