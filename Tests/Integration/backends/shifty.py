"""Integration-test backend "shifty": an MCP stdio server (the SDK's lowlevel `Server`) whose tool
definitions come from a JSON file, read again for every tools/list, so that a test can change a
tool's description or schema between runs (or during one: see `relist`).

The file is $SHIFTY_TOOLS, or the first argument (`shifty.py FILE`; the argument wins). It holds a
JSON list of tool definitions as tools/list carries them: name, description, inputSchema, and any of
title, outputSchema, annotations, _meta (camelCase, as on the wire), e.g.

    [{"name": "t", "description": "Do t.", "inputSchema": {"type": "object", "properties": {"x": {"type": "string"}}}}]

The SDK re-serialises each definition (fields in its own order, None left out); numbers in schemas
go through Python floats/ints. A file that cannot be read or parsed lists none of its tools (and
says why on stderr).

Besides the file's tools shifty always lists one of its own, last:
  relist()   sends notifications/tools/list_changed (the tools capability declares listChanged;
             handshake era) and answers "relisted"

tools/call of a tool the file lists at the time of the call: one text content
`shifty <name> <arguments as JSON, sort_keys>` (arguments {} when absent), nothing else; any
other name: error -32602 "Unknown tool: <name>". tools/list is one page.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio
import mcp_types as types
from _common import record_pid, say
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

TOOLS_FILE = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SHIFTY_TOOLS", "")

RELIST = types.Tool(
    name="relist",
    description="Send notifications/tools/list_changed.",
    input_schema={"type": "object", "properties": {}},
)


def file_tools() -> list[dict[str, Any]]:
    """The definitions in the file, as written (an empty list when it is unusable)."""
    try:
        with open(TOOLS_FILE, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        say(f"shifty: cannot read tool definitions from {TOOLS_FILE!r}: {exc}")
        return []
    if not isinstance(data, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in data):
        say(f"shifty: {TOOLS_FILE!r} is not a list of tool definitions with names")
        return []
    return data


async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    tools = [types.Tool.model_validate(definition) for definition in file_tools() if definition["name"] != "relist"]
    return types.ListToolsResult(tools=[*tools, RELIST])


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    args = params.arguments or {}
    if params.name == "relist":
        await ctx.session.send_tool_list_changed()
        return types.CallToolResult(content=[types.TextContent(text="relisted")])
    if params.name not in {t["name"] for t in file_tools()}:
        raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
    text = f"shifty {params.name} {json.dumps(args, sort_keys=True)}"
    return types.CallToolResult(content=[types.TextContent(text=text)])


server: Server[Any] = Server("shifty", version="1.0.0", on_list_tools=list_tools, on_call_tool=call_tool)


async def main() -> None:
    options = server.create_initialization_options(NotificationOptions(tools_changed=True))
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, options)


if __name__ == "__main__":
    record_pid("shifty")
    say(f"shifty backend ready (tools from {TOOLS_FILE})")
    anyio.run(main)
