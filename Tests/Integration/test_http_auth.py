"""`mcpd serve`: bearer tokens (`auth.tokens`), sessions bound to their token, and Origin checks.

What is tested:
- `mcpd check` on `auth.tokens`: entries `{token: "${TOK_A}", role: admin}` and a bare `"${TOK_B}"`
  are accepted (exit 0), `role` with a warning at its line that it is accepted but not acted on; a
  token of 15 characters is an error at its line (`a token of 15 characters is too easy to guess`;
  16 is enough), an empty one (an unset ${VAR}, in either form) is `has no token`, and `tokns`
  under auth is an error with `did you mean "tokens"` (exit 1, every error reported);
- with tokens, every request to /mcp (POST, GET, DELETE) and to other paths needs
  `Authorization: Bearer <one of the tokens>`: none, an unknown token, a prefix or extension of a
  token, another scheme, `Bearer` alone, or a session id without a token is 401 with
  `WWW-Authenticate: Bearer realm="mcpd"` and a JSON error; the scheme name is case-insensitive;
  either token opens a session; GET /health and GET /ready answer 200 without a token;
- a session belongs to the token that opened it: with the other valid token its id is 404 for
  POST, the GET stream and DELETE (both ways round), and afterwards its owner still uses it (calls,
  GET stream, DELETE 204);
- the official SDK client (mcp 2.3.0 `streamable_http_client` with an `httpx2.AsyncClient`
  carrying the Authorization header): initialize, list_tools, call_tool alpha__echo, DELETE on
  leaving; every HTTP response it got was a success;
- no token value is in mcpd's stderr at --log-level debug across a session with several calls
  (one echoing a token as its argument), 401s (no token, an unknown one) and a 404 for the other
  token, nor in `mcpd check`'s output, text or JSON, for a config whose errors and warnings involve
  the tokens;
- Origin without `http.allowed_origins`: `http://evil.example` (and look-alikes such as
  `http://localhost.evil.example`, `http://localhost@evil.example`, `null`) is 403 with a JSON error
  naming http.allowed_origins, also for /health and /ready and with a valid token; pages of this
  machine (`http://localhost:3000`, `http://127.0.0.1:8080`, `http://[::1]:1234`) and requests
  without Origin are served; with `allowed_origins: ["https://app.example"]` only that exact origin
  is served (localhost is 403); with `["*"]` any origin is served;
- without auth.tokens no token is needed, and a request with some Authorization header works.

mcpd is started with test_streamable_http's `serve` fixture (a free port, /health polled until the
backends are ready; SIGTERM at the end, exit 0, no backend left). Requests use raw `http.client`.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcpd_helpers import PROTOCOL_VERSION, describe, hostile, run_mcpd, server_entry, to_yaml
import test_streamable_http
from test_streamable_http import BOTH, HOST, SESSION_ID, Reply, dumps, http_request, init_message

# The `serve` fixture of test_streamable_http: `mcpd serve -c CONFIG --port N` on a free port.
serve = test_streamable_http.serve

# Distinct, recognisable values (32 characters), new for every run.
TOK_A = "tokA" + secrets.token_hex(14)
TOK_B = "tokB" + secrets.token_hex(14)
WRONG = "tokW" + secrets.token_hex(14)  # as long as the real ones, configured nowhere

AUTH_SECTION = """\
auth:
  tokens:
    - token: "${TOK_A}"
      role: admin
    - "${TOK_B}"
roles:
  admin: null
