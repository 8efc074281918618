"""`mcpd serve`: the per-server endpoints `/mcp/<server>` (one configured server alone, under its own names).

What is tested (alpha and gamma configured; `/mcp` is the gateway's endpoint with every server):
- tools: /mcp/alpha lists exactly alpha's tools under their own names (each definition otherwise
  equal to /mcp's `alpha__<name>`), /mcp/gamma exactly gamma's; the SDK client's `echo` at
  /mcp/alpha returns multi-byte and escape-dense texts byte for byte; a prefixed name
  (`alpha__echo`) at /mcp/alpha is an unknown tool (MCPError "Unknown tool"), as is gamma's tool
  at /mcp/alpha;
- capabilities: /mcp/alpha announces only what alpha declares (tools, prompts, resources without
  subscribe; no completions, no logging), /mcp/gamma what gamma declares (completions, logging,
  resources with subscribe), /mcp all of them;
- resources at /mcp/gamma: resources/list and resources/templates/list give gamma's URIs and
  templates exactly as gamma lists them (no `mcpd://`); resources/read by gamma's own URI (a
  listed one and one matching a template) returns contents carrying that URI; the `mcpd://` form
  is not a resource there; resources/subscribe by own URI, then gamma__touch: the view session
  receives notifications/resources/updated with gamma's own URI while a /mcp session subscribed to
  the same resource receives it with the `mcpd://gamma/...` URI; after the view session
  unsubscribes, gamma keeps the /mcp session's subscription and only that session is notified;
- prompts at /mcp/gamma: prompts/list own names, prompts/get by own name (arguments rendered),
  `gamma__greet` is not a prompt there; completion/complete for ref/prompt `greet` (own name);
- sessions are bound to the endpoint that opened them: an Mcp-Session-Id of /mcp/alpha is 404 at
  /mcp/gamma and at /mcp, one of /mcp is 404 at /mcp/alpha, for POST, GET and DELETE; none of the
  refused DELETEs ended the session (it still works at its own endpoint, where GET opens its
  stream and DELETE ends it: 204, then 404);
- an unknown server name (and an empty one, and a deeper path): 404 with the JSON body
  `{"error": "no server named \"nope\" (per-server endpoints: /mcp/<server> for alpha, gamma)"}`,
  for POST, GET and DELETE, and for a stateless POST;
- one backend process: sessions at /mcp/alpha and at /mcp use one alpha process (pid files), and
  its state is shared (alpha__sleep at /mcp is counted by `stats` at /mcp/alpha);
- list_changed: gamma's add_prompt (called at /mcp/gamma) brings notifications/prompts/list_changed
  to the /mcp/gamma session and to the /mcp session but not (within 1 s) to a /mcp/alpha session;
  the new prompt is listed under its own name at /mcp/gamma and prefixed at /mcp; likewise
  add_resource's resources/list_changed (the new URI listed as is at /mcp/gamma, as mcpd://gamma/...
  at /mcp). A SIGHUP reload changing alpha's tool filter then brings tools/list_changed to
  /mcp/alpha and /mcp but not to /mcp/gamma (which shows the /mcp/alpha session's stream was live);
- log messages: gamma's notifications/message (its `log` tool) reaches the /mcp/gamma and /mcp
  sessions but not a /mcp/alpha session (which announced no logging capability);
- the stateless era (2026-07-28) at /mcp/alpha: tools/list gives alpha's own names, tools/call
  `echo` with `Mcp-Name: echo` is served byte for byte, with no session; `Mcp-Name: alpha__echo`
  for a body naming `echo` is 400 with JSON-RPC error -32020; a body naming `alpha__echo` (header
  matching) is a JSON-RPC error; server/discover announces alpha's capabilities only;
- the stateless era at the views: subscriptions/listen {promptsListChanged} at /mcp/alpha,
  /mcp/gamma and /mcp: gamma's add_prompt is announced on the /mcp/gamma and /mcp streams (tagged
  with their listen ids), not on /mcp/alpha's; at /mcp/gamma resources/read by own URI with
  `Mcp-Name` that URI is served (`Mcp-Name` of the mcpd:// form: 400 -32020), prompts/get greet
  with `Mcp-Name: greet` too.

Every mcpd is started by test_streamable_http's `serve` fixture (a free port, /health with every
backend ready; SIGTERM, exit 0 and no backend left at the end). Status codes use raw http.client;
the end-to-end parts the official SDK (mcp 2.3.0 `streamable_http_client` + `ClientSession`).
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcpd_helpers import ALPHA_TOOLS, PROTOCOL_VERSION, pids_of, server_entry
from test_http_eras import SSEReader
from test_streamable_http import (  # noqa: F401  (serve is a fixture)
    BOTH,
    EventStream,
    SESSION_ID,
    TEXTS,
    Reply,
    dumps,
    http_request,
    init_message,
    serve,
)

pytestmark = [
    # resources/subscribe and logging are deprecated as of 2026-07-28; handshake clients use them.
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

GAMMA_TOOLS = {"echo", "touch", "log", "add_prompt", "add_resource", "ask_sample", "ask_elicit", "ask_roots",
               "client_caps", "slow", "era"}
GAMMA_RESOURCES = [
    "file:///gamma/a.txt",
    "file:///gamma/b.txt",
    "file:///gamma/pixel.png",
    "file:///gamma/tricky.txt",
    "gamma://static/readme",
    "https://example.com/gamma/q?a=1&b=%2F#frag",
]
GAMMA_TEMPLATES = [
    "gamma://notes/{id}",
    "gamma://users/{user}/files/{+path}",
    "gamma://search{?q,limit}",
    "file:///gamma/logs/{date}.log",
]
GAMMA_PROMPTS = ["greet", "plain", "multi", "review"]
MODERN = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}


# --------------------------------------------------------------------------- helpers


def two_servers(write_config: Callable[..., Path], piddir: Path, **alpha_extra: Any) -> Path:
    return write_config({"servers": {"alpha": server_entry("alpha", piddir, **alpha_extra),
                                     "gamma": server_entry("gamma", piddir)}})


class PathSession:
    """A handshake-era session over raw POSTs at `path` (/mcp or /mcp/<server>)."""

    def __init__(self, port: int, path: str) -> None:
        self.port = port
        self.path = path
        reply = http_request(port, "POST", dumps(init_message()), {"Content-Type": "application/json", "Accept": BOTH},
                             path=path)
        assert reply.status == 200, f"initialize at {path}: {reply}"
        self.id = reply.headers.get("mcp-session-id", "")
        assert SESSION_ID.fullmatch(self.id), f"initialize at {path}: Mcp-Session-Id {self.id!r}: {reply}"
        self.init = reply.json()
        assert "result" in self.init, reply
        initialized = self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert initialized.status == 202, initialized
        self._next = 100

    def headers(self, **extra: str) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": BOTH, "Mcp-Session-Id": self.id,
             "MCP-Protocol-Version": PROTOCOL_VERSION}
        h.update(extra)
        return h

    def post(self, message: Any, path: str | None = None) -> Reply:
        return http_request(self.port, "POST", dumps(message), self.headers(), path=path or self.path)

    def request(self, method: str, params: Any = None) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next, "method": method}
        if params is not None:
            message["params"] = params
        reply = self.post(message)
        assert reply.status == 200, f"{method} at {self.path}: {reply}"
        answer = reply.json()
        assert answer.get("id") == self._next, answer
        return answer

    def delete(self, path: str | None = None) -> Reply:
        return http_request(self.port, "DELETE", headers={"Mcp-Session-Id": self.id}, path=path or self.path)


class Stream(EventStream):
    """A GET event stream at `path` for a session, read message by message."""

    def __init__(self, port: int, path: str, session_id: str) -> None:
        super().__init__(port, session_id, path=path)

    def next_message(self, timeout: float = 10.0) -> dict[str, Any]:
        event, data = self.next_event(timeout)
        assert event == "message", (event, data)
        return data


class Inbox:
    """Notifications the SDK client handed to message_handler, in arrival order."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._arrived = anyio.Event()

    async def put(self, item: Any) -> None:
        if isinstance(item, Exception):
            return
        self.items.append(item)
        self._arrived.set()
        self._arrived = anyio.Event()

    def of(self, kind: type) -> list[Any]:
        return [item for item in self.items if isinstance(item, kind)]

    async def wait_for(self, kind: type, count: int = 1, timeout: float = 10.0) -> list[Any]:
        """Waits until at least `count` items of `kind` arrived; returns them."""
        with anyio.fail_after(timeout):
            while len(self.of(kind)) < count:
                await self._arrived.wait()
        return self.of(kind)


