"""The CLI contract: no-argument help, app shorthand, exit codes, JSON on stdout, masking.

In-process through `main(argv)`; cluster commands run against stubs of their command modules.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paless_deploy import __version__, cli
from paless_deploy.core.configuration.variables import VARIABLES
from paless_deploy.core.errors import ClusterError
from paless_deploy.core.reporting.report import ObjectAction, ObjectReport, PhaseReport, Result
from paless_deploy.ui.panels import print_error


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with a dev overlay and two apps; the cwd; a clean environment."""
    for variable in VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)
    for name in ("NO_COLOR", "BRANCH_NAME", "GITHUB_HEAD_REF", "GITHUB_REF_NAME",
                 "CI_COMMIT_REF_NAME"):
        monkeypatch.delenv(name, raising=False)
    overlay = tmp_path / "k8s" / "overlays" / "dev"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text("resources: []\n")
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "Dockerfile.web").write_text("FROM scratch\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


class Stubs:
    """Replaces `run_<command>` functions of paless_deploy.commands modules, recording calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.calls: list[Any] = []

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("run_"):
            object.__setattr__(self, name, value)
            return
        import importlib

        module = {"run_deploy": "deploy", "run_all": "deploy", "run_status": "status",
                  "run_diff": "diff", "run_destroy": "destroy", "run_gc": "destroy",
                  "run_doctor": "doctor"}[name]
        self.monkeypatch.setattr(importlib.import_module(f"paless_deploy.commands.{module}"),
                                 name, value)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubs]:
    """Stubs of the command functions, recording their calls."""
    yield Stubs(monkeypatch)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_no_arguments_prints_help(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)
    assert code == 0 and "Usage:" in out and "deploy" in out


def test_version(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and __version__ in out


def test_unknown_command(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "frobnicate")
    assert code == 2
    assert "frobnicate" in err and "api, web" in err


def test_unknown_command_json(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--output", "json", "frobnicate")
    doc = json.loads(out)
    assert code == 2 and doc["result"] == "error" and doc["exit_code"] == 2


def test_app_name_is_deploy_shorthand(project: Path, engine: Any,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    def run_deploy(run_ctx: Any, apps: list[str], **options: Any) -> Result:
        engine.calls.append((run_ctx, apps))
        return Result(command="deploy")

    engine.run_deploy = run_deploy
    code, out, _ = run(capsys, "--output", "json", "-n", "team-a", "web", "api")
    assert code == 0
    run_ctx, apps = engine.calls[0]
    assert apps == ["web", "api"]
    assert run_ctx.config.namespace == "team-a" and run_ctx.timeout_s == 600
    doc = json.loads(out)
    assert doc["command"] == "deploy" and doc["namespace"] == "team-a"


def test_engine_options_and_durations(project: Path, engine: Any,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    def run_gc(ctx: Any, **kw: Any) -> Result:
        engine.calls.append(kw)
        return Result(command="gc")

    def run_all(ctx: Any, **kw: Any) -> Result:
        engine.calls.append((ctx.progress_deadline_s, kw))
        return Result(command="all")

    engine.run_gc = run_gc
    engine.run_all = run_all
    assert run(capsys, "gc", "--older-than", "3d", "--dry-run")[0] == 0
    assert run(capsys, "--progress-deadline", "90", "all", "--no-prune")[0] == 0
    assert engine.calls[0] == {"older_than": 259200.0, "dry_run": True, "selector": None,
                               "sleep_after": None}
    deadline, options = engine.calls[1]
    assert deadline == 90 and options["no_prune"] and not options["force_conflicts"]


def test_engine_errors_map_to_exit_codes(project: Path, engine: Any,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    def fail(run_ctx: Any) -> None:
        raise ClusterError("The API server at https://x refused the connection.",
                           "Start the cluster.")

    engine.run_diff = fail
    code, out, err = run(capsys, "--output", "json", "diff")
    assert code == 4 and "refused the connection" in err and "Traceback" not in err
    doc = json.loads(out)
    assert doc["command"] == "diff" and doc["result"] == "error"
    assert doc["errors"][0]["code"] == "cluster" and doc["errors"][0]["hint"]


def test_internal_error_without_traceback(project: Path, engine: Any,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    def boom(run_ctx: Any) -> None:
        raise RuntimeError("kaputt")

    engine.run_doctor = boom
    code, _, err = run(capsys, "doctor")
    assert code == 1 and "Internal error" in err and "kaputt" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "-v", "doctor")
    assert code == 1 and "Traceback" in err


def test_interrupt_exits_130(project: Path, engine: Any,
                             capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(run_ctx: Any, **options: Any) -> None:
        raise KeyboardInterrupt

    engine.run_destroy = interrupted
    code, _, err = run(capsys, "destroy", "--yes")
    assert code == 130 and "Interrupted" in err


def test_config_masks_secrets_and_names_sources(project: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("POSTGRES_PASSWORD", "very-secret-password")
    (project / "paless.env").write_text("REGISTRY=reg.example:5000\n")
    code, out, err = run(capsys, "config")
    assert code == 0
    assert "very-secret-password" not in out + err
    assert "reg.example:5000" in out and "paless.env:1" in out and "environment" in out
    code, out, _ = run(capsys, "--output", "json", "config")
    doc = json.loads(out)
    rows = {row["name"]: row for row in doc["config"]}
    assert rows["POSTGRES_PASSWORD"]["value"] == "********"
    assert rows["POSTGRES_PASSWORD"]["source"] == "environment"


def test_config_reports_problems_exit_2(project: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--overlay", "prod", "config")
    assert code == 2
    assert "OVERLAY" in err and "command line" in err
    assert "VARIABLE" in out  # the table is still shown


def test_bad_duration_is_a_usage_error(project: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--timeout", "soon", "config")
    assert code == 2 and "--timeout" in err


def test_namespace_flags_conflict(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-n", "x", "--namespace-from-branch", "config")
    assert code == 2 and "contradict" in err


def test_help_lists_apps_and_warns_on_command_names(project: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (project / "status").mkdir()
    (project / "status" / "Dockerfile").write_text("FROM scratch\n")
    code, out, err = run(capsys, "help")
    assert code == 0
    assert "localhost:5000/paless-web" in out and "Dockerfile.web" in out
    assert "********" in out
    assert "deploy status" in err
    code, out, _ = run(capsys, "--output", "json", "help")
    doc = json.loads(out)
    assert {a["name"] for a in doc["apps"]} == {"api", "status", "web"}
    assert any("status" in w for w in doc["warnings"])


def test_build_without_apps_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "build")
    assert code == 2 and "No apps found" in err


def test_unknown_app_for_build(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "build", "nope")
    assert code == 2 and "Unknown app 'nope'" in err


def test_result_document_shape() -> None:
    result = Result(command="all", namespace="ns", overlay="dev", phases=[
        PhaseReport("web", "2024-01-01T00:00:00Z", 1.5,
                    [ObjectReport("Deployment", "web", ObjectAction.CONFIGURED, True, "")]),
    ])
    doc = json.loads(result.to_json())
    assert list(doc)[:11] == ["version", "command", "result", "exit_code", "namespace",
                              "overlay", "duration_s", "images", "phases", "warnings",
                              "errors"]
    # keys added to objects come after the design's: when applied and ready, where
    assert doc["phases"][0]["objects"][0] == {"kind": "Deployment", "name": "web",
                                              "action": "configured", "ready": True,
                                              "reason": "", "api_version": "",
                                              "applied_at": None, "ready_at": None,
                                              "namespace": ""}
    assert doc["url"] is None  # keys added since version 1 come after the design's


def test_error_panel_without_colour() -> None:
    import io

    buffer = io.StringIO()
    print_error(ClusterError("Cause.", "Fix."), color=False, terminal=True, stream=buffer)
    text = buffer.getvalue()
    assert "Cause." in text and "Fix." in text and "\x1b[31m" not in text
    buffer = io.StringIO()
    print_error(ClusterError("Cause.", "Fix."), color=False, terminal=False, stream=buffer)
    assert buffer.getvalue() == "error: Cause. Fix.\n"


@pytest.mark.parametrize("args", [["--help"], ["config"], ["help"]])
def test_light_commands_do_not_import_docker_or_kubernetes(project: Path,
                                                           args: list[str]) -> None:
    script = (
        "import sys, json\n"
        "from paless_deploy.cli import main\n"
        f"code = main({args!r})\n"
        "heavy = sorted(m for m in ('docker', 'kubernetes') if m in sys.modules)\n"
        "print('HEAVY=' + json.dumps(heavy), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=project, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "HEAVY=[]" in done.stderr


def test_env_file_shell_habits_are_warnings_in_every_output(project: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    (project / "paless.env").write_text("PAPERLESS_SECRET_KEY=$(openssl rand -hex 32)\n")
    code, out, err = run(capsys, "--output", "json", "config")
    doc = json.loads(out)
    assert code == 0
    assert any("paless.env:1: PAPERLESS_SECRET_KEY holds a command substitution" in w
               for w in doc["warnings"])
    code, _, err = run(capsys, "config")
    assert "warning: paless.env:1" in err and "openssl" not in err


def test_an_env_file_syntax_error_is_exit_2(project: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    (project / "paless.env").write_text("OVERLAY=dev\nthis line is wrong\n")
    code, out, _ = run(capsys, "--output", "json", "config")
    doc = json.loads(out)
    assert code == 2 and doc["errors"][0]["code"] == "bad-env-file"
    assert "paless.env:2" in doc["errors"][0]["message"]


def test_a_missing_resource_with_an_example_says_cp(project: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    overlay = project / "k8s" / "overlays" / "dev"
    (overlay / "kustomization.yaml").write_text("resources:\n  - secret.yaml\n")
    (overlay / "secret.yaml.example").write_text("apiVersion: v1\nkind: Secret\n")
    code, _, err = run(capsys, "render")
    assert code == 2 and "cp " in err and "secret.yaml.example" in err


def test_plan_strict_makes_lint_warnings_exit_2(project: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    overlay = project / "k8s" / "overlays" / "dev"
    (overlay / "kustomization.yaml").write_text("resources:\n  - web.yaml\n")
    (overlay / "web.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
        "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
        "    spec: {containers: [{name: web, image: web}]}\n")
    code, out, _ = run(capsys, "--output", "json", "plan")
    assert code == 0 and any("no readiness probe" in w for w in json.loads(out)["warnings"])
    code, out, _ = run(capsys, "--output", "json", "plan", "--strict")
    doc = json.loads(out)
    assert code == 2 and doc["errors"][0]["code"] == "strict"


def test_dev_no_sync_turns_the_sync_off(project: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from paless_deploy.commands import dev

    calls: list[dict[str, Any]] = []

    def fake_run_dev(_run_ctx: Any, _reload: Any, **options: Any) -> Result:
        calls.append(options)
        return Result(command="dev")

    monkeypatch.setattr(dev, "run_dev", fake_run_dev)
    assert run(capsys, "dev", "--no-sync", "--no-logs")[0] == 0
    assert run(capsys, "dev")[0] == 0
    assert [c["sync"] for c in calls] == [False, True]
    assert calls[0]["logs"] is False
