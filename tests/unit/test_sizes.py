"""Sizes a reader can hold in their head: no function of the package over 60 lines, no file
of the repository outside tests/ over 800 (read from every module's syntax tree and every
text file, today's and tomorrow's)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import paless_deploy

PACKAGE = Path(paless_deploy.__file__).resolve().parent
REPO = PACKAGE.parent
MAX_FUNCTION_LINES = 60
MAX_FILE_LINES = 800
# Functions over the limit that another branch is splitting (path, qualified name). The
# test fails as soon as one of them is no longer over it: then remove it here.
BEING_SPLIT: frozenset[tuple[str, str]] = frozenset()  # functions allowed over 60 lines for now
# Not the repository's own text: tools' caches and build output.
SKIPPED_DIRS = frozenset({"tests", "__pycache__", "node_modules", "build", "dist"})


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """(qualified name, lines) of every function or method longer than `limit` lines, from
    its `def` to its last line (a nested function counts in its parent too)."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    lines = (child.end_lineno or child.lineno) - child.lineno + 1
                    if lines > limit:
                        found.append((name, lines))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def _repository_files(root: Path = REPO) -> Iterator[Path]:
    for path in sorted(root.iterdir()):
        if path.is_dir():
            if not (path.name.startswith(".") or path.name in SKIPPED_DIRS
                    or path.name.endswith(".egg-info")):
                yield from _repository_files(path)
        elif path.is_file():
            yield path


def _text_lines(path: Path) -> int | None:
    """The lines of a text file; None for a binary one."""
    try:
        return len(path.read_bytes().decode("utf-8").splitlines())
    except UnicodeDecodeError:
        return None


def test_no_function_in_the_package_is_over_60_lines() -> None:
    long = {(module.relative_to(REPO).as_posix(), name): lines
            for module in sorted(PACKAGE.rglob("*.py"))
            for name, lines in long_functions(module.read_text())}
    unexpected = {key: lines for key, lines in long.items() if key not in BEING_SPLIT}
    assert not unexpected, "functions over 60 lines (split them): " + ", ".join(
        f"{path}:{name} ({lines} lines)" for (path, name), lines in unexpected.items())
    split = BEING_SPLIT - set(long)
    assert not split, f"no longer over 60 lines: drop them from BEING_SPLIT: {sorted(split)}"


def test_no_file_outside_tests_is_over_800_lines() -> None:
    sizes = {path.relative_to(REPO).as_posix(): _text_lines(path)
             for path in _repository_files()}
    assert "paless_deploy/cli.py" in sizes and "README.md" in sizes  # the walk sees the repo
    assert not any(path.startswith("tests/") for path in sizes)
    long = {path: lines for path, lines in sizes.items()
            if lines is not None and lines > MAX_FILE_LINES}
    assert not long, f"files over {MAX_FILE_LINES} lines (split them): {long}"


def _function(name: str, body_lines: int, indent: str = "") -> str:
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(body_lines))
    return f"{indent}def {name}() -> None:\n{body}"


def test_the_size_check_catches_a_planted_function() -> None:
    at_the_limit = _function("fits", MAX_FUNCTION_LINES - 1)  # def line + 59: 60 lines
    planted = _function("planted", MAX_FUNCTION_LINES)  # 61 lines
    method = "class Stage:\n" + _function("run", MAX_FUNCTION_LINES + 5, "    ")
    nested = _function("outer", 2) + _function("inner", MAX_FUNCTION_LINES, "    ")
    assert long_functions(at_the_limit) == []
    assert long_functions(planted) == [("planted", MAX_FUNCTION_LINES + 1)]
    assert long_functions(method) == [("Stage.run", MAX_FUNCTION_LINES + 6)]
    assert [name for name, _ in long_functions(nested)] == ["outer", "outer.inner"]
    # planted among the package's own modules, the package test would name it
    source = (PACKAGE / "core" / "errors.py").read_text() + "\n\n" + planted
    assert long_functions(source) == [("planted", MAX_FUNCTION_LINES + 1)]
