"""`mcpd serve`: the protocol eras other than the handshake era's Streamable HTTP sessions.

What is tested:

A. The stateless era (2026-07-28) at /mcp, recognised by `MCP-Protocol-Version: 2026-07-28`:
- a POST needs no session: tools/list and server/discover (with `Mcp-Method`) are 200 JSON with the
  stateless result (resultType, ttlMs, cacheScope; tools named alpha__*), no Mcp-Session-Id
  header, and /health counts no HTTP session;
- GET and DELETE are 405 with `Allow: POST`;
- headers checked against the body, each mismatch 400 with JSON-RPC error -32020 carrying the
  request's id: `Mcp-Method` missing or different; `Mcp-Name` missing or different from
  params.name (tools/call, prompts/get) or params.uri (resources/read); a matching name sent as
  `=?base64?...?=` is accepted, a malformed sentinel is a mismatch;
- a POSTed notification is 202, a batch 400 with -32600;
- a progressToken in params._meta with text/event-stream accepted: the answer is an event stream
  of the progress notifications, then the response (Accept text/event-stream alone, and Accept
  with both JSON and event streams);
- subscriptions/listen: an event stream whose first event is notifications/subscriptions/
  acknowledged; a SIGHUP reload that changes alpha's tool filter yields tools/list_changed on it;
  closing it leaves mcpd serving with no session left; with Accept application/json alone: 406;
- a tools/call whose client closes the connection before the answer (alpha__sleep): the debug
  log line of the request says it failed because the stream closed, alpha counts a cancelled
  sleep (alpha__stats), the next call is answered at once and no session is left;
- the official SDK `mcp.Client(url, mode=...)`: "2026-07-28" and "auto" end on 2026-07-28,
  "legacy" on 2025-11-25; list_tools and a byte-exact alpha__echo of multi-byte and escape-dense
  texts work in each.
B. The 2024-11-05 transport (`GET /sse` + `POST /messages`):
- GET /sse: 200 event stream whose first event is `endpoint` with `/messages?session_id=<32 hex>`;
  /health counts it under sessions.sse (not http);
- POST /messages?session_id=ID (or sessionId=ID): 202 `Accepted`, the answer as an `event: message`
  on the stream; refusals: unknown id 404, no id 400, GET /messages 405, POST /sse 405, a
  Content-Type other than JSON 415, a body that is not JSON 400;
- closing the stream ends the session: its endpoint is 404 afterwards, sessions.sse is 0 again and
  `sse session <id8> ended: its stream closed` is logged;
- the SDK's `sse_client` + `ClientSession`: initialize, list_tools, byte-exact alpha__echo.
C. Resource subscriptions shared between two handshake-era sessions (gamma, whose `touch` tool
  says whether gamma itself holds the subscription): both sessions' GET streams get
  notifications/resources/updated; after one unsubscribes the other still does and gamma is still
  subscribed; gamma received a single resources/subscribe (mcpd's debug log of forwarded
  requests); when the last subscriber's session ends, gamma is unsubscribed.

Every mcpd is started by test_streamable_http's `serve` fixture (a free port, /health with every
backend ready; SIGTERM, exit 0 and no backend left at the end).
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import signal
import socket
import time
from typing import Any

import anyio
import pytest
from mcp import Client, ClientSession
from mcp.client.sse import sse_client
from mcpd_helpers import ALPHA_TOOLS, server_entry
from test_streamable_http import (  # noqa: F401  (serve is a fixture)
    BOTH,
    HOST,
    TEXTS,
    RawSession,
    Reply,
    Served,
    alpha_config,
    dumps,
    http_request,
    parse_events,
    serve,
)

pytestmark = [
    # resources/subscribe is deprecated as of 2026-07-28; handshake clients use it.
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}
ALPHA_EXPOSED = {f"alpha__{t}" for t in ALPHA_TOOLS}
STATELESS_TIMEOUT = 30.0  # the first stateless call starts alpha's stateless-era process


# --------------------------------------------------------------------------- helpers


def stateless_message(method: str, params: dict[str, Any] | None = None, id: Any = 1,
                      meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """A 2026-07-28 request: params carry the `_meta` envelope (plus `meta`, e.g. a progressToken)."""
    full = dict(params or {})
    full["_meta"] = dict(META, **(meta or {}))
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": full}


def stateless_headers(method: str | None, name: str | None = None, accept: str = BOTH,
                      **extra: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": accept, "MCP-Protocol-Version": MODERN}
    if method is not None:
        headers["Mcp-Method"] = method
    if name is not None:
        headers["Mcp-Name"] = name
    headers.update(extra)
    return headers


def stateless_post(port: int, message: Any, *, method: str | None = "", name: str | None = None,
                   accept: str = BOTH, timeout: float = STATELESS_TIMEOUT, **extra: str) -> Reply:
    """POST one stateless message. `method=""` (default): Mcp-Method is the body's method; None: no
    Mcp-Method header. `name`: the Mcp-Name header (none by default)."""
    if method == "" and isinstance(message, dict):
        method = message.get("method")
    return http_request(port, "POST", dumps(message) if not isinstance(message, str | bytes) else message,
                        stateless_headers(method, name, accept, **extra), timeout=timeout)


def b64_sentinel(text: str) -> str:
    return "=?base64?" + base64.b64encode(text.encode()).decode() + "?="


def assert_mismatch(reply: Reply, request_id: Any, what: str) -> None:
    """400 with a JSON-RPC error -32020 naming the request's id."""
    assert reply.status == 400, f"{what}: {reply}"
    assert reply.headers.get("content-type", "").startswith("application/json"), f"{what}: {reply}"
    answer = reply.json()
    assert answer.get("jsonrpc") == "2.0" and answer.get("id") == request_id, f"{what}: {reply}"
    assert "result" not in answer and answer.get("error", {}).get("code") == -32020, f"{what}: {reply}"


