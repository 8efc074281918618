"""Daily use (issue 13): per-server tool filters, "did you mean", other clients' config files
loaded unchanged, `mcpd check` reporting every problem, paths relative to the config file, and a
backend whose program is missing.

1. `tools: {allow: [globs], deny: [globs]}` (a bare list is `allow`) over a server's own tool
   names: hidden tools are absent from tools/list and `mcpd list`, and a call to one gets -32602
   "is not available: servers.<name>.tools in <file> hides ..."; deny wins over allow; a reload
   that only changes the filter keeps the process and sends tools/list_changed.
2. An unknown tool gets -32602 with the closest exposed names; a misspelt config key gets
   `did you mean "command"?` with file:line:col.
3. Claude Desktop's, Cline's and VS Code's files work as they are; their own settings are
   ignored with an info line or a warning. An unknown top-level key in an mcpd file is an error.
4. `mcpd check` (like nginx -t) reports every problem, each with file:line, and exits 1.
5. A relative command, cwd or ./ argument resolves against the config file's folder, whatever
   the current directory; `~/` is the home directory.
6. A server whose program does not exist is reported with servers.<name> and the file; the other
   servers serve.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from mcpd_helpers import (
    ALPHA_TOOLS,
    backend_script,
    BETA_TOOLS,
    _cmdline,
    describe,
    LineProcess,
    pid_is_alive,
    pids_of,
    raw_members,
    recorded_pids,
    run_mcpd,
    server_entry,
    to_yaml,
    wait_for_pidfiles,
)

ALPHA_NAMES = {f"alpha__{t}" for t in ALPHA_TOOLS}
BETA_NAMES = {f"beta__{t}" for t in BETA_TOOLS}
LIST_CHANGED = "notifications/tools/list_changed"
INVALID_PARAMS = -32602
IGNORING_CLIENT_SETTINGS = "ignoring the client's own settings beside its servers: "
OTHER_CLIENTS_SETTING = "is another client's setting; mcpd ignores it"


# --------------------------------------------------------------------------- helpers


def wait_stderr(p: LineProcess, needle: str, timeout: float = 10.0) -> str:
    """Polls mcpd's stderr until a line contains needle; returns that line."""
    deadline = time.monotonic() + timeout
    while True:
        text = p.stderr_text()
        for line in text.splitlines():
            if needle in line:
                return line
        assert time.monotonic() < deadline, f"mcpd did not log {needle!r} within {timeout} s; stderr:\n{text[-3000:]}"
        time.sleep(0.02)


def call(p: LineProcess, tool: str, arguments: dict[str, Any] | None = None, timeout: float = 15.0) -> dict[str, Any]:
    _, msg, _ = p.request("tools/call", {"name": tool, "arguments": arguments or {}}, timeout=timeout)
    return msg


def call_text(p: LineProcess, tool: str, arguments: dict[str, Any] | None = None, timeout: float = 15.0) -> str:
    msg = call(p, tool, arguments, timeout)
    assert "result" in msg and not msg["result"].get("isError"), f"{tool} failed: {msg}"
    return msg["result"]["content"][0]["text"]


def call_error(p: LineProcess, tool: str, arguments: dict[str, Any] | None = None) -> str:
    """The message of the -32602 error a call to `tool` must get."""
    msg = call(p, tool, arguments)
    assert "error" in msg, f"a call to {tool} must fail with a JSON-RPC error: {msg}"
    assert msg["error"]["code"] == INVALID_PARAMS, f"a call to {tool} must get -32602: {msg}"
    return msg["error"]["message"]


def tool_names(p: LineProcess) -> set[str]:
    names: set[str] = set()
    cursor = None
    while True:
        line, msg, _ = p.request("tools/list", {"cursor": cursor} if cursor else {})
        assert "result" in msg, line
        names |= {tool["name"] for tool in msg["result"]["tools"]}
        cursor = msg["result"].get("nextCursor")
        if not cursor:
            return names


