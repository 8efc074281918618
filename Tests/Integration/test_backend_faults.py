"""Backend faults from /work/shared/RELIABILITY.md that the other modules leave open: a fatal
start (item 3), the signal state backends start with (4), twenty backends crashing together
(12), an over-long backend line (14), a stderr flood (15), a backend that never answers (16),
several requests in flight when a backend exits (17), a backend that stops reading its stdin
(18), and a backend that exits during `initialize` beside a good one ("a crash during
initialize seen only as a 60 s client timeout").

Every test drives `mcpd stdio` with raw lines (`raw_mcpd`, or `start_mcpd` below when mcpd must
start with a given signal state). backends/hostile.py is the raw backend (starts in about 50 ms,
answers strictly in order; the modes `extra` and `terse` list its extra tools `sigstate` and
`stop_reading`), alpha the SDK one (starts in about 1 s). Each test ends within about 15 s even
when it fails, and kills what it started (the fixtures and `piddir`).
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcpd_helpers import (
    backend_script,
    hostile,
    LineProcess,
    pid_is_alive,
    pids_of,
    raw_members,
    recorded_pids,
    server_entry,
    wait_for_pidfiles,
)

TIMEOUT_CODE = -32001
KiB = 1 << 10

# Bits of /proc/<pid>/status Sig* masks: signal N is bit N-1.
def sigbit(sig: int) -> int:
    return 1 << (int(sig) - 1)


# CPython ignores these two itself at start-up, whatever it inherited.
PYTHON_OWN_IGNORES = sigbit(signal.SIGPIPE) | sigbit(signal.SIGXFSZ)


# --------------------------------------------------------------------------- helpers


def call_line(id_raw: str, tool: str, arguments: dict[str, Any] | None = None, meta: dict[str, Any] | None = None) -> str:
    params: dict[str, Any] = {"name": tool, "arguments": arguments or {}}
    if meta is not None:
        params["_meta"] = meta
    return '{"jsonrpc":"2.0","id":' + id_raw + ',"method":"tools/call","params":' + json.dumps(params, separators=(",", ":")) + "}"


def send_call(p: LineProcess, id_raw: str, tool: str, arguments: dict[str, Any] | None = None, **kw: Any) -> None:
    """Sends a tools/call without waiting for its answer."""
    p.send_raw(call_line(id_raw, tool, arguments, **kw))


def call(p: LineProcess, tool: str, arguments: dict[str, Any] | None = None, timeout: float = 10.0) -> tuple[str, dict[str, Any]]:
    line, msg, _ = p.request("tools/call", {"name": tool, "arguments": arguments or {}}, timeout=timeout)
    return line, msg


def text_of(line: str, msg: dict[str, Any]) -> str:
    assert "result" in msg, f"expected a result, got {line[:2000]}"
    return msg["result"]["content"][0]["text"]


def stats(p: LineProcess) -> dict[str, int]:
    return json.loads(text_of(*call(p, "alpha__stats")))


def wait_until(check: Callable[[], Any], timeout: float, what: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, what()
        time.sleep(0.05)


def proc_start_ticks(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat: the start time in clock ticks since boot."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def sig_masks(text: str) -> dict[str, int]:
    """{"SigBlk": mask, "SigIgn": mask, ...} from lines of /proc/<pid>/status."""
    out: dict[str, int] = {}
    for row in text.splitlines():
        key, _, value = row.partition(":")
        if key in ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt"):
            out[key.strip()] = int(value.strip(), 16)
    return out


class SignalledMcpd(LineProcess):
    """`mcpd stdio` like LineProcess, started with a preexec_fn (run in the child before exec)."""

    def __init__(self, argv: list[str], *, stderr_path: Path, env: dict[str, str], preexec_fn: Callable[[], None]) -> None:
        self.argv = list(argv)
        self.stderr_path = stderr_path
        self._stderr_file = open(stderr_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr_file,
                                     env=env, start_new_session=True, preexec_fn=preexec_fn)
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._next_id = 1000


@pytest.fixture
def start_mcpd(mcpd_bin: str, tmp_path: Path, mcpd_env: dict[str, str], piddir: Path) -> Iterator[Callable[..., SignalledMcpd]]:
    """start_mcpd(config, preexec_fn). Depends on piddir so that mcpd is killed before piddir's
    cleanup kills what it left behind."""
    started: list[SignalledMcpd] = []

    def start(config: Path, preexec_fn: Callable[[], None]) -> SignalledMcpd:
        p = SignalledMcpd([mcpd_bin, "stdio", "--config", str(config)], stderr_path=tmp_path / f"mcpd-{len(started)}.stderr",
                          env=mcpd_env, preexec_fn=preexec_fn)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


# --------------------------------------------------------------------------- item 3: a fatal start


@pytest.mark.parametrize("case", ["missing", "yaml-syntax", "no-command", "unknown-key"])
def test_fatal_stdio_start_exits_1_with_the_error_on_stderr_and_nothing_on_stdout(mcpd_bin, tmp_path, mcpd_env, piddir, case):
    """RELIABILITY 3: `mcpd stdio` that cannot start (no config file, or one it rejects) exits 1
    at once, says why on stderr (naming the file), writes nothing on stdout (not even an answer to
    the client's initialize, which is waiting on its stdin) and starts no backend."""
    config = tmp_path / "mcpd.yaml"
    python, script = json.dumps(sys.executable), json.dumps(backend_script("hostile"))
    env_block = f"    env:\n      MCPD_TEST_PIDDIR: {json.dumps(str(piddir))}\n"
    texts = {
        "yaml-syntax": f"servers:\n  h:\n    command: {python}\n    args: [{script}\n{env_block}",
        "no-command": f"servers:\n  h:\n    args: [{script}]\n{env_block}  ok:\n    command: {python}\n    args: [{script}]\n{env_block}",
        "unknown-key": f"servers:\n  h:\n    command: {python}\n    args: [{script}]\n    bogus_key: 1\n{env_block}",
    }
    if case != "missing":
        config.write_text(texts[case])
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                       "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
    started = time.monotonic()
    try:
        proc = subprocess.run([mcpd_bin, "stdio", "--config", str(config)], input=(init + "\n").encode(), capture_output=True,
                              env=mcpd_env, timeout=10, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"`mcpd stdio` with a {case} config did not exit within 10 s") from None
    elapsed = time.monotonic() - started
    out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    described = f"exit {proc.returncode} after {elapsed:.2f} s\n--- stdout\n{out[-2000:]}\n--- stderr\n{err[-2000:]}"
    assert proc.returncode == 1, f"a fatal start must exit 1: {described}"
    assert out == "", f"nothing may be written on stdout (the MCP channel): {described}"
    assert err.strip(), f"the error must be on stderr: {described}"
    assert "mcpd.yaml" in err, f"the error must name the config file: {described}"
    assert elapsed < 5, described
    assert not recorded_pids(piddir), f"a backend was started by a config that failed: {recorded_pids(piddir)}"


# --------------------------------------------------------------------------- item 4: signal state


def test_backends_start_with_default_signal_dispositions_and_an_empty_mask(start_mcpd, write_config, piddir, tmp_path):
    """RELIABILITY 4: mcpd is started with SIGUSR1 blocked and SIGUSR2 ignored, and ignores SIGPIPE
    itself; its backends must start with no signal blocked and none ignored. `probe` records
    /proc/self/status from grep, run by bash before it execs hostile (no Python in between, which
    ignores SIGPIPE itself; and not dash, which clears its signal mask); `h` is hostile, whose
    `sigstate` tool shows its own state."""
    bash = shutil.which("bash")
    assert bash, "the test needs bash"
    state_file = tmp_path / "probe-signals.txt"
    script = f"grep '^Sig' /proc/self/status > {shlex.quote(str(state_file))}; exec \"$0\" \"$@\""
    probe = server_entry("hostile", piddir)
    probe.update(command=bash, args=["-c", script, sys.executable, backend_script("hostile")])
    config = write_config({"servers": {"h": hostile(piddir, "extra"), "probe": probe}})

    def hostile_signal_state() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        # Signal 32, one of glibc's own real-time signals, whose sigaction() refuses it: only
        # the system call ignores (or resets) it. x86-64's rt_sigaction is number 13.
        if platform.machine() == "x86_64":
            action = (ctypes.c_ulong * 4)(1, 0, 0, 0)  # SIG_IGN, no flags, no restorer, no mask
            ctypes.CDLL(None, use_errno=True).syscall(13, 32, action, None, 8)

    # The probe sees what it inherits: run directly with that state, it shows both.
    direct = subprocess.run([bash, "-c", "grep '^Sig' /proc/self/status; true"], capture_output=True, text=True,
                            preexec_fn=hostile_signal_state, timeout=10)
    masks = sig_masks(direct.stdout)
    assert masks["SigBlk"] & sigbit(signal.SIGUSR1) and masks["SigIgn"] & sigbit(signal.SIGUSR2), (
        f"the probe does not see an inherited signal state: {direct.stdout!r}"
    )
    if platform.machine() == "x86_64":
        assert masks["SigIgn"] & (1 << 31), f"signal 32 was not ignored: {direct.stdout!r}"

    p = start_mcpd(config, preexec_fn=hostile_signal_state)
    p.initialize(timeout=10)
    with open(f"/proc/{p.proc.pid}/status") as f:
        own = sig_masks(f.read())
    assert own["SigIgn"] & sigbit(signal.SIGPIPE), f"mcpd does not ignore SIGPIPE: SigIgn={own['SigIgn']:016x}"

    wait_until(state_file.exists, 5, lambda: f"the probe did not record its signal state in {state_file}")
    probe_masks = sig_masks(state_file.read_text())
    assert probe_masks.get("SigBlk") == 0, (
        f"a backend started with signals blocked (SigBlk {probe_masks.get('SigBlk', -1):016x}; "
        f"SIGUSR1 is bit {sigbit(signal.SIGUSR1):#x}): {state_file.read_text()!r}"
    )
    assert probe_masks.get("SigIgn") == 0, (
        f"a backend started with signals ignored (SigIgn {probe_masks.get('SigIgn', -1):016x}; SIGPIPE is bit "
        f"{sigbit(signal.SIGPIPE):#x}, SIGUSR2 {sigbit(signal.SIGUSR2):#x}): {state_file.read_text()!r}"
    )

    text = text_of(*call(p, "h__sigstate"))
    masks = sig_masks(text)
    assert masks.get("SigBlk") == 0, f"hostile runs with signals blocked: {text!r}"
    assert masks.get("SigIgn", -1) & ~PYTHON_OWN_IGNORES == 0, (
        f"hostile runs with signals ignored beyond CPython's own SIGPIPE and SIGXFSZ: {text!r}"
    )


# --------------------------------------------------------------------------- item 12: twenty crash together


def test_twenty_backends_killed_together_restart_spread_out_and_all_come_back(raw_mcpd, write_config, piddir):
    """RELIABILITY 12: 20 hostile servers, all killed with SIGKILL at once: mcpd restarts each after
    a jittered backoff (250 ms +-20%), so the new processes are not forked in one burst (their
    start times span at least 40 ms), and every server serves again from a new process."""
    n = 20
    names = [f"h{i}" for i in range(n)]
    config = write_config({"servers": {name: hostile(piddir, timeout="10s") for name in names}})
    p = raw_mcpd(config)
    p.initialize(timeout=15)
    old = {name: int(text_of(*call(p, f"{name}__pid"))) for name in names}
    assert len(set(old.values())) == n and set(old.values()) == pids_of(piddir, "hostile"), (old, recorded_pids(piddir))

    for pid in old.values():
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    new = wait_until(lambda: (s := pids_of(piddir, "hostile") - set(old.values())) and len(s) >= n and s, 10,
                     lambda: f"only {len(pids_of(piddir, 'hostile')) - n} of {n} restarted within 10 s:\n{p.stderr_text()[-3000:]}")
    elapsed = time.monotonic() - killed
    assert len(new) == n, f"more restarts than servers: {sorted(new)}"
    ticks = {pid: proc_start_ticks(pid) for pid in new}
    hz = os.sysconf("SC_CLK_TCK")
    span_ms = (max(ticks.values()) - min(ticks.values())) * 1000 / hz
    delays = [int(m) for m in re.findall(r'backend "h\d+" restarts in (\d+) ms', p.stderr_text())]
    assert span_ms >= 40, (
        f"the 20 restarted processes were started within {span_ms:.0f} ms of one another (start times in ticks of "
        f"{1000 / hz:.0f} ms: {sorted(ticks.values())}): a thundering herd. Logged backoffs: {sorted(delays)}"
    )
    assert elapsed < 8, f"restarting took {elapsed:.1f} s"

    for name in names:
        line, msg = call(p, f"{name}__pid", timeout=10)
        pid = int(text_of(line, msg))
        assert pid in new and pid != old[name], f"{name} answered from pid {pid}; old {old[name]}, new {sorted(new)}"
    assert not any(pid_is_alive(pid) for pid in old.values())
    p.ping()


# --------------------------------------------------------------------------- item 14: the line cap


def test_backend_line_over_the_cap_stops_that_backend_only_and_it_restarts(raw_mcpd, write_config, piddir):
    """RELIABILITY 14: with gateway.max_message_size 1KiB, `long` answers a call with a 2,000-byte
    line: the call fails at once (not at its 30 s deadline) with an error naming the backend,
    `other` goes on serving, and `long` is restarted and serves the next small call."""
    config = write_config({
        "gateway": {"max_message_size": "1KiB"},
        "servers": {"long": hostile(piddir, "terse", timeout="30s"), "other": hostile(piddir, "terse", timeout="30s")},
    })
    p = raw_mcpd(config)
    p.initialize(timeout=10)
    old_long = int(text_of(*call(p, "long__pid")))
    other_pid = int(text_of(*call(p, "other__pid")))

    sent = time.monotonic()
    line, msg, _ = p.request("tools/call", {"name": "long__big", "arguments": {"bytes": 2000}}, timeout=10)
    elapsed = time.monotonic() - sent
    assert "error" in msg and "result" not in msg, f"an over-long answer must not be relayed: {line[:500]}"
    assert msg["error"]["code"] != TIMEOUT_CODE and elapsed < 3, f"failed after {elapsed:.2f} s, at its deadline? {line}"
    assert re.search(r"\blong\b", msg["error"]["message"]), f"the error must name the backend: {line}"
    # mcpd's log is written asynchronously: the line may follow the answer.
    wait_until(lambda: "longer than 1024 bytes" in p.stderr_text(), 3,
               lambda: f"mcpd did not log the over-long line:\n{p.stderr_text()[-3000:]}")

    assert text_of(*call(p, "other__echo", {"text": "still here"})) == "still here"
    line, msg = call(p, "long__pid", timeout=10)
    new_long = int(text_of(line, msg))
    assert new_long != old_long, "the backend that sent the over-long line was not restarted"
    assert text_of(*call(p, "long__echo", {"text": "small"})) == "small"
    assert int(text_of(*call(p, "other__pid"))) == other_pid, "the other backend was restarted too"
    assert not pid_is_alive(old_long), "the process that sent the over-long line is still running"


# --------------------------------------------------------------------------- item 15: stderr flood


def test_stderr_flood_is_rate_limited_and_calls_keep_being_answered(raw_mcpd, write_config, piddir):
    """RELIABILITY 15: `noisy` writes 1,000 stderr lines a second; mcpd logs at most 200 a second of
    them (StderrLog.linesPerSecond), says how many it dropped, and calls to it keep being answered
    within 1 s meanwhile."""
    config = write_config({"servers": {"noisy": hostile(piddir)}})
    p = raw_mcpd(config)
    p.initialize(timeout=10)
    flood = "[noisy] hostile stderr flood line"
    started = time.monotonic()
    assert text_of(*call(p, "noisy__flood_stderr", {"rate": 1000, "bytes": 100})) == "flooding stderr"
    samples: list[tuple[float, int]] = []
    calls, slowest = 0, 0.0
    while time.monotonic() - started < 4:
        sent = time.monotonic()
        line, msg = call(p, "noisy__echo", {"text": f"call {calls}"}, timeout=2)
        slowest = max(slowest, time.monotonic() - sent)
        assert text_of(line, msg) == f"call {calls}", line
        calls += 1
        samples.append((time.monotonic() - started, p.stderr_text().count(flood)))
        time.sleep(0.05)
    assert slowest < 1, f"a call took {slowest:.2f} s during the stderr flood"
    for at, logged in samples:
        # Windows of 1 s: within `at` seconds of the first flood line there are at most
        # floor(at) + 1 of them, 200 lines each.
        assert logged <= 200 * (int(at) + 1), (
            f"{logged} flood lines logged within {at:.2f} s of the flood's start (limit 200/s); samples {samples[::10]}"
        )
    log = p.stderr_text()
    logged = log.count(flood)
    assert logged >= 200, f"only {logged} flood lines logged in 4 s: is the backend's stderr relayed at all?\n{log[-2000:]}"
    dropped = [int(n) for n in re.findall(r"\[noisy\] \((\d+) stderr lines dropped", log)]
    assert dropped and sum(dropped) >= 1000, (
        f"no (or too small a) count of dropped stderr lines: {dropped}; {logged} logged; tail:\n{log[-2000:]}"
    )


# --------------------------------------------------------------------------- item 16: never answers


# A per-server timeout of 1 s bounds alpha's start-up too (its `initialize` is one of mcpd's
# requests), and alpha needs about 1 s to start: 2 s leaves room on a loaded machine.
ALPHA_TIMEOUT = 2.0


def test_call_never_answered_fails_at_the_deadline_and_the_backend_is_cancelled(raw_mcpd, write_config, piddir):
    """RELIABILITY 16: alpha's `sleep` 10 s with servers.alpha.timeout 2s: the call fails with
    -32001 naming the backend after about 2 s (not before), and alpha gets
    notifications/cancelled for it (its handler is cancelled)."""
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir, timeout=f"{ALPHA_TIMEOUT:g}s")}})
    p = raw_mcpd(config)
    p.initialize(timeout=10)
    assert stats(p) == {"sleep_started": 0, "sleep_cancelled": 0, "sleep_finished": 0}
    sent = time.monotonic()
    line, msg, _ = p.request("tools/call", {"name": "alpha__sleep", "arguments": {"seconds": 10}}, timeout=8)
    elapsed = time.monotonic() - sent
    assert "error" in msg and msg["error"]["code"] == TIMEOUT_CODE, f"after {elapsed:.2f} s: {line}"
    assert re.search(r"\balpha\b", msg["error"]["message"]), line
    assert ALPHA_TIMEOUT - 0.1 <= elapsed < ALPHA_TIMEOUT + 2, f"deadline {ALPHA_TIMEOUT} s, failed after {elapsed:.2f} s"
    s = wait_until(lambda: (s := stats(p))["sleep_cancelled"] >= 1 and s, 3,
                   lambda: f"alpha never saw notifications/cancelled for the expired call: {stats(p)}")
    assert s == {"sleep_started": 1, "sleep_cancelled": 1, "sleep_finished": 0}, s
    p.ping()


