"""Runtime registration (`gateway.registration: true`, seed 002): servers added and removed by admin roles.

Every config here has alpha and the roles

    admin: null          (an admin role by its name)
    user:  ["alpha__*"]  (not an admin; sees alpha's tools only)
    ops:   null          (an admin role through gateway.admin_roles: [ops])

and `gateway.registration: true` unless a test says otherwise.

What is tested:
- who sees and may call the three tools (stdio, MCPD_ROLE): admin and ops list
  gateway_register_server (inputSchema with name, command, args, env, description; name and
  command required), gateway_remove_server (name required) and gateway_status, and may call
  gateway_status; user does not list them, and each call is a JSON-RPC error -32602 `Tool
  "gateway_..." is only for admin roles (admin, and gateway.admin_roles); this session's role is
  "user"`; a session without any role (no MCPD_ROLE, no default_role) neither lists nor may call
  them. With registration off (the default), an admin session does not list them and each is an
  unknown tool (`Unknown tool: "..."`); a register call then starts nothing and writes no
  registered.json.
- the life of a registered server (stdio, admin): the exact result text `registered "beta"; it is
  starting, and its tools will be listed as beta__<tool>`; notifications/tools/list_changed once it
  is ready; beta__echo, beta__upper, beta__getenv, beta__cwd listed; beta__echo answers `beta:hi` and
  beta__getenv sees the `env` given; a second server registered with `args` as ONE string (quotes
  and a quoted word with a space) and a command found on PATH (`sh`) is served too, and its args
  are stored split; gateway_status's text is the JSON of its structuredContent, with every key
  (name, state, registered, running, restarts, tools, prompts, resources, resourceTemplates,
  last_error) and the right values for alpha (configured) and beta (registered), and `sessions: 1`;
  registered.json is mode 0600 and exactly `{"version":1,"servers":[{name, command, args, env,
  description}, ...]}`. Removal: the result is not an error, list_changed comes, beta's tools
  disappear (beta2's stay), beta's process dies, registered.json keeps beta2 only, gateway_status
  no longer has beta, calling beta__echo fails; removing beta again, an unknown name, and the
  configured alpha (`not registered at run time`) are isError results, and alpha still serves;
  beta registered anew at once is started again and served.
- registration errors, each an isError result that adds nothing (status, registered.json and
  the pid files show no trace): names with `__`, a space, empty, 49 characters (48 is fine); a
  configured name (alpha) and a registered one (beta); a command that is missing, a non-executable
  file, a directory, an unknown program on PATH, or absent; args a number, a list holding a
  number, an object, a string with an unclosed quote; env a string, a list, an object holding a
  number.
- at most 100 registered servers: the 101st is an isError result naming the limit; after one is
  removed another may be registered; registered.json holds 100.
- restarts: a new mcpd on the same config and state directory logs `registered server "beta"
  restored from <state>/mcpd/registered.json` and serves beta__echo (status: registered); once
  removed there, the next mcpd restores nothing and lists no beta tool.
- the config's server wins: beta registered (env BETA_MARK=registered), then the config defines a
  beta (BETA_MARK=config): the next mcpd logs a warning naming beta, runs the config's (getenv
  gives "config"), status has one beta, not registered, and removing it is refused as not
  registered at run time.
- reload: a SIGHUP reload with the config edited keeps the registered beta (same process, still
  listed and served, still in registered.json); a second reload whose config now defines beta
  runs the config's beta instead (getenv gives "config", status: registered false), the
  registered process stops, and a warning naming beta is logged.
- secrets: env values given at registration never appear in mcpd's stderr, neither for a
  backend that prints its token on stderr and keeps crashing (its stderr lines are relayed, with
  the value hidden) nor when a new mcpd restores it from registered.json (there with
  --log-format json).
- secrets beyond the log (`mcpd serve`, gateway.restart_limit 2): once such a backend's circuit is
  open, the value is in neither gateway_status (text and structuredContent), /health, nor mcpd's
  stderr (both report last_error, which quotes the backend's last stderr lines; they redact the
  config's own `${VAR}` secrets there, not the registration's).
- HTTP (`mcpd serve`, tokens of roles admin, ops and user, three SDK sessions at once): the user
  session does not list the tools and is refused gateway_register_server naming role "user"
  (nothing starts); the admin session registers beta, the ops session gets list_changed and
  lists and calls beta__echo, the user session still lists only alpha's tools (its globs) and is
  refused beta__echo by its role; gateway_status counts 3 sessions; the admin session removes
  beta, the ops session gets list_changed again, beta's tools are gone and its process dies.

stdio sessions use the official SDK client (mcp 2.3.0 ClientSession) over `mcpd stdio`
(mcpd_helpers.spawn_jsonrpc_streams); HTTP sessions use streamable_http_client with a bearer
token and test_streamable_http's `serve` fixture.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import stat
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcpd_helpers import (
    ALPHA_TOOLS,
    BETA_TOOLS,
    ProcessHandle,
    backend_script,
    pid_is_alive,
    pids_of,
    server_entry,
    spawn_jsonrpc_streams,
    to_yaml,
)
from test_http_server_view import Inbox, text_of
from test_streamable_http import serve  # noqa: F401  (serve is a fixture)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

ADMIN_TOOLS = {"gateway_register_server", "gateway_remove_server", "gateway_status"}
ALPHA_EXPOSED = {f"alpha__{t}" for t in ALPHA_TOOLS}
BETA_EXPOSED = {f"beta__{t}" for t in BETA_TOOLS}
STATUS_KEYS = {"name", "state", "registered", "running", "restarts", "tools", "prompts", "resources",
               "resourceTemplates", "last_error"}
SECRET = "secretvalue123"

TOK_ADMIN = "tokAdm" + secrets.token_hex(14)
TOK_OPS = "tokOps" + secrets.token_hex(14)
TOK_USER = "tokUsr" + secrets.token_hex(14)

ROLES = """\
roles:
  admin: null
  user: ["alpha__*"]
  ops: null
