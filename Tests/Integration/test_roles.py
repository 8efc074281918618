"""Roles (`roles:`, `gateway.default_role`, a token's `role`, `MCPD_ROLE`): what a client sees and may call.

The roles of every test (servers alpha and gamma; beta too where stdio needs it):

    dev:     ["alpha__e*", "gamma__greet", "mcpd://gamma/file:///gamma/a.txt"]   (the default_role)
    all:     null                                                                 (everything)
    nogamma: {deny: ["gamma__*", "mcpd://gamma/*"]}                               (allow absent: everything)
    globby:  {allow: ["alpha__[ae]*", "alpha__s?eep", "gamma__gre?t", "mcpd://gamma/*.txt",
                      "mcpd://gamma/gamma://notes/*"], deny: ["alpha__a*", "mcpd://gamma/*b.txt"]}

and the tokens TOK_A (role all), TOK_B (nogamma), TOK_C (no role: default_role dev), TOK_D (globby).

What is tested:
- `mcpd check`: the roles above (list, null and {allow, deny} forms), default_role, token roles and
  `gateway.admin_roles` pass (exit 0, also --json) with no warning naming a role (all are acted
  on). A token role and a default_role naming undefined roles are errors at their lines
  (`auth.tokens[1].role names role "ghost", which roles: does not define`, `gateway.default_role
  names role "dve", ...`), exit 1, in the text and in --json; a token role without any roles:
  section too; `mcpd serve` with such a config does not start (exit 1, the same error).
- stdio, the default role (no MCPD_ROLE, default_role dev): tools/list, prompts/list,
  resources/list and resources/templates/list give exactly dev's items; alpha__echo, prompts/get
  gamma__greet, resources/read of a.txt and completion of greet are served; tools/call gamma__echo
  and alpha__add, prompts/get gamma__plain are -32602 `Tool "gamma__echo" is not available to role
  "dev" (roles.dev in the config)` (Prompt ... for prompts); resources/read and resources/subscribe of
  mcpd://gamma/file:///gamma/b.txt and of a URI of gamma's template are -32002 `Resource "..." is not
  available to role "dev" ...`; completion/complete of the hidden prompt gamma__review and of the
  hidden template are -32602; a tool and a prompt no role knows get "Unknown tool"/"Unknown prompt",
  and an unknown name near a hidden one does not name the hidden one.
- stdio, role variables: MCPD_ROLE=nogamma sees alpha's and beta's tools and no prompt or resource
  of gamma (gamma__echo refused naming role nogamma); MCP_GATEWAY_ROLE=all alone sees everything;
  MCPD_ROLE=all with MCP_GATEWAY_ROLE=nogamma sees everything (MCPD_ROLE wins), and beta (with
  `inherit_env: true`, which passes a control variable) sees neither variable; MCPD_ROLE=bogus logs
  `role "bogus" (MCPD_ROLE) is not defined in roles: of <config>: this client sees nothing`, lists
  nothing and alpha__echo is refused naming role bogus; without default_role and without a variable
  the session sees everything.
  (These stdio tests first fill the catalog with one mcpd run, so that they hold whatever the next
  test finds.)
- stdio, first run (no catalog yet): a session of the default role dev, once its backends are ready,
  lists dev's tool alpha__echo and may call it.
- HTTP /mcp, the SDK client with four tokens at once (MCPD_ROLE=nogamma and MCP_GATEWAY_ROLE=nogamma in
  mcpd's environment, which HTTP sessions must ignore): TOK_A lists everything and calls gamma__echo;
  TOK_B lists alpha's tools only, no prompt, no resource, and gamma__echo, prompts/get gamma__greet
  and resources/read of a.txt are refused naming role nogamma; TOK_C (no role) gets dev's lists and
  refusals; TOK_D gets globby's (fnmatch `[...]` and `?`, `*` across slashes, deny over allow): tools
  alpha__echo and alpha__sleep, prompt gamma__greet, resources a.txt and tricky.txt, template
  gamma://notes/{id}; a note is read through the template, b.txt and alpha__add are refused.
- HTTP per-server views (refusals name the item as the client named it there, e.g. `Tool "add" is
  not available to role "dev" ...`): /mcp/alpha with TOK_C lists only `echo` and refuses `add`;
  /mcp/gamma with TOK_C lists no tool, prompt greet, resource file:///gamma/a.txt (own names), reads it,
  refuses file:///gamma/b.txt (-32002) and prompts/get plain, completes greet and not review; with
  TOK_B /mcp/gamma lists nothing and refuses echo; with TOK_A it lists all of gamma's tools; with
  TOK_D prompt greet, resources a.txt and tricky.txt, template gamma://notes/{id}.
- HTTP /sse (the SDK's sse_client with the token as a header): TOK_B lists alpha's tools only and is
  refused gamma__echo; TOK_C lists alpha__echo only.
- stateless era (2026-07-28) POSTs to /mcp: tools/list with TOK_B lists alpha's tools only, with TOK_C
  alpha__echo only; tools/call gamma__echo (Mcp-Name gamma__echo) with TOK_B is a JSON-RPC error
  naming role nogamma, with TOK_A it is served.
- reload: with SDK sessions of TOK_A, TOK_B, TOK_C open, a SIGHUP reload changing dev to
  ["alpha__a*", "gamma__*"] brings tools, prompts and resources list_changed to the TOK_C session
  only (none to TOK_A's and TOK_B's within 1 s); TOK_C then lists alpha__add and gamma's tools, every
  gamma prompt and no resource, calls gamma__echo and is refused alpha__echo.
- reload over stdio (MCPD_ROLE=dev) removing the role dev (and default_role), then restoring it: the
  session gets tools/list_changed and sees nothing in between (alpha__echo refused naming dev), and
  after the second reload gets tools/list_changed again, sees dev's lists and calls alpha__echo.
- HTTP, a client that connects while the backends are still starting: its session with TOK_C
  (default role dev) lists alpha__echo once start-up settled, and so does a TOK_C session opened later.

HTTP tests use test_streamable_http's `serve` fixture (a free port, /health with every backend
ready; SIGTERM, exit 0 and no backend left at the end) but for the start-up test, which starts
`mcpd serve` itself. stdio tests drive `mcpd stdio` with raw JSON lines (conftest's raw_mcpd).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
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
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcpd_helpers import (
    ALPHA_TOOLS,
    BETA_TOOLS,
    LineProcess,
    describe,
    run_mcpd,
    server_entry,
    to_yaml,
)
from test_http_server_view import (
    GAMMA_PROMPTS,
    GAMMA_RESOURCES,
    GAMMA_TEMPLATES,
    GAMMA_TOOLS,
    META,
    MODERN,
    Inbox,
    list_all,
    text_of,
)
from test_streamable_http import (  # noqa: F401  (serve is a fixture)
    BOTH,
    HOST,
    SESSION_ID,
    Reply,
    dumps,
    free_port,
    http_request,
    init_message,
    serve,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

TOK_A = "tokA" + secrets.token_hex(14)  # role all
TOK_B = "tokB" + secrets.token_hex(14)  # role nogamma
TOK_C = "tokC" + secrets.token_hex(14)  # no role: gateway.default_role (dev)
TOK_D = "tokD" + secrets.token_hex(14)  # role globby

ROLES = """\
roles:
  dev: ["alpha__e*", "gamma__greet", "mcpd://gamma/file:///gamma/a.txt"]
  all: null
  nogamma: {deny: ["gamma__*", "mcpd://gamma/*"]}
  globby:
    allow: ["alpha__[ae]*", "alpha__s?eep", "gamma__gre?t", "mcpd://gamma/*.txt", "mcpd://gamma/gamma://notes/*"]
    deny: ["alpha__a*", "mcpd://gamma/*b.txt"]
