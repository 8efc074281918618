"""Command tools (`command_tools:`): tools of mcpd's own that run a program, with no MCP server.

What is tested:
- `mcpd check`: a config with only command_tools (no servers section) passes (exit 0). A config
  with one of each mistake exits 1 naming every one, with its line where it has one: a command that
  is a string, an empty command, a name containing the separator "__", a name with a character
  outside [A-Za-z0-9_-], a meta tool's name (gateway_invoke), an input_schema of type array, output
  `yaml`, and an unknown key `timout` (with `did you mean "timeout"`); `--json` gives the same errors.
- tools/list (stdio, command tools only): each tool under its own name, in config order, with its
  description and its inputSchema exactly as written in YAML: plain true/false/null/numbers keep
  their JSON type, quoted "true"/"1"/"null" stay strings; a tool without input_schema lists
  {"type": "object"}.
- stdin: the call's `arguments` reach the program byte for byte as the client sent them (escapes
  such as \\u00e9, \\/, surrogate pairs, \\u0000, raw multi-byte UTF-8, 1e400, -0.0, a 20-digit
  integer, odd whitespace inside), then one "\\n"; absent and null arguments are `{}\\n`.
- argv is not a shell: `$HOME; echo pwned` reaches printf as it is; multi-byte stdout comes back
  byte for byte as the result text.
- output: json: an object is the text (its JSON) and structuredContent; an array is the text only
  (no structuredContent); stdout that is not JSON, or two JSON values, is an isError result.
- failures: exit 3 is isError `command tool "fails" failed (status 3): <stderr>`; a long stderr
  gives its tail (the last line, not the first); a program killed by SIGTERM is isError naming it; a
  program that does not exist (absolute path, and a relative path resolved against the config's
  folder) is isError `could not start`.
- timeout: `timeout: 1s` on `sh -c "sleep 30 & sleep 30 & wait"` is isError `command tool "hang"
  did not finish within 1 s (its timeout); its process group was killed` after about 1 s, and
  neither sleep (nor sh) survives; without `timeout` the tool gets gateway.request_timeout (1.5 s
  here: "within 1.5 s"); both run at once.
- max_output 1KiB: exactly 1024 bytes is a success with all 1024; 1025 bytes and an endless `yes`
  are isError `wrote more than max_output (1024 bytes) on stdout` (the endless one well before its
  20 s timeout).
- concurrency: two calls of a 1 s sleep answered in about 1 s in all.
- paths: `./tools/where.sh` is relative to the config's folder (mcpd runs elsewhere); `cwd:` sets
  the program's working directory.
- environment: the program sees only PATH, HOME, USER, LOGNAME, LANG, TERM, TZ, TMPDIR, SHELL,
  LC_*, XDG_* and MCPD_DEPTH of mcpd's environment, plus its `env:` (SECRET_X set for mcpd does not
  reach it; env: TZ replaces mcpd's TZ, once); MCPD_DEPTH is mcpd's depth + 1.
- roles: roles {r: ["tool_a"]} with MCPD_ROLE=r lists tool_a only, runs tool_a, and refuses tool_b
  with `Tool "tool_b" is not available to role "r"`; without a role both are listed.
- meta mode: tools/list is the four meta tools; gateway_search_tools finds the command tool with
  server "mcpd"; gateway_list_tools {server: mcpd} lists it; gateway_invoke {server: "mcpd", tool,
  arguments} runs it (the arguments reach stdin as JSON); a direct tools/call of its name runs too.
- a client that closes its input: mcpd exits and the running program's process group is killed.
- HTTP (`mcpd serve` with alpha): /mcp lists alpha's tools then the command tools (config order);
  a raw POST tools/call in a session delivers escape-dense arguments byte for byte; a stateless-era
  (2026-07-28) POST with Mcp-Name runs a command tool; /mcp/alpha lists no command tool and calling
  one there is an error "Unknown tool".

stdio tests drive `mcpd stdio` with raw JSON lines (conftest's raw_mcpd) so the exact bytes sent
are under control; HTTP tests use test_streamable_http's `serve` fixture.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcpd_helpers import ALPHA_TOOLS, LineProcess, describe, pid_is_alive, run_mcpd, server_entry
from test_http_server_view import META, MODERN, PathSession
from test_streamable_http import (  # noqa: F401  (serve is a fixture)
    BOTH,
    Reply,
    http_request,
    serve,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

# Escape-dense and multi-byte arguments, as raw JSON text (exactly these bytes are sent).
DENSE_ARGUMENTS = (
    r'{"text":"tab\there \"q\" \\ \/ \u00e9 \ud83d\ude00 \u0000 \b\f\n\r \u2028",'
    '"raw":"h\u00e9llo \u6f22\u5b57 \U0001f680",'
    r'"n":[1e400,-0.0,12345678901234567890,1.50,0],'
    r'"nested" : { "a" :null,"b":true , "c":false,"d":{}} , "sp":[ ]}'
)


# --------------------------------------------------------------------------- helpers


def yaml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def start(raw_mcpd: Callable[..., LineProcess], config: Path, env: dict[str, str] | None = None) -> LineProcess:
    p = raw_mcpd(config, env=env)
    p.initialize()
    return p


def call_raw(p: LineProcess, params_text: str, timeout: float = 10.0) -> dict[str, Any]:
    """tools/call with params given as raw JSON text; the response message."""
    request_id = p.new_id()
    p.send_raw('{"jsonrpc":"2.0","id":' + str(request_id) + ',"method":"tools/call","params":' + params_text + "}")
    _, msg = p.recv_response(timeout)
    assert msg.get("id") == request_id, msg
    return msg


def call(p: LineProcess, name: str, arguments: Any = None, timeout: float = 10.0) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name}
    if arguments is not None:
        params["arguments"] = arguments
    return call_raw(p, json.dumps(params, ensure_ascii=False, separators=(",", ":")), timeout)


def result_of(msg: dict[str, Any]) -> dict[str, Any]:
    assert "result" in msg and "error" not in msg, f"expected a result, got {msg}"
    return msg["result"]


def ok_text(msg: dict[str, Any]) -> str:
    result = result_of(msg)
    assert not result.get("isError"), f"expected a successful result, got {msg}"
    content = result["content"]
    assert len(content) == 1 and content[0]["type"] == "text", msg
    return content[0]["text"]


def error_text(msg: dict[str, Any]) -> str:
    result = result_of(msg)
    assert result.get("isError") is True, f"expected an isError result, got {msg}"
    content = result["content"]
    assert len(content) == 1 and content[0]["type"] == "text", msg
    return content[0]["text"]


def list_tools(p: LineProcess) -> list[dict[str, Any]]:
    _, msg, _ = p.request("tools/list")
    assert "result" in msg, msg
    assert msg["result"].get("nextCursor") is None, msg
    return msg["result"]["tools"]


def read_pids(path: Path, count: int, timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        if path.exists():
            pids = [int(x) for x in path.read_text().split()]
            if len(pids) >= count:
                return pids
        assert time.monotonic() < deadline, f"{path} has not {count} pids within {timeout} s"
        time.sleep(0.02)


def wait_dead(pids: list[int], timeout: float = 3.0) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = [pid for pid in pids if pid_is_alive(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if pid_is_alive(pid)]
    for pid in alive:  # never leak a sleep into the rest of the run
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    return alive


def writer_tool(out: Path) -> str:
    """YAML for a tool `dump` that writes its stdin to `out` and prints nothing."""
    return f"""\
  dump:
    command: ["sh", "-c", "cat > \\"$OUT\\""]
    description: "Writes its stdin to a file"
    env: {{OUT: {yaml_str(str(out))}}}
