"""The host this process runs on: the clock in UTC, who and where the process is, and
which local ports are free.

The core receives these as values (`now`, `process`); one definition each here.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import platform
import socket

MAX_PORT_TRIES = 100


def utc_now() -> dt.datetime:
    """The local clock in UTC (timezone-aware)."""
    return dt.datetime.now(dt.UTC)


def process_identity() -> str:
    """`user@host pid N`: enough to find this process again (the lock's holder)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{platform.node()} pid {os.getpid()}"


def free_local_port(preferred: int, taken: set[int]) -> int:
    """`preferred` when nothing listens on 127.0.0.1 there, else the next free port (one
    the system picks after MAX_PORT_TRIES); ports in `taken` are skipped."""
    for port in range(preferred, preferred + MAX_PORT_TRIES):
        if port in taken or port > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
