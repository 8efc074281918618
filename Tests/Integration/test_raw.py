"""`mcpd stdio` driven with raw JSON lines: framing, error codes, byte-exact ids and results, shutdown."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from mcpd_helpers import ALPHA_TOOLS, BETA_TOOLS, PROTOCOL_VERSION, raw_members, recorded_pids, server_entry

ALL_VERSIONS = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"]


@pytest.fixture
def beta_only_config(write_config, piddir):
    return write_config({"servers": {"beta": server_entry("beta", piddir)}})


def expect_error(line: str, code: int, id_raw: str) -> dict:
    msg = json.loads(line)
    assert isinstance(msg, dict), line
    assert msg.get("jsonrpc") == "2.0", line
    assert "result" not in msg, line
    assert msg["error"]["code"] == code, line
    assert isinstance(msg["error"]["message"], str) and msg["error"]["message"], line
    assert raw_members(line)["id"] == id_raw, line
    return msg


def call_tool(p, name: str, arguments: dict, *, id_raw: str | None = None, timeout: float = 10.0):
    return p.request("tools/call", {"name": name, "arguments": arguments}, id_raw=id_raw, timeout=timeout)


def text_of(msg: dict) -> str:
    assert "result" in msg, msg
    return msg["result"]["content"][0]["text"]


# --------------------------------------------------------------------------- initialize


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_initialize_negotiates_supported_versions(raw_mcpd, beta_only_config, version):
    p = raw_mcpd(beta_only_config)
    result = p.initialize(version)
    assert result["protocolVersion"] == version
    assert result["serverInfo"]["name"] == "mcpd"
    assert isinstance(result["serverInfo"].get("version"), str)
    assert "tools" in result["capabilities"]
    p.ping()


def test_initialize_with_unknown_version_gets_a_supported_one(raw_mcpd, beta_only_config):
    p = raw_mcpd(beta_only_config)
    result = p.initialize("1999-01-01")
    assert result["protocolVersion"] in ALL_VERSIONS
    p.ping()


# --------------------------------------------------------------------------- bad input


BAD_INPUT = [
    # (case, line, expected error code, expected raw id)
    ("not-json", "this is not json", -32700, "null"),
    ("truncated-json", '{"jsonrpc":"2.0","id":1,"method":"ping"', -32700, "null"),
    ("object-not-a-request", '{"foo":1}', -32600, "null"),
    ("number", "42", -32600, "null"),
    ("string", '"ping"', -32600, "null"),
    ("unknown-method", '{"jsonrpc":"2.0","id":7,"method":"foo/bar"}', -32601, "7"),
    ("unknown-method-str-id", '{"jsonrpc":"2.0","id":"m-1","method":"foo/bar","params":{}}', -32601, '"m-1"'),
]


def test_bad_input_is_answered_and_serving_continues(raw_mcpd, beta_only_config):
    p = raw_mcpd(beta_only_config)
    p.initialize()
    for case, line, code, id_raw in BAD_INPUT:
        p.send_raw(line)
        reply = p.recv_line()
        try:
            expect_error(reply, code, id_raw)
        except AssertionError as exc:
            raise AssertionError(f"case {case}: sent {line!r}, expected error {code} with id {id_raw}, got {reply}") from exc
        # mcpd keeps serving: the next line is the answer to this ping.
        p.ping()
    _, msg = call_tool(p, "beta__upper", {"text": "ok"})[:2]
    assert text_of(msg) == "OK"


def test_empty_line_is_ignored(raw_mcpd, beta_only_config):
    p = raw_mcpd(beta_only_config)
    p.initialize()
    p.send_raw(b"\n")
    p.send_raw(b"\n")
    # mcpd answers in order; had it answered the empty lines, those answers would come first.
    _, msg, raw = p.request("ping", id_raw='"after-empty"')
    assert msg == {"jsonrpc": "2.0", "id": "after-empty", "result": {}}


def test_unknown_notification_gets_no_reply(raw_mcpd, beta_only_config):
    p = raw_mcpd(beta_only_config)
    p.initialize()
    p.send({"jsonrpc": "2.0", "method": "notifications/made-up", "params": {"x": 1}})
    _, msg, _ = p.request("ping", id_raw='"after-notification"')
    assert msg["result"] == {}


@pytest.mark.parametrize("version", ["2024-11-05", "2025-06-18", "2025-11-25"])
def test_batch_rejected_outside_2025_03_26(raw_mcpd, beta_only_config, version):
    p = raw_mcpd(beta_only_config)
    p.initialize(version)
    p.send_raw('[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]')
    line = p.recv_line()
    msg = json.loads(line)
    assert isinstance(msg, dict), f"expected a single error object, got {line}"
    assert msg["error"]["code"] == -32600, line
    assert "result" not in msg
    p.ping()


def test_batch_served_under_2025_03_26(raw_mcpd, beta_only_config):
    """2025-03-26 is the one revision whose JSON-RPC layer includes batches."""
    p = raw_mcpd(beta_only_config)
    p.initialize("2025-03-26")
    p.send_raw(
        '[{"jsonrpc":"2.0","id":"b1","method":"ping"},'
        '{"jsonrpc":"2.0","id":"b2","method":"tools/call","params":{"name":"beta__upper","arguments":{"text":"x"}}}]'
    )
    line = p.recv_line(timeout=10)
    msg = json.loads(line)
    assert isinstance(msg, list), f"expected a batch response array, got {line}"
    by_id = {m["id"]: m for m in msg}
    assert set(by_id) == {"b1", "b2"}, line
    assert by_id["b1"]["result"] == {}
    assert by_id["b2"]["result"]["content"][0]["text"] == "X"


# --------------------------------------------------------------------------- ids


ODD_IDS = [
    '"abc"',
    "9223372036854775808",
    "1e400",
    "-0",
    "12345678901234567890123456789",
    "1.50",
    '"\\u00e9\\/\\"x\\"\u00e9"',
    '""',
    "0",
]


def test_ping_ids_come_back_byte_exact(raw_mcpd, beta_only_config):
    p = raw_mcpd(beta_only_config)
    p.initialize()
    for id_raw in ODD_IDS:
        line, msg, raw = p.request("ping", id_raw=id_raw)
        assert raw["id"] == id_raw, f"id {id_raw} came back as {raw['id']}: {line}"
        assert msg["result"] == {}, line


def test_routed_call_ids_come_back_byte_exact(raw_mcpd, standard_config):
    p = raw_mcpd(standard_config)
    p.initialize()
    for i, id_raw in enumerate(ODD_IDS):
        for tool, expected in (("alpha__echo", f"v{i}"), ("beta__echo", f"beta:v{i}")):
            line, msg, raw = call_tool(p, tool, {"text": f"v{i}"}, id_raw=id_raw)
            assert raw["id"] == id_raw, f"id {id_raw} came back as {raw['id']}: {line}"
            assert text_of(msg) == expected, line


def test_error_ids_come_back_byte_exact(raw_mcpd, beta_only_config):
    p = raw_mcpd(beta_only_config)
    p.initialize()
    for id_raw in ('"abc"', "9223372036854775808", "1e400"):
        line, msg, raw = call_tool(p, "nosuch__tool", {}, id_raw=id_raw)
        expect_error(line, -32602, id_raw)
        assert "nosuch__tool" in msg["error"]["message"]
        p.send_raw('{"jsonrpc":"2.0","id":' + id_raw + ',"method":"foo/bar"}')
        expect_error(p.recv_line(), -32601, id_raw)


# --------------------------------------------------------------------------- byte-exact results


RESULT_CALLS = [
    ("mixed", {}),
    ("image", {}),
    ("add", {"a": 0.1, "b": 0.2}),
    ("fail", {}),
    ("echo", {"text": "h\u00e9llo \u2028 / \\ \"q\" \U0001f680"}),
]


def test_result_bytes_identical_to_direct_backend(raw_mcpd, raw_backend, standard_config):
    """The "result" member mcpd sends is byte-for-byte the one the backend sent."""
    direct = raw_backend("alpha")
    direct.initialize(PROTOCOL_VERSION)
    expected = {tool: call_tool(direct, tool, args, id_raw="5")[2]["result"] for tool, args in RESULT_CALLS}

    p = raw_mcpd(standard_config)
    p.initialize(PROTOCOL_VERSION)
    for tool, args in RESULT_CALLS:
        line, msg, raw = call_tool(p, f"alpha__{tool}", args, id_raw="5")
        assert "result" in msg, line
        assert raw["result"] == expected[tool], (
            f"alpha__{tool}: result bytes differ\n via mcpd: {raw['result']}\n   direct: {expected[tool]}"
        )


# --------------------------------------------------------------------------- progress, cancellation, crash


def test_progress_carries_the_clients_token(raw_mcpd, standard_config):
    p = raw_mcpd(standard_config)
    p.initialize()
    notes: list[tuple[str, dict]] = []
    for token_raw in ('"tok/\\u00e9-1"', "987654321987654321"):
        notes.clear()
        p.send_raw(
            '{"jsonrpc":"2.0","id":"slow-call","method":"tools/call","params":{"name":"alpha__slow",'
            '"arguments":{"steps":3},"_meta":{"progressToken":' + token_raw + "}}}"
        )
        line, msg = p.recv_response(timeout=10, on_notification=lambda l, m: notes.append((l, m)))
        assert raw_members(line)["id"] == '"slow-call"', line
        assert text_of(msg) == "done 3"
        progress = [(l, m) for l, m in notes if m["method"] == "notifications/progress"]
        assert len(progress) == 3, notes
        for i, (l, m) in enumerate(progress, start=1):
            params_raw = raw_members(raw_members(l)["params"])
            assert params_raw["progressToken"] == token_raw, l
            assert m["params"]["progress"] == i and m["params"]["total"] == 3, l
            assert m["params"]["message"] == f"step {i}/3", l


def test_cancelled_is_forwarded_to_the_backend(raw_mcpd, standard_config):
    p = raw_mcpd(standard_config)
    p.initialize()

    def stats() -> dict:
        p.send_raw('{"jsonrpc":"2.0","id":"stats","method":"tools/call","params":{"name":"alpha__stats","arguments":{}}}')
        while True:
            line, msg = p.recv_response()
            ident = raw_members(line)["id"]
            if ident == '"sleeper"':
                continue  # a (discouraged, but harmless) answer to the cancelled request
            assert ident == '"stats"', line
            return json.loads(text_of(msg))

    p.send_raw(
        '{"jsonrpc":"2.0","id":"sleeper","method":"tools/call","params":{"name":"alpha__sleep","arguments":{"seconds":60}}}'
    )
    deadline = time.monotonic() + 10
    while stats()["sleep_started"] < 1:
        assert time.monotonic() < deadline, "the sleep call never reached alpha"
        time.sleep(0.02)
    p.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "sleeper", "reason": "test"}})
    deadline = time.monotonic() + 5
    while (s := stats())["sleep_cancelled"] < 1:
        assert time.monotonic() < deadline, f"alpha never saw the cancellation: {s}"
        time.sleep(0.02)
    assert s == {"sleep_started": 1, "sleep_cancelled": 1, "sleep_finished": 0}


def test_backend_exit_mid_call_answers_fast(raw_mcpd, standard_config):
    p = raw_mcpd(standard_config)
    p.initialize()
    call_tool(p, "alpha__echo", {"text": "warm"})
    started = time.monotonic()
    line, msg, raw = call_tool(p, "alpha__crash", {}, id_raw='"crash-1"', timeout=5)
    elapsed = time.monotonic() - started
    expect_error(line, -32603, '"crash-1"')
    assert "alpha" in msg["error"]["message"], line
    assert elapsed < 5
    _, msg, _ = call_tool(p, "beta__echo", {"text": "alive"})
    assert text_of(msg) == "beta:alive"
    p.ping()


# --------------------------------------------------------------------------- shutdown and stderr


def test_stdin_close_exits_zero_and_stops_backends(raw_mcpd, standard_config, piddir, assert_backends_dead):
    p = raw_mcpd(standard_config)
    p.initialize()
    _, msg, _ = p.request("tools/list")
    assert len(msg["result"]["tools"]) == len(ALPHA_TOOLS) + len(BETA_TOOLS)
    # alpha now ignores SIGTERM and survives its stdin closing (only SIGKILL ends it), and has a
    # grandchild in its process group; beta is well-behaved.
    assert text_of(call_tool(p, "alpha__linger", {})[1]) == "lingering"
    child_pid = int(text_of(call_tool(p, "alpha__spawn_child", {})[1]))
    assert recorded_pids(piddir).get(child_pid) == "alphachild"
    # Leave a call in flight on beta's neighbour: shutdown must not wait for it.
    p.send_raw('{"jsonrpc":"2.0","id":"inflight","method":"tools/call","params":{"name":"alpha__sleep","arguments":{"seconds":60}}}')
    p.close_stdin()
    started = time.monotonic()
    code = p.wait(10)
    assert code is not None, f"mcpd still running 10 s after stdin closed; stderr:\n{p.stderr_text()[-3000:]}"
    assert code == 0, f"exit status {code}; stderr:\n{p.stderr_text()[-3000:]}"
    assert time.monotonic() - started < 10
    # Whatever mcpd still wrote to stdout is JSON-RPC.
    while True:
        try:
            line = p.recv_line(timeout=2)
        except AssertionError as exc:
            assert "closed stdout" in str(exc), exc
            break
        assert json.loads(line)["jsonrpc"] == "2.0", line
    pids = assert_backends_dead(expect_at_least=3)
    assert sorted(pids.values()) == ["alpha", "alphachild", "beta"]


def test_stdin_close_right_away_exits_zero(raw_mcpd, standard_config, assert_backends_dead):
    p = raw_mcpd(standard_config)
    p.close_stdin()
    code = p.wait(10)
    assert code == 0, f"exit status {code}; stderr:\n{p.stderr_text()[-3000:]}"
    assert_backends_dead()


def test_backend_stderr_is_relayed_with_server_name(raw_mcpd, standard_config):
    p = raw_mcpd(standard_config)
    p.initialize()
    marker = f"marker-{uuid.uuid4().hex}"
    _, msg, _ = call_tool(p, "alpha__shout", {"line": marker})
    assert text_of(msg) == "ok"
    deadline = time.monotonic() + 5
    found: dict[str, str] = {}
    wanted = {"marker": (marker, "alpha"), "alpha-ready": ("alpha backend ready", "alpha"), "beta-ready": ("beta backend ready", "beta")}
    while len(found) < len(wanted) and time.monotonic() < deadline:
        for line in p.stderr_text().splitlines():
            for key, (text, server) in wanted.items():
                if text in line and server in line.replace(text, ""):
                    found[key] = line
        time.sleep(0.05)
    missing = set(wanted) - set(found)
    assert not missing, f"backend stderr lines not relayed with server name: {missing}\nstderr:\n{p.stderr_text()[-3000:]}"
    # The backend's line must not leak onto stdout: the next stdout line is the ping answer.
    p.ping()


@pytest.mark.parametrize("level", ["debug", "error"])
def test_log_level_option_keeps_stdout_clean(raw_mcpd, standard_config, level):
    p = raw_mcpd(standard_config, "--log-level", level)
    p.initialize()
    _, msg, _ = call_tool(p, "alpha__echo", {"text": level})
    assert text_of(msg) == level
    p.close_stdin()
    assert p.wait(10) == 0


@pytest.mark.parametrize("version, structured", [("2024-11-05", False), ("2025-03-26", False), ("2025-06-18", True), ("2025-11-25", True)])
def test_structured_output_only_for_versions_that_define_it(raw_mcpd, write_config, piddir, version, structured):
    """structuredContent and outputSchema came with 2025-06-18: older clients get the text
    content alone, and tools without outputSchema."""
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir)}})
    p = raw_mcpd(config)
    assert p.initialize(version)["protocolVersion"] == version
    _, call, _ = p.request("tools/call", {"name": "alpha__add", "arguments": {"a": 2, "b": 40}})
    assert json.loads(call["result"]["content"][0]["text"])["sum"] == 42
    assert ("structuredContent" in call["result"]) == structured, call
    _, listed, _ = p.request("tools/list")
    add = next(t for t in listed["result"]["tools"] if t["name"] == "alpha__add")
    assert ("outputSchema" in add) == structured, add
    assert add["inputSchema"]["required"] == ["a", "b"]
