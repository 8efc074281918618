"""`mcpd serve`: MCP's Streamable HTTP transport at /mcp (handshake era, protocol up to 2025-11-25).

What is tested:
- the start-up line `listening on http://127.0.0.1:N/mcp (Streamable HTTP; probes: /health, /ready);
  a client's config: {...}` and its JSON snippet;
- sessions: POST initialize without Mcp-Session-Id opens one (the response carries a 32 lowercase
  hex id; two sessions get different ids); /health `sessions.http` counts them; DELETE ends one
  (204), after which it is 404 for POST, GET and DELETE; `http session XXXXXXXX ended by its client`
  is logged;
- refused requests: no session id on a non-initialize POST (400), an unknown id (404) for POST, GET
  and DELETE; an unsupported MCP-Protocol-Version (400); an Accept with neither application/json nor
  text/event-stream (406), for GET one without text/event-stream (406); a Content-Type other than
  application/json (415); a body that is not JSON (400 with a JSON-RPC -32700 error); PUT and PATCH
  (405 with Allow);
- answers: JSON when the client accepts JSON (also for `*/*` and for no Accept at all), one
  `event: message` Server-Sent Event when it accepts only text/event-stream; only notifications or
  responses in a POST: 202 with an empty body; a batch under 2025-03-26: one JSON array; a batch
  under 2025-11-25: refused with one -32600 error, as over stdio;
- the GET stream: a notification mcpd sent before the stream opened (tools/list_changed after a
  SIGHUP reload) arrives when it opens, a later one arrives live; SIGTERM with the stream open ends
  it and mcpd exits 0; a backend's sampling/createMessage reaches the client as an event on the
  stream, and the client's POSTed answer (202) reaches the backend and completes the tool call;
- 20 concurrent sessions x 5 concurrent calls each (the same request ids in every session) through
  one shared alpha process: every call gets exactly its own answer;
- expiry with `http.session_timeout: 2s`: an idle session is gone (404) after about 2-4 s, while a
  session with an open GET stream and one with a request in flight live on;
- debug log lines for requests name the session as `http:` + the first 8 characters of its id;
- the official SDK client (mcp 2.3.0 `streamable_http_client` + `ClientSession`): initialize
  (2025-11-25, server mcpd), list_tools, byte-exact echo of multi-byte and escape-dense text, an
  unknown tool (MCPError "Unknown tool"), an isError result; sampling, elicitation and roots
  callbacks answering gamma through the GET stream; progress notifications reaching the progress
  callback; leaving the client sends DELETE (204) and mcpd logs the session's end.

Every mcpd is started by the `serve` fixture as `mcpd serve -c CONFIG --port N` on a port picked
free beforehand, and stopped with SIGTERM: it must exit 0 within 10 s and leave no backend running.
Status-code tests use raw `http.client`; the end-to-end ones the SDK.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcpd_helpers import (
    ALPHA_TOOLS,
    BETA_TOOLS,
    PROTOCOL_VERSION,
    hostile,
    kill_group,
    pids_of,
    server_entry,
)

HOST = "127.0.0.1"
BOTH = "application/json, text/event-stream"
SESSION_ID = re.compile(r"[0-9a-f]{32}")


# --------------------------------------------------------------------------- raw HTTP


def free_port() -> int:
    """A port nobody listens on right now (bound to 0, read, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Reply:
    """One complete HTTP response."""

    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[tuple[str, str]]:
        """The body as Server-Sent Events: (event, data) pairs, comments skipped."""
        return parse_events(self.body.decode())

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.headers} {self.body[:600]!r}"


