"""Shared helpers for the integration-test backends (not a test module)."""

from __future__ import annotations

import os
import sys


def record_pid(name: str) -> None:
    """Write `<name>-<pid>.pid` into $MCPD_TEST_PIDDIR so tests can check nothing survives."""
    piddir = os.environ.get("MCPD_TEST_PIDDIR")
    if not piddir:
        return
    path = os.path.join(piddir, f"{name}-{os.getpid()}.pid")
    with open(path, "w") as f:
        f.write(f"{os.getpid()}\n{os.path.abspath(sys.argv[0])}\n")


def say(line: str) -> None:
    """One line on stderr, flushed at once (mcpd relays backend stderr with a prefix)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