def read_until_notification(p: LineProcess, method: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {method} within {timeout} s (saw {seen}); stderr:\n{p.stderr_text()[-3000:]}"
        line, msg = p.recv_message(timeout=remaining)
        if isinstance(msg, dict) and msg.get("method") == method and "id" not in msg:
            return
        seen.append(msg.get("method") if isinstance(msg, dict) and "method" in msg else f"response {raw_members(line).get('id')}")


def stop(p: LineProcess, timeout: float = 10.0) -> None:
    """Closes mcpd's input and expects it to exit 0."""
    p.close_stdin()
    code = p.wait(timeout)
    assert code == 0, f"mcpd exit status {code} after its input closed; stderr:\n{p.stderr_text()[-3000:]}"


def listed_tool_names(list_stdout: str) -> set[str]:
    """The first column of the TOOL table of `mcpd list`."""
    lines = list_stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["TOOL", "DESCRIPTION"])
    return {line.split()[0] for line in lines[start + 1:] if line.strip()}


def executable_script(path: Path, argv: Sequence[str]) -> Path:
    """A /bin/sh script that execs argv (with its own arguments appended), chmod +x."""
    path.parent.mkdir(parents=True, exist_ok=True)
    quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
    path.write_text(f'#!/bin/sh\nexec {quoted} "$@"\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def mcpd_in(mcpd_bin: str, tmp_path: Path) -> Iterator[Callable[..., LineProcess]]:
    """mcpd_in(config, cwd=..., env=...): `mcpd stdio --config config` run from directory cwd."""
    started: list[LineProcess] = []

    def start(config: Path | str, *, cwd: str, env: dict[str, str]) -> LineProcess:
        p = LineProcess(
            [mcpd_bin, "stdio", "--config", str(config)],
            stderr_path=tmp_path / f"mcpd-in-{len(started)}.stderr",
            env=env,
            cwd=cwd,
        )
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


def alpha_with_filter(piddir: Path, tools: Any) -> dict[str, Any]:
    return {"servers": {"alpha": server_entry("alpha", piddir, tools=tools), "beta": server_entry("beta", piddir)}}


# --------------------------------------------------------------------------- 1. tool filters


def test_denied_tools_are_not_listed_and_a_call_names_the_filter(piddir, write_config, raw_mcpd, assert_backends_dead):
    """alpha with `tools: {deny: ["s*", crash]}`: slow, sleep, stats, shout, spawn_child and crash
    are absent from tools/list; calling alpha__shout gets -32602 saying it is not available,
    naming servers.alpha.tools and the file; alpha's other tools and beta's are served."""
    config = write_config(alpha_with_filter(piddir, {"deny": ["s*", "crash"]}))
    p = raw_mcpd(config)
    p.initialize()
    hidden = {"slow", "sleep", "stats", "shout", "spawn_child", "crash"}
    assert tool_names(p) == {f"alpha__{t}" for t in ALPHA_TOOLS - hidden} | BETA_NAMES

    message = call_error(p, "alpha__shout", {"line": "must not reach alpha"})
    assert "not available" in message and "servers.alpha.tools" in message and str(config) in message, message
    assert '"shout"' in message, message
    assert "must not reach alpha" not in p.stderr_text(), "a hidden tool was called on the backend"
    message = call_error(p, "alpha__crash")
    assert "not available" in message and "servers.alpha.tools" in message, message
    assert all(pid_is_alive(pid) for pid in pids_of(piddir, "alpha")), "a hidden crash tool reached alpha"

    assert call_text(p, "alpha__echo", {"text": "shown"}) == "shown"
    assert call_text(p, "beta__echo", {"text": "b"}) == "beta:b"
    stop(p)
    assert_backends_dead(expect_at_least=2)


@pytest.mark.parametrize("form", ["bare-list", "allow-map"])
def test_allow_lists_only_the_matching_tools(piddir, write_config, raw_mcpd, form):
    """`tools: [echo, "a?d"]` (a bare list is allow) or `tools: {allow: [...]}`: alpha exposes echo
    and add only; alpha__image is not available; beta, without a filter, exposes everything."""
    allow = ["echo", "a?d"]
    config = write_config(alpha_with_filter(piddir, allow if form == "bare-list" else {"allow": allow}))
    p = raw_mcpd(config)
    p.initialize()
    assert tool_names(p) == {"alpha__echo", "alpha__add"} | BETA_NAMES
    message = call_error(p, "alpha__image")
    assert "not available" in message and "servers.alpha.tools" in message and str(config) in message, message
    assert call_text(p, "alpha__echo", {"text": "allowed"}) == "allowed"
    msg = call(p, "alpha__add", {"a": 2, "b": 3})
    assert msg.get("result", {}).get("structuredContent", {}).get("sum") == 5, msg
    stop(p)


def test_deny_wins_over_allow(piddir, write_config, raw_mcpd):
    """allow [echo, add, "s*"] with deny [stats, "sl*"]: echo, add, shout, spawn_child exposed."""
    config = write_config(alpha_with_filter(piddir, {"allow": ["echo", "add", "s*"], "deny": ["stats", "sl*"]}))
    p = raw_mcpd(config)
    p.initialize()
    assert tool_names(p) == {"alpha__echo", "alpha__add", "alpha__shout", "alpha__spawn_child"} | BETA_NAMES
    for hidden in ("alpha__stats", "alpha__sleep", "alpha__slow"):
        message = call_error(p, hidden)
        assert "not available" in message and "servers.alpha.tools" in message, message
    stop(p)


def test_list_and_check_with_a_tool_filter(mcpd_bin, piddir, write_config, mcpd_env, assert_backends_dead):
    """`mcpd list` shows only the exposed tools (table and --json); `mcpd check` accepts `tools`
    without a "does not act on" warning and says OK."""
    config = write_config(alpha_with_filter(piddir, {"allow": ["e*", "add", "fail"], "deny": ["fail"]}))
    check = run_mcpd(mcpd_bin, "check", "--config", str(config), env=mcpd_env)
    assert check.returncode == 0, describe(check)
    assert f"{config}: OK" in check.stdout, describe(check)
    assert "does not act on" not in check.stderr and "warning" not in check.stderr, describe(check)

    listing = run_mcpd(mcpd_bin, "list", "--config", str(config), env=mcpd_env)
    assert listing.returncode == 0, describe(listing)
    assert listed_tool_names(listing.stdout) == {"alpha__echo", "alpha__add"} | BETA_NAMES, describe(listing)
    for hidden in ALPHA_NAMES - {"alpha__echo", "alpha__add"}:
        assert hidden not in listing.stdout, f"{hidden} is hidden by the filter\n{describe(listing)}"

    document = run_mcpd(mcpd_bin, "list", "--json", "--config", str(config), env=mcpd_env)
    assert document.returncode == 0, describe(document)
    assert {t["name"] for t in json.loads(document.stdout)["tools"]} == {"alpha__echo", "alpha__add"} | BETA_NAMES
    assert_backends_dead(expect_at_least=2)


def test_reload_with_a_changed_filter_keeps_the_process_and_sends_list_changed(piddir, write_config, raw_mcpd):
    """deny [add] -> deny [echo], SIGHUP: alpha keeps its pid (not restarted), the client gets
    tools/list_changed, the new list has add and not echo, and a call follows the new filter."""
    config = write_config(alpha_with_filter(piddir, {"deny": ["add"]}))
    p = raw_mcpd(config)
    p.initialize()
    wait_for_pidfiles(piddir, ["alpha", "beta"])
    alpha_pids = pids_of(piddir, "alpha")
    assert len(alpha_pids) == 1, recorded_pids(piddir)
    assert tool_names(p) == (ALPHA_NAMES - {"alpha__add"}) | BETA_NAMES
    assert "not available" in call_error(p, "alpha__add", {"a": 1, "b": 2})

    write_config(alpha_with_filter(piddir, {"deny": ["echo"]}))
    p.proc.send_signal(signal.SIGHUP)
    read_until_notification(p, LIST_CHANGED, timeout=10)
    line = wait_stderr(p, "reloaded ")
    assert "2 unchanged" in line and "restarted" not in line, line

    assert tool_names(p) == (ALPHA_NAMES - {"alpha__echo"}) | BETA_NAMES
    msg = call(p, "alpha__add", {"a": 1, "b": 2})
    assert msg.get("result", {}).get("structuredContent", {}).get("sum") == 3, msg
    message = call_error(p, "alpha__echo", {"text": "x"})
    assert "not available" in message and "servers.alpha.tools" in message, message
    assert pids_of(piddir, "alpha") == alpha_pids and all(pid_is_alive(pid) for pid in alpha_pids), (
        f"alpha was restarted by a reload that only changed its tool filter: {recorded_pids(piddir)}"
    )
    stop(p)


# --------------------------------------------------------------------------- 2. did you mean


def test_unknown_tool_suggests_the_closest_names(piddir, write_config, raw_mcpd):
    """alpha__ecko -> did you mean "alpha__echo"?; echo (no prefix) -> alpha__echo and beta__echo;
    a name near nothing gets no suggestion. All -32602 "Unknown tool"."""
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir), "beta": server_entry("beta", piddir)}})
    p = raw_mcpd(config)
    p.initialize()

    message = call_error(p, "alpha__ecko", {"text": "x"})
    assert message.startswith('Unknown tool: "alpha__ecko"'), message
    assert re.search(r'did you mean "alpha__echo"[,?]', message), message
    assert message.endswith("?"), message

    message = call_error(p, "echo", {"text": "x"})
    assert message.startswith('Unknown tool: "echo"'), message
    hint = message[message.index("did you mean"):]
    assert '"alpha__echo"' in hint and '"beta__echo"' in hint, message

    message = call_error(p, "qqqqqqqqqqqqqqqqqqqqqqqq")
    assert message.startswith('Unknown tool: "qqqqqqqqqqqqqqqqqqqqqqqq"') and "did you mean" not in message, message
    assert call_text(p, "alpha__echo", {"text": "fine"}) == "fine"
    stop(p)