"""
BEARER_CHALLENGE = 'Bearer realm="mcpd"'


@pytest.fixture
def mcpd_env(state_home: Path) -> dict[str, str]:
    """The environment of every mcpd in this module: TOK_A and TOK_B set (TOK_UNSET not)."""
    env = dict(os.environ, TOK_A=TOK_A, TOK_B=TOK_B)
    env.pop("TOK_UNSET", None)
    return env


def config_text(servers: dict[str, Any], auth: str | None = AUTH_SECTION, http: dict[str, Any] | None = None) -> str:
    text = to_yaml({"servers": servers}) + "\n"
    if http is not None:
        text += to_yaml({"http": http}) + "\n"
    if auth is not None:
        text += auth
    return text


def plain(write_config: Callable[..., Path], piddir: Path, auth: str | None = AUTH_SECTION, **http: Any) -> Path:
    """One eager raw backend `h` (hostile plain: tools echo, ...), with the auth section."""
    return write_config(config_text({"h": hostile(piddir, "plain", lazy=False)}, auth, http or None))


# --------------------------------------------------------------------------- raw requests


def request(port: int, method: str, path: str = "/mcp", body: Any = None, *, token: str | None = None,
            authorization: str | None = None, session: str | None = None, origin: str | None = None,
            accept: str | None = None) -> Reply:
    """One request; `token` gives `Authorization: Bearer <token>`, `authorization` the header verbatim."""
    headers: dict[str, str] = {}
    if body is not None:
        headers["Content-Type"] = "application/json"
        if not isinstance(body, str | bytes):
            body = dumps(body)
    if method in ("POST", "GET") and path == "/mcp":
        headers["Accept"] = accept or (BOTH if method == "POST" else "text/event-stream")
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if authorization is not None:
        headers["Authorization"] = authorization
    if session is not None:
        headers["Mcp-Session-Id"] = session
        headers["MCP-Protocol-Version"] = PROTOCOL_VERSION
    if origin is not None:
        headers["Origin"] = origin
    return http_request(port, method, body, headers, path=path)


def open_session(port: int, token: str | None = None, **kw: Any) -> str:
    """initialize (+ notifications/initialized); the Mcp-Session-Id."""
    reply = request(port, "POST", body=init_message(), token=token, **kw)
    assert reply.status == 200, reply
    sid = reply.headers.get("mcp-session-id", "")
    assert SESSION_ID.fullmatch(sid), reply
    assert reply.json()["result"]["serverInfo"]["name"] == "mcpd", reply
    done = request(port, "POST", body={"jsonrpc": "2.0", "method": "notifications/initialized"}, token=token,
                   session=sid, **kw)
    assert done.status == 202, done
    return sid


def rpc(port: int, sid: str, token: str | None, method: str, params: Any = None, id: Any = 7, **kw: Any) -> Reply:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        message["params"] = params
    return request(port, "POST", body=message, token=token, session=sid, **kw)


def echo(port: int, sid: str, token: str | None, text: str, tool: str = "h__echo", **kw: Any) -> str:
    reply = rpc(port, sid, token, "tools/call", {"name": tool, "arguments": {"text": text}}, **kw)
    assert reply.status == 200, reply
    answer = reply.json()
    assert "result" in answer, answer
    return answer["result"]["content"][0]["text"]


def stream_status(port: int, sid: str, token: str | None) -> tuple[int, bytes]:
    """Opens the session's GET stream, reads only the status (and a refusal's body), closes it."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        headers = {"Accept": "text/event-stream", "Mcp-Session-Id": sid}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        conn.request("GET", "/mcp", headers=headers)
        response = conn.getresponse()
        body = response.read() if response.status != 200 else b""
        return response.status, body
    except (TimeoutError, socket.timeout):
        raise AssertionError("no answer to the GET stream request within 10 s") from None
    finally:
        conn.close()


def assert_401(reply: Reply, what: str) -> None:
    assert reply.status == 401, f"{what}: {reply}"
    assert reply.headers.get("www-authenticate") == BEARER_CHALLENGE, f"{what}: {reply}"
    assert reply.headers.get("content-type", "").startswith("application/json"), f"{what}: {reply}"
    error = reply.json().get("error")
    assert isinstance(error, str) and "token" in error, f"{what}: {reply}"