@asynccontextmanager
async def sdk_session(url: str, **kwargs: Any) -> AsyncIterator[ClientSession]:
    """An initialized SDK ClientSession over Streamable HTTP at `url` (kwargs go to ClientSession);
    its InitializeResult is `session.initialize_result`."""
    async with streamable_http_client(url) as (read, write):
        async with ClientSession(read, write, **kwargs) as session:
            await session.initialize()
            yield session


async def list_all(fn: Callable[..., Any], attr: str) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(50):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
        result = await fn(params=params)
        items.extend(getattr(result, attr))
        cursor = result.next_cursor
        if cursor is None:
            return items
    raise AssertionError(f"{attr}: more than 50 pages")


def caps_of(init: Any) -> dict[str, Any]:
    return init.capabilities.model_dump(by_alias=True, exclude_none=True)


def text_of(result: types.CallToolResult) -> str:
    assert result.content and isinstance(result.content[0], types.TextContent), result
    return result.content[0].text


def stateless_post(port: int, path: str, method: str, params: dict[str, Any], id: Any,
                   name: str | None = None, mcp_method: str | None = None, timeout: float = 30.0) -> Reply:
    body = {"jsonrpc": "2.0", "id": id, "method": method, "params": dict(params, _meta=META)}
    headers = {"Content-Type": "application/json", "Accept": BOTH, "MCP-Protocol-Version": MODERN,
               "Mcp-Method": mcp_method or method}
    if name is not None:
        headers["Mcp-Name"] = name
    return http_request(port, "POST", dumps(body), headers, path=path, timeout=timeout)