"""
AUTH = """\
auth:
  tokens:
    - token: "${TOK_ADMIN}"
      role: admin
    - token: "${TOK_OPS}"
      role: ops
    - token: "${TOK_USER}"
      role: user
"""


def admin_only(tool: str, role: str) -> str:
    return (f'Tool "{tool}" is only for admin roles (admin, and gateway.admin_roles); '
            f'this session\'s role is "{role}"')


@pytest.fixture
def mcpd_env(state_home: Path) -> dict[str, str]:
    """mcpd's environment: the tokens set, no role variable (stdio tests add MCPD_ROLE)."""
    env = dict(os.environ, TOK_ADMIN=TOK_ADMIN, TOK_OPS=TOK_OPS, TOK_USER=TOK_USER)
    for name in ("MCPD_ROLE", "MCP_GATEWAY_ROLE"):
        env.pop(name, None)
    return env


def config_text(servers: dict[str, Any], *, registration: bool | None = True, auth: bool = False,
                gateway_extra: str = "", roles: str = ROLES) -> str:
    text = to_yaml({"servers": servers}) + "\n" + roles + "gateway:\n  admin_roles: [ops]\n"
    if registration is not None:
        text += f"  registration: {'true' if registration else 'false'}\n"
    text += gateway_extra
    if auth:
        text += AUTH
    return text


def alpha_only(piddir: Path) -> dict[str, Any]:
    return {"alpha": server_entry("alpha", piddir)}


def beta_registration(piddir: Path, name: str = "beta", **env: str) -> dict[str, Any]:
    """gateway_register_server arguments running backends/beta.py (pid file in piddir)."""
    return {"name": name, "command": sys.executable, "args": [backend_script("beta")],
            "env": {"MCPD_TEST_PIDDIR": str(piddir), **env}, "description": f"{name} from the tests"}


def registered_path(state_home: Path) -> Path:
    return state_home / "mcpd" / "registered.json"


def read_registered(state_home: Path) -> dict[str, Any] | None:
    path = registered_path(state_home)
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def wait_registered(state_home: Path, names: list[str], timeout: float = 5.0) -> dict[str, Any]:
    """Polls registered.json (written asynchronously) until its servers are `names`, in order."""
    deadline = time.monotonic() + timeout
    while True:
        doc = read_registered(state_home)
        if doc is not None and [s.get("name") for s in doc.get("servers", [])] == names:
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"registered.json never listed {names} within {timeout} s: {doc}")
        time.sleep(0.05)


def wait_new_pid(piddir: Path, name: str, known: set[int], timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        new = pids_of(piddir, name) - known
        if new:
            assert len(new) == 1, f"more than one new {name} process: {new}"
            return new.pop()
        if time.monotonic() > deadline:
            raise AssertionError(f"no new {name} pid file in {piddir} within {timeout} s (known {known})")
        time.sleep(0.05)


def wait_dead(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while pid_is_alive(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} still alive {timeout} s later")
        time.sleep(0.05)


def wait_log(path: Path, pattern: str, timeout: float = 10.0) -> str:
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        for line in text.splitlines():
            if regex.search(line):
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"no line matching {pattern!r} in {path.name} within {timeout} s:\n{text[-3000:]}")
        time.sleep(0.05)


@asynccontextmanager
async def stdio_session(mcpd_bin: str, config: Path, tmp_path: Path, env: dict[str, str], label: str,
                        role: str | None = "admin", *args: str,
                        ) -> AsyncIterator[tuple[ClientSession, ProcessHandle, Inbox]]:
    """An initialized SDK session over `mcpd stdio` (MCPD_ROLE=role); stderr in mcpd-<label>.stderr."""
    env = dict(env)
    if role is not None:
        env["MCPD_ROLE"] = role
    inbox = Inbox()
    async with spawn_jsonrpc_streams([mcpd_bin, "stdio", "--config", str(config), *args],
                                     stderr_path=tmp_path / f"mcpd-{label}.stderr", env=env) as (read, write, handle):
        async with ClientSession(read, write, message_handler=inbox.put) as session:
            with anyio.fail_after(30):
                await session.initialize()
            yield session, handle, inbox


@asynccontextmanager
async def token_session(url: str, token: str) -> AsyncIterator[tuple[ClientSession, Inbox]]:
    inbox = Inbox()
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                  timeout=httpx2.Timeout(30, read=300)) as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write, message_handler=inbox.put) as session:
                await session.initialize()
                yield session, inbox


async def tool_map(session: ClientSession) -> dict[str, types.Tool]:
    tools: dict[str, types.Tool] = {}
    cursor: str | None = None
    for _ in range(50):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
        result = await session.list_tools(params=params)
        tools.update({t.name: t for t in result.tools})
        cursor = result.next_cursor
        if cursor is None:
            return tools
    raise AssertionError("tools/list: more than 50 pages")


async def tool_names(session: ClientSession) -> set[str]:
    return set(await tool_map(session))