def assert_403_origin(reply: Reply, origin: str) -> None:
    assert reply.status == 403, f"Origin {origin}: {reply}"
    assert reply.headers.get("content-type", "").startswith("application/json"), reply
    error = reply.json().get("error")
    assert isinstance(error, str) and "http.allowed_origins" in error and origin in error, reply


def line_of(text: str, needle: str) -> int:
    """The 1-based number of the only line of `text` containing `needle`."""
    numbers = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(numbers) == 1, (needle, text)
    return numbers[0]


# --------------------------------------------------------------------------- mcpd check


def test_check_accepts_both_token_forms_and_checks_the_role(mcpd_bin, write_config, piddir, mcpd_env):
    """`auth: {tokens: [{token: "${TOK_A}", role: admin}, "${TOK_B}"]}` with `roles: {admin: null}`
    passes `mcpd check` (exit 0, also with --json: ok, no errors) with no warning about auth or
    roles. Without the roles section the same tokens fail `mcpd check` (exit 1) with an error at
    the role's line and column: `auth.tokens[0].role names role "admin", which roles: does not
    define`."""
    text = config_text({"h": hostile(piddir, "plain")})
    config = write_config(text)
    proc = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 0, describe(proc)
    assert [line for line in proc.stderr.splitlines() if "auth" in line or "role" in line] == [], describe(proc)
    proc = run_mcpd(mcpd_bin, "check", "--json", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 0, describe(proc)
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["errors"] == [], doc
    assert [w for w in doc["warnings"] if "auth" in w or "role" in w] == [], doc

    text = config_text({"h": hostile(piddir, "plain")}).replace("roles:\n  admin: null\n", "")
    config = write_config(text)
    role_line = line_of(text, "role: admin")
    proc = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 1, describe(proc)
    assert f'mcpd.yaml:{role_line}:13: auth.tokens[0].role names role "admin", which roles: does not define' in proc.stdout + proc.stderr, describe(proc)


def test_check_accepts_a_token_of_exactly_16_characters(mcpd_bin, write_config, piddir, mcpd_env):
    """16 characters is long enough: `mcpd check` exits 0 for a bare token of 16 characters."""
    config = write_config(config_text({"h": hostile(piddir, "plain")}, auth='auth:\n  tokens: ["${TOK_16}"]\n'))
    proc = run_mcpd(mcpd_bin, "check", "-c", str(config), env=dict(mcpd_env, TOK_16="0123456789abcdef"))
    assert proc.returncode == 0, describe(proc)
    assert "0123456789abcdef" not in proc.stdout + proc.stderr, describe(proc)


def test_check_reports_short_empty_and_misspelled_auth_entries_at_their_lines(mcpd_bin, write_config, piddir, mcpd_env):
    """`mcpd check` exits 1 and reports every error at its line: a token of 15 characters (bare, and
    as `token:`) `is too easy to guess`, an unset ${VAR} (bare, and as `token:`) `has no token`, and
    the key `tokns` under auth is unknown with `did you mean "tokens"`. The short value is printed
    nowhere. --json lists the same errors with ok false."""
    auth = """\
auth:
  tokens:
    - token: "${TOK_A}"
    - "${TOK_SHORT}"
    - token: "${TOK_SHORT}"
    - "${TOK_UNSET}"
    - token: "${TOK_UNSET}"
      role: reader
  tokns: []
"""
    text = config_text({"h": hostile(piddir, "plain")}, auth=auth)
    config = write_config(text)
    lines = text.splitlines()
    bare_short = lines.index('    - "${TOK_SHORT}"') + 1
    keyed_short = lines.index('    - token: "${TOK_SHORT}"') + 1
    bare_unset = lines.index('    - "${TOK_UNSET}"') + 1
    keyed_unset = lines.index('    - token: "${TOK_UNSET}"') + 1
    tokns = lines.index("  tokns: []") + 1
    short = "s" * 15
    env = dict(mcpd_env, TOK_SHORT=short)
    expected = [
        f"mcpd.yaml:{bare_short}:7: auth.tokens[1]: a token of 15 characters is too easy to guess",
        f"mcpd.yaml:{keyed_short}:14: auth.tokens[2]: a token of 15 characters is too easy to guess",
        f"mcpd.yaml:{bare_unset}:7: auth.tokens[3] has no token",
        f"mcpd.yaml:{keyed_unset}:14: auth.tokens[4] has no token",
        f"mcpd.yaml:{tokns}:3: unknown key auth.tokns; did you mean \"tokens\"?",
    ]

    proc = run_mcpd(mcpd_bin, "check", "-c", str(config), env=env)
    assert proc.returncode == 1, describe(proc)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("mcpd: error: ")]
    for want in expected:
        assert len([e for e in errors if want in e]) == 1, f"no error {want!r}\n{describe(proc)}"
    assert len(errors) == len(expected), describe(proc)
    assert short not in proc.stdout + proc.stderr, describe(proc)

    proc = run_mcpd(mcpd_bin, "check", "--json", "-c", str(config), env=env)
    assert proc.returncode == 1, describe(proc)
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False, doc
    for want in expected:
        assert len([e for e in doc["errors"] if want in e]) == 1, f"no error {want!r} in {doc['errors']}"
    assert short not in proc.stdout + proc.stderr, describe(proc)


