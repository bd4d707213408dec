"""CI reports: what a pipeline reads from one deploy, written by each platform's rules.

Pure formatting over a `Result`, text in and text out: GitHub Actions workflow commands
(escaped as the runner unescapes them), step outputs (GITHUB_OUTPUT's `name=value` and
heredoc forms), the step summary (Markdown); GitLab's collapsible section markers and
dotenv report; JUnit XML as GitLab's merge-request widget and GitHub test reporters read it.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from paless_deploy.core.apitypes import JsonDict
from paless_deploy.core.configuration.context import CiPlatform
from paless_deploy.core.reporting.report import ErrorReport, ObjectReport, Result, RunResult

AUTO_DETECT = "auto"  # `--ci auto`: from GITHUB_ACTIONS / GITLAB_CI
DEPLOY_COMMANDS = frozenset({"all", "deploy"})

MAX_ANNOTATIONS = 10  # GitHub shows at most 10 error and 10 warning annotations per step
MAX_EVIDENCE_LINES = 40
MAX_SUMMARY_CHARS = 120_000  # the runner refuses a step summary above 128 KiB
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job",
                            "Pod"})
BOOKKEEPING_PHASES = frozenset({"namespace", "prune"})


def detect_platform(choice: str, environ: Mapping[str, str]) -> CiPlatform:
    """`--ci auto` means GitHub under GITHUB_ACTIONS=true, GitLab under GITLAB_CI=true."""
    if choice != AUTO_DETECT:
        return CiPlatform(choice)
    if environ.get("GITHUB_ACTIONS") == "true":
        return CiPlatform.GITHUB
    if environ.get("GITLAB_CI") == "true":
        return CiPlatform.GITLAB
    return CiPlatform.NONE


# ---------------------------------------------------------------------------
# GitHub workflow commands


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as the runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (`:` and `,` separate properties)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(name: str, message: str = "", **properties: str) -> str:
    """`::name key=value,...::message`, one line whatever the text holds (property values
    are stripped: the runner trims the property list)."""
    props = ",".join(f"{key}={escape_property(value.strip())}"
                     for key, value in properties.items() if value.strip())
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def github_annotations(result: Result) -> list[str]:
    """One `::error` per error (title: code and resource; message: cause and fix), one
    `::warning` per warning, a `::notice` with the URL of a successful deploy."""
    lines = [workflow_command("error", _cause_and_fix(e), title=_title(e))
             for e in result.errors[:MAX_ANNOTATIONS]]
    if len(result.errors) > MAX_ANNOTATIONS:
        lines.append(workflow_command(
            "error", f"{len(result.errors) - MAX_ANNOTATIONS} more error(s): see the job log "
            "or the step summary.", title="paless-deploy"))
    lines += [workflow_command("warning", w, title="paless-deploy")
              for w in result.warnings[:MAX_ANNOTATIONS]]
    if result.result == RunResult.SUCCESS and result.url and result.command in DEPLOY_COMMANDS:
        lines.append(workflow_command("notice", f"Deployed to namespace {result.namespace}: "
                                      f"{result.url}", title="paless-deploy"))
    return lines


def output_values(result: Result) -> dict[str, str]:
    """The step outputs of a deploy (also the dotenv's values, under other names)."""
    return {
        "result": result.result,
        "exit_code": str(result.exit_code),
        "namespace": result.namespace or "",
        "overlay": result.overlay or "",
        "url": result.url or "",
        "images": json.dumps([_image_output(i) for i in _images(result)],
                             separators=(",", ":")),
        "errors": "\n".join(f"{e.code} {e.resource}: {e.message}".replace("\n", " ")
                            for e in result.errors),
    }


def github_outputs(values: Mapping[str, str]) -> str:
    """GITHUB_OUTPUT text: `name=value`, or for multi-line values the heredoc form
    `name<<DELIMITER` with a delimiter that is no line of the value."""
    out = []
    for name, value in values.items():
        if "\n" in value or "\r" in value:
            delimiter = heredoc_delimiter(value)
            out.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
        else:
            out.append(f"{name}={value}\n")
    return "".join(out)


def heredoc_delimiter(value: str) -> str:
    """`ghadelimiter_<hash>`, as GitHub's toolkit names them, never a line of `value`."""
    seed = value
    while True:
        delimiter = "ghadelimiter_" + hashlib.sha256(seed.encode()).hexdigest()[:32]
        if delimiter not in value.splitlines():
            return delimiter
        seed += delimiter


# ---------------------------------------------------------------------------
# log markers: groups (GitHub), sections (GitLab), untrusted text (GitHub)


_SECTION_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class LogMarkers:
    """The lines that fold a phase in the CI log, and quote text we did not write."""

    platform: CiPlatform = CiPlatform.NONE

    def phase_start(self, phase: str, now: float) -> str:
        """Opens the phase's group/section ("" without a CI platform)."""
        header = one_line(f"phase {phase}")
        if self.platform == CiPlatform.GITHUB:
            return workflow_command("group", header)
        if self.platform == CiPlatform.GITLAB:
            return f"\x1b[0Ksection_start:{int(now)}:{section_name(phase)}\r\x1b[0K{header}"
        return ""

    def phase_end(self, phase: str, now: float) -> str:
        """Closes what `phase_start` opened."""
        if self.platform == CiPlatform.GITHUB:
            return workflow_command("endgroup")
        if self.platform == CiPlatform.GITLAB:
            return f"\x1b[0Ksection_end:{int(now)}:{section_name(phase)}\r\x1b[0K"
        return ""

    def quote_start(self, token: str) -> str:
        """GitHub: stop processing workflow commands (container logs could carry some)."""
        github = self.platform == CiPlatform.GITHUB
        return workflow_command("stop-commands", token) if github else ""

    def quote_end(self, token: str) -> str:
        """GitHub: resume processing workflow commands."""
        return f"::{token}::" if self.platform == CiPlatform.GITHUB else ""


def section_name(phase: str) -> str:
    """A GitLab section name (letters, digits, `_`, `.`, `-`) for a phase."""
    return "paless_phase_" + _SECTION_NAME.sub("_", phase)


# ---------------------------------------------------------------------------
# GitLab dotenv


DOTENV_KEY = re.compile(r"^[A-Za-z0-9_]+$")


def gitlab_dotenv(result: Result) -> str:
    """DEPLOY_NAMESPACE, DEPLOY_URL, DEPLOY_RESULT, DEPLOY_EXIT_CODE, DEPLOY_OVERLAY as
    GitLab reads a dotenv report: `KEY=value` lines, no quotes, no blank lines, one line
    each (an empty value is left out: GitLab refuses empty variables)."""
    values = output_values(result)
    pairs = {"DEPLOY_NAMESPACE": values["namespace"], "DEPLOY_URL": values["url"],
             "DEPLOY_RESULT": values["result"], "DEPLOY_EXIT_CODE": values["exit_code"],
             "DEPLOY_OVERLAY": values["overlay"]}
    return "".join(f"{key}={one_line(value)}\n" for key, value in pairs.items()
                   if one_line(value))


# ---------------------------------------------------------------------------
# GitHub step summary (Markdown)


def github_summary(result: Result) -> str:
    """Result, namespace, URL, images with digests, the phases with their durations, and
    each failure with its fix and the commands to look further."""
    icon = {RunResult.SUCCESS: "✅", RunResult.FAILED: "❌"}.get(result.result, "⚠️")
    out = [(f"### {icon} paless-deploy {result.command}: {result.result} "
           f"(exit {result.exit_code})"), "", "| | |", "| --- | --- |",
           f"| namespace | {_code(result.namespace or '')} |",
           f"| overlay | {_code(result.overlay or '')} |"]
    if result.url:
        out.append(f"| URL | {_link(result.url)} |")
    out += [f"| duration | {result.duration_s:.1f} s |", ""]
    images = _images(result)
    if images:
        out += ["#### Images", "", "| app | image | digest | action |",
                "| --- | --- | --- | --- |"]
        out += [f"| {_md(str(i.get('app', '')))} | {_code(str(i.get('ref', '')))} | "
                f"{_code(str(i.get('digest') or ''))} | {_md(str(i.get('action', '')))} |"
                for i in images]
        out.append("")
    rows = phase_rows(result)
    if rows:
        out += ["#### Phases", "", "| phase | duration | objects | result |",
                "| --- | ---: | ---: | --- |"]
        out += [f"| {_md(r.name)} | {r.duration} | {r.objects} | {_md(r.state)} |"
                for r in rows]
        out.append("")
    if result.errors:
        out += ["#### Failures", ""]
        for e in result.errors:
            out += _failure_markdown(e)
    if result.warnings:
        out += ["#### Warnings", ""] + [f"- {_md(w)}" for w in result.warnings] + [""]
    text = "\n".join(out) + "\n"
    if len(text) > MAX_SUMMARY_CHARS:
        text = text[:MAX_SUMMARY_CHARS] + "\n\n(truncated: the JSON report has the rest)\n"
    return text


@dataclass(frozen=True)
class PhaseRow:
    """One line of the phase table."""

    name: str
    duration: str
    objects: int
    state: str


def phase_rows(result: Result) -> list[PhaseRow]:
    """Every phase applied (with its outcome), then those never applied."""
    cut = result.extra.get("interrupted_phase")
    rows = []
    for phase in result.phases:
        if phase.name == cut:
            state = "interrupted"
        elif any(o.ready is False for o in phase.objects):
            state = "FAILED"
        else:
            state = "ready" if phase.name != "prune" else "done"
        rows.append(PhaseRow(phase.name, f"{phase.duration_s:.1f} s", len(phase.objects), state))
    pending: dict[str, int] = {}
    for item in _not_applied(result):
        pending[item["phase"]] = pending.get(item["phase"], 0) + 1
    rows += [PhaseRow(name, "", count, "not applied") for name, count in pending.items()]
    return rows


def _failure_markdown(e: ErrorReport) -> list[str]:
    out = [f"**{_code(e.code)}** {_md(e.resource)}" + (f" ({_md(e.reason)})" if e.reason else ""),
           "", _md(e.message), ""]
    if e.hint:
        out += [f"**Fix:** {_md(e.hint)}", ""]
    evidence = e.evidence[-MAX_EVIDENCE_LINES:]
    if evidence:
        out += [f"<details><summary>Evidence ({len(evidence)} lines)</summary>", "",
                _fence("\n".join(evidence), "text"), "", "</details>", ""]
    if e.commands:
        out += ["Look further:", "", _fence("\n".join(e.commands), "sh"), ""]
    return out


# ---------------------------------------------------------------------------
# JUnit XML


def junit_xml(result: Result, *, timestamp: str) -> str:
    """One testcase per workload and Job (classname: its phase; name: Kind/name), plus any
    other object that did not become ready. A failure carries the cause, the evidence and
    the log tail; a workload of a phase never applied is skipped. A run that failed before
    any workload did gets one failing testcase named after the command."""
    cases: list[ET.Element] = []
    counts = {"failures": 0, "skipped": 0}
    attributed: set[int] = set()
    for phase in result.phases:
        if phase.name in BOOKKEEPING_PHASES:
            continue
        for obj in phase.objects:
            if obj.kind not in WORKLOAD_KINDS and obj.ready is not False:
                continue
            ref = f"{obj.kind}/{obj.name}"
            case = _testcase(phase.name, ref, phase.duration_s)
            errors = [(i, e) for i, e in enumerate(result.errors) if _concerns(e, ref)]
            attributed.update(i for i, _ in errors)
            if obj.ready is False and errors:
                _fail(case, [e for _, e in errors], counts)
            elif obj.ready is False:
                _skip(case, _not_ready_text(obj), counts)
            cases.append(case)
    for item in _not_applied(result):
        if item["kind"] not in WORKLOAD_KINDS:
            continue
        case = _testcase(item["phase"], f"{item['kind']}/{item['name']}", 0.0)
        _skip(case, f"not applied: an earlier phase failed ({item['phase']} never started)",
              counts)
        cases.append(case)
    if result.result != RunResult.SUCCESS and not counts["failures"]:
        rest = [e for i, e in enumerate(result.errors) if i not in attributed] or result.errors
        case = _testcase("paless-deploy", result.command or "paless-deploy", result.duration_s)
        _fail(case, rest or [ErrorReport(code=result.result, message=f"exit {result.exit_code}")],
              counts)
        cases.append(case)
    suite_attrs = {"name": _xml(f"paless-deploy {result.command} {result.namespace or ''}".strip()),
                   "tests": str(len(cases)), "failures": str(counts["failures"]),
                   "errors": "0", "skipped": str(counts["skipped"]),
                   "time": f"{result.duration_s:.3f}", "timestamp": timestamp}
    root = ET.Element("testsuites", {k: suite_attrs[k] for k in
                                     ("tests", "failures", "errors", "skipped", "time")},
                      name="paless-deploy")
    suite = ET.SubElement(root, "testsuite", suite_attrs)
    suite.extend(cases)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _testcase(classname: str, name: str, seconds: float) -> ET.Element:
    return ET.Element("testcase", classname=_xml(classname), name=_xml(name),
                      time=f"{seconds:.3f}")


def _fail(case: ET.Element, errors: Sequence[ErrorReport], counts: dict[str, int]) -> None:
    first = errors[0]
    failure = ET.SubElement(case, "failure", message=_xml(one_line(first.message)),
                            type=_xml(first.code))
    failure.text = _xml("\n\n".join(error_text(e) for e in errors))
    counts["failures"] += 1


def _skip(case: ET.Element, why: str, counts: dict[str, int]) -> None:
    ET.SubElement(case, "skipped", message=_xml(why))
    counts["skipped"] += 1


def _not_ready_text(obj: ObjectReport) -> str:
    return ("not ready when the deploy stopped at another failure"
            + (f": {obj.reason}" if obj.reason else ""))


def _concerns(error: ErrorReport, ref: str) -> bool:
    """Whether an error is about this object (found under it, or naming it)."""
    return error.workload == ref or ref in (part.strip() for part in error.resource.split(","))


def error_text(error: ErrorReport) -> str:
    """An error as plain text: title, cause, fix, evidence (with the log tail), commands."""
    lines = [_title(error) + (f" ({error.reason})" if error.reason else ""),
             f"cause: {error.message}"]
    if error.hint:
        lines.append(f"fix: {error.hint}")
    if error.evidence:
        lines += ["evidence:", *(f"  {line}" for line in error.evidence[-MAX_EVIDENCE_LINES:])]
    if error.commands:
        lines += ["look further:", *(f"  {c}" for c in error.commands)]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# helpers


_XML_INVALID = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    """Text XML 1.0 can carry (terminal escapes in logs cannot be)."""
    return _XML_INVALID.sub("?", text)


def one_line(text: str) -> str:
    """Text on one line, trimmed."""
    return " ".join(text.split())


def _title(error: ErrorReport) -> str:
    return " ".join(part for part in (error.code, error.resource) if part)


def _cause_and_fix(error: ErrorReport) -> str:
    return f"{error.message.rstrip()} {error.hint}".strip()


def _images(result: Result) -> list[JsonDict]:
    return [i for i in result.to_dict()["images"] if isinstance(i, dict)]


def _image_output(image: JsonDict) -> JsonDict:
    return {key: image.get(key) for key in ("app", "ref", "tag", "digest", "action")}


def _not_applied(result: Result) -> list[JsonDict]:
    items = result.extra.get("not_applied") or []
    return [i for i in items if isinstance(i, dict) and {"phase", "kind", "name"} <= set(i)]


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def _md(text: str) -> str:
    """Text safe inside Markdown paragraphs and table cells (no HTML, no markup)."""
    escaped = _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))
    return escaped.replace("\r", "").replace("\n", "<br>")


def _link(url: str) -> str:
    """A Markdown link to `url` (its text escaped; the target cannot end the link early)."""
    target = "".join(c if c.isascii() and c.isprintable() and c not in " ()<>|" else
                     "".join(f"%{b:02X}" for b in c.encode()) for c in url)
    return f"[{_md(url)}]({target})"


def _code(text: str) -> str:
    """An inline code span that no backtick in `text` can close (table-safe)."""
    if not text:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{one_line(text)}{pad}{ticks}".replace("|", "\\|")


def _fence(text: str, info: str) -> str:
    """A fenced code block that no line of `text` can close."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"
