"""Backends of either era behind mcpd, for clients of either era.

delta is built with the SDK from before the stateless era (`mcp<2`, in .venv-mcp1): it answers
`server/discover` with an error, so mcpd serves a stateless client through delta's handshake-era
process, translating its sampling, elicitation and roots requests into input-required results.
The dual-era servers (alpha, gamma: SDK 2.3.0) are covered in test_eras.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters, stdio_client
from mcp.client.session import ClientRequestContext
from mcpd_helpers import recorded_pids, server_entry

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
MODES = {"legacy": "2025-11-25", MODERN: MODERN}


@pytest.fixture
def delta_config(write_config, piddir) -> Path:
    return write_config({"servers": {"delta": server_entry("delta", piddir)}})


def text(result: types.CallToolResult) -> str:
    assert result.content and isinstance(result.content[0], types.TextContent), result
    return result.content[0].text


async def sampling(ctx: ClientRequestContext, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    asked = params.messages[0].content.text
    return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text=f"sampled: {asked}"), model="m")


async def elicit(ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada \u00e9"})


async def roots(ctx: ClientRequestContext) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///work/project", name="project")])


def client(mcpd_bin: str, config: Path, errlog: Any, mode: str, **callbacks: Any) -> Client:
    params = StdioServerParameters(command=mcpd_bin, args=["stdio", "--config", str(config)])
    return Client(stdio_client(params, errlog=errlog), mode=mode, cache=None, **callbacks)


@pytest.mark.parametrize("mode", list(MODES))
async def test_handshake_only_backend_serves_clients_of_both_eras(mcpd_bin, delta_config, tmp_path, piddir, assert_backends_dead, mode):
    steps: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append(progress)

    log = tmp_path / "mcpd.stderr"
    with anyio.fail_after(60):
        with open(log, "w") as errlog:
            async with client(mcpd_bin, delta_config, errlog, mode, sampling_callback=sampling, elicitation_callback=elicit,
                              list_roots_callback=roots) as c:
                assert c.protocol_version == MODES[mode]
                assert text(await c.call_tool("delta__echo", {"text": "h\u00e9llo"})) == "h\u00e9llo"
                assert text(await c.call_tool("delta__ask_elicit", {"message": "name?"})) == 'accept: {"name": "Ada \\u00e9"}'
                assert text(await c.call_tool("delta__ask_sample", {"prompt": "hi"})) == "sampled: hi"
                assert json.loads(text(await c.call_tool("delta__ask_roots", {}))) == [{"name": "project", "uri": "file:///work/project"}]
                assert text(await c.call_tool("delta__slow", {"steps": 3}, progress_callback=on_progress)) == "done 3"
                prompt = await c.get_prompt("delta__greet", {"name": "Ada"})
                assert prompt.messages[0].content.text == "Hello, Ada!"
                note = await c.read_resource("mcpd://delta/delta://note")
                assert note.contents[0].text == "delta note"
    assert steps == [1, 2, 3]
    stderr = log.read_text()
    if mode == MODERN:
        # The probe process was started, said no, and was stopped; delta's handshake process served.
        assert 'backend "delta" does not speak protocol 2026-07-28' in stderr, stderr
        assert len(recorded_pids(piddir)) == 2
    else:
        assert "server/discover" not in stderr, stderr
        assert len(recorded_pids(piddir)) == 1
    assert_backends_dead(expect_at_least=len(recorded_pids(piddir)))


@pytest.mark.parametrize("mode", list(MODES))
async def test_handshake_only_backend_requests_are_refused_without_the_capability(mcpd_bin, delta_config, tmp_path, mode):
    with anyio.fail_after(60):
        with open(tmp_path / "mcpd.stderr", "w") as errlog:
            async with client(mcpd_bin, delta_config, errlog, mode) as c:
                answers = {tool: text(await c.call_tool(f"delta__{tool}", args))
                           for tool, args in [("ask_elicit", {"message": "m"}), ("ask_sample", {"prompt": "p"}), ("ask_roots", {})]}
    for tool, answer in answers.items():
        assert answer.startswith("error: ") and "did not declare the" in answer, (tool, answer)
