"""Pipelines (`pipelines:`): tools of mcpd's own whose steps call exposed tools in stages.

What is tested:
- `mcpd check`: a config with only command_tools and pipelines (no servers) passes (exit 0, --json
  ok); each mistake is an error (exit 1, in the text on stderr and in --json): a step referring to
  a later step or to a step of its own parallel stage (`refers to step "b", which does not run
  before it`), a step id used twice (in sequence and inside a parallel stage), an unknown key of a
  pipeline (`did you mean "steps"?`) and of a step (`did you mean "arguments"?`), empty steps, a
  name with the separator "__", a meta tool's name, one name in both command_tools and pipelines
  (either order in the file; `mcpd stdio` then does not start), a pipeline without steps, and a
  result referring to a step the pipeline does not have.
- The README's example over stdio (SDK client): tools/list lists the pipeline with its
  description and input_schema; `{{input.name}}`, `{{steps.first.text}}` and
  `{{steps.a.structured/v}}` reach the later steps; the result is the `result:` template's text
  ("hello Ada + 2"); a caller with a progress token gets one notifications/progress per finished
  step (progress 1..4, total 4, message `step ID done`); the whole call takes about 1 s (the two
  one-second steps of its parallel stage overlap).
- A config with no servers (command tools and pipelines only): tools/list is the command tools then
  the pipelines; a parallel stage of two steps sleeping 1 s each takes < 1.8 s, the same two steps
  in sequence take >= 1.9 s; without `result:` the result is every step's content in step order
  (not in the order they finished).
- Templates (a `cat` command tool with output json mirrors what a step received): a string that is
  exactly one template keeps the JSON type (number, object, array, bool), `{{input.a.b}}` is a
  dotted path, RFC 6901 pointers with `~1`, `~0` and array indexes, templates inside longer strings
  give strings raw (multi-byte text intact) and other values as compact JSON, `{{steps.ID.text}}`
  joins a step's texts with "\\n" (a step calling a pipeline without result: has two);
  `result:` rendering to an object gives its JSON text and the same structuredContent, to a number
  or an array its JSON text without structuredContent, to a string that text; a missing input,
  `.structured` of a step without structured content and a pointer to nothing fail the pipeline
  naming it (and the step).
- Failure: the first failing step (alpha__fail's isError, a JSON-RPC error for an unknown tool, a
  command tool that exits 3) ends the pipeline with `pipeline "NAME": step "ID" (TOOL) failed:
  <text>`, and the steps after it do not run (a command tool appending to a file proves it); a
  step failing while its parallel sibling (alpha__sleep 5) runs ends the pipeline at once and the
  sibling's backend call is cancelled (alpha's stats count the cancellation).
- Deadline: `timeout: 1s` with alpha__sleep 5 running ends with `pipeline "slow": did not finish
  within 1 s (its timeout); still running: step "x"` after about 1 s, the next stage does not run,
  the backend's sleep is cancelled; without `timeout:` the deadline is gateway.request_timeout (2 s).
- A pipeline that ends (deadline, or a sibling step failing) while a command tool step is still
  running: the answer is the isError result, mcpd keeps serving (another call is answered), exits
  0 when its input closes, and the command's process group is killed (it never writes its file).
- Roles (MCPD_ROLE): a role that admits the pipeline but not alpha__echo lists only the pipeline and
  the step is refused naming the role inside the pipeline's error; a role admitting both runs it; a
  role without the pipeline neither lists it nor runs it (a JSON-RPC error, and, like any hidden
  tool, a refusal naming the role).
- A pipeline calling itself is stopped at depth 8 with an isError result (8 nested `step "again"
  (loop) failed:` and `pipelines call each other more than 8 deep`), quickly and without a crash;
  two pipelines calling each other likewise; a pipeline calling another pipeline works, and its
  caller's progress token gets the outer pipeline's steps only.
- Meta mode (gateway.mode: meta): tools/list is the four meta tools; gateway_search_tools finds the
  pipeline with server "mcpd" and its description and input schema; gateway_list_tools {server:
  mcpd} lists it; gateway_invoke {server: mcpd, tool: NAME} runs it; its exposed name still works.
- HTTP (`mcpd serve`, test_streamable_http's serve fixture): the SDK's Streamable HTTP client lists
  and calls the pipeline and gets its progress notifications; a failing pipeline is an isError
  result; a stateless-era POST (2026-07-28, Mcp-Name) runs one too, with its progress before the
  answer.

Stdio tests use the SDK client through mcpd_helpers.spawn_jsonrpc_streams, or raw JSON lines
(conftest's raw_mcpd) where mcpd's environment (MCPD_ROLE) or exact messages matter. Configs
with alpha set gateway.startup_wait 30s so that a slow start never fails a step.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from mcpd_helpers import (
    LineProcess,
    ProcessHandle,
    describe,
    run_mcpd,
    server_entry,
    spawn_jsonrpc_streams,
)
from test_http_server_view import MODERN, sdk_session
from test_streamable_http import (  # noqa: F401  (serve is a fixture)
    BOTH,
    dumps,
    http_request,
    serve,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

NAP = {"command": ["sh", "-c", "sleep 1; cat"], "output": "json", "description": "Sleep 1 s, then give the arguments back"}
MIRROR = {"command": ["cat"], "output": "json", "description": "Give the arguments back as structured content"}

# The README's example.
GREET = {
    "description": "Greets someone through alpha and two naps",
    "input_schema": {"type": "object", "properties": {"name": {"type": "string"}}},
    "timeout": "5s",
    "steps": [
        {"id": "first", "tool": "alpha__echo", "arguments": {"text": "hello {{input.name}}"}},
        {"parallel": [
            {"id": "a", "tool": "nap", "arguments": {"v": "{{steps.first.text}}", "n": 1}},
            {"id": "b", "tool": "nap", "arguments": {"v": 2}},
        ]},
        {"id": "last", "tool": "alpha__echo", "arguments": {"text": "{{steps.a.structured/v}} + {{steps.b.structured/v}}"}},
    ],
    "result": "{{steps.last.text}}",
}


# --------------------------------------------------------------------------- helpers


def config_text(**sections: Any) -> str:
    """The config as JSON text (JSON is YAML): nested lists of mappings, types kept."""
    return json.dumps({k: v for k, v in sections.items() if v is not None}, indent=1)


def alpha(piddir: Path) -> dict[str, Any]:
    return {"alpha": server_entry("alpha", piddir)}


# mcpd waits this long for alpha before serving (a loaded machine can take more than the
# default 5 s to start it; a step calling a backend that is still starting would fail).
PATIENT = {"startup_wait": "30s"}


def mark_tool(path: Path) -> dict[str, Any]:
    """A command tool that appends its arguments (one JSON line: mcpd ends them with a newline) to
    `path`: a step's side effect."""
    return {"command": ["sh", "-c", 'cat >> "$0"', str(path)], "description": "Record the arguments"}


