"""Integration-test backend "hostile": a raw JSON-RPC MCP stdio server (no SDK, one JSON message
a line) that misbehaves in the way its first argument names. Used by test_bounds.py,
test_restarts.py, test_lifecycle.py and test_backend_faults.py.

    hostile.py [MODE [VALUE]] [--anything ...]

Arguments that start with "--" are ignored (so a config can pass `--api-key=${SECRET}`).

Modes:
  plain                  behaves (the default).
  slow-init [SECONDS]    answers `initialize` only after SECONDS (default 3).
  ignore-eof             stays alive when its stdin reaches EOF (it exits only on a signal).
  setsid-grandchild      at start, spawns `hostile.py --sleeper` in a new session (setsid), which
                         records its pid as `hostilegrandchild-<pid>.pid` and sleeps 1000 s; the
                         backend serves once that pid file exists.
  double-fork [SECONDS]  at start, forks a child that forks a grandchild and exits at once; the
                         grandchild (an orphan, re-parented to mcpd as a subreaper or PID 1)
                         records its pid as `hostileorphan-<pid>.pid`, sleeps SECONDS (default
                         0.5) and exits, so that only its new parent can reap it; the backend
                         serves once that pid file exists.
  slow-restart [SECONDS] like plain until the `crash` tool ran once; every process started after
                         that (the crash marker exists) answers `initialize` only after SECONDS
                         (default 3): a restart slower than the request deadline.
  crash-loop             like plain until the `crash` tool ran once; every process started after
                         that (the crash marker exists) records its pid, reads one line (mcpd's
                         `initialize`), writes "hostile: crashed before, refusing to start" to
                         stderr and exits with status 5 without answering: a crash loop.
  extra                  like plain, and tools/list also lists the extra tools (sigstate,
                         stop_reading); the other modes list only the tools above them.
  terse                  like extra, but tools/list gives every tool by name only, with the
                         schema {"type": "object"} and no description: an answer under 1 KiB,
                         for tests that set gateway.max_message_size to 1KiB.

The crash marker is the file `hostile.crashed` in $MCPD_TEST_PIDDIR (not a *.pid file, so
recorded_pids ignores it); without $MCPD_TEST_PIDDIR there is none, and slow-restart and crash-loop
behave like plain.

Tools (in every mode):
  echo(text)             -> the text.
  big(bytes)             -> a text block of `bytes` (default 1 MiB) "x" characters.
  argv()                 -> JSON text of the arguments the process was started with.
  flood_stderr(rate, bytes)
                         -> answers "flooding stderr", and from then on writes `rate` (default
                            500) lines of `bytes` (default 100) bytes a second to its stderr,
                            from a thread, for as long as it runs.
  flood_pings(id_bytes)  -> answers "flooding", then never reads its stdin again and writes `ping`
                            requests to its stdout as fast as it can (1,000 per write), each with
                            a string id of `id_bytes` (default 12) characters.
  close_stdin()          -> closes fd 0, answers "closed", then stays alive (stdout still open,
                            nothing more written) until a signal ends it.
  close_stdout()         -> closes fd 1 without answering, then stays alive until a signal ends it.
  garbage()              -> writes three lines that are not JSON-RPC messages (not JSON, cut JSON,
                            an array), then answers "after garbage".
  crash()                -> creates the crash marker, writes "hostile crashing now" to stderr and
                            exits with status 3 without answering.
  pid()                  -> the process id, as text.

Extra tools (listed only in the modes extra and terse):
  sigstate()             -> the SigBlk, SigIgn and SigCgt lines of /proc/self/status, one a line.
                            (CPython itself ignores SIGPIPE and SIGXFSZ at start-up, so SigIgn
                            shows those two whatever the process inherited.)
  stop_reading()         -> answers "stopped reading", then never reads its stdin again (nor
                            writes anything) and stays alive until a signal ends it.

Lifecycle: answers initialize (the client's protocol version, capabilities {"tools": {}}),
tools/list and ping; server/discover and other methods get -32601; notifications and responses
are ignored. It exits on stdin EOF (except in ignore-eof mode) or when its stdout breaks, and
records its pid as `hostile-<pid>.pid` in $MCPD_TEST_PIDDIR.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from _common import record_pid

if __name__ == "__main__" and sys.argv[1:] == ["--sleeper"]:
    record_pid("hostilegrandchild")
    time.sleep(1000)
    sys.exit(0)

POSITIONAL = [a for a in sys.argv[1:] if not a.startswith("--")]
MODE = POSITIONAL[0] if POSITIONAL else "plain"
VALUE = POSITIONAL[1] if len(POSITIONAL) > 1 else None

TOOLS = [
    {"name": "echo", "description": "Echo the text.",
     "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}},
    {"name": "big", "description": "A text block of the given size.",
     "inputSchema": {"type": "object", "properties": {"bytes": {"type": "integer"}}}},
    {"name": "argv", "description": "The process arguments.", "inputSchema": {"type": "object"}},
    {"name": "flood_stderr", "description": "Flood stderr from now on.",
     "inputSchema": {"type": "object", "properties": {"rate": {"type": "integer"}, "bytes": {"type": "integer"}}}},
    {"name": "flood_pings", "description": "Stop reading stdin and flood ping requests.", "inputSchema": {"type": "object"}},
    {"name": "close_stdin", "description": "Close fd 0 and stay alive.", "inputSchema": {"type": "object"}},
    {"name": "close_stdout", "description": "Close fd 1 and stay alive.", "inputSchema": {"type": "object"}},
    {"name": "garbage", "description": "Write lines that are not JSON-RPC, then answer.", "inputSchema": {"type": "object"}},
    {"name": "crash", "description": "Exit (status 3) without answering.", "inputSchema": {"type": "object"}},
    {"name": "pid", "description": "The process id.", "inputSchema": {"type": "object"}},
]

EXTRA_TOOLS = [
    {"name": "sigstate", "description": "The signal mask and dispositions of this process.", "inputSchema": {"type": "object"}},
    {"name": "stop_reading", "description": "Answer, then never read stdin again.", "inputSchema": {"type": "object"}},
]


def listed_tools() -> list[dict]:
    if MODE == "extra":
        return TOOLS + EXTRA_TOOLS
    if MODE == "terse":
        return [{"name": t["name"], "inputSchema": {"type": "object"}} for t in TOOLS + EXTRA_TOOLS]
    return TOOLS


_piddir = os.environ.get("MCPD_TEST_PIDDIR")
CRASH_MARKER = os.path.join(_piddir, "hostile.crashed") if _piddir else None


def crashed_before() -> bool:
    return CRASH_MARKER is not None and os.path.exists(CRASH_MARKER)

_out_lock = threading.Lock()
_big_cache: dict[int, bytes] = {}


def write_out(data: bytes) -> None:
    try:
        with _out_lock:
            view = memoryview(data)
            while view:
                n = os.write(1, view)
                view = view[n:]
    except OSError:  # mcpd is gone
        os._exit(0)


def send(message: dict) -> None:
    write_out(json.dumps(message, separators=(",", ":")).encode() + b"\n")


def result(ident, value) -> None:
    send({"jsonrpc": "2.0", "id": ident, "result": value})


def text_result(ident, text: str) -> None:
    result(ident, {"content": [{"type": "text", "text": text}]})


def stay_alive() -> None:
    while True:
        time.sleep(60)


def stderr_flood(rate: int, size: int) -> None:
    n = 0
    start = time.monotonic()
    try:
        while True:
            due = int((time.monotonic() - start) * rate)
            if due > n:
                chunk = b"".join(
                    (f"hostile stderr flood line {i:010d} ".encode().ljust(size - 1, b"x") + b"\n") for i in range(n, due)
                )
                os.write(2, chunk)
                n = due
            time.sleep(0.01)
    except OSError:
        pass


def flood_pings(id_bytes: int) -> None:
    n = 0
    pad = b"p" * max(0, id_bytes - 12)
    while True:
        chunk = b"".join(b'{"jsonrpc":"2.0","id":"%s%010d","method":"ping"}\n' % (pad, i) for i in range(n, n + 1000))
        n += 1000
        write_out(chunk)


def big_result(ident, size: int) -> None:
    pad = _big_cache.get(size)
    if pad is None:
        pad = _big_cache[size] = b"x" * size
    ident_raw = json.dumps(ident).encode()
    write_out(b'{"jsonrpc":"2.0","id":' + ident_raw + b',"result":{"content":[{"type":"text","text":"' + pad + b'"}]}}\n')


def call_tool(ident, params: dict) -> None:
    name = params.get("name")
    args = params.get("arguments") or {}
    if name == "echo":
        text_result(ident, str(args.get("text", "")))
    elif name == "big":
        big_result(ident, int(args.get("bytes", 1 << 20)))
    elif name == "argv":
        text_result(ident, json.dumps(sys.argv[1:]))
    elif name == "flood_stderr":
        rate, size = int(args.get("rate", 500)), int(args.get("bytes", 100))
        threading.Thread(target=stderr_flood, args=(rate, size), daemon=True).start()
        text_result(ident, "flooding stderr")
    elif name == "flood_pings":
        text_result(ident, "flooding")
        flood_pings(int(args.get("id_bytes", 12)))
    elif name == "close_stdin":
        os.close(0)
        text_result(ident, "closed")
        stay_alive()
    elif name == "close_stdout":
        os.close(1)
        stay_alive()
    elif name == "garbage":
        write_out(b"this is not JSON\n{\"jsonrpc\":\"2.0\",\"method\":\n[1,2,3]\n")
        text_result(ident, "after garbage")
    elif name == "crash":
        if CRASH_MARKER is not None:
            with open(CRASH_MARKER, "w") as f:
                f.write(f"{os.getpid()}\n")
        try:
            os.write(2, b"hostile crashing now\n")
        except OSError:
            pass
        os._exit(3)
    elif name == "pid":
        text_result(ident, str(os.getpid()))
    elif name == "sigstate":
        with open("/proc/self/status") as f:
            rows = [row.strip() for row in f if row.startswith(("SigBlk:", "SigIgn:", "SigCgt:"))]
        text_result(ident, "\n".join(rows))
    elif name == "stop_reading":
        text_result(ident, "stopped reading")
        stay_alive()
    else:
        send({"jsonrpc": "2.0", "id": ident, "error": {"code": -32602, "message": f"unknown tool {name!r}"}})


def handle(message: dict) -> None:
    if not isinstance(message, dict) or "method" not in message or "id" not in message:
        return  # a notification or a response to one of our requests
    ident, method, params = message["id"], message["method"], message.get("params") or {}
    if method == "initialize":
        if MODE == "slow-init" or (MODE == "slow-restart" and crashed_before()):
            time.sleep(float(VALUE or 3))
        result(ident, {
            "protocolVersion": params.get("protocolVersion", "2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "hostile", "version": "1.0.0"},
        })
    elif method == "ping":
        result(ident, {})
    elif method == "tools/list":
        result(ident, {"tools": listed_tools()})
    elif method == "tools/call":
        call_tool(ident, params)
    else:
        send({"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": f"method not found: {method}"}})


def spawn_grandchild() -> None:
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--sleeper"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    piddir = os.environ.get("MCPD_TEST_PIDDIR")
    if piddir:
        path = os.path.join(piddir, f"hostilegrandchild-{child.pid}.pid")
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)


def spawn_orphan(seconds: float) -> None:
    piddir = os.environ.get("MCPD_TEST_PIDDIR")
    before = set(os.listdir(piddir)) if piddir else set()
    middle = os.fork()
    if middle == 0:
        try:
            if os.fork() == 0:
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                record_pid("hostileorphan")
                time.sleep(seconds)
        finally:
            os._exit(0)
    os.waitpid(middle, 0)
    if piddir:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            n.startswith("hostileorphan-") for n in set(os.listdir(piddir)) - before
        ):
            time.sleep(0.01)


def main() -> None:
    record_pid("hostile")
    if MODE == "setsid-grandchild":
        spawn_grandchild()
    elif MODE == "double-fork":
        spawn_orphan(float(VALUE or 0.5))
    stdin = sys.stdin.buffer
    if MODE == "crash-loop" and crashed_before():
        stdin.readline()
        try:
            os.write(2, b"hostile: crashed before, refusing to start\n")
        except OSError:
            pass
        os._exit(5)
    while True:
        line = stdin.readline()
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        try:
            message = json.loads(line)
        except ValueError:
            continue
        handle(message)
    if MODE == "ignore-eof":
        stay_alive()
    os._exit(0)


if __name__ == "__main__":
    main()
