"""A backend that speaks ONLY the stateless era (2026-07-28) behind mcpd: backends/zeta.py.

zeta refuses `initialize` (-32022 with data.supported ["2026-07-28"]) and answers `server/discover`;
every other request must carry the 2026-07-28 `_meta` envelope. mcpd is expected to:
- send `initialize`, get the refusal, send `server/discover` to the same process, and serve zeta from
  that one process in the stateless era (stderr `backend "zeta" ready ... protocol 2026-07-28`);
- fetch zeta's lists (every page) with the envelope, and merge them as usual (`zeta__<name>`,
  `mcpd://zeta/<uri>`);
- speak for handshake-era clients: put the envelope (with the client's own capabilities) on what it
  forwards, take `resultType` out of the results, turn zeta's input-required results into
  `elicitation/create` / `sampling/createMessage` requests to the client and retry zeta with the
  answers and zeta's own `requestState`;
- pass input-required results to stateless clients unchanged (zeta's `requestState` untouched);
- keep a `subscriptions/listen` stream open on zeta, refresh its catalog on tools list_changed, and
  map `resources/subscribe` to listen `resourceSubscriptions`.

The first tests talk to zeta directly (raw lines, no mcpd) to pin the backend itself.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientRequestContext
from mcp.client.subscriptions import ResourceUpdated, ToolsListChanged
from mcpd_helpers import LineProcess, recorded_pids, server_entry
from test_eras import SUBSCRIPTION_ID_KEY, mcpd_client
from test_surface import Inbox, assert_clean_exit, dump, mcpd_session, tool_text

pytestmark = [
    # sampling and resources/subscribe are deprecated as of 2026-07-28; handshake clients use them.
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

MODERN = "2026-07-28"
PV_KEY = "io.modelcontextprotocol/protocolVersion"
CAPS_KEY = "io.modelcontextprotocol/clientCapabilities"
STATELESS_MODES = ["auto", MODERN]

ZETA_TOOLS = ["echo", "confirm", "ask_model", "two_step", "add_tool", "touch", "caps"]
ZETA_PROMPTS = ["greet", "farewell", "status"]
ZETA_DOCS = ["zeta://doc/1", "zeta://doc/2", "zeta://doc/3"]
ZETA_TEMPLATE = "zeta://item/{id}"
FORM_OK = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
READY = re.compile(r'backend "zeta" ready\b.*protocol 2026-07-28')


def envelope(capabilities: dict[str, Any] | None = None, version: str = MODERN) -> dict[str, Any]:
    return {
        PV_KEY: version,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
        CAPS_KEY: capabilities if capabilities is not None else {},
    }


def exposed(uri: str) -> str:
    return f"mcpd://zeta/{uri}"


# --------------------------------------------------------------------------- raw helpers


def exchange(p: LineProcess, method: str, params: dict[str, Any] | None = None, *, ident: Any = None,
             timeout: float = 10.0) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """Send one request; return (response line, response, notifications received before it)."""
    ident = p.new_id() if ident is None else ident
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": ident, "method": method}
    if params is not None:
        message["params"] = params
    p.send(message)
    notes: list[dict[str, Any]] = []
    line, msg = p.recv_response(timeout, on_notification=lambda _l, m: notes.append(m))
    assert msg.get("id") == ident and "method" not in msg, f"expected the answer to {ident}, got {line}"
    return line, msg, notes


def result_of(line: str, msg: dict[str, Any]) -> dict[str, Any]:
    assert "result" in msg and "error" not in msg, line
    return msg["result"]


def error_of(line: str, msg: dict[str, Any], code: int) -> dict[str, Any]:
    assert "error" in msg and "result" not in msg, line
    assert msg["error"]["code"] == code, line
    return msg["error"]


def text(result: dict[str, Any]) -> str:
    return result["content"][0]["text"]


def wait_for_text(read: Callable[[], str], pattern: re.Pattern[str] | str, timeout: float = 5.0) -> str:
    """Poll a growing log until `pattern` occurs in it; return the log."""
    regex = re.compile(re.escape(pattern)) if isinstance(pattern, str) else pattern
    deadline = time.monotonic() + timeout
    while True:
        log = read()
        if regex.search(log):
            return log
        if time.monotonic() >= deadline:
            raise AssertionError(f"{regex.pattern!r} not in the log within {timeout}s:\n{log[-4000:]}")
        time.sleep(0.05)


def zeta_lines(log: str, direction: str) -> list[dict[str, Any]]:
    """What zeta read (direction "<") or wrote (">"), from mcpd's relayed stderr ("[zeta] zeta< ...")."""
    prefix = f"[zeta] zeta{direction} "
    lines = (re.sub(r"^\d{4}-\d\d-\d\dT\S+ ", "", line) for line in log.splitlines())  # mcpd's timestamp
    return [json.loads(line[len(prefix):]) for line in lines if line.startswith(prefix)]