def parse_events(text: str) -> list[tuple[str, str]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event, data = "message", []
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        for line in lines:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        events.append((event, "\n".join(data)))
    return events


def http_request(port: int, method: str, body: bytes | str | None = None, headers: dict[str, str] | None = None,
                 path: str = "/mcp", timeout: float = 10.0) -> Reply:
    """One request on a fresh connection; the whole response."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    except (TimeoutError, socket.timeout):
        raise AssertionError(f"no complete answer to {method} {path} {body[:300]!r} within {timeout} s") from None
    finally:
        conn.close()


def dumps(message: Any) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def init_message(version: str = PROTOCOL_VERSION, capabilities: dict[str, Any] | None = None, id: Any = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": id,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": capabilities or {},
            "clientInfo": {"name": "streamable-http-tests", "version": "0"},
        },
    }


class RawSession:
    """A handshake-era session over raw POSTs."""

    def __init__(self, port: int, version: str = PROTOCOL_VERSION, capabilities: dict[str, Any] | None = None) -> None:
        self.port = port
        self.version = version
        reply = http_request(port, "POST", dumps(init_message(version, capabilities)),
                             {"Content-Type": "application/json", "Accept": BOTH})
        assert reply.status == 200, reply
        assert reply.headers.get("content-type", "").startswith("application/json"), reply
        self.id = reply.headers.get("mcp-session-id", "")
        assert SESSION_ID.fullmatch(self.id), f"Mcp-Session-Id {self.id!r} is not 32 lowercase hex characters: {reply}"
        self.init = reply.json()
        assert self.init.get("id") == 1 and "result" in self.init, reply
        initialized = self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert initialized.status == 202 and initialized.body == b"", initialized
        self._next = 100
        self._lock = threading.Lock()

    def headers(self, accept: str | None = BOTH, **extra: str) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Mcp-Session-Id": self.id, "MCP-Protocol-Version": self.version}
        if accept is not None:
            h["Accept"] = accept
        h.update(extra)
        return h

    def post(self, message: Any, accept: str | None = BOTH, timeout: float = 10.0, **extra: str) -> Reply:
        body = message if isinstance(message, str | bytes) else dumps(message)
        return http_request(self.port, "POST", body, self.headers(accept, **extra), timeout=timeout)

    def new_id(self) -> int:
        with self._lock:
            self._next += 1
            return self._next

    def request(self, method: str, params: Any = None, id: Any = None, timeout: float = 10.0) -> dict[str, Any]:
        """A request whose answer must come back as the POST's JSON body."""
        rid = self.new_id() if id is None else id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            message["params"] = params
        reply = self.post(message, timeout=timeout)
        assert reply.status == 200, reply
        assert reply.headers.get("content-type", "").startswith("application/json"), reply
        answer = reply.json()
        assert isinstance(answer, dict) and answer.get("id") == rid, f"answer to {message} is {reply}"
        return answer

    def call_text(self, tool: str, arguments: dict[str, Any], id: Any = None, timeout: float = 10.0) -> str:
        answer = self.request("tools/call", {"name": tool, "arguments": arguments}, id=id, timeout=timeout)
        assert "result" in answer, answer
        return answer["result"]["content"][0]["text"]

    def delete(self) -> Reply:
        return http_request(self.port, "DELETE", headers={"Mcp-Session-Id": self.id})


class EventStream:
    """The session's GET stream (at `path`: /mcp, or /mcp/<server>), read event by event."""

    def __init__(self, port: int, session_id: str, timeout: float = 10.0, path: str = "/mcp") -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self.conn.connect()
        self.sock = self.conn.sock
        self.conn.request("GET", path, headers={"Accept": "text/event-stream", "Mcp-Session-Id": session_id})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}

    def next_event(self, timeout: float = 10.0) -> tuple[str, Any]:
        """The next event (comments skipped): (event name, parsed data). Fails on timeout or end."""
        self.sock.settimeout(timeout)
        lines: list[str] = []
        try:
            while True:
                raw = self.response.readline()
                if not raw:
                    raise AssertionError(f"the GET stream ended; partial event: {lines}")
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if lines:
                        break
                    continue
                if not line.startswith(":"):
                    lines.append(line)
        except (TimeoutError, socket.timeout):
            raise AssertionError(f"no event on the GET stream within {timeout} s; partial: {lines}") from None
        (event, data), = parse_events("\n".join(lines) + "\n\n")
        return event, json.loads(data)

    def wait_end(self, timeout: float = 10.0) -> bytes:
        """Reads until the server ends the stream; returns what came meanwhile."""
        self.sock.settimeout(timeout)
        try:
            return self.response.read()
        except (TimeoutError, socket.timeout):
            raise AssertionError(f"the GET stream was still open {timeout} s later") from None

    def close(self) -> None:
        self.conn.close()
        self.sock.close()


# --------------------------------------------------------------------------- the served mcpd


@dataclass
class Served:
    """One `mcpd serve` process."""

    proc: subprocess.Popen
    port: int
    stderr_path: Path
    streams: list[EventStream] = field(default_factory=list)
    signalled: bool = False

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/mcp"

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 5.0) -> str:
        """The first stderr line matching the regex `pattern` (polls until it is there)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.stderr_text().splitlines():
                if regex.search(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no stderr line matching {pattern!r} within {timeout} s\n{self.stderr_text()[-3000:]}")
            time.sleep(0.05)

    def health(self) -> dict[str, Any]:
        reply = http_request(self.port, "GET", path="/health")
        assert reply.status == 200, reply
        return reply.json()

    def wait_backends_ready(self, timeout: float = 30.0) -> None:
        """Polls /health until every backend is ready (a loaded machine can take longer to start
        them than mcpd's start-up wait, after which a call to a starting backend is refused)."""
        deadline = time.monotonic() + timeout
        while True:
            backends = self.health()["backends"]
            if backends and all(b["state"] == "ready" for b in backends.values()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"backends not ready after {timeout} s: {backends}\n{self.stderr_text()[-3000:]}")
            time.sleep(0.05)

    def http_sessions(self) -> int:
        return self.health()["sessions"]["http"]

    def stream(self, session_id: str) -> EventStream:
        s = EventStream(self.port, session_id)
        self.streams.append(s)
        return s

    def stop(self, timeout: float = 10.0) -> int:
        """One SIGTERM; the exit status (fails when mcpd is still running `timeout` s later)."""
        if not self.signalled and self.proc.poll() is None:
            self.signalled = True
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.proc.pid)
            self.proc.wait(5)
            raise AssertionError(f"mcpd serve did not exit within {timeout} s of SIGTERM\n{self.stderr_text()[-3000:]}") from None