async def wait_tools(session: ClientSession, predicate: Callable[[set[str]], bool], what: str,
                     timeout: float = 15.0) -> set[str]:
    deadline = anyio.current_time() + timeout
    while True:
        names = await tool_names(session)
        if predicate(names):
            return names
        if anyio.current_time() > deadline:
            raise AssertionError(f"tools/list never {what} within {timeout} s: {sorted(names)}")
        await anyio.sleep(0.1)


async def refused(call: Any) -> MCPError:
    with pytest.raises(MCPError) as excinfo:
        await call
    return excinfo.value


async def call_ok(session: ClientSession, name: str, arguments: dict[str, Any]) -> str:
    result = await session.call_tool(name, arguments)
    assert not result.is_error, f"{name} {arguments}: {result}"
    return text_of(result)


async def call_error(session: ClientSession, name: str, arguments: dict[str, Any]) -> str:
    """The text of an isError result (fails on a success or a JSON-RPC error)."""
    result = await session.call_tool(name, arguments)
    assert result.is_error is True, f"{name} {arguments}: expected an isError result, got {result}"
    return text_of(result)


async def status(session: ClientSession) -> dict[str, Any]:
    result = await session.call_tool("gateway_status", {})
    assert not result.is_error, result
    structured = result.structured_content
    assert isinstance(structured, dict), result
    assert json.loads(text_of(result)) == structured, f"text and structuredContent differ: {result}"
    return structured


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    servers = doc["servers"]
    names = [s["name"] for s in servers]
    assert len(names) == len(set(names)), f"a server appears twice in gateway_status: {names}"
    return {s["name"]: s for s in servers}


# --------------------------------------------------------------------------- who may use the tools


async def test_admin_roles_list_and_call_the_tools_others_are_refused(mcpd_bin, write_config, piddir, tmp_path,
                                                                      mcpd_env, state_home):
    """admin and ops (gateway.admin_roles) list the three tools with their schemas and may call
    gateway_status; user does not list them and every call is -32602 naming role "user"; a
    session without a role is refused too; with registration off an admin lists none of them,
    each is an unknown tool, and a register call starts nothing and writes no registered.json."""
    config = write_config(config_text(alpha_only(piddir)))
    seen: dict[str, Any] = {}
    async with stdio_session(mcpd_bin, config, tmp_path, mcpd_env, "admin", "admin") as (s, _, _):
        tools = await tool_map(s)
        seen["admin"] = set(tools)
        seen["admin_status"] = await status(s)
        seen["schemas"] = {name: tools[name].input_schema for name in ADMIN_TOOLS & set(tools)}
    async with stdio_session(mcpd_bin, config, tmp_path, mcpd_env, "ops", "ops") as (s, _, _):
        seen["ops"] = await tool_names(s)
        seen["ops_status"] = await status(s)
    async with stdio_session(mcpd_bin, config, tmp_path, mcpd_env, "user", "user") as (s, _, _):
        seen["user"] = await tool_names(s)
        seen["user_errors"] = {
            tool: await refused(s.call_tool(tool, args))
            for tool, args in (("gateway_register_server", beta_registration(piddir)),
                               ("gateway_remove_server", {"name": "alpha"}), ("gateway_status", {}))
        }
        seen["user_echo"] = await call_ok(s, "alpha__echo", {"text": "still served"})
    async with stdio_session(mcpd_bin, config, tmp_path, mcpd_env, "none", None) as (s, _, _):
        seen["none"] = await tool_names(s)
        seen["none_error"] = await refused(s.call_tool("gateway_status", {}))
    off = write_config(config_text(alpha_only(piddir), registration=None), name="off.yaml")
    async with stdio_session(mcpd_bin, off, tmp_path, mcpd_env, "off", "admin") as (s, _, _):
        seen["off"] = await tool_names(s)
        seen["off_errors"] = {
            tool: await refused(s.call_tool(tool, args))
            for tool, args in (("gateway_register_server", beta_registration(piddir)),
                               ("gateway_remove_server", {"name": "alpha"}), ("gateway_status", {}))
        }
        await anyio.sleep(1.5)  # a beta started by mistake would have written its pid file by now
        seen["off_betas"] = pids_of(piddir, "beta")

    assert seen["admin"] == ALPHA_EXPOSED | ADMIN_TOOLS, seen["admin"]
    assert seen["ops"] == ALPHA_EXPOSED | ADMIN_TOOLS, seen["ops"]
    schemas = seen["schemas"]
    register = schemas["gateway_register_server"]
    assert set(register["properties"]) == {"name", "command", "args", "env", "description"}, register
    assert sorted(register.get("required", [])) == ["command", "name"], register
    assert schemas["gateway_remove_server"].get("required") == ["name"], schemas["gateway_remove_server"]
    assert schemas["gateway_status"].get("type") == "object", schemas["gateway_status"]
    for key in ("admin_status", "ops_status"):
        assert [s["name"] for s in seen[key]["servers"]] == ["alpha"], seen[key]
        assert seen[key]["sessions"] == 1, seen[key]

    assert seen["user"] == ALPHA_EXPOSED, f"role user lists {sorted(seen['user'])}"
    for tool, error in seen["user_errors"].items():
        assert (error.code, error.message) == (-32602, admin_only(tool, "user")), (tool, error.code, error.message)
    assert seen["user_echo"] == "still served"
    assert not seen["none"] & ADMIN_TOOLS, seen["none"]
    assert seen["none_error"].message.startswith(
        'Tool "gateway_status" is only for admin roles (admin, and gateway.admin_roles)'), seen["none_error"].message

    assert seen["off"] == ALPHA_EXPOSED, f"registration off: an admin lists {sorted(seen['off'])}"
    for tool, error in seen["off_errors"].items():
        assert error.message.startswith(f'Unknown tool: "{tool}"'), (tool, error.code, error.message)
    assert seen["off_betas"] == set(), "registration off, yet gateway_register_server started beta"
    assert not registered_path(state_home).exists(), registered_path(state_home).read_text()