"""


# --------------------------------------------------------------------------- mcpd check


def test_check_accepts_a_config_of_command_tools_only(mcpd_bin, write_config, mcpd_env):
    """A config whose only section is command_tools passes `mcpd check` (exit 0, --json ok)."""
    config = write_config('command_tools:\n  hello:\n    command: ["echo", "hi"]\n    description: "Says hi"\n')
    proc = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 0, describe(proc)
    proc = run_mcpd(mcpd_bin, "check", "--json", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 0, describe(proc)
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["errors"] == [], doc


def test_check_names_every_command_tool_mistake(mcpd_bin, write_config, mcpd_env):
    """One config with a mistake per tool: `mcpd check` exits 1 and names each (at its line where
    the error has one): command not a list, empty command, "__" in a name, a name with a dot, a meta
    tool's name, input_schema of type array, output yaml, unknown key timout (did you mean timeout).
    `--json` lists the same errors. The good tool beside them is not named."""
    text = """\
command_tools:
  good_one:
    command: ["echo", "ok"]
  not_list:
    command: "echo hi"
  empty_cmd:
    command: []
  a__b:
    command: ["echo"]
  bad.name:
    command: ["echo"]
  gateway_invoke:
    command: ["echo"]
  bad_schema:
    command: ["echo"]
    input_schema: {type: array}
  bad_output:
    command: ["echo"]
    output: yaml
  typo:
    command: ["echo"]
    timout: 1s
