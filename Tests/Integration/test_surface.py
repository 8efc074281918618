"""The MCP surface beyond tools, through `mcpd stdio`: prompts, resources, templates, completions,
logging, subscriptions, list_changed, pagination and the server-to-client requests (sampling,
elicitation, roots), driven by the official Python SDK client against the backends gamma and alpha.

Exposed names: a prompt is `<server>__<prompt>`; a resource URI or URI template is
`mcpd://<server>/<original>`. Contents returned by resources/read are relayed unchanged (their
`uri` stays the backend's). mcpd's own lists are paginated with `gateway.page_size`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError
from mcpd_helpers import ALPHA_TOOLS, ProcessHandle, backend_script, server_entry, spawn_jsonrpc_streams

pytestmark = [
    pytest.mark.anyio,
    # subscribe_resource, set_logging_level, sampling and roots are deprecated as of protocol
    # 2026-07-28; mcpd negotiates 2025-11-25, where they are current.
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

PAGE_SIZE = 3
TRICKY = 'h\u00e9llo "q" \\ \u2028 \U0001f680'  # gamma's tricky text
GAMMA_TOOLS = {
    "echo", "touch", "log", "add_prompt", "add_resource",
    "ask_sample", "ask_elicit", "ask_roots", "client_caps", "slow", "era",
}  # fmt: skip


def exposed_uri(uri: str, server: str = "gamma") -> str:
    return f"mcpd://{server}/{uri}"


def dump(model: Any) -> Any:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


def assert_clean_exit(handle: ProcessHandle) -> None:
    assert not handle.killed, "mcpd did not exit within 10 s of its stdin closing (had to be killed)"
    assert handle.returncode == 0, f"mcpd exit status {handle.returncode}, expected 0"


# --------------------------------------------------------------------------- sessions


@pytest.fixture
def surface_config(write_config: Callable[..., Path], piddir: Path) -> Path:
    return write_config(
        {
            "gateway": {"page_size": PAGE_SIZE},
            "servers": {
                "gamma": server_entry("gamma", piddir),
                "alpha": server_entry("alpha", piddir),
            },
        }
    )


@asynccontextmanager
async def mcpd_session(
    mcpd_bin: str, config: Path, tmp_path: Path, env: dict[str, str], **session_kwargs: Any
) -> AsyncIterator[tuple[ClientSession, ProcessHandle]]:
    """An initialized ClientSession on `mcpd stdio`; session_kwargs go to ClientSession
    (sampling_callback, elicitation_callback, list_roots_callback, logging_callback, message_handler)."""
    async with spawn_jsonrpc_streams(
        [mcpd_bin, "stdio", "--config", str(config)], stderr_path=tmp_path / "mcpd.stderr", env=env
    ) as (read, write, handle):
        async with ClientSession(read, write, **session_kwargs) as session:
            handle.extra["init"] = await session.initialize()
            yield session, handle


@asynccontextmanager
async def direct_session(name: str, piddir: Path, **session_kwargs: Any) -> AsyncIterator[ClientSession]:
    """The SDK client talking to a backend directly, without mcpd."""
    params = StdioServerParameters(
        command=sys.executable, args=[backend_script(name)], env={"MCPD_TEST_PIDDIR": str(piddir)}
    )
    with open(piddir.parent / f"direct-{name}.stderr", "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, **session_kwargs) as session:
                await session.initialize()
                yield session


class Inbox:
    """What the client received (notifications via message_handler, log entries via logging_callback),
    in arrival order; `next(kind)` awaits the next one of that type."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._read = 0
        self._arrived = anyio.Event()

    async def put(self, item: Any) -> None:
        if isinstance(item, Exception):
            return
        self.items.append(item)
        self._arrived.set()
        self._arrived = anyio.Event()

    async def next(self, kind: type | tuple[type, ...], timeout: float = 10.0) -> Any:
        """The next unread item of `kind`; unread items of other kinds before it are skipped."""
        with anyio.fail_after(timeout):
            while True:
                while self._read < len(self.items):
                    item = self.items[self._read]
                    self._read += 1
                    if isinstance(item, kind):
                        return item
                await self._arrived.wait()