# --------------------------------------------------------------------------- register, use, remove


async def test_register_serve_status_and_remove(mcpd_bin, write_config, piddir, tmp_path, mcpd_env, state_home):
    """stdio, admin: beta registered (args a list, env with the pid dir and a marker) and beta2
    (`sh` on PATH, args ONE string with quotes) are announced with list_changed and served;
    gateway_status and registered.json describe them exactly; removing beta stops it, drops its
    tools with list_changed and from registered.json; bad removals are isError results; beta
    registered again right away runs anew."""
    config = write_config(config_text(alpha_only(piddir)))
    beta_args = beta_registration(piddir, BETA_MARK="from registration")
    beta2_line = f"-c 'exec \"{sys.executable}\" \"$0\" \"$1\"' {backend_script('beta')} 'two words'"
    beta2_args = {"name": "beta2", "command": "sh", "args": beta2_line, "env": {"MCPD_TEST_PIDDIR": str(piddir)}}
    async with stdio_session(mcpd_bin, config, tmp_path, mcpd_env, "main") as (s, handle, inbox):
        before = await tool_names(s)
        text = await call_ok(s, "gateway_register_server", beta_args)
        await inbox.wait_for(types.ToolListChangedNotification, 1, timeout=15)
        listed = await wait_tools(s, lambda n: BETA_EXPOSED <= n, "listed beta's tools")
        beta_pid = wait_new_pid(piddir, "beta", set())
        echo = await call_ok(s, "beta__echo", {"text": "hi"})
        mark = await call_ok(s, "beta__getenv", {"name": "BETA_MARK"})

        text2 = await call_ok(s, "gateway_register_server", beta2_args)
        listed2 = await wait_tools(s, lambda n: {"beta2__echo", "beta2__getenv"} <= n, "listed beta2's tools")
        beta2_pid = wait_new_pid(piddir, "beta", {beta_pid})
        echo2 = await call_ok(s, "beta2__echo", {"text": "two"})
        doc = wait_registered(state_home, ["beta", "beta2"])
        mode = stat.S_IMODE(registered_path(state_home).stat().st_mode)
        st = await status(s)

        changes = len(inbox.of(types.ToolListChangedNotification))
        removed = await call_ok(s, "gateway_remove_server", {"name": "beta"})
        await inbox.wait_for(types.ToolListChangedNotification, changes + 1, timeout=15)
        after = await tool_names(s)
        wait_dead(beta_pid)
        doc_after = wait_registered(state_home, ["beta2"])
        st_after = await status(s)
        try:
            gone = await s.call_tool("beta__echo", {"text": "x"})
            gone_error = None
        except MCPError as exc:
            gone, gone_error = None, exc
        again = await call_error(s, "gateway_remove_server", {"name": "beta"})
        unknown = await call_error(s, "gateway_remove_server", {"name": "nope"})
        configured = await call_error(s, "gateway_remove_server", {"name": "alpha"})
        alpha_echo = await call_ok(s, "alpha__echo", {"text": "alpha stays"})
        beta2_alive = pid_is_alive(beta2_pid)

        reregistered = await call_ok(s, "gateway_register_server", beta_args)
        await wait_tools(s, lambda n: BETA_EXPOSED <= n, "listed beta's tools again after registering it anew")
        wait_new_pid(piddir, "beta", {beta_pid, beta2_pid})  # a process of its own
        echo_again = await call_ok(s, "beta__echo", {"text": "again"})
        wait_registered(state_home, ["beta2", "beta"])

    assert before == ALPHA_EXPOSED | ADMIN_TOOLS, before
    assert text == 'registered "beta"; it is starting, and its tools will be listed as beta__<tool>', text
    assert listed == ALPHA_EXPOSED | ADMIN_TOOLS | BETA_EXPOSED, sorted(listed)
    assert echo == "beta:hi"
    assert mark == "from registration", "the env given at registration did not reach beta"
    assert text2 == 'registered "beta2"; it is starting, and its tools will be listed as beta2__<tool>', text2
    assert {f"beta2__{t}" for t in BETA_TOOLS} <= listed2, sorted(listed2)
    assert echo2 == "beta:two"

    assert mode == 0o600, f"registered.json has mode {oct(mode)}"
    assert doc == {"version": 1, "servers": [
        {"name": "beta", "command": sys.executable, "args": [backend_script("beta")],
         "env": {"MCPD_TEST_PIDDIR": str(piddir), "BETA_MARK": "from registration"},
         "description": "beta from the tests"},
        {"name": "beta2", "command": "sh",
         "args": ["-c", f'exec "{sys.executable}" "$0" "$1"', backend_script("beta"), "two words"],
         "env": {"MCPD_TEST_PIDDIR": str(piddir)}},
    ]}, doc

    servers = by_name(st)
    assert set(servers) == {"alpha", "beta", "beta2"}, st
    for entry in servers.values():
        assert set(entry) == STATUS_KEYS, entry
    assert servers["beta"] == {"name": "beta", "state": "ready", "registered": True, "running": True, "restarts": 0,
                               "tools": len(BETA_TOOLS), "prompts": 0, "resources": 0, "resourceTemplates": 0,
                               "last_error": None}, servers["beta"]
    assert servers["alpha"]["registered"] is False and servers["alpha"]["tools"] == len(ALPHA_TOOLS), servers["alpha"]
    assert servers["beta2"]["registered"] is True and servers["beta2"]["tools"] == len(BETA_TOOLS), servers["beta2"]
    assert st["sessions"] == 1, st

    assert not removed.startswith("no ") and "beta" in removed, removed
    assert after == ALPHA_EXPOSED | ADMIN_TOOLS | {f"beta2__{t}" for t in BETA_TOOLS}, sorted(after)
    assert doc_after["servers"][0]["name"] == "beta2", doc_after
    assert set(by_name(st_after)) == {"alpha", "beta2"}, st_after
    assert gone_error is not None or (gone is not None and gone.is_error), f"beta__echo after removal: {gone}"
    assert "beta" in again, again
    assert "nope" in unknown, unknown
    assert "not registered at run time" in configured, configured
    assert alpha_echo == "alpha stays"
    assert beta2_alive, "removing beta stopped beta2 too"
    assert reregistered.startswith('registered "beta"'), reregistered
    assert echo_again == "beta:again", echo_again
    assert handle.returncode == 0 and not handle.killed, handle


