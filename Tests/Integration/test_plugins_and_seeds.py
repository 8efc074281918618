"""Python plugins (`plugins:`, `gateway.plugins_python`) and the seeds' configs run unchanged
(mcp-unify's gateway.yaml, seed 001's servers.yaml, config discovery, `$$`, `mcpServers`).

The plugin modules are written by the tests into a project folder under tmp_path (the config's
folder): `my_tools/calculator.py` in mcp-unify's spelling (`from mcp_gateway import tool`: a sync
`@tool add(a: int, b: int) -> int` and an async `@tool() repeat(text: str, times: int = 2)`),
`loud.py` in mcpd's (`from mcpd import tool`, `@tool(name="shout", description=...)` on a function
named make_loud, and an undecorated function), `where.py` (`from mcp_gateway.plugins import tool`,
`@tool(title=...)`, importing a helper module that only mcpd's own PYTHONPATH reaches) and
`broken.py` (imports a module that does not exist).

What is tested:
- nothing named mcp_gateway (nor mcpd) is importable in .venv or .venv-mcp1: the host provides them.
- mcp 2.x (`gateway.plugins_python: bin/python`, a wrapper relative to the config's folder, mcpd run
  from another folder; `{module: broken, enabled: false}` skipped): `mcpd list` starts the server
  `plugins` (log line `backend "plugins" started (pid N): <folder>/bin/python -c <mcpd's plugin host>
  my_tools.calculator loud where`, the host's source never in the log) and lists exactly
  plugins__add, plugins__repeat, plugins__shout, plugins__where with their descriptions; a second
  run over stdio (same state directory) lists the four tools from the catalog without starting the
  backend (no `started` line 1 s after tools/list), with the schemas from the type hints (add: a, b
  integer, both required; repeat: text string required, times integer not required; shout: text),
  descriptions from docstrings unless given, where's title; the first call starts it, and add, the
  async repeat (multi-byte and escape-dense text, exact), shout (exact) and where (cwd = the
  config's folder, the helper from mcpd's PYTHONPATH imported) answer; make_loud is not a tool.
- mcp 1.x (.venv-mcp1, FastMCP; skipped when that venv is missing): the same tools listed and called.
- a module that fails to import: mcpd logs `mcpd plugins: cannot import broken: ModuleNotFoundError:
  No module named '...'`; no plugins__ tool is listed and plugins__add is refused -32602 `Tool
  "plugins__add" is not available: backend "plugins" ...`; beta beside it serves.
- the host's command line, seen by a fake interpreter that records its argv, cwd and PYTHONPATH
  (`mcpd list`): `-c HOST MODULES...` with the modules in order and the disabled ones left out
  whatever the key order inside the entry (`{enabled: false, module: x}` as well as
  `{module: x, enabled: false}`), cwd the config's folder, PYTHONPATH the config's folder followed
  by mcpd's own PYTHONPATH (only the folder when mcpd has none).
- `mcpd check`: plugins (both forms) with plugins_python and a server beside them is OK (`2 servers
  enabled: beta, plugins`, also --json); a server named plugins, a module name with a dash and an
  unknown key in an entry (`did you mean "module"?`) are errors (exit 1); a plugins_python that does
  not exist is an error naming the resolved path at a line that exists in the file.
- roles (in mcp-unify's gateway.yaml below): MCPD_ROLE=calc (`["plugins__*", "beta__getenv"]`) lists
  plugins__add, plugins__repeat and beta__getenv only, calls plugins__add, and beta__echo is refused
  `Tool "beta__echo" is not available to role "calc" (roles.calc in the config)`.
- config discovery without --config (`mcpd check`, HOME and XDG_CONFIG_HOME at empty folders,
  MCPD_CONFIG unset): ./gateway.yaml alone and ./mcp-gateway.yaml alone are found; ./mcpd.yaml wins
  over both and ./gateway.yaml over ./mcp-gateway.yaml; a local file wins over
  $XDG_CONFIG_HOME/mcpd/mcpd.yaml, which is used when there is none; MCPD_CONFIG wins over all;
  with none, exit 1 and the error lists ./mcpd.yaml, ./gateway.yaml, ./mcp-gateway.yaml and
  $XDG_CONFIG_HOME/mcpd/mcpd.yaml (~/.config/mcpd/mcpd.yaml when XDG_CONFIG_HOME is unset).
- mcp-unify's gateway.yaml (servers with command/args/env, top-level idle_timeout: 300, plugins
  without plugins_python: `python3` from PATH, roles with a null role), found in the current
  folder by `mcpd stdio` without --config, driven by the SDK's stdio_client with
  MCP_GATEWAY_ROLE=admin (null: everything): lists beta's and the plugins' tools, calls
  plugins__add and beta__getenv (env `5$$ each` arrives as `5$ each`).
- seed 001's servers.yaml (`mcpd serve -c servers.yaml` without --port): top-level `port` is where
  it listens (the start-up line names http://127.0.0.1:PORT/mcp), `enable_meta_mcp: true` lists
  exactly gateway_list_servers, gateway_list_tools, gateway_search_tools, gateway_invoke (SDK
  streamable HTTP client); `backends:` with one-string commands split like a shell (a quoted path
  with a space), descriptions shown by gateway_list_servers; the `http_url` backend is skipped with
  the warning `servers.yaml:L:C: server "remote" uses url, and remote backends are not supported by
  this version of mcpd; it is skipped` and is not listed; through gateway_invoke, beta's env values
  `a$$b` and `x$${HOME}y` arrive as `a$b` and `x${HOME}y`, alpha echoes multi-byte text; SIGTERM:
  exit 0. `mcpd check` says OK for it with the same warning.
- a desktop client's `mcpServers` JSON still passes `mcpd check`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcpd_helpers import (
    ALPHA_TOOLS,
    BETA_TOOLS,
    MCP1_PYTHON,
    REPO_ROOT,
    backend_script,
    describe,
    kill_group,
    run_mcpd,
    server_entry,
    to_yaml,
)
from test_daily_use import call, call_error, call_text, listed_tool_names, stop, tool_names, wait_stderr
from test_streamable_http import HOST, free_port

pytestmark = [
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
PLUGIN_TOOLS = {"plugins__add", "plugins__repeat", "plugins__shout", "plugins__where"}
BETA_NAMES = {f"beta__{t}" for t in BETA_TOOLS}
META_TOOLS = ["gateway_list_servers", "gateway_list_tools", "gateway_search_tools", "gateway_invoke"]
HOST_LOG = "-c <mcpd's plugin host>"
MISSING_MODULE = "nonexistent_module_for_mcpd_tests"
TEXT = "h\u00e9llo w\u00f6rld \U0001f389 \u6f22\u5b57 \"q\" \\ tab\t new\nline \u2028 stra\u00dfe"

CALCULATOR = '''\
"""A plugin written for mcp-unify."""
import asyncio

from mcp_gateway import tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool()
async def repeat(text: str, times: int = 2) -> str:
    """Repeat the text, asynchronously."""
    await asyncio.sleep(0.01)
    return text * times
'''

LOUD = '''\
from mcpd import tool


@tool(name="shout", description="Upper-cases the text and adds an exclamation mark.")
def make_loud(text: str) -> str:
    """This docstring is not the description."""
    return text.upper() + "!"


def not_a_tool(x: int) -> int:
    return x
'''

WHERE = '''\
import json
import os

import mcpd_test_helper  # only on mcpd's own PYTHONPATH
from mcp_gateway.plugins import tool


@tool(title="Where am I")
def where() -> str:
    """The plugin host's working directory and the helper's mark."""
    return json.dumps({"cwd": os.getcwd(), "mark": mcpd_test_helper.MARK})
'''

BROKEN = f'''\
from mcp_gateway import tool

import {MISSING_MODULE}


@tool
def never() -> str:
    return "never"
'''


# --------------------------------------------------------------------------- helpers


def write_executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def make_project(root: Path) -> Path:
    """The plugin modules in root (the config's folder), a helper module in root/../helper-path
    (reached only through mcpd's PYTHONPATH) and root/bin/python (a wrapper of .venv's python)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "my_tools").mkdir(exist_ok=True)
    (root / "my_tools" / "__init__.py").write_text("")
    (root / "my_tools" / "calculator.py").write_text(CALCULATOR)
    (root / "loud.py").write_text(LOUD)
    (root / "where.py").write_text(WHERE)
    (root / "broken.py").write_text(BROKEN)
    helper = root.parent / "helper-path"
    helper.mkdir(exist_ok=True)
    (helper / "mcpd_test_helper.py").write_text('MARK = "helper from PYTHONPATH \u2713"\n')
    write_executable(root / "bin" / "python", f'#!/bin/sh\nexec "{VENV_PYTHON}" "$@"\n')
    return root