ListFn = Callable[..., Awaitable[Any]]


async def list_pages(list_fn: ListFn, attr: str) -> list[list[Any]]:
    """Every page of a paginated list, following nextCursor, each as a list of dumped items."""
    pages: list[list[Any]] = []
    cursor: str | None = None
    for _ in range(100):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
        result = await list_fn(params=params)
        pages.append(dump(result)[attr])
        cursor = result.next_cursor
        if cursor is None:
            return pages
    raise AssertionError(f"{attr}: more than 100 pages")


async def list_all(list_fn: ListFn, attr: str) -> list[Any]:
    return [item for page in await list_pages(list_fn, attr) for item in page]


def by_key(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    out = {item[key]: item for item in items}
    assert len(out) == len(items), f"duplicate {key} in {[i[key] for i in items]}"
    return out


def tool_text(result: types.CallToolResult) -> str:
    assert result.content and isinstance(result.content[0], types.TextContent), result
    return result.content[0].text


# --------------------------------------------------------------------------- capabilities and listings


async def test_initialize_advertises_capabilities_of_the_backends(
    mcpd_bin, surface_config, tmp_path, mcpd_env, assert_backends_dead
):
    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env) as (session, handle):
            caps: types.ServerCapabilities = handle.extra["init"].capabilities
            await session.send_ping()
        assert_clean_exit(handle)

    assert caps.tools is not None
    assert caps.prompts is not None and caps.prompts.list_changed is True
    assert caps.resources is not None
    assert caps.resources.subscribe is True and caps.resources.list_changed is True
    assert caps.completions is not None
    assert caps.logging is not None
    assert_backends_dead(expect_at_least=2)


async def test_prompts_are_exposed_with_server_prefix_and_otherwise_unchanged(
    mcpd_bin, surface_config, tmp_path, mcpd_env, piddir, assert_backends_dead
):
    with anyio.fail_after(40):
        async with direct_session("gamma", piddir) as direct:
            direct_prompts = await list_all(direct.list_prompts, "prompts")
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env) as (session, handle):
            via = by_key(await list_all(session.list_prompts, "prompts"), "name")
        assert_clean_exit(handle)

    expected = {f"gamma__{p['name']}": dict(p, name=f"gamma__{p['name']}") for p in direct_prompts}
    assert sorted(via) == sorted(expected) == ["gamma__greet", "gamma__multi", "gamma__plain", "gamma__review"]
    for name, prompt in expected.items():
        assert via[name] == prompt, f"prompt {name} differs from the backend's definition"
    assert via["gamma__greet"]["arguments"][0] == {"name": "name", "description": "Who to greet", "required": True}
    assert via["gamma__greet"]["_meta"] == {"example.com/origin": "gamma"}
    assert_backends_dead(expect_at_least=3)


async def test_resources_and_templates_are_exposed_under_mcpd_uris_and_otherwise_unchanged(
    mcpd_bin, surface_config, tmp_path, mcpd_env, piddir, assert_backends_dead
):
    with anyio.fail_after(40):
        async with direct_session("gamma", piddir) as direct:
            direct_resources = await list_all(direct.list_resources, "resources")
            direct_templates = await list_all(direct.list_resource_templates, "resourceTemplates")
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env) as (session, handle):
            via_resources = by_key(await list_all(session.list_resources, "resources"), "uri")
            via_templates = by_key(await list_all(session.list_resource_templates, "resourceTemplates"), "uriTemplate")
        assert_clean_exit(handle)

    expected_resources = {exposed_uri(r["uri"]): dict(r, uri=exposed_uri(r["uri"])) for r in direct_resources}
    assert sorted(via_resources) == sorted(expected_resources)
    for uri, resource in expected_resources.items():
        assert via_resources[uri] == resource, f"resource {uri} differs from the backend's definition"
    assert "mcpd://gamma/file:///gamma/a.txt" in via_resources
    assert "mcpd://gamma/https://example.com/gamma/q?a=1&b=%2F#frag" in via_resources
    assert via_resources["mcpd://gamma/file:///gamma/tricky.txt"]["description"] == TRICKY

    expected_templates = {
        exposed_uri(t["uriTemplate"]): dict(t, uriTemplate=exposed_uri(t["uriTemplate"])) for t in direct_templates
    }
    assert sorted(via_templates) == sorted(expected_templates)
    for uri, template in expected_templates.items():
        assert via_templates[uri] == template, f"template {uri} differs from the backend's definition"
    assert "mcpd://gamma/gamma://notes/{id}" in via_templates
    assert "mcpd://gamma/gamma://users/{user}/files/{+path}" in via_templates
    assert_backends_dead(expect_at_least=3)


