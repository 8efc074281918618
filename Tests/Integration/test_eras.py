"""mcpd serving clients of both MCP protocol eras over stdio, with the backends gamma and alpha.

- The handshake era (2024-11-05 ... 2025-11-25): `initialize`, then a session; backends' sampling,
  elicitation and roots requests reach the client as server-to-client requests; change
  notifications arrive on their own.
- The stateless era (2026-07-28): no `initialize`; every request carries the `_meta` envelope
  (`io.modelcontextprotocol/protocolVersion`, `clientCapabilities`, `clientInfo`); `server/discover`;
  results carry `resultType` (lists also `ttlMs`/`cacheScope`); a backend's sampling, elicitation or
  roots request during a call becomes an `input_required` result that the client answers with a
  retry; change notifications come only on a `subscriptions/listen` stream; `ping`,
  `logging/setLevel` and `resources/(un)subscribe` do not exist (-32601).

The SDK tests use `mcp.Client` in its three modes: "auto" (probes `server/discover`, so it picks
2026-07-28 with mcpd), "2026-07-28" (pinned, no discover) and "legacy" (initialize, 2025-11-25).
The client reaches mcpd through `spawn_jsonrpc_streams` (the same child process and framing as
`StdioServerParameters` would give) so that each test can check mcpd's exit status and record
the wire; one smoke test uses `StdioServerParameters` itself. The wire of each mcpd is written to
`<tmp>/<name>-wire.stderr`, which conftest's report hook shows when a test fails.

Results through mcpd are compared with the same call made directly to the backend (a handshake
ClientSession, `test_surface.direct_session`), in every mode.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.session import ClientRequestContext
from mcp.client.subscriptions import PromptsListChanged
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcpd_helpers import ALPHA_TOOLS, LineProcess, ProcessHandle, backend_script, recorded_pids, server_entry, spawn_jsonrpc_streams
from test_surface import (
    GAMMA_TOOLS,
    PAGE_SIZE,
    RESOURCE_URIS,
    Inbox,
    assert_clean_exit,
    direct_session,
    dump,
    exposed_uri,
    list_all,
    tool_text,
)

pytestmark = [
    # ping, set_logging_level, subscribe_resource, sampling and roots are deprecated as of 2026-07-28.
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

MODERN = "2026-07-28"
MODES = ["auto", MODERN, "legacy"]
STATELESS_MODES = ["auto", MODERN]
EXPECTED_VERSION = {"auto": MODERN, MODERN: MODERN, "legacy": "2025-11-25"}
HANDSHAKE_VERSIONS = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"]

GAMMA_PROMPTS = {"greet", "plain", "multi", "review"}
GAMMA_TEMPLATES = [
    "gamma://notes/{id}",
    "gamma://users/{user}/files/{+path}",
    "gamma://search{?q,limit}",
    "file:///gamma/logs/{date}.log",
]
EXPECTED_EXPOSED = {
    "tools": {f"alpha__{t}" for t in ALPHA_TOOLS} | {f"gamma__{t}" for t in GAMMA_TOOLS},
    "prompts": {f"gamma__{p}" for p in GAMMA_PROMPTS},
    "resources": {exposed_uri(u) for u in RESOURCE_URIS},
    "resourceTemplates": {exposed_uri(t) for t in GAMMA_TEMPLATES},
}
# (method name, on both Client and ClientSession; result attribute; item key)
LISTS = [
    ("list_tools", "tools", "name"),
    ("list_prompts", "prompts", "name"),
    ("list_resources", "resources", "uri"),
    ("list_resource_templates", "resourceTemplates", "uriTemplate"),
]

SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId"


def envelope(version: str = MODERN, capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
    """The 2026-07-28 per-request `_meta` envelope."""
    return {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": capabilities if capabilities is not None else {},
    }


def write_eras_config(write_config: Callable[..., Path], piddir: Path, gamma_era: str = "auto") -> Path:
    """gamma and alpha. `gamma_era`: "auto" serves stateless clients from a second gamma process
    in their own era; "handshake" keeps one gamma process and serves them by translation."""
    return write_config(
        {
            "gateway": {"page_size": PAGE_SIZE},
            "servers": {
                "gamma": server_entry("gamma", piddir, era=gamma_era),
                "alpha": server_entry("alpha", piddir),
            },
        },
        name=f"mcpd-{gamma_era}.yaml",
    )


@pytest.fixture
def eras_config(write_config: Callable[..., Path], piddir: Path) -> Path:
    return write_eras_config(write_config, piddir)


@pytest.fixture(params=["auto", "handshake"])
def gamma_era(request: pytest.FixtureRequest) -> str:
    """How gamma serves stateless clients: in their own era ("auto"), or translated."""
    return request.param


# --------------------------------------------------------------------------- the SDK Client over mcpd, with a wire log


class Wire:
    """Every JSON-RPC message between the Client and mcpd, in order: ("->", msg) sent, ("<-", msg) received.

    Messages are re-serialised from the SDK's parsed model with exclude_unset, so members are those
    on the wire (their order and number formatting may differ)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[tuple[str, Any]] = []

    def record(self, direction: str, item: Any) -> None:
        if isinstance(item, SessionMessage):
            msg = json.loads(item.message.model_dump_json(by_alias=True, exclude_unset=True))
        else:
            msg = {"unparseable": repr(item)}
        self.entries.append((direction, msg))

    def sent(self) -> list[dict[str, Any]]:
        return [m for d, m in self.entries if d == "->"]

    def received(self) -> list[dict[str, Any]]:
        return [m for d, m in self.entries if d == "<-"]

    def received_results(self) -> list[dict[str, Any]]:
        return [m["result"] for m in self.received() if "result" in m and "method" not in m]

    def server_requests(self) -> list[dict[str, Any]]:
        """Requests mcpd sent to the client (handshake era: sampling, elicitation, roots)."""
        return [m for m in self.received() if "method" in m and "id" in m]

    def notifications(self, method: str) -> list[dict[str, Any]]:
        return [m for m in self.received() if m.get("method") == method and "id" not in m]

    def text(self) -> str:
        return "\n".join(f"{d} {json.dumps(m, ensure_ascii=False)}" for d, m in self.entries)

    def save(self) -> None:
        self.path.write_text(self.text() + "\n")


