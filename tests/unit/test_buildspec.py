"""Build settings (BUILDER, PLATFORM, BUILD_TARGETS, BUILD_SECRETS, DOCKERFILE_FRONTEND) and
what a build reads from a Dockerfile: parsed and validated before anything is built."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from paless_deploy.adapters import buildkit
from paless_deploy.adapters.buildcontext import ignore_file
from paless_deploy.core.configuration.context import Scope
from paless_deploy.core.configuration.validation import config_problems
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.images.buildspec import (
    BuildSecret,
    build_failed,
    normalize_platform,
    parse_build_secrets,
    parse_build_targets,
    parse_builder,
    target_for,
    unknown_target_apps,
)
from paless_deploy.core.images.discover import App
from paless_deploy.core.images.dockerfile import dockerfile_stages, syntax_directive
from paless_deploy.stages.project import load_config


def test_secrets_are_ids_and_variables_never_values() -> None:
    assert parse_build_secrets("npm_token=NPM_TOKEN, pip=PIP_INDEX_TOKEN") == (
        BuildSecret("npm_token", "NPM_TOKEN"), BuildSecret("pip", "PIP_INDEX_TOKEN"))
    assert parse_build_secrets(None) == () == parse_build_secrets("  ")
    for bad in ("npm_token", "npm_token=", "=X", "a=B a=C", "a=not-a-variable"):
        with pytest.raises(ConfigError) as err:
            parse_build_secrets(bad, "from paless.env:3")
        assert "BUILD_SECRETS (from paless.env:3)" in err.value.message
        assert err.value.exit_code == 2


def test_targets_per_app_and_for_all() -> None:
    targets = parse_build_targets("web=runtime worker=final,*=prod")
    assert targets == {"web": "runtime", "worker": "final", "*": "prod"}
    assert target_for(targets, "web") == "runtime"
    assert target_for(targets, "scheduler") == "prod"
    assert target_for({}, "web") is None
    assert unknown_target_apps(targets, ["web", "worker"]) == []
    assert unknown_target_apps({"wbe": "x"}, ["web"]) == ["wbe"]
    with pytest.raises(ConfigError):
        parse_build_targets("web=Run time")


@pytest.mark.parametrize(("given", "normal"), [
    ("amd64", "linux/amd64"), ("linux/arm64/v8", "linux/arm64"), ("LINUX/ARM64", "linux/arm64"),
    ("linux/arm/v7", "linux/arm/v7"), ("x86_64", "linux/amd64"), ("", None), (None, None)])
def test_platform_is_normalized(given: str | None, normal: str | None) -> None:
    assert normalize_platform(given) == normal


@pytest.mark.parametrize("bad", ["linux/amd64,linux/arm64", "linux/amd 64", "a/b/c/d"])
def test_platform_errors_say_one_platform(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        normalize_platform(bad, "from the environment")
    assert "PLATFORM (from the environment)" in err.value.message


def test_builder_values() -> None:
    assert parse_builder(None) == "auto"
    assert parse_builder(" BuildKit ") == "buildkit"
    with pytest.raises(ConfigError) as err:
        parse_builder("kaniko", "from the command line")
    assert "auto, buildkit, classic" in err.value.hint


def test_config_validates_build_settings_with_their_source(tmp_path: Path) -> None:
    env = {"BUILDER": "fast", "PLATFORM": "a,b", "BUILD_TARGETS": "web", "BUILD_SECRETS": "x"}
    config = load_config(tmp_path, [], {}, env, validate=False)
    problems = config_problems(config, scope=Scope.IMAGES)
    assert [p.message.split(" ")[0] for p in problems] == [
        "BUILDER", "PLATFORM", "BUILD_TARGETS", "BUILD_SECRETS"]
    assert all("from the environment" in p.message for p in problems)


def test_secret_variables_come_from_env_files_and_environment_and_are_scrubbed(
        tmp_path: Path) -> None:
    env_file = tmp_path / "paless.env"
    env_file.write_text("BUILD_SECRETS=npm=NPM_TOKEN,pip=PIP_TOKEN\nNPM_TOKEN=from-file-1234\n"
                        "PIP_TOKEN=file-pip-5678\n")
    config = load_config(tmp_path, None, {}, {"PIP_TOKEN": "env-pip-9012"}, validate=False)
    npm, pip = config.build_secrets()
    assert config.build_secret_setting(npm).value == "from-file-1234"
    assert config.build_secret_setting(npm).source == "paless.env:2"
    assert config.build_secret_setting(pip).value == "env-pip-9012"  # environment wins
    assert {"from-file-1234", "env-pip-9012"} <= set(config.secret_values())
    shown = " ".join(value for _, value, _ in config.rows())
    assert "from-file-1234" not in shown and "env-pip-9012" not in shown
    missing = BuildSecret("other", "UNSET_TOKEN")
    assert config.build_secret_setting(missing).value is None


def test_build_spec_per_app(tmp_path: Path) -> None:
    env = {"BUILD_TARGETS": "web=runtime,*=final", "PLATFORM": "arm64",
           "BUILD_SECRETS": "npm=NPM_TOKEN", "DOCKERFILE_FRONTEND": "reg:5000/docker/dockerfile:1"}
    config = load_config(tmp_path, [], {}, env, validate=False)
    web = config.build_spec("web", "linux/amd64")
    assert (web.target, web.platform, web.frontend) == (
        "runtime", "linux/arm64", "reg:5000/docker/dockerfile:1")
    assert config.build_spec("worker").target == "final"
    unset = load_config(tmp_path, [], {}, {}, validate=False)
    assert unset.build_spec("web", "linux/amd64").platform == "linux/amd64"  # the engine's
    assert unset.build_spec("web").frontend is None


def test_stages_and_syntax_directive() -> None:
    text = ("# syntax=docker/dockerfile:1.7\n# check=skip=all\nFROM --platform=$BUILDPLATFORM "
            "golang AS Build\nFROM build AS test\nFROM scratch\n")
    assert dockerfile_stages(text) == ["build", "test"]
    assert syntax_directive(text) == (1, "docker/dockerfile:1.7")
    assert syntax_directive("# escape=`\n#syntax = example.com/fe:2\nFROM x\n") == \
        (2, "example.com/fe:2")
    # directives end at the first comment, blank line or instruction
    assert syntax_directive("# a comment\n# syntax=docker/dockerfile:1\nFROM x\n") is None
    assert syntax_directive("\n# syntax=docker/dockerfile:1\n") is None
    assert syntax_directive("FROM x\n# syntax=docker/dockerfile:1\n") is None


def test_ignore_file_beside_the_dockerfile_wins(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile.web").write_text("FROM scratch\n")
    app = App("web", tmp_path / "Dockerfile.web", tmp_path)
    assert ignore_file(app) is None
    (tmp_path / ".dockerignore").write_text("x\n")
    assert ignore_file(app) == tmp_path / ".dockerignore"
    (tmp_path / "Dockerfile.web.dockerignore").write_text("y\n")
    assert ignore_file(app) == tmp_path / "Dockerfile.web.dockerignore"


def test_classic_failure_on_buildkit_syntax_says_how_to_get_buildkit(tmp_path: Path) -> None:
    app = App("worker", tmp_path / "Dockerfile", tmp_path)
    error = build_failed(app, "r/p-worker:1", "Step 1/4 : FROM --platform=${BUILDPLATFORM} x",
                         'failed to parse platform : "" is an invalid component', [],
                         classic=True)
    assert "BUILDER=buildkit" in error.hint and "doctor" in error.hint
    plain = build_failed(app, "r/p-worker:1", "Step 2/4 : COPY a /a", "no such file", [],
                         classic=True)
    assert plain.hint.startswith("Fix that step")


def _stub(directory: Path, script: str) -> None:
    directory.mkdir(parents=True)
    path = directory / "docker"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_detection_prefers_buildx_then_an_old_client_else_says_why(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   ) -> None:
    new = 'case "$1" in --version) echo "Docker version 28.2.2, build e6534b4";; *) exit 1;; esac\n'
    old = 'case "$1" in --version) echo "Docker version 20.10.24+dfsg1, build 297e128";; ' \
          '*) exit 1;; esac\n'
    plugin = 'case "$1" in buildx) echo "github.com/docker/buildx v0.38.2 abc";; ' \
             '--version) echo "Docker version 28.2.2";; esac\n'
    _stub(tmp_path / "new", new)
    _stub(tmp_path / "old", old)
    _stub(tmp_path / "plugin", plugin)

    def find(*dirs: str) -> tuple[buildkit.BuildkitCli | None, str]:
        monkeypatch.setenv("PATH", os.pathsep.join(str(tmp_path / d) for d in dirs))
        return buildkit.find_buildkit()

    cli, _ = find("new", "plugin", "old")
    assert cli is not None and cli.argv[1:] == ("buildx", "build") and cli.load
    assert "v0.38.2" in cli.description
    cli, _ = find("new", "old")
    assert cli is not None and cli.argv[1:] == ("build",)
    assert cli.env == {"DOCKER_BUILDKIT": "1"} and not cli.load
    cli, why = find("new")
    assert cli is None and "Docker 28.2) has no buildx plugin" in why
    cli, why = find("nowhere")
    assert cli is None and why == "no `docker` command on PATH"