LISTS = [
    ("list_tools", "tools", "name"),
    ("list_resources", "resources", "uri"),
    ("list_resource_templates", "resourceTemplates", "uriTemplate"),
    ("list_prompts", "prompts", "name"),
]


def exposed_key(attr: str, server: str, key: str) -> str:
    return f"{server}__{key}" if attr in ("tools", "prompts") else exposed_uri(key, server)


async def test_lists_are_paginated_with_the_gateway_page_size(
    mcpd_bin, surface_config, tmp_path, mcpd_env, piddir, assert_backends_dead
):
    """Each list comes in pages of page_size, whatever the backends' own page sizes (gamma pages
    by 2); following the cursors yields every item of every backend exactly once."""
    with anyio.fail_after(60):
        direct: dict[str, dict[str, Any]] = {attr: {} for _, attr, _ in LISTS}
        for backend in ("gamma", "alpha"):
            async with direct_session(backend, piddir) as session:
                for method, attr, key in LISTS:
                    for item in await list_all(getattr(session, method), attr):
                        exposed = exposed_key(attr, backend, item[key])
                        direct[attr][exposed] = dict(item, **{key: exposed})

        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env) as (session, handle):
            first = {attr: await getattr(session, method)() for method, attr, _ in LISTS}
            pages = {attr: await list_pages(getattr(session, method), attr) for method, attr, _ in LISTS}
        assert_clean_exit(handle)

    assert set(direct["tools"]) == {f"alpha__{t}" for t in ALPHA_TOOLS} | {f"gamma__{t}" for t in GAMMA_TOOLS}
    for method, attr, key in LISTS:
        assert len(direct[attr]) > PAGE_SIZE, f"{attr}: the test needs more than one page"
        assert len(dump(first[attr])[attr]) == PAGE_SIZE, f"{method}: first page size"
        assert first[attr].next_cursor is not None, f"{method}: no nextCursor after the first page"
        sizes = [len(page) for page in pages[attr]]
        assert all(size == PAGE_SIZE for size in sizes[:-1]) and sizes[-1] <= PAGE_SIZE, f"{method}: pages {sizes}"
        items = by_key([item for page in pages[attr] for item in page], key)
        assert items == direct[attr], f"{method}: the pages differ from the backends' listings"
    assert_backends_dead(expect_at_least=4)


async def test_garbage_cursor_is_invalid_params(mcpd_bin, surface_config, tmp_path, mcpd_env):
    errors: dict[str, MCPError] = {}
    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env) as (session, handle):
            for method, _, _ in LISTS:
                with pytest.raises(MCPError) as excinfo:
                    await getattr(session, method)(params=types.PaginatedRequestParams(cursor="nope"))
                errors[method] = excinfo.value
            still = await session.list_prompts()  # the session is still usable
        assert_clean_exit(handle)
    for method, err in errors.items():
        assert err.code == -32602, f"{method}: code {err.code}: {err.message}"
    assert len(still.prompts) == PAGE_SIZE


# --------------------------------------------------------------------------- reading, prompts, completion

RESOURCE_URIS = [
    "file:///gamma/a.txt",
    "file:///gamma/b.txt",
    "file:///gamma/pixel.png",
    "file:///gamma/tricky.txt",
    "gamma://static/readme",
    "https://example.com/gamma/q?a=1&b=%2F#frag",
]