# --------------------------------------------------------------------------- 401


def test_requests_without_a_valid_bearer_token_get_401(serve, write_config, piddir):
    """With auth.tokens, POST/GET/DELETE /mcp and other paths without a valid token are 401 with
    `WWW-Authenticate: Bearer realm="mcpd"` and a JSON error: no Authorization, an unknown token, a
    token less its last character or plus one, the token under another scheme, `Bearer` alone, the
    token without a scheme. A session id with no or a wrong token is 401 too, not 404. None opens a
    session. GET /health and /ready are 200 without a token (and with a wrong one)."""
    served = serve(plain(write_config, piddir))
    init = init_message()
    bad: list[tuple[str, dict[str, Any]]] = [
        ("no Authorization", {}),
        ("unknown token", {"token": WRONG}),
        ("a prefix of a token", {"token": TOK_A[:-1]}),
        ("a token and one more character", {"token": TOK_A + "x"}),
        ("the other token's prefix", {"token": TOK_B[:16]}),
        ("Basic scheme", {"authorization": "Basic " + base64.b64encode(f"user:{TOK_A}".encode()).decode()}),
        ("Token scheme", {"authorization": f"Token {TOK_A}"}),
        ("Bearer alone", {"authorization": "Bearer"}),
        ("Bearer and a space", {"authorization": "Bearer "}),
        ("no scheme", {"authorization": TOK_A}),
        ("empty header", {"authorization": ""}),
    ]
    for what, kw in bad:
        assert_401(request(served.port, "POST", body=init, **kw), f"POST initialize, {what}")
    for what, kw in bad[:3]:
        assert_401(request(served.port, "GET", **kw), f"GET /mcp, {what}")
        assert_401(request(served.port, "DELETE", **kw), f"DELETE /mcp, {what}")
        for path in ("/sse", "/nowhere", "/mcp/h"):
            assert_401(request(served.port, "GET", path, **kw), f"GET {path}, {what}")
    assert served.http_sessions() == 0

    sid = open_session(served.port, TOK_A)
    assert_401(rpc(served.port, sid, None, "ping"), "ping with the session id and no token")
    assert_401(rpc(served.port, sid, WRONG, "ping"), "ping with the session id and an unknown token")
    assert_401(request(served.port, "GET", session=sid), "GET stream with the session id and no token")
    assert_401(request(served.port, "DELETE", session=sid, token=WRONG), "DELETE with an unknown token")
    assert rpc(served.port, sid, TOK_A, "ping").json() == {"jsonrpc": "2.0", "id": 7, "result": {}}
    assert served.http_sessions() == 1

    for path in ("/health", "/ready"):
        for kw in ({}, {"token": WRONG}):
            reply = request(served.port, "GET", path, **kw)
            assert reply.status == 200, f"GET {path} {kw}: {reply}"
            assert "www-authenticate" not in reply.headers, reply
    assert request(served.port, "GET", "/health").json()["sessions"]["http"] == 1