def test_misspelt_config_key_suggests_the_right_one(mcpd_bin, write_config, mcpd_env):
    """`comand:` in a server: check and stdio exit 1 with file:line:col and did you mean "command"?."""
    config = write_config(
        "servers:\n"
        "  alpha:\n"
        f"    comand: {json.dumps(sys.executable)}\n"
        f"    args: [{json.dumps(backend_script('alpha'))}]\n"
    )
    for args in (["check"], ["stdio"]):
        proc = run_mcpd(mcpd_bin, *args, "--config", str(config), env=mcpd_env, timeout=15)
        assert proc.returncode == 1, describe(proc)
        assert f'{config}:3:5: unknown key "comand" in server "alpha"; did you mean "command"?' in proc.stderr, describe(proc)
        assert proc.stdout == "", describe(proc)


# --------------------------------------------------------------------------- 3. other clients' files


def test_claude_desktop_config_loads_unchanged(mcpd_bin, piddir, write_config, raw_mcpd, mcpd_env, assert_backends_dead):
    """claude_desktop_config.json with globalShortcut and preferences beside mcpServers: check says
    OK, stdio serves both servers, and one info line says those settings are ignored."""
    document = {
        "globalShortcut": "Ctrl+Space",
        "mcpServers": {
            "alpha": {"command": sys.executable, "args": [backend_script("alpha")], "env": {"MCPD_TEST_PIDDIR": str(piddir)}},
            "beta": {"command": sys.executable, "args": [backend_script("beta")], "env": {"MCPD_TEST_PIDDIR": str(piddir)}},
        },
        "preferences": {"menuBarEnabled": False, "quickEntryShortcut": "off"},
    }
    config = write_config(document, name="claude_desktop_config.json")
    note = f"{config}: {IGNORING_CLIENT_SETTINGS}globalShortcut, preferences"

    check = run_mcpd(mcpd_bin, "check", "--config", str(config), env=mcpd_env)
    assert check.returncode == 0, describe(check)
    assert f"{config}: OK, 2 servers enabled: alpha, beta" in check.stdout, describe(check)
    assert check.stderr.count(IGNORING_CLIENT_SETTINGS) == 1 and f"mcpd: info: {note}" in check.stderr, describe(check)

    p = raw_mcpd(config)
    p.initialize()
    assert tool_names(p) == ALPHA_NAMES | BETA_NAMES
    assert call_text(p, "beta__upper", {"text": "desk"}) == "DESK"
    stop(p)
    stderr = p.stderr_text()
    assert stderr.count(IGNORING_CLIENT_SETTINGS) == 1, f"want one info line:\n{stderr}"
    assert f"mcpd: info: {note}" in stderr, stderr
    assert "mcpd: error:" not in stderr and "mcpd: warning:" not in stderr, stderr
    assert_backends_dead(expect_at_least=2)


