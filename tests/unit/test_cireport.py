"""CI report formatting (core/cireport), read back by the platforms' rules (tests/ci_parsers)."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paless_deploy.core.configuration.context import CiPlatform
from paless_deploy.core.errors import ExitCode
from paless_deploy.core.reporting import cireport
from paless_deploy.core.reporting.report import (
    ErrorReport,
    ObjectAction,
    ObjectReport,
    PhaseReport,
    Result,
    RunResult,
)
from paless_deploy.ui.ci import CiTargets, ci_targets, write_ci_reports
from tests.ci_parsers import (
    FormatError,
    gitlab_sections,
    parse_github_output,
    parse_gitlab_dotenv,
    parse_workflow_command,
)

NASTY = "100% done\r\nline two: a, b :: c\n::error::injected"


def failed_result() -> Result:
    crash = ErrorReport(code="crash-loop", resource="Pod/worker-abc-1", reason="CrashLoopBackOff",
                        message="Container worker keeps exiting | really.", hint="Fix the config.",
                        commands=["kubectl -n ns logs worker-abc-1 --previous"],
                        evidence=["log: ```boom```", "log: <html>"], workload="Deployment/worker")
    phase_failed = ErrorReport(code="phase-failed", hint="See above.",
                               message="Phase worker failed: Deployment/worker.")
    return Result(
        command="all", result=RunResult.FAILED, exit_code=ExitCode.FAILED, namespace="paless-feature-x", overlay="dev",
        url="https://paless.paless-feature-x.example.com/", duration_s=12.5,
        images=[{"app": "worker", "ref": "localhost:5000/paless-worker:abc", "tag": "abc",
                 "digest": "sha256:" + "a" * 64, "action": "pushed", "image_id": "x"}],
        phases=[
            PhaseReport("namespace", "t", 0.1,
                        [ObjectReport("Namespace", "ns", ObjectAction.CREATED, True)]),
            PhaseReport("data", "t", 3.2,
                        [ObjectReport("StatefulSet", "postgres", ObjectAction.CREATED, True),
                         ObjectReport("Service", "postgres", ObjectAction.CREATED, True)]),
            PhaseReport("worker", "t", 6.0,
                        [ObjectReport("Deployment", "worker", ObjectAction.CONFIGURED, False,
                                      "crash loop")]),
        ],
        warnings=["HPA web has no metrics"], errors=[crash, phase_failed],
        extra={"not_applied": [{"phase": "web", "kind": "Deployment", "name": "web"},
                               {"phase": "web", "kind": "Service", "name": "web"}]})


def test_platform_detection() -> None:
    assert cireport.detect_platform("auto", {"GITHUB_ACTIONS": "true"}) == CiPlatform.GITHUB
    assert cireport.detect_platform("auto", {"GITLAB_CI": "true"}) == CiPlatform.GITLAB
    assert cireport.detect_platform("auto", {"CI": "true"}) == CiPlatform.NONE
    assert cireport.detect_platform("none", {"GITHUB_ACTIONS": "true"}) == CiPlatform.NONE
    assert cireport.detect_platform("gitlab", {}) == CiPlatform.GITLAB


@given(st.text(), st.text())
def test_workflow_commands_round_trip_through_the_runner_parser(title: str, message: str) -> None:
    line = cireport.workflow_command("error", message, title=title)
    name, props, data = parse_workflow_command(line)
    assert name == "error" and data == message
    assert props.get("title", "") == title.strip()


def test_escaping_is_githubs() -> None:
    assert cireport.escape_data("50%\r\n") == "50%25%0D%0A"
    assert cireport.workflow_command("error", "a:b", title="x:y,z") \
        == "::error title=x%3Ay%2Cz::a:b"
    assert cireport.workflow_command("endgroup") == "::endgroup::"


def test_annotations_one_error_per_finding_and_warnings() -> None:
    lines = cireport.github_annotations(failed_result())
    parsed = [parse_workflow_command(line) for line in lines]
    assert [p[0] for p in parsed] == ["error", "error", "warning"]
    assert parsed[0][1]["title"] == "crash-loop Pod/worker-abc-1"
    assert parsed[0][2] == "Container worker keeps exiting | really. Fix the config."


def test_annotations_are_capped_as_github_shows_them() -> None:
    result = Result(command="all", result=RunResult.FAILED, exit_code=ExitCode.FAILED,
                    errors=[ErrorReport(code=f"e{i}") for i in range(14)])
    errors = [line for line in cireport.github_annotations(result) if line.startswith("::error")]
    assert len(errors) == 11 and "4 more" in errors[-1]


def test_notice_names_the_url_of_a_success() -> None:
    result = Result(command="all", namespace="ns", url="http://x/")
    assert parse_workflow_command(cireport.github_annotations(result)[-1])[2].endswith("http://x/")


@given(st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True), st.text()))
def test_outputs_parse_by_githubs_rules(values: dict[str, str]) -> None:
    assert parse_github_output(cireport.github_outputs(values)) == values


def test_outputs_of_a_failed_deploy() -> None:
    text = cireport.github_outputs(cireport.output_values(failed_result()))
    outputs = parse_github_output(text)
    assert outputs["result"] == "failed" and outputs["exit_code"] == "1"
    assert outputs["namespace"] == "paless-feature-x"
    assert outputs["url"] == "https://paless.paless-feature-x.example.com/"
    assert json.loads(outputs["images"]) == [{"app": "worker",
                                              "ref": "localhost:5000/paless-worker:abc",
                                              "tag": "abc", "digest": "sha256:" + "a" * 64,
                                              "action": "pushed"}]
    assert outputs["errors"].splitlines()[0].startswith("crash-loop Pod/worker-abc-1: ")
    assert "errors<<ghadelimiter_" in text


def test_a_value_holding_the_delimiter_gets_another() -> None:
    first = cireport.heredoc_delimiter("a\nb")
    tricky = f"a\n{first}\nb"
    assert parse_github_output(cireport.github_outputs({"x": tricky})) == {"x": tricky}


def test_the_strict_parser_refuses_what_the_runner_refuses() -> None:
    for bad in ("novalue\n", "x<<EOF\nabc\n", "=v\n", "x=1"):
        with pytest.raises(FormatError):
            parse_github_output(bad)


def test_summary_has_result_images_phase_table_and_failures() -> None:
    text = cireport.github_summary(failed_result())
    assert "❌ paless-deploy all: failed (exit 1)" in text
    assert "| phase | duration | objects | result |" in text
    assert "| worker | 6.0 s | 1 | FAILED |" in text
    assert "| web |  | 2 | not applied |" in text
    assert "sha256:" + "a" * 64 in text
    assert "keeps exiting \\| really." in text  # a pipe cannot break the table
    assert "**Fix:** Fix the config." in text
    assert "| URL | [https://paless.paless-feature-x.example.com/]" \
           "(https://paless.paless-feature-x.example.com/) |" in text
    assert "kubectl -n ns logs worker-abc-1 --previous" in text
    assert "````text" in text  # evidence with ``` inside still stays in its block
    assert "<html>" in text.split("````text", 1)[1]  # verbatim inside the code block


def test_dotenv_parses_by_gitlabs_rules() -> None:
    values = parse_gitlab_dotenv(cireport.gitlab_dotenv(failed_result()))
    assert values == {"DEPLOY_NAMESPACE": "paless-feature-x",
                      "DEPLOY_URL": "https://paless.paless-feature-x.example.com/",
                      "DEPLOY_RESULT": "failed", "DEPLOY_EXIT_CODE": "1", "DEPLOY_OVERLAY": "dev"}
    no_url = parse_gitlab_dotenv(cireport.gitlab_dotenv(Result(command="all", namespace="ns")))
    assert "DEPLOY_URL" not in no_url  # GitLab refuses empty values


def test_gitlab_sections_are_well_formed() -> None:
    markers = cireport.LogMarkers(CiPlatform.GITLAB)
    log = "\n".join([markers.phase_start("object-storage-init", 1700000000.7), "applying",
                     markers.phase_end("object-storage-init", 1700000003.2)])
    assert gitlab_sections(log) == [("paless_phase_object-storage-init",
                                     "phase object-storage-init", "closed")]
    assert cireport.LogMarkers(CiPlatform.NONE).phase_start("web", 0) == ""


def test_github_groups_and_quotes() -> None:
    markers = cireport.LogMarkers(CiPlatform.GITHUB)
    assert parse_workflow_command(markers.phase_start("web", 0)) == ("group", {}, "phase web")
    assert markers.phase_end("web", 0) == "::endgroup::"
    assert markers.quote_start("tok") == "::stop-commands::tok"
    assert markers.quote_end("tok") == "::tok::"


def test_junit_one_failure_for_the_failing_workload() -> None:
    root = ET.fromstring(cireport.junit_xml(failed_result(), timestamp="2024-01-01T00:00:00"))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert set(cases) == {("data", "StatefulSet/postgres"), ("worker", "Deployment/worker"),
                          ("web", "Deployment/web")}
    failure = cases[("worker", "Deployment/worker")].find("failure")
    assert failure is not None and failure.get("type") == "crash-loop"
    assert "keeps exiting" in (failure.text or "") and "log: ```boom```" in (failure.text or "")
    assert cases[("web", "Deployment/web")].find("skipped") is not None
    assert cases[("data", "StatefulSet/postgres")].find("failure") is None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")


def test_junit_of_a_run_that_failed_before_any_workload() -> None:
    result = Result(command="all", result=RunResult.ERROR, exit_code=ExitCode.USAGE,
                    errors=[ErrorReport(code="config", message="Bad \x1b[31mvariable\x1b[0m.")])
    root = ET.fromstring(cireport.junit_xml(result, timestamp="t"))
    cases = list(root.iter("testcase"))
    assert [(c.get("classname"), c.get("name")) for c in cases] == [("paless-deploy", "all")]
    assert root.find("testsuite/testcase/failure") is not None


def test_writer_appends_scrubs_and_never_writes_outside_deploys(tmp_path: Path) -> None:
    out, summary = tmp_path / "out", tmp_path / "summary"
    out.write_text("earlier=1")  # a previous step left its last line open
    environ = {"GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary)}
    targets = ci_targets(CiPlatform.GITHUB, environ, junit=tmp_path / "junit.xml")
    result = failed_result()
    result.errors[0] = ErrorReport(code="config-error", message="key s3cr3t-value missing",
                                   evidence=["s3cr3t-value"], workload="Deployment/worker")
    log = io.StringIO()
    write_ci_reports(targets, result, ["s3cr3t-value"], stream=log)
    outputs = parse_github_output(out.read_text())
    assert outputs["earlier"] == "1" and outputs["result"] == "failed"
    for text in (out.read_text(), summary.read_text(), log.getvalue(),
                 (tmp_path / "junit.xml").read_text()):
        assert "s3cr3t-value" not in text
    assert all(parse_workflow_command(line) for line in log.getvalue().splitlines())

    status = tmp_path / "status-summary"
    targets = CiTargets(CiPlatform.GITHUB, step_summary=status)
    write_ci_reports(targets, Result(command="status"), [], stream=io.StringIO())
    assert not status.exists()


def test_nasty_text_stays_on_one_command_line() -> None:
    result = Result(command="all", result=RunResult.FAILED, exit_code=ExitCode.FAILED,
                    errors=[ErrorReport(code="x", resource="a,b:c", message=NASTY)])
    for line in cireport.github_annotations(result):
        assert "\n" not in line and "\r" not in line
        assert parse_workflow_command(line)[2].startswith(NASTY)