def test_either_token_works_and_the_scheme_is_case_insensitive(serve, write_config, piddir):
    """Both configured tokens (the {token, role} entry and the bare one) open sessions that call
    tools; `bearer`, `BEARER` and `bEaReR` work like `Bearer`."""
    served = serve(plain(write_config, piddir))
    for token in (TOK_A, TOK_B):
        sid = open_session(served.port, token)
        assert echo(served.port, sid, token, f"hello {token[:4]}") == f"hello {token[:4]}"
    for scheme in ("bearer", "BEARER", "bEaReR"):
        auth = f"{scheme} {TOK_B}"
        sid = open_session(served.port, authorization=auth)
        assert echo(served.port, sid, None, scheme, authorization=auth) == scheme
        reply = rpc(served.port, sid, None, "tools/list", authorization=auth)
        assert reply.status == 200 and "h__echo" in {t["name"] for t in reply.json()["result"]["tools"]}, reply
    assert served.http_sessions() == 5


# --------------------------------------------------------------------------- sessions and tokens


def test_a_session_belongs_to_the_token_that_opened_it(serve, write_config, piddir):
    """A session opened with TOK_A, used with TOK_B (valid, but not its opener), is 404 for POST (a
    request and a notification), the GET stream and DELETE, and the same holds the other way round
    for a session of TOK_B; none of that ends or disturbs it: its owner then calls tools, opens its
    GET stream (200) and DELETEs it (204), after which it is 404 for its owner too."""
    served = serve(plain(write_config, piddir))
    a = open_session(served.port, TOK_A)
    b = open_session(served.port, TOK_B)
    for sid, owner, other in ((a, TOK_A, TOK_B), (b, TOK_B, TOK_A)):
        reply = rpc(served.port, sid, other, "ping")
        assert reply.status == 404, f"ping with the other token: {reply}"
        reply = rpc(served.port, sid, other, "tools/call", {"name": "h__echo", "arguments": {"text": "x"}})
        assert reply.status == 404, f"tools/call with the other token: {reply}"
        reply = request(served.port, "POST", body={"jsonrpc": "2.0", "method": "notifications/initialized"},
                        token=other, session=sid)
        assert reply.status == 404, f"notification with the other token: {reply}"
        status, body = stream_status(served.port, sid, other)
        assert status == 404, f"GET stream with the other token: {status} {body!r}"
        reply = request(served.port, "DELETE", token=other, session=sid)
        assert reply.status == 404, f"DELETE with the other token: {reply}"
    assert served.http_sessions() == 2

    for sid, owner in ((a, TOK_A), (b, TOK_B)):
        assert rpc(served.port, sid, owner, "ping").json().get("result") == {}
        assert echo(served.port, sid, owner, f"still mine {sid[:8]}") == f"still mine {sid[:8]}"
        status, body = stream_status(served.port, sid, owner)
        assert status == 200, f"GET stream of its owner: {status} {body!r}"

    reply = request(served.port, "DELETE", token=TOK_A, session=a)
    assert reply.status == 204 and reply.body == b"", reply
    served.wait_log(re.escape(f"http session {a[:8]} ended by its client"))
    assert rpc(served.port, a, TOK_A, "ping").status == 404
    assert echo(served.port, b, TOK_B, "b lives on") == "b lives on"
    assert served.http_sessions() == 1


# --------------------------------------------------------------------------- the SDK client


