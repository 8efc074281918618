"""Issue 12, "restarts that heal": a backend that exits unexpectedly is restarted with backoff, and
a request that arrives while it restarts (backoff, starting, initializing) waits for the new
process, bounded by its deadline (servers.<name>.timeout), instead of being refused with
"restarting ... try again shortly". A crash loop (5 exits within 60 s) opens the circuit: calls
fail at once naming the backend and why, and so do the requests that were waiting for it. A
client that closes its input while a request waits still gets that request answered or failed,
and mcpd exits 0 within the drain timeout.

Every test drives `mcpd stdio` with raw lines (the `raw_mcpd` fixture). The first test sends its
call right after mcpd answered the crashing call: mcpd may answer it as soon as the backend's
stdout ends, before it has reaped the process, and a request that arrives in between must wait
for the restart like any other, not go to the dying process. The other tests send their requests
once mcpd has logged the exit (`wait_exit_handled`), so that each checks its own behaviour, not
that window. alpha is the SDK backend (starts in about 1 s); hostile is the raw one (starts in
about 50 ms, answers strictly in order), with the modes slow-restart and crash-loop that change
only the processes started after its `crash` tool ran. Each test ends within about 15 s even when
it fails.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from mcpd_helpers import hostile, LineProcess, pid_is_alive, pids_of, raw_members, recorded_pids, server_entry, wait_for_pidfiles

TIMEOUT_CODE = -32001


# --------------------------------------------------------------------------- helpers


def send_call(p: LineProcess, id_raw: str, tool: str, arguments: dict[str, Any] | None = None) -> None:
    """Sends a tools/call without waiting for its answer."""
    p.send_raw('{"jsonrpc":"2.0","id":' + id_raw + ',"method":"tools/call","params":'
               + json.dumps({"name": tool, "arguments": arguments or {}}, separators=(",", ":")) + "}")


def recv_answer(p: LineProcess, id_raw: str, timeout: float) -> tuple[str, dict[str, Any]]:
    """The next response, which must carry `id_raw` byte for byte."""
    line, msg = p.recv_response(timeout=timeout)
    assert raw_members(line).get("id") == id_raw, f"expected the answer to {id_raw}, got {line}"
    return line, msg


def crash(p: LineProcess, server: str, timeout: float = 5.0) -> dict[str, Any]:
    """Calls `<server>__crash`: the process exits in the middle of the call, which fails naming the
    backend. mcpd may answer as soon as the backend's stdout ends, before it has reaped the process
    (`wait_exit_handled` waits for that)."""
    line, msg = p.request("tools/call", {"name": f"{server}__crash", "arguments": {}}, id_raw='"crash"',
                          timeout=timeout)[:2]
    assert "error" in msg and "result" not in msg, f"the crashing call must fail: {line}"
    assert server in msg["error"]["message"], f"the crash error must name the backend: {line}"
    return msg


def wait_exit_handled(p: LineProcess, server: str, count: int = 1, timeout: float = 5.0) -> None:
    """Waits until mcpd has logged `count` exits of `server` (`backend "<server>" exited with ...`):
    it has then reaped the process and the backend is restarting (or its circuit is open)."""
    needle = f'backend "{server}" exited with'
    deadline = time.monotonic() + timeout
    while p.stderr_text().count(needle) < count:
        assert time.monotonic() < deadline, (
            f"mcpd did not log exit {count} of {server} within {timeout} s; stderr:\n{p.stderr_text()[-3000:]}"
        )
        time.sleep(0.02)


def assert_circuit_error(line: str, msg: dict[str, Any], server: str) -> None:
    """An error for a call to a backend whose circuit is open: it names the backend and why."""
    assert "error" in msg and "result" not in msg, f"a call to a backend whose circuit is open must fail: {line}"
    error = msg["error"]
    assert error["code"] != TIMEOUT_CODE, f"failed at its deadline, not because the circuit is open: {line}"
    assert error["code"] != -32602, (
        f"the tools of a backend whose circuit is open must stay routable, so that a call gets the circuit's "
        f"reason (naming the backend and its exits), not \"unknown tool\": {line}"
    )
    assert re.search(rf"\b{re.escape(server)}\b", error["message"]), f"the error must name the backend {server}: {line}"
    assert says_why(error["message"]), f"the error must say why (the backend exited or crashed): {line}"


def text_of(line: str, msg: dict[str, Any]) -> str:
    assert "result" in msg, f"expected a result, got {line}"
    return msg["result"]["content"][0]["text"]


def says_why(message: str) -> bool:
    """The circuit's message says the backend exited or crashed (wording is the gateway's)."""
    return re.search(r"exit|crash", message, re.IGNORECASE) is not None


# --------------------------------------------------------------------------- 1. served by the new process


def check_call_after_a_crash_is_served(piddir: Path, p: LineProcess, *, wait_for_exit: bool) -> None:
    p.initialize()
    assert text_of(*p.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "warm"}})[:2]) == "warm"
    wait_for_pidfiles(piddir, ["alpha"])
    old = pids_of(piddir, "alpha")
    assert len(old) == 1, recorded_pids(piddir)

    crash(p, "alpha")
    if wait_for_exit:
        wait_exit_handled(p, "alpha")
    sent = time.monotonic()
    line, msg, _ = p.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "healed"}},
                             id_raw='"after-crash"', timeout=10)
    elapsed = time.monotonic() - sent
    assert "result" in msg, (
        f"a call sent {'once mcpd logged the exit' if wait_for_exit else 'right after the crash was answered'} "
        f"must wait for the restarted backend and be served by it: {line}"
    )
    assert text_of(line, msg) == "healed"
    assert elapsed < 9, f"served only after {elapsed:.1f} s"
    new = pids_of(piddir, "alpha") - old
    assert len(new) == 1, f"expected exactly one new alpha process: {recorded_pids(piddir)}"
    assert not any(pid_is_alive(pid) for pid in old), "the crashed alpha process is still alive"
    assert pid_is_alive(next(iter(new))), "the process that served the call is gone"
    # And it keeps serving, from the same process.
    assert text_of(*p.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "again"}})[:2]) == "again"
    assert pids_of(piddir, "alpha") - old == new


def test_call_right_after_a_crash_is_served_by_the_restarted_process(piddir, raw_mcpd, write_config):
    """alpha crashes mid-call; a call sent as soon as the crashing call is answered (mcpd may not
    have reaped the process yet) waits for the restart (backoff about 0.25 s, then about 1 s to
    start) and is answered by the new process: same id, the tool's result, a new pid."""
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir, timeout="10s")}})
    check_call_after_a_crash_is_served(piddir, raw_mcpd(config), wait_for_exit=False)