def plugin_env(mcpd_env: dict[str, str], project: Path) -> dict[str, str]:
    """mcpd's environment with PYTHONPATH naming the helper's folder."""
    return dict(mcpd_env, PYTHONPATH=str(project.parent / "helper-path"))


def tools_by_name(p) -> dict[str, dict[str, Any]]:
    line, msg, _ = p.request("tools/list", {}, timeout=30)
    assert "result" in msg, line
    return {t["name"]: t for t in msg["result"]["tools"]}


def assert_plugin_schemas(tools: dict[str, dict[str, Any]]) -> None:
    """The four plugin tools' input schemas, descriptions and where's title."""
    add = tools["plugins__add"]
    assert add["description"] == "Add two integers.", add
    props = add["inputSchema"]["properties"]
    assert add["inputSchema"]["type"] == "object", add
    assert set(props) == {"a", "b"} and props["a"]["type"] == "integer" and props["b"]["type"] == "integer", add
    assert sorted(add["inputSchema"]["required"]) == ["a", "b"], add

    repeat = tools["plugins__repeat"]
    assert repeat["description"] == "Repeat the text, asynchronously.", repeat
    props = repeat["inputSchema"]["properties"]
    assert props["text"]["type"] == "string" and props["times"]["type"] == "integer", repeat
    assert repeat["inputSchema"].get("required") == ["text"], repeat

    shout = tools["plugins__shout"]
    assert shout["description"] == "Upper-cases the text and adds an exclamation mark.", shout
    assert shout["inputSchema"]["properties"]["text"]["type"] == "string", shout
    assert shout["inputSchema"]["required"] == ["text"], shout

    where = tools["plugins__where"]
    assert where["description"] == "The plugin host's working directory and the helper's mark.", where
    assert where.get("title") == "Where am I", where
    assert not where["inputSchema"].get("required"), where