"""
AUTH = """\
auth:
  tokens:
    - token: "${TOK_A}"
      role: all
    - token: "${TOK_B}"
      role: nogamma
    - token: "${TOK_C}"
    - token: "${TOK_D}"
      role: globby
"""

A_TXT = "mcpd://gamma/file:///gamma/a.txt"
B_TXT = "mcpd://gamma/file:///gamma/b.txt"
NOTE = "mcpd://gamma/gamma://notes/42"

ALPHA_EXPOSED = {f"alpha__{t}" for t in ALPHA_TOOLS}
BETA_EXPOSED = {f"beta__{t}" for t in BETA_TOOLS}
GAMMA_EXPOSED = {f"gamma__{t}" for t in GAMMA_TOOLS}
GAMMA_PROMPTS_EXPOSED = [f"gamma__{p}" for p in GAMMA_PROMPTS]
GAMMA_RESOURCES_EXPOSED = [f"mcpd://gamma/{u}" for u in GAMMA_RESOURCES]
GAMMA_TEMPLATES_EXPOSED = [f"mcpd://gamma/{u}" for u in GAMMA_TEMPLATES]

# What each role sees at /mcp (alpha and gamma configured): tools as a set, the rest in order.
DEV = {"tools": {"alpha__echo"}, "prompts": ["gamma__greet"], "resources": [A_TXT], "templates": []}
NOGAMMA = {"tools": ALPHA_EXPOSED, "prompts": [], "resources": [], "templates": []}
ALL = {"tools": ALPHA_EXPOSED | GAMMA_EXPOSED, "prompts": GAMMA_PROMPTS_EXPOSED, "resources": GAMMA_RESOURCES_EXPOSED,
       "templates": GAMMA_TEMPLATES_EXPOSED}
GLOBBY = {"tools": {"alpha__echo", "alpha__sleep"}, "prompts": ["gamma__greet"],
          "resources": [A_TXT, "mcpd://gamma/file:///gamma/tricky.txt"], "templates": ["mcpd://gamma/gamma://notes/{id}"]}
NOTHING = {"tools": set(), "prompts": [], "resources": [], "templates": []}


def refusal(kind: str, name: str, role: str) -> str:
    """The message of a call refused because of the session's role."""
    return f'{kind} "{name}" is not available to role "{role}" (roles.{role} in the config)'


@pytest.fixture
def mcpd_env(state_home: Path) -> dict[str, str]:
    """mcpd's environment: the four tokens set, no role variable (tests add them)."""
    env = dict(os.environ, TOK_A=TOK_A, TOK_B=TOK_B, TOK_C=TOK_C, TOK_D=TOK_D)
    for name in ("MCPD_ROLE", "MCP_GATEWAY_ROLE"):
        env.pop(name, None)
    return env


def config_text(servers: dict[str, Any], *, roles: str = ROLES, default_role: str | None = "dev",
                auth: str | None = AUTH, gateway_extra: str = "") -> str:
    text = to_yaml({"servers": servers}) + "\n" + roles
    if default_role is not None or gateway_extra:
        text += "gateway:\n"
        if default_role is not None:
            text += f"  default_role: {default_role}\n"
        text += gateway_extra
    if auth is not None:
        text += auth
    return text