async def test_registration_errors_add_nothing(mcpd_bin, write_config, piddir, tmp_path, mcpd_env, state_home):
    """Each bad registration is an isError result naming what is wrong, and leaves no trace:
    gateway_status lists alpha, beta and the 48-character name only, registered.json the two
    registered, and only their two processes started."""
    config = write_config(config_text(alpha_only(piddir)))
    plain_file = tmp_path / "not-executable.sh"
    plain_file.write_text("#!/bin/sh\nexit 0\n")
    plain_file.chmod(0o644)
    good = beta_registration(piddir)
    long48 = "n" * 48

    def with_(**changes: Any) -> dict[str, Any]:
        args = dict(beta_registration(piddir, name="other"))
        for key, value in changes.items():
            if value is None:
                args.pop(key, None)
            else:
                args[key] = value
        return args

    bad: list[tuple[str, dict[str, Any], str]] = [
        ("name with __", with_(name="a__b"), "a__b"),
        ("name with a space", with_(name="has space"), "has space"),
        ("empty name", with_(name=""), "name"),
        ("49-character name", with_(name="n" * 49), "n" * 49),
        ("configured name", with_(name="alpha"), "alpha"),
        ("registered name", with_(name="beta"), "beta"),
        ("missing command", with_(command="/nonexistent/mcpd-test-program"), "/nonexistent/mcpd-test-program"),
        ("non-executable file", with_(command=str(plain_file)), str(plain_file)),
        ("a directory", with_(command=str(tmp_path)), str(tmp_path)),
        ("unknown program on PATH", with_(command="mcpd-no-such-program-xyz"), "mcpd-no-such-program-xyz"),
        ("no command", with_(command=None), "command"),
        ("args a number", with_(args=5), "args"),
        ("args holding a number", with_(args=["-u", 3]), "args"),
        ("args an object", with_(args={"a": "b"}), "args"),
        ("args with an unclosed quote", with_(args="-c 'unclosed"), "quote"),
        ("env a string", with_(env="A=1"), "env"),
        ("env a list", with_(env=["A=1"]), "env"),
        ("env holding a number", with_(env={"A": 1}), "env"),
    ]
    async with stdio_session(mcpd_bin, config, tmp_path, mcpd_env, "errors") as (s, _, _):
        await call_ok(s, "gateway_register_server", good)
        await call_ok(s, "gateway_register_server", dict(beta_registration(piddir, name=long48)))
        outcomes: dict[str, Any] = {}
        for label, args, _ in bad:
            result = await s.call_tool("gateway_register_server", args)
            outcomes[label] = (result.is_error, text_of(result))
        await wait_tools(s, lambda n: BETA_EXPOSED <= n and f"{long48}__echo" in n, "listed both registered servers")
        st = await status(s)
        doc = wait_registered(state_home, ["beta", long48])
        await anyio.sleep(0.5)
        betas = pids_of(piddir, "beta")

    wrong = {label: outcome for label, outcome in outcomes.items() if outcome[0] is not True}
    assert not wrong, f"not isError results: {wrong}"
    unnamed = {label: outcomes[label][1] for label, _, needle in bad if needle not in outcomes[label][1]}
    assert not unnamed, f"error texts not naming what is wrong: {unnamed}"
    assert [s["name"] for s in st["servers"]] == ["alpha", "beta", long48], st
    assert [s["name"] for s in doc["servers"]] == ["beta", long48], doc
    assert len(betas) == 2, f"expected the two registered betas' processes, found {betas}"


