"""The CI examples of docs/ci.md: valid YAML, and every paless-deploy command line in them
is one the CLI accepts (options and commands as they are today)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from paless_deploy import cli

CI_DOC = Path(__file__).resolve().parents[2] / "docs" / "ci.md"


def ci_doc() -> str:
    """The whole CI document (it was the README's "CI and per-branch environments")."""
    return CI_DOC.read_text()


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", ci_doc(), re.DOTALL)


def command_lines() -> list[str]:
    lines: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("run", "script") and isinstance(value, (str, list)):
                    for item in value if isinstance(value, list) else [value]:
                        lines.extend(part.strip() for part in str(item).split("&&"))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for block in yaml_blocks():
        for doc in yaml.safe_load_all(block):
            walk(doc)
    return [line for line in lines if line.startswith("paless-deploy ")]


def test_the_examples_are_yaml_and_use_the_ci_features() -> None:
    assert len(yaml_blocks()) == 2
    lines = command_lines()
    text = " ".join(lines)
    for feature in ("--images-from", "--junit", "--from-report", "push", "gc"):
        assert feature in text, feature
    assert "steps.deploy.outputs.url" in ci_doc() and "$DEPLOY_URL" in ci_doc()


@pytest.mark.parametrize("line", command_lines())
def test_every_command_line_parses(line: str, capsys: pytest.CaptureFixture[str]) -> None:
    line = re.sub(r"\$\{\{[^}]*\}\}", "x1", line).split(" > ", 1)[0]
    args = shlex.split(line)[1:]
    code = cli.main([*args, "--help"])
    out, err = capsys.readouterr()
    assert code == 0 and "Usage:" in out, (line, err)