def two_servers(piddir: Path) -> dict[str, Any]:
    return {"alpha": server_entry("alpha", piddir), "gamma": server_entry("gamma", piddir)}


def three_servers(piddir: Path) -> dict[str, Any]:
    return {"alpha": server_entry("alpha", piddir), "beta": server_entry("beta", piddir, inherit_env=True),
            "gamma": server_entry("gamma", piddir)}


def line_of(text: str, needle: str) -> int:
    numbers = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(numbers) == 1, (needle, text)
    return numbers[0]


# --------------------------------------------------------------------------- stdio (raw lines)


def raw_list(p: LineProcess, method: str, key: str, field: str) -> list[str]:
    out: list[str] = []
    cursor = None
    for _ in range(50):
        _, msg, _ = p.request(method, {"cursor": cursor} if cursor else None)
        assert "result" in msg, f"{method}: {msg}"
        out += [item[field] for item in msg["result"][key]]
        cursor = msg["result"].get("nextCursor")
        if not cursor:
            return out
    raise AssertionError(f"{method}: more than 50 pages")


def raw_surface(p: LineProcess) -> dict[str, Any]:
    return {
        "tools": set(raw_list(p, "tools/list", "tools", "name")),
        "prompts": raw_list(p, "prompts/list", "prompts", "name"),
        "resources": raw_list(p, "resources/list", "resources", "uri"),
        "templates": raw_list(p, "resources/templates/list", "resourceTemplates", "uriTemplate"),
    }


def raw_error(p: LineProcess, method: str, params: Any) -> tuple[int, str]:
    _, msg, _ = p.request(method, params)
    assert "error" in msg and "result" not in msg, f"{method} {params}: expected an error, got {msg}"
    return msg["error"]["code"], msg["error"]["message"]


def raw_result(p: LineProcess, method: str, params: Any) -> dict[str, Any]:
    _, msg, _ = p.request(method, params)
    assert "result" in msg, f"{method} {params}: expected a result, got {msg}"
    return msg["result"]


def call_text(p: LineProcess, tool: str, arguments: dict[str, Any]) -> str:
    result = raw_result(p, "tools/call", {"name": tool, "arguments": arguments})
    assert result.get("isError") is False, result
    return result["content"][0]["text"]


def fill_catalog(raw_mcpd: Callable[..., LineProcess], config: Path, env: dict[str, str], state_home: Path,
                 servers: list[str]) -> None:
    """One `mcpd stdio` run until every server is ready and in the catalog, then ended (stdin closed)."""
    p = raw_mcpd(config, env=dict(env, MCPD_ROLE="all"))
    p.initialize()
    p.ping()
    deadline = time.monotonic() + 15
    catalog = state_home / "mcpd" / "catalog"
    while not all((catalog / f"{s}.json").exists() for s in servers):
        assert time.monotonic() < deadline, f"no catalog entries for {servers} in {catalog}: {list(catalog.glob('*'))}"
        time.sleep(0.05)
    p.close_stdin()
    assert p.wait(10) == 0, p.stderr_text()[-3000:]


def test_check_accepts_roles_without_warnings(mcpd_bin, write_config, piddir, mcpd_env):
    """The roles above (a list, null, {allow, deny}), gateway.default_role, token roles and
    gateway.admin_roles: `mcpd check` exits 0 (--json: ok, no errors), and no warning names a role:
    roles, a token's role and admin_roles (which gate runtime registration) are all acted on."""
    text = config_text(two_servers(piddir), gateway_extra="  admin_roles: [all]\n")
    config = write_config(text)
    proc = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 0, describe(proc)
    role_warnings = [line for line in proc.stderr.splitlines() if "warning" in line and "role" in line]
    assert role_warnings == [], describe(proc)
    assert "not act" not in proc.stderr and "roles are not in this version" not in proc.stderr, describe(proc)