class SSEReader:
    """One HTTP request whose answer is read as Server-Sent Events, event by event."""

    def __init__(self, port: int, method: str, path: str, body: str | None = None,
                 headers: dict[str, str] | None = None, timeout: float = STATELESS_TIMEOUT) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self.conn.connect()
        self.sock = self.conn.sock
        self.conn.request(method, path, body=body.encode() if body is not None else None, headers=headers or {})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}

    def next_event(self, timeout: float = 10.0) -> tuple[str, str]:
        """The next event (comments skipped): (event name, raw data). Fails on timeout or end."""
        self.sock.settimeout(timeout)
        lines: list[str] = []
        try:
            while True:
                raw = self.response.readline()
                if not raw:
                    raise AssertionError(f"the event stream ended; partial event: {lines}")
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if lines:
                        break
                    continue
                if not line.startswith(":"):
                    lines.append(line)
        except (TimeoutError, socket.timeout):
            raise AssertionError(f"no event within {timeout} s; partial: {lines}") from None
        (event, data), = parse_events("\n".join(lines) + "\n\n")
        return event, data

    def next_message(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next event, which must be `event: message` with a JSON-RPC message."""
        event, data = self.next_event(timeout)
        assert event == "message", (event, data)
        return json.loads(data)

    def rest(self, timeout: float = 10.0) -> bytes:
        """Everything until the server ends the response."""
        self.sock.settimeout(timeout)
        try:
            return self.response.read()
        except (TimeoutError, socket.timeout):
            raise AssertionError(f"the event stream was still open {timeout} s later") from None

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()
        self.sock.close()


@pytest.fixture
def readers() -> Any:
    """Open SSEReaders, closed at the end of the test whatever happened."""
    opened: list[SSEReader] = []

    def open_reader(*args: Any, **kwargs: Any) -> SSEReader:
        reader = SSEReader(*args, **kwargs)
        opened.append(reader)
        return reader

    yield open_reader
    for reader in opened:
        reader.close()


def health_sessions(served: Served) -> dict[str, int]:
    return served.health()["sessions"]


def wait_sessions(served: Served, kind: str, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while health_sessions(served)[kind] != count:
        assert time.monotonic() < deadline, f"/health sessions.{kind} is not {count}: {served.health()}"
        time.sleep(0.05)


def open_legacy(served: Served, open_reader: Any) -> tuple[SSEReader, str, str]:
    """GET /sse: the stream, its endpoint path and the session id in it."""
    stream = open_reader(served.port, "GET", "/sse", headers={"Accept": "text/event-stream"})
    assert stream.status == 200, (stream.status, stream.headers)
    assert stream.headers.get("content-type", "").startswith("text/event-stream"), stream.headers
    event, data = stream.next_event(timeout=10)
    assert event == "endpoint", (event, data)
    match = re.fullmatch(r"/messages\?session_id=([0-9a-f]{32})", data)
    assert match, f"endpoint event data {data!r} is not /messages?session_id=<32 hex>"
    return stream, data, match.group(1)


def legacy_post(port: int, path: str, message: Any, **headers: str) -> Reply:
    h = {"Content-Type": "application/json"}
    h.update(headers)
    body = message if isinstance(message, str | bytes) else dumps(message)
    return http_request(port, "POST", body, h, path=path)


def init_params(name: str = "http-eras-tests") -> dict[str, Any]:
    return {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": name, "version": "0"}}


# --------------------------------------------------------------------------- A. stateless era: plain requests


def test_stateless_post_needs_no_session(serve, write_config, piddir):
    """A POST with `MCP-Protocol-Version: 2026-07-28` and `Mcp-Method: tools/list` carrying the
    `_meta` envelope and no session id is answered 200 with JSON: the stateless result (resultType
    complete, ttlMs, cacheScope) listing exactly alpha's tools as alpha__*; server/discover works
    the same way (2026-07-28 supported, capabilities, server mcpd). No answer carries an
    Mcp-Session-Id header and /health counts no HTTP session throughout."""
    served = serve(alpha_config(write_config, piddir))
    message = stateless_message("tools/list", id=1)
    reply = stateless_post(served.port, message)
    assert reply.status == 200, reply
    assert reply.headers.get("content-type", "").startswith("application/json"), reply
    assert "mcp-session-id" not in reply.headers, reply
    answer = reply.json()
    assert answer.get("jsonrpc") == "2.0" and answer.get("id") == 1 and "result" in answer, reply
    result = answer["result"]
    assert result.get("resultType") == "complete", reply
    assert isinstance(result.get("ttlMs"), int) and result["ttlMs"] >= 0, reply
    assert result.get("cacheScope") in ("public", "private"), reply
    assert "nextCursor" not in result, reply
    assert {t["name"] for t in result["tools"]} == ALPHA_EXPOSED, reply
    assert health_sessions(served)["http"] == 0

    discover = stateless_post(served.port, stateless_message("server/discover", id="d-1"))
    assert discover.status == 200, discover
    assert discover.headers.get("content-type", "").startswith("application/json"), discover
    assert "mcp-session-id" not in discover.headers, discover
    answer = discover.json()
    assert answer.get("id") == "d-1" and "result" in answer, discover
    result = answer["result"]
    assert MODERN in result.get("supportedVersions", []), discover
    assert result.get("resultType") == "complete", discover
    assert "tools" in result.get("capabilities", {}), discover
    assert result.get("_meta", {}).get("io.modelcontextprotocol/serverInfo", {}).get("name") == "mcpd", discover

    call = stateless_message("tools/call", {"name": "alpha__echo", "arguments": {"text": "h\u00e9 \U0001f389"}}, id=3)
    reply = stateless_post(served.port, call, name="alpha__echo")
    assert reply.status == 200 and "mcp-session-id" not in reply.headers, reply
    answer = reply.json()
    assert answer["id"] == 3 and answer["result"]["content"] == [{"type": "text", "text": "h\u00e9 \U0001f389"}], reply
    assert answer["result"].get("resultType") == "complete", reply
    assert health_sessions(served)["http"] == 0


def test_stateless_get_and_delete_are_405(serve, write_config, piddir):
    """Under 2026-07-28 every request is a POST: GET (even asking for an event stream) and DELETE
    of /mcp are 405 with `Allow: POST`, and open nothing."""
    served = serve(alpha_config(write_config, piddir))
    for method, headers in (("GET", {"Accept": "text/event-stream"}), ("GET", {}), ("DELETE", {})):
        reply = http_request(served.port, method, headers=dict(headers, **{"MCP-Protocol-Version": MODERN}))
        assert reply.status == 405, (method, str(reply))
        allowed = [m.strip() for m in reply.headers.get("allow", "").split(",")]
        assert allowed == ["POST"], (method, str(reply))
    assert health_sessions(served)["http"] == 0


def test_stateless_headers_must_match_the_body(serve, write_config, piddir):
    """Mcp-Method missing, or naming another method than the body's, is 400 with JSON-RPC error
    -32020 whose id is the request's (string or number). For tools/call and prompts/get Mcp-Name
    must equal params.name, for resources/read params.uri: missing or different is 400 -32020.
    A matching name sent as `=?base64?<base64 of its UTF-8>?=` is accepted (the call is served); a
    sentinel whose base64 is malformed (bad characters, missing padding) is 400 -32020."""
    served = serve(alpha_config(write_config, piddir))
    port = served.port
    listing = stateless_message("tools/list", id="list-7")
    assert_mismatch(stateless_post(port, listing, method=None), "list-7", "no Mcp-Method")
    assert_mismatch(stateless_post(port, listing, method="tools/call"), "list-7", "Mcp-Method tools/call")
    assert_mismatch(stateless_post(port, listing, method="Tools/List"), "list-7", "Mcp-Method of another case")
    assert_mismatch(stateless_post(port, stateless_message("server/discover", id=42), method="tools/list"), 42,
                    "discover with Mcp-Method tools/list")

    call = stateless_message("tools/call", {"name": "alpha__echo", "arguments": {"text": "named"}}, id=9)
    assert_mismatch(stateless_post(port, call), 9, "tools/call without Mcp-Name")
    assert_mismatch(stateless_post(port, call, name="alpha__add"), 9, "Mcp-Name of another tool")
    assert_mismatch(stateless_post(port, call, name="echo"), 9, "Mcp-Name without the server prefix")
    assert_mismatch(stateless_post(port, call, name=b64_sentinel("alpha__add")), 9, "base64 of another tool")
    for bad in ("=?base64?YWxwaGFfX2VjaG8?=", "=?base64?YWxw!GFfX2VjaG8=?=", "=?base64?????="):
        assert_mismatch(stateless_post(port, call, name=bad), 9, f"malformed sentinel {bad!r}")

    for name in ("alpha__echo", b64_sentinel("alpha__echo")):
        reply = stateless_post(port, call, name=name)
        assert reply.status == 200, (name, str(reply))
        answer = reply.json()
        assert answer["id"] == 9 and answer["result"]["content"][0]["text"] == "named", (name, str(reply))

    prompt = stateless_message("prompts/get", {"name": "alpha__nothing", "arguments": {}}, id="p-1")
    assert_mismatch(stateless_post(port, prompt), "p-1", "prompts/get without Mcp-Name")
    assert_mismatch(stateless_post(port, prompt, name="alpha__other"), "p-1", "prompts/get with another name")

    uri = "mcpd://alpha/file:///tmp/alpha/notes.txt"
    read = stateless_message("resources/read", {"uri": uri}, id="r-1")
    assert_mismatch(stateless_post(port, read), "r-1", "resources/read without Mcp-Name")
    assert_mismatch(stateless_post(port, read, name="mcpd://alpha/file:///tmp/alpha/other.txt"), "r-1",
                    "resources/read with another uri")
    assert_mismatch(stateless_post(port, read, name=b64_sentinel(uri + "x")), "r-1", "base64 of another uri")
    assert health_sessions(served)["http"] == 0


def test_stateless_notification_is_202_and_batch_is_400(serve, write_config, piddir):
    """A stateless POST of a notification is 202 with an empty body; a batch (even of one request)
    is 400 with a JSON-RPC error -32600. Requests after them are served."""
    served = serve(alpha_config(write_config, piddir))
    notification = {"jsonrpc": "2.0", "method": "notifications/cancelled",
                    "params": {"requestId": 5, "_meta": META}}
    reply = stateless_post(served.port, notification)
    assert reply.status == 202 and reply.body == b"", reply

    for batch in ([stateless_message("tools/list", id=1)],
                  [stateless_message("tools/list", id=1), stateless_message("server/discover", id=2)]):
        reply = stateless_post(served.port, batch, method="tools/list")
        assert reply.status == 400, reply
        answer = reply.json()
        assert isinstance(answer, dict) and answer.get("jsonrpc") == "2.0", reply
        assert answer.get("error", {}).get("code") == -32600 and "result" not in answer, reply

    reply = stateless_post(served.port, stateless_message("tools/list", id=3))
    assert reply.status == 200 and reply.json()["id"] == 3, reply
    assert health_sessions(served)["http"] == 0


# --------------------------------------------------------------------------- A. stateless era: streams


def progress_call(request_id: str, token: str, steps: int) -> dict[str, Any]:
    return stateless_message("tools/call", {"name": "alpha__slow", "arguments": {"steps": steps, "delay": 0.05}},
                             id=request_id, meta={"progressToken": token})


def assert_progress_stream(reply: Reply, request_id: str, token: str, steps: int) -> None:
    assert reply.status == 200, reply
    assert reply.headers.get("content-type", "").startswith("text/event-stream"), (
        f"a call with a progressToken and text/event-stream accepted must be answered with an event stream: {reply}")
    events = reply.events()
    assert [e for e, _ in events] == ["message"] * (steps + 1), reply
    messages = [json.loads(data) for _, data in events]
    progress, answer = messages[:-1], messages[-1]
    for i, note in enumerate(progress, start=1):
        assert note.get("method") == "notifications/progress" and "id" not in note, note
        params = note["params"]
        assert params["progressToken"] == token and params["progress"] == i and params["total"] == steps, note
        assert params.get("message") == f"step {i}/{steps}", note
    assert answer.get("id") == request_id and "method" not in answer, answer
    assert answer["result"]["content"] == [{"type": "text", "text": f"done {steps}"}], answer


def test_progress_comes_on_an_event_stream_accepting_only_streams(serve, write_config, piddir):
    """alpha__slow with a progressToken in params._meta, Accept text/event-stream: the answer is an
    event stream carrying each progress notification (token, progress, total, message) in order,
    then the response, after which the stream ends."""
    served = serve(alpha_config(write_config, piddir))
    reply = stateless_post(served.port, progress_call("prog-1", "tok-\u00e9", 3), name="alpha__slow",
                           accept="text/event-stream")
    assert_progress_stream(reply, "prog-1", "tok-\u00e9", 3)
    assert health_sessions(served)["http"] == 0


def test_progress_comes_on_an_event_stream_accepting_json_too(serve, write_config, piddir):
    """alpha__slow with a progressToken in params._meta, Accept `application/json,
    text/event-stream` (what SDK clients send): the answer is an event stream with the progress
    notifications, then the response (JSON would have no place for the progress)."""
    served = serve(alpha_config(write_config, piddir))
    reply = stateless_post(served.port, progress_call("prog-2", "tok-2", 4), name="alpha__slow", accept=BOTH)
    assert_progress_stream(reply, "prog-2", "tok-2", 4)
    # Without a progressToken the same Accept gets JSON.
    plain = stateless_message("tools/call", {"name": "alpha__slow", "arguments": {"steps": 2}}, id="prog-3")
    reply = stateless_post(served.port, plain, name="alpha__slow", accept=BOTH)
    assert reply.status == 200 and reply.headers.get("content-type", "").startswith("application/json"), reply
    assert reply.json()["result"]["content"][0]["text"] == "done 2", reply


def test_listen_stream_acknowledges_and_carries_list_changed(serve, write_config, piddir, readers):
    """subscriptions/listen {toolsListChanged} with Accept text/event-stream: 200 event stream whose
    first event is notifications/subscriptions/acknowledged (honouring toolsListChanged, tagged with
    the listen request's id); a SIGHUP reload that changes alpha's tool filter brings
    notifications/tools/list_changed on it, and a stateless tools/list then shows the new filter.
    Closing the stream from the client side leaves mcpd serving: no session is left (/health
    sessions.http 0), the next request is served, and so is another listen stream. With Accept
    application/json alone subscriptions/listen is 406."""
    alpha = server_entry("alpha", piddir, tools={"deny": ["add"]})
    served = serve(write_config({"servers": {"alpha": alpha}}))
    listen = stateless_message("subscriptions/listen", {"notifications": {"toolsListChanged": True}}, id="listen-1")

    refused = stateless_post(served.port, listen, accept="application/json")
    assert refused.status == 406, refused

    stream = readers(served.port, "POST", "/mcp", dumps(listen),
                     stateless_headers("subscriptions/listen", accept="text/event-stream"))
    assert stream.status == 200, (stream.status, stream.headers)
    assert stream.headers.get("content-type", "").startswith("text/event-stream"), stream.headers
    assert "mcp-session-id" not in stream.headers, stream.headers
    ack = stream.next_message(timeout=10)
    assert ack.get("method") == "notifications/subscriptions/acknowledged" and "id" not in ack, ack
    assert ack["params"]["notifications"].get("toolsListChanged") is True, ack
    assert ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-1", ack
    assert health_sessions(served)["http"] == 0

    write_config({"servers": {"alpha": dict(alpha, tools={"deny": ["echo"]})}})
    served.proc.send_signal(signal.SIGHUP)
    changed = stream.next_message(timeout=15)
    assert changed.get("method") == "notifications/tools/list_changed" and "id" not in changed, changed
    names = {t["name"] for t in stateless_post(served.port, stateless_message("tools/list", id=2)).json()["result"]["tools"]}
    assert "alpha__add" in names and "alpha__echo" not in names, names

    stream.close()
    time.sleep(0.3)
    assert served.proc.poll() is None, served.stderr_text()[-3000:]
    assert health_sessions(served)["http"] == 0
    reply = stateless_post(served.port, stateless_message("tools/list", id=3))
    assert reply.status == 200 and reply.json()["id"] == 3, reply
    again = readers(served.port, "POST", "/mcp", dumps(dict(listen, id="listen-2")),
                    stateless_headers("subscriptions/listen", accept="text/event-stream"))
    assert again.status == 200
    ack = again.next_message(timeout=10)
    assert ack["method"] == "notifications/subscriptions/acknowledged", ack
    assert ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-2", ack


def test_closing_the_connection_cancels_the_call_at_the_backend(serve, write_config, piddir):
    """A stateless tools/call alpha__sleep 8 s whose client closes the connection 0.5 s in: mcpd's
    debug line for the request says it failed because the client closed the request's stream
    (well before 8 s), alpha's stats count the sleep as started and cancelled and not finished,
    the next call is answered promptly, and no session is left."""
    served = serve(alpha_config(write_config, piddir), "--log-level", "debug")
    # Start alpha's stateless-era process first, so that the sleep below runs at once.
    warm = stateless_message("tools/call", {"name": "alpha__echo", "arguments": {"text": "warm"}}, id="warm")
    assert stateless_post(served.port, warm, name="alpha__echo").status == 200

    call = stateless_message("tools/call", {"name": "alpha__sleep", "arguments": {"seconds": 8}}, id="cancel-me")
    conn = http.client.HTTPConnection(HOST, served.port, timeout=10)
    conn.request("POST", "/mcp", body=dumps(call).encode(), headers=stateless_headers("tools/call", "alpha__sleep"))
    time.sleep(0.5)
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()

    line = served.wait_log(r'request http-stateless id "cancel-me": tools/call "alpha__sleep"', timeout=5)
    assert re.search(r'-> backend "alpha": (failed|cancelled)', line), line
    assert "closed" in line, line
    elapsed = int(re.search(r"in (\d+) ms", line).group(1))
    assert elapsed < 4000, line

    started = time.monotonic()
    reply = stateless_post(served.port, stateless_message("tools/call", {"name": "alpha__stats", "arguments": {}},
                                                          id="stats"), name="alpha__stats", timeout=10)
    took = time.monotonic() - started
    assert reply.status == 200, reply
    stats = json.loads(reply.json()["result"]["content"][0]["text"])
    assert took < 2.0, f"the call after the cancelled one took {took:.2f} s"
    assert stats == {"sleep_started": 1, "sleep_cancelled": 1, "sleep_finished": 0}, stats
    assert health_sessions(served)["http"] == 0
    assert served.proc.poll() is None


@pytest.mark.anyio
@pytest.mark.parametrize("mode", [MODERN, "auto", "legacy"])
async def test_sdk_client_in_each_mode(serve, write_config, piddir, mode):
    """`mcp.Client(url, mode=mode, cache=None)` against /mcp: "2026-07-28" and "auto" (whose
    server/discover probe succeeds) end on protocol 2026-07-28 with no HTTP session, "legacy" on
    2025-11-25 with one session while connected; list_tools gives exactly alpha's tools, and
    alpha__echo returns multi-byte and escape-dense texts byte for byte. No session is left after."""
    served = serve(alpha_config(write_config, piddir))
    url = f"http://{HOST}:{served.port}/mcp"
    echoed: list[tuple[str, str]] = []
    with anyio.fail_after(60):
        async with Client(url, mode=mode, cache=None) as c:
            version = c._session.protocol_version
            tools = await c.list_tools()
            for text in TEXTS:
                res = await c.call_tool("alpha__echo", {"text": text})
                assert res.is_error is False, res
                echoed.append((text, res.content[0].text))
            during = health_sessions(served)["http"]
    assert version == (MODERN if mode != "legacy" else "2025-11-25")
    assert {t.name for t in tools.tools} == ALPHA_EXPOSED
    for sent, got in echoed:
        assert got == sent, f"echo of {sent[:60]!r} came back as {got[:60]!r}"
    assert during == (1 if mode == "legacy" else 0)
    wait_sessions(served, "http", 0)


@pytest.mark.anyio
@pytest.mark.parametrize("gamma_era", ["auto", "handshake"])
async def test_stateless_client_answers_a_backend_request_by_retrying(serve, write_config, piddir, gamma_era):
    """The SDK Client in mode 2026-07-28 with sampling, elicitation and roots callbacks: gamma's
    sampling/createMessage, elicitation/create (accepted, then declined) and roots/list during a
    tools/call come back as input-required results and the Client's retries, each a new POST,
    carry the answers to gamma. era auto: gamma's own stateless process asks natively; era
    handshake: mcpd translates, and the session that issued the requestState waits for the
    retry. No session is left after."""
    import mcp_types as types

    async def sampling(ctx: Any, params: Any) -> Any:
        return types.CreateMessageResult(role="assistant", content=types.TextContent(text=f"sampled: {params.messages[0].content.text}"),
                                         model="m1")

    async def elicit(ctx: Any, params: Any) -> Any:
        if params.message == "decline me":
            return types.ElicitResult(action="decline")
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async def list_roots(ctx: Any) -> Any:
        return types.ListRootsResult(roots=[types.Root(uri="file:///work/project", name="project")])

    served = serve(write_config({"servers": {"gamma": server_entry("gamma", piddir, era=gamma_era)}}))
    url = f"http://{HOST}:{served.port}/mcp"
    with anyio.fail_after(60):
        async with Client(url, mode=MODERN, cache=None, sampling_callback=sampling, elicitation_callback=elicit,
                          list_roots_callback=list_roots) as c:
            sampled = await c.call_tool("gamma__ask_sample", {"prompt": "h\u00e9llo"})
            accepted = await c.call_tool("gamma__ask_elicit", {"message": "Who are you?"})
            declined = await c.call_tool("gamma__ask_elicit", {"message": "decline me"})
            rooted = await c.call_tool("gamma__ask_roots", {})
            still = await c.call_tool("gamma__echo", {"text": "after"})
    assert sampled.content[0].text == "sampled: h\u00e9llo", sampled
    assert "Ada" in accepted.content[0].text and "accept" in accepted.content[0].text, accepted
    assert "decline" in declined.content[0].text, declined
    assert "file:///work/project" in rooted.content[0].text, rooted
    assert still.content[0].text == "after"
    wait_sessions(served, "http", 0)


# --------------------------------------------------------------------------- B. the 2024-11-05 transport


def test_sse_stream_names_its_endpoint_and_answers_come_on_it(serve, write_config, piddir, readers):
    """GET /sse (Accept text/event-stream): 200 event stream whose first event is `endpoint` with
    `/messages?session_id=<32 hex>`; /health counts one sse session and no http session. POSTs of
    initialize, notifications/initialized and tools/call to that endpoint (the call with the
    query name `sessionId` instead) are 202 `Accepted`, and each request's answer arrives on the
    stream as `event: message`."""
    served = serve(alpha_config(write_config, piddir))
    stream, endpoint, sid = open_legacy(served, readers)
    assert health_sessions(served) == {"http": 0, "sse": 1, "stdio": 0}

    reply = legacy_post(served.port, endpoint, {"jsonrpc": "2.0", "id": "init", "method": "initialize",
                                                "params": init_params()})
    assert reply.status == 202 and reply.body == b"Accepted", reply
    answer = stream.next_message(timeout=10)
    assert answer.get("id") == "init" and answer["result"]["serverInfo"]["name"] == "mcpd", answer
    assert answer["result"]["protocolVersion"] == "2025-11-25", answer

    reply = legacy_post(served.port, endpoint, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert reply.status == 202 and reply.body == b"Accepted", reply

    text = "h\u00e9llo \"\\ \U0001f389\n"
    reply = legacy_post(served.port, f"/messages?sessionId={sid}",
                        {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                         "params": {"name": "alpha__echo", "arguments": {"text": text}}})
    assert reply.status == 202 and reply.body == b"Accepted", reply
    answer = stream.next_message(timeout=10)
    assert answer.get("id") == 7 and answer["result"]["content"] == [{"type": "text", "text": text}], answer

    reply = legacy_post(served.port, endpoint, {"jsonrpc": "2.0", "id": 8, "method": "tools/list"})
    assert reply.status == 202, reply
    answer = stream.next_message(timeout=10)
    assert answer.get("id") == 8 and {t["name"] for t in answer["result"]["tools"]} == ALPHA_EXPOSED, answer
    assert health_sessions(served) == {"http": 0, "sse": 1, "stdio": 0}


def test_sse_transport_refusals(serve, write_config, piddir, readers):
    """POST /messages with an unknown session id is 404 (either query name), without one 400; GET
    /messages is 405; POST /sse is 405; a POST with a Content-Type other than application/json is
    415; a body that is not JSON is 400. The session still works afterwards."""
    served = serve(alpha_config(write_config, piddir))
    port = served.port
    stream, endpoint, sid = open_legacy(served, readers)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    unknown = "0123456789abcdef0123456789abcdef"

    for path in (f"/messages?session_id={unknown}", f"/messages?sessionId={unknown}"):
        reply = legacy_post(port, path, ping)
        assert reply.status == 404, (path, str(reply))
    for path in ("/messages", "/messages?other=1"):
        reply = legacy_post(port, path, ping)
        assert reply.status == 400, (path, str(reply))
    reply = http_request(port, "GET", path=endpoint)
    assert reply.status == 405, reply
    reply = http_request(port, "POST", dumps(ping), {"Content-Type": "application/json", "Accept": "text/event-stream"},
                         path="/sse")
    assert reply.status == 405, reply
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        reply = legacy_post(port, endpoint, ping, **{"Content-Type": content_type})
        assert reply.status == 415, (content_type, str(reply))
    for garbage in ('{"jsonrpc":', "not json"):
        reply = legacy_post(port, endpoint, garbage)
        assert reply.status == 400, (garbage, str(reply))

    reply = legacy_post(port, endpoint, {"jsonrpc": "2.0", "id": "i", "method": "initialize", "params": init_params()})
    assert reply.status == 202, reply
    # Whatever the refused POSTs did, the next message on the stream is initialize's answer.
    answer = stream.next_message(timeout=10)
    assert answer.get("id") == "i" and "result" in answer, answer
    assert health_sessions(served)["sse"] == 1


def test_closing_the_sse_stream_ends_the_session(serve, write_config, piddir, readers):
    """When the client closes its /sse stream the session ends: mcpd logs `sse session <id8>
    ended: its stream closed`, /health counts no sse session, and a POST to its endpoint is 404.
    Another /sse session opened meanwhile is unaffected."""
    served = serve(alpha_config(write_config, piddir))
    stream, endpoint, sid = open_legacy(served, readers)
    other, other_endpoint, other_sid = open_legacy(served, readers)
    assert sid != other_sid
    assert health_sessions(served)["sse"] == 2
    reply = legacy_post(served.port, endpoint, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init_params()})
    assert reply.status == 202, reply
    assert stream.next_message(timeout=10).get("id") == 1

    stream.close()
    served.wait_log(re.escape(f"sse session {sid[:8]} ended: its stream closed"), timeout=5)
    wait_sessions(served, "sse", 1)
    reply = legacy_post(served.port, endpoint, {"jsonrpc": "2.0", "id": 2, "method": "ping"})
    assert reply.status == 404, reply

    reply = legacy_post(served.port, other_endpoint, {"jsonrpc": "2.0", "id": 3, "method": "initialize",
                                                      "params": init_params()})
    assert reply.status == 202, reply
    assert other.next_message(timeout=10).get("id") == 3
    other.close()
    served.wait_log(re.escape(f"sse session {other_sid[:8]} ended: its stream closed"), timeout=5)
    wait_sessions(served, "sse", 0)
    assert health_sessions(served)["http"] == 0


@pytest.mark.anyio
async def test_sdk_sse_client(serve, write_config, piddir):
    """The SDK's legacy client (`sse_client` + `ClientSession`): initialize (2025-11-25, server
    mcpd), list_tools (exactly alpha's tools), alpha__echo byte for byte with multi-byte and
    escape-dense texts; /health counts the sse session while it is open and none after."""
    served = serve(alpha_config(write_config, piddir))
    echoed: list[tuple[str, str]] = []
    with anyio.fail_after(60):
        async with sse_client(f"http://{HOST}:{served.port}/sse") as (read, write):
            async with ClientSession(read, write) as s:
                init = await s.initialize()
                tools = await s.list_tools()
                for text in TEXTS:
                    res = await s.call_tool("alpha__echo", {"text": text})
                    assert res.is_error is False, res
                    echoed.append((text, res.content[0].text))
                during = health_sessions(served)
    assert init.protocol_version == "2025-11-25" and init.server_info.name == "mcpd"
    assert {t.name for t in tools.tools} == ALPHA_EXPOSED
    for sent, got in echoed:
        assert got == sent, f"echo of {sent[:60]!r} came back as {got[:60]!r}"
    assert during == {"http": 0, "sse": 1, "stdio": 0}
    wait_sessions(served, "sse", 0)


# --------------------------------------------------------------------------- C. shared resource subscriptions


def touch(session: RawSession, uri: str) -> bool:
    """gamma__touch: whether gamma itself holds a subscription to `uri` (it then notifies)."""
    answer = session.request("tools/call", {"name": "gamma__touch", "arguments": {"uri": uri}})
    assert answer["result"]["content"][0]["text"] == "touched", answer
    return answer["result"]["structuredContent"]["sent"]


def test_two_sessions_share_one_backend_subscription(serve, write_config, piddir):
    """Two handshake-era sessions subscribe to the same gamma resource: gamma receives one
    resources/subscribe (one forwarded request in mcpd's debug log); a change (gamma__touch) gives
    both sessions notifications/resources/updated with the exposed uri on their GET streams. After
    one unsubscribes, gamma still holds the subscription and the other session still gets the
    updates, the unsubscribed one no more (its next update is of another resource it then
    subscribes to). When the last subscriber's session ends (DELETE), gamma is unsubscribed."""
    served = serve(write_config({"servers": {"gamma": server_entry("gamma", piddir)}}), "--log-level", "debug")
    a_uri, b_uri = "file:///gamma/a.txt", "file:///gamma/b.txt"
    exposed_a, exposed_b = f"mcpd://gamma/{a_uri}", f"mcpd://gamma/{b_uri}"
    one, two = RawSession(served.port), RawSession(served.port)
    stream_one, stream_two = served.stream(one.id), served.stream(two.id)
    assert stream_one.status == 200 and stream_two.status == 200

    assert touch(one, a_uri) is False, "gamma holds a subscription nobody asked for"
    assert one.request("resources/subscribe", {"uri": exposed_a}, id="sub-one")["result"] == {}
    assert two.request("resources/subscribe", {"uri": exposed_a}, id="sub-two")["result"] == {}
    updated = {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": exposed_a}}

    assert touch(one, a_uri) is True
    for stream in (stream_one, stream_two):
        event, message = stream.next_event(timeout=10)
        assert event == "message" and message == updated, message

    forwarded = [line for line in served.stderr_text().splitlines()
                 if re.search(r"request http:\w+ id .*resources/subscribe.*-> backend \"gamma\"", line)]
    assert len(forwarded) == 1, "gamma should get exactly one resources/subscribe:\n" + "\n".join(forwarded)

    assert one.request("resources/unsubscribe", {"uri": exposed_a}, id="unsub-one")["result"] == {}
    assert touch(two, a_uri) is True, "gamma lost the subscription the other session still holds"
    event, message = stream_two.next_event(timeout=10)
    assert event == "message" and message == updated, message

    assert one.request("resources/subscribe", {"uri": exposed_b}, id="sub-b")["result"] == {}
    assert touch(one, b_uri) is True
    event, message = stream_one.next_event(timeout=10)
    assert message == {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": exposed_b}}, (
        f"after unsubscribing, the session's next update should be of {exposed_b}: {message}")
    unsubscribes = [line for line in served.stderr_text().splitlines()
                    if re.search(r"request http:\w+ id .*resources/unsubscribe.*-> backend \"gamma\"", line)]
    assert unsubscribes == [], "an unsubscribe while another session subscribes must not reach gamma:\n" + "\n".join(unsubscribes)

    deleted = two.delete()
    assert deleted.status == 204, deleted
    deadline = time.monotonic() + 5
    while touch(one, a_uri):
        assert time.monotonic() < deadline, "gamma still holds the subscription after its last subscriber ended"
        time.sleep(0.05)
    assert touch(one, b_uri) is True, "the remaining session's own subscription was released"
