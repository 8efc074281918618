"""Integration-test backend "delta": a handshake-era-only MCP stdio server, built with the
official SDK before the stateless era (`mcp<2`, installed in .venv-mcp1 by `make deps`).

It answers `server/discover` with an error, as every pre-2.0 SDK server does, so mcpd serves
stateless clients through it by translation.

Tools:
  echo(text)          -> the text
  ask_elicit(message) -> "accept: <content json>" / "decline" / "cancel", or "error: <message>"
  ask_sample(prompt)  -> the text the client sampled, or "error: <message>"
  ask_roots()         -> the roots as JSON, or "error: <message>"
  slow(steps)         -> one progress notification per step, then "done <steps>"
Prompt:   greet(name) -> "Hello, <name>!"
Resource: delta://note -> "delta note"
"""

from __future__ import annotations

import json

from _common import record_pid, say
from mcp.server.fastmcp import Context, FastMCP
from mcp.types import SamplingMessage, TextContent
from pydantic import BaseModel

mcp = FastMCP(name="delta", log_level="WARNING")


class Name(BaseModel):
    name: str


@mcp.tool(description="Echo the text back.")
def echo(text: str) -> str:
    return text


@mcp.tool(description="Ask the client for a name (elicitation).")
async def ask_elicit(message: str, ctx: Context) -> str:
    try:
        result = await ctx.elicit(message=message, schema=Name)
    except Exception as error:  # the client's error answer
        return f"error: {error}"
    if result.action == "accept":
        return "accept: " + json.dumps(result.data.model_dump(), sort_keys=True)
    return result.action


@mcp.tool(description="Ask the client to sample a message.")
async def ask_sample(prompt: str, ctx: Context) -> str:
    try:
        result = await ctx.session.create_message(
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))], max_tokens=50
        )
    except Exception as error:
        return f"error: {error}"
    return result.content.text if isinstance(result.content, TextContent) else str(result.content)


@mcp.tool(description="Ask the client for its roots.")
async def ask_roots(ctx: Context) -> str:
    try:
        result = await ctx.session.list_roots()
    except Exception as error:
        return f"error: {error}"
    return json.dumps([{"uri": str(root.uri), "name": root.name} for root in result.roots], sort_keys=True)


@mcp.tool(description="Send one progress notification per step, then return.")
async def slow(steps: int, ctx: Context) -> str:
    for i in range(1, steps + 1):
        await ctx.report_progress(i, steps)
    return f"done {steps}"


@mcp.prompt(description="Greet someone.")
def greet(name: str) -> str:
    return f"Hello, {name}!"


@mcp.resource("delta://note", description="A note.")
def note() -> str:
    return "delta note"


if __name__ == "__main__":
    record_pid("delta")
    say("delta backend ready")
    mcp.run("stdio")
