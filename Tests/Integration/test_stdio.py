"""`mcpd stdio` driven by the official MCP Python SDK client (ClientSession)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError
from mcpd_helpers import (
    ALPHA_TOOLS,
    BETA_TOOLS,
    PROTOCOL_VERSION,
    ProcessHandle,
    backend_script,
    server_entry,
    pid_is_alive,
    recorded_pids,
    spawn_jsonrpc_streams,
)

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def mcpd_client(
    mcpd_bin: str, config: Path, tmp_path: Path, env: dict[str, str], **session_kwargs: Any
) -> AsyncIterator[tuple[ClientSession, ProcessHandle]]:
    """An initialized ClientSession talking to `mcpd stdio`; handle.returncode is set on exit."""
    async with spawn_jsonrpc_streams(
        [mcpd_bin, "stdio", "--config", str(config)], stderr_path=tmp_path / "mcpd.stderr", env=env
    ) as (read, write, handle):
        async with ClientSession(read, write, **session_kwargs) as session:
            init = await session.initialize()
            handle.extra["init"] = init
            yield session, handle


@asynccontextmanager
async def direct_client(name: str, piddir: Path) -> AsyncIterator[ClientSession]:
    """The SDK client talking to a backend directly, without mcpd."""
    params = StdioServerParameters(
        command=sys.executable, args=[backend_script(name)], env={"MCPD_TEST_PIDDIR": str(piddir)}
    )
    with open(piddir.parent / f"direct-{name}.stderr", "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def dump(model: Any) -> Any:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


def assert_clean_exit(handle: ProcessHandle) -> None:
    assert not handle.killed, "mcpd did not exit within 10 s of its stdin closing (had to be killed)"
    assert handle.returncode == 0, f"mcpd exit status {handle.returncode}, expected 0"


async def test_initialize_and_list_tools_of_both_backends(
    mcpd_bin, standard_config, tmp_path, mcpd_env, piddir, assert_backends_dead
):
    with anyio.fail_after(30):
        async with mcpd_client(mcpd_bin, standard_config, tmp_path, mcpd_env) as (session, handle):
            init: types.InitializeResult = handle.extra["init"]
            assert init.server_info.name == "mcpd"
            assert init.protocol_version == PROTOCOL_VERSION
            assert init.capabilities.tools is not None, "mcpd must advertise the tools capability"

            listed = await session.list_tools()
            names = sorted(t.name for t in listed.tools)
            expected = sorted([f"alpha__{t}" for t in ALPHA_TOOLS] + [f"beta__{t}" for t in BETA_TOOLS])
            assert names == expected
            assert listed.next_cursor is None
            await session.send_ping()

        assert_clean_exit(handle)
    assert_backends_dead(expect_at_least=2)


async def test_tool_definitions_pass_through_unchanged(
    mcpd_bin, standard_config, tmp_path, mcpd_env, piddir, assert_backends_dead
):
    """Every field but the name (description, inputSchema, outputSchema, annotations, _meta...) is the backend's."""
    with anyio.fail_after(40):
        direct: dict[str, dict[str, Any]] = {}
        for backend in ("alpha", "beta"):
            async with direct_client(backend, piddir) as session:
                for tool in (await session.list_tools()).tools:
                    direct[f"{backend}__{tool.name}"] = dump(tool)

        async with mcpd_client(mcpd_bin, standard_config, tmp_path, mcpd_env) as (session, handle):
            via = {tool.name: dump(tool) for tool in (await session.list_tools()).tools}
        assert_clean_exit(handle)

    assert sorted(via) == sorted(direct)
    for exposed, tool in direct.items():
        expected = dict(tool, name=exposed)
        assert via[exposed] == expected, f"tool {exposed} differs from the backend's definition"
    assert via["alpha__echo"]["annotations"] == {"title": "Alpha echo", "readOnlyHint": True, "idempotentHint": True}
    assert via["alpha__add"]["outputSchema"]["required"] == ["sum", "operands"]
    assert_backends_dead(expect_at_least=4)


async def test_call_a_tool_on_each_backend(mcpd_bin, standard_config, tmp_path, mcpd_env, assert_backends_dead):
    with anyio.fail_after(30):
        async with mcpd_client(mcpd_bin, standard_config, tmp_path, mcpd_env) as (session, handle):
            a = await session.call_tool("alpha__echo", {"text": "hello"})
            b = await session.call_tool("beta__echo", {"text": "hello"})
            u = await session.call_tool("beta__upper", {"text": "MiXeD"})
            s = await session.call_tool("alpha__add", {"a": 2, "b": 40.5})
        assert_clean_exit(handle)

    assert [dump(c) for c in a.content] == [{"type": "text", "text": "hello"}]
    assert a.structured_content == {"result": "hello"}
    assert [dump(c) for c in b.content] == [{"type": "text", "text": "beta:hello"}]
    assert [dump(c) for c in u.content] == [{"type": "text", "text": "MIXED"}]
    assert s.is_error is False
    assert s.structured_content == {"sum": 42.5, "operands": [2.0, 40.5]}
    assert_backends_dead(expect_at_least=2)


