"""Meta mode (`gateway.mode: meta | hybrid`, `gateway.pinned_tools`, `enable_meta_mcp`): four gateway tools
instead of every backend tool.

The servers are `catalog` (backends/catalog.py: 100 tools of real MCP servers, each answering
`called <name> <arguments JSON, sort_keys>`) and, where a test needs it, `alpha` (progress, sleep,
mixed content, isError results; the second server of the lazy-start and roles tests).

What is tested:
- search quality: over the 100-tool catalog, 24 natural-language queries written here (open an issue,
  read a file, run SQL, take a screenshot, the time in Tokyo, post to Slack, ...) must each have their
  expected tool in the top 3 of `gateway_search_tools`; the failure message lists every query that
  missed, with its top 5 (tool and score). Every hit is of server catalog, named `catalog__<tool>`,
  scores descending.
- tools/list: meta mode lists exactly gateway_list_servers, gateway_list_tools, gateway_search_tools,
  gateway_invoke (in that order; their schemas: list_tools requires server, search requires query and
  has limit default 5, maximum 50, invoke requires server and tool); hybrid lists those four and then
  the tools matched by `pinned_tools` globs (`catalog__create_issue`, `catalog__git_diff*`,
  `alpha__ech?`: 5 tools), each definition equal to direct mode's; direct mode lists the 112 prefixed
  tools; `enable_meta_mcp: true` at the top level and under `gateway:` is meta mode, `false` is direct.
  `mcpd check` accepts mode hybrid with pinned_tools without a "not acted on" warning, and refuses
  `gateway.mode: metaa` and a pinned_tools that is not a list (exit 1).
- the SDK client over stdio: gateway_list_servers gives {"servers": [{name, tools, state, description?}]}
  (catalog with its configured description and 100 tools, alpha with 12 and no description, both
  ready); gateway_list_tools catalog gives {"server", "tools"} with exactly {server, tool, name,
  description, inputSchema} per tool, equal to the catalog's own definitions; gateway_search_tools
  gives {"query", "tools"} with a number `score` per hit, 5 hits by default, `limit` 3 gives 3, the
  server's name is searched (`catalog` matches every tool: limit 100 gives 50, the maximum); a query of
  unknown or only common words gives no hit (not an error). Every result's structuredContent equals its
  text parsed as JSON.
- mistakes are isError results saying what is wrong: list_tools without a server or with a number; an
  unknown server (`catalgo`: did you mean "catalog"); search without query, with "" or 42; limit 0,
  2.5, "3"; arguments that are not an object; invoke without tool, of an unknown server, of an unknown
  tool (`create_isue`: did you mean "create_issue"), with arguments.arguments a string or a list.
  `limit: 3.0` (a whole number written with a fraction, JSON Schema's integer) gives 3 hits.
- gateway_invoke: its result is the tools/call result of the exposed name byte for byte (the raw
  `result` member, for catalog's create_issue with non-ASCII and escape-dense arguments, for alpha's
  `mixed` with every content type, and alpha's `fail` isError result); arguments absent or null are
  {}; the catalog's `echo` and alpha's `echo` are told apart by server; a string request id comes back
  as sent; the call's `_meta.progressToken` brings alpha's progress notifications under the client's
  token; notifications/cancelled for the invoke's id cancels alpha's sleep. Direct tools/call of exposed
  names still works in meta mode. With `gateway.separator: "-"` and `name_budget: 24` list_tools names
  tools `catalog-<tool>` (long ones cut and hashed), those names are callable, and invoke by own name
  still works.
- a backend tool whose exposed name is a gateway tool's (server `gateway`, separator "_", tools
  `invoke` and `list_tools`): hybrid tools/list must not name a tool twice, and gateway_invoke must
  reach the backend's `invoke`. A client of protocol 2025-03-26 gets meta results without
  structuredContent (the JSON text only).
- no backend is started by listing or searching: after a first run has filled the catalog, a second
  run (same state directory) answers tools/list, list_servers (both servers "cached"), list_tools and
  search with no new backend process; gateway_invoke of a catalog tool starts catalog alone (alpha stays
  "cached", no alpha process).
- roles over stdio (`MCPD_ROLE`, catalog filled first): dev (`catalog__*issue*`) and ops
  (`catalog__slack_*`, `alpha__*`) see different list_servers (dev: catalog with 8 tools, no alpha),
  list_tools and search results (only their own tools); invoking a tool of the other role is an isError
  result `Tool "catalog__slack_post_message" is not available to role "dev" (roles.dev in the config)`;
  a typo near a hidden tool does not name it; a server with no visible tool is unknown to the role.
- HTTP (`mcpd serve`, test_streamable_http's `serve` fixture, the SDK client): hybrid mode with pinned
  tools and bearer tokens of roles dev, ops and of no role: each token lists the four tools plus only
  the pinned tools its role allows, and gets its own list_servers, search results and refusals. Without
  roles: meta mode over HTTP, search and invoke, the SDK's progress callback receiving alpha's progress
  through gateway_invoke; in the stateless era (2026-07-28, a POST without session, `Mcp-Name:
  gateway_invoke`) gateway_invoke and gateway_search_tools are served.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from backends.catalog import NAMES, TOOLS, called_text
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcpd_helpers import (
    ALPHA_TOOLS,
    LineProcess,
    describe,
    pid_is_alive,
    raw_members,
    recorded_pids,
    run_mcpd,
    server_entry,
    spawn_jsonrpc_streams,
    to_yaml,
)
from test_http_server_view import stateless_post
from test_streamable_http import serve  # noqa: F401  (a fixture)

META_TOOLS = ["gateway_list_servers", "gateway_list_tools", "gateway_search_tools", "gateway_invoke"]
DEFINITIONS = {name: (description, schema) for name, description, schema in TOOLS}
CATALOG_DESCRIPTION = "Tools of real MCP servers (GitHub, filesystem, git, Slack, ...)"
ISSUE_TOOLS = {name for name in NAMES if "issue" in name}
SLACK_TOOLS = {name for name in NAMES if name.startswith("slack_")}
TRICKY = 'caf\u00e9 "quoted" \\ back / \u2028 \U0001f680 <&>'

TOK_DEV = "tokDEV" + secrets.token_hex(12)
TOK_OPS = "tokOPS" + secrets.token_hex(12)
TOK_ALL = "tokALL" + secrets.token_hex(12)

# (query, acceptable tools): the expected tool must be among the first 3 hits.
QUERIES: list[tuple[str, set[str]]] = [
    ("open a new issue in a github repository", {"create_issue"}),
    ("read the contents of a file", {"read_file"}),
    ("run a SQL query against the database", {"query"}),
    ("take a screenshot of a web page", {"puppeteer_screenshot"}),
    ("what time is it in Tokyo", {"get_current_time"}),
    ("send a message to a slack channel", {"slack_post_message"}),
    ("fetch a web page and convert it to markdown", {"fetch"}),
    ("find restaurants near me", {"brave_local_search"}),
    ("get driving directions between two addresses", {"maps_directions"}),
    ("commit staged changes to the git repository", {"git_commit"}),
    ("merge a pull request", {"merge_pull_request"}),
    ("list my open pull requests", {"list_pull_requests"}),
    ("list the files in a directory", {"list_directory"}),
    ("rename a file", {"move_file"}),
    ("search the web for recent news", {"brave_web_search"}),
    ("convert an address to latitude and longitude coordinates", {"maps_geocode"}),
    ("show the commit history of a local git repository", {"git_log"}),
    ("look up a Sentry error by its issue id", {"get_sentry_issue"}),
    ("react to a slack message with an emoji", {"slack_add_reaction"}),
    ("remember a new person and their details in the knowledge graph", {"create_entities"}),
    ("approve a pull request", {"create_pull_request_review"}),
    ("make a new folder", {"create_directory"}),
    ("undo git add and unstage everything", {"git_reset"}),
    ("how far is it from Paris to Berlin by car", {"maps_distance_matrix", "maps_directions"}),
]

pytestmark = [pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")]


@pytest.fixture
def mcpd_env(state_home: Path) -> dict[str, str]:
    """mcpd's environment: the three tokens set, no role variable (tests add MCPD_ROLE)."""
    env = dict(os.environ, TOK_DEV=TOK_DEV, TOK_OPS=TOK_OPS, TOK_ALL=TOK_ALL)
    for name in ("MCPD_ROLE", "MCP_GATEWAY_ROLE"):
        env.pop(name, None)
    return env