"""
    config = write_config(text)
    lines = text.splitlines()

    def line_of(fragment: str) -> int:
        (index,) = [i for i, line in enumerate(lines) if fragment in line]
        return index + 1

    # (what must appear in one error, the line it must name or None)
    expected = [
        (("command_tools.not_list.command", "list"), line_of('command: "echo hi"')),
        (("command_tools.empty_cmd.command",), line_of("command: []")),
        (('"a__b"', "separator"), None),
        (('"bad.name"',), None),
        (('"gateway_invoke"', "meta"), None),
        (("command_tools.bad_schema.input_schema", "object"), line_of("{type: array}")),
        (("command_tools.bad_output.output", "text or json"), line_of("output: yaml")),
        (('unknown key "timout"', 'did you mean "timeout"'), line_of("timout: 1s")),
    ]
    proc = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 1, describe(proc)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("mcpd: error: ")]
    for fragments, line in expected:
        matching = [e for e in errors if all(f in e for f in fragments)]
        assert len(matching) == 1, f"no single error containing {fragments}\n{describe(proc)}"
        if line is not None:
            assert f"mcpd.yaml:{line}:" in matching[0], f"{matching[0]!r} does not name line {line}"
    assert len(errors) == len(expected), describe(proc)
    assert not any("good_one" in e for e in errors), describe(proc)

    proc = run_mcpd(mcpd_bin, "check", "--json", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 1, describe(proc)
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False, doc
    for fragments, _ in expected:
        assert len([e for e in doc["errors"] if all(f in e for f in fragments)]) == 1, (fragments, doc["errors"])
    assert len(doc["errors"]) == len(expected), doc["errors"]


# --------------------------------------------------------------------------- listing and stdin


def test_list_gives_names_descriptions_and_schemas_as_written(raw_mcpd, write_config):
    """tools/list: `typed` then `bare`, in config order, under their own names; typed's
    inputSchema keeps the JSON types of YAML plain scalars (true, false, null, 0, 10.5, -3) and
    quoted ones stay strings; bare lists inputSchema {"type": "object"}. Calling `typed` (a `cat`)
    returns the arguments as sent, then a newline."""
    config = write_config("""\
command_tools:
  typed:
    command: ["cat"]
    description: "Typed: keeps \\"types\\" \u00e9"
    input_schema:
      type: object
      properties:
        n: {type: integer, minimum: 0, maximum: 10.5, default: null}
        flag: {type: boolean, default: true}
        off: {type: boolean, default: false}
        s: {type: string, default: "true", enum: ["1", "null", plain]}
        neg: {type: number, default: -3}
      required: [n]
      additionalProperties: false
  bare:
    command: ["true"]
