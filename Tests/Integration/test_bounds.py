"""Issue 11, "bounded everywhere": the ten findings, one test each (finding 8 has two).

Each test fails against a gateway that blocks on its own stderr, queues without a byte budget,
ignores a broken backend stdin, lets processes outlive it, logs secrets, loads configs in
quadratic time, keeps the soft open-file limit or accepts invalid UTF-8. The memory tests read
mcpd's peak resident size (VmHWM) from /proc/<pid>/status. Every test ends within about 20 s
even when it fails, and kills what it started (the `start_mcpd` fixture and `piddir`).

Most tests use backends/hostile.py, a raw JSON-RPC backend whose misbehaviour is its argument.
"""

from __future__ import annotations

import json
import os
import queue
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcpd_helpers import (
    hostile,
    kill_group,
    LineProcess,
    pid_is_alive,
    recorded_pids,
    server_entry,
    wait_for_pidfiles,
)

MiB = 1 << 20
SECRET = "s3cr3t-value-9f8e"


# --------------------------------------------------------------------------- helpers


def vm_hwm_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for row in f:
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def run_mcpd(mcpd_bin: str, *args: str, env: dict[str, str] | None = None, timeout: float = 10):
    try:
        return subprocess.run([mcpd_bin, *args], stdin=subprocess.DEVNULL, capture_output=True, env=env,
                              timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"`mcpd {' '.join(args)}` did not finish within {timeout}s") from exc


