"""Explanation: one troubleshooting text per Finding, boxed in a Panel on a terminal.

Deterministic and short: resource, cause, evidence, fix, and the commands to look further.
The body is built once; a terminal gets it in a Panel, logs get it indented under a title.
"""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from paless_deploy.core.diagnosis.findings import Finding

MAX_EVIDENCE = 12  # lines; the panel stays readable, the commands show the rest


def _title(finding: Finding) -> str:
    where = f" {finding.resource}" if finding.resource else ""
    return f"{finding.code}{where}" + (f" ({finding.reason})" if finding.reason else "")


def finding_body(finding: Finding) -> Text:
    """Cause, evidence, fix and commands, one labelled section each."""
    body = Text()
    body.append("cause: ", style="bold").append(finding.message)
    evidence = list(finding.evidence[:MAX_EVIDENCE])
    if evidence:
        body.append("\nevidence:", style="bold")
        body.append("".join(f"\n  {line}" for line in evidence), style="dim")
    body.append("\nfix: ", style="bold").append(finding.hint)
    if finding.commands:
        body.append("\nlook further:", style="bold")
        body.append("".join(f"\n  {command}" for command in finding.commands), style="cyan")
    return body


def finding_text(finding: Finding) -> str:
    """The finding as plain text for logs and non-terminals (no colour, no box)."""
    title = _title(finding) + ("" if finding.fatal else " [tolerated until the deadline]")
    return "\n".join([title, *(f"  {line}" for line in finding_body(finding).plain.split("\n"))])


def render_finding(finding: Finding, console: Console) -> None:
    """Print the finding as a rich Panel on `console`."""
    title = _title(finding) + ("" if finding.fatal else " - tolerated until the deadline")
    console.print(Panel(finding_body(finding), title=title, title_align="left",
                        border_style="red" if finding.fatal else "yellow"))
