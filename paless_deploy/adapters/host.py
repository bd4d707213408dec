"""The host this process runs on: the clock in UTC, and who and where the process is.

The core receives these as values (`now`, `process`); one definition each here.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import platform


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