def marks(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


@asynccontextmanager
async def mcpd_client(mcpd_bin: str, config: Path, tmp_path: Path, env: dict[str, str] | None = None,
                      ) -> AsyncIterator[tuple[ClientSession, ProcessHandle]]:
    """An initialized SDK ClientSession talking to `mcpd stdio` (environment: os.environ, whose
    XDG_STATE_HOME conftest's state_home set); handle.returncode is set on exit."""
    async with spawn_jsonrpc_streams([mcpd_bin, "stdio", "--config", str(config)],
                                     stderr_path=tmp_path / "mcpd.stderr", env=env or dict(os.environ)) as (read, write, handle):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session, handle


def text_of(result: types.CallToolResult) -> str:
    assert result.content, result
    assert all(isinstance(item, types.TextContent) for item in result.content), result
    return "\n".join(item.text for item in result.content)


def progress_recorder() -> tuple[list[tuple[float, float | None, str | None]], Callable[..., Any]]:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    return seen, on_progress


async def progress_arrives(seen: list, count: int, seconds: float = 5.0) -> None:
    """Waits until `count` progress notifications were recorded: the SDK client runs progress
    callbacks apart from resolving the call, so the last one (sent before the result) can be
    recorded after call_tool returns."""
    with anyio.move_on_after(seconds):
        while len(seen) < count:
            await anyio.sleep(0.01)


def check_errors(proc) -> str:
    """Everything `mcpd check` printed (errors go to stderr)."""
    return proc.stdout + proc.stderr


def line_of(text: str, needle: str) -> int:
    numbers = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(numbers) == 1, (needle, text)
    return numbers[0]


# --------------------------------------------------------------------------- mcpd check


def test_check_accepts_pipelines_and_command_tools_without_servers(mcpd_bin, write_config, mcpd_env):
    """Only command_tools and pipelines (block YAML, with parallel:, result:, timeout: and
    input_schema): `mcpd check` exits 0 and --json says ok with no errors."""
    config = write_config("""\
command_tools:
  nap:
    command: ["sh", "-c", "sleep 1; cat"]
    output: json
pipelines:
  greet:
    description: Naps twice at once
    input_schema: {type: object, properties: {name: {type: string}}}
    timeout: 5s
    steps:
      - {id: first, tool: nap, arguments: {text: "hello {{input.name}}"}}
      - parallel:
          - {id: a, tool: nap, arguments: {v: "{{steps.first.structured/text}}", n: 1}}
          - {id: b, tool: nap, arguments: {v: 2}}
      - {id: last, tool: nap, arguments: {text: "{{steps.a.structured/v}} + {{steps.b.structured/v}}"}}
    result: "{{steps.last.text}}"
  again:
    steps:
      - {tool: greet, arguments: {name: "{{input.who}}"}}
""")
    proc = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 0, describe(proc)
    assert "error" not in proc.stderr, describe(proc)
    proc = run_mcpd(mcpd_bin, "check", "--json", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 0, describe(proc)
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["errors"] == [], doc


BAD_CONFIGS = {
    "later-step": ("""\
pipelines:
  fwd:
    steps:
      - {id: a, tool: nap, arguments: {v: "{{steps.b.text}}"}}
      - {id: b, tool: nap}
""", 'pipelines.fwd.steps[0] refers to step "b", which does not run before it', "{id: a,"),
    "same-stage": ("""\
pipelines:
  same:
    steps:
      - parallel:
          - {id: a, tool: nap}
          - {id: b, tool: nap, arguments: {v: "{{steps.a.structured/v}}"}}
""", 'pipelines.same.steps[0].parallel[1] refers to step "a", which does not run before it', "{id: b,"),
    "self-reference": ("""\
pipelines:
  selfish:
    steps:
      - {id: a, tool: nap, arguments: {v: "x {{ steps.a.text }}"}}
""", 'pipelines.selfish.steps[0] refers to step "a", which does not run before it', "{id: a,"),
    "duplicate-id": ("""\
pipelines:
  dup:
    steps:
      - {id: a, tool: nap}
      - {id: a, tool: mirror}
""", 'pipelines.dup: step id "a" is used twice', "tool: mirror"),
    "duplicate-id-in-parallel": ("""\
pipelines:
  dup:
    steps:
      - parallel:
          - {id: a, tool: nap}
          - {id: a, tool: mirror}
""", 'step id "a" is used twice', None),
    "unknown-pipeline-key": ("""\
pipelines:
  typo:
    step:
      - {id: a, tool: nap}
""", 'unknown key "step" in pipelines.typo; did you mean "steps"?', "step:"),
    "unknown-step-key": ("""\
pipelines:
  typo:
    steps:
      - {id: a, tool: nap, argument: {v: 1}}
""", 'unknown key "argument" in pipelines.typo.steps[0]; did you mean "arguments"?', "argument:"),
    "empty-steps": ("""\
pipelines:
  empty:
    steps: []
""", "pipelines.empty.steps must be a non-empty list", "steps: []"),
    "no-steps": ("""\
pipelines:
  nothing:
    description: has no steps at all
""", "pipelines.nothing needs steps", "nothing:"),
    "separator": ("""\
pipelines:
  bad__name:
    steps:
      - {id: a, tool: nap}
""", 'tool "bad__name" (command_tools or pipelines) contains the separator "__"', None),
    "meta-name": ("""\
pipelines:
  gateway_invoke:
    steps:
      - {id: a, tool: nap}
""", 'tool "gateway_invoke" (command_tools or pipelines) has the name of one of meta mode\'s tools', None),
    "result-unknown-step": ("""\
pipelines:
  res:
    steps:
      - {id: a, tool: nap}
    result: "{{steps.zz.text}}"
""", 'pipelines.res.result refers to step "zz", which the pipeline does not have', None),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_check_rejects_pipeline_mistakes(mcpd_bin, write_config, mcpd_env, case):
    """Each mistake (beside valid command tools nap and mirror): `mcpd check` exits 1 with the
    message (at the offending line where there is one) in its text output, and in --json's errors
    (ok false)."""
    body, message, line_needle = BAD_CONFIGS[case]
    text = ("command_tools:\n  nap: {command: [\"sh\", \"-c\", \"cat\"]}\n  mirror: {command: [\"cat\"], output: json}\n" + body)
    config = write_config(text)
    proc = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 1, describe(proc)
    output = check_errors(proc)
    assert message in output, describe(proc)
    if line_needle is not None:
        assert f"mcpd.yaml:{line_of(text, line_needle)}:" in output, f"error not at line {line_of(text, line_needle)}:\n{describe(proc)}"
    proc = run_mcpd(mcpd_bin, "check", "--json", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 1, describe(proc)
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and any(message in error for error in doc["errors"]), doc


@pytest.mark.parametrize("pipelines_first", [False, True], ids=["command-tools-first", "pipelines-first"])
def test_check_rejects_a_name_in_both_command_tools_and_pipelines(mcpd_bin, write_config, mcpd_env, pipelines_first):
    """`both` defined in command_tools and in pipelines, whichever comes first in the file: exit 1
    with `tool "both" is defined twice`, naming the shared namespace; `mcpd stdio` refuses to start
    with the same message."""
    tools = "command_tools:\n  both:\n    command: [\"cat\"]\n"
    pipes = "pipelines:\n  both:\n    steps:\n      - {id: a, tool: other}\n  other:\n    steps:\n      - {id: b, tool: both}\n"
    config = write_config(pipes + tools if pipelines_first else tools + pipes)
    proc = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 1, describe(proc)
    output = check_errors(proc)
    assert 'tool "both" is defined twice' in output and "share one namespace" in output, describe(proc)
    proc = run_mcpd(mcpd_bin, "stdio", "-c", str(config), env=mcpd_env, timeout=10)
    assert proc.returncode == 1 and 'tool "both" is defined twice' in proc.stderr, describe(proc)


# --------------------------------------------------------------------------- the README's example


@pytest.mark.anyio
async def test_readme_example_runs_stages_with_templates_and_progress(mcpd_bin, write_config, piddir, tmp_path):
    """greet {name: Ada}: alpha__echo "hello Ada", then nap a (v: "hello Ada") and nap b (v: 2) at
    once, then alpha__echo "hello Ada + 2" as the result's only text. tools/list lists greet (after
    alpha's tools and nap) with the configured description and inputSchema. Progress: 4
    notifications (1..4 of 4; `step first done`, a and b in either order, `step last done`). The
    call takes < 1.8 s once alpha is up (the naps overlap)."""
    config = write_config(config_text(servers=alpha(piddir), gateway=PATIENT, command_tools={"nap": NAP}, pipelines={"greet": GREET}))
    with anyio.fail_after(45):
        async with mcpd_client(mcpd_bin, config, tmp_path) as (session, handle):
            tools = (await session.list_tools()).tools
            names = [t.name for t in tools]
            assert names[-2:] == ["nap", "greet"] and "alpha__echo" in names, names
            greet = tools[-1]
            assert greet.description == GREET["description"], greet
            assert greet.input_schema == GREET["input_schema"], greet

            warm = await session.call_tool("alpha__echo", {"text": "warm"})
            assert text_of(warm) == "warm", warm
            seen, on_progress = progress_recorder()
            started = time.monotonic()
            result = await session.call_tool("greet", {"name": "Ada"}, progress_callback=on_progress)
            elapsed = time.monotonic() - started
            await progress_arrives(seen, 4)
    assert handle.returncode == 0, handle.stderr_text()[-3000:]
    assert result.is_error is not True, result
    assert [c.text for c in result.content] == ["hello Ada + 2"], result
    assert result.structured_content is None, result
    assert [p for p, _, _ in seen] == [1.0, 2.0, 3.0, 4.0], seen
    assert {t for _, t, _ in seen} == {4.0}, seen
    messages = [m for _, _, m in seen]
    assert messages[0] == "step first done" and messages[3] == "step last done", seen
    assert sorted(messages[1:3]) == ["step a done", "step b done"], seen
    assert elapsed < 1.8, f"the pipeline took {elapsed:.2f} s: its parallel naps did not overlap"


# --------------------------------------------------------------------------- parallel, no servers


@pytest.mark.anyio
async def test_parallel_stage_runs_at_once_and_default_result_is_in_step_order(mcpd_bin, write_config, tmp_path):
    """No servers: tools/list is [nap, mirror, snooze, together, one_by_one, ordered]. together (a
    parallel stage of two one-second naps) takes 0.9-1.8 s; one_by_one (the same naps in sequence)
    at least 1.9 s. Without result:, the result is every step's content in step order: together's
    is nap a's then nap b's text; ordered's (parallel: [slow (0.4 s), quick (mirror)], then last)
    is slow's, quick's, last's although quick finished first."""
    pipelines = {
        "together": {"steps": [{"parallel": [{"id": "a", "tool": "nap", "arguments": {"who": "a"}},
                                             {"id": "b", "tool": "nap", "arguments": {"who": "b"}}]}]},
        "one_by_one": {"steps": [{"id": "a", "tool": "nap", "arguments": {"who": "a"}},
                                 {"id": "b", "tool": "nap", "arguments": {"who": "b"}}]},
        "ordered": {"steps": [{"parallel": [{"id": "slow", "tool": "snooze", "arguments": {"who": "slow"}},
                                            {"id": "quick", "tool": "mirror", "arguments": {"who": "quick"}}]},
                              {"id": "last", "tool": "mirror", "arguments": {"who": "last"}}]},
    }
    snooze = {"command": ["sh", "-c", "sleep 0.4; cat"], "output": "json"}
    config = write_config(config_text(command_tools={"nap": NAP, "mirror": MIRROR, "snooze": snooze}, pipelines=pipelines))
    with anyio.fail_after(45):
        async with mcpd_client(mcpd_bin, config, tmp_path) as (session, handle):
            names = [t.name for t in (await session.list_tools()).tools]
            assert names == ["nap", "mirror", "snooze", "together", "one_by_one", "ordered"], names

            started = time.monotonic()
            together = await session.call_tool("together", {})
            parallel_s = time.monotonic() - started
            started = time.monotonic()
            sequential = await session.call_tool("one_by_one", {})
            sequential_s = time.monotonic() - started
            ordered = await session.call_tool("ordered", {})
    assert handle.returncode == 0, handle.stderr_text()[-3000:]
    for result in (together, sequential):
        assert result.is_error is not True, result
        assert [json.loads(c.text) for c in result.content] == [{"who": "a"}, {"who": "b"}], result
    assert 0.9 <= parallel_s < 1.8, f"a parallel stage of two 1 s steps took {parallel_s:.2f} s"
    assert sequential_s >= 1.9, f"two 1 s steps in sequence took {sequential_s:.2f} s"
    assert ordered.is_error is not True, ordered
    assert [json.loads(c.text)["who"] for c in ordered.content] == ["slow", "quick", "last"], ordered


# --------------------------------------------------------------------------- templates


ROCKET = '\U0001f680 "q" \\ \u6f22'


@pytest.mark.anyio
async def test_templates_keep_types_and_result_forms(mcpd_bin, write_config, tmp_path):
    """mirror (cat, output json) shows what a step received: whole templates keep the type (7,
    {name, age} object, [1, "two"] list, true), dotted input paths, text inside strings (strings
    raw, multi-byte and quotes intact, others as compact JSON), pointers /a~1b/c~0d/1 and /list/0;
    result: forms (object: text + structuredContent; number, array: JSON text only; string: text);
    `{{steps.m.text}}` of a step with two text contents (a pipeline without result:) is "one\ntwo".
    Errors naming the pipeline and the step: a missing input, `.structured` of a step without
    structured content, a pointer to nothing in result:."""
    pipelines = {
        "shapes": {
            "steps": [
                {"id": "m", "tool": "mirror", "arguments": {
                    "n": "{{input.n}}", "who": "{{input.user.name}}", "u": "\u00e9 {{input.u}} \u2713", "user": "{{input.user}}", "flag": "{{input.flag}}",
                    "list": [1, "two"], "a/b": {"c~d": [10, 20]},
                    "line": "n={{input.n}} user={{input.user}} name={{ input.user.name }}"}},
                {"id": "again", "tool": "mirror", "arguments": {
                    "sum": "{{steps.m.structured/n}}", "twenty": "{{steps.m.structured/a~1b/c~0d/1}}",
                    "first": "{{steps.m.structured/list/0}}", "user": "{{steps.m.structured/user}}",
                    "flag": "{{steps.m.structured/flag}}", "all": "{{steps.m.structured}}",
                    "said": "{{steps.m.structured/who}} is {{steps.m.structured/user/age}}: {{steps.m.structured/list}}"}},
            ],
            "result": {"again": "{{steps.again.structured}}", "n": "{{input.n}}", "text": "{{steps.m.text}}"},
        },
        "number": {"steps": [{"id": "m", "tool": "mirror", "arguments": {"x": 7.5}}], "result": "{{steps.m.structured/x}}"},
        "array": {"steps": [{"id": "m", "tool": "mirror", "arguments": {"x": [1, "two", None]}}], "result": "{{steps.m.structured/x}}"},
        "string": {"steps": [{"id": "m", "tool": "mirror", "arguments": {"x": "plain"}}], "result": "got {{steps.m.structured/x}}"},
        "pair": {"steps": [{"id": "o", "tool": "one"}, {"id": "t", "tool": "two"}]},
        "joined": {"steps": [{"id": "m", "tool": "pair"}], "result": {"t": "{{steps.m.text}}"}},
        "nostruct": {"steps": [{"id": "t", "tool": "one"}, {"id": "u", "tool": "mirror", "arguments": {"x": "{{steps.t.structured}}"}}]},
        "nowhere": {"steps": [{"id": "m", "tool": "mirror", "arguments": {"a": 1}}], "result": "{{steps.m.structured/zz}}"},
    }
    tools = {"mirror": MIRROR,
             "one": {"command": ["sh", "-c", "cat >/dev/null; printf one"]},
             "two": {"command": ["sh", "-c", "cat >/dev/null; printf two"]}}
    config = write_config(config_text(command_tools=tools, pipelines=pipelines))
    user = {"name": "Ada", "age": 36}
    with anyio.fail_after(45):
        async with mcpd_client(mcpd_bin, config, tmp_path) as (session, handle):
            shapes = await session.call_tool("shapes", {"n": 7, "user": user, "flag": True, "u": ROCKET})
            number = await session.call_tool("number", {})
            array = await session.call_tool("array", {})
            string = await session.call_tool("string", {})
            pair = await session.call_tool("pair", {})
            joined = await session.call_tool("joined", {})
            nostruct = await session.call_tool("nostruct", {})
            nowhere = await session.call_tool("nowhere", {})
            missing = await session.call_tool("shapes", {"n": 7, "flag": True})
    assert handle.returncode == 0, handle.stderr_text()[-3000:]

    assert shapes.is_error is not True, shapes
    first = {"n": 7, "who": "Ada", "u": f"\u00e9 {ROCKET} \u2713", "user": user, "flag": True, "list": [1, "two"], "a/b": {"c~d": [10, 20]},
             'line': 'n=7 user={"name":"Ada","age":36} name=Ada'}
    again = {"sum": 7, "twenty": 20, "first": 1, "user": user, "flag": True, "all": first,
             "said": 'Ada is 36: [1,"two"]'}
    structured = shapes.structured_content
    assert structured is not None and list(structured) == ["again", "n", "text"], shapes
    assert structured["again"] == again and structured["n"] == 7, shapes
    # The text of a step whose output is JSON is that JSON (compact, members in their order).
    assert json.loads(structured["text"]) == first and list(json.loads(structured["text"])) == list(first), shapes
    assert len(shapes.content) == 1 and json.loads(shapes.content[0].text) == structured, shapes

    assert number.is_error is not True and [c.text for c in number.content] == ["7.5"], number
    assert number.structured_content is None, number
    assert [json.loads(c.text) for c in array.content] == [[1, "two", None]] and array.structured_content is None, array
    assert [c.text for c in string.content] == ["got plain"] and string.structured_content is None, string
    assert [c.text for c in pair.content] == ["one", "two"], pair
    assert joined.structured_content == {"t": "one\ntwo"}, joined
    assert nostruct.is_error is True, nostruct
    assert text_of(nostruct).startswith('pipeline "nostruct": step "u" (mirror)'), nostruct
    assert "{{steps.t.structured}}" in text_of(nostruct) and "no structured content" in text_of(nostruct), nostruct
    assert nowhere.is_error is True, nowhere
    assert text_of(nowhere).startswith('pipeline "nowhere": ') and "/zz" in text_of(nowhere), nowhere

    assert missing.is_error is True, missing
    assert text_of(missing).startswith('pipeline "shapes": step "m" (mirror)'), missing
    assert "{{input.user.name}}" in text_of(missing) or "{{input.user}}" in text_of(missing), missing
    assert "have no user" in text_of(missing), missing


# --------------------------------------------------------------------------- failures


@pytest.mark.anyio
async def test_first_failing_step_ends_the_pipeline(mcpd_bin, write_config, piddir, tmp_path):
    """Each pipeline marks (a command tool appending its arguments to a file) before and after a
    failing step: the result is isError `pipeline "NAME": step "ID" (TOOL) failed: <text>` (alpha's
    isError text; the JSON-RPC error's message of an unknown tool; a command tool's exit and
    stderr), and only the marks before the failure are in the file. A step failing while its
    parallel sibling alpha__sleep 5 runs ends the pipeline within 2 s, the stage after does not run,
    and alpha counts the sleep as cancelled."""
    log = tmp_path / "marks.jsonl"
    tools = {"mark": mark_tool(log), "broken": {"command": ["sh", "-c", "cat >/dev/null; echo broken on purpose >&2; exit 3"]}}

    def around(name: str, failing: dict[str, Any]) -> dict[str, Any]:
        return {"steps": [{"id": "before", "tool": "mark", "arguments": {"p": name, "at": "before"}},
                          failing,
                          {"id": "after", "tool": "mark", "arguments": {"p": name, "at": "after"}}]}

    pipelines = {
        "isError": around("isError", {"id": "boom", "tool": "alpha__fail"}),
        "unknown": around("unknown", {"id": "ghost", "tool": "alpha__nope", "arguments": {"x": 1}}),
        "command": around("command", {"id": "cmd", "tool": "broken"}),
        "sibling": {"steps": [{"parallel": [{"id": "long", "tool": "alpha__sleep", "arguments": {"seconds": 5}},
                                            {"id": "boom", "tool": "alpha__fail"}]},
                              {"id": "after", "tool": "mark", "arguments": {"p": "sibling", "at": "after"}}]},
    }
    config = write_config(config_text(servers=alpha(piddir), gateway=PATIENT, command_tools=tools, pipelines=pipelines))
    with anyio.fail_after(45):
        async with mcpd_client(mcpd_bin, config, tmp_path) as (session, handle):
            assert text_of(await session.call_tool("alpha__echo", {"text": "warm"})) == "warm"
            results = {name: await session.call_tool(name, {}) for name in ("isError", "unknown", "command")}
            started = time.monotonic()
            results["sibling"] = await session.call_tool("sibling", {})
            sibling_s = time.monotonic() - started
            stats: dict[str, Any] = {}
            for _ in range(50):
                stats = json.loads(text_of(await session.call_tool("alpha__stats", {})))
                if stats["sleep_cancelled"] >= 1:
                    break
                await anyio.sleep(0.05)
    assert handle.returncode == 0, handle.stderr_text()[-3000:]

    for result in results.values():
        assert result.is_error is True, result
    assert text_of(results["isError"]) == 'pipeline "isError": step "boom" (alpha__fail) failed: alpha failed on purpose'
    assert text_of(results["unknown"]).startswith('pipeline "unknown": step "ghost" (alpha__nope) failed: Unknown tool'), results["unknown"]
    command = text_of(results["command"])
    assert command.startswith('pipeline "command": step "cmd" (broken) failed: command tool "broken" failed'), command
    assert "broken on purpose" in command, command
    assert text_of(results["sibling"]) == 'pipeline "sibling": step "boom" (alpha__fail) failed: alpha failed on purpose'
    assert sibling_s < 2.0, f"the pipeline waited {sibling_s:.2f} s for the sibling of its failed step"
    assert marks(log) == [{"p": "isError", "at": "before"}, {"p": "unknown", "at": "before"},
                          {"p": "command", "at": "before"}], marks(log)
    assert stats["sleep_started"] == 1 and stats["sleep_cancelled"] == 1, stats


# --------------------------------------------------------------------------- deadline


@pytest.mark.anyio
async def test_deadline_ends_the_pipeline_and_cancels_its_steps(mcpd_bin, write_config, piddir, tmp_path):
    """gateway.request_timeout 2s. slow (timeout: 1s): a parallel stage of alpha__sleep 5 (x) and
    mirror (z), then a mark. isError `pipeline "slow": did not finish within 1 s (its timeout);
    still running: step "x"` after 0.9-1.8 s. slow_default (no timeout: the request timeout)
    `did not finish within 2 s`. Both run at once in one session; no mark is written; alpha counts
    two sleeps started and two cancelled."""
    log = tmp_path / "marks.jsonl"
    def slow(**extra: Any) -> dict[str, Any]:
        return {**extra, "steps": [{"parallel": [{"id": "x", "tool": "alpha__sleep", "arguments": {"seconds": 5}},
                                                 {"id": "z", "tool": "mirror", "arguments": {"q": 1}}]},
                                   {"id": "after", "tool": "mark", "arguments": {"ran": True}}]}
    config = write_config(config_text(servers=alpha(piddir), gateway={**PATIENT, "request_timeout": "2s"},
                                      command_tools={"mirror": MIRROR, "mark": mark_tool(log)},
                                      pipelines={"slow": slow(timeout="1s"), "slow_default": slow()}))
    results: dict[str, tuple[types.CallToolResult, float]] = {}
    with anyio.fail_after(45):
        async with mcpd_client(mcpd_bin, config, tmp_path) as (session, handle):
            assert text_of(await session.call_tool("alpha__echo", {"text": "warm"})) == "warm"

            async def call(name: str) -> None:
                started = time.monotonic()
                result = await session.call_tool(name, {})
                results[name] = (result, time.monotonic() - started)

            async with anyio.create_task_group() as tg:
                tg.start_soon(call, "slow")
                tg.start_soon(call, "slow_default")
            stats: dict[str, Any] = {}
            for _ in range(50):
                stats = json.loads(text_of(await session.call_tool("alpha__stats", {})))
                if stats["sleep_cancelled"] >= 2:
                    break
                await anyio.sleep(0.05)
    assert handle.returncode == 0, handle.stderr_text()[-3000:]

    result, seconds = results["slow"]
    assert result.is_error is True, result
    assert text_of(result) == 'pipeline "slow": did not finish within 1 s (its timeout); still running: step "x"', result
    assert 0.9 <= seconds < 1.8, f"slow answered after {seconds:.2f} s"
    result, seconds = results["slow_default"]
    assert result.is_error is True, result
    assert text_of(result) == 'pipeline "slow_default": did not finish within 2 s (its timeout); still running: step "x"', result
    assert 1.9 <= seconds < 2.8, f"slow_default answered after {seconds:.2f} s"
    assert marks(log) == [], f"a stage after the deadline ran: {marks(log)}"
    assert stats["sleep_started"] == 2 and stats["sleep_cancelled"] == 2, stats


@pytest.mark.parametrize("how", ["deadline", "failing-sibling"])
def test_pipeline_ending_with_a_command_step_running(mcpd_bin, write_config, tmp_path, raw_mcpd, mcpd_env, how):
    """A command tool step (`sleep 2`, then it would write a file) is still running when its
    pipeline ends: at its 1 s deadline, or because its parallel sibling (a command that exits 3)
    failed. The call is an isError result naming the reason; mcpd then still answers (a mirror
    call, a ping), exits 0 when its input closes, and the command never writes its file (its
    process group was killed)."""
    written = tmp_path / "late-ran.txt"
    tools = {"late": {"command": ["sh", "-c", 'cat >/dev/null; sleep 2; echo ran >> "$0"', str(written)]},
             "broken": {"command": ["sh", "-c", "cat >/dev/null; sleep 0.2; echo nope >&2; exit 3"]},
             "mirror": MIRROR}
    if how == "deadline":
        pipeline = {"timeout": "1s", "steps": [{"id": "y", "tool": "late"}]}
        expected = 'pipeline "p": did not finish within 1 s (its timeout); still running: step "y"'
    else:
        pipeline = {"steps": [{"parallel": [{"id": "y", "tool": "late"}, {"id": "bad", "tool": "broken"}]}]}
        expected = 'pipeline "p": step "bad" (broken) failed: command tool "broken" failed'
    config = write_config(config_text(command_tools=tools, pipelines={"p": pipeline}))
    p: LineProcess = raw_mcpd(config)
    p.initialize()
    started = time.monotonic()
    _, msg, _ = p.request("tools/call", {"name": "p", "arguments": {}}, timeout=10)
    assert msg.get("result", {}).get("isError") is True, msg
    assert msg["result"]["content"][0]["text"].startswith(expected), msg
    time.sleep(0.3)  # what follows the end of the pipeline's steps' session happens now
    assert p.proc.poll() is None, (f"mcpd exited {p.proc.poll()} after answering the pipeline's call; stderr:\n"
                                   f"{p.stderr_text()[-3000:]}")
    _, msg, _ = p.request("tools/call", {"name": "mirror", "arguments": {"still": "here"}}, timeout=10)
    assert msg.get("result", {}).get("structuredContent") == {"still": "here"}, msg
    p.ping()
    time.sleep(max(0.0, started + 2.6 - time.monotonic()))
    assert not written.exists(), "the command of a step of an ended pipeline kept running and wrote its file"
    p.close_stdin()
    code = p.wait(10)
    assert code == 0, f"mcpd exit status {code}; stderr:\n{p.stderr_text()[-3000:]}"
    assert "Fatal error" not in p.stderr_text(), p.stderr_text()[-3000:]


def test_cancel_stops_a_pipeline_and_its_steps(mcpd_bin, write_config, piddir, tmp_path, raw_mcpd):
    """A pipeline whose first step is alpha__sleep 30 and whose second writes a mark is running
    when the client cancels it (notifications/cancelled, string id): alpha counts the sleep
    cancelled within 5 s, no answer to the call comes (the next answer is the stats call's), the
    mark is never written, and the pipeline still runs when called again with a short sleep."""
    log = tmp_path / "marks.jsonl"
    steps = [{"id": "nap", "tool": "alpha__sleep", "arguments": {"seconds": "{{input.seconds}}"}},
             {"id": "after", "tool": "mark", "arguments": {"ran": True}}]
    config = write_config(config_text(servers=alpha(piddir), gateway=PATIENT, command_tools={"mark": mark_tool(log)},
                                      pipelines={"p": {"steps": steps}}))
    p: LineProcess = raw_mcpd(config)
    p.initialize()
    _, msg, _ = p.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "warm"}}, timeout=30)
    assert "result" in msg, msg

    def stats() -> dict[str, Any]:
        _, answer, _ = p.request("tools/call", {"name": "alpha__stats", "arguments": {}}, timeout=10)
        return json.loads(answer["result"]["content"][0]["text"])

    p.send_raw('{"jsonrpc":"2.0","id":"run-1","method":"tools/call","params":{"name":"p","arguments":{"seconds":30}}}')
    deadline = time.monotonic() + 5
    while stats()["sleep_started"] < 1:
        assert time.monotonic() < deadline, "alpha's sleep did not start"
        time.sleep(0.05)
    p.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "run-1"}})
    deadline = time.monotonic() + 5
    while (counts := stats())["sleep_cancelled"] < 1:
        assert time.monotonic() < deadline, f"the step was not cancelled: {counts}"
        time.sleep(0.05)
    assert marks(log) == [], marks(log)
    _, msg, _ = p.request("tools/call", {"name": "p", "arguments": {"seconds": 0.1}}, timeout=10)
    assert msg.get("result", {}).get("isError") is not True, msg
    assert marks(log) == [{"ran": True}], marks(log)


