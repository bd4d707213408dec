"""The sandbox package keeps its shape: standard library only (it runs before the project is
installed), small modules and functions, an __init__ that is only a docstring."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from paless_sandbox import docker

PACKAGE = Path(__file__).resolve().parents[2] / "scripts" / "paless_sandbox"
MODULES = sorted(PACKAGE.glob("*.py"))


def imported_roots(tree: ast.Module) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_standard_library_only(module: Path) -> None:
    outside = imported_roots(ast.parse(module.read_text())) - set(sys.stdlib_module_names) \
        - {"paless_sandbox", "__future__"}
    assert not outside, f"{module.name} imports {outside}: the sandbox runs before the " \
        "project (and its dependencies) is installed"


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_modules_and_functions_stay_small(module: Path) -> None:
    text = module.read_text()
    assert len(text.splitlines()) <= 800
    lengths = {node.name: (node.end_lineno or node.lineno) - node.lineno + 1
               for node in ast.walk(ast.parse(text)) if isinstance(node, ast.FunctionDef)}
    assert {name: n for name, n in lengths.items() if n > 60} == {}


def test_init_is_only_a_docstring() -> None:
    body = ast.parse((PACKAGE / "__init__.py").read_text()).body
    assert len(body) == 1 and isinstance(body[0], ast.Expr)


def test_the_base_image_stand_in_is_named_after_the_projects_default() -> None:
    from paless_deploy.core.configuration.variables import BY_NAME

    assert docker.default_base_image() == BY_NAME["BASE_IMAGE"].default
