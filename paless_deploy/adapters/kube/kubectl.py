"""kubectl inside the Kubernetes door: `kubectl port-forward` and `kubectl exec`, the two
things this tool has kubectl do against a cluster (everything else goes over the door's own
REST client).

Both upgrade their connection to a streaming protocol the door's urllib3 client does not
speak (WebSocket, or SPDY on older servers); kubectl does, with the same kubeconfig the
tool uses, and it knows every authentication a kubeconfig can name. Each forward runs one
`kubectl port-forward pod/POD LOCAL:REMOTE` on 127.0.0.1 until stopped; each exec one
`kubectl exec -i` (dev's sync: a tar stream into a container, then its reload).
"""

from __future__ import annotations

import os
import selectors
import subprocess
import threading
import time

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


EXEC_TIMEOUT_S = 60.0


def kubectl_exec(kubeconfig: str, context: str | None, namespace: str, pod: str,
                 container: str, argv: list[str], stdin: bytes = b"",
                 timeout_s: float = EXEC_TIMEOUT_S) -> tuple[int, str]:
    """`kubectl exec -i` of `argv` in one container, `stdin` fed to it: (exit code, what it
    said). kubectl speaks the streaming protocol the server offers (WebSocket or SPDY) with
    the tool's kubeconfig and context; an exit code of 127 or 126 means the command is
    missing in the container. A kubectl that cannot run, or that runs past `timeout_s`, is
    (-1, why)."""
    command = ["kubectl", "exec", "-i", "-n", namespace, pod, "-c", container, "--", *argv]
    if context:
        command[1:1] = ["--context", context]
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, env=env,
                              timeout=timeout_s, check=False,
                              start_new_session=True)  # Ctrl-C is ours, not kubectl's
    except FileNotFoundError:
        return -1, "kubectl is not on PATH"
    except subprocess.TimeoutExpired:
        return -1, f"kubectl exec ran past {timeout_s:.0f}s"
    said = (done.stdout + done.stderr).decode(errors="replace").strip()
    return done.returncode, said[-600:]
