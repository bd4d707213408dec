"""scripts/sandbox: its arguments, its exit codes, and the shim that starts the package from
any directory on the system's python3."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from paless_sandbox import cli
from paless_sandbox.messages import SandboxError

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_up_defaults_to_four_simulated_nodes() -> None:
    command = cli.parse(["up"])
    assert command.name == "up"
    assert command.nodes == ("sandbox-node-1", "sandbox-node-2", "sandbox-node-3",
                             "sandbox-node-4")


def test_up_real_stack_is_asked_for() -> None:
    assert cli.parse(["up", "--real-stack"]).real_stack
    assert not cli.parse(["up"]).real_stack


def test_up_nodes_names_that_many_and_never_fewer_than_one() -> None:
    assert cli.parse(["up", "--nodes", "7"]).nodes[-1] == "sandbox-node-7"
    assert len(cli.parse(["up", "--nodes", "7"]).nodes) == 7
    assert cli.parse(["up", "--nodes", "0"]).nodes == ("sandbox-node-1",)


def test_restart_takes_a_known_component_and_a_down_time() -> None:
    command = cli.parse(["restart", "etcd", "--down", "2.5"])
    assert (command.name, command.component, command.down_s) == ("restart", "etcd", 2.5)
    assert cli.parse(["restart", "dockerd"]).down_s == 0.0


@pytest.mark.parametrize("argv", [[], ["bogus"], ["restart", "kubelet"], ["up", "--nodes", "x"],
                                  ["status", "extra"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.parse(argv)
    assert exited.value.code == 2
    assert "usage: scripts/sandbox" in capsys.readouterr().err


def test_a_sandbox_error_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    def fail() -> None:
        raise SandboxError("kwok did not start; see its log")

    monkeypatch.setattr(cli, "cmd_env", fail)
    assert cli.main(["env"]) == 1
    err = capsys.readouterr().err
    assert err == "[sandbox] FAILED: kwok did not start; see its log\n"


def test_an_interrupt_is_exit_130(monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted() -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_status", interrupted)
    assert cli.main(["status"]) == 130
    assert "[sandbox] interrupted" in capsys.readouterr().err


def test_status_passes_its_exit_code_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "cmd_status", lambda: 1)
    assert cli.main(["status"]) == 1


def sandbox_env(tmp_path: Path) -> dict[str, str]:
    """A bare environment: the system's PATH, no virtual environment, a throw-away state."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
            "PALESS_SANDBOX_STATE": str(tmp_path / "state"),
            "PALESS_SANDBOX_CACHE": str(tmp_path / "cache")}


def test_the_shim_runs_from_any_directory_on_the_system_python(tmp_path: Path) -> None:
    env = sandbox_env(tmp_path)
    res = subprocess.run([str(SCRIPTS / "sandbox"), "env"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=False, timeout=60)
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(tmp_path)) == []  # `env` only prints: it creates nothing
    assert res.stdout.splitlines()[0] == f"export KUBECONFIG={tmp_path / 'state' / 'kubeconfig'}"
    assert res.stdout.splitlines()[1].startswith(f"export PATH={tmp_path / 'cache'}/k8s-")
    assert res.stdout.splitlines()[1].endswith("/bin:$PATH")


def test_the_shim_and_python_m_print_the_same(tmp_path: Path) -> None:
    env = sandbox_env(tmp_path)
    shim = subprocess.run([str(SCRIPTS / "sandbox"), "env"], env=env, capture_output=True,
                          text=True, check=True, timeout=60)
    module = subprocess.run([sys.executable, "-m", "paless_sandbox", "env"], cwd=SCRIPTS,
                            env={**env, "PYTHONPATH": str(SCRIPTS)}, capture_output=True,
                            text=True, check=True, timeout=60)
    assert shim.stdout == module.stdout


def test_the_shim_passes_usage_errors_through(tmp_path: Path) -> None:
    res = subprocess.run([str(SCRIPTS / "sandbox"), "bogus"], env=sandbox_env(tmp_path),
                         capture_output=True, text=True, check=False, timeout=60)
    assert res.returncode == 2
    assert "invalid choice: 'bogus'" in res.stderr
    assert "Traceback" not in res.stderr
    assert os.listdir(tmp_path) == []


def test_a_second_up_waits_for_the_first_and_says_whom_it_waits_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "STATE", tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         ("import fcntl, sys, time\n"
         f"f = open({str(tmp_path / 'sandbox.lock')!r}, 'a+')\n"
         "fcntl.flock(f, fcntl.LOCK_EX); f.write('pid 4242, up'); f.flush()\n"
         "print('held', flush=True); sys.stdin.read()\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        entered: list[str] = []

        def release_soon() -> None:
            assert holder.stdin is not None
            holder.stdin.close()  # the holder exits: its lock goes with it

        threading.Timer(0.5, release_soon).start()
        with cli.one_at_a_time("up"):
            entered.append("up")
        assert entered == ["up"]
        assert "waiting for another scripts/sandbox (pid 4242, up)" in capsys.readouterr().err
        assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()


def test_status_and_env_take_no_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "STATE", tmp_path / "absent")
    with cli.one_at_a_time("status"):
        pass
    assert not (tmp_path / "absent").exists()
