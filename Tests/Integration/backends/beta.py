"""Integration-test backend "beta": an MCP stdio server built with the official SDK.

Tools:
  echo(text)    -> "beta:" + text (same tool name as alpha's echo; the prefix shows which backend answered)
  upper(text)   -> text.upper()
  getenv(name)  -> the value of the environment variable, or "<unset>"
  cwd()         -> the working directory
"""

from __future__ import annotations

import os

from _common import record_pid, say
from mcp.server.mcpserver import MCPServer

mcp = MCPServer(name="beta", version="1.0.0", log_level="WARNING")


@mcp.tool(description="Echo the text back with a beta: prefix.")
def echo(text: str) -> str:
    return "beta:" + text


@mcp.tool(description="Upper-case the text.")
def upper(text: str) -> str:
    return text.upper()


@mcp.tool(description="Read an environment variable of the backend process.")
def getenv(name: str) -> str:
    return os.environ.get(name, "<unset>")


@mcp.tool(description="The backend's working directory.")
def cwd() -> str:
    return os.getcwd()


if __name__ == "__main__":
    record_pid("beta")
    say("beta backend ready")
    mcp.run("stdio")