PASSTHROUGH_CALLS = [
    ("echo", {"text": "h\u00e9llo / \U0001f680"}),
    ("add", {"a": 0.1, "b": 0.2}),
    ("image", {}),
    ("mixed", {}),
    ("fail", {}),
]


async def test_results_identical_to_direct_backend(
    mcpd_bin, standard_config, tmp_path, mcpd_env, piddir, assert_backends_dead
):
    """Text, image, audio, embedded resources, resource_link, structuredContent, isError: as the backend sent them."""
    with anyio.fail_after(40):
        async with direct_client("alpha", piddir) as session:
            direct = [await session.call_tool(tool, args) for tool, args in PASSTHROUGH_CALLS]
        async with mcpd_client(mcpd_bin, standard_config, tmp_path, mcpd_env) as (session, handle):
            via = [await session.call_tool(f"alpha__{tool}", args) for tool, args in PASSTHROUGH_CALLS]
        assert_clean_exit(handle)

    for (tool, _), d, v in zip(PASSTHROUGH_CALLS, direct, via, strict=True):
        assert dump(v) == dump(d), f"alpha__{tool} result differs from the backend's"
    mixed = via[3]
    assert [c.type for c in mixed.content] == ["text", "image", "audio", "resource", "resource", "resource_link"]
    assert mixed.structured_content["big"] == 12345678901234567890
    assert mixed.meta == {"example.com/trace": "abc/def"}
    assert via[4].is_error is True
    assert via[2].content[0].data == direct[2].content[0].data
    assert_backends_dead(expect_at_least=3)


UNKNOWN_TOOL_NAMES = ["nosuchserver__echo", "echo", "alpha__nosuchtool", "alpha_echo", "__echo", "alpha__"]


async def test_unknown_tool_is_invalid_params(mcpd_bin, standard_config, tmp_path, mcpd_env):
    errors: dict[str, MCPError] = {}
    with anyio.fail_after(30):
        async with mcpd_client(mcpd_bin, standard_config, tmp_path, mcpd_env) as (session, handle):
            for name in UNKNOWN_TOOL_NAMES:
                with pytest.raises(MCPError) as excinfo:
                    await session.call_tool(name, {"text": "x"})
                errors[name] = excinfo.value
            # The session is still usable.
            ok = await session.call_tool("beta__upper", {"text": "still here"})
        assert_clean_exit(handle)
    for name, err in errors.items():
        assert err.code == -32602, f"{name!r}: code {err.code}: {err.message}"
        assert name in err.message, f"{name!r} not named in the error message {err.message!r}"
    assert ok.content[0].text == "STILL HERE"


async def test_backend_crash_mid_call_fails_fast_and_other_backend_survives(
    mcpd_bin, standard_config, tmp_path, mcpd_env, piddir, assert_backends_dead
):
    with anyio.fail_after(30):
        async with mcpd_client(mcpd_bin, standard_config, tmp_path, mcpd_env) as (session, handle):
            await session.list_tools()
            with anyio.fail_after(5):
                with pytest.raises(MCPError) as excinfo:
                    await session.call_tool("alpha__crash", {})
            assert excinfo.value.code == -32603, f"code {excinfo.value.code}: {excinfo.value.message}"
            assert "alpha" in excinfo.value.message

            after = await session.call_tool("beta__echo", {"text": "after crash"})
            assert after.content[0].text == "beta:after crash"
            await session.send_ping()
        assert_clean_exit(handle)
    assert_backends_dead(expect_at_least=2)


async def test_progress_notifications_reach_the_client(mcpd_bin, standard_config, tmp_path, mcpd_env):
    received: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        received.append((progress, total, message))

    with anyio.fail_after(30):
        async with mcpd_client(mcpd_bin, standard_config, tmp_path, mcpd_env) as (session, handle):
            result = await session.call_tool("alpha__slow", {"steps": 4}, progress_callback=on_progress)
            # A second call gets its own token; the first call's callback must not see it.
            first = list(received)
            received.clear()
            await session.call_tool("alpha__slow", {"steps": 2}, progress_callback=on_progress)
        assert_clean_exit(handle)

    assert result.content[0].text == "done 4"
    assert first == [(float(i), 4.0, f"step {i}/4") for i in range(1, 5)]
    assert received == [(1.0, 2.0, "step 1/2"), (2.0, 2.0, "step 2/2")]