""")
    p = start(raw_mcpd, config)
    tools = list_tools(p)
    assert [t["name"] for t in tools] == ["typed", "bare"], tools
    typed, bare = tools
    assert typed["description"] == 'Typed: keeps "types" \u00e9', typed
    assert typed["inputSchema"] == {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 0, "maximum": 10.5, "default": None},
            "flag": {"type": "boolean", "default": True},
            "off": {"type": "boolean", "default": False},
            "s": {"type": "string", "default": "true", "enum": ["1", "null", "plain"]},
            "neg": {"type": "number", "default": -3},
        },
        "required": ["n"],
        "additionalProperties": False,
    }, typed
    # json.loads maps 0 and 0.0 alike: check the number types too.
    props = typed["inputSchema"]["properties"]
    assert type(props["n"]["minimum"]) is int and type(props["neg"]["default"]) is int, typed
    assert bare["inputSchema"] == {"type": "object"}, bare
    assert bare.get("description", "") == "", bare

    sent = '{"n":3, "flag":true}'
    assert ok_text(call_raw(p, '{"name":"typed","arguments":' + sent + "}")) == sent + "\n"


def test_arguments_reach_stdin_byte_for_byte(raw_mcpd, write_config, tmp_path):
    """The escape-dense, multi-byte DENSE_ARGUMENTS (with spaces around its colon in the params)
    reach the program's stdin exactly, then one newline; the result is an empty text. Absent
    arguments and `"arguments":null` reach it as `{}\\n`; `{}` as `{}\\n`."""
    out = tmp_path / "stdin.bin"
    p = start(raw_mcpd, write_config("command_tools:\n" + writer_tool(out)))
    cases = [
        ('{"name":"dump","arguments" :  ' + DENSE_ARGUMENTS + " }", DENSE_ARGUMENTS.encode() + b"\n"),
        ('{"name":"dump"}', b"{}\n"),
        ('{"name":"dump","arguments":null}', b"{}\n"),
        ('{"arguments":{},"name":"dump"}', b"{}\n"),
        ('{"name":"dump","arguments":{"k":"\u00e9\\u00e9"}}', '{"k":"\u00e9\\u00e9"}\n'.encode()),
    ]
    for params, want in cases:
        out.unlink(missing_ok=True)
        msg = call_raw(p, params)
        assert ok_text(msg) == "", msg
        got = out.read_bytes()
        assert got == want, f"params {params!r}: stdin was {got!r}, expected {want!r}"


def test_argv_is_not_a_shell_and_stdout_is_the_text(raw_mcpd, write_config):
    """command ["printf", "%s|%s", "$HOME; echo pwned", "h\u00e9 漢字 🚀\\n\\t"]: the text is exactly
    the two arguments joined by |, with no expansion and every byte kept."""
    arg = "h\u00e9 \u6f22\u5b57 \U0001f680\n\t\"q\" \\"
    config = write_config("command_tools:\n  pf:\n    command: " + json.dumps(["printf", "%s|%s", "$HOME; echo pwned", arg],
                                                                             ensure_ascii=False) + "\n")
    p = start(raw_mcpd, config)
    assert ok_text(call(p, "pf", {})) == "$HOME; echo pwned|" + arg


# --------------------------------------------------------------------------- output: json


def test_json_output(raw_mcpd, write_config):
    """output: json. An object: text is its JSON, structuredContent the object. An array: the text
    only, no structuredContent. `not json` and two values `{"a":1} {"b":2}`: isError results."""
    def tool(name: str, stdout: str) -> str:
        return (f"  {name}:\n    command: {json.dumps(['printf', '%s', stdout], ensure_ascii=False)}\n"
                "    output: json\n")

    obj = {"a": [1, 2.5, "\u00e9\U0001f680"], "b": {"c": None, "d": True}, "e": "x\ny"}
    config = write_config("command_tools:\n"
                          + tool("obj", json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
                          + tool("arr", '[1, "two", null]\n')
                          + tool("bad", "not json\n")
                          + tool("two", '{"a":1} {"b":2}\n'))
    p = start(raw_mcpd, config)

    result = result_of(call(p, "obj", {}))
    assert not result.get("isError"), result
    assert json.loads(result["content"][0]["text"]) == obj, result
    assert result["content"][0]["type"] == "text" and len(result["content"]) == 1, result
    assert result.get("structuredContent") == obj, result

    result = result_of(call(p, "arr", {}))
    assert not result.get("isError"), result
    assert json.loads(result["content"][0]["text"]) == [1, "two", None], result
    assert "structuredContent" not in result, result

    bad = error_text(call(p, "bad", {}))
    assert bad.startswith('command tool "bad"') and "json" in bad, bad
    two = error_text(call(p, "two", {}))
    assert two.startswith('command tool "two"') and "json" in two, two


# --------------------------------------------------------------------------- failures


def test_failures_are_error_results(raw_mcpd, write_config, tmp_path):
    """exit 3 with stderr: isError `command tool "fails" failed (status 3): bad thing happened`
    (its stdout not given). A stderr of START-MARK, 5000 bytes, END-MARK: the message ends with
    END-MARK and lacks START-MARK (the tail). A program killed by SIGTERM: isError `... "killed"
    failed` naming the signal (`$$$$` in the config is the shell's `$$`: `$$` is a literal `$`). /nonexistent/prog and ./missing.sh: isError `could not start`. The session goes on."""
    config = write_config("""\
command_tools:
  fails:
    command: ["sh", "-c", "cat >/dev/null; echo partial-out; echo 'bad thing happened' >&2; exit 3"]
  noisy:
    command: ["sh", "-c", "echo START-MARK >&2; head -c 5000 /dev/zero | tr '\\\\0' y >&2; echo >&2; echo END-MARK >&2; exit 7"]
  killed:
    command: ["sh", "-c", "kill -TERM $$$$"]  # $$ is a literal $ in the config
  missing:
    command: ["/nonexistent/dir/prog", "x"]
  missing_rel:
    command: ["./missing.sh"]
  fine:
    command: ["echo", "still fine"]
""")
    p = start(raw_mcpd, config)
    assert error_text(call(p, "fails", {"x": 1})) == 'command tool "fails" failed (status 3): bad thing happened'

    noisy = error_text(call(p, "noisy", {}))
    assert noisy.startswith('command tool "noisy" failed (status 7): '), noisy[:200]
    assert noisy.endswith("END-MARK"), noisy[-200:]
    assert "START-MARK" not in noisy and len(noisy) < 5000, f"not a tail: {len(noisy)} characters"

    killed = error_text(call(p, "killed", {}))
    assert killed.startswith('command tool "killed" failed') and ("SIGTERM" in killed or "15" in killed), killed

    for name in ("missing", "missing_rel"):
        text = error_text(call(p, name, {}))
        assert f'command tool "{name}"' in text and "could not start" in text, text

    assert ok_text(call(p, "fine")) == "still fine\n"


def test_timeout_kills_the_process_group(raw_mcpd, write_config, tmp_path):
    """`hang` (timeout: 1s) runs sh with two background sleeps of 30 s; `hang_default` has no
    timeout and gets gateway.request_timeout 1500ms. Both called at once: `hang` is isError
    `command tool "hang" did not finish within 1 s (its timeout); its process group was killed`
    after 0.9-3 s, `hang_default` `... within 1.5 s ...`; no sh or sleep of either survives."""
    pids_hang, pids_default = tmp_path / "hang.pids", tmp_path / "default.pids"
    script = "echo $$$$ > \\\"$PIDS\\\"; sleep 30 & echo $! >> \\\"$PIDS\\\"; sleep 30 & echo $! >> \\\"$PIDS\\\"; wait"
    config = write_config(f"""\
gateway:
  request_timeout: 1500ms
command_tools:
  hang:
    command: ["sh", "-c", "{script}"]
    timeout: 1s
    env: {{PIDS: {yaml_str(str(pids_hang))}}}
  hang_default:
    command: ["sh", "-c", "{script}"]
    env: {{PIDS: {yaml_str(str(pids_default))}}}
""")
    p = start(raw_mcpd, config)
    started = time.monotonic()
    ids = {}
    for name in ("hang", "hang_default"):
        ids[name] = p.new_id()
        p.send_raw(json.dumps({"jsonrpc": "2.0", "id": ids[name], "method": "tools/call",
                               "params": {"name": name, "arguments": {}}}))
    answers: dict[int, tuple[float, dict[str, Any]]] = {}
    while len(answers) < 2:
        _, msg = p.recv_response(10)
        answers[msg["id"]] = (time.monotonic() - started, msg)
    hang_pids = read_pids(pids_hang, 3)
    default_pids = read_pids(pids_default, 3)

    elapsed, msg = answers[ids["hang"]]
    assert error_text(msg) == ('command tool "hang" did not finish within 1 s (its timeout); '
                               "its process group was killed"), msg
    assert 0.9 <= elapsed < 3.0, f"hang answered after {elapsed:.2f} s"
    elapsed, msg = answers[ids["hang_default"]]
    assert error_text(msg) == ('command tool "hang_default" did not finish within 1.5 s (its timeout); '
                               "its process group was killed"), msg
    assert 1.4 <= elapsed < 3.5, f"hang_default answered after {elapsed:.2f} s"
    survivors = wait_dead(hang_pids + default_pids)
    assert not survivors, f"processes of the timed-out tools still alive: {survivors}"
    p.ping()


def test_max_output(raw_mcpd, write_config):
    """max_output: 1KiB. Exactly 1024 bytes: success with all of them. 1025 bytes: isError `command
    tool "over" wrote more than max_output (1024 bytes) on stdout`. `yes` (endless, timeout 20s):
    the same error, within 5 s."""
    def tool(name: str, command: list[str], timeout: str = "10s") -> str:
        return f"  {name}:\n    command: {json.dumps(command)}\n    max_output: 1KiB\n    timeout: {timeout}\n"

    config = write_config("command_tools:\n"
                          + tool("exact", ["sh", "-c", "head -c 1024 /dev/zero | tr '\\0' x"])
                          + tool("over", ["sh", "-c", "head -c 1025 /dev/zero | tr '\\0' x"])
                          + tool("endless", ["yes"], timeout="20s"))
    p = start(raw_mcpd, config)
    assert ok_text(call(p, "exact", {})) == "x" * 1024
    assert error_text(call(p, "over", {})) == 'command tool "over" wrote more than max_output (1024 bytes) on stdout'
    started = time.monotonic()
    endless = error_text(call(p, "endless", {}, timeout=25))
    elapsed = time.monotonic() - started
    assert endless == 'command tool "endless" wrote more than max_output (1024 bytes) on stdout', endless
    assert elapsed < 5, f"endless output answered after {elapsed:.2f} s (its timeout is 20 s)"


def test_calls_run_concurrently(raw_mcpd, write_config):
    """Two calls of a tool sleeping 1 s, sent back to back: both succeed, the two answers within
    1.8 s of the first request."""
    config = write_config('command_tools:\n  nap:\n    command: ["sh", "-c", "sleep 1; echo rested"]\n    timeout: 10s\n')
    p = start(raw_mcpd, config)
    started = time.monotonic()
    ids = [p.new_id(), p.new_id()]
    for request_id in ids:
        p.send_raw(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                               "params": {"name": "nap", "arguments": {}}}))
    answers = {}
    while len(answers) < 2:
        _, msg = p.recv_response(10)
        answers[msg["id"]] = msg
    elapsed = time.monotonic() - started
    assert sorted(answers) == sorted(ids), answers
    assert [ok_text(answers[i]) for i in ids] == ["rested\n", "rested\n"], answers
    assert 0.9 <= elapsed < 1.8, f"two 1 s calls took {elapsed:.2f} s: not run at once"