def assert_plugin_calls(p, project: Path) -> None:
    """add, the async repeat, shout and where answer exactly."""
    res = call(p, "plugins__add", {"a": 40, "b": 2}, timeout=30)
    assert "result" in res and res["result"].get("isError") is False, res
    assert res["result"]["content"][0]["text"] == "42", res
    assert res["result"].get("structuredContent") == {"result": 42}, res
    assert call_text(p, "plugins__add", {"a": -7, "b": 1_000_000_000_000}) == "999999999993"
    assert call_text(p, "plugins__repeat", {"text": TEXT, "times": 3}) == TEXT * 3
    assert call_text(p, "plugins__repeat", {"text": TEXT}) == TEXT * 2
    assert call_text(p, "plugins__shout", {"text": TEXT}) == TEXT.upper() + "!"
    where = json.loads(call_text(p, "plugins__where", {}))
    assert where == {"cwd": str(project), "mark": "helper from PYTHONPATH \u2713"}, where
    bad = call(p, "plugins__make_loud", {"text": "x"})
    assert "error" in bad and "Unknown tool" in bad["error"]["message"], bad


def started_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if 'backend "plugins" started' in line]


def run_serve_until_listening(mcpd_bin: str, args: list[str], port: int, stderr_path: Path,
                              env: dict[str, str], cwd: str) -> subprocess.Popen:
    with open(stderr_path, "ab") as err:
        proc = subprocess.Popen([mcpd_bin, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, env=env, cwd=cwd, start_new_session=True)
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"mcpd serve exited {proc.returncode} before listening on {port}\n"
                                 f"{stderr_path.read_text(errors='replace')[-3000:]}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return proc
        except OSError:
            if time.monotonic() > deadline:
                kill_group(proc.pid)
                raise AssertionError(f"nothing listening on port {port} (the config's port:) after 15 s\n"
                                     f"{stderr_path.read_text(errors='replace')[-3000:]}") from None
            time.sleep(0.05)


def result_json(result) -> Any:
    assert result.is_error is False, result
    return json.loads(result.content[0].text)


# --------------------------------------------------------------------------- 1. plugins


@pytest.mark.parametrize("python", [VENV_PYTHON, MCP1_PYTHON], ids=["venv", "venv-mcp1"])
def test_mcp_gateway_is_not_installed(python: Path):
    """Nothing named mcp_gateway or mcpd is importable outside the plugin host."""
    if not python.exists():
        pytest.skip(f"{python} is missing")
    for module in ("mcp_gateway", "mcpd", "mcp_gateway.plugins"):
        proc = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, text=True, timeout=30)
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, (module, proc.returncode, proc.stderr)


