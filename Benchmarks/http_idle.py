#!/usr/bin/env python3
"""Memory of idle HTTP sessions: `mcpd serve` holding N keep-alive connections, each with an
initialized Streamable HTTP session and nothing in flight.

Starts the given mcpd (release build) on a free port with one echo backend, opens N connections
(default 10,000), initializes a session on each (POST initialize, POST notifications/initialized,
the connection kept open), then reads mcpd's resident size (VmRSS and VmHWM from /proc) and
prints it with the size per connection. Target (issue 14): RSS <= 48 MB at 10,000.

    python3 Benchmarks/http_idle.py --mcpd .build/release/mcpd [--connections 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                   "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                              "clientInfo": {"name": "http_idle", "version": "1"}}}).encode()
INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'


def rss_kib(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def post(body: bytes, session: str | None = None) -> bytes:
    head = ("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Accept: application/json, text/event-stream\r\n")
    if session:
        head += f"Mcp-Session-Id: {session}\r\nMCP-Protocol-Version: 2025-11-25\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def read_response(sock: socket.socket) -> tuple[int, dict[str, str]]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        rest += sock.recv(65536)
    return status, headers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mcpd", default=str(HERE.parent / ".build" / "release" / "mcpd"))
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--echo", default=str(HERE / ".build-bench" / "echo_backend"), help="the C echo backend (make bench-tools)")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.connections + 100
    if hard != resource.RLIM_INFINITY and hard < wanted:
        print(f"http_idle: the open-file limit is {hard}; {wanted} are needed (ulimit -n)", file=sys.stderr)
        return 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))

    tmp = Path(tempfile.mkdtemp(prefix="mcpd-http-idle-"))
    config = tmp / "mcpd.yaml"
    config.write_text(f"servers:\n  echo:\n    command: {json.dumps(args.echo)}\n    lazy: false\n"
                      f"http:\n  max_connections: {args.connections + 100}\n")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    env = dict(os.environ, XDG_STATE_HOME=str(tmp / "state"))
    proc = subprocess.Popen([args.mcpd, "serve", "-c", str(config), "--port", str(port), "--log-level", "warning"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(tmp / "stderr", "wb"), env=env)
    sockets: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("mcpd serve did not listen")
                time.sleep(0.05)
        base_rss, _ = rss_kib(proc.pid)
        started = time.monotonic()
        for index in range(args.connections):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(post(INIT))
            status, headers = read_response(sock)
            if status != 200 or "mcp-session-id" not in headers:
                raise RuntimeError(f"initialize on connection {index}: {status} {headers}")
            sock.sendall(post(INITIALIZED, headers["mcp-session-id"]))
            status, _ = read_response(sock)
            if status != 202:
                raise RuntimeError(f"initialized on connection {index}: {status}")
            sockets.append(sock)
        elapsed = time.monotonic() - started
        # A connection idle for a second gives its buffers back (HTTPServer.idleReleaseMs); the
        # sweep runs every half second.
        time.sleep(2.0)
        rss, hwm = rss_kib(proc.pid)
        health = json.loads(subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/health"], capture_output=True, text=True).stdout or "{}")
        sessions = health.get("sessions", {}).get("http")
        print(f"http_idle: {args.connections} keep-alive connections, {sessions} initialized sessions, opened in {elapsed:.1f} s")
        print(f"http_idle: mcpd RSS {rss / 1024:.1f} MiB (before: {base_rss / 1024:.1f} MiB; peak {hwm / 1024:.1f} MiB); "
              f"{(rss - base_rss) * 1024 / args.connections:.0f} bytes per idle session; target <= 48 MB")
        print(f"http_idle_rss_mb={rss / 1024:.1f} http_idle_bytes_per_session={(rss - base_rss) * 1024 / args.connections:.0f}")
        return 0
    finally:
        for sock in sockets:
            sock.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