# --------------------------------------------------------------------------- paths and environment


def test_relative_program_and_cwd(raw_mcpd, write_config, tmp_path):
    """The config lives in conf/; `./tools/where.sh` is found there although mcpd runs in the
    repository; with `cwd: <work>` the script's pwd is <work>."""
    conf = tmp_path / "conf"
    (conf / "tools").mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    script = conf / "tools" / "where.sh"
    script.write_text("#!/bin/sh\ncat >/dev/null\necho \"where:$(pwd)\"\n")
    script.chmod(0o755)
    config = write_config(f"""\
command_tools:
  where:
    command: ["./tools/where.sh"]
  where_cwd:
    command: ["./tools/where.sh"]
    cwd: {yaml_str(str(work))}
""", name="conf/mcpd.yaml")
    p = start(raw_mcpd, config)
    assert ok_text(call(p, "where", {})).startswith("where:"), "the relative program did not run"
    assert ok_text(call(p, "where_cwd", {})) == f"where:{work.resolve()}\n"


def test_environment_is_clean(raw_mcpd, write_config, mcpd_env):
    """mcpd runs with SECRET_X, TZ=Europe/Paris and MCPD_TEST_SOMETHING set; the tool (`env`) has
    env {K: "v w", TZ: UTC}. It sees K, TZ=UTC (once), PATH and HOME as mcpd has them, MCPD_DEPTH =
    mcpd's + 1, and no variable outside PATH, HOME, USER, LOGNAME, LANG, TERM, TZ, TMPDIR, SHELL,
    LC_*, XDG_*, MCPD_DEPTH and its own."""
    config = write_config('command_tools:\n  showenv:\n    command: ["env"]\n    env: {K: "v w", TZ: UTC}\n')
    env = dict(mcpd_env, SECRET_X="topsecret", TZ="Europe/Paris", MCPD_TEST_SOMETHING="1")
    env.setdefault("HOME", "/root")
    p = start(raw_mcpd, config, env=env)
    lines = ok_text(call(p, "showenv", {})).splitlines()
    names = [line.split("=", 1)[0] for line in lines]
    seen = dict(line.split("=", 1) for line in lines if "=" in line)
    allowed = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TERM", "TZ", "TMPDIR", "SHELL", "MCPD_DEPTH", "K"}
    extra = [n for n in names if n not in allowed and not n.startswith(("LC_", "XDG_"))]
    assert not extra, f"variables that should not reach a command tool: {extra}"
    assert "SECRET_X" not in seen and "topsecret" not in "\n".join(lines), lines
    assert seen.get("K") == "v w", lines
    assert names.count("TZ") == 1 and seen["TZ"] == "UTC", lines
    assert seen.get("PATH") == env["PATH"] and seen.get("HOME") == env["HOME"], lines
    assert seen.get("MCPD_DEPTH") == str(int(env.get("MCPD_DEPTH", "0")) + 1), lines


