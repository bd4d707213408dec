"""kubectl inside the Kubernetes door: `kubectl port-forward`, the one thing this tool has
kubectl do against a cluster (everything else goes over the door's own REST client).

A port-forward upgrades its connection to a streaming protocol the door's urllib3 client
does not speak; kubectl does, with the same kubeconfig the tool uses. Each forward runs
one `kubectl port-forward pod/POD LOCAL:REMOTE` on 127.0.0.1 until stopped.
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