# --------------------------------------------------------------------------- roles


ROLE_PIPELINES = {"greet": {"steps": [{"id": "hi", "tool": "alpha__echo", "arguments": {"text": "hi {{input.name}}"}}]}}
ROLES = {"runner": ["greet"], "full": ["greet", "alpha__e*"], "outsider": ["alpha__*"]}


def role_sessions(raw_mcpd, config: Path, mcpd_env: dict[str, str], *roles: str) -> list[LineProcess]:
    """One initialized `mcpd stdio` per role (MCPD_ROLE), started together."""
    started = []
    for role in roles:
        env = dict(mcpd_env, MCPD_ROLE=role)
        env.pop("MCP_GATEWAY_ROLE", None)
        started.append(raw_mcpd(config, env=env))
    for p in started:
        p.initialize(timeout=40)
    return started


def listed(p: LineProcess) -> list[str]:
    _, msg, _ = p.request("tools/list")
    return [t["name"] for t in msg["result"]["tools"]]


def test_roles_apply_to_every_step(mcpd_bin, write_config, piddir, raw_mcpd, mcpd_env):
    """roles runner: [greet], full: [greet, alpha__e*] (MCPD_ROLE over stdio). runner lists only
    greet, and its call is isError `pipeline "greet": step "hi" (alpha__echo) failed: Tool
    "alpha__echo" is not available to role "runner" (roles.runner in the config)`; full lists
    alpha__echo and greet and gets "hi Ada"."""
    config = write_config(config_text(servers=alpha(piddir), gateway=PATIENT, roles=ROLES, pipelines=ROLE_PIPELINES))
    runner, full = role_sessions(raw_mcpd, config, mcpd_env, "runner", "full")
    assert listed(runner) == ["greet"]
    _, msg, _ = runner.request("tools/call", {"name": "greet", "arguments": {"name": "Ada"}}, timeout=20)
    assert msg["result"] == {"content": [{"type": "text", "text": 'pipeline "greet": step "hi" (alpha__echo) failed: '
                                          'Tool "alpha__echo" is not available to role "runner" (roles.runner in the config)'}],
                             "isError": True}, msg
    assert listed(full) == ["alpha__echo", "greet"]
    _, msg, _ = full.request("tools/call", {"name": "greet", "arguments": {"name": "Ada"}}, timeout=20)
    assert msg["result"]["content"] == [{"type": "text", "text": "hi Ada"}] and not msg["result"].get("isError"), msg