def test_cline_config_loads_with_warnings_for_its_own_keys(mcpd_bin, piddir, write_config, raw_mcpd, mcpd_env):
    """cline_mcp_settings.json: servers with autoApprove, alwaysAllow, transportType, disabled:
    false and timeout: 60 work, each Cline key warned about with file:line:col; a server with
    disabled: true (and a program that does not exist) is neither started, listed nor an error."""

    def cline_server(name: str) -> dict[str, Any]:
        return {
            "command": sys.executable,
            "args": [backend_script(name)],
            "env": {"MCPD_TEST_PIDDIR": str(piddir)},
            "autoApprove": ["echo"],
            "alwaysAllow": [],
            "transportType": "stdio",
            "disabled": False,
            "timeout": 60,
        }

    document = {
        "mcpServers": {
            "alpha": cline_server("alpha"),
            "beta": cline_server("beta"),
            "off": {"command": "no-such-program-mcpd-test", "disabled": True, "autoApprove": []},
        }
    }
    config = write_config(document, name="cline_mcp_settings.json")
    check = run_mcpd(mcpd_bin, "check", "--config", str(config), env=mcpd_env)
    assert check.returncode == 0, describe(check)
    assert f"{config}: OK, 2 servers enabled: alpha, beta" in check.stdout, describe(check)
    for server in ("alpha", "beta"):
        for key in ("autoApprove", "alwaysAllow", "transportType"):
            pattern = re.escape(str(config)) + r":\d+:\d+: " + re.escape(f"servers.{server}.{key} {OTHER_CLIENTS_SETTING}")
            assert re.search(pattern, check.stderr), f"no warning for {server}.{key}\n{describe(check)}"
    for key in ("disabled", "timeout", "env", "args"):
        assert f"servers.alpha.{key} {OTHER_CLIENTS_SETTING}" not in check.stderr, describe(check)
    assert "not found on PATH" not in check.stderr, f"a disabled server was checked\n{describe(check)}"

    p = raw_mcpd(config)
    p.initialize()
    assert tool_names(p) == ALPHA_NAMES | BETA_NAMES
    assert call_text(p, "alpha__echo", {"text": "cline"}) == "cline"
    assert call_text(p, "beta__echo", {"text": "cline"}) == "beta:cline"
    stop(p)
    stderr = p.stderr_text()
    assert f"servers.alpha.autoApprove {OTHER_CLIENTS_SETTING}" in stderr, stderr
    assert "could not start" not in stderr, stderr
    assert set(recorded_pids(piddir).values()) == {"alpha", "beta"}, recorded_pids(piddir)