# --------------------------------------------------------------------------- tools and capabilities


@pytest.mark.anyio
async def test_view_lists_and_calls_tools_under_their_own_names(serve, write_config, piddir):
    """/mcp/alpha: tools/list is exactly alpha's tools, unprefixed, each definition equal to /mcp's
    alpha__<name> apart from the name; /mcp/gamma: exactly gamma's. `echo` at /mcp/alpha returns
    every multi-byte and escape-dense text byte for byte; `alpha__echo` and gamma's `touch` at
    /mcp/alpha are unknown tools (MCPError "Unknown tool"); the session still works afterwards."""
    served = serve(two_servers(write_config, piddir))
    base = served.url
    with anyio.fail_after(40):
        async with sdk_session(base) as whole:
            full = {t.name: t.model_dump(by_alias=True, exclude_none=True) for t in await list_all(whole.list_tools, "tools")}
        async with sdk_session(f"{base}/gamma") as gamma:
            gamma_names = [t.name for t in await list_all(gamma.list_tools, "tools")]
        async with sdk_session(f"{base}/alpha") as alpha:
            assert alpha.initialize_result.server_info.name == "mcpd"
            assert alpha.initialize_result.protocol_version == PROTOCOL_VERSION
            tools = {t.name: t.model_dump(by_alias=True, exclude_none=True) for t in await list_all(alpha.list_tools, "tools")}
            echoed = []
            for text in TEXTS:
                res = await alpha.call_tool("echo", {"text": text})
                assert res.is_error is False, res
                echoed.append((text, text_of(res)))
            add = await alpha.call_tool("add", {"a": 2, "b": 0.5})
            refused: dict[str, str] = {}
            for name in ("alpha__echo", "touch"):
                with pytest.raises(MCPError) as excinfo:
                    await alpha.call_tool(name, {"text": "x", "uri": "file:///gamma/a.txt"})
                refused[name] = excinfo.value.message
            after = await alpha.call_tool("echo", {"text": "still here"})

    assert set(tools) == ALPHA_TOOLS, sorted(tools)
    for name, tool in tools.items():
        assert tool == dict(full[f"alpha__{name}"], name=name), f"/mcp/alpha's {name} differs from /mcp's alpha__{name}"
    assert set(gamma_names) == GAMMA_TOOLS and len(gamma_names) == len(GAMMA_TOOLS), gamma_names
    for sent, got in echoed:
        assert got == sent, f"echo of {sent[:60]!r} came back as {got[:60]!r}"
    assert add.structured_content == {"sum": 2.5, "operands": [2.0, 0.5]}, add
    for name, message in refused.items():
        assert "Unknown tool" in message, f"{name} at /mcp/alpha: {message}"
    assert text_of(after) == "still here"


@pytest.mark.anyio
async def test_view_announces_only_its_servers_capabilities(serve, write_config, piddir):
    """initialize at /mcp/alpha announces tools, prompts and resources (alpha, an MCPServer, declares
    them) but no completions, no logging and no resource subscriptions; /mcp/gamma announces
    completions, logging and resources.subscribe (gamma declares them); /mcp announces the union."""
    served = serve(two_servers(write_config, piddir))
    with anyio.fail_after(30):
        async with sdk_session(f"{served.url}/alpha") as alpha:
            alpha_caps = caps_of(alpha.initialize_result)
        async with sdk_session(f"{served.url}/gamma") as gamma:
            gamma_caps = caps_of(gamma.initialize_result)
        async with sdk_session(served.url) as whole:
            whole_caps = caps_of(whole.initialize_result)

    assert {"tools", "prompts", "resources"} <= set(alpha_caps), alpha_caps
    assert "completions" not in alpha_caps and "logging" not in alpha_caps, alpha_caps
    assert not alpha_caps["resources"].get("subscribe"), alpha_caps
    assert {"tools", "prompts", "resources", "completions", "logging"} <= set(gamma_caps), gamma_caps
    assert gamma_caps["resources"].get("subscribe") is True, gamma_caps
    assert gamma_caps["prompts"].get("listChanged") is True, gamma_caps
    assert alpha_caps != gamma_caps
    assert {"tools", "prompts", "resources", "completions", "logging"} <= set(whole_caps), whole_caps
    assert whole_caps["resources"].get("subscribe") is True, whole_caps


