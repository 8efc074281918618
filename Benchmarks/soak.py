#!/usr/bin/env python3
"""mcpd soak: a million calls through mcpd with backends dying at random, clients connecting and
leaving, and a client that stops reading for a while; every call must be answered exactly once,
and mcpd must end the long session with the memory and file descriptors it had at its start.

mcpd serves one client per process on stdin/stdout, so a client connecting and leaving is an mcpd
session: a fresh `mcpd stdio` with its backends, a handshake, calls, and the client's leaving.
Within a session the client pipelines (--depth calls in flight). The run is, in order:

  short sessions  --sessions sessions of --session-calls calls each, at depth 1, 4, 16, 64 in turn.
                  Half of them leave cleanly (every answer read, then EOF on mcpd's stdin), half
                  close mcpd's stdin right after their last request, with calls in flight, and
                  read to EOF: mcpd must still deliver every answer (its drain_timeout). Three
                  sessions in four send one call of `fK__crash` at a random point, which kills
                  that backend in the middle of the call (its batch-mates unanswered, sometimes
                  a torn half line).
  vanishing       after every --vanish-every short sessions, one more client sends 200 calls
                  and disappears (closes both pipes without reading). Not counted in the calls:
                  only mcpd's exit and what it leaves behind are checked.
  long session    the rest of the calls in one session at --depth. Warm-up (--warmup calls)
                  with one stall and one crash of every fK backend, so that every buffer and
                  table has met its steady-state size; then the baseline of mcpd's RSS and fds;
                  then the main phase, with --stalls stalls spread evenly and the fK backends
                  dying on their own, under load (soak_backend.py --life: a random lifetime of
                  --life seconds each, at most 4 deaths of one backend within 62 s, since mcpd
                  stops restarting a backend at its 5th exit within 60 s); then every backend is
                  brought back and the figures are compared.

Backends of every session: e0, e1 = Benchmarks/.build-bench/echo_backend (C), and f0..f<K-1>
= Benchmarks/soak_backend.py (Python, raw JSON-RPC), which die by _exit(1), _exit(3), SIGKILL
or a torn half line followed by _exit(2). Calls are spread over the echo tools by weight:
--flaky-share of them go to the fK backends.

A stall: the client stops reading mcpd's stdout for --stall-seconds while it goes on writing
calls, as long as mcpd takes them (non-blocking writes), up to --stall-inflight in flight. mcpd
must stop reading its stdin and its backends (back-pressure), keep its memory bounded, and then
deliver everything.

Checks (each failure is a violation; the exit status is 1 if there is any):
  - every call answered exactly once: no answer missing, duplicated or for an id never sent;
    an echo's answer carries exactly the text sent (escapes, non-ASCII, 16 KiB texts every
    --big-every calls);
  - errors only where a backend died: calls to fK may fail with "closed its stdout", "exited
    with", "restarting", "still starting" (counted by kind); any other error, or any error from
    e0/e1, is a violation (no "overloaded", no timeout, no circuit opened);
  - zombies: mcpd's children are sampled every 0.25 s from /proc; a child in state Z seen in
    samples 1 s apart is a violation (a reap takes one loop turn; transient sightings counted);
  - nothing left behind: mcpd runs with MCPD_SOAK_TAG=<random> in its environment, which every
    backend inherits (`inherit_env: true`); after each session's mcpd has exited, no process may carry the tag
    (checked at once and again after 1 s; only the second check is a violation);
  - every mcpd exits with status 0 within 15 s of its client leaving (a vanished client: any
    status, within 15 s);
  - long session: open fds (/proc/<pid>/fd) at the end equal to the baseline, exactly, with
    every backend running again; VmRSS at the end within --rss-bound-mib of the baseline;
  - the whole run within --max-seconds (default 900: the 15 minutes of issue 11).

Printed: calls, calls/s, errors by kind, restarts seen (from mcpd's log: `backend "fK" exited
with ...`), stalls, RSS start/end/peak and fds start/end of the long session, zombies,
leftovers, duration; the last line is machine-readable (soak_*=...).

Plain python3, no dependencies. Builds nothing: `make soak` builds mcpd (release) and the C
tools first. Figures of the last full run are in Benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import select
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import NoReturn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Texts of the echo calls, as raw JSON string contents: escapes, raw UTF-8, an astral character
# as a surrogate pair and raw. A call's text is "<id> " + one of these, so the answer proves it
# belongs to its id; every --big-every calls the last (16 KiB) one.
FILLERS_RAW = [s.encode() for s in (
    r'plain ascii filler text, nothing to escape here at all',
    r'q\" b\\ n\n t\t u\u00e9 s\ud83d\ude00 raw é 😀 end',
    r'\u2028 line sep, slash \/ and a tab\t',
    r'big \" \\ ' + 'x' * 16_370,
)]
FILLERS = [json.loads(b'"' + f + b'"') for f in FILLERS_RAW]
SMALL_FILLERS = len(FILLERS) - 1

DEATHS = ("exit1", "exit3", "kill", "torn")

# Errors a call to a dying backend may get, by the words of mcpd's message (Backend*.swift),
# the first match wins ("is restarting after it exited with status 1" is a backoff error).
EXPECTED_ERRORS = [
    ("is restarting after", "sent during the restart backoff"),
    ("is still starting", "sent while it was starting"),
    ("closed its stdout", "in flight at a crash (stdout closed)"),
    ("stopped reading its stdin", "in flight at a crash (stdin broken)"),
    ("exited with", "in flight at a crash (exit seen)"),
]

# Calls of the long session kept for bringing every backend back at its end (the rest, after
# the figures are taken, go out as ordinary calls so that the count is exact).
SETTLE_RESERVE = 1000

EXIT_LINE = re.compile(r'backend "([^"]+)" exited with (status \d+|signal \d+)')


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mcpd", default=str(ROOT / ".build" / "release" / "mcpd"),
                    help="mcpd binary (default: %(default)s)")
    ap.add_argument("--bin-dir", default=str(HERE / ".build-bench"),
                    help="directory holding echo_backend (default: %(default)s)")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter for soak_backend.py (default: this one, %(default)s)")
    ap.add_argument("--calls", type=int, default=1_000_000,
                    help="calls in all counted sessions (default: %(default)s)")
    ap.add_argument("--sessions", type=int, default=200, help="short sessions (default: %(default)s)")
    ap.add_argument("--session-calls", type=int, default=500,
                    help="calls per short session (default: %(default)s)")
    ap.add_argument("--vanish-every", type=int, default=10,
                    help="a vanishing client after every N short sessions; 0: none (default: %(default)s)")
    ap.add_argument("--depth", type=int, default=64, help="calls in flight in the long session (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=100_000,
                    help="calls of the long session before its baseline (default: %(default)s)")
    ap.add_argument("--flaky", type=int, default=3, help="dying backends f0..f<K-1> (default: %(default)s)")
    ap.add_argument("--flaky-share", type=float, default=0.15,
                    help="share of the calls that go to the dying backends (default: %(default)s)")
    ap.add_argument("--life", default="3:8",
                    help="lifetime range of a dying backend's process in the long session, MIN:MAX "
                         "seconds (default: %(default)s)")
    ap.add_argument("--stalls", type=int, default=3, help="stalls in the long session's main phase (default: %(default)s)")
    ap.add_argument("--stall-seconds", type=float, default=3.0, help="length of a stall (default: %(default)s)")
    ap.add_argument("--stall-inflight", type=int, default=200_000,
                    help="most calls in flight during a stall (default: %(default)s)")
    ap.add_argument("--big-every", type=int, default=997,
                    help="every N-th call carries a 16 KiB text (default: %(default)s)")
    ap.add_argument("--rss-bound-mib", type=float, default=5.0,
                    help="VmRSS at the end of the long session may exceed the baseline by this much (default: %(default)s)")
    ap.add_argument("--stuck-seconds", type=float, default=60.0,
                    help="no answer for this long with calls in flight (outside a stall) is a violation (default: %(default)s)")
    ap.add_argument("--max-seconds", type=float, default=900.0,
                    help="the whole run must end within this (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, mcpd logs)")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per short session")
    return ap.parse_args()


def fail(msg: str) -> NoReturn:
    print(f"soak: error: {msg}", file=sys.stderr)
    sys.exit(2)


def mib(kb: int) -> str:
    return f"{kb / 1024:.1f}"


# ---- /proc ----

def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid`, kB (empty once it is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid: int) -> list[int]:
    """Children of `pid`: every thread's /proc/<pid>/task/<tid>/children, or, in a kernel
    without that file (CONFIG_PROC_CHILDREN), the processes whose parent is `pid`."""
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(k) for k in f.read().split()]
        return kids
    except FileNotFoundError:
        pass
    except OSError:
        return kids
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rindex(b")") + 2:].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def proc_state(pid: int) -> str:
    """The state letter of /proc/<pid>/stat (R, S, Z, ...), '' once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return ""
    return stat[stat.rindex(b")") + 2:][:1].decode()