def test_vscode_mcp_json_loads_unchanged(mcpd_bin, piddir, write_config, raw_mcpd, mcpd_env):
    """VS Code's mcp.json: top-level servers (each type: stdio) and inputs: check OK, the inputs
    ignored with the info line, stdio serves both servers."""
    document = {
        "inputs": [{"type": "promptString", "id": "api-key", "description": "API key", "password": True}],
        "servers": {
            "alpha": {"type": "stdio", "command": sys.executable, "args": [backend_script("alpha")],
                      "env": {"MCPD_TEST_PIDDIR": str(piddir)}},
            "beta": {"type": "stdio", "command": sys.executable, "args": [backend_script("beta")],
                     "env": {"MCPD_TEST_PIDDIR": str(piddir)}},
        },
    }
    config = write_config(document, name="mcp.json")
    note = f"{config}: {IGNORING_CLIENT_SETTINGS}inputs"
    check = run_mcpd(mcpd_bin, "check", "--config", str(config), env=mcpd_env)
    assert check.returncode == 0, describe(check)
    assert f"{config}: OK, 2 servers enabled: alpha, beta" in check.stdout, describe(check)
    assert f"mcpd: info: {note}" in check.stderr and check.stderr.count(IGNORING_CLIENT_SETTINGS) == 1, describe(check)

    p = raw_mcpd(config)
    p.initialize()
    assert tool_names(p) == ALPHA_NAMES | BETA_NAMES
    assert call_text(p, "alpha__echo", {"text": "vscode"}) == "vscode"
    stop(p)
    assert p.stderr_text().count(IGNORING_CLIENT_SETTINGS) == 1, p.stderr_text()