def test_plugins_list_lazily_and_answer(mcpd_bin, tmp_path, mcpd_env, raw_mcpd):
    """mcp 2.x plugins via a relative plugins_python: `mcpd list` (run from another folder) starts
    the host and lists the four tools; a second run over stdio lists them from the catalog without
    starting it, with their schemas; the first call starts it, and every tool answers exactly."""
    project = make_project(tmp_path / "project")
    config = project / "gateway.yaml"
    config.write_text(
        "plugins:\n"
        "  - module: my_tools.calculator\n"
        "  - loud\n"
        "  - {module: where}\n"
        "  - {module: broken, enabled: false}\n"
        "gateway:\n"
        "  plugins_python: bin/python\n"
        "  startup_wait: 30s\n"
    )
    env = plugin_env(mcpd_env, project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    listed = run_mcpd(mcpd_bin, "list", "-c", str(config), env=env, cwd=str(elsewhere), timeout=40)
    assert listed.returncode == 0, describe(listed)
    assert listed_tool_names(listed.stdout) == PLUGIN_TOOLS, describe(listed)
    table = {line.split()[0]: line.split(None, 1)[1].strip() for line in listed.stdout.splitlines()
             if line.startswith("plugins__")}
    assert table["plugins__add"] == "Add two integers.", table
    assert table["plugins__shout"] == "Upper-cases the text and adds an exclamation mark.", table
    started = started_lines(listed.stderr)
    assert len(started) == 1, describe(listed)
    assert started[0].endswith(f"): {project}/bin/python {HOST_LOG} my_tools.calculator loud where"), started[0]
    assert "_registry" not in listed.stderr and "importlib" not in listed.stderr, describe(listed)

    p = raw_mcpd(config, env=env)
    p.initialize()
    tools = tools_by_name(p)
    assert set(tools) == PLUGIN_TOOLS, sorted(tools)
    assert_plugin_schemas(tools)
    time.sleep(1.0)
    assert started_lines(p.stderr_text()) == [], f"listing started the backend:\n{p.stderr_text()}"
    assert_plugin_calls(p, project)
    assert len(started_lines(p.stderr_text())) == 1, p.stderr_text()
    stop(p)


def test_plugins_with_mcp1_fastmcp(tmp_path, mcpd_env, raw_mcpd):
    """The same modules served by an interpreter with mcp<2 (FastMCP): listed with the same
    schemas, and every tool answers."""
    if not MCP1_PYTHON.exists():
        pytest.skip(f"{MCP1_PYTHON} is missing")
    project = make_project(tmp_path / "project")
    config = project / "mcpd.yaml"
    config.write_text(
        "plugins: [my_tools.calculator, loud, where]\n"
        "gateway:\n"
        f"  plugins_python: {json.dumps(str(MCP1_PYTHON))}\n"
        "  startup_wait: 30s\n"
    )
    p = raw_mcpd(config, env=plugin_env(mcpd_env, project))
    p.initialize(timeout=40)
    tools = tools_by_name(p)
    assert set(tools) == PLUGIN_TOOLS, f"{sorted(tools)}\n{p.stderr_text()[-3000:]}"
    assert_plugin_schemas(tools)
    assert_plugin_calls(p, project)
    assert f"{MCP1_PYTHON} {HOST_LOG} my_tools.calculator loud where" in p.stderr_text()
    stop(p)


def test_a_module_that_fails_to_import(tmp_path, mcpd_env, raw_mcpd, piddir):
    """broken imports a missing module: the host exits, mcpd logs `mcpd plugins: cannot import
    broken: ModuleNotFoundError: ...`, no plugins__ tool is listed, plugins__add is refused saying
    the backend plugins is not available; beta beside it serves."""
    project = make_project(tmp_path / "project")
    config = project / "mcpd.yaml"
    config.write_text(
        to_yaml({"servers": {"beta": server_entry("beta", piddir)}}) + "\n"
        "plugins: [my_tools.calculator, broken]\n"
        "gateway:\n"
        f"  plugins_python: {json.dumps(str(VENV_PYTHON))}\n"
        "  startup_wait: 30s\n"
    )
    p = raw_mcpd(config, env=plugin_env(mcpd_env, project))
    p.initialize(timeout=40)
    line = wait_stderr(p, "mcpd plugins: cannot import", timeout=30)
    assert line.endswith(f"mcpd plugins: cannot import broken: ModuleNotFoundError: No module named '{MISSING_MODULE}'"), line
    assert tool_names(p) == BETA_NAMES
    message = call_error(p, "plugins__add", {"a": 1, "b": 2})
    assert message.startswith('Tool "plugins__add" is not available: backend "plugins"'), message
    assert call_text(p, "beta__upper", {"text": "stra\u00dfe"}) == "STRASSE"
    stop(p)


FAKE_PYTHON = '''#!/bin/sh
"{python}" -c 'import json, os, sys; json.dump({{"argv": sys.argv[1:], "cwd": os.getcwd(), "PYTHONPATH": os.environ.get("PYTHONPATH")}}, open("{out}", "w"))' "$@"
exit 3
'''


def fake_interpreter_run(mcpd_bin: str, tmp_path: Path, mcpd_env: dict[str, str], plugins_yaml: str,
                         pythonpath: str | None) -> dict[str, Any]:
    """`mcpd list` of a config whose plugins_python records its argv, cwd and PYTHONPATH."""
    project = tmp_path / "fake-project"
    project.mkdir(exist_ok=True)
    out = tmp_path / "argv.json"
    out.unlink(missing_ok=True)
    write_executable(project / "tools" / "py", FAKE_PYTHON.format(python=VENV_PYTHON, out=out))
    config = project / "mcpd.yaml"
    config.write_text(plugins_yaml + "gateway:\n  plugins_python: tools/py\n  restart_limit: 1\n")
    env = dict(mcpd_env)
    env.pop("PYTHONPATH", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    proc = run_mcpd(mcpd_bin, "list", "-c", str(config), env=env, cwd=str(tmp_path), timeout=30)
    assert out.exists(), f"the plugins' interpreter was not run\n{describe(proc)}"
    seen = json.loads(out.read_text())
    seen["project"] = str(project)
    seen["stderr"] = proc.stderr
    return seen


def test_plugin_host_command_line_cwd_and_pythonpath(mcpd_bin, tmp_path, mcpd_env):
    """The interpreter gets `-c HOST MODULES...` (the host defining mcpd and mcp_gateway), runs in the
    config's folder with PYTHONPATH = that folder + mcpd's PYTHONPATH (the folder alone without one)."""
    plugins = "plugins:\n  - my_tools.calculator\n  - {module: a.b.c}\n  - module: loud\n"
    seen = fake_interpreter_run(mcpd_bin, tmp_path, mcpd_env, plugins, "/opt/one:/opt/two")
    argv = seen["argv"]
    assert argv[0] == "-c" and "mcp_gateway" in argv[1] and "def tool(" in argv[1], argv[:1]
    assert argv[2:] == ["my_tools.calculator", "a.b.c", "loud"], argv[2:]
    assert seen["cwd"] == seen["project"], seen["cwd"]
    assert seen["PYTHONPATH"] == seen["project"] + ":/opt/one:/opt/two", seen["PYTHONPATH"]
    assert f"{seen['project']}/tools/py {HOST_LOG} my_tools.calculator a.b.c loud" in seen["stderr"], seen["stderr"]

    seen = fake_interpreter_run(mcpd_bin, tmp_path, mcpd_env, plugins, None)
    assert seen["PYTHONPATH"] == seen["project"], seen["PYTHONPATH"]


def test_disabled_plugin_is_left_out_whatever_the_key_order(mcpd_bin, tmp_path, mcpd_env):
    """`{enabled: false, module: x}` skips x as `{module: x, enabled: false}` does: the host is given
    only the enabled modules."""
    plugins = ("plugins:\n"
               "  - {enabled: false, module: first_disabled}\n"
               "  - my_tools.calculator\n"
               "  - {module: second_disabled, enabled: false}\n"
               "  - {module: loud, enabled: true}\n")
    seen = fake_interpreter_run(mcpd_bin, tmp_path, mcpd_env, plugins, None)
    assert seen["argv"][2:] == ["my_tools.calculator", "loud"], (
        f"modules given to the plugin host: {seen['argv'][2:]}")


def test_check_accepts_plugins_and_refuses_mistakes(mcpd_bin, tmp_path, mcpd_env, piddir):
    """check: plugins (both forms) + plugins_python + a server: OK with 2 servers (also --json);
    a server named plugins, a module name with a dash, an unknown key in an entry: exit 1."""
    project = make_project(tmp_path / "project")
    beta = to_yaml({"servers": {"beta": server_entry("beta", piddir)}}) + "\n"
    good = project / "good.yaml"
    good.write_text(beta + "plugins:\n  - my_tools.calculator\n  - {module: loud}\n"
                    f"gateway:\n  plugins_python: {json.dumps(str(VENV_PYTHON))}\n")
    check = run_mcpd(mcpd_bin, "check", "-c", str(good), env=mcpd_env)
    assert check.returncode == 0, describe(check)
    assert f"{good}: OK, 2 servers enabled: beta, plugins" in check.stdout, describe(check)
    assert "warning" not in check.stderr, describe(check)
    check = run_mcpd(mcpd_bin, "check", "--json", "-c", str(good), env=mcpd_env)
    assert check.returncode == 0, describe(check)
    report = json.loads(check.stdout)
    assert report["ok"] is True and sorted(report["servers"]) == ["beta", "plugins"] and report["errors"] == [], report

    clash = project / "clash.yaml"
    clash.write_text("plugins: [loud]\nservers:\n  plugins:\n"
                     f"    command: {json.dumps(str(VENV_PYTHON))}\n    args: [{json.dumps(backend_script('beta'))}]\n")
    check = run_mcpd(mcpd_bin, "check", "-c", str(clash), env=mcpd_env)
    assert check.returncode == 1, describe(check)
    assert 'a server is named "plugins", the name of the server of plugins:; rename it' in check.stderr, describe(check)

    dash = project / "dash.yaml"
    dash.write_text(beta + 'plugins: ["my-tools.calc"]\n')
    check = run_mcpd(mcpd_bin, "check", "-c", str(dash), env=mcpd_env)
    assert check.returncode == 1, describe(check)
    assert re.search(re.escape(str(dash)) + r':\d+:\d+: plugins\[0\]: "my-tools.calc" is not a Python module name',
                     check.stderr), describe(check)

    typo = project / "typo.yaml"
    typo.write_text(beta + "plugins:\n  - {modul: loud}\n")
    check = run_mcpd(mcpd_bin, "check", "-c", str(typo), env=mcpd_env)
    assert check.returncode == 1, describe(check)
    assert 'unknown key "modul" in plugins[0]; did you mean "module"?' in check.stderr, describe(check)


def test_check_missing_plugins_python_names_a_real_line(mcpd_bin, tmp_path, mcpd_env, piddir):
    """plugins_python: venv/bin/python, which does not exist in the config's folder: exit 1, the
    error names the resolved path at a line of the file (1..number of lines), not line 0."""
    project = make_project(tmp_path / "project")
    config = project / "missing.yaml"
    text = "plugins: [loud]\ngateway:\n  plugins_python: venv/bin/python\n"
    config.write_text(text)
    check = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert check.returncode == 1, describe(check)
    wanted = f'server "plugins": command "{project}/venv/bin/python" does not exist'
    assert wanted in check.stderr, describe(check)
    match = re.search(re.escape(str(config)) + r":(\d+)(?::\d+)?: " + re.escape(wanted), check.stderr)
    assert match is not None, describe(check)
    assert 1 <= int(match.group(1)) <= text.count("\n"), (
        f"the error's line {match.group(1)} is not a line of the {text.count(chr(10))}-line file:\n{check.stderr}")


# --------------------------------------------------------------------------- 2. the seeds' configs


def test_config_discovery_without_config_option(mcpd_bin, tmp_path, mcpd_env):
    """Which file `mcpd check` finds from the current folder, XDG_CONFIG_HOME and MCPD_CONFIG."""
    home = tmp_path / "home"
    home.mkdir()
    xdg = tmp_path / "xdg"
    xdg.mkdir()
    env = dict(mcpd_env, HOME=str(home), XDG_CONFIG_HOME=str(xdg))
    env.pop("MCPD_CONFIG", None)

    def server_config(name: str) -> str:
        return to_yaml({"servers": {name: {"command": str(VENV_PYTHON), "args": [backend_script("beta")]}}}) + "\n"

    def folder(label: str, files: dict[str, str]) -> Path:
        d = tmp_path / label
        d.mkdir()
        for file, server in files.items():
            (d / file).write_text(server_config(server))
        return d

    def found(cwd: Path, environment: dict[str, str] = env) -> str:
        check = run_mcpd(mcpd_bin, "check", env=environment, cwd=str(cwd))
        assert check.returncode == 0, describe(check)
        match = re.fullmatch(r"(.+): OK, 1 server enabled: (\S+)\n", check.stdout)
        assert match, describe(check)
        return f"{match.group(1)} -> {match.group(2)}"

    only_gateway = folder("only-gateway", {"gateway.yaml": "g"})
    assert found(only_gateway) == "gateway.yaml -> g"
    only_unify = folder("only-unify", {"mcp-gateway.yaml": "u"})
    assert found(only_unify) == "mcp-gateway.yaml -> u"
    both = folder("both", {"gateway.yaml": "g", "mcp-gateway.yaml": "u"})
    assert found(both) == "gateway.yaml -> g"
    three = folder("three", {"mcpd.yaml": "m", "gateway.yaml": "g", "mcp-gateway.yaml": "u"})
    assert found(three) == "mcpd.yaml -> m"

    empty = folder("empty", {})
    none = run_mcpd(mcpd_bin, "check", env=env, cwd=str(empty))
    assert none.returncode == 1, describe(none)
    assert (f"no configuration file found (tried ./mcpd.yaml, ./gateway.yaml, ./mcp-gateway.yaml, "
            f"{xdg}/mcpd/mcpd.yaml)") in none.stderr, describe(none)
    no_xdg = {k: v for k, v in env.items() if k != "XDG_CONFIG_HOME"}
    none = run_mcpd(mcpd_bin, "list", env=no_xdg, cwd=str(empty))
    assert none.returncode == 1, describe(none)
    assert (f"(tried ./mcpd.yaml, ./gateway.yaml, ./mcp-gateway.yaml, {home}/.config/mcpd/mcpd.yaml)"
            in none.stderr), describe(none)

    (xdg / "mcpd").mkdir()
    (xdg / "mcpd" / "mcpd.yaml").write_text(server_config("x"))
    assert found(empty) == f"{xdg}/mcpd/mcpd.yaml -> x"
    assert found(only_unify) == "mcp-gateway.yaml -> u"

    explicit = tmp_path / "explicit.yaml"
    explicit.write_text(server_config("e"))
    assert found(three, dict(env, MCPD_CONFIG=str(explicit))) == f"{explicit} -> e"


@pytest.mark.anyio
async def test_mcp_unify_gateway_yaml_runs_unchanged(mcpd_bin, tmp_path, mcpd_env, piddir):
    """mcp-unify's gateway.yaml in the current folder, `mcpd stdio` without --config, python3 from
    PATH for the plugins: with MCP_GATEWAY_ROLE=admin (null) the SDK client lists every tool and
    calls plugins__add and beta__getenv (`5$$ each` -> `5$ each`); with MCPD_ROLE=calc it lists the
    role's tools only, calls plugins__add, and beta__echo is refused naming role calc."""
    project = make_project(tmp_path / "unify")
    (project / "gateway.yaml").write_text(
        "# mcp-unify's gateway.yaml\n"
        "servers:\n"
        "  beta:\n"
        f"    command: {json.dumps(str(VENV_PYTHON))}\n"
        f"    args: [{json.dumps(backend_script('beta'))}]\n"
        "    env:\n"
        '      PRICE: "5$$ each"\n'
        f"      MCPD_TEST_PIDDIR: {json.dumps(str(piddir))}\n"
        "idle_timeout: 300\n"
        "plugins:\n"
        "  - module: my_tools.calculator\n"
        "roles:\n"
        "  admin: null\n"
        '  calc: ["plugins__*", "beta__getenv"]\n'
    )
    env = dict(mcpd_env, PATH=f"{VENV_PYTHON.parent}:{mcpd_env.get('PATH', '/usr/bin:/bin')}")
    for name in ("MCPD_CONFIG", "MCPD_ROLE", "MCP_GATEWAY_ROLE", "PYTHONPATH"):
        env.pop(name, None)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "no-xdg")

    async def session_of(role_env: dict[str, str], stderr_name: str):
        params = StdioServerParameters(command=mcpd_bin, args=["stdio"], env=dict(env, **role_env), cwd=str(project))
        return params, open(tmp_path / stderr_name, "w")

    params, errlog = await session_of({"MCP_GATEWAY_ROLE": "admin"}, "unify-admin.stderr")
    with errlog, anyio.fail_after(60):
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.server_info.name == "mcpd"
                names = {t.name for t in (await session.list_tools()).tools}
                assert names == BETA_NAMES | {"plugins__add", "plugins__repeat"}, (
                    f"{sorted(names)}\n{(tmp_path / 'unify-admin.stderr').read_text()[-3000:]}")
                res = await session.call_tool("plugins__add", {"a": 2, "b": 3})
                assert res.is_error is False and res.content[0].text == "5", res
                res = await session.call_tool("beta__getenv", {"name": "PRICE"})
                assert res.content[0].text == "5$ each", res
                res = await session.call_tool("plugins__repeat", {"text": TEXT})
                assert res.content[0].text == TEXT * 2, res
    admin_log = (tmp_path / "unify-admin.stderr").read_text()
    assert f"backend \"plugins\" started" in admin_log and f"python3 {HOST_LOG} my_tools.calculator" in admin_log, admin_log

    params, errlog = await session_of({"MCPD_ROLE": "calc"}, "unify-calc.stderr")
    with errlog, anyio.fail_after(60):
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                names = {t.name for t in (await session.list_tools()).tools}
                assert names == {"plugins__add", "plugins__repeat", "beta__getenv"}, sorted(names)
                res = await session.call_tool("plugins__add", {"a": 20, "b": 22})
                assert res.is_error is False and res.content[0].text == "42", res
                with pytest.raises(MCPError) as excinfo:
                    await session.call_tool("beta__echo", {"text": "x"})
                assert excinfo.value.message == 'Tool "beta__echo" is not available to role "calc" (roles.calc in the config)', (
                    excinfo.value.message)


@pytest.mark.anyio
async def test_seed_001_servers_yaml_serves_on_its_port(mcpd_bin, tmp_path, mcpd_env, piddir):
    """seed 001's servers.yaml: `mcpd serve -c servers.yaml` listens on its port:, meta mode,
    one-string commands, descriptions, env with $$, the http_url backend skipped with a warning."""
    spaced = tmp_path / "my backends"
    spaced.mkdir()
    (spaced / "beta.py").symlink_to(backend_script("beta"))
    port = free_port()
    folder = tmp_path / "seed001"
    folder.mkdir()
    config = folder / "servers.yaml"
    text = (
        f"port: {port}\n"
        "enable_meta_mcp: true\n"
        "backends:\n"
        "  alpha:\n"
        f'    command: "{VENV_PYTHON} {backend_script("alpha")}"\n'
        '    description: "Alpha: echo, add and more"\n'
        "    env:\n"
        f'      MCPD_TEST_PIDDIR: "{piddir}"\n'
        "  remote:\n"
        "    http_url: http://localhost:9/mcp\n"
        "    description: a remote backend\n"
        "  beta:\n"
        f"    command: \"{VENV_PYTHON} '{spaced / 'beta.py'}'\"\n"
        "    description: Beta reads its environment\n"
        "    env:\n"
        '      SECRET: "a$$b"\n'
        "      LITERAL: 'x$${HOME}y'\n"
        f'      MCPD_TEST_PIDDIR: "{piddir}"\n'
    )
    config.write_text(text)
    remote_line = text.splitlines().index("  remote:") + 1
    warning = (f"servers.yaml:{remote_line}:3: server \"remote\" uses url, and remote backends are not supported "
               "by this version of mcpd; it is skipped")

    check = run_mcpd(mcpd_bin, "check", "-c", "servers.yaml", env=mcpd_env, cwd=str(folder))
    assert check.returncode == 0, describe(check)
    assert "servers.yaml: OK, 2 servers enabled: alpha, beta" in check.stdout, describe(check)
    assert warning in check.stderr, describe(check)

    stderr_path = tmp_path / "serve-seed.stderr"
    proc = run_serve_until_listening(mcpd_bin, ["serve", "-c", "servers.yaml"], port, stderr_path, mcpd_env, str(folder))
    try:
        url = f"http://{HOST}:{port}/mcp"
        deadline = time.monotonic() + 5
        while f"listening on {url} " not in stderr_path.read_text(errors="replace"):
            assert time.monotonic() < deadline, stderr_path.read_text(errors="replace")
            time.sleep(0.05)
        log = stderr_path.read_text(errors="replace")
        assert warning in log, log
        with anyio.fail_after(60):
            async with streamable_http_client(url) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tools = [t.name for t in (await session.list_tools()).tools]
                    assert tools == META_TOOLS, tools

                    servers = {s["name"]: s for s in result_json(await session.call_tool("gateway_list_servers", {}))["servers"]}
                    assert set(servers) == {"alpha", "beta"}, servers
                    assert servers["alpha"].get("description") == "Alpha: echo, add and more", servers
                    assert servers["beta"].get("description") == "Beta reads its environment", servers

                    async def invoke(server: str, tool: str, arguments: dict[str, Any]) -> str:
                        res = await session.call_tool("gateway_invoke", {"server": server, "tool": tool, "arguments": arguments})
                        assert res.is_error is False, res
                        return res.content[0].text

                    assert await invoke("beta", "getenv", {"name": "SECRET"}) == "a$b"
                    assert await invoke("beta", "getenv", {"name": "LITERAL"}) == "x${HOME}y"
                    assert await invoke("alpha", "echo", {"text": TEXT}) == TEXT
                    listed = result_json(await session.call_tool("gateway_list_tools", {"server": "alpha"}))
                    assert {t["tool"] for t in listed["tools"]} == ALPHA_TOOLS, listed
                    res = await session.call_tool("gateway_invoke", {"server": "remote", "tool": "x", "arguments": {}})
                    assert res.is_error is True, res
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            proc.wait(5)
            code = None
    assert code == 0, f"mcpd serve exited {code} after SIGTERM\n{stderr_path.read_text(errors='replace')[-3000:]}"


def test_desktop_mcpservers_json_still_loads(mcpd_bin, tmp_path, mcpd_env, piddir):
    """A claude_desktop_config.json (`mcpServers`) passes check with its server."""
    config = tmp_path / "claude_desktop_config.json"
    config.write_text(json.dumps({"mcpServers": {"beta": {"command": sys.executable, "args": [backend_script("beta")],
                                                          "env": {"PRICE": "5$$"}}}}, indent=2))
    check = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert check.returncode == 0, describe(check)
    assert f"{config}: OK, 1 server enabled: beta" in check.stdout, describe(check)