async def test_at_most_100_registered(mcpd_bin, write_config, piddir, tmp_path, mcpd_env, state_home):
    """100 servers (`sleep 30`, which never answers) register; the 101st is an isError result
    naming the limit; after one is removed, another registers; registered.json holds 100."""
    config = write_config(config_text(alpha_only(piddir), gateway_extra="  stop_grace: 1s\n"))
    async with stdio_session(mcpd_bin, config, tmp_path, mcpd_env, "limit") as (s, handle, _):
        failures = {}
        for i in range(100):
            result = await s.call_tool("gateway_register_server",
                                       {"name": f"s{i:03d}", "command": "sleep", "args": ["30"]})
            if result.is_error:
                failures[i] = text_of(result)
        over = await s.call_tool("gateway_register_server", {"name": "s100", "command": "sleep", "args": "30"})
        removed = await s.call_tool("gateway_remove_server", {"name": "s000"})
        replaced = await s.call_tool("gateway_register_server", {"name": "s100", "command": "sleep", "args": "30"})
        st = await status(s)
        names = [f"s{i:03d}" for i in range(1, 101)]
        doc = wait_registered(state_home, names, timeout=10)

    assert not failures, f"registrations below the limit failed: {dict(list(failures.items())[:3])}"
    assert over.is_error is True, f"the 101st registration: {over}"
    assert "100" in text_of(over), text_of(over)
    assert not removed.is_error, removed
    assert not replaced.is_error, f"after a removal, registering again: {replaced}"
    assert [x["name"] for x in st["servers"]] == ["alpha", *names], [x["name"] for x in st["servers"]][:5]
    assert len(doc["servers"]) == 100
    assert handle.returncode == 0 and not handle.killed, handle


# --------------------------------------------------------------------------- persistence


async def test_restart_restores_then_removal_is_final(mcpd_bin, write_config, piddir, tmp_path, mcpd_env, state_home):
    """mcpd 1 registers beta; mcpd 2 (same config and state dir) logs it restored, serves
    beta__echo and reports it registered, then removes it; mcpd 3 restores nothing."""
    config = write_config(config_text(alpha_only(piddir)))
    async with stdio_session(mcpd_bin, config, tmp_path, mcpd_env, "first") as (s, h1, _):
        await call_ok(s, "gateway_register_server", beta_registration(piddir))
        await wait_tools(s, lambda n: BETA_EXPOSED <= n, "listed beta's tools")
        wait_registered(state_home, ["beta"])
    async with stdio_session(mcpd_bin, config, tmp_path, mcpd_env, "second") as (s, h2, _):
        restored_line = wait_log(tmp_path / "mcpd-second.stderr", r'registered server "beta" restored from ')
        listed = await wait_tools(s, lambda n: BETA_EXPOSED <= n, "listed the restored beta's tools")
        echo = await call_ok(s, "beta__echo", {"text": "again"})
        st = by_name(await status(s))
        beta_pids = pids_of(piddir, "beta")
        await call_ok(s, "gateway_remove_server", {"name": "beta"})
        wait_registered(state_home, [])
    for pid in beta_pids:
        wait_dead(pid)
    async with stdio_session(mcpd_bin, config, tmp_path, mcpd_env, "third") as (s, h3, _):
        third = await tool_names(s)
        st3 = by_name(await status(s))
        await anyio.sleep(0.5)
        third_log = (tmp_path / "mcpd-third.stderr").read_text()

    assert restored_line.endswith(f'registered server "beta" restored from {registered_path(state_home)}'), restored_line
    assert BETA_EXPOSED <= listed
    assert echo == "beta:again"
    assert st["beta"]["registered"] is True, st
    assert third == ALPHA_EXPOSED | ADMIN_TOOLS, f"after removal, a new mcpd lists {sorted(third)}"
    assert set(st3) == {"alpha"}, st3
    assert "restored" not in third_log, third_log
    assert all(h.returncode == 0 and not h.killed for h in (h1, h2, h3)), (h1, h2, h3)


async def test_config_server_of_the_same_name_wins_at_restart(mcpd_bin, write_config, piddir, tmp_path, mcpd_env,
                                                              state_home):
    """beta registered with BETA_MARK=from-registration; the config then defines beta (BETA_MARK=config):
    the next mcpd warns naming beta, runs the config's, lists one beta, not registered, and
    refuses to remove it."""
    config = write_config(config_text(alpha_only(piddir)))
    async with stdio_session(mcpd_bin, config, tmp_path, mcpd_env, "first") as (s, _, _):
        await call_ok(s, "gateway_register_server", beta_registration(piddir, BETA_MARK="from-registration"))
        await wait_tools(s, lambda n: BETA_EXPOSED <= n, "listed beta's tools")
        wait_registered(state_home, ["beta"])
    servers = dict(alpha_only(piddir), beta=server_entry("beta", piddir, env={"BETA_MARK": "config"}))
    write_config(config_text(servers))
    async with stdio_session(mcpd_bin, config, tmp_path, mcpd_env, "second") as (s, _, _):
        await wait_tools(s, lambda n: BETA_EXPOSED <= n, "listed beta's tools")
        mark = await call_ok(s, "beta__getenv", {"name": "BETA_MARK"})
        st = by_name(await status(s))
        remove = await call_error(s, "gateway_remove_server", {"name": "beta"})
        log = (tmp_path / "mcpd-second.stderr").read_text()

    warnings = [line for line in log.splitlines() if "warning" in line and '"beta"' in line]
    assert warnings, f"no warning naming beta when the config defines a registered name:\n{log[-3000:]}"
    assert mark == "config", f"beta__getenv BETA_MARK = {mark!r}: the registered beta ran, not the config's"
    assert st["beta"]["registered"] is False, st
    assert "not registered at run time" in remove, remove
    assert 'restored from' not in log, log