async def test_read_resource_relays_the_backend_contents(
    mcpd_bin, surface_config, tmp_path, mcpd_env, piddir, assert_backends_dead
):
    """Text and blob contents are the backend's, byte for byte, including the original `uri` inside."""
    with anyio.fail_after(40):
        async with direct_session("gamma", piddir) as direct:
            expected = [dump(await direct.read_resource(uri)) for uri in RESOURCE_URIS]
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env) as (session, handle):
            via = [dump(await session.read_resource(exposed_uri(uri))) for uri in RESOURCE_URIS]
        assert_clean_exit(handle)

    for uri, d, v in zip(RESOURCE_URIS, expected, via, strict=True):
        assert v == d, f"reading {exposed_uri(uri)} differs from reading {uri} directly"
    a, _, pixel, tricky, _, query = via
    assert a["contents"] == [
        {"uri": "file:///gamma/a.txt", "mimeType": "text/plain", "_meta": {"rev": 1}, "text": "gamma file a"}
    ]
    assert pixel["contents"][0]["uri"] == "file:///gamma/pixel.png"
    assert pixel["contents"][0]["blob"].startswith("iVBORw0KGgo")
    assert tricky["contents"][0]["text"] == TRICKY
    assert query["contents"][0]["uri"] == "https://example.com/gamma/q?a=1&b=%2F#frag"
    assert_backends_dead(expect_at_least=2)


async def test_read_template_expanded_uri(mcpd_bin, surface_config, tmp_path, mcpd_env, piddir):
    uris = ["gamma://notes/42", "gamma://users/bob/files/docs/%20x/c.txt", "gamma://search?q=x&limit=5"]
    with anyio.fail_after(40):
        async with direct_session("gamma", piddir) as direct:
            expected = [dump(await direct.read_resource(uri)) for uri in uris]
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env) as (session, handle):
            via = [dump(await session.read_resource(exposed_uri(uri))) for uri in uris]
        assert_clean_exit(handle)

    assert via == expected
    note = json.loads(via[0]["contents"][0]["text"])
    assert note == {"template": "gamma://notes/{id}", "variables": {"id": "42"}}
    assert via[0]["contents"][0]["uri"] == "gamma://notes/42"
    user_file = json.loads(via[1]["contents"][0]["text"])
    assert user_file["variables"] == {"user": "bob", "path": "docs/%20x/c.txt"}
    assert json.loads(via[2]["contents"][0]["text"])["variables"] == {"q": "x", "limit": "5"}


async def test_read_unknown_resource_is_an_error(mcpd_bin, surface_config, tmp_path, mcpd_env):
    errors: dict[str, MCPError] = {}
    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env) as (session, handle):
            # Not a server of mcpd, a URI no backend lists, and a URI gamma does not know.
            for uri in ["mcpd://nosuch/x", "file:///nowhere.txt", "mcpd://gamma/gamma://nosuch"]:
                with pytest.raises(MCPError) as excinfo:
                    await session.read_resource(uri)
                errors[uri] = excinfo.value
            ok = await session.read_resource(exposed_uri("file:///gamma/b.txt"))
            # A backend's own URI (as a tool's resource_link carries it) still reaches the one
            # backend that lists it.
            unprefixed = await session.read_resource("file:///gamma/a.txt")
        assert_clean_exit(handle)
    assert unprefixed.contents[0].text == "gamma file a"
    for uri in ["mcpd://nosuch/x", "file:///nowhere.txt"]:
        assert errors[uri].code in (-32002, -32602), f"{uri}: code {errors[uri].code}: {errors[uri].message}"
    # gamma's own answer (resource not found) is relayed.
    assert errors["mcpd://gamma/gamma://nosuch"].code == -32002, errors["mcpd://gamma/gamma://nosuch"].message
    assert ok.contents[0].text == "gamma file b"


PROMPT_CALLS = [
    ("greet", {"name": "Ada"}),
    ("greet", {"name": "h\u00e9llo \U0001f680", "greeting": "Hi"}),
    ("plain", None),
    ("multi", None),
    ("review", {"language": "swift", "code": 'print("x")\n'}),
]