class _TapRead:
    def __init__(self, inner: Any, wire: Wire) -> None:
        self.inner, self.wire = inner, wire

    async def receive(self) -> Any:
        item = await self.inner.receive()
        self.wire.record("<-", item)
        return item

    def __aiter__(self) -> _TapRead:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self.inner.aclose()

    def close(self) -> None:
        self.inner.close()

    async def __aenter__(self) -> _TapRead:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


class _TapWrite:
    def __init__(self, inner: Any, wire: Wire) -> None:
        self.inner, self.wire = inner, wire

    async def send(self, item: Any) -> None:
        self.wire.record("->", item)
        await self.inner.send(item)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def close(self) -> None:
        self.inner.close()

    async def __aenter__(self) -> _TapWrite:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


@dataclass
class Conn:
    client: Client
    handle: ProcessHandle
    wire: Wire


@asynccontextmanager
async def mcpd_client(
    mcpd_bin: str,
    config: Path,
    tmp_path: Path,
    env: dict[str, str],
    mode: str,
    *,
    name: str = "mcpd",
    **client_kwargs: Any,
) -> AsyncIterator[Conn]:
    """A connected `mcp.Client(mode=mode, cache=None)` on `mcpd stdio`; client_kwargs are the
    callbacks (sampling_callback, elicitation_callback, list_roots_callback, message_handler, ...).
    After the block, `conn.handle` holds mcpd's exit status."""
    wire = Wire(tmp_path / f"{name}-wire.stderr")
    box: dict[str, ProcessHandle] = {}

    @asynccontextmanager
    async def transport() -> AsyncIterator[tuple[Any, Any]]:
        async with spawn_jsonrpc_streams(
            [mcpd_bin, "stdio", "--config", str(config)], stderr_path=tmp_path / f"{name}.stderr", env=env
        ) as (read, write, handle):
            box["handle"] = handle
            yield _TapRead(read, wire), _TapWrite(write, wire)

    try:
        async with Client(transport(), mode=mode, cache=None, **client_kwargs) as client:
            yield Conn(client, box["handle"], wire)
    finally:
        wire.save()


async def client_pages(client: Client, method: str, attr: str) -> list[list[dict[str, Any]]]:
    """Every page of one of the Client's list methods, following next_cursor, each as dumped items."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    for _ in range(100):
        result = await getattr(client, method)(cursor=cursor)
        pages.append(dump(result)[attr])
        cursor = result.next_cursor
        if cursor is None:
            return pages
    raise AssertionError(f"{method}: more than 100 pages")


async def prompt_names(client: Client) -> set[str]:
    """Every exposed prompt name. A cursor walk that a list change interrupts gets -32602 (mcpd's
    cursors name the listing they came from); the walk then starts again, as the error says."""
    for _ in range(20):
        try:
            return {p["name"] for page in await client_pages(client, "list_prompts", "prompts") for p in page}
        except MCPError as exc:
            if exc.code != -32602:
                raise
    raise AssertionError("prompts/list: the cursor walk was invalidated 20 times in a row")


async def wait_for_prompt(client: Client, name: str, timeout: float = 10.0) -> set[str]:
    """Poll prompts/list until `name` is listed. mcpd re-lists a backend's prompts after the
    backend's list_changed, so the tools/call that made the change may return before mcpd lists it."""
    with anyio.fail_after(timeout):
        while True:
            names = await prompt_names(client)
            if name in names:
                return names
            await anyio.sleep(0.05)