def test_unknown_top_level_key_in_an_mcpd_file_is_an_error(mcpd_bin, piddir, write_config, mcpd_env):
    """An mcpd YAML file (servers:) with `gatewy:` is an error with file:line:col and did you mean,
    for check and stdio alike: only a client's file (mcpServers, inputs) has settings ignored."""
    good = {"servers": {"beta": server_entry("beta", piddir)}}
    text = to_yaml(good) + "\ngatewy:\n  page_size: 10\n"
    config = write_config(text)
    line = text.splitlines().index("gatewy:") + 1
    for args in (["check"], ["stdio"]):
        proc = run_mcpd(mcpd_bin, *args, "--config", str(config), env=mcpd_env, timeout=15)
        assert proc.returncode == 1, describe(proc)
        assert f'{config}:{line}:1: unknown top-level key "gatewy"; did you mean "gateway"?' in proc.stderr, describe(proc)
        assert IGNORING_CLIENT_SETTINGS not in proc.stderr, describe(proc)
        assert proc.stdout == "", describe(proc)
    assert recorded_pids(piddir) == {}, "a backend was started for a config that does not load"


# --------------------------------------------------------------------------- 4. mcpd check


def test_check_reports_every_problem_with_its_line(mcpd_bin, tmp_path, write_config, mcpd_env):
    """One file, five problems: a program not on PATH, a script without the execute bit, a command
    with spaces, a missing cwd, an unset ${VAR} without default. check reports each with
    file:line, exits 1, and its last stderr line says "5 errors"."""
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    env = dict(mcpd_env)
    env.pop("MCPD_TEST_SURELY_UNSET_13", None)
    config = write_config(
        "servers:\n"                                            # 1
        "  missing:\n"                                          # 2
        "    command: no-such-program-mcpd-test\n"              # 3
        "  noexec:\n"                                           # 4
        f"    command: {json.dumps(str(script))}\n"            # 5
        "  spaces:\n"                                           # 6
        '    command: "python3 -V"\n'                           # 7
        "  badcwd:\n"                                           # 8
        f"    command: {json.dumps(sys.executable)}\n"         # 9
        "    cwd: ./no-such-dir\n"                              # 10
        "  unset:\n"                                            # 11
        f"    command: {json.dumps(sys.executable)}\n"         # 12
        "    env:\n"                                            # 13
        '      TOKEN: "${MCPD_TEST_SURELY_UNSET_13}"\n'         # 14
    )
    proc = run_mcpd(mcpd_bin, "check", "--config", str(config), env=env, timeout=15)
    assert proc.returncode == 1, describe(proc)
    assert "OK" not in proc.stdout, describe(proc)
    expected = {
        3: 'server "missing": command "no-such-program-mcpd-test" is not found on PATH',
        5: f'server "noexec": command "{script}" is not executable',
        7: 'server "spaces": command "python3 -V" has spaces: the program goes in command and the rest in args',
        9: f'server "badcwd": cwd "{tmp_path}/no-such-dir" does not exist',
        14: "${MCPD_TEST_SURELY_UNSET_13} is not set",
    }
    lines = proc.stderr.splitlines()
    for number, text in expected.items():
        hits = [line for line in lines if f"{config}:{number}" in line and text in line]
        assert len(hits) == 1, f"want one error at line {number}: {text!r}\n{describe(proc)}"
        assert hits[0].startswith("mcpd: error: "), hits[0]
    assert lines[-1] == f"{config}: 5 errors", describe(proc)


def test_check_good_config_exits_0_with_ok(mcpd_bin, piddir, write_config, mcpd_env, assert_backends_dead):
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir), "beta": server_entry("beta", piddir)}})
    proc = run_mcpd(mcpd_bin, "check", "--config", str(config), env=mcpd_env)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.strip() == f"{config}: OK, 2 servers enabled: alpha, beta", describe(proc)
    assert "error" not in proc.stderr, describe(proc)
    assert_backends_dead()


# --------------------------------------------------------------------------- 5. relative paths