async def test_get_prompt_matches_the_backend(mcpd_bin, surface_config, tmp_path, mcpd_env, piddir):
    with anyio.fail_after(40):
        async with direct_session("gamma", piddir) as direct:
            expected = [dump(await direct.get_prompt(name, args)) for name, args in PROMPT_CALLS]
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env) as (session, handle):
            via = [dump(await session.get_prompt(f"gamma__{name}", args)) for name, args in PROMPT_CALLS]
            errors: dict[str, MCPError] = {}
            for name in ["nosuch__greet", "gamma__nosuch", "greet"]:
                with pytest.raises(MCPError) as excinfo:
                    await session.get_prompt(name, {"name": "x"})
                errors[name] = excinfo.value
        assert_clean_exit(handle)

    for (name, _), d, v in zip(PROMPT_CALLS, expected, via, strict=True):
        assert v == d, f"gamma__{name} differs from the backend's prompt"
    assert via[0]["messages"] == [{"role": "user", "content": {"type": "text", "text": "Hello, Ada!"}}]
    assert [m["content"]["type"] for m in via[3]["messages"]] == ["text", "resource", "image", "text"]
    for name, err in errors.items():
        assert err.code == -32602, f"{name}: code {err.code}: {err.message}"


async def test_completion_for_prompt_and_template_matches_the_backend(
    mcpd_bin, surface_config, tmp_path, mcpd_env, piddir
):
    user_path = "gamma://users/{user}/files/{+path}"
    requests: list[tuple[Any, dict[str, str], dict[str, str] | None]] = [
        (types.PromptReference(name="greet"), {"name": "name", "value": "al"}, None),
        (types.PromptReference(name="review"), {"name": "language", "value": "p"}, None),
        (types.ResourceTemplateReference(uri="gamma://notes/{id}"), {"name": "id", "value": "4"}, None),
        (types.ResourceTemplateReference(uri=user_path), {"name": "path", "value": "bob/t"}, {"user": "bob"}),
    ]

    def exposed(ref: Any) -> Any:
        if isinstance(ref, types.PromptReference):
            return types.PromptReference(name=f"gamma__{ref.name}")
        return types.ResourceTemplateReference(uri=exposed_uri(ref.uri))

    with anyio.fail_after(40):
        async with direct_session("gamma", piddir) as direct:
            expected = [dump(await direct.complete(ref, arg, ctx)) for ref, arg, ctx in requests]
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env) as (session, handle):
            via = [dump(await session.complete(exposed(ref), arg, ctx)) for ref, arg, ctx in requests]
        assert_clean_exit(handle)

    assert via == expected
    assert [v["completion"]["values"] for v in via] == [
        ["alpha", "alpine"],
        ["perl", "php", "python"],
        ["42", "420"],
        ["bob/todo.txt"],
    ]


# --------------------------------------------------------------------------- notifications


async def test_logging_level_and_messages_are_relayed_with_the_server_as_logger(
    mcpd_bin, surface_config, tmp_path, mcpd_env
):
    logs = Inbox()
    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env, logging_callback=logs.put) as (
            session,
            handle,
        ):
            await session.set_logging_level("error")
            await session.call_tool("gamma__log", {"level": "warning", "message": "below the level"})
            await session.set_logging_level("debug")
            await session.call_tool("gamma__log", {"level": "warning", "message": "w1"})
            first = await logs.next(types.LoggingMessageNotificationParams)
            await session.call_tool("gamma__log", {"level": "error", "message": "e1", "logger": "db"})
            second = await logs.next(types.LoggingMessageNotificationParams)
        assert_clean_exit(handle)

    # Had "below the level" been delivered, it would have come first: gamma sends in call order.
    assert dump(first) == {"level": "warning", "logger": "gamma", "data": "w1"}
    assert dump(second) == {"level": "error", "logger": "gamma/db", "data": "e1"}


