"""CI outputs of one run: annotations in the job log, and the files the platform reads.

The formats are `core.cireport`'s; this module decides where each goes: workflow commands
on stderr (stdout may carry the JSON report; the runner reads both), GITHUB_OUTPUT and
GITHUB_STEP_SUMMARY appended to (other steps write there too), the dotenv and JUnit files
replaced. Every text passes `Result.scrubbed` first, and writing never fails the run.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from paless_deploy.core.configuration.context import CiPlatform
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.reporting.cireport import (
    DEPLOY_COMMANDS,
    github_annotations,
    github_outputs,
    github_summary,
    gitlab_dotenv,
    junit_xml,
    output_values,
)
from paless_deploy.core.reporting.report import Result

DEFAULT_DOTENV = "deploy.env"  # GitLab: `artifacts: reports: dotenv: deploy.env`


@dataclass(frozen=True)
class CiTargets:
    """Where the CI reports of this run go (None: not written)."""

    platform: CiPlatform = CiPlatform.NONE
    github_output: Path | None = None
    step_summary: Path | None = None
    dotenv: Path | None = None
    junit: Path | None = None


def ci_targets(platform: CiPlatform, environ: Mapping[str, str], *, junit: Path | None = None,
               dotenv: Path | None = None) -> CiTargets:
    """The files of this platform (GitHub names its own in the environment; GitLab's dotenv
    defaults to `deploy.env`), and the ones asked for with --junit and --dotenv."""
    github = platform == CiPlatform.GITHUB
    return CiTargets(
        platform=platform,
        github_output=_env_path(environ, "GITHUB_OUTPUT") if github else None,
        step_summary=_env_path(environ, "GITHUB_STEP_SUMMARY") if github else None,
        dotenv=dotenv or (Path(DEFAULT_DOTENV) if platform == CiPlatform.GITLAB else None),
        junit=junit)


def _env_path(environ: Mapping[str, str], name: str) -> Path | None:
    value = environ.get(name, "").strip()
    return Path(value) if value else None


def check_report_path(path: Path | None, option: str) -> None:
    """Before the run: a report file must be writable where asked (exit 2 otherwise),
    rather than a deploy that worked ending without its report."""
    if path is None:
        return
    parent = Path(path).parent
    if Path(path).is_dir() or not parent.is_dir():
        raise ConfigError(
            f"{option} {path}: " + ("that is a directory." if Path(path).is_dir()
                                    else f"the directory {parent} does not exist."),
            f"Pass a file in an existing directory, e.g. {option} "
            f"{'report.xml' if 'junit' in option else DEFAULT_DOTENV}.",
            code="bad-report-path")


def write_ci_reports(targets: CiTargets, result: Result, secrets: Sequence[str],
                     stream: IO[str] | None = None) -> None:
    """Annotations for any command; outputs, summary, dotenv and JUnit for `all`/`deploy`."""
    if targets.platform == CiPlatform.NONE and targets.junit is None and targets.dotenv is None:
        return
    stream = stream or sys.stderr
    doc = result.scrubbed(secrets)
    if targets.platform == CiPlatform.GITHUB:
        for line in github_annotations(doc):
            stream.write(line + "\n")
        stream.flush()
    if doc.command not in DEPLOY_COMMANDS:
        return
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=doc.duration_s)
    writes = (
        ("GITHUB_OUTPUT", targets.github_output, lambda: github_outputs(output_values(doc)), True),
        ("GITHUB_STEP_SUMMARY", targets.step_summary, lambda: github_summary(doc), True),
        ("--dotenv", targets.dotenv, lambda: gitlab_dotenv(doc), False),
        ("--junit", targets.junit, lambda: junit_xml(
            doc, timestamp=started.strftime("%Y-%m-%dT%H:%M:%S")), False),
    )
    for what, path, text, append in writes:
        if path is None:
            continue
        try:
            _write(path, text(), append=append)
        except OSError as exc:
            stream.write(f"warning: could not write {what} {path}: "
                         f"{exc.strerror or exc}; the deploy's result stands.\n")


def _write(path: Path, text: str, *, append: bool) -> None:
    if append:
        # another step may have left its last line open: ours must start on a line of its own
        with open(path, "a+b") as f:
            f.seek(0, 2)
            if f.tell():
                f.seek(-1, 2)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write(text.encode("utf-8"))
        return
    Path(path).write_text(text, encoding="utf-8")
