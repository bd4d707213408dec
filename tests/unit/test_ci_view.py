"""The deploy view folds each phase in the CI log and fences text it did not write."""

from __future__ import annotations

import pytest

from paless_deploy.core.configuration.context import CiPlatform, ConsoleSettings
from paless_deploy.core.diagnosis.findings import Finding
from paless_deploy.ui.view import DeployView
from tests.ci_parsers import gitlab_sections, parse_workflow_command


def test_github_groups_close_even_when_a_phase_is_cut(capsys: pytest.CaptureFixture[str]) -> None:
    view = DeployView(ConsoleSettings(ci=CiPlatform.GITHUB))
    with pytest.raises(RuntimeError), view:
        view.phase_started("config", 2)
        view.phase_done("config", True, "")
        view.phase_started("web", 1)
        raise RuntimeError("cut")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("::")]
    assert [parse_workflow_command(line)[:1] for line in lines] == [
        ("group",), ("endgroup",), ("group",), ("endgroup",)]


def test_finding_text_cannot_run_workflow_commands(capsys: pytest.CaptureFixture[str]) -> None:
    view = DeployView(ConsoleSettings(ci=CiPlatform.GITHUB))
    view.finding(Finding("crash-loop", "Pod/x", "CrashLoopBackOff", "boom", "fix it",
                         evidence=("log: ::add-mask::nothing", "log: [sandbox] started")))
    err = capsys.readouterr().err
    lines = err.splitlines()
    token = parse_workflow_command(lines[0])[2]
    assert lines[0] == f"::stop-commands::{token}" and lines[-1] == f"::{token}::"
    assert "[sandbox] started" in err, "log words in brackets are text, not markup"


def test_gitlab_sections_and_nothing_without_ci(capsys: pytest.CaptureFixture[str]) -> None:
    with DeployView(ConsoleSettings(ci=CiPlatform.GITLAB)) as view:
        view.phase_started("data", 2)
        view.phase_done("data", True, "")
    assert [s[1] for s in gitlab_sections(capsys.readouterr().err)] == ["phase data"]
    with DeployView(ConsoleSettings()) as view:
        view.phase_started("data", 2)
        view.phase_done("data", True, "")
    assert "section_" not in capsys.readouterr().err