def test_check_rejects_roles_no_section_defines(mcpd_bin, write_config, piddir, mcpd_env, tmp_path):
    """A token role "ghost" and default_role "dve" that roles: does not define: `mcpd check` exits 1
    with `auth.tokens[1].role names role "ghost", which roles: does not define` and
    `gateway.default_role names role "dve", which roles: does not define` at their lines (text and
    --json). A token role with no roles: section at all is an error too. `mcpd serve` does not start
    on such a config (exit 1, the error on stderr, nothing listening)."""
    auth = """\
auth:
  tokens:
    - token: "${TOK_A}"
      role: all
    - token: "${TOK_B}"
      role: ghost
"""
    text = config_text(two_servers(piddir), default_role="dve", auth=auth)
    config = write_config(text)
    ghost_line, dve_line = line_of(text, "role: ghost"), line_of(text, "default_role: dve")
    expected = [
        f"mcpd.yaml:{ghost_line}:13: auth.tokens[1].role names role \"ghost\", which roles: does not define",
        f"mcpd.yaml:{dve_line}:17: gateway.default_role names role \"dve\", which roles: does not define",
    ]
    proc = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 1, describe(proc)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("mcpd: error: ")]
    for want in expected:
        assert len([e for e in errors if want in e]) == 1, f"no error {want!r}\n{describe(proc)}"
    assert len(errors) == 2, describe(proc)

    proc = run_mcpd(mcpd_bin, "check", "--json", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 1, describe(proc)
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False, doc
    for want in expected:
        assert len([e for e in doc["errors"] if want in e]) == 1, f"no error {want!r} in {doc['errors']}"

    bare = write_config(config_text(two_servers(piddir), roles="", default_role=None, auth=auth), name="noroles.yaml")
    proc = run_mcpd(mcpd_bin, "check", "-c", str(bare), env=mcpd_env)
    assert proc.returncode == 1, describe(proc)
    assert 'auth.tokens[0].role names role "all", which roles: does not define' in proc.stderr, describe(proc)
    assert 'auth.tokens[1].role names role "ghost", which roles: does not define' in proc.stderr, describe(proc)

    port = free_port()
    proc = run_mcpd(mcpd_bin, "serve", "-c", str(config), "--port", str(port), env=mcpd_env, timeout=15)
    assert proc.returncode == 1, describe(proc)
    assert expected[0] in proc.stderr, describe(proc)


def test_stdio_default_role_filters_lists_and_refuses_calls(raw_mcpd, write_config, piddir, mcpd_env, state_home):
    """No MCPD_ROLE, default_role dev (catalog filled first): the four lists are exactly dev's; what dev
    allows is served; what it hides is refused with the role's message (tools, prompts: -32602;
    resources/read and subscribe, also through a template: -32002; completion: -32602); names no role
    knows get the usual Unknown messages, which do not name hidden items."""
    config = write_config(config_text(two_servers(piddir), auth=None))
    fill_catalog(raw_mcpd, config, mcpd_env, state_home, ["alpha", "gamma"])
    p = raw_mcpd(config, env=mcpd_env)
    p.initialize()

    assert raw_surface(p) == DEV
    assert call_text(p, "alpha__echo", {"text": "caf\u00e9 \U0001f389"}) == "caf\u00e9 \U0001f389"
    greet = raw_result(p, "prompts/get", {"name": "gamma__greet", "arguments": {"name": "Ada"}})
    assert greet["messages"][0]["content"]["text"] == "Hello, Ada!", greet
    read = raw_result(p, "resources/read", {"uri": A_TXT})
    assert [(c["uri"], c["text"]) for c in read["contents"]] == [("file:///gamma/a.txt", "gamma file a")], read
    completed = raw_result(p, "completion/complete", {"ref": {"type": "ref/prompt", "name": "gamma__greet"},
                                                      "argument": {"name": "name", "value": "al"}})
    assert completed["completion"]["values"] == ["alpha", "alpine"], completed

    for tool in ("gamma__echo", "alpha__add"):
        assert raw_error(p, "tools/call", {"name": tool, "arguments": {"text": "x", "a": 1, "b": 2}}) == (
            -32602, refusal("Tool", tool, "dev"))
    assert raw_error(p, "prompts/get", {"name": "gamma__plain"}) == (-32602, refusal("Prompt", "gamma__plain", "dev"))
    for uri in (B_TXT, NOTE):
        assert raw_error(p, "resources/read", {"uri": uri}) == (-32002, refusal("Resource", uri, "dev"))
    assert raw_error(p, "resources/subscribe", {"uri": B_TXT}) == (-32002, refusal("Resource", B_TXT, "dev"))
    code, _ = raw_error(p, "completion/complete", {"ref": {"type": "ref/prompt", "name": "gamma__review"},
                                                   "argument": {"name": "language", "value": "p"}})
    assert code == -32602
    code, _ = raw_error(p, "completion/complete", {"ref": {"type": "ref/resource", "uri": "mcpd://gamma/gamma://notes/{id}"},
                                                   "argument": {"name": "id", "value": "4"}})
    assert code == -32602

    code, message = raw_error(p, "tools/call", {"name": "alpha__nope", "arguments": {}})
    assert code == -32602 and message.startswith('Unknown tool: "alpha__nope"'), message
    code, message = raw_error(p, "tools/call", {"name": "gamma__ech", "arguments": {}})
    assert message.startswith('Unknown tool: "gamma__ech"') and '"gamma__echo"' not in message, message
    code, message = raw_error(p, "prompts/get", {"name": "gamma__nope"})
    assert code == -32602 and message.startswith('Unknown prompt: "gamma__nope"'), message
    # The session still works after all those refusals.
    assert call_text(p, "alpha__echo", {"text": "still here"}) == "still here"


def test_stdio_role_variables(raw_mcpd, write_config, piddir, mcpd_env, state_home, tmp_path):
    """MCPD_ROLE / MCP_GATEWAY_ROLE (alpha, beta with inherit_env, gamma; catalog filled first):
    nogamma sees alpha's and beta's tools and nothing of gamma; MCP_GATEWAY_ROLE=all alone sees
    everything; MCPD_ROLE=all beats MCP_GATEWAY_ROLE=nogamma, and beta sees neither variable but the
    control variable; MCPD_ROLE=bogus is logged as undefined, lists nothing and is refused; without
    default_role and without a variable everything is visible."""
    config = write_config(config_text(three_servers(piddir), auth=None))
    open_config = write_config(config_text(three_servers(piddir), auth=None, default_role=None), name="open.yaml")
    fill_catalog(raw_mcpd, config, mcpd_env, state_home, ["alpha", "beta", "gamma"])
    everything = dict(ALL, tools=ALL["tools"] | BETA_EXPOSED)
    control = "role-test-" + secrets.token_hex(4)
    runs = {
        "nogamma": raw_mcpd(config, env=dict(mcpd_env, MCPD_ROLE="nogamma")),
        "alias": raw_mcpd(config, env=dict(mcpd_env, MCP_GATEWAY_ROLE="all")),
        "both": raw_mcpd(config, env=dict(mcpd_env, MCPD_ROLE="all", MCP_GATEWAY_ROLE="nogamma",
                                          ROLE_TEST_CONTROL=control)),
        "bogus": raw_mcpd(config, env=dict(mcpd_env, MCPD_ROLE="bogus")),
        "open": raw_mcpd(open_config, env=mcpd_env),
    }
    for p in runs.values():
        p.initialize()

    p = runs["nogamma"]
    assert raw_surface(p) == dict(NOGAMMA, tools=NOGAMMA["tools"] | BETA_EXPOSED)
    assert raw_error(p, "tools/call", {"name": "gamma__echo", "arguments": {"text": "x"}}) == (
        -32602, refusal("Tool", "gamma__echo", "nogamma"))
    assert call_text(p, "beta__echo", {"text": "b"}) == "beta:b"

    assert raw_surface(runs["alias"]) == everything

    p = runs["both"]
    assert raw_surface(p) == everything, "MCPD_ROLE=all must win over MCP_GATEWAY_ROLE=nogamma"
    assert call_text(p, "gamma__echo", {"text": "g"}) == "g"
    assert call_text(p, "beta__getenv", {"name": "ROLE_TEST_CONTROL"}) == control, "inherit_env did not pass the control"
    assert call_text(p, "beta__getenv", {"name": "MCPD_ROLE"}) == "<unset>", "MCPD_ROLE reached the backend"
    assert call_text(p, "beta__getenv", {"name": "MCP_GATEWAY_ROLE"}) == "<unset>", "MCP_GATEWAY_ROLE reached the backend"

    p = runs["bogus"]
    assert raw_surface(p) == NOTHING
    assert raw_error(p, "tools/call", {"name": "alpha__echo", "arguments": {"text": "x"}}) == (
        -32602, refusal("Tool", "alpha__echo", "bogus"))
    want = f'role "bogus" (MCPD_ROLE) is not defined in roles: of {config}: this client sees nothing'
    logged = [line for line in p.stderr_text().splitlines() if "bogus" in line]
    assert len(logged) == 1 and want in logged[0] and "error" in logged[0], logged

    assert raw_surface(runs["open"]) == everything


def test_stdio_first_run_role_session_sees_its_items(raw_mcpd, write_config, piddir, mcpd_env):
    """A first run (no catalog: the backends list for the first time while the stdio session, of the
    default role dev, waits): once initialize is answered, tools/list is dev's [alpha__echo] and
    alpha__echo may be called."""
    config = write_config(config_text(two_servers(piddir), auth=None))
    p = raw_mcpd(config, env=mcpd_env)
    p.initialize()
    tools = raw_list(p, "tools/list", "tools", "name")
    assert tools == ["alpha__echo"], f"first run, role dev: tools/list is {tools}, expected ['alpha__echo']"
    assert call_text(p, "alpha__echo", {"text": "first"}) == "first"


# --------------------------------------------------------------------------- HTTP (the SDK)


@asynccontextmanager
async def token_session(url: str, token: str, **kwargs: Any) -> AsyncIterator[ClientSession]:
    """An initialized SDK session over Streamable HTTP at `url` with `Authorization: Bearer token`."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                  timeout=httpx2.Timeout(30, read=300)) as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write, **kwargs) as session:
                await session.initialize()
                yield session


async def sdk_surface(session: ClientSession) -> dict[str, Any]:
    return {
        "tools": {t.name for t in await list_all(session.list_tools, "tools")},
        "prompts": [p.name for p in await list_all(session.list_prompts, "prompts")],
        "resources": [str(r.uri) for r in await list_all(session.list_resources, "resources")],
        "templates": [t.uri_template for t in await list_all(session.list_resource_templates, "resource_templates")],
    }


async def refused(call: Any) -> MCPError:
    with pytest.raises(MCPError) as excinfo:
        await call
    return excinfo.value


@pytest.mark.anyio
async def test_http_sessions_of_four_tokens_see_their_roles(serve, write_config, piddir, mcpd_env):
    """Four SDK sessions at /mcp open at once, mcpd started with MCPD_ROLE=nogamma and
    MCP_GATEWAY_ROLE=nogamma (not for HTTP sessions): TOK_A (all) lists and calls everything; TOK_B
    (nogamma) lists alpha's tools only and is refused gamma__echo, prompts/get gamma__greet and
    resources/read a.txt (-32002) naming nogamma; TOK_C (no role) gets dev's lists, calls
    alpha__echo and is refused gamma__echo naming dev; TOK_D (globby) gets globby's lists, reads a
    note through the template, is refused b.txt (deny over the allowed *.txt) and alpha__add (deny
    over the allowed alpha__[ae]*)."""
    mcpd_env.update(MCPD_ROLE="nogamma", MCP_GATEWAY_ROLE="nogamma")
    served = serve(write_config(config_text(two_servers(piddir))))
    with anyio.fail_after(40):
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(token_session(served.url, TOK_A))
            b = await stack.enter_async_context(token_session(served.url, TOK_B))
            c = await stack.enter_async_context(token_session(served.url, TOK_C))
            d = await stack.enter_async_context(token_session(served.url, TOK_D))
            surfaces = {name: await sdk_surface(s) for name, s in (("A", a), ("B", b), ("C", c), ("D", d))}

            a_echo = text_of(await a.call_tool("gamma__echo", {"text": "from A"}))
            a_prompt = await a.get_prompt("gamma__plain")
            b_tool = await refused(b.call_tool("gamma__echo", {"text": "from B"}))
            b_prompt = await refused(b.get_prompt("gamma__greet", {"name": "Ada"}))
            b_read = await refused(b.read_resource(A_TXT))
            b_alpha = text_of(await b.call_tool("alpha__echo", {"text": "B's alpha"}))
            c_tool = await refused(c.call_tool("gamma__echo", {"text": "from C"}))
            c_alpha = text_of(await c.call_tool("alpha__echo", {"text": "C's alpha"}))
            c_read = await c.read_resource(A_TXT)
            d_note = await d.read_resource(NOTE)
            d_b = await refused(d.read_resource(B_TXT))
            d_add = await refused(d.call_tool("alpha__add", {"a": 1, "b": 2}))
            d_sleep = text_of(await d.call_tool("alpha__sleep", {"seconds": 0}))

    assert surfaces["A"] == ALL, surfaces["A"]
    assert surfaces["B"] == NOGAMMA, surfaces["B"]
    assert surfaces["C"] == DEV, f"TOK_C (no role) must get default_role dev, not MCPD_ROLE: {surfaces['C']}"
    assert surfaces["D"] == GLOBBY, surfaces["D"]
    assert a_echo == "from A" and a_prompt.messages, a_prompt
    assert b_tool.message == refusal("Tool", "gamma__echo", "nogamma"), b_tool.message
    assert b_prompt.message == refusal("Prompt", "gamma__greet", "nogamma"), b_prompt.message
    assert (b_read.code, b_read.message) == (-32002, refusal("Resource", A_TXT, "nogamma"))
    assert b_alpha == "B's alpha" and c_alpha == "C's alpha"
    assert c_tool.message == refusal("Tool", "gamma__echo", "dev"), c_tool.message
    assert [c.text for c in c_read.contents] == ["gamma file a"], c_read
    assert json.loads(d_note.contents[0].text) == {"template": "gamma://notes/{id}", "variables": {"id": "42"}}, d_note
    assert (d_b.code, d_b.message) == (-32002, refusal("Resource", B_TXT, "globby"))
    assert d_add.message == refusal("Tool", "alpha__add", "globby"), d_add.message
    assert d_sleep == "slept 0.0", d_sleep


@pytest.mark.anyio
async def test_http_roles_at_server_views_sse_and_stateless(serve, write_config, piddir):
    """/mcp/alpha and /mcp/gamma with TOK_C (dev), TOK_B (nogamma), TOK_A (all), TOK_D (globby): lists
    under own names filtered by the role, calls refused with the role's message; /sse with TOK_B and
    TOK_C; stateless-era tools/list and tools/call with TOK_B, TOK_C and TOK_A."""
    served = serve(write_config(config_text(two_servers(piddir))))
    base = served.url
    with anyio.fail_after(40):
        async with token_session(f"{base}/alpha", TOK_C) as s:
            c_alpha = await sdk_surface(s)
            c_alpha_echo = text_of(await s.call_tool("echo", {"text": "own name"}))
            c_alpha_add = await refused(s.call_tool("add", {"a": 1, "b": 2}))
            c_alpha_unknown = await refused(s.call_tool("nope", {}))
        async with token_session(f"{base}/gamma", TOK_C) as s:
            c_gamma = await sdk_surface(s)
            c_gamma_read = await s.read_resource("file:///gamma/a.txt")
            c_gamma_b = await refused(s.read_resource("file:///gamma/b.txt"))
            c_gamma_plain = await refused(s.get_prompt("plain"))
            c_gamma_greet = await s.get_prompt("greet", {"name": "Ada"})
            c_gamma_complete = await s.complete(types.PromptReference(name="greet"), {"name": "name", "value": "b"})
            c_gamma_review = await refused(s.complete(types.PromptReference(name="review"), {"name": "language", "value": "p"}))
            c_gamma_echo = await refused(s.call_tool("echo", {"text": "x"}))
        async with token_session(f"{base}/gamma", TOK_B) as s:
            b_gamma = await sdk_surface(s)
            b_gamma_echo = await refused(s.call_tool("echo", {"text": "x"}))
        async with token_session(f"{base}/gamma", TOK_A) as s:
            a_gamma_tools = {t.name for t in await list_all(s.list_tools, "tools")}
        async with token_session(f"{base}/gamma", TOK_D) as s:
            d_gamma = await sdk_surface(s)

        async with sse_client(f"http://{HOST}:{served.port}/sse", headers={"Authorization": f"Bearer {TOK_B}"}) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                sse_b_tools = {t.name for t in await list_all(s.list_tools, "tools")}
                sse_b_echo = await refused(s.call_tool("gamma__echo", {"text": "x"}))
        async with sse_client(f"http://{HOST}:{served.port}/sse", headers={"Authorization": f"Bearer {TOK_C}"}) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                sse_c_tools = {t.name for t in await list_all(s.list_tools, "tools")}

    assert c_alpha["tools"] == {"echo"}, c_alpha
    assert c_alpha_echo == "own name"
    assert c_alpha_add.message == refusal("Tool", "add", "dev"), c_alpha_add.message
    assert c_alpha_unknown.message.startswith("Unknown tool"), c_alpha_unknown.message
    assert c_gamma == {"tools": set(), "prompts": ["greet"], "resources": ["file:///gamma/a.txt"], "templates": []}, c_gamma
    assert [c.text for c in c_gamma_read.contents] == ["gamma file a"], c_gamma_read
    assert (c_gamma_b.code, c_gamma_b.message) == (-32002, refusal("Resource", "file:///gamma/b.txt", "dev"))
    assert c_gamma_plain.message == refusal("Prompt", "plain", "dev"), c_gamma_plain.message
    assert c_gamma_greet.messages[0].content.text == "Hello, Ada!"
    assert c_gamma_complete.completion.values == ["beta", "bravo"], c_gamma_complete
    assert c_gamma_review.code == -32602, c_gamma_review
    assert c_gamma_echo.message == refusal("Tool", "echo", "dev"), c_gamma_echo.message
    assert b_gamma == {"tools": set(), "prompts": [], "resources": [], "templates": []}, b_gamma
    assert b_gamma_echo.message == refusal("Tool", "echo", "nogamma"), b_gamma_echo.message
    assert a_gamma_tools == GAMMA_TOOLS, a_gamma_tools
    assert d_gamma == {"tools": set(), "prompts": ["greet"], "resources": ["file:///gamma/a.txt", "file:///gamma/tricky.txt"],
                       "templates": ["gamma://notes/{id}"]}, d_gamma
    assert sse_b_tools == ALPHA_EXPOSED, sse_b_tools
    assert sse_b_echo.message == refusal("Tool", "gamma__echo", "nogamma"), sse_b_echo.message
    assert sse_c_tools == {"alpha__echo"}, sse_c_tools

    def stateless(token: str, method: str, params: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": "s-1", "method": method, "params": dict(params, _meta=META)}
        headers = {"Content-Type": "application/json", "Accept": BOTH, "MCP-Protocol-Version": MODERN,
                   "Mcp-Method": method, "Authorization": f"Bearer {token}"}
        if name is not None:
            headers["Mcp-Name"] = name
        reply = http_request(served.port, "POST", dumps(body), headers, timeout=30)
        assert reply.status == 200, reply
        if reply.headers.get("content-type", "").startswith("text/event-stream"):
            answers = [json.loads(data) for _, data in reply.events()]
            answers = [m for m in answers if m.get("id") == "s-1"]
            assert len(answers) == 1, reply
            return answers[0]
        return reply.json()

    listed_b = stateless(TOK_B, "tools/list", {})
    assert {t["name"] for t in listed_b["result"]["tools"]} == ALPHA_EXPOSED, listed_b
    listed_c = stateless(TOK_C, "tools/list", {})
    assert [t["name"] for t in listed_c["result"]["tools"]] == ["alpha__echo"], listed_c
    call_b = stateless(TOK_B, "tools/call", {"name": "gamma__echo", "arguments": {"text": "x"}}, name="gamma__echo")
    assert "result" not in call_b and call_b.get("error", {}).get("message") == refusal("Tool", "gamma__echo", "nogamma"), call_b
    call_a = stateless(TOK_A, "tools/call", {"name": "gamma__echo", "arguments": {"text": "stateless A"}}, name="gamma__echo")
    assert call_a.get("result", {}).get("content", [{}])[0].get("text") == "stateless A", call_a


@pytest.mark.anyio
async def test_reload_changing_a_role_changes_its_sessions_lists(serve, write_config, piddir):
    """SDK sessions of TOK_A (all), TOK_B (nogamma), TOK_C (dev) with their GET streams open; the
    config is rewritten with dev: ["alpha__a*", "gamma__*"] and SIGHUP sent. TOK_C's session gets
    tools, prompts and resources list_changed; TOK_A's and TOK_B's get none within 1 s. TOK_C then
    lists alpha__add and gamma's tools, gamma's four prompts, no resource; calls gamma__echo; is
    refused alpha__echo naming dev."""
    servers = two_servers(piddir)
    served = serve(write_config(config_text(servers)))
    inboxes = {"A": Inbox(), "B": Inbox(), "C": Inbox()}
    new_roles = ROLES.replace('dev: ["alpha__e*", "gamma__greet", "mcpd://gamma/file:///gamma/a.txt"]',
                              'dev: ["alpha__a*", "gamma__*"]')
    assert new_roles != ROLES
    with anyio.fail_after(40):
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(token_session(served.url, TOK_A, message_handler=inboxes["A"].put))
            b = await stack.enter_async_context(token_session(served.url, TOK_B, message_handler=inboxes["B"].put))
            c = await stack.enter_async_context(token_session(served.url, TOK_C, message_handler=inboxes["C"].put))
            before = {"A": await sdk_surface(a), "B": await sdk_surface(b), "C": await sdk_surface(c)}
            await anyio.sleep(0.3)  # let each client's GET stream open

            write_config(config_text(servers, roles=new_roles))
            served.proc.send_signal(signal.SIGHUP)
            for kind in (types.ToolListChangedNotification, types.PromptListChangedNotification,
                         types.ResourceListChangedNotification):
                await inboxes["C"].wait_for(kind, timeout=15)
            await anyio.sleep(1.0)
            others = {name: [type(n).__name__ for n in inboxes[name].items
                             if isinstance(n, types.ToolListChangedNotification | types.PromptListChangedNotification
                                           | types.ResourceListChangedNotification)] for name in ("A", "B")}
            after = {"A": await sdk_surface(a), "B": await sdk_surface(b), "C": await sdk_surface(c)}
            c_echo = text_of(await c.call_tool("gamma__echo", {"text": "after reload"}))
            c_alpha_echo = await refused(c.call_tool("alpha__echo", {"text": "x"}))

    assert before == {"A": ALL, "B": NOGAMMA, "C": DEV}, before
    assert after["C"] == {"tools": {"alpha__add"} | GAMMA_EXPOSED, "prompts": GAMMA_PROMPTS_EXPOSED, "resources": [],
                          "templates": []}, after["C"]
    assert after["A"] == ALL and after["B"] == NOGAMMA, after
    assert others == {"A": [], "B": []}, f"sessions of unchanged roles got list_changed: {others}"
    assert c_echo == "after reload"
    assert c_alpha_echo.message == refusal("Tool", "alpha__echo", "dev"), c_alpha_echo.message


def wait_notification(p: LineProcess, method: str, timeout: float = 15.0) -> None:
    """Reads stdout until a notification `method` arrives (other lines are dropped)."""
    deadline = time.monotonic() + timeout
    while True:
        _, msg = p.recv_message(max(0.01, deadline - time.monotonic()))
        if isinstance(msg, dict) and msg.get("method") == method:
            return


def wait_reloads(p: LineProcess, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while len(re.findall(r"mcpd: info: reloaded ", p.stderr_text())) < count:
        assert time.monotonic() < deadline, f"not {count} reloads logged:\n{p.stderr_text()[-3000:]}"
        time.sleep(0.05)


def test_reload_removing_and_restoring_a_role(raw_mcpd, write_config, piddir, mcpd_env, state_home):
    """stdio with MCPD_ROLE=dev (catalog filled first). Reload 1 (SIGHUP) removes the role dev (and
    default_role): the session gets tools/list_changed and lists nothing. Reload 2 restores both: the
    session gets tools/list_changed again, lists dev's items again and may call alpha__echo."""
    servers = two_servers(piddir)
    config = write_config(config_text(servers, auth=None))
    fill_catalog(raw_mcpd, config, mcpd_env, state_home, ["alpha", "gamma"])
    without_dev = ROLES.replace('  dev: ["alpha__e*", "gamma__greet", "mcpd://gamma/file:///gamma/a.txt"]\n', "")
    assert without_dev != ROLES
    p = raw_mcpd(config, env=dict(mcpd_env, MCPD_ROLE="dev"))
    p.initialize()
    first = raw_surface(p)

    write_config(config_text(servers, roles=without_dev, default_role=None, auth=None))
    p.proc.send_signal(signal.SIGHUP)
    wait_notification(p, "notifications/tools/list_changed")
    wait_reloads(p, 1)
    removed = raw_surface(p)
    removed_call = raw_error(p, "tools/call", {"name": "alpha__echo", "arguments": {"text": "x"}})

    write_config(config_text(servers, auth=None))
    p.proc.send_signal(signal.SIGHUP)
    wait_reloads(p, 2)
    try:
        wait_notification(p, "notifications/tools/list_changed", timeout=3)
        notified = True
    except AssertionError:
        notified = False
    restored = raw_surface(p)
    _, restored_call = p.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "back"}})[:2]

    assert first == DEV, first
    assert removed == NOTHING, removed
    assert removed_call == (-32602, refusal("Tool", "alpha__echo", "dev")), removed_call
    assert restored == DEV, (
        f"after the reload that defines dev again, the MCPD_ROLE=dev session lists {restored}, expected dev's {DEV}"
    )
    assert notified, "no tools/list_changed after the reload that defined dev again"
    assert restored_call.get("result", {}).get("content", [{}])[0].get("text") == "back", restored_call


