"""`scripts/sandbox`'s arguments, and the one place a SandboxError or an interrupt becomes an
exit code (1, 130) with a one-line message and no traceback."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass

from paless_sandbox.commands import cmd_down, cmd_env, cmd_restart, cmd_up
from paless_sandbox.kwok import DEFAULT_NODES, node_names
from paless_sandbox.layout import STATE
from paless_sandbox.messages import SandboxError, say
from paless_sandbox.status import cmd_status

RESTARTABLE = ("apiserver", "etcd", "registry", "dockerd")


@dataclass(frozen=True)
class Command:
    """What was asked: the command and its options."""

    name: str  # up, down, status, env, restart
    nodes: tuple[str, ...] = node_names(DEFAULT_NODES)  # up: the simulated nodes
    real_stack: bool = False  # up: then `realstack ensure` (images, mirrors, CoreDNS)
    component: str = ""  # restart: one of RESTARTABLE
    down_s: float = 0.0  # restart: how long it stays stopped


def parser() -> argparse.ArgumentParser:
    """The command line: up [--nodes N] [--real-stack] | down | status | env |
    restart COMPONENT [--down S]."""
    top = argparse.ArgumentParser(prog="scripts/sandbox")
    commands = top.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start what is not running (idempotent)")
    up.add_argument("--nodes", type=int, default=DEFAULT_NODES,
                    help=f"simulated nodes, at least (default {DEFAULT_NODES}; load tests add "
                    "more)")
    up.add_argument("--real-stack", action="store_true",
                    help="then the real stack: its images in the registry (built when "
                    "missing), the real node's mirrors, CoreDNS at 10.96.0.10")
    for name in ("down", "status", "env"):
        commands.add_parser(name)
    restart = commands.add_parser("restart", help="stop one component, start it again, wait "
                                  "until healthy (the others are left alone)")
    restart.add_argument("component", choices=RESTARTABLE)
    restart.add_argument("--down", type=float, default=0.0, metavar="SECONDS",
                         help="keep it stopped this long first")
    return top


def parse(argv: list[str]) -> Command:
    """The command `argv` asks for; a usage error exits 2 (argparse)."""
    args = parser().parse_args(argv)
    if args.command == "up":
        return Command("up", nodes=node_names(args.nodes), real_stack=args.real_stack)
    if args.command == "restart":
        return Command("restart", component=args.component, down_s=args.down)
    return Command(args.command)


CHANGING = ("up", "down", "restart")  # commands that start or stop processes


@contextlib.contextmanager
def one_at_a_time(name: str) -> Iterator[None]:
    """Hold the sandbox's lock while `name` starts or stops processes: two `up`s at once (two
    engineers, or a test beside a demo) raced on the same builds and pid files. A second one
    says whom it waits for, then waits; the lock goes with the process, even on `kill -9`."""
    if name not in CHANGING:
        yield
        return
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / "sandbox.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            say(f"waiting for another scripts/sandbox ({lock.read().strip() or 'unknown'}) "
                "to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}, {name}")
        lock.flush()
        yield


def run(command: Command) -> int:
    """Run one command; its exit code."""
    with one_at_a_time(command.name):
        return _run(command)


def _run(command: Command) -> int:
    """Run one command, the lock held when it changes anything."""
    if command.name == "up":
        cmd_up(command.nodes, real_stack=command.real_stack)
    elif command.name == "down":
        cmd_down()
    elif command.name == "status":
        return cmd_status()
    elif command.name == "restart":
        cmd_restart(command.component, command.down_s)
    else:
        cmd_env()
    return 0


def main(argv: list[str]) -> int:
    """`scripts/sandbox ARGS`: its exit code."""
    command = parse(argv)
    try:
        return run(command)
    except SandboxError as exc:
        say(f"FAILED: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