# --------------------------------------------------------------------------- helpers


def catalog_entry(piddir: Path, **extra: Any) -> dict[str, Any]:
    return server_entry("catalog", piddir, description=CATALOG_DESCRIPTION, **extra)


def config(piddir: Path, gateway: dict[str, Any] | None = None, alpha: bool = True, **top: Any) -> dict[str, Any]:
    servers: dict[str, Any] = {"catalog": catalog_entry(piddir)}
    if alpha:
        servers["alpha"] = server_entry("alpha", piddir)
    # A loaded machine may take more than the default 5 s to start the backends of a first run; the
    # first initialize waits for them (the lists are complete once it is answered).
    out: dict[str, Any] = {"gateway": {"startup_wait": "30s", **(gateway or {})}}
    out.update(top)
    out["servers"] = servers
    return out


def call(p: LineProcess, name: str, arguments: Any = ..., *, meta: dict[str, Any] | None = None,
         id_raw: str | None = None, timeout: float = 20.0) -> tuple[str, dict[str, Any]]:
    """tools/call `name`; (the response line, its result). `arguments=...` leaves the member out."""
    params: dict[str, Any] = {"name": name}
    if arguments is not ...:
        params["arguments"] = arguments
    if meta is not None:
        params["_meta"] = meta
    line, msg, _ = p.request("tools/call", params, id_raw=id_raw, timeout=timeout)
    assert "result" in msg, f"tools/call {name} {arguments!r}: expected a result, got {line}"
    return line, msg["result"]


def meta_object(result: dict[str, Any]) -> dict[str, Any]:
    """A meta tool's successful result: one text block whose JSON equals structuredContent; the object."""
    assert not result.get("isError"), f"unexpected isError result: {result}"
    content = result.get("content")
    assert isinstance(content, list) and len(content) == 1 and content[0].get("type") == "text", result
    parsed = json.loads(content[0]["text"])
    assert "structuredContent" in result, f"no structuredContent: {result}"
    assert result["structuredContent"] == parsed, f"structuredContent differs from the text: {result}"
    return parsed


def meta_error(result: dict[str, Any]) -> str:
    """An isError result with one text block; the text."""
    assert result.get("isError") is True, f"expected an isError result, got {result}"
    content = result.get("content")
    assert isinstance(content, list) and len(content) == 1 and content[0].get("type") == "text", result
    assert "structuredContent" not in result, result
    return content[0]["text"]


def call_meta(p: LineProcess, name: str, arguments: Any = ...) -> dict[str, Any]:
    return meta_object(call(p, name, arguments)[1])


def call_error(p: LineProcess, name: str, arguments: Any = ...) -> str:
    return meta_error(call(p, name, arguments)[1])


def tool_list(p: LineProcess) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    cursor = None
    for _ in range(20):
        _, msg, _ = p.request("tools/list", {"cursor": cursor} if cursor else None)
        assert "result" in msg, msg
        tools += msg["result"]["tools"]
        cursor = msg["result"].get("nextCursor")
        if not cursor:
            return tools
    raise AssertionError("tools/list: more than 20 pages")


def search(p: LineProcess, query: str, limit: Any = ...) -> list[dict[str, Any]]:
    arguments: dict[str, Any] = {"query": query}
    if limit is not ...:
        arguments["limit"] = limit
    found = call_meta(p, "gateway_search_tools", arguments)
    assert found["query"] == query and set(found) == {"query", "tools"}, found
    return found["tools"]


