"""The documented refusal table and exit codes are the code's (core.diagnosis.refusals).

docs/failures.md's "Refusals of the API server" lists every row of RULES, in order, with
its exit code and error code; its "Exit codes in detail" lists each code under its exit
code; the README's exit-code table links every exit code a refusal can get to that table,
and names RBAC under exit 4 only.
"""

from __future__ import annotations

from pathlib import Path

from paless_deploy.core.diagnosis.refusals import RULES

ROOT = Path(__file__).resolve().parents[2]
FAILURES = (ROOT / "docs" / "failures.md").read_text()
README = (ROOT / "README.md").read_text()
ANCHOR = "failures.md#refusals-of-the-api-server"


def table_after(text: str, heading: str) -> list[list[str]]:
    """The rows of the first table under `heading` (cells stripped, header and rule out)."""
    section = text.split(heading, 1)[1]
    lines = [line for line in section.split("\n## ", 1)[0].splitlines()
             if line.startswith("| ")]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines[2:]]


def test_the_refusal_table_of_failures_md_is_the_codes():
    rows = table_after(FAILURES, "## Refusals of the API server")
    documented = [(r[0].strip("`"), int(r[2]), r[3].strip("`")) for r in rows]
    assert documented == [(rule.cause, rule.exit_code, rule.code) for rule in RULES]


def test_every_refusal_code_is_listed_under_its_exit_code():
    rows = {r[0]: r for r in table_after(FAILURES, "## Exit codes in detail")}
    for rule in RULES:
        assert f"`{rule.code}`" in rows[str(rule.exit_code)][2], (rule.cause, rule.exit_code)


def test_the_readme_exit_codes_link_the_refusal_table_and_rbac_is_4_only():
    rows = {r[0]: r[1] for r in table_after(README, "## Exit codes")}
    for exit_code in {rule.exit_code for rule in RULES}:
        assert ANCHOR in rows[str(exit_code)], exit_code
    assert "RBAC" in rows["4"]
    assert not any("RBAC" in text for code, text in rows.items() if code != "4")
