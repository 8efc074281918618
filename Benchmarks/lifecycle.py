#!/usr/bin/env python3
"""Lifecycle benchmark (issue 12): lazy start from a warm catalog, many configured servers, and
a crash mid-call. Run by `make bench` after run.py; alone:

    python3 Benchmarks/lifecycle.py --mcpd .build/release/mcpd

Sections, each with its reference measured in the same run (interleaved, medians):
  warm start   100 lazy echo_backend servers whose catalog is filled: exec -> the tools/list
               answer (initialize, notifications/initialized and tools/list written at once),
               against exec -> exit of `mcpd --version` (mcpd's own bare start). Target: within
               10 ms, and zero backend processes started.
  1000 lazy    1,000 configured lazy servers, none running: mcpd's RSS after the first
               tools/list, against 1 configured server; tools/list latency (all 1,000 tools,
               one page: page_size 10000).
  crash        a backend killed with SIGKILL in the middle of a call: time from its death (the
               monotonic clock it wrote just before) to the client reading the error. Target:
               within 10 ms; the next call is served by the new process.
The last line is machine-readable (lifecycle_*).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def fail(message: str) -> None:
    print(f"lifecycle: {message}", file=sys.stderr)
    sys.exit(1)


def write_config(path: Path, state: Path, servers: dict[str, list[str]], extra: str = "") -> Path:
    lines = ["gateway:", f"  state_dir: {json.dumps(str(state))}", "  page_size: 10000", "  restart_limit: 1000", extra, "servers:"]
    for name, argv in servers.items():
        lines += [f"  {name}:", f"    command: {json.dumps(argv[0])}", f"    args: {json.dumps(argv[1:])}"]
    path.write_text("\n".join(line for line in lines if line) + "\n")
    return path


class Client:
    """`mcpd stdio` driven with raw lines."""

    def __init__(self, mcpd: str, config: Path):
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen([mcpd, "stdio", "--config", str(config), "--log-level", os.environ.get("LIFECYCLE_LOG_LEVEL", "warning")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(os.environ.get("LIFECYCLE_STDERR", os.devnull), "ab"))
        self.buffer = b""

    def send(self, *messages: dict) -> None:
        self.proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in messages))
        self.proc.stdin.flush()

    def answer(self, message_id: int, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                message = json.loads(line)
                if message.get("id") == message_id:
                    return message
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                fail(f"no answer to request {message_id} within {timeout} s")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                fail("mcpd closed its stdout")
            self.buffer += chunk

    def handshake_and_list(self) -> dict:
        self.send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                   "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}},
                  {"jsonrpc": "2.0", "method": "notifications/initialized"},
                  {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        return self.answer(2)

    def children(self) -> int:
        count = 0
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    count += 1
        return count

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def close(self) -> None:
        self.proc.stdin.close()
        if self.proc.wait(30) != 0:
            fail(f"mcpd exited with {self.proc.returncode}")


def fill_catalog(mcpd: str, config: Path) -> None:
    proc = subprocess.run([mcpd, "list", "--config", str(config), "--log-level", "error"], capture_output=True, timeout=300)
    if proc.returncode != 0:
        fail(f"mcpd list (filling the catalog) failed: {proc.stderr.decode()[-2000:]}")


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mcpd", default=str(ROOT / ".build" / "release" / "mcpd"))
    ap.add_argument("--echo", default=str(HERE / ".build-bench" / "echo_backend"))
    ap.add_argument("--runs", type=int, default=15, help="runs of each start measurement")
    ap.add_argument("--crashes", type=int, default=5, help="crashes measured (the backoff doubles with each: 5 keep the run short)")
    args = ap.parse_args()
    mcpd = str(Path(args.mcpd).resolve())
    for tool in (mcpd, args.echo):
        if not os.access(tool, os.X_OK):
            fail(f"{tool} is missing: make release bench-tools")
    tmp = Path(tempfile.mkdtemp(prefix="mcpd-lifecycle-"))
    extra: list[str] = []
    try:
        # Warm start: 100 lazy servers, catalog filled once.
        warm = write_config(tmp / "warm.yaml", tmp / "state-warm", {f"e{i}": [args.echo] for i in range(100)})
        fill_catalog(mcpd, warm)
        version_ms: list[float] = []
        list_ms: list[float] = []
        started: list[int] = []
        for run in range(args.runs):
            for kind in (("version", "list") if run % 2 == 0 else ("list", "version")):
                if kind == "version":
                    t0 = time.perf_counter()
                    subprocess.run([mcpd, "--version"], stdout=subprocess.DEVNULL, check=True)
                    version_ms.append((time.perf_counter() - t0) * 1000)
                else:
                    client = Client(mcpd, warm)
                    answer = client.handshake_and_list()
                    list_ms.append((time.perf_counter() - client.t0) * 1000)
                    tools = {tool["name"] for tool in answer["result"]["tools"]}
                    if tools != {f"e{i}__echo" for i in range(100)}:
                        fail(f"the warm tools/list has {len(tools)} tools, not the 100 expected")
                    started.append(client.children())
                    client.close()
        v, w = median(version_ms), median(list_ms)
        print(f"warm start, 100 lazy servers, catalog filled: medians of {args.runs} runs, interleaved")
        print(f"  mcpd --version, exec -> exit:               {v:7.2f} ms")
        print(f"  mcpd stdio, exec -> tools/list answer:      {w:7.2f} ms")
        print(f"  difference (target <= 10 ms):               {w - v:7.2f} ms; backend processes started: {max(started)}")
        extra += [f"lifecycle_warm_list_ms={w:.2f}", f"lifecycle_version_ms={v:.2f}", f"lifecycle_warm_added_ms={w - v:.2f}",
                  f"lifecycle_warm_started={max(started)}"]

        # 1000 lazy servers, none running, against 1.
        configs = {n: write_config(tmp / f"lazy-{n}.yaml", tmp / f"state-{n}", {f"e{i}": [args.echo] for i in range(n)}) for n in (1, 1000)}
        for config in configs.values():
            fill_catalog(mcpd, config)
        rss: dict[int, list[int]] = {1: [], 1000: []}
        latency: dict[int, list[float]] = {1: [], 1000: []}
        for run in range(5):
            for n in ((1, 1000) if run % 2 == 0 else (1000, 1)):
                client = Client(mcpd, configs[n])
                client.handshake_and_list()
                for k in range(20):
                    t0 = time.perf_counter()
                    client.send({"jsonrpc": "2.0", "id": 100 + k, "method": "tools/list", "params": {}})
                    if len(client.answer(100 + k)["result"]["tools"]) != n:
                        fail(f"tools/list with {n} servers is incomplete")
                    latency[n].append((time.perf_counter() - t0) * 1000)
                rss[n].append(client.rss_kb())
                if client.children() != 0:
                    fail(f"a backend started with {n} lazy servers and no call")
                client.close()
        r1, r1000 = median(rss[1]) / 1024, median(rss[1000]) / 1024
        l1, l1000 = median(latency[1]), median(latency[1000])
        print("\n1,000 configured lazy servers, none running, against 1 (medians; 5 runs x 20 tools/list)")
        print(f"  RSS after the first tools/list:  {r1000:6.1f} MiB   (1 server: {r1:.1f} MiB)")
        print(f"  tools/list round trip:           {l1000:6.2f} ms    (1 server: {l1:.2f} ms; one page)")
        extra += [f"lifecycle_1000_rss_mb={r1000:.1f}", f"lifecycle_1_rss_mb={r1:.1f}", f"lifecycle_1000_list_ms={l1000:.2f}"]

        # A crash mid-call.
        stamp = tmp / "died"
        crash = write_config(tmp / "crash.yaml", tmp / "state-crash",
                             {"c": [sys.executable, str(HERE / "crash_backend.py"), str(stamp)]}, "  idle_timeout: 0")
        client = Client(mcpd, crash)
        client.handshake_and_list()
        delays: list[float] = []
        next_ok = 0
        for k in range(args.crashes):
            if stamp.exists():
                stamp.unlink()
            client.send({"jsonrpc": "2.0", "id": 1000 + k, "method": "tools/call", "params": {"name": "c__crash", "arguments": {}}})
            answer = client.answer(1000 + k)
            received = time.monotonic_ns()
            if "error" not in answer:
                fail(f"the call that crashed its backend was answered with {answer}")
            delays.append((received - int(stamp.read_text())) / 1e6)
            client.send({"jsonrpc": "2.0", "id": 2000 + k, "method": "tools/call", "params": {"name": "c__echo", "arguments": {"text": "again"}}})
            if client.answer(2000 + k).get("result", {}).get("content", [{}])[0].get("text") == "again":
                next_ok += 1
        client.close()
        d = median(delays)
        print(f"\ncrash mid-call (SIGKILL), {args.crashes} crashes: backend death -> client error")
        print(f"  median {d:.2f} ms, max {max(delays):.2f} ms (target <= 10 ms); next call served by the new process: {next_ok}/{args.crashes}")
        extra += [f"lifecycle_crash_error_ms={d:.2f}", f"lifecycle_crash_next_ok={next_ok}/{args.crashes}"]
        print("\n" + " ".join(extra))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