def test_call_during_the_backoff_is_served_by_the_restarted_process(piddir, raw_mcpd, write_config):
    """As above, with the call sent once mcpd has logged the exit (the backend is in backoff)."""
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir, timeout="10s")}})
    check_call_after_a_crash_is_served(piddir, raw_mcpd(config), wait_for_exit=True)


# --------------------------------------------------------------------------- 2. bounded by the deadline


def test_call_waiting_for_a_slow_restart_gets_the_deadline_error(piddir, raw_mcpd, write_config):
    """The restarted hostile answers `initialize` only after 30 s; the call's deadline is 2 s: the
    waiting call fails with -32001 naming the backend after about 2 s (not at once, not never),
    and mcpd keeps serving (no second answer to it)."""
    config = write_config({"servers": {"hostile": hostile(piddir, "slow-restart", "30", timeout="2s")}})
    p = raw_mcpd(config)
    p.initialize(timeout=10)
    old = pids_of(piddir, "hostile")
    assert len(old) == 1, recorded_pids(piddir)

    crash(p, "hostile")
    wait_exit_handled(p, "hostile")
    sent = time.monotonic()
    send_call(p, '"waiting"', "hostile__echo", {"text": "never"})
    line, msg = recv_answer(p, '"waiting"', timeout=8)
    elapsed = time.monotonic() - sent
    assert "error" in msg and "result" not in msg, line
    assert msg["error"]["code"] == TIMEOUT_CODE, (
        f"a call waiting for a restart longer than its deadline must get the timeout error -32001 "
        f"(after {elapsed:.2f} s): {line}"
    )
    assert re.search(r"\bhostile\b", msg["error"]["message"]), f"the error must name the backend: {line}"
    assert 1.5 <= elapsed <= 4.5, f"the deadline is 2 s, the call failed after {elapsed:.2f} s: {line}"
    # The precondition held: a new process was started, and it was still initialising.
    assert pids_of(piddir, "hostile") - old, f"no restarted hostile process: {recorded_pids(piddir)}"
    p.ping()


# --------------------------------------------------------------------------- 3. several, in order


