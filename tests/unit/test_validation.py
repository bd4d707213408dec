"""Every variable's form before any I/O, values cut to a readable length, the base image
named in a build failure (core/validation, core/errors)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from paless_deploy.core.configuration.context import Scope
from paless_deploy.core.configuration.validation import (
    FORMS,
    blame_base_image,
    config_problems,
)
from paless_deploy.core.configuration.variables import BY_NAME, nearest_variable
from paless_deploy.core.errors import BuildError, ConfigError, readable, shown
from paless_deploy.core.images.imageref import parse_registry
from paless_deploy.core.plan.lease import LeaseState, waiting_message
from paless_deploy.stages.project import load_config


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "k8s" / "overlays" / "dev").mkdir(parents=True)
    (tmp_path / "k8s" / "overlays" / "dev" / "kustomization.yaml").write_text("resources: []\n")
    return tmp_path


def config(project: Path, **environ: str):
    return load_config(project, [], {}, environ, validate=False)


def test_every_form_names_a_variable_of_the_table() -> None:
    assert all(form.variable in BY_NAME for form in FORMS)


@pytest.mark.parametrize(("name", "value", "words"), [
    ("PALESS_LOCK_TIMEOUT", "soon", "is not a duration"), ("PALESS_TTL", "0", "is zero"),
    ("DATA_VOLUME_SIZE", "ten", "is not a size"), ("REDIS_VOLUME_SIZE", "0", "not a positive"),
    ("MINIO_CONSOLE_NODEPORT", "70000", "between 1 and 65535"),
    ("SHARED_VOLUME_ACCESS_MODE", "RWX", "is not one of"),
    ("INGRESS_HOST", "a b", "is not a DNS name"), ("PAPERLESS_URL", "x.y", "http(s) URL"),
    ("BASE_IMAGE", "a b", "is not an image reference"),
    ("MINIO_BUCKET", "B", "is not a bucket name"),
    ("REDIS_PASSWORD", "p@ss/word:x", "broker URL cannot carry"),
    ("MINIO_APP_USER", "a b", "is not a MinIO access key"),
    ("INGRESS_CONTROLLER_NAMESPACE", "Kube_System", "is not a namespace"),
    ("INGRESS_CONTROLLER_LABEL", "app.kubernetes.io/", "is not a label key"),
    ("INGRESS_CONTROLLER_LABEL_VALUE", "-traefik", "is not a label value")])
def test_a_value_of_the_wrong_form_names_variable_source_and_fix(project, name, value,
                                                                  words) -> None:
    problems = config_problems(config(project, **{name: value}), scope=Scope.DEPLOY)
    assert len(problems) == 1, problems
    assert words in problems[0].message and "(from the environment)" in problems[0].message
    assert problems[0].hint and problems[0].code == "bad-value"


def test_good_values_and_defaults_pass(project) -> None:
    assert config_problems(config(project), scope=Scope.DEPLOY) == []
    good = {"PALESS_LOCK_TIMEOUT": "0", "INGRESS_HOST": "*.pr-1.example.com",
            "MINIO_CONSOLE_NODEPORT": "30080", "DATA_VOLUME_SIZE": "500Mi",
            "REDIS_PASSWORD": "Zx9.q_w~e-0", "INGRESS_CONTROLLER_NAMESPACE": "ingress-nginx",
            "INGRESS_CONTROLLER_LABEL": "app.kubernetes.io/component",
            "INGRESS_CONTROLLER_LABEL_VALUE": "controller", "INGRESS_CLASS": "nginx"}
    assert config_problems(config(project, **good), scope=Scope.DEPLOY) == []


def test_a_secret_of_the_wrong_form_is_never_quoted(project) -> None:
    (problem,) = config_problems(config(project, REDIS_PASSWORD="hunter2@host"),
                                 scope=Scope.DEPLOY)
    assert "hunter2" not in problem.message and "REDIS_PASSWORD=its value" in problem.message
    assert "openssl rand -hex 32" in problem.hint


def test_each_scope_checks_what_its_commands_need(project) -> None:
    bad = config(project, DATA_VOLUME_SIZE="x", PALESS_LOCK_TIMEOUT="x", BASE_IMAGE="a b")
    named = {scope: {p.resource for p in config_problems(bad, scope=scope)}
             for scope in Scope}
    assert named == {"images": {"BASE_IMAGE"}, "cluster": {"PALESS_LOCK_TIMEOUT"},
                     "deploy": {"BASE_IMAGE", "PALESS_LOCK_TIMEOUT", "DATA_VOLUME_SIZE"}}


def test_a_long_value_is_named_not_echoed() -> None:
    assert shown("abc") == "'abc'"
    text = shown("x" * 100_000)
    assert len(text) < 100 and "(100,000 characters)" in text
    message = readable(f"bad value {'y' * 5000} and more " + "word " * 3000)
    assert "(5,000 characters)" in message and len(message) < 8100


def test_registry_errors_name_the_wrong_part() -> None:
    cases = {"127.0.0.1:5000/MyOrg": "upper-case letters (Docker wants myorg)",
             "host:5000 x": "contains a space", "localhost:99999": "port 99999",
             "a" * 300: "longer than 255"}
    for text, words in cases.items():
        with pytest.raises(ConfigError) as info:
            parse_registry(text, "REGISTRY", "from the environment")
        assert words in info.value.message and len(info.value.message) < 300
    with pytest.raises(ConfigError) as info:
        parse_registry("http://127.0.0.1:5000", "--registry")
    assert "Drop it: --registry=127.0.0.1:5000" in info.value.hint


def test_nearest_variable_forgives_typos_and_case() -> None:
    assert nearest_variable("POSTGRES_PASWORD") == "POSTGRES_PASSWORD"
    assert nearest_variable("Ingress_Host") == "INGRESS_HOST"
    assert nearest_variable("HOME") is None and nearest_variable("REGISTRY") is None


def test_a_build_failing_on_its_base_image_names_the_variable(project) -> None:
    cfg = config(project, BASE_IMAGE="example.invalid/base:1")
    error = BuildError("Building web (Dockerfile.web, image r/p-web:1) failed at `Step 2/6 : "
                       "FROM ${BASE_IMAGE}`: no such host\n  Last build output:\n    ...",
                       "Fix that step. (Also failed: worker.)", app="web")
    blamed = blame_base_image(error, cfg)
    first = blamed.message.splitlines()[0]
    assert "(BASE_IMAGE is example.invalid/base:1, from the environment)" in first
    assert "docker pull example.invalid/base:1" in blamed.hint
    assert blamed.hint.endswith("(Also failed: worker.)") and blamed.resource == "image/web"
    other = BuildError("Building web failed at `Step 5/6 : RUN make`: exit 2\n  Last build "
                       "output:\n    Step 2/6 : FROM ${BASE_IMAGE}", "Fix that step.")
    assert blame_base_image(other, cfg).hint == "Fix that step."


def test_a_lock_wait_says_who_since_when_and_until_when() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    state = LeaseState("ci@runner pid 7: all", now - dt.timedelta(seconds=20),
                       now - dt.timedelta(seconds=10), 30, "1")
    text = waiting_message("pr-1", state, now, 600)
    assert "held by ci@runner pid 7: all since 2026-01-01 11:59:40 UTC (20s ago)" in text
    assert "expires at 12:00:20 UTC (in 20s)" in text and "12:10:00 UTC (in 10m)" in text
