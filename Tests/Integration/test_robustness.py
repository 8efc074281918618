"""Regression tests for faults found in review: oversized lines, held frames at start-up,
cancelled batch members, stdin and stdout that are regular files, and shutdown on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from mcpd_helpers import backend_script, server_entry

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "robustness", "version": "1"}},
}


def line(message: dict) -> str:
    return json.dumps(message, separators=(",", ":")) + "\n"


def test_line_after_an_oversized_line_is_served(raw_mcpd, write_config, piddir):
    config = write_config({"gateway": {"max_message_size": "1KiB"}, "servers": {"beta": server_entry("beta", piddir)}})
    p = raw_mcpd(config)
    p.initialize()
    # One write: a 2,000-byte line and a ping right behind it, in the same read.
    p.send_raw('{"jsonrpc":"2.0","id":"big","method":"ping","params":{"pad":"' + "x" * 2000 + '"}}\n'
               '{"jsonrpc":"2.0","id":"after","method":"ping"}')
    first = json.loads(p.recv_line())
    assert first["error"]["code"] == -32600 and "longer than 1024 bytes" in first["error"]["message"], first
    second = json.loads(p.recv_line())
    assert second == {"jsonrpc": "2.0", "id": "after", "result": {}}


def test_file_stdin_and_stdout_with_a_slow_backend(mcpd_bin, write_config, piddir, tmp_path, assert_backends_dead):
    """Requests read from a file before start-up settles are all answered, though stdin hits EOF
    at once and the drain deadline is shorter than the backend's start-up."""
    slow = {
        "command": "/bin/sh",
        "args": ["-c", f"sleep 2; exec {sys.executable} {backend_script('alpha')}"],
        "env": {"MCPD_TEST_PIDDIR": str(piddir)},
    }
    # startup_wait covers the 2 s sleep and a loaded machine's Python start.
    config = write_config({"gateway": {"drain_timeout": "500ms", "startup_wait": "30s"}, "servers": {"alpha": slow}})
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        line(INIT)
        + line({"jsonrpc": "2.0", "method": "notifications/initialized"})
        + line({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        + line({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "alpha__echo", "arguments": {"text": "from a file"}}})
    )
    out = tmp_path / "responses.jsonl"
    with requests.open("rb") as stdin, out.open("wb") as stdout:
        result = subprocess.run([mcpd_bin, "stdio", "--config", str(config)], stdin=stdin, stdout=stdout,
                                stderr=subprocess.PIPE, timeout=30)
    assert result.returncode == 0, result.stderr.decode()
    answers = {m["id"]: m for m in map(json.loads, out.read_text().splitlines())}
    assert sorted(answers) == [1, 2, 3], out.read_text()
    assert "alpha__echo" in {t["name"] for t in answers[2]["result"]["tools"]}
    assert answers[3]["result"]["content"][0]["text"] == "from a file"
    assert_backends_dead(expect_at_least=1)


def test_batch_member_cancelled_rest_of_batch_answered(raw_mcpd, write_config, piddir):
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir)}})
    p = raw_mcpd(config)
    p.initialize(version="2025-03-26")
    batch = [
        {"jsonrpc": "2.0", "id": "slow", "method": "tools/call", "params": {"name": "alpha__sleep", "arguments": {"seconds": 30}}},
        {"jsonrpc": "2.0", "id": "fast", "method": "tools/call", "params": {"name": "alpha__echo", "arguments": {"text": "hi"}}},
    ]
    p.send_raw(json.dumps(batch))
    time.sleep(0.5)  # let both reach alpha; the cancellation must refer to a request in flight
    p.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "slow", "reason": "test"}})
    answer = json.loads(p.recv_line(timeout=10))
    assert isinstance(answer, list), answer
    assert [m["id"] for m in answer] == ["fast"], answer
    assert answer[0]["result"]["content"][0]["text"] == "hi"


def test_sigterm_with_a_call_in_flight_and_stdout_a_file(mcpd_bin, write_config, piddir, tmp_path, assert_backends_dead):
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir)}})
    out = tmp_path / "out.jsonl"
    with out.open("wb") as stdout:
        proc = subprocess.Popen([mcpd_bin, "stdio", "--config", str(config)], stdin=subprocess.PIPE, stdout=stdout,
                                stderr=subprocess.PIPE)
        proc.stdin.write(line(INIT).encode())
        proc.stdin.write(line({"jsonrpc": "2.0", "id": "sleeper", "method": "tools/call",
                               "params": {"name": "alpha__sleep", "arguments": {"seconds": 60}}}).encode())
        proc.stdin.flush()
        deadline = time.monotonic() + 20
        while '"id":1' not in out.read_text():
            assert time.monotonic() < deadline, "no initialize answer"
            time.sleep(0.05)
        time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
        stderr = proc.stderr.read().decode()
        proc.stdin.close()
    assert code == 0, stderr
    assert time.monotonic() - started < 10
    answers = {m["id"]: m for m in map(json.loads, out.read_text().splitlines())}
    # Answered with an error (the backend's own on stdin EOF, or mcpd's on its exit), never lost.
    assert "error" in answers["sleeper"], answers
    assert_backends_dead(expect_at_least=1)


def test_backend_exiting_mid_call_after_the_client_closed_its_input(raw_mcpd, write_config, piddir, assert_backends_dead):
    """The crash fails the call, the drain ends the session, and the shutdown that follows runs
    after the backend has settled its own state, not inside its exit handler: no restart, no
    `while starting`, no second start, a clean exit. A grandchild keeps the backend's stdout open, so that mcpd
    learns of the exit from the process, not from the end of its output (10 s: longer than the backend
    takes to start on a loaded machine; mcpd stops its group)."""
    wrapped = {
        "command": "/bin/sh",
        "args": ["-c", f"(sleep 10 &); exec {sys.executable} {backend_script('alpha')}"],
        "env": {"MCPD_TEST_PIDDIR": str(piddir)},
    }
    config = write_config({"servers": {"alpha": wrapped}})
    p = raw_mcpd(config)
    p.initialize()
    p.send({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "alpha__crash", "arguments": {}}})
    p.close_stdin()
    answer = json.loads(p.recv_line())
    message = answer["error"]["message"]
    assert answer["id"] == 7 and 'backend "alpha"' in message and "tools/call \"crash\"" in message, answer
    assert p.wait(10) == 0, p.stderr_text()
    log = p.stderr_text()
    assert "while starting" not in log, log
    assert log.count("started (pid") == 1, log
    assert log.index('backend "alpha" exited with status 3') < log.index("shutting down") < log.index("mcpd: info: stopped"), log
    assert_backends_dead(expect_at_least=1)