# --------------------------------------------------------------------------- 1. the whole surface in each mode


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_smoke_sdk_stdio_client_negotiates_the_expected_era(
    mcpd_bin, eras_config, mcpd_env, assert_backends_dead, mode
):
    """The plain `Client(StdioServerParameters(...))` path, as a user would write it."""
    params = StdioServerParameters(command=mcpd_bin, args=["stdio", "--config", str(eras_config)], env=mcpd_env)
    with anyio.fail_after(30):
        async with Client(params, mode=mode, cache=None) as client:
            version = client.protocol_version
            echoed = await client.call_tool("alpha__echo", {"text": "smoke"})
    assert version == EXPECTED_VERSION[mode]
    assert tool_text(echoed) == "smoke"
    # The SDK closes mcpd's stdin and waits 2 s before SIGTERM; mcpd stops its backends either way.
    assert_backends_dead(expect_at_least=2)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_every_mode_sees_the_same_surface_as_the_backends_directly(
    mcpd_bin, eras_config, tmp_path, mcpd_env, piddir, assert_backends_dead, mode
):
    """Listings (every page, page_size 3), tools/call, prompts/get, resources/read (listed and
    template-expanded) and completion/complete: through mcpd in this mode they equal the same calls
    made directly to gamma / alpha."""
    greet_ref = types.PromptReference(name="greet")
    read_uris = ["file:///gamma/a.txt", "gamma://notes/42"]
    with anyio.fail_after(90):
        direct: dict[str, dict[str, Any]] = {attr: {} for _, attr, _ in LISTS}
        for backend in ("gamma", "alpha"):
            # mcpd's catalog comes from each server's handshake-era process.
            async with direct_session(backend, piddir) as session:
                for method, attr, key in LISTS:
                    for item in await list_all(getattr(session, method), attr):
                        if attr in ("tools", "prompts"):
                            exposed = f"{backend}__{item[key]}"
                        else:
                            exposed = exposed_uri(item[key], backend)
                        direct[attr][exposed] = dict(item, **{key: exposed})
            # Calls are served by a process of the server in the client's own era (both backends
            # are dual-era), so the same calls are made directly in that era.
            async with direct_in_era(backend, piddir, mode) as session:
                if backend == "alpha":
                    direct_alpha_echo = dump(await session.call_tool("echo", {"text": "h\u00e9llo \U0001f680"}))
                else:
                    direct_gamma_echo = dump(await session.call_tool("echo", {"text": "h\u00e9llo \U0001f680"}))
                    direct_greet = dump(await session.get_prompt("greet", {"name": "Ada"}))
                    direct_reads = [dump(await session.read_resource(uri)) for uri in read_uris]
                    direct_complete = dump(await session.complete(greet_ref, {"name": "name", "value": "al"}))

        async with mcpd_client(mcpd_bin, eras_config, tmp_path, mcpd_env, mode) as conn:
            c = conn.client
            version = c.protocol_version
            pages = {attr: await client_pages(c, method, attr) for method, attr, _ in LISTS}
            alpha_echo = dump(await c.call_tool("alpha__echo", {"text": "h\u00e9llo \U0001f680"}))
            gamma_echo = dump(await c.call_tool("gamma__echo", {"text": "h\u00e9llo \U0001f680"}))
            greet = dump(await c.get_prompt("gamma__greet", {"name": "Ada"}))
            reads = [dump(await c.read_resource(exposed_uri(uri))) for uri in read_uris]
            completed = dump(
                await c.complete(types.PromptReference(name="gamma__greet"), {"name": "name", "value": "al"})
            )
        assert_clean_exit(conn.handle)

    assert version == EXPECTED_VERSION[mode]
    for method, attr, key in LISTS:
        sizes = [len(page) for page in pages[attr]]
        assert len(sizes) > 1, f"{method}: expected several pages of {PAGE_SIZE}, got {sizes}"
        assert all(s == PAGE_SIZE for s in sizes[:-1]) and 0 < sizes[-1] <= PAGE_SIZE, f"{method}: pages {sizes}"
        items = [item for page in pages[attr] for item in page]
        by = {item[key]: item for item in items}
        assert len(by) == len(items), f"{method}: duplicates in {[i[key] for i in items]}"
        assert set(by) == EXPECTED_EXPOSED[attr], f"{method}: exposed {sorted(by)}"
        assert by == direct[attr], f"{method}: the items differ from the backends' own listings"
    assert alpha_echo == direct_alpha_echo
    assert gamma_echo == direct_gamma_echo
    assert tool_text(types.CallToolResult.model_validate(alpha_echo)) == "h\u00e9llo \U0001f680"
    assert greet == direct_greet
    assert greet["messages"] == [{"role": "user", "content": {"type": "text", "text": "Hello, Ada!"}}]
    assert reads == direct_reads
    assert reads[0]["contents"][0]["text"] == "gamma file a"
    assert json.loads(reads[1]["contents"][0]["text"]) == {"template": "gamma://notes/{id}", "variables": {"id": "42"}}
    assert completed == direct_complete
    assert completed["completion"]["values"] == ["alpha", "alpine"]
    assert_backends_dead(expect_at_least=4)


