"""The README's CI examples: valid YAML, and every paless-deploy command line in them is
one the CLI accepts (options and commands as they are today)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from paless_deploy import cli

README = Path(__file__).resolve().parents[2] / "README.md"


def ci_section() -> str:
    text = README.read_text()
    start = text.index("## CI and per-branch environments")
    return text[start:text.index("\n## ", start + 1)]


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", ci_section(), re.DOTALL)


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
    assert "steps.deploy.outputs.url" in ci_section() and "$DEPLOY_URL" in ci_section()


@pytest.mark.parametrize("line", command_lines())
def test_every_command_line_parses(line: str, capsys: pytest.CaptureFixture[str]) -> None:
    line = re.sub(r"\$\{\{[^}]*\}\}", "x1", line).split(" > ", 1)[0]
    args = shlex.split(line)[1:]
    code = cli.main([*args, "--help"])
    out, err = capsys.readouterr()
    assert code == 0 and "Usage:" in out, (line, err)
