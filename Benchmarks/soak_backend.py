#!/usr/bin/env python3
"""soak_backend: a raw MCP stdio server for Benchmarks/soak.py that dies on purpose.

    soak_backend.py [--life MIN:MAX [--deaths FILE]] [--seed N]

Plain python3, no SDK: JSON-RPC 2.0, one message a line on stdin/stdout, like echo_backend.c
but slower (Python) and mortal.

  initialize  -> protocolVersion 2025-11-25, capabilities {"tools": {}}
  tools/list  -> echo(text), crash(how)
  tools/call  echo  -> {"content":[{"type":"text","text":<text>}]}
              crash -> the process dies in the middle of the call (see "Ways to die")
  ping        -> {}
  notifications and responses are ignored; other methods with an id -> -32601.

Input is read in chunks of up to 1 MiB and every answer produced for one read goes out in one
write, so a death in the middle of a read leaves requests of the same batch unanswered (mcpd
must fail them, not lose them).

--life MIN:MAX: the process also dies on its own once a lifetime drawn uniformly from
[MIN, MAX] seconds has passed since it started, at the next read after that (so only under
load): it answers a random part of that read's requests, then dies.

--deaths FILE: every death is recorded in FILE (one CLOCK_MONOTONIC time a line; the processes
of one backend follow each other, so they share it), and a lifetime that runs out while FILE
holds 4 deaths within the last 62 s is drawn again instead: mcpd stops restarting a backend that
exits 5 times within 60 s (Backend.maxCrashes, crashWindowMs), and the soak is about restarts,
not about that circuit. A crash call always dies (and is recorded).

Ways to die, drawn at random (or named by crash's `how`):
  exit1, exit3   _exit(1) / _exit(3)
  kill           SIGKILL to itself (mcpd sees "signal 9")
  torn           writes the first half of an answer line, without its newline, then _exit(2):
                 mcpd must drop the torn line, not relay it
Each death first writes one line to stderr naming the way, which mcpd copies to its log.
Exits 0 on stdin EOF, or when its stdout breaks.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time

DEATHS = ("exit1", "exit3", "kill", "torn")

# With --deaths, at most MAX_DEATHS deaths within DEATH_WINDOW seconds (mcpd's circuit opens at
# 5 within 60 s; 2 s of margin for the time between a death and mcpd's reaping it).
MAX_DEATHS = 4
DEATH_WINDOW = 62.0

TOOLS = [
    {"name": "echo", "description": "Echo the text back.",
     "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}},
    {"name": "crash", "description": "Die in the middle of this call.",
     "inputSchema": {"type": "object", "properties": {"how": {"type": "string", "enum": list(DEATHS)}}}},
]


class Options:
    life: tuple[float, float] | None = None   # lifetime bounds, seconds; None: immortal
    deaths: str | None = None                  # the deaths file
    rng: random.Random


def parse_args() -> Options:
    opts = Options()
    seed = None
    argv = sys.argv[1:]
    while argv:
        opt = argv.pop(0)
        if opt == "--life" and argv:
            lo, _, hi = argv.pop(0).partition(":")
            opts.life = (float(lo), float(hi or lo))
        elif opt == "--deaths" and argv:
            opts.deaths = argv.pop(0)
        elif opt == "--seed" and argv:
            seed = int(argv.pop(0))
        else:
            sys.stderr.write(f"soak_backend: unknown argument {opt!r}\n")
            sys.exit(64)
    opts.rng = random.Random(seed if seed is not None else int.from_bytes(os.urandom(8), "little"))
    return opts


def recent_deaths(path: str | None) -> int:
    """Deaths recorded in `path` within the last DEATH_WINDOW seconds."""
    if not path:
        return 0
    now = time.monotonic()
    try:
        with open(path) as f:
            return sum(1 for line in f if line.strip() and now - float(line) < DEATH_WINDOW)
    except OSError:
        return 0


def write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(1, view)
        except OSError:  # mcpd is gone
            os._exit(0)
        view = view[n:]


def die(how: str, pending: list[bytes], opts: Options) -> None:
    """Dies the way `how` says, after writing `pending` (answers of the current read)."""
    if opts.deaths:
        with open(opts.deaths, "a") as f:
            f.write(f"{time.monotonic()}\n")
    try:
        sys.stderr.write(f"soak_backend {os.getpid()}: dying ({how})\n")
        sys.stderr.flush()
    except OSError:
        pass
    if how == "torn":
        torn = pending.pop() if pending else b'{"jsonrpc":"2.0","id":1,"result":{"content":[]}}\n'
        write_all(b"".join(pending) + torn[: len(torn) // 2])
        os._exit(2)
    write_all(b"".join(pending))
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(3 if how == "exit3" else 1)


def answer(ident, result: dict) -> bytes:
    return b'{"jsonrpc":"2.0","id":%s,"result":%s}\n' % (
        json.dumps(ident).encode(), json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode())


def error(ident, code: int, message: str) -> bytes:
    return b'{"jsonrpc":"2.0","id":%s,"error":{"code":%d,"message":%s}}\n' % (
        json.dumps(ident).encode(), code, json.dumps(message).encode())


def main() -> None:
    opts = parse_args()
    rng = opts.rng
    deadline = time.monotonic() + rng.uniform(*opts.life) if opts.life else None
    buf = b""
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            return
        buf += chunk
        *lines, buf = buf.split(b"\n")
        # A lifetime that ran out: this read is the last one, a random part of it is answered
        # (cut == len(lines): all of it). Or, with 4 recent deaths, a new lifetime.
        cut = None
        if deadline is not None and time.monotonic() >= deadline:
            if recent_deaths(opts.deaths) < MAX_DEATHS:
                cut = rng.randrange(len(lines) + 1)
            else:
                deadline = time.monotonic() + rng.uniform(*opts.life)
        out: list[bytes] = []
        for k, line in enumerate(lines):
            if k == cut:
                die(rng.choice(DEATHS), out, opts)
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                out.append(error(None, -32700, "Parse error"))
                continue
            if not isinstance(msg, dict) or "method" not in msg or "id" not in msg:
                continue  # a notification, a response, or junk without an id
            ident, method = msg["id"], msg["method"]
            params = msg.get("params") or {}
            if method == "tools/call":
                name = params.get("name")
                args = params.get("arguments") or {}
                if name == "echo" and isinstance(args.get("text"), str):
                    out.append(answer(ident, {"content": [{"type": "text", "text": args["text"]}]}))
                elif name == "crash":
                    how = args.get("how")
                    die(how if how in DEATHS else rng.choice(DEATHS), out, opts)
                else:
                    out.append(error(ident, -32602, f"Unknown tool or bad arguments: {name}"))
            elif method == "initialize":
                out.append(answer(ident, {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                                          "serverInfo": {"name": "soak_backend", "version": "1.0"}}))
            elif method == "tools/list":
                out.append(answer(ident, {"tools": TOOLS}))
            elif method == "ping":
                out.append(answer(ident, {}))
            else:
                out.append(error(ident, -32601, "Method not found"))
        if cut == len(lines):
            die(rng.choice(DEATHS), out, opts)
        if out:
            write_all(b"".join(out))


if __name__ == "__main__":
    main()