def describe(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    return f"exit {proc.returncode}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}"


def send_in_background(p: LineProcess, data: bytes) -> threading.Thread:
    """Write to mcpd's stdin from a thread: mcpd may (rightly) stop reading it for a while."""

    def write() -> None:
        try:
            assert p.proc.stdin is not None
            p.proc.stdin.write(data)
            p.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass

    t = threading.Thread(target=write, daemon=True)
    t.start()
    return t


def request_line(ident: Any, method: str, params: Any = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": ident, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


class Mcpd(LineProcess):
    """`mcpd stdio` like LineProcess, with what these tests need besides: stderr a pipe that
    nobody reads until drain_stderr(), stdout read only while `reading` is set, a preexec_fn."""

    def __init__(self, argv: list[str], *, stderr_path: Path, env: dict[str, str], stderr_pipe: bool = False,
                 preexec_fn: Callable[[], None] | None = None) -> None:
        self.argv = list(argv)
        self.stderr_path = stderr_path
        self._stderr_file = open(stderr_path, "ab")
        self.reading = threading.Event()
        self.reading.set()
        self._drain: threading.Thread | None = None
        self._drained = bytearray()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if stderr_pipe else self._stderr_file,
            env=env,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._next_id = 1000

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            self.reading.wait()
            line = self.proc.stdout.readline()
            if not line:
                break
            self._lines.put(line)
        self._lines.put(None)

    def drain_stderr(self) -> None:
        """Start reading the stderr pipe (into the .stderr file, for stderr_text())."""
        assert self.proc.stderr is not None and self._drain is None

        def drain() -> None:
            fd = self.proc.stderr.fileno()
            while True:
                try:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        return
                    self._stderr_file.write(chunk)
                    self._stderr_file.flush()
                except (OSError, ValueError):
                    return

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()

    def kill(self) -> None:
        if self.proc.poll() is None:
            kill_group(self.proc.pid)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.reading.set()  # let the stdout reader run to EOF
        if self._drain is not None:
            self._drain.join(5)
        if self.proc.stderr is not None and (self._drain is None or not self._drain.is_alive()):
            self.proc.stderr.close()
        self._stderr_file.close()


@pytest.fixture
def start_mcpd(mcpd_bin: str, tmp_path: Path, mcpd_env: dict[str, str], piddir: Path) -> Iterator[Callable[..., Mcpd]]:
    """start_mcpd(config, env=None, stderr_pipe=False, preexec_fn=None). Depends on piddir so that
    mcpd is killed before piddir's cleanup kills the backends it leaves behind."""
    started: list[Mcpd] = []

    def start(config: Path, *, env: dict[str, str] | None = None, **options: Any) -> Mcpd:
        p = Mcpd([mcpd_bin, "stdio", "--config", str(config)], stderr_path=tmp_path / f"mcpd-{len(started)}.stderr",
                 env=env if env is not None else mcpd_env, **options)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


# --------------------------------------------------------------------------- 1. logging never blocks


def test_logging_never_blocks_when_nobody_reads_stderr(start_mcpd, write_config, piddir):
    """mcpd's stderr is a pipe nobody reads and a backend floods its own stderr (500 lines of 2,000
    bytes a second): mcpd logs 200 of them a second, 400 KB/s, filling the 64 KiB pipe at once and
    any sensible log queue within the 6 s. Calls must go on being answered; once the reader comes
    back, mcpd says how many log lines it dropped."""
    config = write_config({"servers": {"hostile": hostile(piddir)}})
    p = start_mcpd(config, stderr_pipe=True)
    p.initialize(timeout=10)
    _, msg, _ = p.request("tools/call", {"name": "hostile__flood_stderr", "arguments": {"rate": 500, "bytes": 2000}})
    assert msg["result"]["content"][0]["text"] == "flooding stderr", msg
    start = time.monotonic()
    calls, slowest = 0, 0.0
    while time.monotonic() - start < 6:
        sent = time.monotonic()
        try:
            _, msg, _ = p.request("tools/call", {"name": "hostile__echo", "arguments": {"text": f"call {calls}"}}, timeout=2)
        except AssertionError:
            raise AssertionError(
                f"call {calls}, {sent - start:.1f}s into the stderr flood, not answered within 2 s "
                "(mcpd blocked writing its log to a full stderr pipe?)"
            ) from None
        slowest = max(slowest, time.monotonic() - sent)
        assert msg["result"]["content"][0]["text"] == f"call {calls}", msg
        calls += 1
        time.sleep(0.05)
    p.drain_stderr()
    deadline = time.monotonic() + 5
    while "log lines dropped" not in p.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = p.stderr_text()
    assert re.search(r"\d+ log lines dropped", log), (
        f"{calls} calls answered (slowest {slowest:.2f}s), but no counted \"N log lines dropped\" line on stderr "
        f"once it was read again; its tail:\n{log[-3000:]}"
    )


# --------------------------------------------------------------------------- 2. a client that stops reading


def test_client_that_stops_reading_bounds_memory(start_mcpd, write_config, piddir):
    """300 calls answered with 1 MiB each while the client reads nothing: mcpd must stop reading
    the backend rather than queue 300 MiB; when the client reads again, every answer arrives once."""
    config = write_config({"servers": {"hostile": hostile(piddir)}})
    p = start_mcpd(config)
    p.initialize(timeout=10)
    p.reading.clear()  # the reader takes at most one more line, then waits
    requests = b"".join(
        request_line(f"big-{i}", "tools/call", {"name": "hostile__big", "arguments": {"bytes": MiB}}) for i in range(300)
    )
    writer = send_in_background(p, requests)
    time.sleep(5)
    hwm = vm_hwm_mib(p.proc.pid)
    assert p.proc.poll() is None, f"mcpd exited with {p.proc.returncode}"
    assert hwm < 150, f"mcpd's VmHWM is {hwm:.0f} MiB with a client that stopped reading 300 answers of 1 MiB (bound: 150)"

    p.reading.set()
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + 15
    while sum(seen.values()) < 300:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"only {sum(seen.values())} of 300 answers within 15 s of reading again"
        _, msg = p.recv_response(timeout=remaining)
        assert "result" in msg, str(msg)[:500]
        assert len(msg["result"]["content"][0]["text"]) == MiB, f"answer {msg['id']} is not 1 MiB"
        seen[msg["id"]] += 1
    writer.join(5)
    assert set(seen) == {f"big-{i}" for i in range(300)} and set(seen.values()) == {1}, seen
    hwm = vm_hwm_mib(p.proc.pid)
    assert hwm < 150, f"mcpd's VmHWM reached {hwm:.0f} MiB while relaying the 300 answers (bound: 150)"
    p.ping()


# --------------------------------------------------------------------------- 3. frames held during start-up


def test_frames_held_during_start_up_are_bounded_in_bytes(start_mcpd, write_config, piddir):
    """While the backend takes 3 s to answer initialize, the client sends 40 pings of 15 MiB each
    (under the 16 MiB max_message_size). mcpd must stop reading the client once the held bytes
    pass its budget, not hold 600 MiB, and answer every ping once the backend is ready."""
    config = write_config({"servers": {"hostile": hostile(piddir, "slow-init", "3")}})
    p = start_mcpd(config)
    init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bounds", "version": "0"}}
    head = b'{"jsonrpc":"2.0","method":"ping","params":{"pad":"' + b"x" * (15 * MiB) + b'"},"id":'
    p.send_raw(request_line("init", "initialize", init) + b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')

    def pings() -> Iterator[bytes]:
        for i in range(40):
            yield head + b'"ping-%d"}\n' % i

    def write() -> None:
        try:
            assert p.proc.stdin is not None
            for chunk in pings():
                p.proc.stdin.write(chunk)
            p.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    answers: dict[str, Any] = {}
    deadline = time.monotonic() + 20
    while len(answers) < 41 and time.monotonic() < deadline:
        try:
            _, msg = p.recv_response(timeout=max(0.01, deadline - time.monotonic()))
        except AssertionError:
            break
        assert msg.get("id") not in answers, f"answered twice: {msg}"
        answers[msg.get("id")] = msg
    hwm = vm_hwm_mib(p.proc.pid) if p.proc.poll() is None else float("nan")
    assert hwm < 200, f"mcpd's VmHWM is {hwm:.0f} MiB after 40 pings of 15 MiB held during start-up (bound: 200)"
    assert "result" in answers.get("init", {}), answers.get("init")
    missing = [f"ping-{i}" for i in range(40) if f"ping-{i}" not in answers]
    assert not missing, f"{len(missing)} of 40 pings not answered within 20 s: {missing[:5]}..."
    errors = {k: v for k, v in answers.items() if "result" not in v}
    assert not errors, f"pings answered with an error instead of being read later: {list(errors.values())[:2]}"
    writer.join(5)


# --------------------------------------------------------------------------- 4. a backend that floods requests


def test_backend_flooding_pings_without_reading_bounds_memory(start_mcpd, write_config, piddir):
    """A backend stops reading its stdin and sends ping requests (of 550 bytes, ids of 512) as fast
    as it can: mcpd's replies must count against that backend's stdin watermark (past it, mcpd
    leaves its requests unanswered and says so in the log), not pile up. The long ids make the
    debug build's queue grow past the bound too."""
    config = write_config({"servers": {"hostile": hostile(piddir)}})
    p = start_mcpd(config)
    p.initialize(timeout=10)
    _, msg, _ = p.request("tools/call", {"name": "hostile__flood_pings", "arguments": {"id_bytes": 512}}, timeout=10)
    assert msg["result"]["content"][0]["text"] == "flooding", msg
    time.sleep(5)
    assert p.proc.poll() is None, f"mcpd exited with {p.proc.returncode}"
    hwm = vm_hwm_mib(p.proc.pid)
    assert hwm < 100, f"mcpd's VmHWM is {hwm:.0f} MiB after 5 s of a backend flooding pings it never reads answers to (bound: 100)"
    p.ping(timeout=5)


def test_large_answers_while_the_backend_input_is_full_never_deadlock(start_mcpd, write_config, piddir):
    """Six 1 MB echo calls sent at once to one single-threaded backend (hostile, which reads a line,
    then writes its answer with blocking writes): more than the 4 MiB mcpd queues for a backend's
    input here (gateway.max_backend_queue). The backend blocks writing its 1 MB answer and reads no more input until that write is
    done, so mcpd must keep reading its answers while its input is full (it used to stop, and both
    waited for good). Every call is answered within 60 s: the echo, byte for byte, or an
    `overloaded` error for calls refused while the queue was over its bound; at least one echoes;
    mcpd still answers a ping."""
    config = write_config({"gateway": {"max_backend_queue": "4MiB"}, "servers": {"hostile": hostile(piddir)}})
    p = start_mcpd(config)
    p.initialize(timeout=20)
    text = ("0123456789abcdefé" * 62_000)[:1_000_000]
    ids = [p.new_id() for _ in range(6)]
    for call_id in ids:
        p.send({"jsonrpc": "2.0", "id": call_id, "method": "tools/call", "params": {"name": "hostile__echo", "arguments": {"text": text}}})
    answers: dict[Any, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    while len(answers) < len(ids):
        _, msg = p.recv_response(timeout=max(0.1, deadline - time.monotonic()))
        answers[msg["id"]] = msg
    echoed = 0
    for call_id in ids:
        msg = answers[call_id]
        if "result" in msg:
            assert msg["result"]["content"][0]["text"] == text, f"call {call_id}: the echo differs"
            echoed += 1
        else:
            assert "overloaded" in msg["error"]["message"], msg["error"]
    assert echoed >= 1, answers
    p.ping(timeout=10)


# --------------------------------------------------------------------------- 5. a backend whose stdin broke


def test_backend_whose_stdin_broke_is_treated_as_crashed(start_mcpd, write_config, piddir):
    """The backend closes its stdin but stays alive: the next call fails at once (not after the
    30 s deadline) naming the backend, and the backend is restarted. (A gateway that notices the
    broken pipe before that call, and has restarted the backend already, may serve it instead.)"""
    config = write_config({"servers": {"hostile": hostile(piddir, timeout="30s")}})
    p = start_mcpd(config)
    p.initialize(timeout=10)
    first = {pid for pid, name in wait_for_pidfiles(piddir, ["hostile"]).items() if name == "hostile"}
    _, msg, _ = p.request("tools/call", {"name": "hostile__close_stdin", "arguments": {}}, timeout=10)
    assert msg["result"]["content"][0]["text"] == "closed", msg

    sent = time.monotonic()
    try:
        _, msg, _ = p.request("tools/call", {"name": "hostile__echo", "arguments": {"text": "after"}}, timeout=2)
    except AssertionError:
        raise AssertionError(
            "a call to a backend whose stdin is closed was not answered within 2 s (it waits out the 30 s deadline?)"
        ) from None
    assert time.monotonic() - sent < 2
    if "result" in msg:
        # Also right: mcpd saw the broken pipe before this call and had restarted the backend
        # already, so the call was held for the new process and served by it.
        assert msg["result"]["content"][0]["text"] == "after", msg
        assert {pid for pid, name in recorded_pids(piddir).items() if name == "hostile"} - first, (
            f"answered, but by no new process: {msg}"
        )
    else:
        assert "hostile" in msg["error"]["message"], f"expected an error naming the backend: {msg}"

    deadline = time.monotonic() + 5
    while not {pid for pid, name in recorded_pids(piddir).items() if name == "hostile"} - first:
        assert time.monotonic() < deadline, f"no new hostile process within 5 s: {recorded_pids(piddir)}"
        time.sleep(0.05)
    while True:  # the restarted process may still be initialising
        _, msg, _ = p.request("tools/call", {"name": "hostile__echo", "arguments": {"text": "again"}}, timeout=5)
        if "result" in msg or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    assert msg.get("result", {}).get("content", [{}])[0].get("text") == "again", msg


# --------------------------------------------------------------------------- 6. no process outlives mcpd


def test_backend_ignoring_stdin_eof_dies_with_a_killed_mcpd(start_mcpd, write_config, piddir):
    """kill -9 of mcpd: a backend that ignores stdin EOF must still die (PR_SET_PDEATHSIG)."""
    config = write_config({"servers": {"hostile": hostile(piddir, "ignore-eof")}})
    p = start_mcpd(config)
    p.initialize(timeout=10)
    pid = next(pid for pid, name in wait_for_pidfiles(piddir, ["hostile"]).items() if name == "hostile")
    os.kill(p.proc.pid, signal.SIGKILL)
    p.proc.wait(5)
    assert wait_dead(pid, 3), f"backend {pid} (ignores stdin EOF) still alive 3 s after mcpd was killed with SIGKILL"


def test_setsid_grandchild_is_stopped_at_shutdown(start_mcpd, write_config, piddir):
    """A backend's grandchild in its own session escapes the group signals: mcpd, a child
    subreaper, adopts it when the backend exits and stops it at shutdown."""
    config = write_config({"servers": {"hostile": hostile(piddir, "setsid-grandchild")}})
    p = start_mcpd(config)
    p.initialize(timeout=10)
    pids = wait_for_pidfiles(piddir, ["hostile", "hostilegrandchild"])
    grandchild = next(pid for pid, name in pids.items() if name == "hostilegrandchild")
    p.close_stdin()
    assert p.wait(10) == 0, p.stderr_text()
    assert wait_dead(grandchild, 5), f"the backend's setsid grandchild {grandchild} still alive 5 s after mcpd exited"


# --------------------------------------------------------------------------- 7. secrets


def test_expanded_secret_in_args_is_redacted_in_the_log(start_mcpd, write_config, piddir, mcpd_env):
    entry = hostile(piddir)
    entry["args"].append("--api-key=${SECRET}")
    config = write_config({"servers": {"hostile": entry}})
    p = start_mcpd(config, env=dict(mcpd_env, SECRET=SECRET))
    p.initialize(timeout=10)
    _, msg, _ = p.request("tools/call", {"name": "hostile__argv", "arguments": {}})
    assert f"--api-key={SECRET}" in json.loads(msg["result"]["content"][0]["text"]), msg  # the backend gets it
    p.close_stdin()
    assert p.wait(10) == 0
    log = p.stderr_text()
    started = [row for row in log.splitlines() if 'backend "hostile" started' in row]
    assert SECRET not in log, f"the expanded ${{SECRET}} is in mcpd's log:\n{log}"
    assert started and "***" in started[0], f"the started line does not show the secret as ***:\n{log}"


@pytest.mark.parametrize(
    "text",
    [
        'servers:\n  x:\n    command: python3\n    timeout: "${SECRET}"\n',
        'gateway:\n  max_message_size: "${SECRET}"\nservers:\n  x:\n    command: python3\n',
        "backends:\n  x:\n    command: \"python3 '${SECRET}\"\n",
    ],
    ids=["duration", "size", "unbalanced-quote"],
)
def test_check_never_prints_an_expanded_secret(mcpd_bin, write_config, mcpd_env, text):
    config = write_config(text)
    proc = run_mcpd(mcpd_bin, "check", "--config", str(config), env=dict(mcpd_env, SECRET=SECRET))
    assert proc.returncode != 0, describe(proc)
    output = proc.stdout + proc.stderr
    assert SECRET.encode() not in output, f"`mcpd check` printed the expanded ${{SECRET}}\n{describe(proc)}"


# --------------------------------------------------------------------------- 8. linear config loading


def big_env_config(keys: int, duplicate_of: int | None = None) -> tuple[str, int]:
    """A config whose servers.x.env has `keys` keys; the last one repeats key `duplicate_of` when
    given. Returns the text and the line of the last key."""
    head = f"servers:\n  x:\n    command: {json.dumps(sys.executable)}\n    args: [\"x.py\"]\n    env:\n"
    rows = [f"      K{i:05d}: v{i}\n" for i in range(keys)]
    if duplicate_of is not None:
        rows[-1] = f"      K{duplicate_of:05d}: again\n"
    return head + "".join(rows), head.count("\n") + keys


def test_check_loads_a_40000_key_mapping_in_linear_time(mcpd_bin, write_config, mcpd_env):
    text, _ = big_env_config(40_000)
    config = write_config(text)
    started = time.monotonic()
    proc = run_mcpd(mcpd_bin, "check", "--config", str(config), env=mcpd_env, timeout=10)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, describe(proc)
    assert elapsed < 3, f"`mcpd check` took {elapsed:.1f}s on a mapping of 40,000 keys (bound: 3 s)"


def test_check_reports_a_duplicate_among_40000_keys_with_its_line(mcpd_bin, write_config, mcpd_env):
    text, line = big_env_config(40_000, duplicate_of=5)
    config = write_config(text)
    started = time.monotonic()
    proc = run_mcpd(mcpd_bin, "check", "--config", str(config), env=mcpd_env, timeout=10)
    elapsed = time.monotonic() - started
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode != 0, describe(proc)
    assert f"mcpd.yaml:{line}:" in err and "duplicate" in err and "K00005" in err, describe(proc)
    assert elapsed < 3, f"`mcpd check` took {elapsed:.1f}s on a mapping of 40,000 keys (bound: 3 s)"


# --------------------------------------------------------------------------- 9. RLIMIT_NOFILE


def test_soft_open_file_limit_is_raised_to_the_hard_limit(start_mcpd, write_config, piddir):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard == resource.RLIM_INFINITY or hard >= 4096, f"the test needs a hard RLIMIT_NOFILE of 4096, have {hard}"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 4096))

    config = write_config({"servers": {"hostile": hostile(piddir)}})
    p = start_mcpd(config, preexec_fn=limit)
    p.initialize(timeout=10)
    with open(f"/proc/{p.proc.pid}/limits") as f:
        row = next(r for r in f if r.startswith("Max open files"))
    soft, hard_now = row.split()[3:5]
    assert hard_now == "4096", row
    assert soft == "4096", f"mcpd kept its soft open-file limit: {row.strip()}"


# --------------------------------------------------------------------------- 10. invalid UTF-8


def test_check_rejects_invalid_utf8_with_line_and_column(mcpd_bin, tmp_path, mcpd_env):
    config = tmp_path / "mcpd.yaml"
    config.write_bytes(
        b"servers:\n"
        b"  x:\n"
        b"    command: python3\n"
        b"    args: [\"x.py\"]\n"
        b"    description: \"caf\xff au lait\"\n"
    )
    proc = run_mcpd(mcpd_bin, "check", "--config", str(config), env=mcpd_env)
    output = (proc.stdout + proc.stderr).decode(errors="replace")
    assert proc.returncode != 0, f"invalid UTF-8 accepted\n{describe(proc)}"
    assert re.search(r"mcpd\.yaml:5:\d+", output) and "utf-8" in output.lower(), describe(proc)
