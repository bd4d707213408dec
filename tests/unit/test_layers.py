"""The layers' rules that import-linter cannot see: what a module calls, not what it imports.

pyproject.toml's contracts say who may import what (core imports no `os`, `sys`, `time`,
...; only adapters.kube imports kubernetes). A core module could still read a file through
a `Path` it was given, or ask `datetime` for the clock, and a stage could print, without
importing anything forbidden. These tests read every module of the package (today's and
tomorrow's) and fail on such a call:
- core: no file, clock, terminal or in-process I/O call;
- outside ui: no print() and no sys.stdout / sys.stderr (output goes through ui), but for
  the programs the tool starts itself, whose stdout is a pipe their parent reads (the
  auth-provider reader);
- outside the HTTP doors (adapters.registry, adapters.objectstore): no HTTP client of the
  standard library (urllib.request, http.client) and no requests / httpx (the Kubernetes
  door has urllib3, held by a contract); adapters.layerregistry, the loopback registry a
  k3s import goes through, may serve HTTP (http.server), and nothing else of it;
- outside adapters: no process started through os (os.system, os.popen, os.exec*, ...);
- outside stages.nodes: no listing of Nodes (the others take its NodeList).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paless_deploy

PACKAGE = Path(paless_deploy.__file__).resolve().parent
CORE = PACKAGE / "core"
UI = "paless_deploy.ui"
ADAPTERS = "paless_deploy.adapters"
# run by the tool as processes of their own: their stdout is their answer to the parent
CHILD_PROGRAMS = ("paless_deploy.adapters.kube.authprovider",)
# The doors that speak HTTP: the registry's API, and S3 object stores (MinIO).
HTTP_DOORS = ("paless_deploy.adapters.registry", "paless_deploy.adapters.objectstore")
LAYER_REGISTRY_DOOR = "paless_deploy.adapters.layerregistry"  # serves HTTP, speaks none
HTTP_SERVER = "http.server"
NODE_READER = "paless_deploy.stages.nodes"

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
# The terminal: only ui writes to it.
STD_STREAMS = frozenset({"stdout", "stderr", "__stdout__", "__stderr__"})
# HTTP clients: only the HTTP doors speak HTTP (besides the Kubernetes door's urllib3).
HTTP_CLIENTS = ("urllib.request", "urllib.error", "http", "requests", "httpx", "aiohttp")
# Processes started without the subprocess module (which a contract keeps in adapters).
OS_PROCESS_CALLS = ("system", "popen", "fork", "forkpty", "spawn", "exec", "posix_spawn")


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


def _dotted(module: Path) -> str:
    parts = module.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _inside(dotted: str, package: str) -> bool:
    return dotted == package or dotted.startswith(package + ".")


def _sources(root: Path = PACKAGE) -> Iterator[tuple[str, str, str]]:
    """(dotted name, path as shown, source) of every module under `root`."""
    for module in _modules(root):
        yield (_dotted(module), str(module.relative_to(PACKAGE.parent)),
               module.read_text(encoding="utf-8"))


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


def terminal_writes(source: str, path: str) -> list[Violation]:
    """print() calls and uses of sys.stdout / sys.stderr."""
    found: list[Violation] = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "print":
            found.append(Violation(path, node.lineno, "print()"))
        elif isinstance(node, ast.Attribute) and node.attr in STD_STREAMS \
                and isinstance(node.value, ast.Name) and node.value.id == "sys":
            found.append(Violation(path, node.lineno, f"sys.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module == "sys" and any(
                alias.name in STD_STREAMS for alias in node.names):
            found.append(Violation(path, node.lineno, "from sys import a std stream"))
    return found


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return []


def http_client_imports(source: str, path: str) -> list[Violation]:
    """Imports of an HTTP client other than the Kubernetes door's urllib3."""
    found: list[Violation] = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        for name in _imported(node):
            if any(_inside(name, client) for client in HTTP_CLIENTS):
                found.append(Violation(path, node.lineno, f"import {name}"))
                break
    return found


