"""The deploy view folds the apply in the CI log (one fold: the phase groups of a graph
overlap), says when each group starts and is ready, and fences text it did not write."""

from __future__ import annotations

import pytest

from paless_deploy.core.configuration.context import CiPlatform, ConsoleSettings
from paless_deploy.core.diagnosis.findings import Finding
from paless_deploy.ui.view import DeployView
from tests.ci_parsers import gitlab_sections, parse_workflow_command


def test_github_group_closes_even_when_the_apply_is_cut(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    view = DeployView(ConsoleSettings(ci=CiPlatform.GITHUB))
    with pytest.raises(RuntimeError), view:
        view.rollout_started(3)
        view.group_started("config", 2)
        view.group_started("web", 1)
        view.group_done("config", True, 0.5)
        raise RuntimeError("cut")
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("::")]
    assert [parse_workflow_command(line)[:1] for line in lines] == [("group",), ("endgroup",)]
    assert "phase config: applying 2 object(s)" in err and "phase config: ready in 0.5s" in err


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
        view.rollout_started(2)
        view.group_started("data", 2)
        view.group_done("data", True, 1.0)
        view.rollout_done()
    assert [s[1] for s in gitlab_sections(capsys.readouterr().err)] == ["phase apply"]
    with DeployView(ConsoleSettings()) as view:
        view.rollout_started(2)
        view.group_done("data", True, 1.0)
        view.rollout_done()
    assert "section_" not in capsys.readouterr().err
