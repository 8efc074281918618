#!/usr/bin/env python3
"""HTTP throughput of `mcpd serve` (issue 14), every figure of a row from one run.

Systems, interleaved and repeated (medians printed):
  mcpd handshake   http_loadgen --mode handshake: each connection its own 2025-11-25 session,
                   tools/call echo__echo through mcpd serve to the C echo backend
  mcpd stateless   http_loadgen --mode stateless: 2026-07-28 requests, no session
  nginx            http_loadgen --mode plain: nginx (Debian's nginx-light, started here on
                   loopback, one worker) returning a fixed 100-byte JSON body: the floor of any
                   HTTP server on this machine
  mcpd stdio d16   Benchmarks/loadgen at depth 16 over mcpd stdio, the same echo backend
  fastmcp proxy    (once, at 1 and 16 connections) FastMCP's HTTP proxy (PyPI fastmcp, run by
                   --fastmcp-python) in front of the same echo backend, handshake era; it
                   answers with chunked event streams, as its clients get them by default
at 1, 16 and 256 connections. Targets: mcpd at 16 connections >= 0.5x nginx's requests/s, and
>= 0.7x mcpd's own stdio calls/s at depth 16.

    python3 Benchmarks/http_bench.py --mcpd .build/release/mcpd [--reps 3] [--duration 2]
                                     [--fastmcp-python Benchmarks/.venv-fastmcp/bin/python]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BODY = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"0123456789abcdefghij"}]}}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {port}")
            time.sleep(0.05)


def parse(line: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)}


def run(cmd: list[str]) -> dict[str, float]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return parse(proc.stdout)


def measure_fastmcp(args: argparse.Namespace, http_loadgen: Path, echo: Path, tmp: Path) -> dict[int, dict[str, float]]:
    """FastMCP's HTTP proxy in front of the echo backend, once at 1 and 16 connections."""
    script = tmp / "fastmcp_proxy.py"
    script.write_text("""import sys
from fastmcp.server import create_proxy
port, echo = int(sys.argv[1]), sys.argv[2]
proxy = create_proxy({"mcpServers": {"echo": {"command": echo, "args": []}}}, name="fastmcp-proxy")
proxy.run(transport="http", host="127.0.0.1", port=port, path="/mcp", show_banner=False, log_level="warning")
""")
    port = free_port()
    proxy = subprocess.Popen([args.fastmcp_python, str(script), str(port), str(echo)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=open(tmp / "fastmcp.stderr", "wb"), start_new_session=True)
    rows: dict[int, dict[str, float]] = {}
    try:
        wait_port(port, timeout=30)
        time.sleep(0.5)
        for n in (1, 16):
            # One backend tool behind the proxy: FastMCP lists it unprefixed.
            rows[n] = run([str(http_loadgen), "--connections", str(n), "--duration", str(args.duration), "--warmup", "1",
                           "--port", str(port), "--mode", "handshake", "--tool", "echo"])
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"http_bench: the fastmcp proxy run failed ({error}); see {tmp}/fastmcp.stderr", file=sys.stderr)
    finally:
        os.killpg(proxy.pid, signal.SIGTERM)
        try:
            proxy.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proxy.pid, signal.SIGKILL)
            proxy.wait()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mcpd", default=str(HERE.parent / ".build" / "release" / "mcpd"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--connections", default="1,16,256")
    ap.add_argument("--fastmcp-python", help="a Python with fastmcp installed: its HTTP proxy is measured once")
    args = ap.parse_args()
    bins = HERE / ".build-bench"
    loadgen, http_loadgen, echo = bins / "loadgen", bins / "http_loadgen", bins / "echo_backend"
    for tool in (loadgen, http_loadgen, echo):
        if not tool.exists():
            print(f"http_bench: {tool} is missing: make bench-tools", file=sys.stderr)
            return 1
    counts = [int(c) for c in args.connections.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="mcpd-http-bench-"))
    config = tmp / "mcpd.yaml"
    config.write_text(f"servers:\n  echo:\n    command: {echo}\n    lazy: false\n")
    env = dict(os.environ, XDG_STATE_HOME=str(tmp / "state"))
    port = free_port()
    mcpd = subprocess.Popen([args.mcpd, "serve", "-c", str(config), "--port", str(port), "--log-level", "warning"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(tmp / "mcpd.stderr", "wb"), env=env)
    nginx = None
    nginx_port = free_port()
    nginx_bin = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx_bin:
        (tmp / "nginx").mkdir()
        conf = tmp / "nginx" / "nginx.conf"
        conf.write_text(f"""daemon off;
worker_processes 1;
error_log {tmp}/nginx/error.log;
pid {tmp}/nginx/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx;
    proxy_temp_path {tmp}/nginx;
    fastcgi_temp_path {tmp}/nginx;
    uwsgi_temp_path {tmp}/nginx;
    scgi_temp_path {tmp}/nginx;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{nginx_port};
        location = /fixed {{ default_type application/json; return 200 '{BODY}'; }}
    }}
}}
""")
        nginx = subprocess.Popen([nginx_bin, "-c", str(conf), "-p", str(tmp / "nginx")], stdout=subprocess.DEVNULL,
                                 stderr=open(tmp / "nginx.stderr", "wb"))
    else:
        print("http_bench: nginx not found (apt-get install nginx-light): its rows are n/a", file=sys.stderr)
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    stdio: list[float] = []
    try:
        wait_port(port)
        if nginx:
            wait_port(nginx_port)
        time.sleep(0.5)
        for rep in range(args.reps):
            for n in counts:
                for system in ("mcpd handshake", "mcpd stateless", "nginx"):
                    if system == "nginx" and not nginx:
                        continue
                    target = ["--port", str(nginx_port), "--mode", "plain", "--path", "/fixed"] if system == "nginx" \
                        else ["--port", str(port), "--mode", system.split()[1]]
                    results.setdefault((system, n), []).append(
                        run([str(http_loadgen), "--connections", str(n), "--duration", str(args.duration)] + target))
            stdio_cfg = tmp / "stdio.yaml"
            stdio_cfg.write_text(config.read_text())
            line = run([str(loadgen), "--depth", "16", "--payload", "100", "--duration", str(args.duration), "--count", "100000000",
                        "--warmup", "2000", "--tool", "echo__echo", "--", args.mcpd, "stdio", "--config", str(stdio_cfg), "--log-level", "warning"])
            stdio.append(line["calls_per_s"])
            print(f"  rep {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)
    finally:
        mcpd.send_signal(signal.SIGTERM)
        mcpd.wait(20)
        if nginx:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(10)
    fastmcp = measure_fastmcp(args, http_loadgen, echo, tmp) if args.fastmcp_python else {}
    median = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
    stdio_d16 = median(stdio)
    print(f"mcpd serve HTTP benchmark: {os.cpu_count()} cpus, {args.reps} reps interleaved, {args.duration:g} s each; medians")
    print(f"{'system':<16} {'conns':>5} {'calls/s':>9} {'p50 us':>8} {'p99 us':>8} {'x nginx':>8} {'x stdio d16':>11}")
    for n in counts:
        floor = median([r["calls_per_s"] for r in results.get(("nginx", n), [])])
        for system in ("mcpd handshake", "mcpd stateless", "nginx"):
            rows = results.get((system, n))
            if not rows:
                continue
            rate = median([r["calls_per_s"] for r in rows])
            ratio = f"{rate / floor:.2f}" if floor == floor and floor > 0 else "n/a"
            print(f"{system:<16} {n:>5} {rate:>9.0f} {median([r['p50_us'] for r in rows]):>8.0f} {median([r['p99_us'] for r in rows]):>8.0f} "
                  f"{ratio:>8} {rate / stdio_d16:>11.2f}")
    print(f"{'mcpd stdio d16':<16} {'-':>5} {stdio_d16:>9.0f}")
    for n, row in sorted(fastmcp.items()):
        mcpd_rate = median([r["calls_per_s"] for r in results.get(("mcpd handshake", n), [])])
        versus = f"   (mcpd handshake at {n}: {mcpd_rate / row['calls_per_s']:.0f}x its calls/s)" if mcpd_rate == mcpd_rate else ""
        print(f"{'fastmcp proxy':<16} {n:>5} {row['calls_per_s']:>9.0f} {row['p50_us']:>8.0f} {row['p99_us']:>8.0f}{versus}")
    h16 = median([r["calls_per_s"] for r in results.get(("mcpd handshake", 16), [])])
    n16 = median([r["calls_per_s"] for r in results.get(("nginx", 16), [])])
    print(f"http_handshake_c16_per_s={h16:.0f} nginx_c16_per_s={n16:.0f} stdio_d16_per_s={stdio_d16:.0f} "
          f"ratio_vs_nginx={h16 / n16 if n16 == n16 and n16 else float('nan'):.2f} ratio_vs_stdio={h16 / stdio_d16:.2f}")
    print("targets: mcpd at 16 connections >= 0.5x nginx, >= 0.7x mcpd stdio at depth 16")
    return 0


if __name__ == "__main__":
    sys.exit(main())