# --------------------------------------------------------------------------- roles and meta mode


def test_roles_apply_to_command_tools(raw_mcpd, write_config, mcpd_env):
    """roles {r: ["tool_a"]}. MCPD_ROLE=r: tools/list is [tool_a]; tool_a runs; tools/call tool_b is
    refused (a JSON-RPC error or isError) with `Tool "tool_b" is not available to role "r"` (not
    "Unknown tool"). Without a role: tool_a and tool_b are listed and tool_b runs."""
    config = write_config("""\
command_tools:
  tool_a:
    command: ["echo", "A"]
  tool_b:
    command: ["echo", "B"]
roles:
  r: ["tool_a"]
""")
    env = {k: v for k, v in mcpd_env.items() if k not in ("MCPD_ROLE", "MCP_GATEWAY_ROLE")}
    everyone = start(raw_mcpd, config, env=env)
    assert [t["name"] for t in list_tools(everyone)] == ["tool_a", "tool_b"]
    assert ok_text(call(everyone, "tool_b", {})) == "B\n"

    p = start(raw_mcpd, config, env=dict(env, MCPD_ROLE="r"))
    assert [t["name"] for t in list_tools(p)] == ["tool_a"]
    assert ok_text(call(p, "tool_a", {})) == "A\n"
    refused = call(p, "tool_b", {})
    if "error" in refused:
        message = refused["error"]["message"]
    else:
        message = error_text(refused)
    assert 'Tool "tool_b" is not available to role "r"' in message, (
        f'tools/call tool_b with MCPD_ROLE=r: expected a refusal naming role "r", got {refused}'
    )