async def test_resource_updates_follow_subscriptions_under_the_exposed_uri(
    mcpd_bin, surface_config, tmp_path, mcpd_env
):
    inbox = Inbox()
    a, b = "file:///gamma/a.txt", "file:///gamma/b.txt"
    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env, message_handler=inbox.put) as (
            session,
            handle,
        ):
            await session.subscribe_resource(exposed_uri(a))
            touched = await session.call_tool("gamma__touch", {"uri": a})
            updated = await inbox.next(types.ResourceUpdatedNotification)

            await session.unsubscribe_resource(exposed_uri(a))
            await session.call_tool("gamma__touch", {"uri": a})
            # Had the touch of a been delivered, it would arrive before this one of b.
            await session.subscribe_resource(exposed_uri(b))
            await session.call_tool("gamma__touch", {"uri": b})
            after = await inbox.next(types.ResourceUpdatedNotification)
        assert_clean_exit(handle)

    assert tool_text(touched) == "touched"
    assert updated.params.uri == "mcpd://gamma/file:///gamma/a.txt"
    assert after.params.uri == "mcpd://gamma/file:///gamma/b.txt"


async def test_prompt_list_changed_is_relayed_and_the_new_prompt_listed(
    mcpd_bin, surface_config, tmp_path, mcpd_env
):
    inbox = Inbox()
    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env, message_handler=inbox.put) as (
            session,
            handle,
        ):
            before = {p["name"] for p in await list_all(session.list_prompts, "prompts")}
            added = await session.call_tool("gamma__add_prompt", {"name": "late"})
            await inbox.next(types.PromptListChangedNotification)
            after = {p["name"] for p in await list_all(session.list_prompts, "prompts")}
            late = await session.get_prompt("gamma__late")
        assert_clean_exit(handle)

    assert tool_text(added) == "added"
    assert "gamma__late" not in before
    assert after == before | {"gamma__late"}
    assert late.messages[0].content.text == "late prompt late with {}"


async def test_resource_list_changed_is_relayed_and_the_new_resource_listed(
    mcpd_bin, surface_config, tmp_path, mcpd_env
):
    inbox = Inbox()
    late_uri = "file:///gamma/late.txt"
    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env, message_handler=inbox.put) as (
            session,
            handle,
        ):
            before = {r["uri"] for r in await list_all(session.list_resources, "resources")}
            await session.call_tool("gamma__add_resource", {"uri": late_uri})
            await inbox.next(types.ResourceListChangedNotification)
            after = {r["uri"] for r in await list_all(session.list_resources, "resources")}
            read = await session.read_resource(exposed_uri(late_uri))
        assert_clean_exit(handle)

    assert after == before | {exposed_uri(late_uri)}
    assert exposed_uri(late_uri) not in before
    assert dump(read)["contents"] == [{"uri": late_uri, "mimeType": "text/plain", "text": f"added {late_uri}"}]


async def test_progress_from_a_gamma_tool_reaches_the_client(mcpd_bin, surface_config, tmp_path, mcpd_env):
    received: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        received.append((progress, total, message))

    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env) as (session, handle):
            result = await session.call_tool("gamma__slow", {"steps": 3}, progress_callback=on_progress)
        assert_clean_exit(handle)
    assert tool_text(result) == "done 3"
    assert received == [(float(i), 3.0, f"step {i}/3") for i in range(1, 4)]


# --------------------------------------------------------------------------- server-to-client requests


async def test_sampling_request_is_answered_by_the_client(mcpd_bin, surface_config, tmp_path, mcpd_env):
    seen: list[types.CreateMessageRequestParams] = []

    async def sampling(ctx: ClientRequestContext, params: types.CreateMessageRequestParams) -> Any:
        seen.append(params)
        text = f"sampled: {params.messages[0].content.text}"
        return types.CreateMessageResult(role="assistant", content=types.TextContent(text=text), model="m1")

    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env, sampling_callback=sampling) as (
            session,
            handle,
        ):
            result = await session.call_tool("gamma__ask_sample", {"prompt": "h\u00e9llo"})
            again = await session.call_tool("gamma__ask_sample", {"prompt": "twice"})
        assert_clean_exit(handle)

    assert tool_text(result) == "sampled: h\u00e9llo"
    assert tool_text(again) == "sampled: twice"
    assert seen[0].max_tokens == 64
    assert dump(seen[0].messages[0]) == {"role": "user", "content": {"type": "text", "text": "h\u00e9llo"}}