@asynccontextmanager
async def direct_in_era(name: str, piddir: Path, mode: str) -> AsyncIterator[Any]:
    """A client talking to a backend directly in the era `mode` selects."""
    if EXPECTED_VERSION[mode] != MODERN:
        async with direct_session(name, piddir) as session:
            yield session
        return
    params = StdioServerParameters(command=sys.executable, args=[backend_script(name)], env={"MCPD_TEST_PIDDIR": str(piddir)})
    async with Client(params, mode=MODERN, cache=None) as client:
        yield client


# --------------------------------------------------------------------------- 2. sampling, elicitation, roots


ROOTS = [types.Root(uri="file:///work/project", name="project"), types.Root(uri="file:///tmp/x%20y")]
ASK_METHODS = ["sampling/createMessage", "elicitation/create", "elicitation/create", "roots/list"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_backend_requests_are_answered_by_the_client_callbacks(
    mcpd_bin, write_config, piddir, gamma_era, tmp_path, mcpd_env, assert_backends_dead, mode
):
    """gamma's sampling/createMessage, elicitation/create and roots/list during a tools/call reach the
    client's callbacks and the answers reach gamma: as server-to-client requests in the handshake
    era, as input_required results and retries in the stateless era."""
    seen: dict[str, list[Any]] = {"sampling": [], "elicitation": [], "roots": []}

    async def sampling(ctx: ClientRequestContext, params: types.CreateMessageRequestParams) -> Any:
        seen["sampling"].append(params)
        text = f"sampled: {params.messages[0].content.text}"
        return types.CreateMessageResult(role="assistant", content=types.TextContent(text=text), model="m1")

    async def elicit(ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        seen["elicitation"].append(params)
        if params.message == "decline me":
            return types.ElicitResult(action="decline")
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    async def list_roots(ctx: ClientRequestContext) -> types.ListRootsResult:
        seen["roots"].append(True)
        return types.ListRootsResult(roots=ROOTS)

    eras_config = write_eras_config(write_config, piddir, gamma_era)
    with anyio.fail_after(40):
        async with mcpd_client(
            mcpd_bin,
            eras_config,
            tmp_path,
            mcpd_env,
            mode,
            sampling_callback=sampling,
            elicitation_callback=elicit,
            list_roots_callback=list_roots,
        ) as conn:
            c = conn.client
            version = c.protocol_version
            sampled = await c.call_tool("gamma__ask_sample", {"prompt": "h\u00e9llo"})
            accepted = await c.call_tool("gamma__ask_elicit", {"message": "Who are you?"})
            declined = await c.call_tool("gamma__ask_elicit", {"message": "decline me"})
            rooted = await c.call_tool("gamma__ask_roots", {})
            still = await c.call_tool("gamma__echo", {"text": "after"})
        assert_clean_exit(conn.handle)

    assert version == EXPECTED_VERSION[mode]
    assert tool_text(sampled) == "sampled: h\u00e9llo"
    assert tool_text(accepted) == 'accept: {"name": "Ada"}'
    assert tool_text(declined) == "decline"
    assert json.loads(tool_text(rooted)) == [dump(r) for r in ROOTS]
    assert tool_text(still) == "after"
    assert len(seen["sampling"]) == 1 and seen["sampling"][0].max_tokens == 64
    assert dump(seen["sampling"][0].messages[0]) == {"role": "user", "content": {"type": "text", "text": "h\u00e9llo"}}
    assert [p.message for p in seen["elicitation"]] == ["Who are you?", "decline me"]
    assert seen["elicitation"][0].requested_schema["properties"]["name"]["type"] == "string"
    assert seen["roots"] == [True]

    # How the requests travelled, per era.
    wire = conn.wire
    input_required = [r for r in wire.received_results() if r.get("resultType") == "input_required"]
    if mode in STATELESS_MODES:
        assert wire.server_requests() == [], "a stateless client must never get server-to-client requests"
        asked = [req["method"] for r in input_required for req in r.get("inputRequests", {}).values()]
        assert asked == ASK_METHODS, f"inputRequests carried {asked}"
        assert all(isinstance(r.get("requestState"), str) and r["requestState"] for r in input_required)
        # mcpd's own handle when it translates; gamma's own (sealed by the SDK) when gamma runs in
        # the client's era, passed through untouched.
        assert all(r["requestState"].startswith("mcpd.") == (gamma_era == "handshake") for r in input_required), input_required
        retries = [
            m for m in wire.sent() if m.get("method") == "tools/call" and "inputResponses" in m.get("params", {})
        ]
        assert len(retries) == 4, f"expected 4 retries with inputResponses, saw {len(retries)}"
    else:
        assert input_required == [], "a handshake-era client must not get input_required results"
        assert [m["method"] for m in wire.server_requests()] == ASK_METHODS
    assert_backends_dead(expect_at_least=2)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_backend_requests_are_refused_when_the_client_lacks_the_capability(
    mcpd_bin, write_config, piddir, gamma_era, tmp_path, mcpd_env, assert_backends_dead, mode
):
    """Without callbacks the Client declares no sampling/elicitation/roots, and is asked nothing (no
    server request, no input_required). A gamma process in the client's own stateless era refuses
    by itself (-32021, MissingCapability); otherwise mcpd answers gamma's request -32601."""
    eras_config = write_eras_config(write_config, piddir, gamma_era)
    native = EXPECTED_VERSION[mode] == MODERN and gamma_era == "auto"
    with anyio.fail_after(40):
        async with mcpd_client(mcpd_bin, eras_config, tmp_path, mcpd_env, mode) as conn:
            c = conn.client
            results = {
                tool: await c.call_tool(f"gamma__{tool}", args)
                for tool, args in [("ask_sample", {"prompt": "p"}), ("ask_elicit", {"message": "m"}), ("ask_roots", {})]
            }
            still = await c.call_tool("gamma__echo", {"text": "still here"})
        assert_clean_exit(conn.handle)

    for tool, result in results.items():
        assert tool_text(result).startswith("error: "), f"{tool}: {tool_text(result)}"
        assert result.structured_content is not None and result.structured_content.get("code") == (-32021 if native else -32601), (
            f"{tool}: {result.structured_content}"
        )
    assert tool_text(still) == "still here"
    assert conn.wire.server_requests() == []
    assert [r for r in conn.wire.received_results() if r.get("resultType") == "input_required"] == []
    assert_backends_dead(expect_at_least=2)


# --------------------------------------------------------------------------- 3. progress


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_progress_of_a_gamma_tool_reaches_the_client_in_every_mode(
    mcpd_bin, eras_config, tmp_path, mcpd_env, assert_backends_dead, mode
):
    received: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        received.append((progress, total, message))

    with anyio.fail_after(30):
        async with mcpd_client(mcpd_bin, eras_config, tmp_path, mcpd_env, mode) as conn:
            result = await conn.client.call_tool("gamma__slow", {"steps": 4}, progress_callback=on_progress)
        assert_clean_exit(conn.handle)

    assert tool_text(result) == "done 4"
    assert received == [(float(i), 4.0, f"step {i}/4") for i in range(1, 5)]
    call = next(m for m in conn.wire.sent() if m.get("method") == "tools/call")
    token = call["params"]["_meta"]["progressToken"]
    progress = conn.wire.notifications("notifications/progress")
    assert [p["params"]["progressToken"] for p in progress] == [token] * 4, "progress must carry the client's token"
    assert_backends_dead(expect_at_least=2)


# --------------------------------------------------------------------------- 4. change notifications


@pytest.mark.anyio
@pytest.mark.parametrize("mode", STATELESS_MODES)
async def test_prompt_list_changed_arrives_on_the_listen_stream_only(
    mcpd_bin, write_config, piddir, tmp_path, mcpd_env, assert_backends_dead, mode
):
    """Stateless era: a change made while no listen stream is open is not notified; with
    `subscriptions/listen {promptsListChanged}` open, gamma__add_prompt yields one prompts
    list_changed event on the stream (tagged with the listen request's id), after which
    prompts/list has the new prompt; never a bare notification. gamma runs as one (handshake-era)
    process here: its prompts, which mcpd lists, are the ones add_prompt changes."""
    eras_config = write_eras_config(write_config, piddir, "handshake")
    inbox = Inbox()
    with anyio.fail_after(40):
        async with mcpd_client(mcpd_bin, eras_config, tmp_path, mcpd_env, mode, message_handler=inbox.put) as conn:
            c = conn.client
            before = await prompt_names(c)
            early = await c.call_tool("gamma__add_prompt", {"name": "early"})
            # Let mcpd absorb this change before listening, so that what the stream carries is
            # the next change only.
            await wait_for_prompt(c, "gamma__early")
            async with c.listen(prompts_list_changed=True) as sub:
                honored = sub.honored
                subscription_id = sub.subscription_id
                added = await c.call_tool("gamma__add_prompt", {"name": "late"})
                with anyio.fail_after(10):
                    event = await sub.__anext__()
                after = await prompt_names(c)  # the event means mcpd's listing has changed
            late = await c.get_prompt("gamma__late")
        assert_clean_exit(conn.handle)

    assert tool_text(early) == "added" and tool_text(added) == "added"
    assert honored.prompts_list_changed is True, honored
    assert isinstance(event, PromptsListChanged), event
    assert "gamma__late" not in before and "gamma__early" not in before
    assert after == before | {"gamma__early", "gamma__late"}
    assert late.messages[0].content.text == "late prompt late with {}"
    # The SDK also hands stream-tagged notifications to message_handler; an untagged one would be
    # a notification outside any listen stream.
    untagged = [
        m
        for m in inbox.items
        if isinstance(m, types.PromptListChangedNotification)
        and SUBSCRIPTION_ID_KEY not in ((m.params.meta if m.params else None) or {})
    ]
    assert untagged == [], "a stateless client got prompts/list_changed outside its listen stream"
    changed = conn.wire.notifications("notifications/prompts/list_changed")
    tags = [((n.get("params") or {}).get("_meta") or {}).get(SUBSCRIPTION_ID_KEY) for n in changed]
    assert tags == [subscription_id], f"list_changed notifications on the wire carried subscription ids {tags}"
    assert_backends_dead(expect_at_least=2)


@pytest.mark.anyio
async def test_prompt_list_changed_is_a_plain_notification_in_legacy_mode(
    mcpd_bin, eras_config, tmp_path, mcpd_env, assert_backends_dead
):
    inbox = Inbox()
    with anyio.fail_after(40):
        async with mcpd_client(
            mcpd_bin, eras_config, tmp_path, mcpd_env, "legacy", message_handler=inbox.put
        ) as conn:
            c = conn.client
            assert c.protocol_version == EXPECTED_VERSION["legacy"]
            before = await prompt_names(c)
            added = await c.call_tool("gamma__add_prompt", {"name": "late"})
            await inbox.next(types.PromptListChangedNotification)
            after = await prompt_names(c)
        assert_clean_exit(conn.handle)

    assert tool_text(added) == "added"
    assert after == before | {"gamma__late"}
    changed = conn.wire.notifications("notifications/prompts/list_changed")
    assert len(changed) == 1
    assert SUBSCRIPTION_ID_KEY not in ((changed[0].get("params") or {}).get("_meta") or {})
    assert_backends_dead(expect_at_least=2)


# --------------------------------------------------------------------------- 5. methods of one era only


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_ping_set_level_and_subscribe_exist_only_in_the_handshake_era(
    mcpd_bin, eras_config, tmp_path, mcpd_env, assert_backends_dead, mode
):
    """The Client sends these in every mode (checked on the wire); a stateless client gets -32601 for
    each and keeps being served, a handshake client gets empty results."""
    uri = exposed_uri("file:///gamma/a.txt")
    outcomes: dict[str, Any] = {}
    with anyio.fail_after(40):
        async with mcpd_client(mcpd_bin, eras_config, tmp_path, mcpd_env, mode) as conn:
            c = conn.client
            calls = {
                "ping": lambda: c.send_ping(),
                "logging/setLevel": lambda: c.set_logging_level("debug"),
                "resources/subscribe": lambda: c.subscribe_resource(uri),
                "resources/unsubscribe": lambda: c.unsubscribe_resource(uri),
            }
            for method, call in calls.items():
                try:
                    outcomes[method] = await call()
                except MCPError as exc:
                    outcomes[method] = exc
            still = await c.call_tool("gamma__echo", {"text": "still"})
        assert_clean_exit(conn.handle)

    sent = [m.get("method") for m in conn.wire.sent()]
    for method in calls:
        assert method in sent, f"the Client did not send {method} in mode {mode}"
        outcome = outcomes[method]
        if mode in STATELESS_MODES:
            assert isinstance(outcome, MCPError), f"{method}: expected -32601, got result {outcome!r}"
            assert outcome.code == -32601, f"{method}: code {outcome.code}: {outcome.message}"
        else:
            assert not isinstance(outcome, MCPError), f"{method}: {outcome.code}: {outcome.message}"
    assert tool_text(still) == "still"
    assert_backends_dead(expect_at_least=2)


# --------------------------------------------------------------------------- 6. raw handshake versions


def finish(p: LineProcess, assert_backends_dead: Callable[..., Any]) -> None:
    """Close mcpd's stdin: it must exit 0 and leave no backend running."""
    p.close_stdin()
    rc = p.wait(15)
    assert rc == 0, f"mcpd exit status {rc} after stdin closed; stderr:\n{p.stderr_text()[-3000:]}"
    assert_backends_dead(expect_at_least=2)


def raw_list_all(p: LineProcess, method: str, attr: str, meta: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, Any] = {}
        if cursor is not None:
            params["cursor"] = cursor
        if meta is not None:
            params["_meta"] = meta
        line, msg, _ = p.request(method, params, timeout=20)
        assert "result" in msg, line
        items += msg["result"][attr]
        cursor = msg["result"].get("nextCursor")
        if cursor is None:
            return items
    raise AssertionError(f"{method}: more than 100 pages")


@pytest.mark.parametrize("version", HANDSHAKE_VERSIONS)
def test_handshake_client_is_served_at_its_own_version(raw_mcpd, eras_config, version, assert_backends_dead):
    p = raw_mcpd(eras_config)
    init = p.initialize(version)
    assert init["protocolVersion"] == version, init
    assert init["serverInfo"]["name"] == "mcpd"

    tools = raw_list_all(p, "tools/list", "tools")
    assert {t["name"] for t in tools} == EXPECTED_EXPOSED["tools"]

    line, msg, _ = p.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "h\u00e9llo"}})
    assert "result" in msg, line
    assert msg["result"]["content"] == [{"type": "text", "text": "h\u00e9llo"}], line
    assert msg["result"].get("isError") in (None, False), line
    if version >= "2025-06-18":  # structuredContent exists from 2025-06-18
        assert msg["result"].get("structuredContent") == {"result": "h\u00e9llo"}, line
    assert "resultType" not in msg["result"], f"a stateless-era member in a {version} result: {line}"

    line, msg, _ = p.request("prompts/get", {"name": "gamma__greet", "arguments": {"name": "Ada"}})
    assert "result" in msg, line
    assert msg["result"]["messages"] == [{"role": "user", "content": {"type": "text", "text": "Hello, Ada!"}}], line
    assert "resultType" not in msg["result"], line
    p.ping()
    finish(p, assert_backends_dead)