def issued_states(log: str) -> list[str]:
    return [m["result"]["requestState"] for m in zeta_lines(log, ">")
            if isinstance(m.get("result"), dict) and m["result"].get("resultType") == "input_required"]


def retried_states(log: str) -> list[str]:
    return [m["params"]["requestState"] for m in zeta_lines(log, "<")
            if m.get("method") == "tools/call" and "inputResponses" in (m.get("params") or {})]


# --------------------------------------------------------------------------- 1. zeta directly


def test_direct_zeta_refuses_initialize_and_enforces_the_envelope(raw_backend):
    p = raw_backend("zeta")
    line, msg, _ = exchange(p, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                              "clientInfo": {"name": "t", "version": "0"}})
    err = error_of(line, msg, -32022)
    assert err["message"] == "Unsupported protocol version"
    assert err["data"] == {"supported": [MODERN], "requested": "2025-11-25"}

    line, msg, _ = exchange(p, "server/discover")
    assert result_of(line, msg) == {
        "supportedVersions": [MODERN],
        "capabilities": {"tools": {"listChanged": True}, "prompts": {"listChanged": True},
                         "resources": {"subscribe": True, "listChanged": True}, "completions": {}},
        "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "zeta", "version": "1.0.0"}},
        "resultType": "complete",
    }
    line, msg, _ = exchange(p, "server/discover", {"_meta": envelope()})
    assert result_of(line, msg)["supportedVersions"] == [MODERN]

    line, msg, _ = exchange(p, "tools/list", {})
    assert PV_KEY in error_of(line, msg, -32602)["message"]
    line, msg, _ = exchange(p, "tools/list", {"_meta": {PV_KEY: MODERN}})
    assert CAPS_KEY in error_of(line, msg, -32602)["message"]
    line, msg, _ = exchange(p, "tools/call", {"name": "echo", "arguments": {"text": "x"}})
    assert PV_KEY in error_of(line, msg, -32602)["message"]
    line, msg, _ = exchange(p, "tools/list", {"_meta": envelope(version="2025-11-25")})
    assert error_of(line, msg, -32022)["data"] == {"supported": [MODERN], "requested": "2025-11-25"}
    for method in ("ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"):
        line, msg, _ = exchange(p, method, {"_meta": envelope()})
        error_of(line, msg, -32601)

    p.send_raw("not json")
    line, msg = p.recv_message()
    assert msg["id"] is None and msg["error"]["code"] == -32700, line
    # Every stdout line is mirrored on stderr.
    p.close_stdin()
    assert p.wait(5) == 0
    stderr = p.stderr_text()
    assert '\nzeta> {"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}\n' in stderr


def test_direct_zeta_lists_pages_and_serves(raw_backend):
    p = raw_backend("zeta")
    meta = envelope({"elicitation": {}})

    def walk(method: str, attr: str) -> list[list[dict[str, Any]]]:
        pages, cursor = [], None
        while True:
            params: dict[str, Any] = {"_meta": meta}
            if cursor is not None:
                params["cursor"] = cursor
            line, msg, _ = exchange(p, method, params)
            result = result_of(line, msg)
            assert (result["resultType"], result["ttlMs"], result["cacheScope"]) == ("complete", 0, "private"), line
            pages.append(result[attr])
            cursor = result.get("nextCursor")
            if cursor is None:
                return pages
            assert cursor == f"zeta:{2 * len(pages)}", line

    tools = walk("tools/list", "tools")
    assert [len(page) for page in tools] == [2, 2, 2, 1]
    assert [t["name"] for page in tools for t in page] == ZETA_TOOLS
    prompts = walk("prompts/list", "prompts")
    assert [[q["name"] for q in page] for page in prompts] == [["greet", "farewell"], ["status"]]
    resources = walk("resources/list", "resources")
    assert [[r["uri"] for r in page] for page in resources] == [ZETA_DOCS[:2], ZETA_DOCS[2:]]
    templates = walk("resources/templates/list", "resourceTemplates")
    assert [[t["uriTemplate"] for t in page] for page in templates] == [[ZETA_TEMPLATE]]
    for cursor in ("zeta:99", "bogus", 3):
        line, msg, _ = exchange(p, "tools/list", {"cursor": cursor, "_meta": meta})
        error_of(line, msg, -32602)

    line, msg, _ = exchange(p, "tools/call", {"name": "echo", "arguments": {"text": "h\u00e9llo"}, "_meta": meta})
    assert result_of(line, msg) == {"content": [{"type": "text", "text": "zeta: h\u00e9llo"}], "isError": False,
                                    "resultType": "complete"}
    line, msg, _ = exchange(p, "tools/call", {"name": "caps", "arguments": {}, "_meta": meta})
    assert json.loads(text(result_of(line, msg))) == {"elicitation": {}}
    line, msg, _ = exchange(p, "tools/call", {"name": "nope", "arguments": {}, "_meta": meta})
    error_of(line, msg, -32602)

    line, msg, _ = exchange(p, "prompts/get", {"name": "greet", "arguments": {"name": "Ada"}, "_meta": meta})
    got = result_of(line, msg)
    assert got["messages"] == [{"role": "user", "content": {"type": "text", "text": "Hello, Ada"}}]
    assert got["resultType"] == "complete"
    line, msg, _ = exchange(p, "completion/complete", {"ref": {"type": "ref/prompt", "name": "greet"},
                                                       "argument": {"name": "name", "value": "z"}, "_meta": meta})
    assert result_of(line, msg)["completion"]["values"] == ["zed", "zoe", "zara"]
    line, msg, _ = exchange(p, "completion/complete", {"ref": {"type": "ref/prompt", "name": "greet"},
                                                       "argument": {"name": "name", "value": "zo"}, "_meta": meta})
    assert result_of(line, msg)["completion"] == {"values": ["zoe"], "total": 1, "hasMore": False}
    for uri, body in (("zeta://doc/3", "doc 3"), ("zeta://item/7", "item 7")):
        line, msg, _ = exchange(p, "resources/read", {"uri": uri, "_meta": meta})
        assert result_of(line, msg) == {"contents": [{"uri": uri, "mimeType": "text/plain", "text": body}],
                                        "resultType": "complete"}
    line, msg, _ = exchange(p, "resources/read", {"uri": "zeta://doc/9", "_meta": meta})
    error_of(line, msg, -32602)