@pytest.fixture
def serve(mcpd_bin: str, tmp_path: Path, mcpd_env: dict[str, str], assert_backends_dead) -> Iterator[Callable[..., Served]]:
    """serve(config, *args): `mcpd serve -c config --port N ARGS`, N a free port; returns once the
    port accepts connections and /health shows every backend ready. At the end: SIGTERM, exit 0
    within 10 s, no backend left."""
    started: list[Served] = []

    def start(config: Path, *args: str) -> Served:
        port = free_port()
        stderr_path = tmp_path / f"serve-{len(started)}.stderr"
        with open(stderr_path, "ab") as err:
            proc = subprocess.Popen([mcpd_bin, "serve", "-c", str(config), "--port", str(port), *args],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=mcpd_env,
                                    start_new_session=True)
        served = Served(proc, port, stderr_path)
        started.append(served)
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"mcpd serve exited {proc.returncode} before listening\n{served.stderr_text()[-3000:]}")
            try:
                socket.create_connection((HOST, port), timeout=1).close()
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"port {port} not accepting after 10 s\n{served.stderr_text()[-3000:]}") from None
                time.sleep(0.05)
                continue
            served.wait_backends_ready()
            return served

    yield start
    failures = []
    for served in started:
        try:
            code = served.stop()
            if code != 0:
                failures.append(f"mcpd serve exited {code} after SIGTERM\n{served.stderr_text()[-3000:]}")
        except AssertionError as exc:
            failures.append(str(exc))
        for s in served.streams:
            s.close()
    assert not failures, "\n".join(failures)
    assert_backends_dead()


def plain_config(write_config: Callable[..., Path], piddir: Path, **http: Any) -> Path:
    """One eager raw backend (hostile, plain: starts in about 50 ms; tools echo, ...)."""
    config: dict[str, Any] = {"servers": {"h": hostile(piddir, "plain", lazy=False)}}
    if http:
        config["http"] = http
    return write_config(config)


def alpha_config(write_config: Callable[..., Path], piddir: Path, name: str = "mcpd.yaml", **extra: Any) -> Path:
    return write_config({"servers": {"alpha": server_entry("alpha", piddir, **extra)}}, name=name)


# --------------------------------------------------------------------------- start-up, sessions, refusals


def test_startup_line_names_the_endpoint_and_a_client_config(serve, write_config, piddir):
    """mcpd serve logs `listening on http://127.0.0.1:N/mcp (Streamable HTTP; probes: /health,
    /ready); a client's config: JSON`, the JSON being {"mcpServers":{"mcpd":{"type":"http","url":
    <that url>}}}; /health counts no HTTP session yet."""
    served = serve(plain_config(write_config, piddir))
    url = f"http://{HOST}:{served.port}/mcp"
    line = served.wait_log(re.escape(f"listening on {url} "))
    prefix = f"listening on {url} (Streamable HTTP; probes: /health, /ready); a client's config: "
    assert prefix in line, line
    snippet = json.loads(line.split(prefix, 1)[1])
    assert snippet == {"mcpServers": {"mcpd": {"type": "http", "url": url}}}, line
    assert served.http_sessions() == 0


def test_initialize_opens_sessions_and_delete_ends_them(serve, write_config, piddir):
    """Each POST initialize without a session id opens a session: 200 JSON with the result
    (2025-11-25, server mcpd) and an Mcp-Session-Id of 32 lowercase hex characters, different for
    two sessions; /health counts them. DELETE with the id answers 204 with no body and logs `http
    session <first 8> ended by its client`; after it the id is 404 for POST, GET and DELETE, and
    the other session is unaffected."""
    served = serve(plain_config(write_config, piddir))
    a, b = RawSession(served.port), RawSession(served.port)
    assert a.id != b.id
    for s in (a, b):
        assert s.init["result"]["protocolVersion"] == PROTOCOL_VERSION, s.init
        assert s.init["result"]["serverInfo"]["name"] == "mcpd", s.init
    assert served.http_sessions() == 2
    assert {t["name"] for t in a.request("tools/list")["result"]["tools"]} >= {"h__echo"}
    assert a.call_text("h__echo", {"text": "in a"}) == "in a"

    deleted = a.delete()
    assert deleted.status == 204 and deleted.body == b"", deleted
    served.wait_log(re.escape(f"http session {a.id[:8]} ended by its client"))
    assert served.http_sessions() == 1

    after = a.post({"jsonrpc": "2.0", "id": 5, "method": "ping"})
    assert after.status == 404, after
    get = http_request(served.port, "GET", headers={"Accept": "text/event-stream", "Mcp-Session-Id": a.id})
    assert get.status == 404, get
    again = a.delete()
    assert again.status == 404, again

    assert b.request("ping")["result"] == {}
    assert b.call_text("h__echo", {"text": "in b"}) == "in b"
    assert served.http_sessions() == 1


def test_requests_without_a_usable_session_are_refused(serve, write_config, piddir):
    """Without Mcp-Session-Id a POST that is not initialize (a request or a notification) is 400,
    GET and DELETE too; an unknown id is 404 for POST, GET and DELETE. None of them opens a session."""
    served = serve(plain_config(write_config, piddir))
    json_headers = {"Content-Type": "application/json", "Accept": BOTH}
    unknown = "0123456789abcdef0123456789abcdef"

    for message in ({"jsonrpc": "2.0", "id": 1, "method": "ping"},
                    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                    {"jsonrpc": "2.0", "method": "notifications/initialized"}):
        reply = http_request(served.port, "POST", dumps(message), json_headers)
        assert reply.status == 400, (message, str(reply))
        reply = http_request(served.port, "POST", dumps(message), dict(json_headers, **{"Mcp-Session-Id": unknown}))
        assert reply.status == 404, (message, str(reply))

    reply = http_request(served.port, "GET", headers={"Accept": "text/event-stream"})
    assert reply.status == 400, reply
    reply = http_request(served.port, "GET", headers={"Accept": "text/event-stream", "Mcp-Session-Id": unknown})
    assert reply.status == 404, reply
    reply = http_request(served.port, "DELETE")
    assert reply.status == 400, reply
    reply = http_request(served.port, "DELETE", headers={"Mcp-Session-Id": unknown})
    assert reply.status == 404, reply
    # initialize with an id nobody issued does not open a session under it either
    reply = http_request(served.port, "POST", dumps(init_message()), dict(json_headers, **{"Mcp-Session-Id": unknown}))
    assert reply.status == 404, reply
    assert served.http_sessions() == 0