def _serves(violation: Violation) -> bool:
    """An import of the standard library's HTTP server (no client)."""
    name = violation.what.removeprefix("import ")
    return _inside(name, HTTP_SERVER)


def os_process_calls(source: str, path: str) -> list[Violation]:
    """Processes started through os (os.system, os.popen, os.exec*, os.spawn*, fork)."""
    found: list[Violation] = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "os" \
                and node.func.attr.startswith(OS_PROCESS_CALLS):
            found.append(Violation(path, node.lineno, f"os.{node.func.attr}()"))
    return found


def node_reads(source: str, path: str) -> list[Violation]:
    """Lookups of the Node kind (`by_kind("Node")`, `kind_of("v1", "Node")`): a listing."""
    found: list[Violation] = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Call) and any(
                isinstance(arg, ast.Constant) and arg.value == "Node" for arg in node.args):
            found.append(Violation(path, node.lineno, "the Node kind"))
    return found


def core_violations(root: Path = CORE) -> list[Violation]:
    """Every forbidden call in the modules under `root`."""
    found: list[Violation] = []
    for _, shown, source in _sources(root):
        found += io_calls(source, shown)
    return found


def _report(what: str, violations: list[Violation]) -> str:
    return f"{what}:\n" + "\n".join(map(str, violations))


def test_core_does_no_io() -> None:
    violations = core_violations()
    assert not violations, _report("core does I/O (pass the values in instead)", violations)


def test_only_ui_writes_to_the_terminal() -> None:
    violations = [v for dotted, shown, source in _sources()
                  if not _inside(dotted, UI) and dotted not in CHILD_PROGRAMS
                  for v in terminal_writes(source, shown)]
    assert not violations, _report("output outside ui (say it through paless_deploy.ui)",
                                   violations)


def test_only_the_http_doors_speak_http() -> None:
    violations = [v for dotted, shown, source in _sources()
                  if not any(_inside(dotted, door) for door in HTTP_DOORS)
                  for v in http_client_imports(source, shown)
                  if not (_inside(dotted, LAYER_REGISTRY_DOOR) and _serves(v))]
    assert not violations, _report("HTTP outside the registry and object-store doors",
                                   violations)


def test_only_adapters_start_processes() -> None:
    violations = [v for dotted, shown, source in _sources() if not _inside(dotted, ADAPTERS)
                  for v in os_process_calls(source, shown)]
    assert not violations, _report("a process started outside adapters", violations)


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


def test_one_stage_reads_nodes() -> None:
    # core's kind table names the kind; core reads nothing anyway
    violations = [v for dotted, shown, source in _sources()
                  if dotted != NODE_READER and not _inside(dotted, "paless_deploy.core")
                  for v in node_reads(source, shown)]
    assert not violations, _report("Nodes read outside stages.nodes (take its NodeList)",
                                   violations)


def test_the_door_checks_see_what_they_guard() -> None:
    planted = (
        "import sys\nimport urllib.request\nfrom http import client\nimport os\n"
        "from urllib.parse import quote\n"
        "print('x')\n"
        "sys.stderr.write('x')\n"
        "os.system('true')\n"
        "os.execvp('true', ['true'])\n"
        "os.path.join('a', 'b')\n"
    )
    assert [v.line for v in terminal_writes(planted, "p.py")] == [6, 7]
    assert [v.line for v in http_client_imports(planted, "p.py")] == [2, 3]
    assert [v.line for v in os_process_calls(planted, "p.py")] == [8, 9]
    nodes = 'kube.list(by_kind("Node"))\nkube.list(by_kind("Pod"))\n'
    assert [v.line for v in node_reads(nodes, "p.py")] == [1]
    assert _dotted(PACKAGE / "ui" / "__init__.py") == UI
    assert _inside("paless_deploy.adapters.kube.kubectl", "paless_deploy.adapters.kube")
    assert not _inside("paless_deploy.adapters.kubeconfig", "paless_deploy.adapters.kube")