async def test_reload_keeps_registered_then_config_of_same_name_wins(mcpd_bin, write_config, piddir, tmp_path,
                                                                     mcpd_env, state_home):
    """stdio admin: beta registered; reload 1 (roles edited) keeps its process, tools and
    registered.json entry; reload 2 (config defines beta, BETA_MARK=config) replaces it with the
    config's (getenv "config", status not registered), stops the registered process and logs a
    warning naming beta."""
    servers = alpha_only(piddir)
    config = write_config(config_text(servers))
    err = tmp_path / "mcpd-reload.stderr"
    async with stdio_session(mcpd_bin, config, tmp_path, mcpd_env, "reload") as (s, handle, inbox):
        await call_ok(s, "gateway_register_server", beta_registration(piddir, BETA_MARK="from-registration"))
        await wait_tools(s, lambda n: BETA_EXPOSED <= n, "listed beta's tools")
        beta_pid = wait_new_pid(piddir, "beta", set())
        wait_registered(state_home, ["beta"])

        write_config(config_text(servers, roles=ROLES + "  extra: null\n"))
        os.kill(handle.pid, signal.SIGHUP)
        wait_log(err, r"mcpd: info: reloaded ")
        kept_tools = await tool_names(s)
        kept_echo = await call_ok(s, "beta__echo", {"text": "kept"})
        kept_status = by_name(await status(s))
        kept_pids = pids_of(piddir, "beta")
        kept_doc = read_registered(state_home)

        servers2 = dict(servers, beta=server_entry("beta", piddir, env={"BETA_MARK": "config"}))
        write_config(config_text(servers2))
        os.kill(handle.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while len(re.findall(r"mcpd: info: reloaded ", err.read_text())) < 2:
            assert time.monotonic() < deadline, err.read_text()[-3000:]
            await anyio.sleep(0.05)
        await wait_tools(s, lambda n: BETA_EXPOSED <= n, "listed beta's tools after the second reload")
        deadline = anyio.current_time() + 15
        while True:
            try:
                mark = await call_ok(s, "beta__getenv", {"name": "BETA_MARK"})
            except (MCPError, AssertionError):
                mark = None
            if mark == "config" or anyio.current_time() > deadline:
                break
            await anyio.sleep(0.2)
        replaced_status = by_name(await status(s))
        wait_dead(beta_pid)
        log = err.read_text()

    assert BETA_EXPOSED <= kept_tools, sorted(kept_tools)
    assert kept_echo == "beta:kept"
    assert kept_status["beta"]["registered"] is True, kept_status
    assert kept_pids == {beta_pid}, f"the reload restarted the registered beta: pids {kept_pids}, first {beta_pid}"
    assert kept_doc is not None and [x["name"] for x in kept_doc["servers"]] == ["beta"], kept_doc
    assert mark == "config", f"after the config defined beta, beta__getenv BETA_MARK = {mark!r}"
    assert replaced_status["beta"]["registered"] is False, replaced_status
    reload2 = log[log.index("received SIGHUP", log.index("reloaded ")):]  # from the second reload on
    warnings = [line for line in reload2.splitlines() if "warning" in line and '"beta"' in line]
    assert warnings, f"the config's beta replaced the registered one without a warning:\n{reload2[-3000:]}"


# --------------------------------------------------------------------------- secrets


async def test_registration_env_values_never_reach_the_log(mcpd_bin, write_config, piddir, tmp_path, mcpd_env,
                                                           state_home):
    """A registered `sh` printing `token is $TOKEN_X` on stderr and exiting 3, with TOKEN_X given
    in env: mcpd relays its stderr lines and logs its crashes, never the value; nor does a new mcpd
    restoring it (--log-format json)."""
    config = write_config(config_text(alpha_only(piddir)))
    leaky = {"name": "leaky", "command": "sh", "args": ["-c", 'echo "token is $TOKEN_X" >&2; exit 3'],
             "env": {"TOKEN_X": SECRET}, "description": "prints its token"}
    first_err = tmp_path / "mcpd-first.stderr"
    second_err = tmp_path / "mcpd-second.stderr"
    async with stdio_session(mcpd_bin, config, tmp_path, mcpd_env, "first") as (s, _, _):
        text = await call_ok(s, "gateway_register_server", leaky)
        wait_log(first_err, r"\[leaky\] token is ")
        wait_log(first_err, r'backend "leaky" exited with status 3')
        wait_registered(state_home, ["leaky"])
        await anyio.sleep(0.5)
    async with stdio_session(mcpd_bin, config, tmp_path, mcpd_env, "second", "admin", "--log-format", "json") as (s, _, _):
        wait_log(second_err, r'registered server \\"leaky\\" restored')
        wait_log(second_err, r'"source":"leaky".*token is ')
        await anyio.sleep(0.5)
    first, second = first_err.read_text(), second_err.read_text()

    assert SECRET not in text
    assert SECRET not in first, [line for line in first.splitlines() if SECRET in line]
    assert SECRET not in second, [line for line in second.splitlines() if SECRET in line]
    # The registered file keeps it (mode 0600), so that a restart can pass it on.
    assert read_registered(state_home)["servers"][0]["env"] == {"TOKEN_X": SECRET}


# --------------------------------------------------------------------------- HTTP


async def test_http_admin_registers_ops_sees_it_user_is_refused(serve, write_config, piddir, mcpd_env):  # noqa: F811
    """`mcpd serve` with three SDK sessions (tokens of roles admin, ops, user): user is refused the
    tools (nothing starts); admin registers beta; ops gets list_changed, lists and calls beta__echo;
    user still lists alpha's tools only and is refused beta__echo by its role; status counts 3
    sessions; admin removes beta: ops gets list_changed, the tools go, the process dies."""
    config = write_config(config_text(alpha_only(piddir), auth=True))
    served = serve(config)
    async with AsyncExitStack() as stack:
        admin, _ = await stack.enter_async_context(token_session(served.url, TOK_ADMIN))
        ops, ops_inbox = await stack.enter_async_context(token_session(served.url, TOK_OPS))
        user, _ = await stack.enter_async_context(token_session(served.url, TOK_USER))
        lists = {"admin": await tool_names(admin), "ops": await tool_names(ops), "user": await tool_names(user)}
        user_register = await refused(user.call_tool("gateway_register_server", beta_registration(piddir)))
        user_status = await refused(user.call_tool("gateway_status", {}))
        await anyio.sleep(1.0)
        betas_after_refusal = pids_of(piddir, "beta")

        text = await call_ok(admin, "gateway_register_server", beta_registration(piddir))
        await ops_inbox.wait_for(types.ToolListChangedNotification, 1, timeout=15)
        ops_listed = await wait_tools(ops, lambda n: BETA_EXPOSED <= n, "listed beta's tools (ops)")
        ops_echo = await call_ok(ops, "beta__echo", {"text": "ops"})
        admin_echo = await call_ok(admin, "beta__echo", {"text": "admin"})
        user_listed = await tool_names(user)
        user_echo = await refused(user.call_tool("beta__echo", {"text": "user"}))
        st = await status(admin)
        beta_pid = wait_new_pid(piddir, "beta", set())

        changes = len(ops_inbox.of(types.ToolListChangedNotification))
        await call_ok(admin, "gateway_remove_server", {"name": "beta"})
        await ops_inbox.wait_for(types.ToolListChangedNotification, changes + 1, timeout=15)
        ops_after = await tool_names(ops)
        wait_dead(beta_pid)

    assert lists["admin"] == ALPHA_EXPOSED | ADMIN_TOOLS, lists["admin"]
    assert lists["ops"] == ALPHA_EXPOSED | ADMIN_TOOLS, lists["ops"]
    assert lists["user"] == ALPHA_EXPOSED, lists["user"]
    assert (user_register.code, user_register.message) == (-32602, admin_only("gateway_register_server", "user"))
    assert (user_status.code, user_status.message) == (-32602, admin_only("gateway_status", "user"))
    assert betas_after_refusal == set(), "a refused registration started beta"
    assert text == 'registered "beta"; it is starting, and its tools will be listed as beta__<tool>', text
    assert BETA_EXPOSED <= ops_listed
    assert (ops_echo, admin_echo) == ("beta:ops", "beta:admin")
    assert user_listed == ALPHA_EXPOSED, f"role user (alpha__*) lists {sorted(user_listed)}"
    assert user_echo.message == 'Tool "beta__echo" is not available to role "user" (roles.user in the config)', \
        user_echo.message
    assert by_name(st)["beta"]["registered"] is True, st
    assert st["sessions"] == 3, st
    assert not ops_after & BETA_EXPOSED, sorted(ops_after)


async def test_registration_env_values_stay_out_of_status_and_health(serve, write_config, piddir):  # noqa: F811
    """`mcpd serve` (restart_limit 2): the admin registers `leaky` (prints `token is $TOKEN_X` on
    stderr, exits 3; TOKEN_X given in env). Once its circuit is open, its last_error is reported
    by gateway_status and /health, neither of which may show the value (mcpd redacts the
    config's own secrets there; the registration's are secrets too), nor may the log."""
    config = write_config(config_text(alpha_only(piddir), auth=True, gateway_extra="  restart_limit: 2\n"))
    served = serve(config)
    leaky = {"name": "leaky", "command": "sh", "args": ["-c", 'echo "token is $TOKEN_X" >&2; exit 3'],
             "env": {"TOKEN_X": SECRET}}
    async with token_session(served.url, TOK_ADMIN) as (admin, _):
        await call_ok(admin, "gateway_register_server", leaky)
        # Until its circuit is open and last_error quotes its stderr lines (read a moment later).
        deadline = time.monotonic() + 15
        while True:
            result = await admin.call_tool("gateway_status", {})
            error = (by_name(result.structured_content).get("leaky") or {}).get("last_error") or ""
            if served.health()["backends"].get("leaky", {}).get("state") == "circuit_open" and "token is" in error:
                break
            assert time.monotonic() < deadline, f"leaky's circuit never opened with its stderr quoted: {result}"
            await anyio.sleep(0.1)
    health = served.health()
    status_text = text_of(result)
    leaky_status = by_name(result.structured_content)["leaky"]

    assert "token is" in (health["backends"]["leaky"]["last_error"] or ""), health  # it quotes the stderr lines
    leaks = {
        "gateway_status text": SECRET in status_text,
        "gateway_status structuredContent": SECRET in json.dumps(result.structured_content),
        "/health": SECRET in json.dumps(health),
        "mcpd serve's log": SECRET in served.stderr_text(),
    }
    assert not any(leaks.values()), (
        f"the registration's env value shows in {[k for k, v in leaks.items() if v]}: "
        f"gateway_status last_error {leaky_status['last_error']!r}; /health last_error "
        f"{health['backends']['leaky']['last_error']!r}")