# --------------------------------------------------------------------------- resources and prompts


@pytest.mark.anyio
async def test_view_serves_resources_under_the_backends_own_uris(serve, write_config, piddir):
    """/mcp/gamma: resources/list and resources/templates/list are gamma's, in gamma's order, with
    gamma's own URIs (no mcpd://); resources/read of file:///gamma/a.txt and of gamma://notes/42
    (a template) return contents with those URIs; mcpd://gamma/file:///gamma/a.txt is no resource
    there (MCPError). After resources/subscribe of file:///gamma/a.txt at /mcp/gamma and of
    mcpd://gamma/file:///gamma/a.txt at /mcp, gamma__touch says gamma holds the subscription, and
    the view session gets notifications/resources/updated with file:///gamma/a.txt while the /mcp
    session (raw GET stream) gets it with mcpd://gamma/file:///gamma/a.txt. After the view session
    unsubscribes, gamma still holds the subscription (the /mcp session's) and the next change
    reaches the /mcp session only."""
    served = serve(two_servers(write_config, piddir))
    own = "file:///gamma/a.txt"
    exposed = f"mcpd://gamma/{own}"
    whole = PathSession(served.port, "/mcp")
    whole_stream = Stream(served.port, "/mcp", whole.id)
    served.streams.append(whole_stream)  # closed by the fixture
    assert whole_stream.status == 200
    inbox = Inbox()
    with anyio.fail_after(40):
        async with sdk_session(f"{served.url}/gamma", message_handler=inbox.put) as gamma:
            resources = [r.uri for r in await list_all(gamma.list_resources, "resources")]
            templates = [t.uri_template for t in await list_all(gamma.list_resource_templates, "resource_templates")]
            read = await gamma.read_resource(own)
            note = await gamma.read_resource("gamma://notes/42")
            with pytest.raises(MCPError) as excinfo:
                await gamma.read_resource(exposed)
            prefixed_read_error = excinfo.value
            await gamma.subscribe_resource(own)
            assert whole.request("resources/subscribe", {"uri": exposed})["result"] == {}
            touched = await gamma.call_tool("touch", {"uri": own})
            updates = await inbox.wait_for(types.ResourceUpdatedNotification)
            whole_update = await anyio.to_thread.run_sync(whole_stream.next_message)

            # The view session unsubscribes; the /mcp session still holds the subscription.
            await gamma.unsubscribe_resource(own)
            touched_again = await gamma.call_tool("touch", {"uri": own})
            whole_again = await anyio.to_thread.run_sync(whole_stream.next_message)
            await anyio.sleep(0.5)  # nothing should reach the unsubscribed view session
            all_updates = inbox.of(types.ResourceUpdatedNotification)

    assert resources == GAMMA_RESOURCES, resources
    assert templates == GAMMA_TEMPLATES, templates
    assert [c.uri for c in read.contents] == [own], read
    assert read.contents[0].text == "gamma file a", read
    assert [c.uri for c in note.contents] == ["gamma://notes/42"], note
    assert json.loads(note.contents[0].text) == {"template": "gamma://notes/{id}", "variables": {"id": "42"}}, note
    assert prefixed_read_error.code != 0, prefixed_read_error
    assert touched.structured_content == {"sent": True}, touched
    assert [u.params.uri for u in updates] == [own], updates
    assert whole_update == {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": exposed}}
    assert touched_again.structured_content == {"sent": True}, "gamma lost the subscription /mcp still holds"
    assert whole_again == whole_update, whole_again
    assert [u.params.uri for u in all_updates] == [own], f"updates at /mcp/gamma after its unsubscribe: {all_updates}"


@pytest.mark.anyio
async def test_view_serves_prompts_and_completions_under_own_names(serve, write_config, piddir):
    """/mcp/gamma: prompts/list gives greet, plain, multi, review; prompts/get greet (name Ada,
    greeting Hi) renders "Hi, Ada!"; prompts/get gamma__greet is an error; completion/complete
    for ref/prompt greet, argument name "al", gives alpha and alpine (and for review's language
    "p": perl, php, python)."""
    served = serve(two_servers(write_config, piddir))
    with anyio.fail_after(30):
        async with sdk_session(f"{served.url}/gamma") as gamma:
            prompts = [p.name for p in await list_all(gamma.list_prompts, "prompts")]
            greeting = await gamma.get_prompt("greet", {"name": "Ada \u00e9\U0001f389", "greeting": "Hi"})
            with pytest.raises(MCPError):
                await gamma.get_prompt("gamma__greet", {"name": "Ada"})
            names = await gamma.complete(types.PromptReference(type="ref/prompt", name="greet"),
                                         {"name": "name", "value": "al"})
            languages = await gamma.complete(types.PromptReference(type="ref/prompt", name="review"),
                                             {"name": "language", "value": "p"})

    assert prompts == GAMMA_PROMPTS, prompts
    assert greeting.description == "greeting for Ada \u00e9\U0001f389", greeting
    assert [m.content.text for m in greeting.messages] == ["Hi, Ada \u00e9\U0001f389!"], greeting
    assert names.completion.values == ["alpha", "alpine"], names
    assert languages.completion.values == ["perl", "php", "python"], languages


# --------------------------------------------------------------------------- sessions, unknown servers, processes


def test_sessions_are_bound_to_the_endpoint_that_opened_them(serve, write_config, piddir):
    """An Mcp-Session-Id opened at /mcp/alpha is 404 at /mcp/gamma and at /mcp for POST, GET and
    DELETE; one opened at /mcp is 404 at /mcp/alpha and /mcp/gamma likewise. None of the refused
    DELETEs ended a session: both still answer at their own endpoint, where GET opens the event
    stream (200) and DELETE ends the session (204; then 404)."""
    served = serve(two_servers(write_config, piddir))
    port = served.port
    view = PathSession(port, "/mcp/alpha")
    whole = PathSession(port, "/mcp")
    ping = {"jsonrpc": "2.0", "id": 7, "method": "ping"}
    for session, elsewhere in ((view, ("/mcp/gamma", "/mcp")), (whole, ("/mcp/alpha", "/mcp/gamma"))):
        for path in elsewhere:
            what = f"session of {session.path} at {path}"
            reply = session.post(ping, path=path)
            assert reply.status == 404, f"POST, {what}: {reply}"
            reply = http_request(port, "GET", headers={"Accept": "text/event-stream", "Mcp-Session-Id": session.id},
                                 path=path, timeout=5)
            assert reply.status == 404, f"GET, {what}: {reply}"
            reply = session.delete(path=path)
            assert reply.status == 404, f"DELETE, {what}: {reply}"

    assert served.http_sessions() == 2
    assert view.request("ping")["result"] == {}
    assert whole.request("ping")["result"] == {}
    assert {t["name"] for t in view.request("tools/list")["result"]["tools"]} == ALPHA_TOOLS

    for session in (view, whole):
        stream = Stream(port, session.path, session.id)
        served.streams.append(stream)  # closed by the fixture
        assert stream.status == 200, f"GET at {session.path}: {stream.status}"
        assert stream.headers.get("content-type", "").startswith("text/event-stream"), stream.headers
        stream.close()
        reply = session.delete()
        assert reply.status == 204, f"DELETE at {session.path}: {reply}"
        reply = session.post(ping)
        assert reply.status == 404, f"POST after DELETE at {session.path}: {reply}"
    assert served.http_sessions() == 0


def test_unknown_server_is_404_naming_the_servers(serve, write_config, piddir):
    """POST, GET and DELETE of /mcp/nope are 404 with JSON {"error": "no server named \\"nope\\"
    (per-server endpoints: /mcp/<server> for alpha, gamma)"}; so is a stateless POST; /mcp/ (empty
    name) and /mcp/alpha/x (a deeper path) are 404 naming "" and "alpha/x". No session is opened."""
    served = serve(two_servers(write_config, piddir))
    port = served.port
    expected = {"error": 'no server named "nope" (per-server endpoints: /mcp/<server> for alpha, gamma)'}
    replies = {
        "POST": http_request(port, "POST", dumps(init_message()), {"Content-Type": "application/json", "Accept": BOTH},
                             path="/mcp/nope"),
        "GET": http_request(port, "GET", headers={"Accept": "text/event-stream",
                                                  "Mcp-Session-Id": "0123456789abcdef0123456789abcdef"},
                            path="/mcp/nope", timeout=5),
        "DELETE": http_request(port, "DELETE", headers={"Mcp-Session-Id": "0123456789abcdef0123456789abcdef"},
                               path="/mcp/nope"),
        "stateless POST": stateless_post(port, "/mcp/nope", "tools/list", {}, id=1),
    }
    for what, reply in replies.items():
        assert reply.status == 404, f"{what}: {reply}"
        assert reply.headers.get("content-type", "").startswith("application/json"), f"{what}: {reply}"
        assert reply.json() == expected, f"{what}: {reply}"
    for path, name in (("/mcp/", ""), ("/mcp/alpha/x", "alpha/x")):
        reply = http_request(port, "POST", dumps(init_message()), {"Content-Type": "application/json", "Accept": BOTH},
                             path=path)
        assert reply.status == 404, f"{path}: {reply}"
        assert reply.json() == {"error": f'no server named "{name}" (per-server endpoints: /mcp/<server> for alpha, gamma)'}, reply
    assert served.http_sessions() == 0


@pytest.mark.anyio
async def test_view_and_gateway_sessions_share_one_backend_process(serve, write_config, piddir):
    """A session at /mcp/alpha and one at /mcp, used in turn, talk to one alpha process: one alpha
    pid file, and alpha__sleep (0.01 s) called at /mcp is counted by `stats` called at /mcp/alpha
    (and the reverse: a sleep at /mcp/alpha is counted by alpha__stats at /mcp)."""
    served = serve(two_servers(write_config, piddir))
    before = pids_of(piddir, "alpha")
    assert len(before) == 1, before
    with anyio.fail_after(40):
        async with sdk_session(f"{served.url}/alpha") as view, sdk_session(served.url) as whole:
            assert text_of(await view.call_tool("echo", {"text": "v"})) == "v"
            assert text_of(await whole.call_tool("alpha__echo", {"text": "w"})) == "w"
            assert text_of(await whole.call_tool("alpha__sleep", {"seconds": 0.01})) == "slept 0.01"
            via_view = json.loads(text_of(await view.call_tool("stats", {})))
            assert text_of(await view.call_tool("sleep", {"seconds": 0.01})) == "slept 0.01"
            via_whole = json.loads(text_of(await whole.call_tool("alpha__stats", {})))
            during = pids_of(piddir, "alpha")
    assert via_view == {"sleep_started": 1, "sleep_cancelled": 0, "sleep_finished": 1}, via_view
    assert via_whole == {"sleep_started": 2, "sleep_cancelled": 0, "sleep_finished": 2}, via_whole
    assert during == before, f"alpha processes: before {before}, while both sessions were used {during}"


# --------------------------------------------------------------------------- list_changed


@pytest.mark.anyio
async def test_list_changed_reaches_only_sessions_whose_server_changed(serve, write_config, piddir):
    """With SDK sessions open at /mcp/gamma, /mcp and /mcp/alpha: `add_prompt late` at /mcp/gamma
    brings notifications/prompts/list_changed to the /mcp/gamma and /mcp sessions, none to the
    /mcp/alpha session within 1 s; /mcp/gamma then lists `late`, /mcp `gamma__late`, and
    prompts/get late works at /mcp/gamma. Likewise `add_resource file:///gamma/new.txt` brings
    resources/list_changed to /mcp/gamma (which lists the new URI as is) and /mcp (which lists
    mcpd://gamma/file:///gamma/new.txt), none to /mcp/alpha. Then a SIGHUP reload denying alpha's `add` brings
    tools/list_changed to /mcp/alpha and /mcp, none to /mcp/gamma within 1 s, and /mcp/alpha's
    tools/list no longer has `add`."""
    served = serve(two_servers(write_config, piddir))
    inboxes = {"gamma": Inbox(), "whole": Inbox(), "alpha": Inbox()}
    with anyio.fail_after(40):
        async with AsyncExitStack() as stack:
            gamma = await stack.enter_async_context(sdk_session(f"{served.url}/gamma", message_handler=inboxes["gamma"].put))
            whole = await stack.enter_async_context(sdk_session(served.url, message_handler=inboxes["whole"].put))
            alpha = await stack.enter_async_context(sdk_session(f"{served.url}/alpha", message_handler=inboxes["alpha"].put))
            await anyio.sleep(0.3)  # let each client's GET stream open

            assert text_of(await gamma.call_tool("add_prompt", {"name": "late"})) == "added"
            await inboxes["gamma"].wait_for(types.PromptListChangedNotification)
            await inboxes["whole"].wait_for(types.PromptListChangedNotification)
            await anyio.sleep(1.0)
            alpha_prompt_changes = inboxes["alpha"].of(types.PromptListChangedNotification)
            gamma_prompts = [p.name for p in await list_all(gamma.list_prompts, "prompts")]
            whole_prompts = [p.name for p in await list_all(whole.list_prompts, "prompts")]
            late = await gamma.get_prompt("late")

            assert text_of(await gamma.call_tool("add_resource", {"uri": "file:///gamma/new.txt"})) == "added"
            await inboxes["gamma"].wait_for(types.ResourceListChangedNotification)
            await inboxes["whole"].wait_for(types.ResourceListChangedNotification)
            gamma_resources = [r.uri for r in await list_all(gamma.list_resources, "resources")]
            whole_resources = [r.uri for r in await list_all(whole.list_resources, "resources")]

            write_config({"servers": {"alpha": server_entry("alpha", piddir, tools={"deny": ["add"]}),
                                      "gamma": server_entry("gamma", piddir)}})
            served.proc.send_signal(signal.SIGHUP)
            await inboxes["alpha"].wait_for(types.ToolListChangedNotification, timeout=15)
            await inboxes["whole"].wait_for(types.ToolListChangedNotification, timeout=15)
            await anyio.sleep(1.0)
            gamma_tool_changes = inboxes["gamma"].of(types.ToolListChangedNotification)
            alpha_resource_changes = inboxes["alpha"].of(types.ResourceListChangedNotification)
            alpha_tools = {t.name for t in await list_all(alpha.list_tools, "tools")}
            gamma_tools = {t.name for t in await list_all(gamma.list_tools, "tools")}

    assert alpha_prompt_changes == [], f"/mcp/alpha got gamma's prompts/list_changed: {alpha_prompt_changes}"
    assert gamma_prompts == GAMMA_PROMPTS + ["late"], gamma_prompts
    assert "gamma__late" in whole_prompts and "late" not in whole_prompts, whole_prompts
    assert late.messages[0].content.text == "late prompt late with {}", late
    assert gamma_resources == GAMMA_RESOURCES + ["file:///gamma/new.txt"], gamma_resources
    assert "mcpd://gamma/file:///gamma/new.txt" in whole_resources, whole_resources
    assert alpha_resource_changes == [], f"/mcp/alpha got gamma's resources/list_changed: {alpha_resource_changes}"
    assert gamma_tool_changes == [], f"/mcp/gamma got alpha's tools/list_changed: {gamma_tool_changes}"
    assert alpha_tools == ALPHA_TOOLS - {"add"}, alpha_tools
    assert gamma_tools == GAMMA_TOOLS, gamma_tools


# --------------------------------------------------------------------------- stateless era


def test_stateless_era_at_a_view_uses_own_names(serve, write_config, piddir):
    """POSTs with `MCP-Protocol-Version: 2026-07-28` at /mcp/alpha: tools/list gives alpha's tools
    unprefixed; tools/call echo with `Mcp-Name: echo` returns the text byte for byte (200 JSON, no
    Mcp-Session-Id); `Mcp-Name: alpha__echo` for a body naming echo is 400 with -32020 and the
    request's id; a body naming alpha__echo (with a matching header) is a JSON-RPC error, not a
    result; server/discover announces no completions and no logging. No HTTP session is counted."""
    served = serve(two_servers(write_config, piddir))
    port = served.port
    path = "/mcp/alpha"
    listing = stateless_post(port, path, "tools/list", {}, id="list-1")
    assert listing.status == 200, listing
    assert "mcp-session-id" not in listing.headers, listing
    assert {t["name"] for t in listing.json()["result"]["tools"]} == ALPHA_TOOLS, listing

    text = "h\u00e9llo \"quoted\" \\ back \u2028 \U0001f680 \u6f22\u5b57\n\t"
    call = stateless_post(port, path, "tools/call", {"name": "echo", "arguments": {"text": text}}, id=5, name="echo")
    assert call.status == 200, call
    assert call.headers.get("content-type", "").startswith("application/json"), call
    assert "mcp-session-id" not in call.headers, call
    answer = call.json()
    assert answer["id"] == 5 and answer["result"]["content"] == [{"type": "text", "text": text}], call

    mismatch = stateless_post(port, path, "tools/call", {"name": "echo", "arguments": {"text": "x"}}, id=6,
                              name="alpha__echo")
    assert mismatch.status == 400, mismatch
    answer = mismatch.json()
    assert answer.get("id") == 6 and answer.get("error", {}).get("code") == -32020 and "result" not in answer, mismatch

    prefixed = stateless_post(port, path, "tools/call", {"name": "alpha__echo", "arguments": {"text": "x"}}, id=7,
                              name="alpha__echo")
    answer = prefixed.json()
    assert answer.get("id") == 7 and "error" in answer and "result" not in answer, prefixed
    assert "Unknown tool" in answer["error"].get("message", ""), prefixed

    discover = stateless_post(port, path, "server/discover", {}, id="d")
    assert discover.status == 200, discover
    caps = discover.json()["result"]["capabilities"]
    assert "tools" in caps and "completions" not in caps and "logging" not in caps, discover
    assert served.health()["sessions"]["http"] == 0




@pytest.mark.anyio
async def test_log_messages_reach_only_sessions_that_show_the_server(serve, write_config, piddir):
    """gamma's `log` tool (called at /mcp/gamma) sends notifications/message, once without a
    logger and once with logger "db": both reach the /mcp/gamma session with gamma's own logger
    (none, then "db") and the /mcp session with the server named ("gamma", then "gamma/db"), with
    their level and data, but not (within 1 s) a /mcp/alpha session, whose initialize announced no
    logging capability (and where logging/setLevel does not exist, so it could not even turn the
    messages down)."""
    served = serve(two_servers(write_config, piddir))
    inboxes = {"gamma": Inbox(), "whole": Inbox(), "alpha": Inbox()}
    message = "from gamma \u00e9\U0001f389"
    with anyio.fail_after(30):
        async with AsyncExitStack() as stack:
            gamma = await stack.enter_async_context(sdk_session(f"{served.url}/gamma", message_handler=inboxes["gamma"].put))
            await stack.enter_async_context(sdk_session(served.url, message_handler=inboxes["whole"].put))
            alpha = await stack.enter_async_context(sdk_session(f"{served.url}/alpha", message_handler=inboxes["alpha"].put))
            alpha_caps = caps_of(alpha.initialize_result)
            await anyio.sleep(0.3)  # let each client's GET stream open
            assert text_of(await gamma.call_tool("log", {"level": "warning", "message": message})) == "logged"
            assert text_of(await gamma.call_tool("log", {"level": "error", "message": "second", "logger": "db"})) == "logged"
            at_gamma = await inboxes["gamma"].wait_for(types.LoggingMessageNotification, count=2)
            at_whole = await inboxes["whole"].wait_for(types.LoggingMessageNotification, count=2)
            await anyio.sleep(1.0)
            at_alpha = inboxes["alpha"].of(types.LoggingMessageNotification)
            # The alpha session itself works (its GET stream included: see the list_changed test).
            assert text_of(await alpha.call_tool("echo", {"text": "ok"})) == "ok"

    assert "logging" not in alpha_caps, alpha_caps
    assert [(n.params.level, n.params.data, n.params.logger) for n in at_gamma] == [("warning", message, None), ("error", "second", "db")], at_gamma
    assert [(n.params.level, n.params.data, n.params.logger) for n in at_whole] == [("warning", message, "gamma"), ("error", "second", "gamma/db")], at_whole
    assert at_alpha == [], f"/mcp/alpha (no logging capability) got gamma's log messages: {at_alpha}"


def test_stateless_listen_and_read_at_views(serve, write_config, piddir):
    """Stateless era at the views: subscriptions/listen {promptsListChanged} streams opened at
    /mcp/alpha, /mcp/gamma and /mcp are acknowledged; gamma's add_prompt (a handshake session at
    /mcp/gamma) brings prompts/list_changed, tagged with the listen request's id, to the /mcp/gamma
    and /mcp streams and nothing (within 1 s) to the /mcp/alpha stream. resources/read of gamma's
    own URI at /mcp/gamma with `Mcp-Name` that URI returns contents with that URI; `Mcp-Name` of
    the mcpd:// form is 400 -32020; prompts/get greet with `Mcp-Name: greet` is served."""
    served = serve(two_servers(write_config, piddir))
    port = served.port
    streams: dict[str, SSEReader] = {}
    try:
        for path, sid in (("/mcp/alpha", "listen-alpha"), ("/mcp/gamma", "listen-gamma"), ("/mcp", "listen-all")):
            body = {"jsonrpc": "2.0", "id": sid, "method": "subscriptions/listen",
                    "params": {"notifications": {"promptsListChanged": True}, "_meta": META}}
            stream = SSEReader(port, "POST", path, dumps(body),
                               {"Content-Type": "application/json", "Accept": "text/event-stream",
                                "MCP-Protocol-Version": MODERN, "Mcp-Method": "subscriptions/listen"})
            streams[path] = stream
            assert stream.status == 200, (path, stream.status, stream.headers)
            ack = stream.next_message(timeout=10)
            assert ack.get("method") == "notifications/subscriptions/acknowledged", (path, ack)
            assert ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == sid, (path, ack)

        session = PathSession(port, "/mcp/gamma")
        answer = session.request("tools/call", {"name": "add_prompt", "arguments": {"name": "late"}})
        assert answer["result"]["content"][0]["text"] == "added", answer
        for path, sid in (("/mcp/gamma", "listen-gamma"), ("/mcp", "listen-all")):
            changed = streams[path].next_message(timeout=10)
            assert changed == {"jsonrpc": "2.0", "method": "notifications/prompts/list_changed",
                               "params": {"_meta": {"io.modelcontextprotocol/subscriptionId": sid}}}, (path, changed)
        try:
            extra = streams["/mcp/alpha"].next_message(timeout=1.0)
        except AssertionError as exc:  # nothing came within 1 s, as it should
            assert "no event within" in str(exc), exc
        else:
            raise AssertionError(f"/mcp/alpha's listen stream got gamma's prompts/list_changed: {extra}")
    finally:
        for stream in streams.values():
            stream.close()

    own = "file:///gamma/a.txt"
    read = stateless_post(port, "/mcp/gamma", "resources/read", {"uri": own}, id="r-1", name=own)
    assert read.status == 200, read
    answer = read.json()
    assert answer["id"] == "r-1" and [c["uri"] for c in answer["result"]["contents"]] == [own], read
    assert answer["result"]["contents"][0]["text"] == "gamma file a", read
    mismatch = stateless_post(port, "/mcp/gamma", "resources/read", {"uri": own}, id="r-2", name=f"mcpd://gamma/{own}")
    assert mismatch.status == 400 and mismatch.json().get("error", {}).get("code") == -32020, mismatch
    prompt = stateless_post(port, "/mcp/gamma", "prompts/get", {"name": "greet", "arguments": {"name": "Ada"}},
                            id="p-1", name="greet")
    assert prompt.status == 200, prompt
    assert prompt.json()["result"]["messages"][0]["content"]["text"] == "Hello, Ada!", prompt
