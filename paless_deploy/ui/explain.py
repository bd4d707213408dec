"""Explanation: one troubleshooting panel per Finding, or the same as plain text.

Deterministic and short: resource, cause, evidence, fix, and the commands to look further.
"""

from __future__ import annotations

from typing import Any

from paless_deploy.core.diagnosis.findings import Finding

MAX_EVIDENCE = 12  # lines; the panel stays readable, the commands show the rest


def _title(finding: Finding) -> str:
    where = f" {finding.resource}" if finding.resource else ""
    return f"{finding.code}{where}" + (f" ({finding.reason})" if finding.reason else "")


def finding_text(finding: Finding) -> str:
    """The finding as plain text for logs and non-terminals (no colour, no box)."""
    lines = [_title(finding) + ("" if finding.fatal else " [tolerated until the deadline]"),
             f"  cause: {finding.message}"]
    evidence = list(finding.evidence[:MAX_EVIDENCE])
    if evidence:
        lines.append("  evidence:")
        lines += [f"    {line}" for line in evidence]
    lines.append(f"  fix: {finding.hint}")
    if finding.commands:
        lines.append("  look further:")
        lines += [f"    {command}" for command in finding.commands]
    return "\n".join(lines)


def render_finding(finding: Finding, console: Any) -> None:
    """Print the finding as a rich Panel on `console` (a rich Console)."""
    from rich.panel import Panel
    from rich.text import Text

    body = Text()
    body.append(finding.message)
    evidence = list(finding.evidence[:MAX_EVIDENCE])
    if evidence:
        body.append("\n\nEvidence\n", style="bold")
        body.append("\n".join(f"  {line}" for line in evidence), style="dim")
    body.append("\n\nFix: ", style="bold")
    body.append(finding.hint)
    if finding.commands:
        body.append("\n\nLook further\n", style="bold")
        body.append("\n".join(f"  {command}" for command in finding.commands), style="cyan")
    title = _title(finding)
    if not finding.fatal:
        title += " - tolerated until the deadline"
    console.print(Panel(body, title=title, title_align="left",
                        border_style="red" if finding.fatal else "yellow"))