def test_a_role_without_the_pipeline_cannot_call_it(mcpd_bin, write_config, piddir, raw_mcpd, mcpd_env):
    """role outsider: [alpha__*]: greet is not listed and tools/call greet is a -32602 JSON-RPC error
    (nothing runs); like any tool hidden by a role (test_roles), the refusal names the role:
    `Tool "greet" is not available to role "outsider" (roles.outsider in the config)`."""
    config = write_config(config_text(servers=alpha(piddir), gateway=PATIENT, roles=ROLES, pipelines=ROLE_PIPELINES))
    (outsider,) = role_sessions(raw_mcpd, config, mcpd_env, "outsider")
    names = listed(outsider)
    assert "greet" not in names and "alpha__echo" in names, names
    _, msg, _ = outsider.request("tools/call", {"name": "greet", "arguments": {"name": "Ada"}}, timeout=20)
    assert "error" in msg and "result" not in msg, msg
    assert msg["error"]["code"] == -32602, msg
    assert msg["error"]["message"] == 'Tool "greet" is not available to role "outsider" (roles.outsider in the config)', msg


# --------------------------------------------------------------------------- recursion


def test_a_pipeline_calling_itself_stops_at_depth_8(mcpd_bin, write_config, raw_mcpd, tmp_path):
    """loop calls loop: within 5 s an isError result made of 8 nested `pipeline "loop": step "again"
    (loop) failed: ` and ending `pipeline "loop": pipelines call each other more than 8 deep (a
    pipeline that calls itself?)`. ping and pong calling each other stop likewise. outer calling
    inner (a pipeline calling a pipeline) works, and with a progress token the caller gets outer's
    one step's progress only (none of inner's steps); mcpd exits 0 afterwards."""
    pipelines = {
        "loop": {"steps": [{"id": "again", "tool": "loop"}]},
        "ping": {"steps": [{"id": "p", "tool": "pong"}]},
        "pong": {"steps": [{"id": "q", "tool": "ping"}]},
        "inner": {"steps": [{"id": "m", "tool": "mirror", "arguments": {"v": "{{input.v}}"}}], "result": "{{steps.m.structured}}"},
        "outer": {"steps": [{"id": "i", "tool": "inner", "arguments": {"v": "{{input.v}}"}}],
                  "result": "inner gave {{steps.i.structured/v}}"},
    }
    config = write_config(config_text(command_tools={"mirror": MIRROR}, pipelines=pipelines))
    p = raw_mcpd(config)
    p.initialize()
    started = time.monotonic()
    _, msg, _ = p.request("tools/call", {"name": "loop", "arguments": {}}, timeout=10)
    assert time.monotonic() - started < 5
    result = msg.get("result", {})
    assert result.get("isError") is True, msg
    text = result["content"][0]["text"]
    layer = 'pipeline "loop": step "again" (loop) failed: '
    assert text == layer * 8 + 'pipeline "loop": pipelines call each other more than 8 deep (a pipeline that calls itself?)', text

    _, msg, _ = p.request("tools/call", {"name": "ping", "arguments": {}}, timeout=10)
    text = msg["result"]["content"][0]["text"]
    assert msg["result"].get("isError") is True and text.endswith("more than 8 deep (a pipeline that calls itself?)"), msg
    assert text.count(" failed: ") == 8, text

    notes: list[dict[str, Any]] = []
    p.send({"jsonrpc": "2.0", "id": "o1", "method": "tools/call",
            "params": {"name": "outer", "arguments": {"v": 41}, "_meta": {"progressToken": 77}}})
    _, msg = p.recv_response(10, on_notification=lambda _line, note: notes.append(note))
    assert msg.get("id") == "o1" and msg["result"]["content"] == [{"type": "text", "text": "inner gave 41"}], msg
    progress = [n["params"] for n in notes if n.get("method") == "notifications/progress"]
    assert progress == [{"progressToken": 77, "progress": 1, "total": 1, "message": "step i done"}], notes
    p.close_stdin()
    assert p.wait(10) == 0, p.stderr_text()[-3000:]