# --------------------------------------------------------------------------- 7. raw stateless exchange


DISCOVER_LINE = (
    '{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{'
    '"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
    '"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"0"},'
    '"io.modelcontextprotocol/clientCapabilities":{}}}}'
)


def assert_cache_hints(result: dict[str, Any], line: str) -> None:
    assert result.get("resultType") == "complete", line
    assert isinstance(result.get("ttlMs"), int) and result["ttlMs"] >= 0, line
    assert result.get("cacheScope") in ("public", "private"), line


def test_raw_stateless_discover_list_and_call(raw_mcpd, eras_config, assert_backends_dead):
    p = raw_mcpd(eras_config)
    p.send_raw(DISCOVER_LINE)
    line, msg = p.recv_response(timeout=30)
    assert msg.get("id") == 1 and "result" in msg, line
    discovered = msg["result"]
    assert MODERN in discovered.get("supportedVersions", []), line
    assert isinstance(discovered.get("capabilities"), dict), line
    assert "tools" in discovered["capabilities"] and "prompts" in discovered["capabilities"], line
    assert_cache_hints(discovered, line)

    line, msg, _ = p.request("tools/list", {"_meta": envelope()})
    assert "result" in msg, line
    first = msg["result"]
    assert_cache_hints(first, line)
    assert len(first["tools"]) == PAGE_SIZE, line
    assert isinstance(first.get("nextCursor"), str) and first["nextCursor"], line
    line, msg, _ = p.request("tools/list", {"cursor": first["nextCursor"], "_meta": envelope()})
    assert "result" in msg, line
    assert_cache_hints(msg["result"], line)
    assert not {t["name"] for t in msg["result"]["tools"]} & {t["name"] for t in first["tools"]}, line

    line, msg, _ = p.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "hi"}, "_meta": envelope()})
    assert "result" in msg, line
    assert msg["result"].get("resultType") == "complete", line
    assert msg["result"]["content"] == [{"type": "text", "text": "hi"}], line

    line, msg, _ = p.request("prompts/get", {"name": "gamma__greet", "arguments": {"name": "Ada"}, "_meta": envelope()})
    assert "result" in msg, line
    assert msg["result"].get("resultType") == "complete", line
    assert msg["result"]["messages"][0]["content"]["text"] == "Hello, Ada!", line
    finish(p, assert_backends_dead)