def test_direct_zeta_input_required_rounds(raw_backend):
    p = raw_backend("zeta")
    both = envelope({"elicitation": {}, "sampling": {}})

    def call(name: str, arguments: dict[str, Any], meta: dict[str, Any] = both, **extra: Any) -> tuple[str, dict]:
        line, msg, _ = exchange(p, "tools/call", {"name": name, "arguments": arguments, **extra, "_meta": meta})
        return line, msg

    line, msg = call("confirm", {"question": "Proceed?"})
    first = result_of(line, msg)
    assert first == {
        "resultType": "input_required",
        "inputRequests": {"q1": {"method": "elicitation/create",
                                 "params": {"mode": "form", "message": "Proceed?", "requestedSchema": FORM_OK}}},
        "requestState": "zeta-state-1",
    }
    accept = {"q1": {"action": "accept", "content": {"ok": True}}}
    line, msg = call("confirm", {"question": "Proceed?"}, inputResponses=accept, requestState="zeta-state-999")
    error_of(line, msg, -32602)
    line, msg = call("confirm", {"question": "Proceed?"}, inputResponses={}, requestState="zeta-state-1")
    error_of(line, msg, -32602)
    line, msg = call("confirm", {"question": "Proceed?"}, inputResponses=accept, requestState="zeta-state-1")
    assert result_of(line, msg) == {"content": [{"type": "text", "text": 'confirmed: {"ok": true}'}],
                                    "isError": False, "resultType": "complete"}
    line, msg = call("confirm", {"question": "Proceed?"}, inputResponses=accept, requestState="zeta-state-1")
    error_of(line, msg, -32602)  # a requestState is good once

    line, msg = call("confirm", {"question": "Again?"})
    state = result_of(line, msg)["requestState"]
    assert state == "zeta-state-2"
    line, msg = call("confirm", {"question": "Again?"}, inputResponses={"q1": {"action": "decline"}}, requestState=state)
    assert text(result_of(line, msg)) == "declined"

    line, msg = call("ask_model", {"prompt": "hi"})
    asked = result_of(line, msg)
    assert asked["inputRequests"] == {"m1": {"method": "sampling/createMessage", "params": {
        "messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}], "maxTokens": 50}}}
    answer = {"role": "assistant", "content": {"type": "text", "text": "hello there"}, "model": "m"}
    line, msg = call("ask_model", {"prompt": "hi"}, inputResponses={"m1": answer}, requestState=asked["requestState"])
    assert text(result_of(line, msg)) == "model said: hello there"

    line, msg = call("two_step", {})
    round1 = result_of(line, msg)
    assert list(round1["inputRequests"]) == ["a"] and round1["inputRequests"]["a"]["method"] == "elicitation/create"
    line, msg = call("two_step", {}, inputResponses={"a": {"action": "accept", "content": {"v": "x"}}},
                     requestState=round1["requestState"])
    round2 = result_of(line, msg)
    assert round2["resultType"] == "input_required" and list(round2["inputRequests"]) == ["b"]
    assert round2["requestState"] != round1["requestState"]
    line, msg = call("two_step", {}, inputResponses={"b": {"action": "accept", "content": {"v": "y"}}},
                     requestState=round2["requestState"])
    assert text(result_of(line, msg)) == 'both: {"v": "x"} {"v": "y"}'

    bare = envelope({})
    for name, arguments, refusal in (("confirm", {"question": "q"}, "elicitation not available"),
                                     ("ask_model", {"prompt": "p"}, "sampling not available"),
                                     ("two_step", {}, "elicitation not available")):
        line, msg = call(name, arguments, bare)
        assert result_of(line, msg) == {"content": [{"type": "text", "text": refusal}], "isError": True,
                                        "resultType": "complete"}, name


def test_direct_zeta_listen_streams(raw_backend):
    p = raw_backend("zeta")
    meta = envelope()
    p.send({"jsonrpc": "2.0", "id": "L1", "method": "subscriptions/listen", "params": {
        "notifications": {"toolsListChanged": True, "promptsListChanged": False,
                          "resourceSubscriptions": ["zeta://doc/1"]}, "_meta": meta}})
    line, ack = p.recv_message()
    assert ack == {"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged", "params": {
        "_meta": {SUBSCRIPTION_ID_KEY: "L1"},
        "notifications": {"toolsListChanged": True, "resourceSubscriptions": ["zeta://doc/1"]}}}, line
    p.send({"jsonrpc": "2.0", "id": 2, "method": "subscriptions/listen",
            "params": {"notifications": {"resourceSubscriptions": ["zeta://doc/2"]}, "_meta": meta}})
    _, ack2 = p.recv_message()
    assert ack2["params"]["_meta"] == {SUBSCRIPTION_ID_KEY: 2}

    line, msg, notes = exchange(p, "tools/call", {"name": "add_tool", "arguments": {}, "_meta": meta})
    assert text(result_of(line, msg)) == "added extra_1"
    assert notes == [{"jsonrpc": "2.0", "method": "notifications/tools/list_changed",
                      "params": {"_meta": {SUBSCRIPTION_ID_KEY: "L1"}}}]
    line, msg, _ = exchange(p, "tools/list", {"cursor": "zeta:6", "_meta": meta})
    assert [t["name"] for t in result_of(line, msg)["tools"]] == ["caps", "extra_1"]
    line, msg, _ = exchange(p, "tools/call", {"name": "extra_1", "arguments": {}, "_meta": meta})
    assert text(result_of(line, msg)) == "extra_1"

    line, msg, notes = exchange(p, "tools/call", {"name": "touch", "arguments": {"uri": "zeta://doc/1"}, "_meta": meta})
    assert result_of(line, msg)["structuredContent"] == {"streams": 1}
    assert notes == [{"jsonrpc": "2.0", "method": "notifications/resources/updated",
                      "params": {"uri": "zeta://doc/1", "_meta": {SUBSCRIPTION_ID_KEY: "L1"}}}]
    line, msg, notes = exchange(p, "tools/call", {"name": "touch", "arguments": {"uri": "zeta://doc/3"}, "_meta": meta})
    assert notes == [] and result_of(line, msg)["structuredContent"] == {"streams": 0}

    p.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "L1"}})
    line, msg, notes = exchange(p, "tools/call", {"name": "touch", "arguments": {"uri": "zeta://doc/1"}, "_meta": meta})
    assert notes == [] and result_of(line, msg)["structuredContent"] == {"streams": 0}
    line, msg, notes = exchange(p, "tools/call", {"name": "add_tool", "arguments": {}, "_meta": meta})
    assert notes == [], "the cancelled stream and the stream without toolsListChanged get nothing"
    # Listen without the envelope is refused like any request.
    line, msg, _ = exchange(p, "subscriptions/listen", {"notifications": {"toolsListChanged": True}})
    error_of(line, msg, -32602)

    p.close_stdin()
    assert p.wait(5) == 0
    stderr = p.stderr_text()
    assert 'zeta: listen "L1" {"toolsListChanged":true,"resourceSubscriptions":["zeta://doc/1"]}' in stderr
    assert 'zeta: listen 2 {"resourceSubscriptions":["zeta://doc/2"]}' in stderr
    assert 'zeta: listen "L1" closed' in stderr
    assert "zeta: listen 2 closed" not in stderr