def test_progress_does_not_extend_the_deadline(raw_mcpd, write_config, piddir):
    """RELIABILITY 16: alpha's `slow` sends a progress notification every 0.25 s for 5 s; with
    servers.alpha.timeout 2s the call still fails with -32001 at about 2 s, though progress kept
    arriving until then; no late answer follows."""
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir, timeout=f"{ALPHA_TIMEOUT:g}s")}})
    p = raw_mcpd(config)
    p.initialize(timeout=10)
    progress: list[tuple[float, dict[str, Any]]] = []
    sent = time.monotonic()
    send_call(p, '"slow"', "alpha__slow", {"steps": 20, "delay": 0.25}, meta={"progressToken": "tok"})
    line, msg = p.recv_response(timeout=8, on_notification=lambda l, m: progress.append((time.monotonic() - sent, m)))
    elapsed = time.monotonic() - sent
    assert raw_members(line)["id"] == '"slow"', line
    assert "error" in msg and msg["error"]["code"] == TIMEOUT_CODE, f"after {elapsed:.2f} s: {line}"
    steps = [m for _, m in progress if m.get("method") == "notifications/progress"]
    assert len(steps) >= 4, f"the precondition failed: only {len(steps)} progress notifications before the deadline: {progress}"
    assert ALPHA_TIMEOUT - 0.1 <= elapsed < ALPHA_TIMEOUT + 1.5, (
        f"deadline {ALPHA_TIMEOUT} s, failed after {elapsed:.2f} s with {len(steps)} progress notifications relayed"
    )
    time.sleep(0.5)
    p.ping()  # request() checks the next response is the ping's: no late answer to "slow"