def expect_unsupported_version(line: str, msg: dict[str, Any], requested: str) -> None:
    assert "error" in msg and "result" not in msg, f"expected error -32022 for version {requested}, got: {line}"
    assert msg["error"]["code"] == -32022, line
    data = msg["error"].get("data") or {}
    assert isinstance(data.get("supported"), list) and MODERN in data["supported"], line
    if "requested" in data:
        assert data["requested"] == requested, line


def test_raw_unsupported_stateless_version_is_refused_by_a_fresh_mcpd(raw_mcpd, eras_config, assert_backends_dead):
    p = raw_mcpd(eras_config)
    line, msg, _ = p.request("tools/list", {"_meta": envelope("2030-01-01")}, timeout=30)
    expect_unsupported_version(line, msg, "2030-01-01")
    # The refusal does not lock mcpd: a supported stateless request is served afterwards.
    line, msg, _ = p.request("tools/list", {"_meta": envelope()})
    assert "result" in msg and msg["result"].get("resultType") == "complete", line
    finish(p, assert_backends_dead)


def test_raw_unsupported_stateless_version_is_refused_mid_session(raw_mcpd, eras_config, assert_backends_dead):
    """Stateless requests stand alone: every request's envelope names its version, so one naming an
    unsupported version gets -32022 even after earlier 2026-07-28 requests were served (the SDK's own
    modern server checks each request's envelope the same way)."""
    p = raw_mcpd(eras_config)
    p.send_raw(DISCOVER_LINE)
    line, msg = p.recv_response(timeout=30)
    assert "result" in msg, line
    line, msg, _ = p.request("tools/list", {"_meta": envelope()})
    assert "result" in msg, line
    line, msg, _ = p.request("tools/list", {"_meta": envelope("2030-01-01")})
    expect_unsupported_version(line, msg, "2030-01-01")
    finish(p, assert_backends_dead)


