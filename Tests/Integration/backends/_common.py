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


def serve_lines(name: str, make_server) -> None:
    """Runs a raw JSON-lines backend (epsilon, zeta): records the pid, then hands each line of
    stdin to `make_server().on_line` (the server is made inside the asyncio loop, so it may start
    tasks) until end of input."""
    import asyncio

    async def main() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=64 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        server = make_server()
        while line := await reader.readline():
            server.on_line(line)

    record_pid(name)
    say(f"{name} backend ready")
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