def test_calls_sent_during_a_restart_are_all_answered_in_order_by_the_new_process(piddir, raw_mcpd, write_config):
    """Six calls sent back to back while hostile restarts (with ids of every shape) are each
    answered once, in the order sent, with their ids byte for byte, by the one new process
    (hostile answers strictly in the order it reads, so the order is the order mcpd sent them)."""
    config = write_config({"servers": {"hostile": hostile(piddir, timeout="10s")}})
    p = raw_mcpd(config)
    p.initialize(timeout=10)
    old_pid = int(text_of(*p.request("tools/call", {"name": "hostile__pid", "arguments": {}})[:2]))
    assert pids_of(piddir, "hostile") == {old_pid}

    crash(p, "hostile")
    wait_exit_handled(p, "hostile")
    calls = [
        ('"w1"', "hostile__echo", {"text": "one"}),
        ("2", "hostile__pid", {}),
        ('"w3"', "hostile__echo", {"text": "three"}),
        ("9223372036854775808", "hostile__pid", {}),
        ('"w5"', "hostile__echo", {"text": "five"}),
        ("1e400", "hostile__echo", {"text": "six"}),
    ]
    for id_raw, tool, arguments in calls:
        send_call(p, id_raw, tool, arguments)
    answers = [p.recv_response(timeout=10) for _ in calls]
    got_ids = [raw_members(line).get("id") for line, _ in answers]
    assert got_ids == [id_raw for id_raw, _, _ in calls], (
        f"answers out of order or with other ids: {[line for line, _ in answers]}"
    )
    served_by: set[int] = set()
    for (id_raw, tool, arguments), (line, msg) in zip(calls, answers):
        assert "result" in msg, f"call {id_raw}, sent during the restart, was not served: {line}"
        if tool == "hostile__echo":
            assert text_of(line, msg) == arguments["text"], line
        else:
            served_by.add(int(text_of(line, msg)))
    assert len(served_by) == 1 and old_pid not in served_by, f"served by {served_by}, the crashed process was {old_pid}"
    assert pids_of(piddir, "hostile") == {old_pid} | served_by, recorded_pids(piddir)
    p.ping()  # nothing else was queued: no stray answer comes first


# --------------------------------------------------------------------------- 4. the circuit


def test_five_crashes_open_the_circuit_and_calls_then_fail_at_once(piddir, raw_mcpd, write_config):
    """Five `crash` calls in a row: each after the first waits for the restart and crashes the new
    process (an error naming the backend, one more process each time); after the fifth exit the
    circuit is open: a call fails well under 1 s, naming the backend and why, and starts nothing."""
    config = write_config({"servers": {"hostile": hostile(piddir, timeout="10s")}})
    p = raw_mcpd(config)
    p.initialize(timeout=10)
    assert len(pids_of(piddir, "hostile")) == 1

    for k in range(1, 6):
        # Backoffs of about 0.25, 0.5, 1 and 2 s (jittered) come before crashes 2 to 5.
        crash(p, "hostile", timeout=8)
        count = len(pids_of(piddir, "hostile"))
        assert count == k, (
            f"crash {k} should have been served by process {k} (restarted for it), "
            f"but {count} hostile processes were started: {recorded_pids(piddir)}"
        )
        wait_exit_handled(p, "hostile", count=k)

    sent = time.monotonic()
    line, msg, _ = p.request("tools/call", {"name": "hostile__echo", "arguments": {"text": "x"}}, id_raw='"open"', timeout=5)
    elapsed = time.monotonic() - sent
    assert_circuit_error(line, msg, "hostile")
    assert elapsed < 0.5, f"with the circuit open the call must fail at once, it took {elapsed:.2f} s: {line}"
    time.sleep(0.5)
    assert len(pids_of(piddir, "hostile")) == 5, f"the call started a process with the circuit open: {recorded_pids(piddir)}"
    p.ping()