# --------------------------------------------------------------------------- which process serves


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_a_dual_era_server_serves_each_client_in_its_own_era(
    mcpd_bin, write_config, piddir, gamma_era, tmp_path, mcpd_env, assert_backends_dead, mode
):
    """gamma speaks both eras: a stateless client's calls run on a second gamma process in the
    stateless era (started on its first call), unless the config keeps gamma to one process
    (`era: handshake`); a handshake-era client's run on the first process."""
    config = write_eras_config(write_config, piddir, gamma_era)
    with anyio.fail_after(40):
        async with mcpd_client(mcpd_bin, config, tmp_path, mcpd_env, mode) as conn:
            served = tool_text(await conn.client.call_tool("gamma__era", {}))
        assert_clean_exit(conn.handle)
    stateless = EXPECTED_VERSION[mode] == MODERN
    assert served == (MODERN if stateless and gamma_era == "auto" else "2025-11-25")
    gamma_pids = [pid for pid, name in recorded_pids(piddir).items() if name == "gamma"]
    assert len(gamma_pids) == (2 if stateless and gamma_era == "auto" else 1), gamma_pids
    assert_backends_dead(expect_at_least=len(recorded_pids(piddir)))


def test_raw_discover_then_initialize_is_a_handshake_client(raw_mcpd, eras_config, assert_backends_dead):
    """A client may probe with server/discover and still choose the handshake: it is then served
    in the handshake era (no resultType, plain list results)."""
    p = raw_mcpd(eras_config)
    p.send_raw(DISCOVER_LINE)
    line, msg = p.recv_response(timeout=30)
    assert MODERN in msg["result"]["supportedVersions"], line
    assert p.initialize("2025-06-18")["protocolVersion"] == "2025-06-18"
    line, msg, _ = p.request("tools/list")
    assert "resultType" not in msg["result"] and "ttlMs" not in msg["result"], line
    line, msg, _ = p.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "hi"}})
    assert msg["result"]["content"] == [{"type": "text", "text": "hi"}] and "resultType" not in msg["result"], line
    p.close_stdin()
    assert p.wait(10) == 0
    assert_backends_dead(expect_at_least=2)