def test_http_session_opened_during_startup_gets_its_roles_lists(mcpd_bin, write_config, piddir, mcpd_env, tmp_path,
                                                                 assert_backends_dead):
    """`mcpd serve` started here (no catalog), and a TOK_C session (default role dev) initialized as
    soon as the port accepts, while /ready is still 503 (the backends are starting). Once start-up
    settled, its tools/list is dev's [alpha__echo], and so is that of a TOK_C session opened then."""
    config = write_config(config_text(two_servers(piddir)))
    port = free_port()
    stderr_path = tmp_path / "early-serve.stderr"
    with open(stderr_path, "ab") as err:
        proc = subprocess.Popen([mcpd_bin, "serve", "-c", str(config), "--port", str(port)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, env=mcpd_env, start_new_session=True)

    def post(message: Any, sid: str | None = None) -> Reply:
        headers = {"Content-Type": "application/json", "Accept": BOTH, "Authorization": f"Bearer {TOK_C}"}
        if sid is not None:
            headers.update({"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})
        return http_request(port, "POST", dumps(message), headers, timeout=30)

    def open_session() -> str:
        reply = post(init_message())
        assert reply.status == 200, reply
        sid = reply.headers.get("mcp-session-id", "")
        assert SESSION_ID.fullmatch(sid), reply
        assert post({"jsonrpc": "2.0", "method": "notifications/initialized"}, sid).status == 202
        return sid

    def tools(sid: str) -> list[str]:
        reply = post({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}, sid)
        assert reply.status == 200, reply
        return [t["name"] for t in reply.json()["result"]["tools"]]

    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, stderr_path.read_text()[-3000:]
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, stderr_path.read_text()[-3000:]
                time.sleep(0.01)
        ready_before = http_request(port, "GET", path="/ready").status
        if ready_before == 200:
            pytest.skip("start-up settled before the first client could connect")
        early = open_session()
        deadline = time.monotonic() + 20
        while http_request(port, "GET", path="/ready").status != 200:
            assert time.monotonic() < deadline, stderr_path.read_text()[-3000:]
            time.sleep(0.05)
        early_tools = tools(early)
        later_tools = tools(open_session())
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
            code = None

    assert ready_before == 503
    assert early_tools == ["alpha__echo"], (
        f"a TOK_C (dev) session opened while the backends started lists {early_tools} once they are ready"
    )
    assert later_tools == ["alpha__echo"], f"a TOK_C (dev) session opened after start-up lists {later_tools}"
    assert code == 0, stderr_path.read_text()[-3000:]
    assert_backends_dead()