def test_meta_mode_finds_and_invokes_command_tools(raw_mcpd, write_config, tmp_path):
    """gateway.mode: meta with command tools word_count and dump. tools/list: the four meta tools.
    gateway_search_tools "count the words": word_count first, server "mcpd", its description and
    schema. gateway_list_tools {server: mcpd}: both. gateway_invoke {server: "mcpd", tool:
    "dump", arguments: {"text": "h\u00e9"}}: a successful result and the program's stdin is the
    arguments' JSON. A direct tools/call of word_count runs it too."""
    out = tmp_path / "invoke.bin"
    config = write_config(f"""\
gateway:
  mode: meta
command_tools:
  word_count:
    command: ["sh", "-c", "wc -w"]
    description: "Count the words of a text"
    input_schema: {{type: object, properties: {{text: {{type: string}}}}, required: [text]}}
{writer_tool(out)}""")
    p = start(raw_mcpd, config)
    assert sorted(t["name"] for t in list_tools(p)) == sorted(
        ["gateway_list_servers", "gateway_list_tools", "gateway_search_tools", "gateway_invoke"])

    found = result_of(call(p, "gateway_search_tools", {"query": "count the words of a text"}))
    hits = json.loads(found["content"][0]["text"])["tools"]
    assert hits and hits[0]["server"] == "mcpd" and hits[0]["tool"] == "word_count", found
    assert hits[0]["description"] == "Count the words of a text", found
    assert hits[0]["inputSchema"] == {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}

    listed = result_of(call(p, "gateway_list_tools", {"server": "mcpd"}))
    assert {t["tool"] for t in json.loads(listed["content"][0]["text"])["tools"]} == {"word_count", "dump"}, listed

    direct = ok_text(call_raw(p, '{"name":"word_count","arguments":{"text":"one two three"}}'))
    assert direct.split() == ["3"], direct  # wc -w counts the JSON text's words: {"text":"one two three"}

    invoked = call(p, "gateway_invoke", {"server": "mcpd", "tool": "dump", "arguments": {"text": "h\u00e9"}})
    assert "result" in invoked and not invoked["result"].get("isError"), (
        f'gateway_invoke {{server: "mcpd", tool: "dump"}}: expected the command tool\'s result, got {invoked}'
    )
    assert json.loads(out.read_bytes()) == {"text": "h\u00e9"}, out.read_bytes()


def test_client_disconnect_kills_running_program(raw_mcpd, write_config, tmp_path):
    """A call of `sh -c "sleep 30 & wait"` is running (its pids recorded) when the client closes
    mcpd's stdin: mcpd exits within 10 s and neither sh nor sleep survives."""
    pids = tmp_path / "run.pids"
    config = write_config(f"""\
command_tools:
  long:
    command: ["sh", "-c", "echo $$$$ > \\"$PIDS\\"; sleep 30 & echo $! >> \\"$PIDS\\"; wait"]
    timeout: 60s
    env: {{PIDS: {yaml_str(str(pids))}}}
""")
    p = start(raw_mcpd, config)
    p.send_raw('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"long","arguments":{}}}')
    running = read_pids(pids, 2)
    p.close_stdin()
    code = p.wait(10)
    survivors = wait_dead(running)
    assert code is not None, f"mcpd still running 10 s after its input closed\n{p.stderr_text()[-2000:]}"
    assert not survivors, f"the command tool's processes outlived the client: {survivors}"