# --------------------------------------------------------------------------- item 17: in flight at the exit


def test_every_request_in_flight_fails_when_the_backend_exits_and_none_is_replayed(raw_mcpd, write_config, piddir):
    """RELIABILITY 17: three `sleep` calls in flight on alpha, then `crash`: all four fail within
    about 1 s of the crash, naming the backend; the restarted alpha serves `stats` and has started
    no sleep (nothing was replayed)."""
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir, timeout="30s")}})
    p = raw_mcpd(config)
    p.initialize(timeout=10)
    wait_for_pidfiles(piddir, ["alpha"])
    old = pids_of(piddir, "alpha")
    sleepers = ['"s1"', '"s2"', '"s3"']
    for id_raw in sleepers:
        send_call(p, id_raw, "alpha__sleep", {"seconds": 30})
    wait_until(lambda: stats(p)["sleep_started"] == 3, 5, lambda: f"the sleeps did not all reach alpha: {stats(p)}")

    crashed = time.monotonic()
    send_call(p, '"crash"', "alpha__crash")
    answers: dict[str, tuple[float, str, dict[str, Any]]] = {}
    while len(answers) < 4:
        remaining = crashed + 5 - time.monotonic()
        assert remaining > 0, f"only {sorted(answers)} answered within 5 s of the crash:\n{p.stderr_text()[-2000:]}"
        line, msg = p.recv_response(timeout=remaining)
        answers[raw_members(line)["id"]] = (time.monotonic() - crashed, line, msg)
    assert set(answers) == set(sleepers) | {'"crash"'}, answers
    for id_raw, (after, line, msg) in answers.items():
        assert "error" in msg and "result" not in msg, line
        assert msg["error"]["code"] != TIMEOUT_CODE, line
        assert re.search(r"\balpha\b", msg["error"]["message"]), f"the error must name the backend: {line}"
        assert after < 2, f"{id_raw} failed {after:.2f} s after the crash (it must fail at once): {line}"

    # The next call waits for the restart; the new process has started no sleep.
    assert stats(p) == {"sleep_started": 0, "sleep_cancelled": 0, "sleep_finished": 0}, "calls were replayed"
    assert pids_of(piddir, "alpha") - old, f"no new alpha process: {recorded_pids(piddir)}"
    time.sleep(0.5)
    assert stats(p)["sleep_started"] == 0, "calls were replayed"
    p.ping()