async def test_cancellation_reaches_the_backend(mcpd_bin, standard_config, tmp_path, mcpd_env):
    """The SDK client sends notifications/cancelled when the caller gives up; the backend's handler is cancelled."""

    async def stats(session: ClientSession) -> dict[str, int]:
        r = await session.call_tool("alpha__stats", {})
        return json.loads(r.content[0].text)

    with anyio.fail_after(30):
        async with mcpd_client(mcpd_bin, standard_config, tmp_path, mcpd_env) as (session, handle):
            await session.list_tools()
            # Move the client's request ids away from alpha's own id sequence, so that forwarding
            # the client's requestId unchanged cannot cancel the right request by coincidence.
            for _ in range(7):
                await session.send_ping()
            for _ in range(3):
                await session.call_tool("beta__upper", {"text": "x"})
            async with anyio.create_task_group() as tg:
                scope = anyio.CancelScope()

                async def long_call() -> None:
                    with scope:
                        await session.call_tool("alpha__sleep", {"seconds": 60})

                tg.start_soon(long_call)
                with anyio.fail_after(10):
                    while (await stats(session))["sleep_started"] < 1:
                        await anyio.sleep(0.02)
                scope.cancel()

            with anyio.fail_after(5):
                while (s := await stats(session))["sleep_cancelled"] < 1:
                    await anyio.sleep(0.02)
            assert s == {"sleep_started": 1, "sleep_cancelled": 1, "sleep_finished": 0}
            # The session is still healthy afterwards.
            assert (await session.call_tool("alpha__echo", {"text": "x"})).content[0].text == "x"
        assert_clean_exit(handle)


async def test_concurrent_calls_on_both_backends(mcpd_bin, standard_config, tmp_path, mcpd_env):
    results: dict[str, str] = {}
    with anyio.fail_after(30):
        async with mcpd_client(mcpd_bin, standard_config, tmp_path, mcpd_env) as (session, handle):

            async def call(tool: str, text: str) -> None:
                r = await session.call_tool(tool, {"text": text})
                results[f"{tool}:{text}"] = r.content[0].text

            async with anyio.create_task_group() as tg:
                for i in range(10):
                    tg.start_soon(call, "alpha__echo", f"a{i}")
                    tg.start_soon(call, "beta__echo", f"b{i}")
                    tg.start_soon(call, "beta__upper", f"c{i}")
        assert_clean_exit(handle)
    for i in range(10):
        assert results[f"alpha__echo:a{i}"] == f"a{i}"
        assert results[f"beta__echo:b{i}"] == f"beta:b{i}"
        assert results[f"beta__upper:c{i}"] == f"C{i}"


async def test_disabled_server_is_not_started_or_listed(
    mcpd_bin, write_config, piddir, tmp_path, mcpd_env, assert_backends_dead
):
    config = write_config(
        {
            "servers": {
                "alpha": server_entry("alpha", piddir, enabled=False),
                "beta": server_entry("beta", piddir, enabled=True),
            }
        }
    )
    with anyio.fail_after(30):
        async with mcpd_client(mcpd_bin, config, tmp_path, mcpd_env) as (session, handle):
            names = sorted(t.name for t in (await session.list_tools()).tools)
            with pytest.raises(MCPError) as excinfo:
                await session.call_tool("alpha__echo", {"text": "x"})
        assert_clean_exit(handle)
    assert names == sorted(f"beta__{t}" for t in BETA_TOOLS)
    assert excinfo.value.code == -32602
    pids = assert_backends_dead(expect_at_least=1)
    assert sorted(pids.values()) == ["beta"], "the disabled backend must not be started"


async def test_no_backend_left_after_client_closes(
    mcpd_bin, standard_config, tmp_path, mcpd_env, piddir, assert_backends_dead
):
    with anyio.fail_after(30):
        async with mcpd_client(mcpd_bin, standard_config, tmp_path, mcpd_env) as (session, handle):
            await session.list_tools()
            # Both backends have answered, so both are running while the session is open.
            running = recorded_pids(piddir)
            assert sorted(running.values()) == ["alpha", "beta"]
            assert all(pid_is_alive(pid) for pid in running)
        assert_clean_exit(handle)
    pids = assert_backends_dead(expect_at_least=2)
    assert sorted(pids.values()) == ["alpha", "beta"]


@pytest.mark.parametrize("mode, version", [("auto", "2026-07-28"), ("legacy", PROTOCOL_VERSION)])
async def test_sdk_high_level_client(mcpd_bin, standard_config, assert_backends_dead, mode, version):
    """mcp 2.3.0's `Client`: in mode "auto" it probes `server/discover`, which mcpd answers, and
    speaks the stateless era; in mode "legacy" it initializes. Here the SDK's own stdio_client
    spawns and stops mcpd."""
    from mcp import Client

    params = StdioServerParameters(command=mcpd_bin, args=["stdio", "--config", str(standard_config)])
    with anyio.fail_after(30):
        with open(standard_config.parent / "client-mcpd.stderr", "w") as errlog:
            async with Client(stdio_client(params, errlog=errlog), mode=mode, cache=None) as client:
                assert client.protocol_version == version
                assert client.server_info is not None and client.server_info.name == "mcpd"
                names = {t.name for t in (await client.list_tools()).tools}
                assert {"alpha__echo", "beta__echo"} <= names
                r = await client.call_tool("beta__upper", {"text": "via client"})
                assert r.content[0].text == "VIA CLIENT"
    assert_backends_dead(expect_at_least=2)
