"""kubectl inside the Kubernetes door: `kubectl port-forward` and `kubectl exec`, the two
things this tool has kubectl do against a cluster (everything else goes over the door's
own REST client).

Both upgrade their connection to a streaming protocol the door's urllib3 client does not
speak (WebSocket, or SPDY on older servers); kubectl does, with the same kubeconfig the
tool uses, and it knows every authentication a kubeconfig can name. Each forward runs one
`kubectl port-forward pod/POD LOCAL:REMOTE` on 127.0.0.1 until stopped; each exec streams
a command's stdin and stdout without holding them in memory (a database dump; dev's sync:
a tar stream into a container, then its reload).
"""

from __future__ import annotations

import io
import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, BinaryIO, Protocol

LISTEN_TIMEOUT_S = 10.0
SAID_KEPT = 5  # kubectl's last lines kept (why it ended, when it does)


class KubectlPortForward:
    """One `kubectl port-forward` process: started, listening, draining its output, ended.

    The kubeconfig (a list of files, merged as kubectl merges KUBECONFIG) and context
    are the ones the tool itself uses (`Kube.kubeconfig`, `Kube.context`).
    """

    def __init__(self, kubeconfig: str, context: str | None, namespace: str, pod: str,
                 local_port: int, remote_port: int) -> None:
        command = ["kubectl", "port-forward", "--address", "127.0.0.1", "-n", namespace,
                   f"pod/{pod}", f"{local_port}:{remote_port}"]
        if context:
            command[2:2] = ["--context", context]
        env = {**os.environ, "KUBECONFIG": kubeconfig}
        self.said: list[str] = []  # kubectl's last lines once it listens
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=env,
            start_new_session=True)  # Ctrl-C is ours to handle, not kubectl's

    def alive(self) -> bool:
        """True while kubectl runs."""
        return self._process.poll() is None

    def wait_listening(self, timeout_s: float = LISTEN_TIMEOUT_S) -> str:
        """"" once kubectl says it forwards (its output is drained from then on, so its pipe
        never fills), else what it said before exiting or `timeout_s` passing."""
        process = self._process
        assert process.stdout is not None
        deadline = time.monotonic() + timeout_s
        said: list[str] = []
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:
                if not selector.select(left):
                    break
                line = process.stdout.readline()
                if not line:
                    break
                if line.startswith("Forwarding from"):
                    self.said = []
                    threading.Thread(target=self._drain, daemon=True).start()
                    return ""
                said.append(line.strip())
        return " ".join(said)[-300:] or f"kubectl said nothing (exit code {process.poll()})"

    def _drain(self) -> None:
        """Read kubectl's further output (a line per connection); keep the last lines."""
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.said.append(line.strip())
            del self.said[:-SAID_KEPT]

    def stop(self) -> None:
        """End kubectl (the local port is free afterwards)."""
        process = self._process
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Writer(Protocol):
    """Where a command's output goes: a file, or anything that takes bytes."""

    def write(self, data: bytes, /) -> object: ...


EXEC_STDERR_KEPT = 8192  # bytes of kubectl's (and the command's) stderr kept for messages
EXEC_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExecResult:
    """How a command run in a container ended: its exit code (kubectl's own when it could
    not run it), what it printed on stdout (when not streamed to a sink) and the end of
    what it (or kubectl) said on stderr."""

    exit_code: int
    stdout: bytes
    stderr: str

    @property
    def reached(self) -> bool:
        """False when kubectl never ran the command (no such pod or container, refused)."""
        return self.exit_code == 0 or "command terminated with exit code" in self.stderr


def kubectl_exec(kubeconfig: str, context: str | None, namespace: str, pod: str,
                 container: str, command: Sequence[str], *, stdin: BinaryIO | None = None,
                 sink: Writer | None = None,
                 on_bytes: Callable[[int], None] | None = None,
                 timeout_s: float | None = None) -> ExecResult:
    """`kubectl exec` of `command` in one container: `stdin` streamed to it, its stdout
    streamed to `sink` (or kept, when there is none), `on_bytes` told of every chunk that
    moved (for a progress bar). An OSError of the sink (a full disk) ends the command and
    is raised; FileNotFoundError when there is no kubectl. Past `timeout_s` the command is
    killed, and its stderr says so."""
    args = ["kubectl", "exec", *(["-i"] if stdin is not None else []), "-n", namespace,
            pod, "-c", container, "--", *command]
    if context:
        args[1:1] = ["--context", context]
    process = subprocess.Popen(
        args, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ,
                                                            "KUBECONFIG": kubeconfig},
        start_new_session=True)
    said = bytearray()
    threads = [threading.Thread(target=_keep_tail, args=(process.stderr, said), daemon=True)]
    if stdin is not None:
        threads.append(threading.Thread(target=_feed, args=(stdin, process.stdin, on_bytes),
                                        daemon=True))
    for thread in threads:
        thread.start()
    timer = threading.Timer(timeout_s, process.kill) if timeout_s is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    kept = io.BytesIO()
    try:
        _drain(process.stdout, sink if sink is not None else kept, on_bytes)
    except BaseException:
        process.kill()
        process.wait()
        raise
    code = process.wait()
    timed_out = timer is not None and not timer.is_alive() and code < 0
    if timer is not None:
        timer.cancel()
    for thread in threads:
        thread.join(timeout=5)
    stderr = bytes(said).decode("utf-8", errors="replace")
    if timed_out:
        stderr += f"\nkubectl exec ran past {timeout_s:.0f}s and was stopped"
    return ExecResult(code, kept.getvalue(), stderr)


def _drain(source: IO[bytes] | None, sink: Writer,
           on_bytes: Callable[[int], None] | None) -> None:
    """Copy the command's stdout into `sink` as it arrives (read1: whatever is there)."""
    assert isinstance(source, io.BufferedReader)
    while chunk := source.read1(EXEC_CHUNK):
        sink.write(chunk)
        if on_bytes is not None:
            on_bytes(len(chunk))


def _feed(source: BinaryIO, target: IO[bytes] | None,
          on_bytes: Callable[[int], None] | None) -> None:
    """Copy `source` into the command's stdin, then close it (end of input)."""
    assert target is not None
    try:
        while chunk := source.read(EXEC_CHUNK):
            target.write(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    except (BrokenPipeError, ValueError, OSError):
        pass  # the command ended early: its exit code and stderr say why
    finally:
        try:
            target.close()
        except OSError:
            pass


def _keep_tail(source: IO[bytes] | None, kept: bytearray) -> None:
    assert source is not None
    for line in source:
        kept.extend(line)
        del kept[:-EXEC_STDERR_KEPT]