def test_malformed_requests_get_the_documented_status(serve, write_config, piddir):
    """An unsupported MCP-Protocol-Version is 400 (on initialize and in a session); an Accept with
    neither JSON nor an event stream is 406 (for GET: one without text/event-stream); a
    Content-Type other than application/json is 415; a body that is not JSON is 400 with a JSON-RPC
    parse error (-32700, id null); PUT and PATCH are 405 with Allow naming GET, POST and DELETE.
    `*/*`, no Accept at all and `application/json; charset=utf-8` are accepted; the session still
    works afterwards."""
    served = serve(plain_config(write_config, piddir))
    port = served.port
    init_body = dumps(init_message())
    reply = http_request(port, "POST", init_body,
                         {"Content-Type": "application/json", "Accept": BOTH, "MCP-Protocol-Version": "1999-01-01"})
    assert reply.status == 400, reply
    assert served.http_sessions() == 0, "a refused initialize must not open a session"

    s = RawSession(port)
    ping = {"jsonrpc": "2.0", "id": 7, "method": "ping"}
    reply = s.post(ping, **{"MCP-Protocol-Version": "1999-01-01"})
    assert reply.status == 400, reply

    for accept in ("text/html", "text/plain", "image/png"):
        reply = s.post(ping, accept=accept)
        assert reply.status == 406, (accept, str(reply))
    for accept in ("*/*", None, "application/json", "text/event-stream"):
        reply = s.post(ping, accept=accept)
        assert reply.status == 200, (accept, str(reply))

    reply = http_request(port, "GET", headers={"Accept": "application/json", "Mcp-Session-Id": s.id})
    assert reply.status == 406, reply

    for content_type in ("text/plain", "application/x-www-form-urlencoded", "text/event-stream"):
        reply = s.post(ping, **{"Content-Type": content_type})
        assert reply.status == 415, (content_type, str(reply))
    reply = s.post(ping, **{"Content-Type": "application/json; charset=utf-8"})
    assert reply.status == 200 and reply.json() == {"jsonrpc": "2.0", "id": 7, "result": {}}, reply

    for garbage in ('{"jsonrpc":', "not json", "{'single': 1}"):
        reply = s.post(garbage)
        assert reply.status == 400, (garbage, str(reply))
        assert reply.headers.get("content-type", "").startswith("application/json"), reply
        error = reply.json()
        assert error.get("jsonrpc") == "2.0" and error.get("id") is None, reply
        assert error["error"]["code"] == -32700, reply

    for method in ("PUT", "PATCH"):
        reply = http_request(port, method, dumps(ping), s.headers())
        assert reply.status == 405, (method, str(reply))
        allowed = {m.strip() for m in reply.headers.get("allow", "").split(",")}
        assert {"GET", "POST", "DELETE"} <= allowed, reply

    assert s.call_text("h__echo", {"text": "still fine"}) == "still fine"