# --------------------------------------------------------------------------- item 18: stops reading stdin


def test_backend_that_stops_reading_gets_fast_overloaded_errors_and_others_serve(raw_mcpd, write_config, piddir):
    """RELIABILITY 18: `stuck` answers `stop_reading`, then never reads its stdin again. 100 calls
    of 128 KiB each to it fill its pipe and then mcpd's write queue (gateway.max_backend_queue
    4MiB): the rest fail at once with an error saying `stuck` is overloaded, long before their
    30 s deadline, while `other` answers as usual."""
    config = write_config({
        "gateway": {"max_backend_queue": "4MiB"},
        "servers": {"stuck": hostile(piddir, "extra", timeout="30s"), "other": hostile(piddir, timeout="30s")},
    })
    p = raw_mcpd(config)
    p.initialize(timeout=10)
    assert text_of(*call(p, "stuck__stop_reading")) == "stopped reading"

    pad = "x" * (128 * KiB)
    payload = "".join(call_line(f'"big-{i}"', "stuck__echo", {"text": pad}) + "\n" for i in range(100)).encode()
    started = time.monotonic()

    def write() -> None:
        try:
            assert p.proc.stdin is not None
            p.proc.stdin.write(payload)
            p.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    answers: dict[str, tuple[float, dict[str, Any]]] = {}
    while time.monotonic() - started < 8:
        try:
            line, msg = p.recv_response(timeout=1.5)
        except AssertionError:
            if not writer.is_alive():
                break  # everything sent, and quiet for 1.5 s
            continue
        answers[str(msg.get("id"))] = (time.monotonic() - started, msg)
    writer.join(5)
    assert not writer.is_alive(), "mcpd stopped reading its client while one backend was stuck"
    overloaded = {k: v for k, v in answers.items() if "overloaded" in v[1].get("error", {}).get("message", "")}
    others = {k: v for k, v in answers.items() if k not in overloaded}
    assert not others, f"answers other than 'overloaded' from a backend that reads nothing: {list(others.values())[:3]}"
    assert len(overloaded) >= 30, (
        f"only {len(overloaded)} of 100 calls of 128 KiB got 'overloaded' (a pipe and a 4 MiB queue hold about 40):\n"
        f"{p.stderr_text()[-2000:]}"
    )
    for _, (at, msg) in overloaded.items():
        assert re.search(r"\bstuck\b", msg["error"]["message"]), msg
        assert msg["error"]["code"] != TIMEOUT_CODE, msg
    first = min(at for at, _ in overloaded.values())
    assert first < 5, f"the first 'overloaded' error came {first:.2f} s after the calls were sent"

    sent = time.monotonic()
    assert text_of(*call(p, "other__echo", {"text": "fine"}, timeout=5)) == "fine"
    assert time.monotonic() - sent < 2, "the other backend was slow to answer"
    sent = time.monotonic()
    line, msg = call(p, "stuck__echo", {"text": "more"}, timeout=5)
    assert "overloaded" in msg.get("error", {}).get("message", "") and time.monotonic() - sent < 2, line
    p.ping()