@pytest.mark.anyio
async def test_sdk_client_with_a_bearer_token(serve, write_config, piddir):
    """The SDK's streamable_http_client with an httpx2.AsyncClient whose headers carry
    `Authorization: Bearer TOK_A`: initialize (2025-11-25, server mcpd), list_tools (alpha's tools,
    alpha__echo among them), call_tool alpha__echo returning its text byte for byte; leaving sends
    DELETE, answered 204. Every HTTP response the client got was 2xx."""
    served = serve(write_config(config_text({"alpha": server_entry("alpha", piddir)})))
    seen: list[tuple[str, int]] = []

    async def on_response(response: httpx2.Response) -> None:
        seen.append((response.request.method, response.status_code))

    with anyio.fail_after(30):
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOK_A}"}, timeout=httpx2.Timeout(30, read=300),
                                      event_hooks={"response": [on_response]}) as client:
            async with streamable_http_client(served.url, http_client=client) as (read, write):
                async with ClientSession(read, write) as session:
                    init = await session.initialize()
                    assert init.protocol_version == PROTOCOL_VERSION
                    assert init.server_info.name == "mcpd"
                    names = {t.name for t in (await session.list_tools()).tools}
                    assert "alpha__echo" in names and all(n.startswith("alpha__") for n in names), names
                    for text in ("with a token", "caf\u00e9 \U0001f389 \"q\" \\ \n"):
                        res = await session.call_tool("alpha__echo", {"text": text})
                        assert res.is_error is False, res
                        assert res.content[0].text == text
                    assert served.http_sessions() == 1

    assert ("POST", 200) in seen, seen
    assert ("DELETE", 204) in seen, seen
    assert all(200 <= status < 300 for _, status in seen), seen
    served.wait_log(r"http session [0-9a-f]{8} ended by its client")
    assert served.http_sessions() == 0


# --------------------------------------------------------------------------- tokens are never logged


def test_tokens_never_appear_in_the_debug_log(serve, write_config, piddir):
    """At --log-level debug, across two sessions (one per token) with tools/list and several
    tools/call (one echoing TOK_A as its argument, which comes back unchanged; one making alpha
    write TOK_B on its stderr, which mcpd relays as `shouting ***`), 401s (no token, an unknown
    token), a 404 for the other token and a DELETE, up to mcpd's exit: its stderr holds neither
    token nor the unknown one offered, while it does log the calls (debug lines naming the session)."""
    config = write_config(config_text({"h": hostile(piddir, "plain", lazy=False), "alpha": server_entry("alpha", piddir)}))
    served = serve(config, "--log-level", "debug")
    a = open_session(served.port, TOK_A)
    b = open_session(served.port, TOK_B)
    assert rpc(served.port, a, TOK_A, "tools/list").status == 200
    for i in range(3):
        assert echo(served.port, a, TOK_A, f"call {i}") == f"call {i}"
    assert echo(served.port, a, TOK_A, f"the token is {TOK_A}") == f"the token is {TOK_A}"
    assert echo(served.port, b, TOK_B, f"and {TOK_B}") == f"and {TOK_B}"
    shout = rpc(served.port, b, TOK_B, "tools/call", {"name": "alpha__shout", "arguments": {"line": f"shouting {TOK_B}"}})
    assert shout.status == 200 and shout.json()["result"]["content"][0]["text"] == "ok", shout
    served.wait_log(re.escape("shouting ***"))
    assert_401(rpc(served.port, a, None, "ping"), "no token")
    assert_401(rpc(served.port, a, WRONG, "ping"), "unknown token")
    assert rpc(served.port, a, TOK_B, "ping").status == 404
    assert request(served.port, "DELETE", token=TOK_B, session=b).status == 204
    served.wait_log(re.escape(f"http:{a[:8]}") + r".*tools/call")
    served.wait_log(re.escape(f"http session {b[:8]} ended by its client"))
    assert served.stop() == 0
    stderr = served.stderr_text()
    assert "tools/call" in stderr and f"http:{b[:8]}" in stderr, stderr[-3000:]
    for name, value in (("TOK_A", TOK_A), ("TOK_B", TOK_B), ("the unknown token", WRONG)):
        leaks = [line for line in stderr.splitlines() if value in line or value[4:20] in line]
        assert not leaks, f"{name} is in mcpd's log:\n" + "\n".join(leaks)