@pytest.mark.parametrize("how", ["absolute-config-from-root", "relative-config-from-parent"])
def test_relative_paths_resolve_against_the_config_folder(mcpd_bin, tmp_path, piddir, mcpd_env, mcpd_in, how):
    """A config in tmp/sub with command ./run.sh (execs alpha), beta with cwd: data, hostile with
    args ./x, ../y and ~/z, run from / (or from tmp with --config sub/mcpd.yaml): check says OK;
    alpha serves, beta runs in sub/data, hostile gets sub/x, tmp/y and $HOME/z."""
    sub = tmp_path / "sub"
    (sub / "data").mkdir(parents=True)
    home = tmp_path / "home"
    home.mkdir()
    executable_script(sub / "run.sh", [sys.executable, backend_script("alpha")])
    pid_env = f"      MCPD_TEST_PIDDIR: {json.dumps(str(piddir))}\n"
    config = sub / "mcpd.yaml"
    config.write_text(
        "servers:\n"
        "  alpha:\n"
        "    command: ./run.sh\n"
        "    env:\n" + pid_env +
        "  beta:\n"
        f"    command: {json.dumps(sys.executable)}\n"
        f"    args: [{json.dumps(backend_script('beta'))}]\n"
        "    cwd: data\n"
        "    env:\n" + pid_env +
        "  hostile:\n"
        f"    command: {json.dumps(sys.executable)}\n"
        f"    args: [{json.dumps(backend_script('hostile'))}, plain, ./x, ../y, ~/z]\n"
        "    env:\n" + pid_env
    )
    env = dict(mcpd_env, HOME=str(home))
    cwd, config_arg = ("/", str(config)) if how == "absolute-config-from-root" else (str(tmp_path), "sub/mcpd.yaml")

    check = run_mcpd(mcpd_bin, "check", "--config", config_arg, env=env, cwd=cwd)
    assert check.returncode == 0, describe(check)
    assert "OK, 3 servers enabled" in check.stdout, describe(check)

    p = mcpd_in(config_arg, cwd=cwd, env=env)
    p.initialize()
    assert call_text(p, "alpha__echo", {"text": "from run.sh"}) == "from run.sh"
    alpha = pids_of(piddir, "alpha")
    assert len(alpha) == 1 and "alpha.py" in _cmdline(next(iter(alpha))), recorded_pids(piddir)
    assert os.path.realpath(call_text(p, "beta__cwd")) == os.path.realpath(sub / "data")
    argv = json.loads(call_text(p, "hostile__argv"))
    assert argv[0] == "plain", argv
    assert argv[1] == str(sub / "x"), f"./x must become the absolute path in the config's folder: {argv}"
    assert os.path.isabs(argv[2]) and os.path.normpath(argv[2]) == str(tmp_path / "y"), argv
    assert argv[3] == str(home / "z"), f"~/z must become $HOME/z: {argv}"
    stop(p)


def test_home_in_command_is_expanded(mcpd_bin, tmp_path, piddir, write_config, mcpd_env, raw_mcpd):
    """command: ~/bin/beta.sh with HOME=tmp/home: check OK, and the backend serves."""
    home = tmp_path / "home"
    executable_script(home / "bin" / "beta.sh", [sys.executable, backend_script("beta")])
    config = write_config(
        "servers:\n"
        "  beta:\n"
        "    command: ~/bin/beta.sh\n"
        "    env:\n"
        f"      MCPD_TEST_PIDDIR: {json.dumps(str(piddir))}\n"
    )
    env = dict(mcpd_env, HOME=str(home))
    check = run_mcpd(mcpd_bin, "check", "--config", str(config), env=env)
    assert check.returncode == 0, describe(check)

    p = raw_mcpd(config, env=env)
    p.initialize()
    assert call_text(p, "beta__upper", {"text": "home"}) == "HOME"
    assert call_text(p, "beta__getenv", {"name": "HOME"}) == str(home)
    stop(p)


# --------------------------------------------------------------------------- 6. a missing program


def test_missing_program_is_logged_and_the_other_server_serves(piddir, write_config, raw_mcpd, assert_backends_dead):
    """ghost's command does not exist: mcpd logs `could not start: command "..." is not found on
    PATH` with (servers.ghost in <file>); beta is served, ghost has no tools, and a call of a
    ghost tool says why."""
    config = write_config(
        {"servers": {"ghost": {"command": "no-such-program-mcpd-test"}, "beta": server_entry("beta", piddir)}}
    )
    p = raw_mcpd(config)
    p.initialize()
    line = wait_stderr(p, "could not start")
    assert 'could not start: command "no-such-program-mcpd-test" is not found on PATH' in line, line
    assert f"(servers.ghost in {config})" in line, line
    assert tool_names(p) == BETA_NAMES
    assert call_text(p, "beta__echo", {"text": "alive"}) == "beta:alive"
    # The tool's prefix names a server that is down: the error says which and why.
    message = call_error(p, "ghost__echo", {"text": "x"})
    assert message.startswith('Tool "ghost__echo" is not available: backend "ghost" is unavailable'), message
    assert 'command "no-such-program-mcpd-test" is not found on PATH' in message, message
    stop(p)
    assert_backends_dead(expect_at_least=1)