# --------------------------------------------------------------------------- a crash during initialize


@pytest.mark.parametrize("command", [
    ["/bin/sh", "-c", "echo boom starting >&2; exit 3"],
    ["/bin/false"],
], ids=["sh-exit-3", "false"])
def test_backend_exiting_during_initialize_does_not_hold_up_the_first_initialize(raw_mcpd, write_config, piddir, command):
    """"A crash during initialize seen only as a 60 s client timeout" (supergateway #139): `boom`
    exits at once on every start (within a millisecond or two), beside alpha. With startup_wait
    at 30 s, the first initialize is answered well before (once alpha is ready, about 1 s, more
    on a loaded machine): boom's failed start settles it. alpha's tools are listed and callable,
    mcpd logs boom's exit and restarts it, and when the client closes its input mcpd exits 0
    within 5 s."""
    boom = {"command": command[0], "args": command[1:]}
    status = 3 if command[0] == "/bin/sh" else 1
    config = write_config({"gateway": {"startup_wait": "30s"}, "servers": {"alpha": server_entry("alpha", piddir), "boom": boom}})
    launched = time.monotonic()
    p = raw_mcpd(config)
    p.initialize(timeout=40)
    elapsed = time.monotonic() - launched
    assert elapsed < 15, (
        f"the first initialize was answered {elapsed:.2f} s after mcpd started (boom exits at once; mcpd's log "
        f"shows whether it ever noticed):\n{p.stderr_text()[-3000:]}"
    )
    _, msg, _ = p.request("tools/list")
    names = {t["name"] for t in msg["result"]["tools"]}
    assert "alpha__echo" in names and not any(n.startswith("boom__") for n in names), sorted(names)
    assert text_of(*call(p, "alpha__echo", {"text": "works"})) == "works"
    wait_until(lambda: 'restarts in' in p.stderr_text(), 3,
               lambda: f"mcpd never noticed that boom exited (no restart scheduled):\n{p.stderr_text()[-3000:]}")
    assert f'backend "boom" exited with status {status}' in p.stderr_text(), p.stderr_text()[-3000:]
    if status == 3:  # its stderr is relayed (the reason is not lost)
        wait_until(lambda: "[boom] boom starting" in p.stderr_text(), 3, lambda: p.stderr_text()[-3000:])
    p.close_stdin()
    closed = time.monotonic()
    code = p.wait(5)
    assert code == 0, (
        f"mcpd did not exit 0 within 5 s of its client closing stdin (exit {code}):\n{p.stderr_text()[-3000:]}"
    )
    assert time.monotonic() - closed < 5


def test_a_short_call_deadline_does_not_cap_the_start_up_handshake(raw_mcpd, write_config, piddir):
    """A server whose `timeout` (its call deadline) is shorter than its start: the handshake
    gets at least 60 s, so it becomes ready and serves instead of being killed and restarted at
    every start. hostile answers initialize after 1.5 s; its timeout is 1 s."""
    config = write_config({"servers": {"hostile": hostile(piddir, "slow-init", "1.5", timeout="1s")}})
    p = raw_mcpd(config)
    p.initialize(timeout=10)
    answer = p.request("tools/call", {"name": "hostile__echo", "arguments": {"text": "late but ready"}}, timeout=10)[1]
    assert "error" not in answer, answer
    assert "late but ready" in json.dumps(answer["result"]), answer
    assert len(pids_of(piddir, "hostile")) == 1, "the backend was restarted: " + p.stderr_text()
    assert "did not answer initialize" not in p.stderr_text()