def test_check_never_prints_a_token(mcpd_bin, write_config, piddir, mcpd_env, tmp_path):
    """`mcpd check` (text at --log-level debug, and --json) on a config whose errors involve the
    tokens (a command path and a cwd built from them, a token also passed as an argument): exit 1,
    the errors shown with `***`, no token value anywhere. The same without the roles section, whose
    error is about a token entry (its role is not defined): exit 1, that error, no token value."""
    text = config_text({
        "h": hostile(piddir, "plain", lazy=False),
        "ghost": {"command": "/nonexistent/${TOK_A}/server", "args": ["--key=${TOK_B}"]},
        "lost": {"command": "sh", "cwd": str(tmp_path / "missing-${TOK_B}")},
    })
    for case, body in (("launch", text), ("role", text.replace("roles:\n  admin: null\n", ""))):
        config = write_config(body)
        for args in (["check", "--log-level", "debug"], ["check", "--json"]):
            proc = run_mcpd(mcpd_bin, *args, "-c", str(config), env=mcpd_env)
            assert proc.returncode == 1, describe(proc)
            out = proc.stdout + proc.stderr
            if case == "launch":
                assert '"/nonexistent/***/server"' in out or '\\"/nonexistent/***/server\\"' in out, describe(proc)
                assert "missing-***" in out, describe(proc)
            else:
                assert "auth.tokens[0].role names role" in out, describe(proc)
            for name, value in (("TOK_A", TOK_A), ("TOK_B", TOK_B)):
                leaks = [line for line in out.splitlines() if value in line or value[4:20] in line]
                assert not leaks, f"`mcpd {' '.join(args)}` prints {name}:\n" + "\n".join(leaks)


# --------------------------------------------------------------------------- Origin


REFUSED_BY_DEFAULT = ["http://evil.example", "https://evil.example:443", "http://localhost.evil.example",
                      "http://127.0.0.1.evil.example", "http://localhost@evil.example", "null"]
LOCAL_ORIGINS = ["http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]:1234", "http://localhost"]


def test_default_origin_check_serves_only_this_machines_pages(serve, write_config, piddir):
    """Without http.allowed_origins (and without tokens): an Origin of another site, or one that only
    looks local (`http://localhost.evil.example`, `http://localhost@evil.example`, `null`), is 403
    with a JSON error naming the origin and http.allowed_origins, for POST /mcp, GET /health and GET
    /ready, and opens no session; `http://localhost:3000`, `http://127.0.0.1:8080`, `http://[::1]:1234`
    and no Origin at all are served (a session opened, used and probes answered)."""
    served = serve(plain(write_config, piddir, auth=None))
    for origin in REFUSED_BY_DEFAULT:
        assert_403_origin(request(served.port, "POST", body=init_message(), origin=origin), origin)
        for path in ("/health", "/ready"):
            assert_403_origin(request(served.port, "GET", path, origin=origin), origin)
    assert served.http_sessions() == 0
    sid = open_session(served.port)
    for origin in REFUSED_BY_DEFAULT[:2]:
        assert_403_origin(rpc(served.port, sid, None, "ping", origin=origin), origin)
    for origin in LOCAL_ORIGINS:
        own = open_session(served.port, origin=origin)
        assert echo(served.port, own, None, origin, origin=origin) == origin
        assert echo(served.port, sid, None, origin, origin=origin) == origin
        for path in ("/health", "/ready"):
            reply = request(served.port, "GET", path, origin=origin)
            assert reply.status == 200, f"GET {path} from {origin}: {reply}"
    assert echo(served.port, sid, None, "no origin") == "no origin"
    assert served.http_sessions() == 1 + len(LOCAL_ORIGINS)