def test_calls_waiting_when_the_circuit_opens_fail_at_once_with_the_reason(piddir, raw_mcpd, write_config):
    """After one crash, every hostile restart exits at once (crash-loop mode): four restarts in
    about 4 s, and the fifth exit opens the circuit. Two calls sent right after the first crash
    wait through those restarts and fail when the circuit opens, with its reason and naming the
    backend, long before their 20 s deadline; the next call fails at once."""
    config = write_config({"servers": {"hostile": hostile(piddir, "crash-loop", timeout="20s")}})
    p = raw_mcpd(config)
    p.initialize(timeout=10)
    assert len(pids_of(piddir, "hostile")) == 1

    crash(p, "hostile")
    wait_exit_handled(p, "hostile")
    sent = time.monotonic()
    send_call(p, '"waiting-1"', "hostile__echo", {"text": "one"})
    send_call(p, '"waiting-2"', "hostile__echo", {"text": "two"})
    line1, msg1 = recv_answer(p, '"waiting-1"', timeout=12)
    elapsed = time.monotonic() - sent
    started = len(pids_of(piddir, "hostile"))
    line2, msg2 = recv_answer(p, '"waiting-2"', timeout=1)
    for line, msg in ((line1, msg1), (line2, msg2)):
        assert_circuit_error(line, msg, "hostile")
    assert started == 5, (
        f"the waiting call failed after {elapsed:.2f} s, with {started} hostile processes started: it must wait "
        f"through the restarts (5 = the first process and 4 restarts) and fail when the circuit opens: {line1}"
    )
    assert elapsed < 10, f"failed only after {elapsed:.2f} s"

    sent = time.monotonic()
    line, msg, _ = p.request("tools/call", {"name": "hostile__echo", "arguments": {"text": "x"}}, id_raw='"open"', timeout=5)
    elapsed = time.monotonic() - sent
    assert_circuit_error(line, msg, "hostile")
    assert elapsed < 0.5, f"with the circuit open a call must fail at once, it took {elapsed:.2f} s: {line}"
    p.ping()


# --------------------------------------------------------------------------- 5. the client leaves


def test_stdin_closed_while_a_call_waits_for_a_restart_the_call_is_served(piddir, raw_mcpd, write_config, assert_backends_dead):
    """The client sends a call while alpha restarts and closes its input at once: the restart
    (about 1.3 s) ends within the 5 s drain, so the call is served by the new process, then mcpd
    exits 0 and stops it."""
    config = write_config({
        "gateway": {"drain_timeout": "5s"},
        "servers": {"alpha": server_entry("alpha", piddir, timeout="10s")},
    })
    p = raw_mcpd(config)
    p.initialize()
    wait_for_pidfiles(piddir, ["alpha"])
    old = pids_of(piddir, "alpha")

    crash(p, "alpha")
    wait_exit_handled(p, "alpha")
    send_call(p, '"waiting"', "alpha__echo", {"text": "served"})
    p.close_stdin()
    closed = time.monotonic()
    line, msg = recv_answer(p, '"waiting"', timeout=8)
    assert "result" in msg, f"a call waiting for a restart that ends within the drain must be served: {line}"
    assert text_of(line, msg) == "served"
    assert pids_of(piddir, "alpha") - old, f"no new alpha process: {recorded_pids(piddir)}"
    code = p.wait(8)
    assert code == 0, f"exit status {code} ({time.monotonic() - closed:.1f} s after stdin closed); stderr:\n{p.stderr_text()[-3000:]}"
    assert time.monotonic() - closed < 8
    assert_backends_dead(expect_at_least=2)


def test_stdin_closed_while_a_call_waits_for_a_slow_restart_fails_it_and_exits_zero(
    piddir, raw_mcpd, write_config, assert_backends_dead
):
    """The restarted hostile needs 30 s to initialise; the client sends a call while it restarts
    and closes its input. The call waits out the 1 s drain (it is in flight), then fails, naming
    a reason, and mcpd stops the initialising process and exits 0: no hang, nothing left."""
    config = write_config({
        "gateway": {"drain_timeout": "1s", "stop_grace": "500ms"},
        "servers": {"hostile": hostile(piddir, "slow-restart", "30", timeout="20s")},
    })
    p = raw_mcpd(config)
    p.initialize(timeout=10)

    crash(p, "hostile")
    wait_exit_handled(p, "hostile")
    send_call(p, '"waiting"', "hostile__echo", {"text": "never"})
    p.close_stdin()
    closed = time.monotonic()
    line, msg = recv_answer(p, '"waiting"', timeout=6)
    answered = time.monotonic() - closed
    assert "error" in msg and "result" not in msg, line
    assert msg["error"]["message"], line
    assert answered >= 0.5, (
        f"the waiting call was failed {answered:.2f} s after stdin closed: it must wait for the restart "
        f"(here until the 1 s drain ends), not be refused: {line}"
    )
    assert answered < 4, f"the waiting call was answered only {answered:.2f} s after stdin closed (drain 1 s)"
    code = p.wait(6)
    assert code == 0, f"exit status {code} ({time.monotonic() - closed:.1f} s after stdin closed); stderr:\n{p.stderr_text()[-3000:]}"
    assert time.monotonic() - closed < 5, f"exit {time.monotonic() - closed:.1f} s after stdin closed (drain 1 s, stop_grace 0.5 s)"
    assert_backends_dead(expect_at_least=2)