def test_answer_format_follows_accept(serve, write_config, piddir):
    """A client accepting JSON (alone or with event streams) gets the answer as the POST's
    application/json body; one accepting only text/event-stream gets a text/event-stream body with
    exactly one `event: message` whose data is the answer (initialize included, with its session
    id header). A POST of only notifications, or only a response, is 202 with an empty body."""
    served = serve(plain_config(write_config, piddir))
    port = served.port

    reply = http_request(port, "POST", dumps(init_message(id="init-sse")),
                         {"Content-Type": "application/json", "Accept": "text/event-stream"})
    assert reply.status == 200, reply
    assert reply.headers.get("content-type", "").startswith("text/event-stream"), reply
    assert SESSION_ID.fullmatch(reply.headers.get("mcp-session-id", "")), reply
    events = reply.events()
    assert len(events) == 1 and events[0][0] == "message", reply
    answer = json.loads(events[0][1])
    assert answer["id"] == "init-sse" and answer["result"]["serverInfo"]["name"] == "mcpd", reply

    s = RawSession(port)
    call = {"jsonrpc": "2.0", "id": "c-1", "method": "tools/call",
            "params": {"name": "h__echo", "arguments": {"text": "h\u00e9 \U0001f389"}}}
    for accept in ("application/json", BOTH, "application/json;q=0.9, text/event-stream;q=0.5"):
        reply = s.post(call, accept=accept)
        assert reply.status == 200, (accept, str(reply))
        assert reply.headers.get("content-type", "").startswith("application/json"), (accept, str(reply))
        answer = reply.json()
        assert answer["id"] == "c-1" and answer["result"]["content"][0]["text"] == "h\u00e9 \U0001f389", reply

    reply = s.post(call, accept="text/event-stream")
    assert reply.status == 200, reply
    assert reply.headers.get("content-type", "").startswith("text/event-stream"), reply
    events = reply.events()
    assert len(events) == 1 and events[0][0] == "message", reply
    answer = json.loads(events[0][1])
    assert answer["id"] == "c-1" and answer["result"]["content"][0]["text"] == "h\u00e9 \U0001f389", reply

    for only in ({"jsonrpc": "2.0", "method": "notifications/made-up", "params": {"x": 1}},
                 {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"},
                 {"jsonrpc": "2.0", "id": "nobody-asked", "result": {}},
                 {"jsonrpc": "2.0", "id": 424242, "error": {"code": -32601, "message": "no"}}):
        for accept in (BOTH, "text/event-stream"):
            reply = s.post(only, accept=accept)
            assert reply.status == 202 and reply.body == b"", (only, accept, str(reply))
    assert s.request("ping")["result"] == {}


def test_batch_is_answered_as_one_array_under_2025_03_26(serve, write_config, piddir):
    """Under 2025-03-26 a POSTed batch (two requests and a notification) is answered by one JSON
    array holding both answers; a batch of notifications only is 202."""
    served = serve(plain_config(write_config, piddir))
    s = RawSession(served.port, version="2025-03-26")
    assert s.init["result"]["protocolVersion"] == "2025-03-26", s.init
    batch = [
        {"jsonrpc": "2.0", "id": "b1", "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/made-up"},
        {"jsonrpc": "2.0", "id": "b2", "method": "tools/call", "params": {"name": "h__echo", "arguments": {"text": "x\u00e9"}}},
    ]
    reply = s.post(batch)
    assert reply.status == 200, reply
    assert reply.headers.get("content-type", "").startswith("application/json"), reply
    answers = reply.json()
    assert isinstance(answers, list), f"expected one JSON array: {reply}"
    by_id = {a["id"]: a for a in answers}
    assert sorted(by_id) == ["b1", "b2"] and len(answers) == 2, reply
    assert by_id["b1"]["result"] == {}
    assert by_id["b2"]["result"]["content"][0]["text"] == "x\u00e9"

    reply = s.post([{"jsonrpc": "2.0", "method": "notifications/made-up"}, {"jsonrpc": "2.0", "method": "notifications/other"}])
    assert reply.status == 202 and reply.body == b"", reply
    assert s.request("ping")["result"] == {}


def test_batch_is_refused_under_2025_11_25(serve, write_config, piddir):
    """Under 2025-11-25 (no batches, as over stdio) a POSTed batch is answered, in that POST's
    response and at once, by one JSON-RPC error object -32600 (not an array); the session goes on."""
    served = serve(plain_config(write_config, piddir))
    s = RawSession(served.port)
    reply = s.post([{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": 2, "method": "ping"}], timeout=5)
    assert reply.status in (200, 400), reply
    answer = reply.json()
    assert isinstance(answer, dict) and answer.get("error", {}).get("code") == -32600 and "result" not in answer, reply
    assert s.request("ping")["result"] == {}


# --------------------------------------------------------------------------- the GET stream


def test_get_stream_delivers_notifications_before_and_after_it_opens(serve, write_config, piddir):
    """A reload (SIGHUP) that changes alpha's tool filter makes mcpd send tools/list_changed to every
    session: live on a session's open GET stream; for a session without one (sent before its
    stream opened, as the other session's stream shows), as the stream's first event when it opens
    (200, text/event-stream); a second reload's notification arrives live on the open stream.
    SIGTERM with the streams open ends them, and mcpd exits 0."""
    alpha = server_entry("alpha", piddir, tools={"deny": ["add"]})
    config = write_config({"servers": {"alpha": alpha}})
    served = serve(config)
    s, watcher = RawSession(served.port), RawSession(served.port)
    names = {t["name"] for t in s.request("tools/list")["result"]["tools"]}
    assert "alpha__echo" in names and "alpha__add" not in names, names
    watching = served.stream(watcher.id)
    assert watching.status == 200, watching.headers

    write_config({"servers": {"alpha": dict(alpha, tools={"deny": ["echo"]})}})
    served.proc.send_signal(signal.SIGHUP)
    # Once the other session's open stream has it, mcpd has sent it to `s` too, which has no stream.
    event, message = watching.next_event(timeout=10)
    assert event == "message" and message == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}, message

    stream = served.stream(s.id)
    assert stream.status == 200, stream.headers
    assert stream.headers.get("content-type", "").startswith("text/event-stream"), stream.headers
    event, message = stream.next_event(timeout=5)
    assert event == "message" and message == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}, message
    names = {t["name"] for t in s.request("tools/list")["result"]["tools"]}
    assert "alpha__add" in names and "alpha__echo" not in names, names

    write_config({"servers": {"alpha": dict(alpha, tools={"deny": ["add"]})}})
    served.proc.send_signal(signal.SIGHUP)
    event, message = stream.next_event(timeout=10)
    assert event == "message" and message == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}, message
    assert s.call_text("alpha__echo", {"text": "back"}) == "back"

    assert served.stop() == 0, served.stderr_text()[-3000:]
    stream.wait_end(timeout=5)
    watching.wait_end(timeout=5)


def test_backend_request_travels_on_the_get_stream_and_its_answer_back(serve, write_config, piddir):
    """gamma's sampling/createMessage during a tools/call (POSTed by a client that declared
    sampling) arrives as an `event: message` on the session's GET stream; the client POSTs its
    answer (202), and the tools/call POST then completes with the sampled text."""
    served = serve(write_config({"servers": {"gamma": server_entry("gamma", piddir)}}))
    s = RawSession(served.port, capabilities={"sampling": {}})
    stream = served.stream(s.id)
    assert stream.status == 200, stream.headers

    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["text"] = s.call_text("gamma__ask_sample", {"prompt": "h\u00e9llo \U0001f389"}, id="sample-1", timeout=15)
        except BaseException as exc:  # reported by the main thread
            outcome["error"] = exc

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    event, request = stream.next_event(timeout=10)
    assert event == "message", request
    assert request.get("method") == "sampling/createMessage" and "id" in request, request
    assert request["params"]["messages"][0]["content"] == {"type": "text", "text": "h\u00e9llo \U0001f389"}, request
    assert request["params"]["maxTokens"] == 64, request
    assert "text" not in outcome and "error" not in outcome, "the tool call finished before the client answered"

    answer = {"jsonrpc": "2.0", "id": request["id"],
              "result": {"role": "assistant", "content": {"type": "text", "text": "sampled \u6f22\u5b57"}, "model": "m1"}}
    reply = s.post(answer)
    assert reply.status == 202 and reply.body == b"", reply
    caller.join(15)
    assert not caller.is_alive(), "the tools/call POST was not answered after the sampling answer"
    assert "error" not in outcome, outcome.get("error")
    assert outcome["text"] == "sampled \u6f22\u5b57"


def test_backend_request_with_several_sessions_in_flight_is_refused_not_guessed(serve, write_config, piddir):
    """Session B's gamma__ask_sample is waiting for B's sampling answer when session A calls
    gamma__ask_sample too: gamma's second sampling/createMessage names no client request, and
    two sessions have calls in flight on gamma, so mcpd answers gamma with an error that says so
    (A's call ends with that error, and nothing reaches A's stream) and logs a warning; B's own
    sampling still completes B's call."""
    served = serve(write_config({"servers": {"gamma": server_entry("gamma", piddir)}}))
    a = RawSession(served.port, capabilities={"sampling": {}})
    b = RawSession(served.port, capabilities={"sampling": {}})
    stream_b = served.stream(b.id)
    outcome: dict[str, Any] = {}

    def call(session: RawSession, key: str) -> None:
        try:
            outcome[key] = session.call_text("gamma__ask_sample", {"prompt": key}, id=f"{key}-1", timeout=15)
        except BaseException as exc:  # reported by the main thread
            outcome[key] = exc

    first = threading.Thread(target=call, args=(b, "b"), daemon=True)
    first.start()
    event, request = stream_b.next_event(timeout=10)
    assert event == "message" and request.get("method") == "sampling/createMessage", request
    second = threading.Thread(target=call, args=(a, "a"), daemon=True)
    second.start()
    second.join(15)
    assert not second.is_alive(), "A's call was not answered"
    assert isinstance(outcome.get("a"), str), outcome
    assert "several clients have requests in flight" in outcome["a"] and "isolation: session" in outcome["a"], outcome["a"]
    reply = b.post({"jsonrpc": "2.0", "id": request["id"],
                    "result": {"role": "assistant", "content": {"type": "text", "text": "for b"}, "model": "m"}})
    assert reply.status == 202, reply
    first.join(15)
    assert outcome.get("b") == "for b", outcome
    assert 'backend "gamma": several clients have requests in flight' in served.stderr_text()


# --------------------------------------------------------------------------- shared backends, expiry, logging


def test_many_sessions_share_one_backend_and_get_their_own_answers(serve, write_config, piddir):
    """20 sessions, each with 5 concurrent tools/call alpha__echo using the same request ids 1..5 in
    every session, all 100 calls at once: each gets exactly its own text back (a per-session,
    per-call marker), and only one alpha process was started for all of them."""
    served = serve(alpha_config(write_config, piddir))
    sessions_n, calls_n = 20, 5
    with ThreadPoolExecutor(max_workers=sessions_n * calls_n) as pool:
        sessions = list(pool.map(lambda _: RawSession(served.port), range(sessions_n)))
        assert len({s.id for s in sessions}) == sessions_n
        assert served.http_sessions() == sessions_n
        barrier = threading.Barrier(sessions_n * calls_n)

        def one(job: tuple[int, int]) -> tuple[int, int, str]:
            i, j = job
            barrier.wait(10)
            text = f"session {i} call {j} \u00e9\u6f22\U0001f389 \"{sessions[i].id[:8]}\""
            return i, j, sessions[i].call_text("alpha__echo", {"text": text}, id=j, timeout=20)

        results = list(pool.map(one, [(i, j) for i in range(sessions_n) for j in range(1, calls_n + 1)]))
    assert len(results) == sessions_n * calls_n
    for i, j, got in results:
        assert got == f"session {i} call {j} \u00e9\u6f22\U0001f389 \"{sessions[i].id[:8]}\"", (i, j, got)
    assert len(pids_of(piddir, "alpha")) == 1, f"alpha processes started: {pids_of(piddir, 'alpha')}"


def test_idle_sessions_expire_after_session_timeout(serve, write_config, piddir):
    """With `http: {session_timeout: 2s}`: an idle session is gone after about 2 s (within 6 s;
    /health stops counting it, then POST and GET are 404, and `http session <id8> expired` is
    logged), while a session holding its GET stream open and one whose request is in flight
    (alpha__sleep 3.5 s) live on; the latter expires once its answer has gone and it is idle."""
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir)}, "http": {"session_timeout": "2s"}})
    served = serve(config)
    streaming, busy, idle = RawSession(served.port), RawSession(served.port), RawSession(served.port)
    stream = served.stream(streaming.id)
    assert stream.status == 200
    outcome: dict[str, Any] = {}

    def long_call() -> None:
        try:
            outcome["text"] = busy.call_text("alpha__sleep", {"seconds": 3.5}, timeout=15)
        except BaseException as exc:
            outcome["error"] = exc

    caller = threading.Thread(target=long_call, daemon=True)
    caller.start()
    idle_since = time.monotonic()  # its notifications/initialized was its last use
    assert served.http_sessions() == 3

    deadline = idle_since + 6
    while served.http_sessions() > 2:
        assert time.monotonic() < deadline, f"the idle session is still counted 6 s later\n{served.stderr_text()[-2000:]}"
        time.sleep(0.1)
    gone_after = time.monotonic() - idle_since
    assert gone_after >= 1.5, f"the idle session ended after {gone_after:.2f} s, before its 2 s timeout"
    reply = idle.post({"jsonrpc": "2.0", "id": 9, "method": "ping"})
    assert reply.status == 404, reply
    reply = http_request(served.port, "GET", headers={"Accept": "text/event-stream", "Mcp-Session-Id": idle.id})
    assert reply.status == 404, reply
    served.wait_log(re.escape(f"http session {idle.id[:8]} expired"))

    caller.join(15)
    assert not caller.is_alive() and "error" not in outcome, outcome
    assert outcome["text"] == "slept 3.5"
    answered = time.monotonic()
    # The streaming session has not been used since it opened its stream (over 3.5 s ago).
    assert streaming.request("ping")["result"] == {}
    # The busy one ends about 2 s after its answer went.
    deadline = answered + 6
    while served.http_sessions() > 1:
        assert time.monotonic() < deadline, f"the session idle since its answer is still counted\n{served.stderr_text()[-2000:]}"
        time.sleep(0.1)
    reply = busy.post({"jsonrpc": "2.0", "id": 10, "method": "ping"})
    assert reply.status == 404, reply
    assert streaming.request("ping")["result"] == {}