async def test_elicitation_request_is_answered_by_the_client(mcpd_bin, surface_config, tmp_path, mcpd_env):
    seen: list[types.ElicitRequestParams] = []

    async def elicit(ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        seen.append(params)
        if params.message == "decline me":
            return types.ElicitResult(action="decline")
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env, elicitation_callback=elicit) as (
            session,
            handle,
        ):
            accepted = await session.call_tool("gamma__ask_elicit", {"message": "Who are you?"})
            declined = await session.call_tool("gamma__ask_elicit", {"message": "decline me"})
        assert_clean_exit(handle)

    assert tool_text(accepted) == 'accept: {"name": "Ada"}'
    assert tool_text(declined) == "decline"
    assert isinstance(seen[0], types.ElicitRequestFormParams)
    assert seen[0].message == "Who are you?"
    assert seen[0].requested_schema["properties"]["name"]["type"] == "string"


async def test_roots_request_is_answered_by_the_client(mcpd_bin, surface_config, tmp_path, mcpd_env):
    roots = [types.Root(uri="file:///work/project", name="project"), types.Root(uri="file:///tmp/x%20y")]

    async def list_roots(ctx: ClientRequestContext) -> types.ListRootsResult:
        return types.ListRootsResult(roots=roots)

    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env, list_roots_callback=list_roots) as (
            session,
            handle,
        ):
            result = await session.call_tool("gamma__ask_roots", {})
        assert_clean_exit(handle)
    assert json.loads(tool_text(result)) == [dump(r) for r in roots]


async def test_server_requests_fail_when_the_client_lacks_the_capability(
    mcpd_bin, surface_config, tmp_path, mcpd_env
):
    """Without callbacks the SDK declares no sampling/elicitation/roots capability: mcpd answers gamma
    with -32601 itself and forwards nothing (the SDK's own refusal would be -32600)."""
    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env) as (session, handle):
            results = {
                tool: await session.call_tool(f"gamma__{tool}", args)
                for tool, args in [("ask_sample", {"prompt": "p"}), ("ask_elicit", {"message": "m"}), ("ask_roots", {})]
            }
            still = await session.call_tool("gamma__echo", {"text": "still here"})
        assert_clean_exit(handle)

    for tool, result in results.items():
        assert tool_text(result).startswith("error: "), f"{tool}: {tool_text(result)}"
        assert result.structured_content is not None and result.structured_content["code"] == -32601, (
            f"{tool}: {result.structured_content}"
        )
    assert tool_text(still) == "still here"


@pytest.mark.parametrize("client_declares", [False, True], ids=["bare-client", "full-client"])
async def test_backend_is_initialized_with_the_gateway_client_capabilities(
    mcpd_bin, surface_config, tmp_path, mcpd_env, client_declares
):
    """Backends start before any client connects, so mcpd declares sampling, elicitation and roots to
    them whatever its own client declares."""

    async def sampling(ctx: ClientRequestContext, params: types.CreateMessageRequestParams) -> Any:
        return types.CreateMessageResult(role="assistant", content=types.TextContent(text="x"), model="m")

    async def elicit(ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="cancel")

    async def list_roots(ctx: ClientRequestContext) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[])

    callbacks: dict[str, Any] = (
        {"sampling_callback": sampling, "elicitation_callback": elicit, "list_roots_callback": list_roots}
        if client_declares
        else {}
    )
    with anyio.fail_after(30):
        async with mcpd_session(mcpd_bin, surface_config, tmp_path, mcpd_env, **callbacks) as (session, handle):
            caps = json.loads(tool_text(await session.call_tool("gamma__client_caps", {})))
        assert_clean_exit(handle)

    assert isinstance(caps, dict), caps
    for capability in ("sampling", "elicitation", "roots"):
        assert capability in caps, f"mcpd did not declare {capability} to gamma: {caps}"
