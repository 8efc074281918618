"""Integration-test backend "alpha": an MCP stdio server built with the official SDK.

Tools:
  echo(text)        -> the text, unchanged
  add(a, b)         -> structured output {"sum": a+b} (the tool has an outputSchema)
  image()           -> an ImageContent (1x1 PNG) plus a text block
  mixed()           -> text + image + audio + embedded resources + resource_link, with
                       annotations, _meta and JSON that is easy to re-serialize differently
  fail()            -> a result with isError: true
  crash()           -> the process exits (status 3) in the middle of the call
  slow(steps, delay) -> one progress notification per step, `delay` seconds apart (default
                       0.01), then "done <steps>"
  sleep(seconds)    -> sleeps (to be cancelled); counts starts and cancellations
  stats()           -> JSON text {"sleep_started": n, "sleep_cancelled": n, ...}
  shout(line)       -> writes `line` to stderr, returns "ok"
  linger()          -> from now on the process ignores SIGTERM and stays alive after its stdin
                       closes (only SIGKILL ends it): tests mcpd's shutdown escalation
  spawn_child()     -> starts a grandchild process (same process group) that sleeps; it records
                       its pid as `alphachild-<pid>.pid`: tests that mcpd signals the whole group

`alpha.py --child` is the grandchild: it records its pid and sleeps.
"""

from __future__ import annotations

import os
import sys
import time

if __name__ == "__main__" and sys.argv[1:] == ["--child"]:
    from _common import record_pid

    record_pid("alphachild")
    time.sleep(120)
    sys.exit(0)

import json
import signal
import subprocess

import anyio
from _common import record_pid, say
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import (
    Annotations,
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
    ToolAnnotations,
)
from pydantic import BaseModel

PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
WAV_B64 = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA=="
# Non-ASCII, a slash, quotes, backslash, a U+2028 and an astral-plane character:
# anything that decodes and re-encodes JSON instead of relaying bytes will likely change this.
TRICKY = 'h\u00e9llo / "quoted" \\ back \u2028 sep \U0001f680 end'

STATS = {"sleep_started": 0, "sleep_cancelled": 0, "sleep_finished": 0}
LINGER = False
CHILDREN: list[subprocess.Popen] = []

mcp = MCPServer(name="alpha", version="1.0.0", log_level="WARNING")


class Sum(BaseModel):
    sum: float
    operands: list[float]


@mcp.tool(
    description="Echo the text back unchanged.",
    annotations=ToolAnnotations(title="Alpha echo", read_only_hint=True, idempotent_hint=True),
    meta={"example.com/origin": "alpha"},
)
def echo(text: str) -> str:
    return text


@mcp.tool(description="Add two numbers; returns structured content.")
def add(a: float, b: float) -> Sum:
    return Sum(sum=a + b, operands=[a, b])


@mcp.tool(description="A tiny PNG and a caption.")
def image() -> CallToolResult:
    return CallToolResult(
        content=[
            ImageContent(data=PNG_B64, mime_type="image/png"),
            TextContent(text="a 1x1 png"),
        ]
    )


@mcp.tool(description="Every content block type at once.")
def mixed() -> CallToolResult:
    return CallToolResult(
        content=[
            TextContent(
                text=TRICKY,
                annotations=Annotations(audience=["user", "assistant"], priority=0.25),
                _meta={"k": [1, 2.5, None, True, {"nested": "x/y"}]},
            ),
            ImageContent(data=PNG_B64, mime_type="image/png"),
            AudioContent(data=WAV_B64, mime_type="audio/wav"),
            EmbeddedResource(
                resource=TextResourceContents(uri="file:///tmp/alpha/notes.txt", mime_type="text/plain", text=TRICKY)
            ),
            EmbeddedResource(
                resource=BlobResourceContents(uri="file:///tmp/alpha/pixel.png", mime_type="image/png", blob=PNG_B64)
            ),
            ResourceLink(
                uri="https://example.com/a/b?c=d&e=%2F",
                name="example-link",
                title="Example \u00e9",
                mime_type="text/html",
                size=1234,
            ),
        ],
        structured_content={"float": 0.1, "big": 12345678901234567890, "exp": 1e-7, "uni": TRICKY, "list": []},
        _meta={"example.com/trace": "abc/def"},
    )


@mcp.tool(description="Always fails with an isError result.")
def fail() -> CallToolResult:
    return CallToolResult(content=[TextContent(text="alpha failed on purpose")], is_error=True)


@mcp.tool(description="Exit the backend process in the middle of the call.")
def crash() -> str:
    say("alpha crashing now")
    os._exit(3)


@mcp.tool(description="Send one progress notification per step, then return.")
async def slow(steps: int, ctx: Context, delay: float = 0.01) -> str:
    for i in range(1, steps + 1):
        await ctx.report_progress(i, steps, f"step {i}/{steps}")
        await anyio.sleep(delay)
    return f"done {steps}"


@mcp.tool(description="Sleep (cancellable).")
async def sleep(seconds: float) -> str:
    STATS["sleep_started"] += 1
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        STATS["sleep_cancelled"] += 1
        raise
    STATS["sleep_finished"] += 1
    return f"slept {seconds}"


@mcp.tool(description="Counters of the sleep tool, as JSON text.")
def stats() -> CallToolResult:
    return CallToolResult(content=[TextContent(text=json.dumps(STATS, sort_keys=True))])


@mcp.tool(description="Write a line to stderr.")
def shout(line: str) -> str:
    say(line)
    return "ok"


@mcp.tool(description="Ignore SIGTERM and stay alive after stdin closes.")
async def linger() -> str:  # async: runs on the main thread, where signal() is allowed
    global LINGER
    LINGER = True
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return "lingering"


@mcp.tool(description="Start a sleeping grandchild process; returns its pid.")
def spawn_child() -> str:
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--child"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    CHILDREN.append(child)
    piddir = os.environ.get("MCPD_TEST_PIDDIR")
    if piddir:  # wait until the child has recorded itself, so the test can rely on the file
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(piddir, f"alphachild-{child.pid}.pid")) and time.monotonic() < deadline:
            time.sleep(0.01)
    return str(child.pid)


if __name__ == "__main__":
    record_pid("alpha")
    say("alpha backend ready")
    mcp.run("stdio")
    if LINGER:
        try:
            say("alpha stdin closed; lingering until SIGKILL")
        except OSError:
            pass  # mcpd may have closed our stderr already; keep lingering regardless
        while True:
            time.sleep(60)