# --------------------------------------------------------------------------- meta mode


@pytest.mark.anyio
async def test_meta_mode_finds_and_invokes_pipelines(mcpd_bin, write_config, piddir, tmp_path):
    """gateway.mode meta: tools/list is the four meta tools; gateway_search_tools "repeat a phrase
    twice" gives shout_twice first, server mcpd, with its description and input schema;
    gateway_list_tools {server: mcpd} lists it; calling it by its exposed name gives "hey hey";
    gateway_invoke {server: mcpd, tool: shout_twice, arguments: {phrase: hey}} gives the same."""
    schema = {"type": "object", "properties": {"phrase": {"type": "string", "description": "What to say"}}, "required": ["phrase"]}
    pipelines = {"shout_twice": {
        "description": "Repeat a phrase twice through the echo tool",
        "input_schema": schema,
        "steps": [{"id": "one", "tool": "alpha__echo", "arguments": {"text": "{{input.phrase}}"}},
                  {"id": "two", "tool": "alpha__echo", "arguments": {"text": "{{steps.one.text}} {{steps.one.text}}"}}],
        "result": "{{steps.two.text}}"}}
    config = write_config(config_text(servers=alpha(piddir), gateway={**PATIENT, "mode": "meta"}, pipelines=pipelines))
    with anyio.fail_after(45):
        async with mcpd_client(mcpd_bin, config, tmp_path) as (session, handle):
            names = sorted(t.name for t in (await session.list_tools()).tools)
            search = await session.call_tool("gateway_search_tools", {"query": "repeat a phrase twice"})
            listing = await session.call_tool("gateway_list_tools", {"server": "mcpd"})
            direct = await session.call_tool("shout_twice", {"phrase": "hey"})
            try:
                invoked: types.CallToolResult | MCPError = await session.call_tool(
                    "gateway_invoke", {"server": "mcpd", "tool": "shout_twice", "arguments": {"phrase": "hey"}})
            except MCPError as exc:
                invoked = exc
    assert handle.returncode == 0, handle.stderr_text()[-3000:]
    assert names == ["gateway_invoke", "gateway_list_servers", "gateway_list_tools", "gateway_search_tools"], names
    hits = search.structured_content["tools"]
    assert hits and {k: hits[0][k] for k in ("server", "tool", "name", "description", "inputSchema")} == {
        "server": "mcpd", "tool": "shout_twice", "name": "shout_twice",
        "description": "Repeat a phrase twice through the echo tool", "inputSchema": schema}, search
    assert [t["tool"] for t in listing.structured_content["tools"]] == ["shout_twice"], listing
    assert [c.text for c in direct.content] == ["hey hey"] and direct.is_error is not True, direct
    assert not isinstance(invoked, MCPError), (
        f"gateway_invoke of the pipeline found by gateway_search_tools is a JSON-RPC error: {invoked.code} {invoked.message}")
    assert invoked.is_error is not True and [c.text for c in invoked.content] == ["hey hey"], invoked