def tagged_pids(tag: bytes) -> list[int]:
    """Every process whose environment holds `tag` (MCPD_SOAK_TAG=...)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if tag in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            pass
    return found


# ---- the run's bookkeeping ----

class Soak:
    """Configuration, the figures of every session, and the violations."""

    def __init__(self, args: argparse.Namespace, tmp: Path):
        self.args = args
        self.tmp = tmp
        self.rng = random.Random(args.seed)
        self.flaky = [f"f{k}" for k in range(args.flaky)]
        self.backends = ["e0", "e1"] + self.flaky
        # Tool table: 1,024 slots, --flaky-share of them for the fK backends, shuffled; call k
        # goes to slot k mod 1024.
        n_flaky = round(1024 * args.flaky_share) if self.flaky else 0
        table = [f"e{k % 2}__echo" for k in range(1024 - n_flaky)] + \
                [f"{self.flaky[k % len(self.flaky)]}__echo" for k in range(n_flaky)]
        self.rng.shuffle(table)
        self.table = table
        self.cfg_short = self.write_config("short", life=None)
        self.cfg_long = self.write_config("long", life=args.life)
        self.calls = 0
        self.results = 0
        self.errors: Counter[str] = Counter()
        self.exits: Counter[str] = Counter()        # backend -> exits seen in mcpd's logs
        self.exit_kinds: Counter[str] = Counter()   # "status 1", "signal 9", ...
        self.notifications: Counter[str] = Counter()
        self.violations: list[str] = []
        self.zombie_sightings = 0
        self.zombies = 0
        self.leftovers_first = 0
        self.leftovers = 0
        self.sessions: Counter[str] = Counter()
        self.vanished_status: Counter[int] = Counter()  # mcpd's exit status after a vanished client
        self.session_seq = 0

    def violation(self, msg: str) -> None:
        if len(self.violations) < 1000:
            self.violations.append(msg)
        if len(self.violations) <= 20:
            print(f"  VIOLATION: {msg}", flush=True)

    def write_config(self, name: str, life: str | None) -> Path:
        echo = Path(self.args.bin_dir).resolve() / "echo_backend"
        backend = HERE / "soak_backend.py"
        lines = ["servers:"]
        # inherit_env: the backends must carry MCPD_SOAK_TAG (mcpd passes only a few of its
        # variables by default).
        for e in ("e0", "e1"):
            lines += [f"  {e}:", f"    command: {json.dumps(str(echo))}", "    inherit_env: true"]
        for f in self.flaky:
            args = [str(backend)] + (["--life", life, "--deaths", str(self.tmp / f"deaths-{name}-{f}")] if life else [])
            lines += [f"  {f}:", f"    command: {json.dumps(self.args.python)}", f"    args: {json.dumps(args)}", "    inherit_env: true"]
        path = self.tmp / f"mcpd-{name}.yaml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def read_log(self, path: Path) -> int:
        """Counts the backend exits mcpd logged (returns them); a circuit that opened is a
        violation."""
        exits = 0
        for line in path.read_text(errors="replace").splitlines():
            m = EXIT_LINE.search(line)
            if m:
                exits += 1
                self.exits[m.group(1)] += 1
                self.exit_kinds[m.group(2)] += 1
            if "stopped restarting it" in line:
                self.violation(f"{path.name}: {line.strip()}")
        return exits


# ---- one client of one mcpd ----

class Session:
    """One `mcpd stdio` process and its client: non-blocking pipes, pipelined calls."""

    def __init__(self, soak: Soak, cfg: Path, label: str, counted: bool = True):
        self.soak = soak
        self.label = label
        self.counted = counted  # calls of a vanishing client are not counted
        soak.session_seq += 1
        self.log_path = soak.tmp / f"mcpd-{soak.session_seq:04d}-{label}.log"
        self.tag = f"MCPD_SOAK_TAG={os.getpid()}-{soak.session_seq}-{soak.rng.getrandbits(32):08x}"
        env = dict(os.environ)
        env["MCPD_SOAK_TAG"] = self.tag.split("=", 1)[1]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [soak.args.mcpd, "stdio", "--config", str(cfg), "--log-level", "warning"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env)
        self.pid = self.proc.pid
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        os.set_blocking(self.wfd, False)
        os.set_blocking(self.rfd, False)
        self.out = bytearray()          # requests not yet written
        self.inbuf = b""                # the start of an answer line not yet complete
        self.eof = False                # mcpd's stdout ended
        self.closed_stdin = False
        self.next_id = 1
        self.outstanding: dict[int, str] = {}   # id -> tool
        self.answered = bytearray(1024)         # answered[id] = 1 once answered
        self.calls = 0
        self.replies: dict[str, dict] = {}      # answers to the string ids of the handshake
        self.zombie_seen: dict[int, float] = {}  # zombie child pid -> first sighting
        self.zombie_reported: set[int] = set()
        self.rss_peak = 0
        self.last_sample = 0.0
        self.stall_inflight: list[int] = []
        self.stall_hwm: list[int] = []

    # -- writing and reading --

    def send(self, obj: dict) -> None:
        self.out += json.dumps(obj, separators=(",", ":")).encode() + b"\n"

    def flush(self) -> bool:
        """Writes what mcpd takes now; False if mcpd's stdin is gone."""
        if not self.out or self.closed_stdin:
            return True
        try:
            n = os.write(self.wfd, self.out)
        except BlockingIOError:
            return True
        except BrokenPipeError:
            return False
        del self.out[:n]
        return True

    def close_stdin(self) -> None:
        if not self.closed_stdin:
            self.closed_stdin = True
            self.proc.stdin.close()

    def read_available(self) -> bool:
        """Reads and handles what mcpd wrote; False at its EOF."""
        try:
            data = os.read(self.rfd, 1 << 20)
        except BlockingIOError:
            return True
        if not data:
            self.eof = True
            return False
        lines = (self.inbuf + data).split(b"\n")
        self.inbuf = lines.pop()
        for line in lines:
            if line:
                self.on_message(line)
        return True

    def on_message(self, line: bytes) -> None:
        soak = self.soak
        try:
            msg = json.loads(line)
        except ValueError:
            soak.violation(f"{self.label}: mcpd wrote a line that is not JSON: {line[:200]!r}")
            return
        if not isinstance(msg, dict):
            soak.violation(f"{self.label}: mcpd wrote a non-object: {line[:200]!r}")
            return
        if "method" in msg:  # a notification (a request would need capabilities we did not declare)
            soak.notifications[msg["method"]] += 1
            if "id" in msg:
                soak.violation(f"{self.label}: mcpd sent a request: {line[:200]!r}")
            return
        ident = msg.get("id")
        if isinstance(ident, str):
            self.replies[ident] = msg
            return
        tool = self.outstanding.pop(ident, None) if isinstance(ident, int) else None
        if tool is None:
            if isinstance(ident, int) and 0 < ident < len(self.answered) and self.answered[ident]:
                soak.violation(f"{self.label}: duplicate answer for id {ident}: {line[:200]!r}")
            else:
                soak.violation(f"{self.label}: answer for an id never sent: {line[:200]!r}")
            return
        self.answered[ident] = 1
        result = msg.get("result")
        if result is not None:
            soak.results += 1
            if tool.endswith("__crash"):
                soak.violation(f"{self.label}: {tool} (id {ident}) answered with a result: {line[:200]!r}")
                return
            k = SMALL_FILLERS if ident % soak.args.big_every == 0 else ident % SMALL_FILLERS
            try:
                text = result["content"][0]["text"]
            except (KeyError, IndexError, TypeError):
                text = None
            if text != f"{ident} {FILLERS[k]}":
                soak.violation(f"{self.label}: wrong echo for id {ident} ({tool}): {line[:200]!r}")
            return
        message = str((msg.get("error") or {}).get("message", ""))
        kind = next((k for words, k in EXPECTED_ERRORS if words in message), None)
        if kind is None or tool.split("__")[0] not in soak.flaky:
            soak.errors["unexpected"] += 1
            soak.violation(f"{self.label}: unexpected error for id {ident} ({tool}): {line[:300]!r}")
        else:
            soak.errors[kind] += 1

    # -- calls --

    def request_bytes(self, ident: int, tool: str, crash: str | None = None) -> bytes:
        if crash:
            return (b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"%s",'
                    b'"arguments":{"how":"%s"}}}\n' % (ident, tool.encode(), crash.encode()))
        k = SMALL_FILLERS if ident % self.soak.args.big_every == 0 else ident % SMALL_FILLERS
        return (b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"%s",'
                b'"arguments":{"text":"%d %s"}}}\n' % (ident, tool.encode(), ident, FILLERS_RAW[k]))

    def queue_calls(self, n: int, tools: list[str] | None = None,
                    crashes: dict[int, tuple[str, str]] | None = None) -> None:
        """Queues `n` calls: tool of call k from the soak's table (or `tools`, cycled); the
        call numbered k in `crashes` is a crash call instead (k counted from this session's start)."""
        table = self.soak.table
        parts = []
        for _ in range(n):
            ident = self.next_id
            self.next_id += 1
            crash = crashes.get(self.calls) if crashes else None
            if crash:
                tool = crash[0]
                parts.append(self.request_bytes(ident, tool, crash[1]))
            else:
                tool = tools[ident % len(tools)] if tools else table[ident & 1023]
                parts.append(self.request_bytes(ident, tool))
            self.outstanding[ident] = tool
            self.calls += 1
        if self.next_id > len(self.answered):
            self.answered.extend(bytes(max(self.next_id - len(self.answered), len(self.answered))))
        self.out += b"".join(parts)
        if self.counted:
            self.soak.calls += n

    def sample(self, now: float) -> None:
        """Every 0.25 s: mcpd's peak RSS, and its children in state Z."""
        if now - self.last_sample < 0.25:
            return
        self.last_sample = now
        st = proc_status(self.pid)
        self.rss_peak = max(self.rss_peak, st.get("VmHWM", 0))
        zombies = {c for c in children(self.pid) if proc_state(c) == "Z"}
        for z in zombies:
            first = self.zombie_seen.setdefault(z, now)
            if first == now:
                self.soak.zombie_sightings += 1
            elif now - first >= 1.0 and z not in self.zombie_reported:
                self.zombie_reported.add(z)
                self.soak.zombies += 1
                self.soak.violation(f"{self.label}: child {z} of mcpd has been a zombie for over 1 s")
        self.zombie_seen = {z: t for z, t in self.zombie_seen.items() if z in zombies}

    def run(self, calls: int, depth: int, tools: list[str] | None = None,
            crashes: dict[int, tuple[str, str]] | None = None,
            stalls: list[int] | None = None, close_after_send: bool = False,
            progress: float = 0.0) -> bool:
        """Makes `calls` calls, at most `depth` in flight (outside stalls), and waits for every
        answer. `stalls`: numbers of calls answered (from this run's start) at which the client
        stops reading for --stall-seconds while it goes on writing. `close_after_send`: EOF on mcpd's
        stdin right after the last request, then read to EOF. False if mcpd died or got stuck."""
        args = self.soak.args
        stalls = sorted(stalls or [])
        target = self.calls + calls
        start_calls = self.calls
        stall_until = 0.0
        last_answer = time.monotonic()
        last_progress = last_answer
        progress_calls = self.calls
        while self.outstanding or self.calls < target or (self.out and not self.closed_stdin):
            now = time.monotonic()
            stalled = now < stall_until
            if stall_until and not stalled:  # a stall ends
                st = proc_status(self.pid)
                self.stall_inflight.append(len(self.outstanding))
                self.stall_hwm.append(st.get("VmHWM", 0))
                if progress:
                    print(f"  {self.label}: stall {len(self.stall_inflight)} ends with {len(self.outstanding):,} calls "
                          f"in flight; mcpd VmRSS {mib(st.get('VmRSS', 0))} MiB, VmHWM {mib(st.get('VmHWM', 0))} MiB",
                          flush=True)
                stall_until = 0.0
                last_answer = now
            if not stalled and stalls and self.calls - len(self.outstanding) - start_calls >= stalls[0]:
                stalls.pop(0)
                stall_until = now + args.stall_seconds
                stalled = True
            limit = args.stall_inflight if stalled else depth
            room = min(target - self.calls, limit - len(self.outstanding), 4096)
            if room > 0 and len(self.out) < (1 << 20):
                self.queue_calls(room, tools, crashes)
            if not self.flush():
                self.soak.violation(f"{self.label}: mcpd's stdin broke with {len(self.outstanding)} calls in flight")
                return False
            if close_after_send and self.calls >= target and not self.out:
                self.close_stdin()
            poller = select.poll()
            if self.out and not self.closed_stdin:
                poller.register(self.wfd, select.POLLOUT)
            if not stalled:
                poller.register(self.rfd, select.POLLIN)
            for fd, _ in poller.poll(100):
                if fd == self.rfd:
                    before = len(self.outstanding)
                    if not self.read_available():
                        if self.outstanding:
                            self.soak.violation(f"{self.label}: mcpd's stdout ended with "
                                                f"{len(self.outstanding)} calls unanswered")
                        return False
                    if len(self.outstanding) < before:
                        last_answer = now
            self.sample(now)
            if not stalled and self.outstanding and now - last_answer > args.stuck_seconds:
                self.soak.violation(f"{self.label}: no answer for {args.stuck_seconds:g} s with "
                                    f"{len(self.outstanding)} calls in flight")
                return False
            if progress and now - last_progress >= progress:
                rate = (self.calls - progress_calls) / (now - last_progress)
                st = proc_status(self.pid)
                print(f"  {self.label}: {self.calls - start_calls:,}/{calls:,} calls, {rate:,.0f} calls/s, "
                      f"mcpd rss {mib(st.get('VmRSS', 0))} MiB, fds {fd_count(self.pid)}, "
                      f"{len(self.outstanding):,} in flight{' (stalled)' if stalled else ''}", flush=True)
                last_progress, progress_calls = now, self.calls
        return True

    # -- handshake, settling, leaving --

    def request(self, ident: str, method: str, params: dict | None = None, timeout: float = 30.0) -> dict | None:
        msg = {"jsonrpc": "2.0", "id": ident, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        deadline = time.monotonic() + timeout
        while ident not in self.replies and time.monotonic() < deadline:
            self.flush()
            r, _, _ = select.select([self.rfd], [self.wfd] if self.out else [], [], 0.1)
            if r and not self.read_available():
                break
        return self.replies.pop(ident, None)

    def handshake(self) -> bool:
        init = self.request("init", "initialize", {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "soak", "version": "1.0"}})
        if not init or "result" not in init:
            self.soak.violation(f"{self.label}: initialize failed: {init}")
            return False
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        listed = self.request("list", "tools/list")
        names = {t["name"] for t in ((listed or {}).get("result") or {}).get("tools", [])}
        want = {"e0__echo", "e1__echo"} | {f"{f}__{t}" for f in self.soak.flaky for t in ("echo", "crash")}
        if not want <= names:
            self.soak.violation(f"{self.label}: tools/list lacks {sorted(want - names)}")
            return False
        return True

    def settle(self, timeout: float = 30.0) -> bool:
        """Waits until every backend is running and answers: one echo to each dying backend,
        again every 0.2 s until all succeed. Those calls count like the others."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            results_before = self.soak.results
            if not self.run(len(self.soak.flaky), len(self.soak.flaky), tools=[f"{f}__echo" for f in self.soak.flaky]):
                return False
            if self.soak.results - results_before == len(self.soak.flaky) and \
                    len(children(self.pid)) == len(self.soak.backends):
                return True
            time.sleep(0.2)
        self.soak.violation(f"{self.label}: backends not all running {timeout:g} s after the last crash")
        return False

    def vanish(self, calls: int) -> None:
        """A client that writes `calls` calls and disappears without reading an answer."""
        self.queue_calls(calls)
        deadline = time.monotonic() + 5
        while self.out and self.flush() and time.monotonic() < deadline:
            select.select([], [self.wfd], [], 0.1)
        self.finish(vanish=True)

    def finish(self, vanish: bool = False) -> int:
        """The client leaves (EOF, or gone altogether); mcpd must exit within 15 s, with status
        0 unless the client vanished, and leave no process behind. Returns the backend exits
        mcpd logged."""
        soak = self.soak
        self.close_stdin()
        if vanish:
            self.proc.stdout.close()
        else:
            deadline = time.monotonic() + 15
            while not self.eof and time.monotonic() < deadline:
                r, _, _ = select.select([self.rfd], [], [], 0.1)
                if r:
                    self.read_available()
            if self.outstanding:
                soak.violation(f"{self.label}: {len(self.outstanding)} calls unanswered at mcpd's EOF")
            self.proc.stdout.close()
        try:
            status = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            soak.violation(f"{self.label}: mcpd did not exit within 15 s of its client leaving; killed")
            self.proc.kill()
            status = self.proc.wait()
        if vanish:
            soak.vanished_status[status] += 1
        elif status != 0:
            soak.violation(f"{self.label}: mcpd exited with status {status} (log: {self.log_path})")
        tag = self.tag.encode()
        if tagged_pids(tag):
            soak.leftovers_first += 1
            time.sleep(1.0)
            left = tagged_pids(tag)
            if left:
                soak.leftovers += len(left)
                soak.violation(f"{self.label}: processes left after mcpd exited: {left}")
        return soak.read_log(self.log_path)


# ---- the three parts of the run ----

def short_sessions(soak: Soak) -> None:
    args = soak.args
    depths = (1, 4, 16, 64)
    for i in range(args.sessions):
        depth = depths[i % len(depths)]
        leave = "clean" if i % 2 == 0 else "eof-in-flight"
        crashes = None
        if i % 2 == 1 or (i // 2) % 2 == 1:  # three sessions in four: one crash call
            at = soak.rng.randrange(args.session_calls)
            crashes = {at: (f"{soak.rng.choice(soak.flaky)}__crash", soak.rng.choice(DEATHS))} if soak.flaky else None
        s = Session(soak, soak.cfg_short, f"short{i + 1}")
        ok = s.handshake() and s.run(args.session_calls, depth, crashes=crashes, close_after_send=(leave != "clean"))
        s.finish()
        soak.sessions[leave] += 1
        if args.verbose or not ok:
            print(f"  short session {i + 1}: depth {depth}, {leave}, "
                  f"{'crash ' + str(list(crashes.values())[0]) if crashes else 'no crash'}: {'ok' if ok else 'FAILED'}",
                  flush=True)
        if args.vanish_every and (i + 1) % args.vanish_every == 0:
            v = Session(soak, soak.cfg_short, f"vanish{(i + 1) // args.vanish_every}", counted=False)
            if v.handshake():
                v.vanish(200)
            else:
                v.finish(vanish=True)
            soak.sessions["vanished"] += 1
        if time.monotonic() - soak.t0 > args.max_seconds:
            return


def long_session(soak: Soak, calls: int) -> dict[str, int]:
    """The long session; returns its figures (baseline and end RSS/fds, peak)."""
    args = soak.args
    s = Session(soak, soak.cfg_long, "long")
    fig: dict[str, int] = {}
    if not s.handshake():
        s.finish()
        return fig
    warm = min(args.warmup, calls // 4)
    # Warm-up: steady traffic, one crash of every dying backend (at different points), one stall
    # with three quarters of the warm-up's calls left to write (as deep as the later ones).
    crashes = {warm // 8 + k * 97: (f"{f}__crash", DEATHS[k % len(DEATHS)]) for k, f in enumerate(soak.flaky)}
    ok = s.run(warm, args.depth, crashes=crashes, stalls=[warm // 4], progress=10) and s.settle()
    if ok:
        st = proc_status(s.pid)
        fig.update(rss_start=st["VmRSS"], hwm_start=st["VmHWM"], fds_start=fd_count(s.pid))
        print(f"  long: baseline after {s.calls:,} calls: rss {mib(fig['rss_start'])} MiB, "
              f"hwm {mib(fig['hwm_start'])} MiB, fds {fig['fds_start']}", flush=True)
        main = calls - s.calls - SETTLE_RESERVE  # room for the final settle's calls
        stalls = [main * (k + 1) // (args.stalls + 1) for k in range(args.stalls)]
        t = time.monotonic()
        ok = s.run(main, args.depth, stalls=stalls, progress=10)
        fig["main_seconds"] = int((time.monotonic() - t) * 1000)
        fig["main_calls"] = main
        # Back to a full set of running backends; a backend may die between the settle and the
        # count, so compare up to 5 times.
        for _ in range(5):
            if not ok or not s.settle():
                ok = False
                break
            st = proc_status(s.pid)
            fig.update(rss_end=st["VmRSS"], hwm_end=st["VmHWM"], fds_end=fd_count(s.pid))
            if fig["fds_end"] == fig["fds_start"]:
                break
        if ok and calls > s.calls:  # make the count exact
            ok = s.run(calls - s.calls, args.depth)
    fig["stall_inflight"] = max(s.stall_inflight, default=0)
    fig["stall_hwm"] = max(s.stall_hwm, default=0)
    fig["stalls"] = len(s.stall_inflight)
    fig["rss_peak"] = max(s.rss_peak, proc_status(s.pid).get("VmHWM", 0))
    fig["restarts"] = s.finish()
    if "fds_end" in fig:
        if fig["fds_end"] != fig["fds_start"]:
            soak.violation(f"long: open fds {fig['fds_start']} at the baseline, {fig['fds_end']} at the end")
        if fig["rss_end"] - fig["rss_start"] > args.rss_bound_mib * 1024:
            soak.violation(f"long: VmRSS {mib(fig['rss_start'])} MiB at the baseline, {mib(fig['rss_end'])} MiB "
                           f"at the end (bound +{args.rss_bound_mib:g} MiB)")
    elif ok:
        soak.violation("long: no end figures")
    return fig


def main() -> None:
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little")
    args.mcpd = str(Path(args.mcpd).resolve())
    if not os.access(args.mcpd, os.X_OK):
        fail(f"mcpd binary not found or not executable: {args.mcpd}\n  build it first (make release), or pass --mcpd PATH")
    if not os.access(Path(args.bin_dir) / "echo_backend", os.X_OK):
        fail(f"missing {Path(args.bin_dir) / 'echo_backend'}\n  build it with: make bench-tools")
    try:
        lo, _, hi = args.life.partition(":")
        if not 0 < float(lo) <= float(hi or lo):
            raise ValueError
    except ValueError:
        fail(f"bad --life {args.life!r}: expected MIN:MAX seconds, 0 < MIN <= MAX")
    short_total = args.sessions * args.session_calls
    long_calls = args.calls - short_total
    if args.depth < 1 or args.session_calls < 1 or args.sessions < 0 or args.flaky < 0:
        fail("--depth and --session-calls must be >= 1, --sessions and --flaky >= 0")
    if long_calls < 4 * SETTLE_RESERVE:
        fail(f"--calls must leave at least {4 * SETTLE_RESERVE:,} calls for the long session after "
             f"--sessions x --session-calls ({short_total:,})")

    tmp = Path(tempfile.mkdtemp(prefix="mcpd-soak-"))
    soak = Soak(args, tmp)
    soak.t0 = time.monotonic()
    print(f"mcpd soak: {args.calls:,} calls = {args.sessions} short sessions x {args.session_calls:,} + "
          f"one long session of {long_calls:,} (depth {args.depth}); backends e0 e1 (C echo) "
          f"{' '.join(soak.flaky)} (dying, {args.flaky_share:.0%} of calls); "
          f"{args.stalls} stalls of {args.stall_seconds:g} s; seed {args.seed}", flush=True)
    print(f"mcpd: {args.mcpd}; {os.cpu_count()} cpus, loadavg {os.getloadavg()[0]:.2f}; logs in {tmp}", flush=True)

    t = time.monotonic()
    short_sessions(soak)
    short_seconds = time.monotonic() - t
    short_calls = soak.calls
    print(f"  short sessions: {short_calls:,} calls in {short_seconds:.1f} s", flush=True)
    t = time.monotonic()
    fig = long_session(soak, args.calls - short_calls) if time.monotonic() - soak.t0 < args.max_seconds else {}
    long_seconds = time.monotonic() - t
    duration = time.monotonic() - soak.t0
    if duration > args.max_seconds:
        soak.violation(f"the run took {duration:.0f} s, over --max-seconds {args.max_seconds:g}")
    answered = soak.results + sum(soak.errors.values())
    if soak.calls != args.calls:
        soak.violation(f"{soak.calls:,} calls made, {args.calls:,} planned")
    if answered != soak.calls:
        soak.violation(f"{answered:,} answers for {soak.calls:,} calls")

    # ---- figures ----
    restarts = sum(soak.exits.values())
    main_rate = fig.get("main_calls", 0) / (fig["main_seconds"] / 1000) if fig.get("main_seconds") else 0
    print()
    print(f"calls             {soak.calls:,} in {duration:.1f} s: {soak.calls / duration:,.0f} calls/s overall; "
          f"short sessions {short_calls / short_seconds:,.0f} calls/s, "
          f"long session {(soak.calls - short_calls) / long_seconds:,.0f} calls/s "
          f"(main phase {main_rate:,.0f}, stalls included)")
    print(f"answers           {answered:,}: {soak.results:,} results, {sum(soak.errors.values()):,} errors; "
          f"missing/duplicated/unknown/wrong: see violations ({len(soak.violations)})")
    print("errors by kind    " + ("; ".join(f"{k}: {v:,}" for k, v in soak.errors.most_common()) or "none"))
    print(f"restarts seen     {restarts} backend exits in mcpd's logs, {fig.get('restarts', 0)} of them in the long "
          "session (" + ", ".join(f"{b} {n}" for b, n in sorted(soak.exits.items())) + "; "
          + ", ".join(f"{k}: {n}" for k, n in soak.exit_kinds.most_common()) + ")")
    print(f"sessions          {sum(soak.sessions.values()) - soak.sessions['vanished'] + 1} counted ("
          f"{soak.sessions['clean']} short clean, {soak.sessions['eof-in-flight']} short leaving with calls in flight, "
          f"1 long), {soak.sessions['vanished']} vanished clients (mcpd's exit status: "
          + (", ".join(f"{k} x{n}" for k, n in sorted(soak.vanished_status.items())) or "-") + ")")
    if fig.get("stalls"):
        print(f"stalls            {fig['stalls']} x {args.stall_seconds:g} s (1 in the warm-up); "
              f"most calls in flight at a stall's end "
              f"{fig['stall_inflight']:,}; mcpd VmHWM after a stall at most {mib(fig['stall_hwm'])} MiB")
    if "rss_end" in fig:
        print(f"long mcpd         VmRSS baseline {mib(fig['rss_start'])} MiB, end {mib(fig['rss_end'])} MiB "
              f"({(fig['rss_end'] - fig['rss_start']) / 1024:+.1f}, bound +{args.rss_bound_mib:g}); "
              f"VmHWM baseline {mib(fig['hwm_start'])}, end {mib(fig['hwm_end'])}, peak {mib(fig['rss_peak'])} MiB; "
              f"fds baseline {fig['fds_start']}, end {fig['fds_end']}")
    print(f"zombies           {soak.zombies} (children of mcpd in state Z for over 1 s; "
          f"{soak.zombie_sightings} transient sightings)")
    print(f"leftovers         {soak.leftovers} processes after mcpd exited "
          f"({soak.leftovers_first} sessions had one still exiting at the first look)")
    print(f"notifications     " + (", ".join(f"{k} {v}" for k, v in soak.notifications.items()) or "none"))
    print(f"duration          {duration:.1f} s (short sessions {short_seconds:.1f} s, long session {long_seconds:.1f} s)")
    print(f"result            {'ok' if not soak.violations else f'{len(soak.violations)} VIOLATIONS'}")
    for v in soak.violations[:20]:
        print(f"  {v}")
    print(f"soak_calls={soak.calls} soak_seconds={duration:.1f} soak_calls_per_s={soak.calls / duration:.0f} "
          f"soak_errors={sum(soak.errors.values())} soak_restarts={restarts} "
          f"soak_rss_start_kb={fig.get('rss_start', 0)} soak_rss_end_kb={fig.get('rss_end', 0)} "
          f"soak_rss_peak_kb={fig.get('rss_peak', 0)} soak_fds_start={fig.get('fds_start', 0)} "
          f"soak_fds_end={fig.get('fds_end', 0)} soak_zombies={soak.zombies} soak_leftovers={soak.leftovers} "
          f"soak_violations={len(soak.violations)}")
    if not args.keep and not soak.violations:
        for p in sorted(tmp.rglob("*"), reverse=True):
            p.rmdir() if p.is_dir() else p.unlink()
        tmp.rmdir()
    sys.exit(1 if soak.violations else 0)


if __name__ == "__main__":
    main()