# --------------------------------------------------------------------------- 2. through mcpd: set-up


@pytest.fixture
def zeta_config(write_config: Callable[..., Path], piddir: Path) -> Path:
    # A short request_timeout also bounds how long mcpd waits for zeta to become ready.
    return write_config({"gateway": {"request_timeout": "10s"}, "servers": {"zeta": server_entry("zeta", piddir)}})


def zeta_pids(piddir: Path) -> list[int]:
    return [pid for pid, name in recorded_pids(piddir).items() if name == "zeta"]


def raw_initialize(p: LineProcess, version: str, capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
    line, msg, _ = p.request("initialize", {"protocolVersion": version, "capabilities": capabilities or {},
                                            "clientInfo": {"name": "raw", "version": "0"}}, timeout=20)
    result = result_of(line, msg)
    p.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    return result


def raw_walk(p: LineProcess, method: str, attr: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(50):
        line, msg, _ = p.request(method, {"cursor": cursor} if cursor is not None else {}, timeout=15)
        result = result_of(line, msg)
        for member in ('"resultType"', '"ttlMs"', '"cacheScope"'):
            assert member not in line, f"a stateless-era member {member} reached a handshake client: {line}"
        items += result[attr]
        cursor = result.get("nextCursor")
        if cursor is None:
            return items
    raise AssertionError(f"{method}: more than 50 pages")


def finish(p: LineProcess, assert_backends_dead: Callable[..., Any]) -> None:
    p.close_stdin()
    rc = p.wait(15)
    assert rc == 0, f"mcpd exit status {rc} after stdin closed; stderr:\n{p.stderr_text()[-3000:]}"
    assert_backends_dead(expect_at_least=1)


def test_mcpd_serves_zeta_from_one_process_after_discover(raw_mcpd, zeta_config, piddir, assert_backends_dead):
    p = raw_mcpd(zeta_config)
    raw_initialize(p, "2025-11-25")
    names = {t["name"] for t in raw_walk(p, "tools/list", "tools")}
    assert names == {f"zeta__{t}" for t in ZETA_TOOLS}
    wait_for_text(p.stderr_text, READY)
    finish(p, assert_backends_dead)
    log = p.stderr_text()  # complete now that mcpd has exited
    assert len(zeta_pids(piddir)) == 1, f"zeta was started more than once: {recorded_pids(piddir)}"
    assert 'backend "zeta" exited' not in log and 'backend "zeta" restarts' not in log, log

    received = zeta_lines(log, "<")
    methods = [m.get("method") for m in received]
    assert methods[:2] == ["initialize", "server/discover"], methods
    answered = zeta_lines(log, ">")
    assert answered[0]["error"]["code"] == -32022, answered[0]
    # Every list zeta was asked for came with the envelope, page after page.
    lists = [m for m in received if m.get("method") in
             ("tools/list", "prompts/list", "resources/list", "resources/templates/list")]
    assert {m["method"] for m in lists} == {"tools/list", "prompts/list", "resources/list", "resources/templates/list"}
    for m in lists:
        meta = (m.get("params") or {}).get("_meta") or {}
        assert meta.get(PV_KEY) == MODERN and isinstance(meta.get(CAPS_KEY), dict), m
    tool_pages = [m for m in lists if m["method"] == "tools/list"]
    assert [(m.get("params") or {}).get("cursor") for m in tool_pages][:4] == [None, "zeta:2", "zeta:4", "zeta:6"]


# --------------------------------------------------------------------------- 3. handshake-era clients, raw


@pytest.mark.parametrize("version", ["2024-11-05", "2025-06-18", "2025-11-25"])
def test_handshake_client_sees_and_uses_zeta_without_stateless_members(
    raw_mcpd, zeta_config, piddir, assert_backends_dead, version
):
    p = raw_mcpd(zeta_config)
    init = raw_initialize(p, version, {"sampling": {}})
    assert init["protocolVersion"] == version

    tools = {t["name"]: t for t in raw_walk(p, "tools/list", "tools")}
    assert set(tools) == {f"zeta__{t}" for t in ZETA_TOOLS}
    assert tools["zeta__echo"]["inputSchema"] == {"type": "object", "properties": {"text": {"type": "string"}},
                                                  "required": ["text"]}
    prompts = {q["name"]: q for q in raw_walk(p, "prompts/list", "prompts")}
    assert set(prompts) == {f"zeta__{q}" for q in ZETA_PROMPTS}
    assert prompts["zeta__greet"]["arguments"] == [{"name": "name", "description": "Who", "required": True}]
    resources = raw_walk(p, "resources/list", "resources")
    assert sorted(r["uri"] for r in resources) == [exposed(u) for u in ZETA_DOCS]
    templates = raw_walk(p, "resources/templates/list", "resourceTemplates")
    assert [t["uriTemplate"] for t in templates] == [exposed(ZETA_TEMPLATE)]

    def served(method: str, params: dict[str, Any]) -> dict[str, Any]:
        line, msg, _ = p.request(method, params, timeout=15)
        assert '"resultType"' not in line, f"resultType reached a {version} client: {line}"
        return result_of(line, msg)

    echoed = served("tools/call", {"name": "zeta__echo", "arguments": {"text": "h\u00e9llo \U0001f680"}})
    assert echoed == {"content": [{"type": "text", "text": "zeta: h\u00e9llo \U0001f680"}], "isError": False}
    # What zeta sent for that call, less resultType, is what the client got. (zeta's stderr is relayed
    # asynchronously, so the copy of its line may reach mcpd's log after the answer reached us.)
    log = wait_for_text(p.stderr_text, re.compile(r"^(?:\S+ )?\[zeta\] zeta> .*\"zeta: h\u00e9llo \U0001f680\"", re.M))
    sent = [m["result"] for m in zeta_lines(log, ">") if isinstance(m.get("result"), dict)
            and m["result"].get("content") == echoed["content"]]
    assert len(sent) == 1 and sent[0].pop("resultType") == "complete" and sent[0] == echoed, sent

    caps = json.loads(text(served("tools/call", {"name": "zeta__caps", "arguments": {}})))
    assert "sampling" in caps and "elicitation" not in caps, caps

    greet = served("prompts/get", {"name": "zeta__greet", "arguments": {"name": "Ada"}})
    assert greet["messages"] == [{"role": "user", "content": {"type": "text", "text": "Hello, Ada"}}]
    doc = served("resources/read", {"uri": exposed("zeta://doc/2")})
    assert doc["contents"] == [{"uri": "zeta://doc/2", "mimeType": "text/plain", "text": "doc 2"}]
    item = served("resources/read", {"uri": exposed("zeta://item/7")})
    assert item["contents"] == [{"uri": "zeta://item/7", "mimeType": "text/plain", "text": "item 7"}]
    completed = served("completion/complete", {"ref": {"type": "ref/prompt", "name": "zeta__greet"},
                                               "argument": {"name": "name", "value": "z"}})
    assert completed["completion"]["values"] == ["zed", "zoe", "zara"]
    completed = served("completion/complete", {"ref": {"type": "ref/resource", "uri": exposed(ZETA_TEMPLATE)},
                                               "argument": {"name": "id", "value": "4"}})
    assert completed["completion"]["values"] == ["42"]
    finish(p, assert_backends_dead)


# --------------------------------------------------------------------------- 4. handshake-era clients, SDK: era translation


@pytest.fixture
def handshake_version(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """ClientSession.initialize always offers LATEST_HANDSHAKE_VERSION (2025-11-25); patch it to force another."""
    monkeypatch.setattr("mcp.client.session.LATEST_HANDSHAKE_VERSION", request.param)
    return request.param


@pytest.mark.anyio
@pytest.mark.parametrize("handshake_version", ["2025-06-18", "2025-11-25"], indirect=True)
async def test_handshake_client_answers_zeta_elicitations(mcpd_bin, zeta_config, tmp_path, mcpd_env, handshake_version):
    seen: list[types.ElicitRequestParams] = []

    async def elicit(ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        seen.append(params)
        if params.message == "decline me":
            return types.ElicitResult(action="decline")
        if params.message.startswith("two_step "):
            return types.ElicitResult(action="accept", content={"v": params.message[-1]})
        return types.ElicitResult(action="accept", content={"ok": True})

    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, zeta_config, tmp_path, mcpd_env, elicitation_callback=elicit) as (s, handle):
            assert handle.extra["init"].protocol_version == handshake_version
            caps = json.loads(tool_text(await s.call_tool("zeta__caps", {})))
            accepted = await s.call_tool("zeta__confirm", {"question": "Proceed?"})
            declined = await s.call_tool("zeta__confirm", {"question": "decline me"})
            both = await s.call_tool("zeta__two_step", {})
            still = await s.call_tool("zeta__echo", {"text": "after"})
        assert_clean_exit(handle)

    assert "elicitation" in caps and "sampling" not in caps, caps
    assert tool_text(accepted) == 'confirmed: {"ok": true}' and not accepted.is_error
    assert tool_text(declined) == "declined"
    assert tool_text(both) == 'both: {"v": "a"} {"v": "b"}'
    assert tool_text(still) == "zeta: after"
    assert [p.message for p in seen] == ["Proceed?", "decline me", "two_step a", "two_step b"]
    assert isinstance(seen[0], types.ElicitRequestFormParams) and seen[0].requested_schema == FORM_OK
    # mcpd retried zeta with zeta's own requestStates, each once.
    log = (tmp_path / "mcpd.stderr").read_text()
    issued = issued_states(log)
    assert len(issued) == 4 and all(s.startswith("zeta-state-") for s in issued), issued
    assert retried_states(log) == issued


@pytest.mark.anyio
@pytest.mark.parametrize("handshake_version", ["2024-11-05", "2025-11-25"], indirect=True)
async def test_handshake_client_answers_zeta_sampling(mcpd_bin, zeta_config, tmp_path, mcpd_env, handshake_version):
    seen: list[types.CreateMessageRequestParams] = []

    async def sampling(ctx: ClientRequestContext, params: types.CreateMessageRequestParams) -> Any:
        seen.append(params)
        return types.CreateMessageResult(role="assistant", content=types.TextContent(
            text=f"sampled: {params.messages[0].content.text}"), model="m1")

    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, zeta_config, tmp_path, mcpd_env, sampling_callback=sampling) as (s, handle):
            assert handle.extra["init"].protocol_version == handshake_version
            result = await s.call_tool("zeta__ask_model", {"prompt": "h\u00e9llo"})
            refused = await s.call_tool("zeta__confirm", {"question": "q"})
        assert_clean_exit(handle)

    assert tool_text(result) == "model said: sampled: h\u00e9llo" and not result.is_error
    assert len(seen) == 1 and seen[0].max_tokens == 50
    assert dump(seen[0].messages[0]) == {"role": "user", "content": {"type": "text", "text": "h\u00e9llo"}}
    assert refused.is_error and tool_text(refused) == "elicitation not available"


@pytest.mark.anyio
async def test_handshake_client_without_capabilities_is_not_asked(mcpd_bin, zeta_config, tmp_path, mcpd_env):
    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, zeta_config, tmp_path, mcpd_env) as (s, handle):
            caps = json.loads(tool_text(await s.call_tool("zeta__caps", {})))
            results = {name: await s.call_tool(f"zeta__{name}", args)
                       for name, args in (("confirm", {"question": "q"}), ("ask_model", {"prompt": "p"}),
                                          ("two_step", {}))}
        assert_clean_exit(handle)

    assert not {"elicitation", "sampling", "roots"} & set(caps), caps
    assert {name: (r.is_error, tool_text(r)) for name, r in results.items()} == {
        "confirm": (True, "elicitation not available"),
        "ask_model": (True, "sampling not available"),
        "two_step": (True, "elicitation not available"),
    }


# --------------------------------------------------------------------------- 5. stateless clients


@pytest.mark.anyio
@pytest.mark.parametrize("mode", STATELESS_MODES)
async def test_stateless_client_gets_zeta_input_required_untouched(
    mcpd_bin, zeta_config, tmp_path, mcpd_env, piddir, mode
):
    """The SDK Client (2.3.0) drives input_required itself: it runs the inputRequests through its
    callbacks and retries with inputResponses and the requestState it got, under a new id."""

    async def elicit(ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        if params.message.startswith("two_step "):
            return types.ElicitResult(action="accept", content={"v": params.message[-1]})
        return types.ElicitResult(action="accept", content={"ok": True})

    async def sampling(ctx: ClientRequestContext, params: types.CreateMessageRequestParams) -> Any:
        return types.CreateMessageResult(role="assistant", content=types.TextContent(text="sure"), model="m1")

    with anyio.fail_after(30):
        async with mcpd_client(mcpd_bin, zeta_config, tmp_path, mcpd_env, mode,
                               elicitation_callback=elicit, sampling_callback=sampling) as conn:
            c = conn.client
            version = c.protocol_version
            caps = json.loads(tool_text(await c.call_tool("zeta__caps", {})))
            confirmed = await c.call_tool("zeta__confirm", {"question": "Proceed?"})
            sampled = await c.call_tool("zeta__ask_model", {"prompt": "hi"})
            both = await c.call_tool("zeta__two_step", {})
        assert_clean_exit(conn.handle)

    assert version == MODERN
    assert "elicitation" in caps and "sampling" in caps, caps
    assert tool_text(confirmed) == 'confirmed: {"ok": true}'
    assert tool_text(sampled) == "model said: sure"
    assert tool_text(both) == 'both: {"v": "a"} {"v": "b"}'
    wire = conn.wire
    assert wire.server_requests() == [], "a stateless client must never get server-to-client requests"
    on_wire = [r["requestState"] for r in wire.received_results() if r.get("resultType") == "input_required"]
    log = (tmp_path / "mcpd.stderr").read_text()
    assert on_wire == issued_states(log) and len(on_wire) == 4, (on_wire, issued_states(log))
    assert all(s.startswith("zeta-state-") for s in on_wire), on_wire
    retries = [m["params"]["requestState"] for m in wire.sent()
               if m.get("method") == "tools/call" and "inputResponses" in m.get("params", {})]
    assert retries == on_wire
    assert retried_states(log) == on_wire
    finals = [r for r in wire.received_results() if "content" in r]
    assert finals and all(r.get("resultType") == "complete" for r in finals), finals
    assert len(zeta_pids(piddir)) == 1, "zeta speaks only 2026-07-28: its one process serves every client"


# --------------------------------------------------------------------------- 6. change notifications


@pytest.mark.anyio
async def test_handshake_client_gets_tools_list_changed_from_zeta(mcpd_bin, zeta_config, tmp_path, mcpd_env):
    inbox = Inbox()
    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, zeta_config, tmp_path, mcpd_env, message_handler=inbox.put) as (s, handle):
            before = {t.name for t in (await s.list_tools()).tools}
            added = await s.call_tool("zeta__add_tool", {})
            await inbox.next(types.ToolListChangedNotification)
            after = {t.name for t in (await s.list_tools()).tools}
            extra = await s.call_tool("zeta__extra_1", {})
        assert_clean_exit(handle)

    assert before == {f"zeta__{t}" for t in ZETA_TOOLS}
    assert tool_text(added) == "added extra_1"
    assert after == before | {"zeta__extra_1"}
    assert tool_text(extra) == "extra_1"
    log = (tmp_path / "mcpd.stderr").read_text()
    opened = re.findall(r"^(?:\S+ )?\[zeta\] zeta: listen (\S+) (\{.*\})$", log, re.M)
    assert any(json.loads(f).get("toolsListChanged") is True for _, f in opened), log[-3000:]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", STATELESS_MODES)
async def test_stateless_client_gets_tools_list_changed_on_its_listen_stream(
    mcpd_bin, zeta_config, tmp_path, mcpd_env, mode
):
    inbox = Inbox()
    with anyio.fail_after(30):
        async with mcpd_client(mcpd_bin, zeta_config, tmp_path, mcpd_env, mode, message_handler=inbox.put) as conn:
            c = conn.client
            before = {t.name for t in (await c.list_tools()).tools}
            async with c.listen(tools_list_changed=True) as sub:
                subscription_id = sub.subscription_id
                assert sub.honored.tools_list_changed is True, sub.honored
                added = await c.call_tool("zeta__add_tool", {})
                with anyio.fail_after(10):
                    event = await sub.__anext__()
                after = {t.name for t in (await c.list_tools()).tools}
        assert_clean_exit(conn.handle)

    assert tool_text(added) == "added extra_1"
    assert isinstance(event, ToolsListChanged), event
    assert after == before | {"zeta__extra_1"}
    changed = conn.wire.notifications("notifications/tools/list_changed")
    tags = [((n.get("params") or {}).get("_meta") or {}).get(SUBSCRIPTION_ID_KEY) for n in changed]
    assert tags == [subscription_id], tags


@pytest.mark.anyio
async def test_handshake_resource_subscription_follows_zeta_updates(mcpd_bin, zeta_config, tmp_path, mcpd_env):
    inbox = Inbox()
    doc1, doc2 = "zeta://doc/1", "zeta://doc/2"
    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, zeta_config, tmp_path, mcpd_env, message_handler=inbox.put) as (s, handle):
            assert handle.extra["init"].capabilities.resources.subscribe is True
            await s.subscribe_resource(exposed(doc1))
            touched = await s.call_tool("zeta__touch", {"uri": doc1})
            updated = await inbox.next(types.ResourceUpdatedNotification)

            await s.unsubscribe_resource(exposed(doc1))
            await s.call_tool("zeta__touch", {"uri": doc1})
            # Had the second touch of doc/1 been delivered, it would arrive before this one of doc/2.
            await s.subscribe_resource(exposed(doc2))
            await s.call_tool("zeta__touch", {"uri": doc2})
            after = await inbox.next(types.ResourceUpdatedNotification)
        assert_clean_exit(handle)

    assert tool_text(touched) == f"touched {doc1}"
    assert touched.structured_content == {"streams": 1}, "mcpd had no listen stream on zeta for the subscribed uri"
    assert updated.params.uri == exposed(doc1)
    assert after.params.uri == exposed(doc2)
    updates = [m for m in inbox.items if isinstance(m, types.ResourceUpdatedNotification)]
    assert [u.params.uri for u in updates] == [exposed(doc1), exposed(doc2)]
    log = (tmp_path / "mcpd.stderr").read_text()
    filters = [json.loads(f) for f in re.findall(r"^(?:\S+ )?\[zeta\] zeta: listen \S+ (\{.*\})$", log, re.M)]
    assert any(doc1 in f.get("resourceSubscriptions", []) for f in filters), filters


@pytest.mark.anyio
@pytest.mark.parametrize("mode", STATELESS_MODES)
async def test_stateless_listen_with_resource_subscriptions_gets_zeta_updates(
    mcpd_bin, zeta_config, tmp_path, mcpd_env, mode
):
    doc1 = "zeta://doc/1"
    with anyio.fail_after(30):
        async with mcpd_client(mcpd_bin, zeta_config, tmp_path, mcpd_env, mode) as conn:
            c = conn.client
            async with c.listen(resource_subscriptions=[exposed(doc1)]) as sub:
                assert sub.honored.resource_subscriptions == [exposed(doc1)], sub.honored
                await c.call_tool("zeta__touch", {"uri": doc1})
                with anyio.fail_after(10):
                    event = await sub.__anext__()
        assert_clean_exit(conn.handle)

    assert isinstance(event, ResourceUpdated) and event.uri == exposed(doc1), event