def test_debug_log_names_the_http_session(serve, write_config, piddir):
    """With --log-level debug, the line logged for a request forwarded to a backend names the
    session as `http:` + the first 8 characters of its id (each session its own)."""
    served = serve(plain_config(write_config, piddir), "--log-level", "debug")
    a, b = RawSession(served.port), RawSession(served.port)
    assert a.call_text("h__echo", {"text": "from a"}, id="log-a") == "from a"
    assert b.call_text("h__echo", {"text": "from b"}, id="log-b") == "from b"
    line_a = served.wait_log(re.escape(f"http:{a.id[:8]}") + r".*tools/call")
    line_b = served.wait_log(re.escape(f"http:{b.id[:8]}") + r".*tools/call")
    assert "log-a" in line_a and "h__echo" in line_a, line_a
    assert "log-b" in line_b and "h__echo" in line_b, line_b
    assert f"http:{a.id[:9]}" not in served.stderr_text(), "the session label must be 8 characters of the id"


# --------------------------------------------------------------------------- the official SDK client


class Recorder:
    """An httpx2 client for the SDK whose responses are recorded: (method, status, session id)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, str | None]] = []

    async def on_response(self, response: httpx2.Response) -> None:
        self.seen.append((response.request.method, response.status_code, response.headers.get("mcp-session-id")))

    def client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=300), event_hooks={"response": [self.on_response]})

    def session_ids(self) -> set[str]:
        return {sid for _, _, sid in self.seen if sid}


TEXTS = [
    "plain",
    "\u00e9",
    "\u6f22\u5b57",
    "\U0001f389",
    "caf\u00e9 \u6f22\u5b57 \U0001f389 \U0001f468\u200d\U0001f469\u200d\U0001f467",
    'quotes "double" and \'single\'',
    "back\\slash \\\\ \\n \\u0041 C:\\path\\to\\file",
    "new\nlines\r\nand\ttabs\n",
    "\u2028\u2029 separators, \x01\x1f controls, \u007f del",
    "</script><!-- & &amp; %2F",
    '\\"\n' * 2000,
    "\u00e9\u6f22\U0001f389\"\\\n" * 500,
]


@pytest.mark.anyio
async def test_sdk_client_end_to_end(serve, write_config, piddir):
    """The SDK's Streamable HTTP client: initialize gives 2025-11-25 and server mcpd; list_tools
    gives exactly alpha__* and beta__*; alpha__echo returns multi-byte and escape-dense texts byte
    for byte (beta__echo with its prefix); an unknown tool raises MCPError naming `Unknown tool`;
    alpha__fail is a result with is_error True. Leaving the client sends DELETE, answered 204, and
    mcpd logs `http session <id8> ended by its client`; /health counts no session afterwards."""
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir), "beta": server_entry("beta", piddir)}})
    served = serve(config)
    recorder = Recorder()
    with anyio.fail_after(40):
        async with recorder.client() as client:
            async with streamable_http_client(served.url, http_client=client) as (read, write):
                async with ClientSession(read, write) as session:
                    init = await session.initialize()
                    assert init.protocol_version == PROTOCOL_VERSION
                    assert init.server_info.name == "mcpd"
                    assert init.capabilities.tools is not None

                    names = sorted(t.name for t in (await session.list_tools()).tools)
                    assert names == sorted([f"alpha__{t}" for t in ALPHA_TOOLS] + [f"beta__{t}" for t in BETA_TOOLS])

                    for text in TEXTS:
                        res = await session.call_tool("alpha__echo", {"text": text})
                        assert res.is_error is False, res
                        assert res.content[0].text == text, f"echo of {text[:60]!r} came back as {res.content[0].text[:60]!r}"
                    res = await session.call_tool("beta__echo", {"text": TEXTS[4]})
                    assert res.content[0].text == "beta:" + TEXTS[4]

                    with pytest.raises(MCPError) as excinfo:
                        await session.call_tool("alpha__nosuchtool", {})
                    assert "Unknown tool" in excinfo.value.message, excinfo.value.message

                    failed = await session.call_tool("alpha__fail", {})
                    assert failed.is_error is True
                    assert failed.content[0].text == "alpha failed on purpose"
                    await session.send_ping()
                    assert served.http_sessions() == 1

    ids = recorder.session_ids()
    assert len(ids) == 1 and SESSION_ID.fullmatch(next(iter(ids))), recorder.seen
    (sid,) = ids
    deletes = [(m, status) for m, status, _ in recorder.seen if m == "DELETE"]
    assert deletes == [("DELETE", 204)], recorder.seen
    served.wait_log(re.escape(f"http session {sid[:8]} ended by its client"))
    assert served.http_sessions() == 0


@pytest.mark.anyio
async def test_sdk_callbacks_answer_backend_requests_through_the_get_stream(serve, write_config, piddir):
    """gamma's sampling/createMessage, elicitation/create and roots/list during tools/call reach the
    SDK client's callbacks (over the GET stream, the only way mcpd sends a request to an HTTP
    client) and their answers reach gamma: the tools return the sampled text, the accepted content,
    `decline`, and the roots."""
    served = serve(write_config({"servers": {"gamma": server_entry("gamma", piddir)}}))
    seen: dict[str, list[Any]] = {"sampling": [], "elicitation": [], "roots": []}
    roots = [types.Root(uri="file:///work/project", name="project"), types.Root(uri="file:///tmp/x%20y")]

    async def sampling(ctx: ClientRequestContext, params: types.CreateMessageRequestParams) -> Any:
        seen["sampling"].append(params)
        text = f"sampled: {params.messages[0].content.text}"
        return types.CreateMessageResult(role="assistant", content=types.TextContent(text=text), model="m1")

    async def elicit(ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        seen["elicitation"].append(params.message)
        if params.message == "decline me":
            return types.ElicitResult(action="decline")
        return types.ElicitResult(action="accept", content={"name": "Ada \u00e9"})

    async def list_roots(ctx: ClientRequestContext) -> types.ListRootsResult:
        seen["roots"].append(True)
        return types.ListRootsResult(roots=roots)

    with anyio.fail_after(40):
        async with streamable_http_client(served.url) as (read, write):
            async with ClientSession(read, write, sampling_callback=sampling, elicitation_callback=elicit,
                                     list_roots_callback=list_roots) as session:
                await session.initialize()
                sampled = await session.call_tool("gamma__ask_sample", {"prompt": "h\u00e9llo \U0001f389"})
                accepted = await session.call_tool("gamma__ask_elicit", {"message": "Who are you?"})
                declined = await session.call_tool("gamma__ask_elicit", {"message": "decline me"})
                rooted = await session.call_tool("gamma__ask_roots", {})
                still = await session.call_tool("gamma__echo", {"text": "after"})

    assert sampled.content[0].text == "sampled: h\u00e9llo \U0001f389"
    assert accepted.content[0].text == 'accept: {"name": "Ada \\u00e9"}'
    assert declined.content[0].text == "decline"
    assert json.loads(rooted.content[0].text) == [r.model_dump(by_alias=True, mode="json", exclude_none=True) for r in roots]
    assert still.content[0].text == "after"
    assert len(seen["sampling"]) == 1 and seen["sampling"][0].max_tokens == 64
    assert seen["elicitation"] == ["Who are you?", "decline me"]
    assert seen["roots"] == [True]


@pytest.mark.anyio
async def test_sdk_progress_notifications_reach_the_callback(serve, write_config, piddir):
    """alpha__slow's progress notifications reach the SDK client's progress callback of that call,
    in order, with progress, total and message; a second call's go only to its own callback."""
    served = serve(alpha_config(write_config, piddir))
    first: list[tuple[float, float | None, str | None]] = []
    second: list[tuple[float, float | None, str | None]] = []

    def recorder(into: list[tuple[float, float | None, str | None]]):
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            into.append((progress, total, message))
        return on_progress

    with anyio.fail_after(40):
        async with streamable_http_client(served.url) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                one = await session.call_tool("alpha__slow", {"steps": 4, "delay": 0.1}, progress_callback=recorder(first))
                two = await session.call_tool("alpha__slow", {"steps": 2, "delay": 0.1}, progress_callback=recorder(second))

    assert one.content[0].text == "done 4"
    assert two.content[0].text == "done 2"
    assert first == [(float(i), 4.0, f"step {i}/4") for i in range(1, 5)]
    assert second == [(1.0, 2.0, "step 1/2"), (2.0, 2.0, "step 2/2")]
