"""The layers' rules that import-linter cannot see: what a module calls, not what it imports.

pyproject.toml's contracts say who may import what (core imports no `os`, `sys`, `time`,
...). A core module could still read a file through a `Path` it was given, or ask
`datetime` for the clock, without importing anything forbidden; these tests read every
module of `paless_deploy/core` (today's and tomorrow's) and fail on such a call.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paless_deploy

PACKAGE = Path(paless_deploy.__file__).resolve().parent
CORE = PACKAGE / "core"

# Methods of pathlib.Path (and of open files) that touch the disk or the process's state.
FILE_METHODS = frozenset({
    "read_text", "read_bytes", "write_text", "write_bytes", "open", "exists", "is_file",
    "is_dir", "is_symlink", "is_mount", "is_socket", "is_fifo", "is_block_device",
    "is_char_device", "iterdir", "glob", "rglob", "walk", "stat", "lstat", "resolve",
    "absolute", "samefile", "readlink", "touch", "mkdir", "unlink", "rmdir", "chmod",
    "lchmod", "rename", "symlink_to", "hardlink_to", "expanduser", "owner",
    "cwd", "home",
})
# The clock: datetime.now(), datetime.utcnow(), date.today(); any use of the time module.
CLOCK_METHODS = frozenset({"now", "utcnow", "today"})
CLOCK_MODULES = frozenset({"time"})
# Builtins that read or write the world.
IO_BUILTINS = frozenset({"open", "input", "print", "breakpoint"})
# io is allowed for in-memory text only.
IN_MEMORY_IO = frozenset({"StringIO", "BytesIO"})


@dataclass(frozen=True)
class Violation:
    """One forbidden call: where and what."""

    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _modules(root: Path) -> Iterator[Path]:
    yield from sorted(root.rglob("*.py"))


def io_calls(source: str, path: str) -> list[Violation]:
    """The file, clock, terminal and in-process I/O calls of one module's source."""
    found: list[Violation] = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in IO_BUILTINS:
                found.append(Violation(path, node.lineno, f"{func.id}()"))
            elif isinstance(func, ast.Attribute) and func.attr in FILE_METHODS:
                found.append(Violation(path, node.lineno, f".{func.attr}() (file I/O)"))
            elif isinstance(func, ast.Attribute) and func.attr in CLOCK_METHODS:
                found.append(Violation(path, node.lineno, f".{func.attr}() (the clock)"))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in CLOCK_MODULES:
                found.append(Violation(path, node.lineno, f"{node.value.id}.{node.attr}"))
            elif node.value.id == "io" and node.attr not in IN_MEMORY_IO:
                found.append(Violation(path, node.lineno, f"io.{node.attr}"))
    return sorted(found, key=lambda v: v.line)


def core_violations(root: Path = CORE) -> list[Violation]:
    """Every forbidden call in the modules under `root`."""
    found: list[Violation] = []
    for module in _modules(root):
        found += io_calls(module.read_text(encoding="utf-8"),
                          str(module.relative_to(PACKAGE.parent)))
    return found


def test_core_does_no_io() -> None:
    violations = core_violations()
    assert not violations, "core does I/O (pass the values in instead):\n" + "\n".join(
        map(str, violations))


def test_the_check_sees_every_kind_of_io_call() -> None:
    planted = (
        "import io, time\nimport datetime as dt\nfrom pathlib import Path\n"
        "def f(p: Path) -> None:\n"
        "    p.read_text()\n"
        "    p.exists()\n"
        "    Path.cwd()\n"
        "    open(p)\n"
        "    print('x')\n"
        "    dt.datetime.now(dt.UTC)\n"
        "    time.monotonic()\n"
        "    io.open(p)\n"
        "    io.StringIO('fine')\n"
        "    p.with_suffix('.x').name\n"
    )
    lines = [v.line for v in io_calls(planted, "planted.py")]
    assert sorted(set(lines)) == [5, 6, 7, 8, 9, 10, 11, 12]