def test_circuit_limits_are_configurable_and_it_closes_after_the_window(piddir, raw_mcpd, write_config):
    """gateway.restart_limit 2 and restart_window 2s: the second exit opens the circuit (a call
    fails at once, naming the last exit status and the window); once the window has passed mcpd
    starts the backend again and calls are served by the new process."""
    config = write_config({
        "gateway": {"restart_limit": 2, "restart_window": "2s"},
        "servers": {"hostile": hostile(piddir, timeout="10s")},
    })
    p = raw_mcpd(config)
    p.initialize(timeout=10)
    for k in (1, 2):
        crash(p, "hostile", timeout=8)
        wait_exit_handled(p, "hostile", count=k)
    line, msg, _ = p.request("tools/call", {"name": "hostile__echo", "arguments": {"text": "x"}}, id_raw='"open"', timeout=5)
    assert_circuit_error(line, msg, "hostile")
    text = msg["error"]["message"]
    assert "2 times within 2 s" in text and "status 3" in text, text
    assert len(pids_of(piddir, "hostile")) == 2

    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        line, msg, _ = p.request("tools/call", {"name": "hostile__echo", "arguments": {"text": "back"}}, timeout=5)
        if "result" in msg:
            break
        time.sleep(0.25)
    assert "result" in msg, f"the backend did not come back after the restart window: {line}"
    assert len(pids_of(piddir, "hostile")) == 3


def test_one_signal_drains_and_exits_zero_a_second_exits_128_plus_its_number(piddir, raw_mcpd, write_config):
    """SIGTERM starts the stop sequence (here slow: the backend ignores stdin EOF and stop_grace
    is 10 s); a second SIGTERM kills the backends at once and mcpd exits 143 (128 + 15)."""
    import signal

    config = write_config({"gateway": {"stop_grace": "10s"}, "servers": {"hostile": hostile(piddir, "ignore-eof")}})
    p = raw_mcpd(config)
    p.initialize(timeout=10)
    backend = next(iter(pids_of(piddir, "hostile")))
    p.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert p.proc.poll() is None, "mcpd must wait for the stop sequence after one SIGTERM"
    started = time.monotonic()
    p.proc.send_signal(signal.SIGTERM)
    code = p.proc.wait(timeout=5)
    assert code == 128 + signal.SIGTERM, f"exit status {code} after a second SIGTERM:\n{p.stderr_text()}"
    assert time.monotonic() - started < 3
    deadline = time.monotonic() + 3
    while pid_is_alive(backend) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_is_alive(backend), "the backend outlived the second signal"


def test_backend_that_closes_stdout_but_keeps_running_is_killed_and_restarted(piddir, raw_mcpd, write_config):
    """RELIABILITY 17: the call in flight fails at once with the reason, the running process is
    killed (its whole group), and the next call is served by a new process."""
    config = write_config({"servers": {"hostile": hostile(piddir, timeout="30s")}})
    p = raw_mcpd(config)
    p.initialize(timeout=10)
    old = next(iter(pids_of(piddir, "hostile")))
    sent = time.monotonic()
    line, msg, _ = p.request("tools/call", {"name": "hostile__close_stdout", "arguments": {}}, timeout=5)
    assert "error" in msg and "hostile" in msg["error"]["message"] and "stdout" in msg["error"]["message"], line
    assert time.monotonic() - sent < 2, "the call must fail when stdout closes, not at its deadline"
    line, msg, _ = p.request("tools/call", {"name": "hostile__pid", "arguments": {}}, timeout=10)
    assert "result" in msg, line
    assert int(msg["result"]["content"][0]["text"]) != old
    deadline = time.monotonic() + 3
    while pid_is_alive(old) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_is_alive(old), "the process that closed its stdout is still running"


def test_lines_that_are_not_json_rpc_are_dropped_and_the_call_is_answered(piddir, raw_mcpd, write_config):
    """RELIABILITY 13: a backend's non-JSON lines are logged and dropped; its answer after them
    arrives; nothing restarts."""
    config = write_config({"servers": {"hostile": hostile(piddir)}})
    p = raw_mcpd(config)
    p.initialize(timeout=10)
    line, msg, _ = p.request("tools/call", {"name": "hostile__garbage", "arguments": {}}, timeout=5)
    assert msg.get("result", {}).get("content", [{}])[0].get("text") == "after garbage", line
    p.ping()
    deadline = time.monotonic() + 3
    while p.stderr_text().count("not a JSON-RPC message") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert p.stderr_text().count("not a JSON-RPC message") >= 2, p.stderr_text()
    assert len(pids_of(piddir, "hostile")) == 1