# --------------------------------------------------------------------------- HTTP


@pytest.mark.anyio
async def test_pipelines_over_http(serve, write_config, piddir):
    """`mcpd serve` with alpha: the SDK Streamable HTTP client lists greet and nap, calls greet
    {name: Bo} and gets "hello Bo + 2" and 4 progress notifications; a pipeline whose step fails
    is an isError result naming the step. A stateless-era POST (2026-07-28, Mcp-Name twice, a
    progress token) of a two-step pipeline is answered 200: 2 progress events for its token (in the
    event stream), then the result "Cy and Cy"."""
    failing = {"steps": [{"id": "boom", "tool": "alpha__fail"}]}
    twice = {"steps": [{"id": "one", "tool": "alpha__echo", "arguments": {"text": "{{input.name}}"}},
                       {"id": "two", "tool": "alpha__echo", "arguments": {"text": "{{steps.one.text}} and {{steps.one.text}}"}}],
             "result": "{{steps.two.text}}"}
    config = write_config(config_text(servers=alpha(piddir), gateway=PATIENT, command_tools={"nap": NAP},
                                      pipelines={"greet": GREET, "failing": failing, "twice": twice}))
    served = serve(config)
    seen, on_progress = progress_recorder()
    with anyio.fail_after(45):
        async with sdk_session(served.url) as session:
            names = [t.name for t in (await session.list_tools()).tools]
            result = await session.call_tool("greet", {"name": "Bo"}, progress_callback=on_progress)
            await progress_arrives(seen, 4)
            failed = await session.call_tool("failing", {})
    assert names[-4:] == ["nap", "greet", "failing", "twice"], names
    assert [c.text for c in result.content] == ["hello Bo + 2"] and result.is_error is not True, result
    assert [(p, t) for p, t, _ in seen] == [(1.0, 4.0), (2.0, 4.0), (3.0, 4.0), (4.0, 4.0)], seen
    assert seen[0][2] == "step first done" and seen[3][2] == "step last done", seen
    assert failed.is_error is True, failed
    assert text_of(failed) == 'pipeline "failing": step "boom" (alpha__fail) failed: alpha failed on purpose', failed

    meta = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {},
            "progressToken": "tok-1"}
    body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "twice", "arguments": {"name": "Cy"}, "_meta": meta}}
    headers = {"Content-Type": "application/json", "Accept": BOTH, "MCP-Protocol-Version": MODERN,
               "Mcp-Method": "tools/call", "Mcp-Name": "twice"}
    reply = http_request(served.port, "POST", dumps(body), headers, timeout=20)
    assert reply.status == 200, reply
    if reply.headers.get("content-type", "").startswith("text/event-stream"):
        messages = [json.loads(data) for _, data in reply.events()]
    else:
        messages = [reply.json()]
    answers = [m for m in messages if m.get("id") == 9]
    progress = [m["params"] for m in messages if m.get("method") == "notifications/progress"]
    assert len(answers) == 1 and messages[-1] is answers[0], messages
    assert answers[0]["result"]["content"] == [{"type": "text", "text": "Cy and Cy"}], answers
    assert [(p["progressToken"], p["progress"], p["total"], p["message"]) for p in progress] == [
        ("tok-1", 1, 2, "step one done"), ("tok-1", 2, 2, "step two done")], messages