def test_cancel_kills_the_program_and_nothing_is_answered(raw_mcpd, write_config, tmp_path):
    """A call of `sh -c "sleep 30 & wait"` (string id) is running when the client sends
    notifications/cancelled for it: within 3 s neither sh nor sleep is alive, no answer to the call
    comes (the next line is the answer to a later ping), and a second call of the tool still runs."""
    pids = tmp_path / "run.pids"
    config = write_config(f"""\
command_tools:
  long:
    command: ["sh", "-c", "echo $$$$ > \\"$PIDS\\"; sleep 30 & echo $! >> \\"$PIDS\\"; wait"]
    timeout: 60s
    env: {{PIDS: {yaml_str(str(pids))}}}
  quick:
    command: ["echo", "done"]
""")
    p = start(raw_mcpd, config)
    p.send_raw('{"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{"name":"long","arguments":{}}}')
    running = read_pids(pids, 2)
    p.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "c-1", "reason": "test"}})
    survivors = wait_dead(running)
    assert not survivors, f"the cancelled command tool's processes are alive: {survivors}"
    _, msg, _ = p.request("ping", timeout=5)
    assert msg.get("result") == {}, f"expected only the ping's answer, got {msg}"
    assert ok_text(call(p, "quick")) == "done\n"


# --------------------------------------------------------------------------- HTTP


def answer_of(reply: Reply, request_id: Any) -> dict[str, Any]:
    assert reply.status == 200, reply
    if reply.headers.get("content-type", "").startswith("text/event-stream"):
        messages = [json.loads(data) for _, data in reply.events()]
        messages = [m for m in messages if m.get("id") == request_id]
        assert len(messages) == 1, reply
        return messages[0]
    msg = reply.json()
    assert msg.get("id") == request_id, reply
    return msg


def test_http_lists_and_runs_command_tools(serve, write_config, piddir, tmp_path):
    """`mcpd serve` with alpha and the tools dump and shout. /mcp tools/list: alpha's tools (as
    alpha__*) first, then dump and shout in that order. A raw POST tools/call of dump with
    DENSE_ARGUMENTS: stdin is exactly those bytes and a newline. A stateless-era POST (2026-07-28,
    Mcp-Name: shout) runs shout. /mcp/alpha lists none of them, and calling dump there is an error
    "Unknown tool" (no program run)."""
    out = tmp_path / "http-stdin.bin"
    servers = {"alpha": server_entry("alpha", piddir)}
    config = write_config("servers:\n  alpha:\n"
                          + "".join(f"    {k}: {json.dumps(v)}\n" for k, v in servers["alpha"].items())
                          + "command_tools:\n" + writer_tool(out)
                          + '  shout:\n    command: ["sh", "-c", "tr a-z A-Z"]\n')
    served = serve(config)

    session = PathSession(served.port, "/mcp")
    tools = [t["name"] for t in session.request("tools/list")["result"]["tools"]]
    assert set(tools[:-2]) == {f"alpha__{name}" for name in ALPHA_TOOLS} and len(tools) == len(ALPHA_TOOLS) + 2, tools
    assert tools[-2:] == ["dump", "shout"], tools

    body = '{"jsonrpc":"2.0","id":"dense","method":"tools/call","params":{"name":"dump","arguments":' + DENSE_ARGUMENTS + "}}"
    msg = answer_of(http_request(served.port, "POST", body, session.headers(), timeout=15), "dense")
    assert ok_text(msg) == "", msg
    assert out.read_bytes() == DENSE_ARGUMENTS.encode() + b"\n"

    body = json.dumps({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                       "params": {"name": "shout", "arguments": {"t": "quiet"}, "_meta": META}}, separators=(",", ":"))
    headers = {"Content-Type": "application/json", "Accept": BOTH, "MCP-Protocol-Version": MODERN,
               "Mcp-Method": "tools/call", "Mcp-Name": "shout"}
    msg = answer_of(http_request(served.port, "POST", body, headers, timeout=15), 9)
    assert ok_text(msg) == '{"T":"QUIET"}\n', msg

    view = PathSession(served.port, "/mcp/alpha")
    view_tools = [t["name"] for t in view.request("tools/list")["result"]["tools"]]
    assert set(view_tools) == ALPHA_TOOLS, view_tools
    out.unlink()
    refused = view.request("tools/call", {"name": "dump", "arguments": {}})
    assert "result" not in refused and "Unknown tool" in refused.get("error", {}).get("message", ""), refused
    assert not out.exists(), "dump ran at /mcp/alpha"