def test_a_refused_origin_is_403_even_with_a_valid_token(serve, write_config, piddir):
    """With auth.tokens and no allowed_origins: `Origin: http://evil.example` with TOK_A is 403 (POST
    /mcp and GET /health); the same request from `http://localhost:3000` with TOK_A is served."""
    served = serve(plain(write_config, piddir))
    origin = "http://evil.example"
    assert_403_origin(request(served.port, "POST", body=init_message(), token=TOK_A, origin=origin), origin)
    assert_403_origin(request(served.port, "GET", "/health", token=TOK_A, origin=origin), origin)
    sid = open_session(served.port, TOK_A, origin="http://localhost:3000")
    assert echo(served.port, sid, TOK_A, "local page", origin="http://localhost:3000") == "local page"


def test_allowed_origins_lists_exactly_the_origins_served(serve, write_config, piddir):
    """`http: {allowed_origins: ["https://app.example"]}`: that origin is served; `http://localhost:3000`,
    `http://app.example` and `https://app.example:8443` are 403 (for /health too); no Origin is served."""
    served = serve(plain(write_config, piddir, auth=None, allowed_origins=["https://app.example"]))
    sid = open_session(served.port, origin="https://app.example")
    assert echo(served.port, sid, None, "app", origin="https://app.example") == "app"
    assert request(served.port, "GET", "/health", origin="https://app.example").status == 200
    for origin in ("http://localhost:3000", "http://app.example", "https://app.example:8443", "http://evil.example"):
        assert_403_origin(request(served.port, "POST", body=init_message(), origin=origin), origin)
        assert_403_origin(rpc(served.port, sid, None, "ping", origin=origin), origin)
        assert_403_origin(request(served.port, "GET", "/health", origin=origin), origin)
    assert echo(served.port, sid, None, "no origin") == "no origin"
    assert served.http_sessions() == 1


def test_allowed_origins_star_serves_any_origin(serve, write_config, piddir):
    """`http: {allowed_origins: ["*"]}`: `http://evil.example`, `null` and `http://localhost:3000`
    are all served (a session opened and used each, /health 200)."""
    served = serve(plain(write_config, piddir, auth=None, allowed_origins=["*"]))
    for origin in ("http://evil.example", "null", "http://localhost:3000", "https://app.example"):
        sid = open_session(served.port, origin=origin)
        assert echo(served.port, sid, None, origin, origin=origin) == origin
        reply = request(served.port, "GET", "/health", origin=origin)
        assert reply.status == 200, f"/health from {origin}: {reply}"


# --------------------------------------------------------------------------- without tokens


def test_without_tokens_no_authorization_is_needed(serve, write_config, piddir):
    """Without auth.tokens: a session opened without Authorization works, as do requests carrying
    some Authorization header (a Bearer token, a Basic one) — in that session and in one opened with
    such a header and then used without one; no response is 401."""
    served = serve(plain(write_config, piddir, auth=None))
    sid = open_session(served.port)
    assert echo(served.port, sid, None, "plain") == "plain"
    assert echo(served.port, sid, WRONG, "with a bearer token") == "with a bearer token"
    assert echo(served.port, sid, None, "basic", authorization="Basic dXNlcjpwYXNz") == "basic"
    other = open_session(served.port, WRONG)
    assert echo(served.port, other, None, "opened with a token, used without") == "opened with a token, used without"
    assert echo(served.port, other, TOK_A, "and with another") == "and with another"
    status, body = stream_status(served.port, other, None)
    assert status == 200, (status, body)
    assert request(served.port, "DELETE", session=other, token=TOK_B).status == 204
    assert served.http_sessions() == 1
