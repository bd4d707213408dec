"""scripts/deploy-to-k3s.sh: arguments and exit codes pass through; no arguments is `all`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SHIM = Path(__file__).resolve().parents[2] / "scripts" / "deploy-to-k3s.sh"
FAKE = """#!/usr/bin/env bash
printf '%s\\n' "$@"
exit "${FAKE_EXIT:-0}"
"""


def shim(*args: str, path: str | None = None, cwd: Path | None = None,
         env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, **(env or {})}
    if path is not None:
        environ["PATH"] = path
    return subprocess.run([str(SHIM), *args], capture_output=True, text=True, env=environ, check=False,
                          cwd=cwd, timeout=60)


def fake_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "paless-deploy"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    return bin_dir


def test_arguments_pass_through_verbatim(tmp_path):
    path = f"{fake_bin(tmp_path)}:{os.environ['PATH']}"
    res = shim("-n", "my ns", "deploy", "web", "--", "*", path=path)
    assert res.returncode == 0
    assert res.stdout.splitlines() == ["-n", "my ns", "deploy", "web", "--", "*"]


def test_no_arguments_runs_all(tmp_path):
    res = shim(path=f"{fake_bin(tmp_path)}:{os.environ['PATH']}")
    assert res.stdout.splitlines() == ["all"]


def test_exit_codes_pass_through(tmp_path):
    path = f"{fake_bin(tmp_path)}:{os.environ['PATH']}"
    for code in (1, 2, 3, 4, 5, 130):
        assert shim("all", path=path, env={"FAKE_EXIT": str(code)}).returncode == code


def test_real_tool_help_bad_option_and_default_all(tmp_path):
    assert shim("help", cwd=tmp_path).returncode == 0
    bad = shim("--no-such-option", cwd=tmp_path)
    assert bad.returncode == 2 and "no-such-option" in bad.stderr
    default = shim(cwd=tmp_path)  # `all` in a directory without overlays
    assert default.returncode == 2
    assert "overlay" in default.stderr.lower()


def test_falls_back_to_python_module_when_not_installed(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    res = shim("--version", path=f"{bin_dir}:/usr/bin:/bin", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "paless-deploy" in res.stdout