def servers_of(listing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert set(listing) == {"servers"}, listing
    return {s["name"]: s for s in listing["servers"]}


def text_result(result: dict[str, Any]) -> str:
    assert result.get("isError") is not True, result
    assert len(result["content"]) == 1 and result["content"][0]["type"] == "text", result
    return result["content"][0]["text"]


def refusal(name: str, role: str) -> str:
    return f'Tool "{name}" is not available to role "{role}" (roles.{role} in the config)'


def children_of(pid: int) -> set[int]:
    """The live processes whose parent is `pid`."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(entry))
    return out


def wait_until(predicate: Callable[[], Any], timeout: float, what: str | Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(what() if callable(what) else what)
        time.sleep(0.05)


def fill_catalog(raw_mcpd: Callable[..., LineProcess], config_path: Path, env: dict[str, str], state: Path,
                 servers: list[str], piddir: Path) -> None:
    """A first run (no catalog): every server starts and gets its catalog entry; then mcpd ends (exit 0)
    and its backends are gone."""
    p = raw_mcpd(config_path, env=env)
    p.initialize()
    p.ping()
    wait_until(lambda: all((state / "catalog" / f"{s}.json").exists() for s in servers), 15,
               lambda: f"no catalog entries for {servers} in {state}: {sorted(map(str, state.rglob('*')))}")
    started = set(recorded_pids(piddir))
    p.close_stdin()
    assert p.wait(10) == 0, p.stderr_text()[-3000:]
    wait_until(lambda: not any(pid_is_alive(pid) for pid in started), 5, "the first run's backends did not stop")


# --------------------------------------------------------------------------- search quality


def test_search_ranks_the_expected_tool_in_the_top_three(raw_mcpd, write_config, piddir, mcpd_env):
    """24 natural-language queries over the 100-tool catalog (meta mode, catalog alone): each must have
    its expected tool among the first 3 hits of gateway_search_tools (limit 5). Every hit is catalog's,
    named catalog__<tool>, with scores descending. Failing queries are listed with their top 5."""
    p = raw_mcpd(write_config(config(piddir, {"mode": "meta"}, alpha=False)), env=mcpd_env)
    p.initialize()
    failures = []
    for query, expected in QUERIES:
        hits = search(p, query, 5)
        assert len(hits) <= 5, hits
        for hit in hits:
            assert hit["server"] == "catalog" and hit["name"] == f"catalog__{hit['tool']}", hit
            assert isinstance(hit["score"], int | float) and hit["score"] > 0, hit
        scores = [hit["score"] for hit in hits]
        assert scores == sorted(scores, reverse=True), f"{query!r}: scores not descending: {scores}"
        top3 = [hit["tool"] for hit in hits[:3]]
        if not expected & set(top3):
            top5 = ", ".join(f"{hit['tool']} {hit['score']}" for hit in hits) or "no hit at all"
            failures.append(f"  {query!r}: expected {' or '.join(sorted(expected))}; top 5: {top5}")
    assert not failures, (f"{len(failures)} of {len(QUERIES)} queries miss their tool in the top 3:\n"
                          + "\n".join(failures))


# --------------------------------------------------------------------------- tools/list per mode, config


def test_tools_list_in_meta_hybrid_and_direct_modes(raw_mcpd, write_config, piddir, mcpd_env, tmp_path):
    """catalog (and alpha for direct and hybrid). meta: exactly the four gateway tools, in order, with their schemas. hybrid with
    pinned_tools [catalog__create_issue, catalog__git_diff*, alpha__ech?]: the four, then those 5 tools,
    each definition equal to direct mode's. direct: the 112 prefixed tools. enable_meta_mcp: true (top
    level, and under gateway) is meta mode; enable_meta_mcp: false is direct."""
    pinned = ["catalog__create_issue", "catalog__git_diff*", "alpha__ech?"]
    variants = {
        "direct": config(piddir, {"mode": "direct"}),
        "meta": config(piddir, {"mode": "meta"}, alpha=False),
        "hybrid": config(piddir, {"mode": "hybrid", "pinned_tools": pinned}),
        "top_enable": config(piddir, alpha=False, enable_meta_mcp=True),
        "gateway_enable": config(piddir, {"enable_meta_mcp": True}, alpha=False),
        "enable_false": config(piddir, alpha=False, enable_meta_mcp=False),
    }
    runs = {}
    for name, content in variants.items():
        content.setdefault("gateway", {})["state_dir"] = str(tmp_path / f"state-{name}")
        runs[name] = raw_mcpd(write_config(content, name=f"{name}.yaml"), env=mcpd_env)
    lists = {}
    for name, p in runs.items():
        p.initialize()
        lists[name] = tool_list(p)

    direct = {t["name"]: t for t in lists["direct"]}
    expected_direct = {f"catalog__{n}" for n in NAMES} | {f"alpha__{t}" for t in ALPHA_TOOLS}
    assert set(direct) == expected_direct and len(lists["direct"]) == 112, sorted(direct)
    assert not set(direct) & set(META_TOOLS)
    for name, description, schema in TOOLS:
        assert direct[f"catalog__{name}"] == {"name": f"catalog__{name}", "description": description,
                                              "inputSchema": schema}, name

    meta = lists["meta"]
    assert [t["name"] for t in meta] == META_TOOLS, [t["name"] for t in meta]
    by_name = {t["name"]: t for t in meta}
    for tool in meta:
        assert tool.get("description"), tool
        assert tool["inputSchema"]["type"] == "object", tool
    assert by_name["gateway_list_servers"]["inputSchema"].get("required", []) == [], by_name
    assert by_name["gateway_list_tools"]["inputSchema"]["required"] == ["server"], by_name
    search_schema = by_name["gateway_search_tools"]["inputSchema"]
    assert search_schema["required"] == ["query"], search_schema
    assert search_schema["properties"]["query"]["type"] == "string", search_schema
    limit = search_schema["properties"]["limit"]
    assert (limit["type"], limit.get("default"), limit.get("minimum"), limit.get("maximum")) == ("integer", 5, 1, 50), limit
    invoke_schema = by_name["gateway_invoke"]["inputSchema"]
    assert sorted(invoke_schema["required"]) == ["server", "tool"], invoke_schema
    assert invoke_schema["properties"]["arguments"]["type"] == "object", invoke_schema

    hybrid = lists["hybrid"]
    names = [t["name"] for t in hybrid]
    assert names[:4] == META_TOOLS, names
    want_pinned = {"catalog__create_issue", "catalog__git_diff_unstaged", "catalog__git_diff_staged",
                   "catalog__git_diff", "alpha__echo"}
    assert set(names[4:]) == want_pinned and len(names) == 9, names
    for tool in hybrid[4:]:
        assert tool == direct[tool["name"]], f"pinned {tool['name']} differs from its direct-mode definition"
    assert hybrid[:4] == meta, "hybrid's gateway tools differ from meta mode's"

    assert [t["name"] for t in lists["top_enable"]] == META_TOOLS, "top-level enable_meta_mcp: true"
    assert [t["name"] for t in lists["gateway_enable"]] == META_TOOLS, "gateway.enable_meta_mcp: true"
    assert {t["name"] for t in lists["enable_false"]} == {f"catalog__{n}" for n in NAMES}, "enable_meta_mcp: false is direct mode"

    # A pinned tool and an unpinned one are both callable by exposed name in hybrid mode.
    h = runs["hybrid"]
    assert text_result(call(h, "catalog__create_issue", {"owner": "o", "repo": "r", "title": "t"})[1]) == called_text(
        "create_issue", {"owner": "o", "repo": "r", "title": "t"})
    assert text_result(call(h, "catalog__list_tables", {})[1]) == called_text("list_tables", {})


def test_check_accepts_meta_settings_and_rejects_bad_ones(mcpd_bin, write_config, piddir, mcpd_env):
    """`mcpd check`: mode hybrid with pinned_tools, and top-level enable_meta_mcp, exit 0 without a "not
    acted on" warning about the mode; `gateway.mode: metaa` and `pinned_tools: "catalog__*"` (not a
    list) exit 1 with an error naming the key."""
    good = write_config(config(piddir, {"mode": "hybrid", "pinned_tools": ["catalog__create_issue"]}))
    proc = run_mcpd(mcpd_bin, "check", "-c", str(good), env=mcpd_env)
    assert proc.returncode == 0, describe(proc)
    assert "not acted on" not in proc.stderr and "does not act on" not in proc.stderr, describe(proc)

    top = write_config(config(piddir, enable_meta_mcp=True), name="top.yaml")
    proc = run_mcpd(mcpd_bin, "check", "-c", str(top), env=mcpd_env)
    assert proc.returncode == 0 and "not acted on" not in proc.stderr, describe(proc)

    bad_mode = write_config(config(piddir, {"mode": "metaa"}), name="badmode.yaml")
    proc = run_mcpd(mcpd_bin, "check", "-c", str(bad_mode), env=mcpd_env)
    assert proc.returncode == 1 and "gateway.mode must be direct, meta or hybrid" in proc.stderr, describe(proc)

    bad_pins = write_config(config(piddir, {"mode": "hybrid", "pinned_tools": "catalog__*"}), name="badpins.yaml")
    proc = run_mcpd(mcpd_bin, "check", "-c", str(bad_pins), env=mcpd_env)
    assert proc.returncode == 1 and "gateway.pinned_tools must be a list" in proc.stderr, describe(proc)


# --------------------------------------------------------------------------- results (SDK client, stdio)


@asynccontextmanager
async def sdk_stdio(mcpd_bin: str, config_path: Path, tmp_path: Path, env: dict[str, str]) -> AsyncIterator[ClientSession]:
    async with spawn_jsonrpc_streams([mcpd_bin, "stdio", "--config", str(config_path)],
                                     stderr_path=tmp_path / "mcpd-sdk.stderr", env=env) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


def sdk_object(result: types.CallToolResult) -> dict[str, Any]:
    assert result.is_error is not True, result
    assert len(result.content) == 1 and isinstance(result.content[0], types.TextContent), result
    parsed = json.loads(result.content[0].text)
    assert result.structured_content == parsed, f"structuredContent differs from the text: {result}"
    return parsed


def sdk_error(result: types.CallToolResult) -> str:
    assert result.is_error is True, f"expected isError, got {result}"
    assert len(result.content) == 1 and isinstance(result.content[0], types.TextContent), result
    return result.content[0].text


@pytest.mark.anyio
async def test_list_servers_list_tools_and_search_results(mcpd_bin, write_config, piddir, mcpd_env, tmp_path):
    """The SDK client over stdio, meta mode, catalog (with a description) and alpha: list_servers,
    list_tools and search give the documented objects (structuredContent = the text's JSON); list_tools
    entries equal the catalog's definitions; search: 5 hits by default, limit 3 gives 3, `catalog`
    (the server's name) matches every tool and limit 100 gives the maximum, 50; a query of unknown or
    common words gives no hit."""
    path = write_config(config(piddir, {"mode": "meta"}))
    with anyio.fail_after(40):
        async with sdk_stdio(mcpd_bin, path, tmp_path, mcpd_env) as session:
            listed = [t.name for t in (await session.list_tools()).tools]
            servers = sdk_object(await session.call_tool("gateway_list_servers", {}))
            catalog_tools = sdk_object(await session.call_tool("gateway_list_tools", {"server": "catalog"}))
            alpha_tools = sdk_object(await session.call_tool("gateway_list_tools", {"server": "alpha"}))
            default = sdk_object(await session.call_tool("gateway_search_tools", {"query": "create a github issue"}))
            three = sdk_object(await session.call_tool("gateway_search_tools", {"query": "create a github issue", "limit": 3}))
            everything = sdk_object(await session.call_tool("gateway_search_tools", {"query": "catalog", "limit": 100}))
            nothing = sdk_object(await session.call_tool("gateway_search_tools", {"query": "zzyzx qwxq"}))
            common = sdk_object(await session.call_tool("gateway_search_tools", {"query": "the and of"}))
            invoked = await session.call_tool("gateway_invoke", {"server": "catalog", "tool": "get_current_time",
                                                                 "arguments": {"timezone": "Asia/Tokyo"}})

    assert listed == META_TOOLS
    assert servers == {"servers": [
        {"name": "catalog", "tools": 100, "state": "ready", "description": CATALOG_DESCRIPTION},
        {"name": "alpha", "tools": len(ALPHA_TOOLS), "state": "ready"},
    ]}, servers

    assert set(catalog_tools) == {"server", "tools"} and catalog_tools["server"] == "catalog", catalog_tools.keys()
    entries = catalog_tools["tools"]
    assert [e["tool"] for e in entries] == NAMES, [e["tool"] for e in entries]
    for entry in entries:
        description, schema = DEFINITIONS[entry["tool"]]
        assert entry == {"server": "catalog", "tool": entry["tool"], "name": f"catalog__{entry['tool']}",
                         "description": description, "inputSchema": schema}, entry["tool"]
    assert alpha_tools["server"] == "alpha" and {e["tool"] for e in alpha_tools["tools"]} == ALPHA_TOOLS, alpha_tools
    assert all(e["name"] == f"alpha__{e['tool']}" and e["server"] == "alpha" for e in alpha_tools["tools"])

    assert default["query"] == "create a github issue" and len(default["tools"]) == 5, default
    assert default["tools"][0]["tool"] == "create_issue", [h["tool"] for h in default["tools"]]
    for hit in default["tools"]:
        assert set(hit) == {"server", "tool", "name", "description", "inputSchema", "score"}, hit
        assert isinstance(hit["score"], int | float) and not isinstance(hit["score"], bool), hit
        if hit["server"] == "catalog":
            assert (hit["description"], hit["inputSchema"]) == DEFINITIONS[hit["tool"]], hit
    assert three["tools"] == default["tools"][:3], (three, default)
    assert len(everything["tools"]) == 50, f"limit 100 must be capped at 50: {len(everything['tools'])} hits"
    assert {h["server"] for h in everything["tools"]} == {"catalog"}, "only catalog's tools contain the word catalog"
    assert nothing == {"query": "zzyzx qwxq", "tools": []}, nothing
    assert common == {"query": "the and of", "tools": []}, common
    assert invoked.is_error is False and [c.text for c in invoked.content] == [
        called_text("get_current_time", {"timezone": "Asia/Tokyo"})], invoked


def test_mistakes_are_is_error_results_that_say_what_is_wrong(raw_mcpd, write_config, piddir, mcpd_env):
    """Each mistake is a result with isError true and a text naming the problem (no JSON-RPC error),
    and the session goes on: list_tools without server / with a number / of `catalgo` (did you mean
    "catalog"); search without query, "" or 42; limit 0, 2.5, "3", -1; arguments not an object;
    invoke without tool, of server `nope`, of tool `create_isue` (did you mean "create_issue"), with
    arguments.arguments "x" or [1]."""
    p = raw_mcpd(write_config(config(piddir, {"mode": "meta"})), env=mcpd_env)
    p.initialize()
    needs_server = "gateway_list_tools needs arguments.server (a string)"
    assert call_error(p, "gateway_list_tools", {}) == needs_server
    assert call_error(p, "gateway_list_tools", {"server": 5}) == needs_server
    text = call_error(p, "gateway_list_tools", {"server": "catalgo"})
    assert text.startswith('no server "catalgo" here; did you mean "catalog"?'), text
    assert "gateway_list_servers lists them: alpha, catalog" in text, text

    needs_query = "gateway_search_tools needs arguments.query (what you want to do, in words)"
    for arguments in ({}, {"query": ""}, {"query": 42}, ...):
        assert call_error(p, "gateway_search_tools", arguments) == needs_query, arguments
    bad_limit = "gateway_search_tools: limit must be a whole number from 1 to 50"
    for limit in (0, -1, 2.5, "3"):
        assert call_error(p, "gateway_search_tools", {"query": "issue", "limit": limit}) == bad_limit, limit
    for name in ("gateway_search_tools", "gateway_list_tools", "gateway_invoke"):
        assert call_error(p, name, [1]) == f"{name}: arguments must be an object"
        assert call_error(p, name, "query") == f"{name}: arguments must be an object"

    needs_tool = ("gateway_invoke needs arguments.server and arguments.tool (strings), and arguments.arguments "
                  "(an object)")
    assert call_error(p, "gateway_invoke", {"server": "catalog"}) == needs_tool
    assert call_error(p, "gateway_invoke", {"tool": "create_issue"}) == needs_tool
    text = call_error(p, "gateway_invoke", {"server": "nope", "tool": "create_issue"})
    assert text.startswith('no server "nope" here') and "alpha, catalog" in text, text
    text = call_error(p, "gateway_invoke", {"server": "catalog", "tool": "create_isue", "arguments": {}})
    assert text == 'server "catalog" has no tool "create_isue"; did you mean "create_issue"? (gateway_list_tools lists them)', text
    for bad in ("x", [1]):
        text = call_error(p, "gateway_invoke", {"server": "catalog", "tool": "create_issue", "arguments": bad})
        assert text == "gateway_invoke: arguments.arguments must be an object (the tool's arguments)", text
    # The session is fine afterwards.
    assert search(p, "open a new issue in a github repository")[0]["tool"] == "create_issue"


def test_search_limit_accepts_a_whole_number_written_with_a_fraction(raw_mcpd, write_config, piddir, mcpd_env):
    """`limit: 3.0` is a whole number (JSON Schema's integer type admits 3.0), as the error message
    "limit must be a whole number from 1 to 50" itself says: 3 hits, the same as `limit: 3`."""
    p = raw_mcpd(write_config(config(piddir, {"mode": "meta"}, alpha=False)), env=mcpd_env)
    p.initialize()
    three = search(p, "create a github issue", 3)
    _, result = call(p, "gateway_search_tools", {"query": "create a github issue", "limit": 3.0})
    assert not result.get("isError"), f"limit 3.0 was refused: {result}"
    assert meta_object(result)["tools"] == three


# --------------------------------------------------------------------------- gateway_invoke


def test_invoke_is_the_tool_call_byte_for_byte(raw_mcpd, write_config, piddir, mcpd_env):
    """Meta mode, catalog and alpha. gateway_invoke's raw `result` equals tools/call of the exposed name
    byte for byte: catalog's create_issue with escape-dense, non-ASCII arguments (text `called
    create_issue {...}`), alpha's `mixed` (every content type, annotations, _meta, structuredContent),
    alpha's `fail` (isError). Arguments absent or null are {}. catalog's echo and alpha's echo are told
    apart by server. A string id comes back as sent. Direct calls of exposed names work in meta mode."""
    p = raw_mcpd(write_config(config(piddir, {"mode": "meta"})), env=mcpd_env)
    p.initialize()
    issue = {"owner": "octo", "repo": "r\u00e9po", "title": TRICKY, "labels": ["bug", "\u2603"], "milestone": 3}
    cases = [("catalog", "create_issue", issue), ("alpha", "mixed", {}), ("alpha", "fail", {}),
             ("alpha", "echo", {"text": TRICKY})]
    for server, tool, arguments in cases:
        invoked, _ = call(p, "gateway_invoke", {"server": server, "tool": tool, "arguments": arguments})
        direct, _ = call(p, f"{server}__{tool}", arguments)
        assert raw_members(invoked)["result"] == raw_members(direct)["result"], (
            f"gateway_invoke {server} {tool} differs from tools/call {server}__{tool}:\n{invoked}\n{direct}")

    _, result = call(p, "gateway_invoke", {"server": "catalog", "tool": "create_issue", "arguments": issue})
    assert text_result(result) == called_text("create_issue", issue)
    _, result = call(p, "gateway_invoke", {"server": "alpha", "tool": "fail", "arguments": {}})
    assert result.get("isError") is True and result["content"][0]["text"] == "alpha failed on purpose", result
    for arguments in ({"server": "catalog", "tool": "list_tables"},
                      {"server": "catalog", "tool": "list_tables", "arguments": None}):
        assert text_result(call(p, "gateway_invoke", arguments)[1]) == called_text("list_tables", {}), arguments
    assert text_result(call(p, "gateway_invoke", {"server": "catalog", "tool": "echo",
                                                  "arguments": {"message": "m"}})[1]) == called_text("echo", {"message": "m"})
    assert text_result(call(p, "gateway_invoke", {"server": "alpha", "tool": "echo",
                                                  "arguments": {"text": "m"}})[1]) == "m"
    line, _ = call(p, "gateway_invoke", {"server": "catalog", "tool": "read_graph", "arguments": {}}, id_raw='"inv/\\u00e9-1"')
    assert raw_members(line)["id"] == '"inv/\\u00e9-1"', line
    assert text_result(call(p, "catalog__read_graph", {})[1]) == called_text("read_graph", {})


def test_invoke_passes_progress_and_cancellation_on(raw_mcpd, write_config, piddir, mcpd_env):
    """gateway_invoke of alpha's slow(steps 3) with `_meta.progressToken` "meta-progress-1": three
    notifications/progress under that token (progress 1, 2, 3 of 3) before the result "done 3"; an
    integer token 77 likewise. notifications/cancelled for an invoke of alpha's sleep(30) cancels it at
    alpha (its stats count one cancelled sleep) and the session goes on."""
    p = raw_mcpd(write_config(config(piddir, {"mode": "meta"})), env=mcpd_env)
    p.initialize()
    for token in ("meta-progress-1", 77):
        notes: list[dict[str, Any]] = []
        rid = p.new_id()
        p.send({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                "params": {"name": "gateway_invoke", "arguments": {"server": "alpha", "tool": "slow",
                                                                  "arguments": {"steps": 3}},
                           "_meta": {"progressToken": token}}})
        _, msg = p.recv_response(20, on_notification=lambda _line, n: notes.append(n))
        assert msg.get("id") == rid and text_result(msg["result"]) == "done 3", msg
        progress = [n["params"] for n in notes if n.get("method") == "notifications/progress"]
        assert [(q["progressToken"], q["progress"], q.get("total")) for q in progress] == [
            (token, 1, 3), (token, 2, 3), (token, 3, 3)], notes

    rid = p.new_id()
    p.send({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
            "params": {"name": "gateway_invoke", "arguments": {"server": "alpha", "tool": "sleep", "arguments": {"seconds": 30}}}})

    def stats() -> dict[str, int]:
        return json.loads(text_result(call(p, "gateway_invoke", {"server": "alpha", "tool": "stats"})[1]))

    wait_until(lambda: stats()["sleep_started"] == 1, 10, "alpha's sleep did not start")
    p.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": rid, "reason": "test"}})
    wait_until(lambda: stats()["sleep_cancelled"] == 1, 10, lambda: f"the invoke's sleep was not cancelled: {stats()}")
    assert text_result(call(p, "gateway_invoke", {"server": "catalog", "tool": "list_tables"})[1]) == called_text("list_tables", {})


def test_invoke_does_not_depend_on_exposed_names(raw_mcpd, write_config, piddir, mcpd_env):
    """gateway.separator "-" and name_budget 24: list_tools names tools `catalog-<tool>`, long ones cut
    and hashed by mcpd; each entry's `name` is what tools/call accepts, and gateway_invoke by server and
    own name reaches the same tool (the first hit of a search is named as in list_tools)."""
    p = raw_mcpd(write_config(config(piddir, {"mode": "meta", "separator": "-", "name_budget": 24}, alpha=False)),
                 env=mcpd_env)
    p.initialize()
    entries = call_meta(p, "gateway_list_tools", {"server": "catalog"})["tools"]
    exposed = {e["tool"]: e["name"] for e in entries}
    assert set(exposed) == set(NAMES), sorted(exposed)
    assert exposed["create_issue"] == "catalog-create_issue", exposed["create_issue"]
    cut = [tool for tool, name in exposed.items() if name != f"catalog-{tool}"]
    assert "list_directory_with_sizes" in cut and all(len(exposed[t]) <= 24 for t in cut), {t: exposed[t] for t in cut}
    for tool in cut[:6] + ["create_issue", "API-post-search"]:
        arguments = {"probe": tool}
        assert text_result(call(p, exposed[tool], arguments)[1]) == called_text(tool, arguments), exposed[tool]
        assert text_result(call(p, "gateway_invoke", {"server": "catalog", "tool": tool, "arguments": arguments})[1]) == (
            called_text(tool, arguments)), tool
    hit = search(p, "list directory with sizes", 1)[0]
    assert (hit["tool"], hit["name"]) == ("list_directory_with_sizes", exposed["list_directory_with_sizes"]), hit


def test_a_backend_tool_named_like_a_gateway_tool(raw_mcpd, write_config, piddir, mcpd_env):
    """gateway.separator "_" and a server named `gateway` whose tools are `invoke` and `list_tools`
    (catalog.py --tools): their plain exposed names, gateway_invoke and gateway_list_tools, are the
    gateway's own tools' names. Hybrid mode pinning `gateway_*` and catalog_create_issue: tools/list
    must not list two tools of one name, and gateway_invoke {server: gateway, tool: invoke} must reach
    the backend's `invoke` (`called invoke {"x": "1"}`), as it reaches any other tool."""
    servers = {"catalog": server_entry("catalog", piddir, args=[server_entry("catalog", None)["args"][0], "--tools",
                                                              "create_issue"]),
               "gateway": server_entry("catalog", piddir, args=[server_entry("catalog", None)["args"][0], "--tools",
                                                              "invoke,list_tools"])}
    content = {"gateway": {"startup_wait": "30s", "mode": "hybrid", "separator": "_",
                           "pinned_tools": ["gateway_*", "catalog_create_issue"]}, "servers": servers}
    p = raw_mcpd(write_config(content), env=mcpd_env)
    p.initialize()
    names = [t["name"] for t in tool_list(p)]
    listing = call_meta(p, "gateway_list_tools", {"server": "gateway"})
    assert {e["tool"] for e in listing["tools"]} == {"invoke", "list_tools"}, listing
    _, invoked = call(p, "gateway_invoke", {"server": "gateway", "tool": "invoke", "arguments": {"x": "1"}})
    _, other = call(p, "gateway_invoke", {"server": "catalog", "tool": "create_issue", "arguments": {"x": "1"}})
    assert text_result(other) == called_text("create_issue", {"x": "1"})
    problems = []
    if len(names) != len(set(names)):
        problems.append(f"tools/list names a tool twice: {names}")
    if invoked.get("isError") or invoked["content"][0].get("text") != called_text("invoke", {"x": "1"}):
        problems.append(f"gateway_invoke of gateway/invoke: {invoked}")
    assert not problems, "\n".join(problems)


def test_meta_results_without_structured_content_for_2025_03_26(raw_mcpd, write_config, piddir, mcpd_env):
    """A client of protocol 2025-03-26 (before structuredContent): meta results carry the JSON text
    only, no structuredContent; the text is the same object (list_servers, search)."""
    p = raw_mcpd(write_config(config(piddir, {"mode": "meta"}, alpha=False)), env=mcpd_env)
    assert p.initialize("2025-03-26")["protocolVersion"] == "2025-03-26"
    for name, arguments in (("gateway_list_servers", {}), ("gateway_search_tools", {"query": "create a github issue"})):
        _, result = call(p, name, arguments)
        assert "structuredContent" not in result and not result.get("isError"), result
        parsed = json.loads(result["content"][0]["text"])
        assert set(parsed) == ({"servers"} if name == "gateway_list_servers" else {"query", "tools"}), parsed
    assert parsed["tools"][0]["tool"] == "create_issue", parsed


# --------------------------------------------------------------------------- no backend started


def test_list_and_search_start_no_backend_and_invoke_starts_only_its_own(raw_mcpd, write_config, piddir, mcpd_env,
                                                                          state_home):
    """First run (no catalog): catalog and alpha start and get catalog entries. Second run on the same
    state directory, meta mode: tools/list, list_servers (both "cached", 100 and 12 tools), list_tools
    of both and searches start no backend (no pid file, no child of mcpd, after 0.5 s more). Then
    gateway_invoke of catalog's create_issue starts catalog alone (alpha: no process, still "cached")."""
    path = write_config(config(piddir, {"mode": "meta"}))
    fill_catalog(raw_mcpd, path, mcpd_env, state_home / "mcpd", ["catalog", "alpha"], piddir)
    before = set(recorded_pids(piddir))
    assert sorted(recorded_pids(piddir).values()) == ["alpha", "catalog"], recorded_pids(piddir)

    p = raw_mcpd(path, env=mcpd_env)
    p.initialize()
    assert [t["name"] for t in tool_list(p)] == META_TOOLS
    servers = servers_of(call_meta(p, "gateway_list_servers", {}))
    assert {n: (s["tools"], s["state"]) for n, s in servers.items()} == {
        "catalog": (100, "cached"), "alpha": (len(ALPHA_TOOLS), "cached")}, servers
    assert len(call_meta(p, "gateway_list_tools", {"server": "catalog"})["tools"]) == 100
    assert {e["tool"] for e in call_meta(p, "gateway_list_tools", {"server": "alpha"})["tools"]} == ALPHA_TOOLS
    assert search(p, "send a message to a slack channel")[0]["tool"] == "slack_post_message"
    assert search(p, "echo the text back unchanged")[0]["name"] == "alpha__echo"
    time.sleep(0.5)
    assert set(recorded_pids(piddir)) == before, f"listing or searching started a backend: {recorded_pids(piddir)}"
    assert children_of(p.proc.pid) == set(), f"mcpd has children after list/search: {children_of(p.proc.pid)}"

    _, result = call(p, "gateway_invoke", {"server": "catalog", "tool": "create_issue", "arguments": {"title": "x"}})
    assert text_result(result) == called_text("create_issue", {"title": "x"})
    started = {pid: name for pid, name in recorded_pids(piddir).items() if pid not in before}
    assert list(started.values()) == ["catalog"], f"gateway_invoke of a catalog tool must start catalog alone: {started}"
    time.sleep(0.3)
    assert children_of(p.proc.pid) == set(started), children_of(p.proc.pid)
    states = {n: s["state"] for n, s in servers_of(call_meta(p, "gateway_list_servers", {})).items()}
    assert states == {"catalog": "ready", "alpha": "cached"}, states


# --------------------------------------------------------------------------- roles


ROLES = {"dev": ["catalog__*issue*"], "ops": ["catalog__slack_*", "alpha__*"]}


def test_roles_over_stdio_shape_lists_search_and_invoke(raw_mcpd, write_config, piddir, mcpd_env, state_home):
    """Meta mode, roles dev (catalog__*issue*) and ops (catalog__slack_*, alpha__*), catalog filled
    first; MCPD_ROLE=dev and MCPD_ROLE=ops sessions at once. dev: list_servers [catalog, 8 tools], no
    alpha; list_tools catalog exactly the 8 issue tools; alpha is an unknown server (the message lists
    catalog only); every search hit is an issue tool; invoking slack_post_message or alpha's echo is
    refused naming role dev, a typo near a hidden tool is not answered with its name; create_issue works.
    ops: catalog (8 slack tools) and alpha (12); slack search finds slack_post_message first; create_issue
    refused naming ops; alpha's echo works. tools/list is the four gateway tools for both."""
    path = write_config(config(piddir, {"mode": "meta"}, roles=ROLES))
    fill_catalog(raw_mcpd, path, mcpd_env, state_home / "mcpd", ["catalog", "alpha"], piddir)
    dev = raw_mcpd(path, env=dict(mcpd_env, MCPD_ROLE="dev"))
    ops = raw_mcpd(path, env=dict(mcpd_env, MCPD_ROLE="ops"))
    dev.initialize()
    ops.initialize()
    slack_query = "send a message to a slack channel"

    assert [t["name"] for t in tool_list(dev)] == META_TOOLS
    assert [t["name"] for t in tool_list(ops)] == META_TOOLS

    dev_servers = servers_of(call_meta(dev, "gateway_list_servers", {}))
    assert {n: s["tools"] for n, s in dev_servers.items()} == {"catalog": len(ISSUE_TOOLS)}, dev_servers
    assert {e["tool"] for e in call_meta(dev, "gateway_list_tools", {"server": "catalog"})["tools"]} == ISSUE_TOOLS
    text = call_error(dev, "gateway_list_tools", {"server": "alpha"})
    assert text.startswith('no server "alpha" here') and text.endswith("lists them: catalog)"), text
    for query in (slack_query, "open a new issue in a github repository", "catalog"):
        hits = search(dev, query, 50)
        assert {h["tool"] for h in hits} <= ISSUE_TOOLS, f"dev's search {query!r} shows hidden tools: {hits}"
    assert search(dev, "open a new issue in a github repository")[0]["tool"] == "create_issue"
    assert len(search(dev, "catalog", 50)) == len(ISSUE_TOOLS)
    assert call_error(dev, "gateway_invoke", {"server": "catalog", "tool": "slack_post_message",
                                              "arguments": {"channel_id": "C1", "text": "hi"}}) == refusal(
        "catalog__slack_post_message", "dev")
    assert call_error(dev, "gateway_invoke", {"server": "alpha", "tool": "echo", "arguments": {"text": "x"}}) == refusal(
        "alpha__echo", "dev")
    text = call_error(dev, "gateway_invoke", {"server": "catalog", "tool": "slack_post_mesage", "arguments": {}})
    assert "slack_post_message" not in text, f"a typo near a hidden tool names it: {text}"
    assert text_result(call(dev, "gateway_invoke", {"server": "catalog", "tool": "create_issue",
                                                    "arguments": {"title": "t"}})[1]) == called_text("create_issue", {"title": "t"})

    ops_servers = servers_of(call_meta(ops, "gateway_list_servers", {}))
    assert {n: s["tools"] for n, s in ops_servers.items()} == {"catalog": len(SLACK_TOOLS), "alpha": len(ALPHA_TOOLS)}, ops_servers
    assert {e["tool"] for e in call_meta(ops, "gateway_list_tools", {"server": "catalog"})["tools"]} == SLACK_TOOLS
    ops_hits = search(ops, slack_query)
    assert ops_hits[0]["tool"] == "slack_post_message", ops_hits
    assert {h["name"] for h in search(ops, "catalog", 50)} == {f"catalog__{n}" for n in SLACK_TOOLS}
    assert call_error(ops, "gateway_invoke", {"server": "catalog", "tool": "create_issue", "arguments": {}}) == refusal(
        "catalog__create_issue", "ops")
    assert text_result(call(ops, "gateway_invoke", {"server": "alpha", "tool": "echo", "arguments": {"text": "ops"}})[1]) == "ops"


# --------------------------------------------------------------------------- HTTP


@asynccontextmanager
async def http_session(url: str, token: str | None = None, **kwargs: Any) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write, **kwargs) as session:
                await session.initialize()
                yield session


HTTP_AUTH = """\
auth:
  tokens:
    - token: "${TOK_DEV}"
      role: dev
    - token: "${TOK_OPS}"
      role: ops
    - token: "${TOK_ALL}"
"""


@pytest.mark.anyio
async def test_http_roles_in_hybrid_mode(serve, write_config, piddir):
    """mcpd serve, hybrid mode pinning catalog__slack_post_message, catalog__create_issue and alpha__echo;
    tokens of role dev, role ops and no role (no default_role: everything). tools/list: the four gateway
    tools, then dev: catalog__create_issue; ops: catalog__slack_post_message, alpha__echo; no role: all
    three. list_servers and search differ per token; dev's invoke of slack_post_message and ops' of
    create_issue are refused naming the role; each token's allowed tools are served."""
    pinned = ["catalog__slack_post_message", "catalog__create_issue", "alpha__echo"]
    text = to_yaml(config(piddir, {"mode": "hybrid", "pinned_tools": pinned}, roles=ROLES)) + "\n" + HTTP_AUTH
    served = serve(write_config(text))
    slack_query = "send a message to a slack channel"
    out: dict[str, dict[str, Any]] = {}
    with anyio.fail_after(40):
        for who, token in (("dev", TOK_DEV), ("ops", TOK_OPS), ("all", TOK_ALL)):
            async with http_session(served.url, token) as s:
                r: dict[str, Any] = {"tools": [t.name for t in (await s.list_tools()).tools]}
                r["servers"] = sdk_object(await s.call_tool("gateway_list_servers", {}))
                r["slack"] = sdk_object(await s.call_tool("gateway_search_tools", {"query": slack_query, "limit": 50}))
                r["post"] = await s.call_tool("gateway_invoke", {"server": "catalog", "tool": "slack_post_message",
                                                                 "arguments": {"channel_id": "C1", "text": "hi"}})
                r["issue"] = await s.call_tool("gateway_invoke", {"server": "catalog", "tool": "create_issue",
                                                                  "arguments": {"title": "t"}})
                r["echo"] = await s.call_tool("gateway_invoke", {"server": "alpha", "tool": "echo", "arguments": {"text": TRICKY}})
                out[who] = r

    for who, r in out.items():
        assert r["tools"][:4] == META_TOOLS, (who, r["tools"])
    assert set(out["dev"]["tools"][4:]) == {"catalog__create_issue"} and len(out["dev"]["tools"]) == 5, out["dev"]["tools"]
    assert set(out["ops"]["tools"][4:]) == {"catalog__slack_post_message", "alpha__echo"} and len(out["ops"]["tools"]) == 6, out["ops"]["tools"]
    assert set(out["all"]["tools"][4:]) == set(pinned) and len(out["all"]["tools"]) == 7, out["all"]["tools"]

    counts = {who: {s["name"]: s["tools"] for s in r["servers"]["servers"]} for who, r in out.items()}
    assert counts == {"dev": {"catalog": len(ISSUE_TOOLS)},
                      "ops": {"catalog": len(SLACK_TOOLS), "alpha": len(ALPHA_TOOLS)},
                      "all": {"catalog": 100, "alpha": len(ALPHA_TOOLS)}}, counts

    assert {h["tool"] for h in out["dev"]["slack"]["tools"]} <= ISSUE_TOOLS, out["dev"]["slack"]
    assert out["ops"]["slack"]["tools"][0]["tool"] == "slack_post_message", out["ops"]["slack"]
    assert {h["tool"] for h in out["ops"]["slack"]["tools"]} <= SLACK_TOOLS | ALPHA_TOOLS, out["ops"]["slack"]
    assert out["all"]["slack"]["tools"][0]["tool"] == "slack_post_message", out["all"]["slack"]

    assert sdk_error(out["dev"]["post"]) == refusal("catalog__slack_post_message", "dev")
    assert sdk_error(out["dev"]["echo"]) == refusal("alpha__echo", "dev")
    assert sdk_error(out["ops"]["issue"]) == refusal("catalog__create_issue", "ops")
    for who, key, text in (("dev", "issue", called_text("create_issue", {"title": "t"})),
                           ("ops", "post", called_text("slack_post_message", {"channel_id": "C1", "text": "hi"})),
                           ("ops", "echo", TRICKY), ("all", "post", called_text("slack_post_message", {"channel_id": "C1", "text": "hi"})),
                           ("all", "issue", called_text("create_issue", {"title": "t"})), ("all", "echo", TRICKY)):
        result = out[who][key]
        assert result.is_error is False and [c.text for c in result.content] == [text], (who, key, result)


@pytest.mark.anyio
async def test_http_meta_mode_search_invoke_and_progress(serve, write_config, piddir):
    """mcpd serve in meta mode (no auth): the SDK client lists the four tools, searches (create_issue
    first for an issue query, structuredContent equal to the text), invokes catalog's tools and alpha's
    slow(4) with a progress callback, which receives progress 1..4 of 4 before the result "done 4"."""
    served = serve(write_config(config(piddir, {"mode": "meta"})))
    progress: list[tuple[float, float | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total))

    with anyio.fail_after(40):
        async with http_session(served.url) as s:
            names = [t.name for t in (await s.list_tools()).tools]
            found = sdk_object(await s.call_tool("gateway_search_tools", {"query": "open a new issue in a github repository"}))
            issue = await s.call_tool("gateway_invoke", {"server": "catalog", "tool": "create_issue",
                                                         "arguments": {"owner": "o", "repo": "r", "title": TRICKY}})
            slow = await s.call_tool("gateway_invoke", {"server": "alpha", "tool": "slow", "arguments": {"steps": 4}},
                                     progress_callback=on_progress)
            unknown = await s.call_tool("gateway_invoke", {"server": "catalog", "tool": "create_isue"})
    # The stateless era (2026-07-28): a POST with no session, Mcp-Name naming the meta tool.
    stateless = stateless_post(served.port, "/mcp", "tools/call",
                               {"name": "gateway_invoke", "arguments": {"server": "catalog", "tool": "read_graph"}},
                               9, name="gateway_invoke")
    stateless_search = stateless_post(served.port, "/mcp", "tools/call",
                                      {"name": "gateway_search_tools", "arguments": {"query": "read the knowledge graph"}},
                                      10, name="gateway_search_tools")
    assert names == META_TOOLS
    assert found["tools"][0]["name"] == "catalog__create_issue", found
    assert issue.is_error is False and [c.text for c in issue.content] == [
        called_text("create_issue", {"owner": "o", "repo": "r", "title": TRICKY})], issue
    assert slow.is_error is False and [c.text for c in slow.content] == ["done 4"], slow
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)], progress
    assert 'did you mean "create_issue"' in sdk_error(unknown)
    assert stateless.status == 200, stateless
    answer = stateless.json()
    assert answer.get("id") == 9 and text_result(answer["result"]) == called_text("read_graph", {}), answer
    assert stateless_search.status == 200, stateless_search
    found = meta_object(stateless_search.json()["result"])
    assert found["tools"][0]["tool"] == "read_graph", found
