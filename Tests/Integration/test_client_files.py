"""Other clients' config files, `mcpd import`, `mcpd check` with many errors, and a tool call for
a server that is down.

1. JSON with `//` and `/* */` comments and trailing commas (a file whose first non-blank
   character is `{`, as VS Code and Zed write them): check says OK, stdio serves; an error in
   such a file still names its line and column.
2. VS Code's `.vscode/mcp.json`: `servers` and `inputs`; `${workspaceFolder}` is the folder
   holding `.vscode`, `${userHome}` is $HOME, `${env:NAME}` is $NAME, and `${input:ID}` is a
   warning (VS Code prompts for it; mcpd cannot), not an error.
3. VS Code's `envFile`: a dotenv file's variables reach the backend, an explicit `env` wins, a
   malformed line is a warning with its line, a missing file is an error, and the file's values
   are secrets: never in mcpd's stderr, even at --log-level debug.
4. Claude Code's `~/.claude.json`: the user's servers and every project's; a project's server
   named as one already defined is merged when identical, left out with a warning otherwise; the
   other top-level keys get one info line.
5. Zed's `settings.json`: `context_servers` in both command forms; an extension entry (no
   command) is skipped with a warning; `source` and `settings` get none.
6. Cursor's and Windsurf's `disabledTools` hides those tools.
7. `mcpd check` reports every error (gateway keys, server keys, durations, top-level keys), each
   with file:line:col, then `<file>: N errors`; `--json` lists them all.
8. `mcpd import FILE` (Claude Desktop, VS Code, Zed): an mcpd YAML config on stdout (or in
   `-o OUT`, mode 0600, never overwritten) with ${VAR} kept as written, and on stderr the one-entry
   client config that replaces the client's servers; the imported config serves the same tools.
9. `mcpd import` with no file lists the client files found in $HOME; `--from CLIENT` imports one.
10. A call of a tool of a server that is down says why: its stderr, and the unset ${VAR} it was
    started without; an unknown name mentions the server that is down.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
from pathlib import Path
from typing import Any

from mcpd_helpers import (
    ALPHA_TOOLS,
    backend_script,
    BETA_TOOLS,
    describe,
    pids_of,
    recorded_pids,
    run_mcpd,
    server_entry,
    to_yaml,
    wait_for_pidfiles,
)
from test_daily_use import call_error, call_text, stop, tool_names

ALPHA_NAMES = {f"alpha__{t}" for t in ALPHA_TOOLS}
BETA_NAMES = {f"beta__{t}" for t in BETA_TOOLS}
INVALID_PARAMS = -32602
IGNORING_CLIENT_SETTINGS = "ignoring the client's own settings beside its servers: "
OTHER_CLIENTS_SETTING = "is another client's setting; mcpd ignores it"


# --------------------------------------------------------------------------- helpers


def served_tools(raw_mcpd, config: Path, env: dict[str, str]) -> set[str]:
    """The exposed tool names of `mcpd stdio --config config`, each server's echo answering (so
    every backend really ran, not only its catalog entry); then mcpd stops cleanly."""
    p = raw_mcpd(config, env=env)
    p.initialize()
    names = tool_names(p)
    for server in sorted({name.split("__")[0] for name in names}):
        assert call_text(p, f"{server}__echo", {"text": config.name}).endswith(config.name), server
    stop(p)
    return names


def line_of(text: str, needle: str) -> int:
    """The 1-based number of the only line of text that contains needle."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    assert len(hits) == 1, f"{needle!r} must be on exactly one line: {hits}"
    return hits[0]


def stdio_entry(name: str, piddir: Path, **extra: Any) -> dict[str, Any]:
    """A client-file server entry (command, args, env) running backend `name`."""
    entry: dict[str, Any] = {"command": sys.executable, "args": [backend_script(name)], "env": {"MCPD_TEST_PIDDIR": str(piddir)}}
    entry.update(extra)
    return entry


def snippet(stderr: str) -> dict[str, Any]:
    """The one-entry client config `mcpd import` prints as the last line of its stderr."""
    last = stderr.rstrip("\n").splitlines()[-1]
    document = json.loads(last)
    assert isinstance(document, dict) and len(document) == 1, last
    return document


def assert_runs_mcpd(entry: dict[str, Any], mcpd_bin: str, config_path: str) -> None:
    """The snippet's entry runs this mcpd binary (absolute path) with `stdio --config config_path`."""
    command = entry["command"]
    assert os.path.isabs(command) and os.path.isfile(command) and os.access(command, os.X_OK), entry
    assert os.path.realpath(command) == os.path.realpath(mcpd_bin), entry
    assert entry["args"] == ["stdio", "--config", config_path], entry


# --------------------------------------------------------------------------- 1. JSON with comments


def jsonc_text(piddir: Path, timeout: str = "30s") -> str:
    return (
        "{\n"
        "  // VS Code and Zed write comments\n"
        "  /* and block comments,\n"
        "     over lines */\n"
        '  "servers": {\n'
        '    "alpha": {\n'
        f'      "command": {json.dumps(sys.executable)}, // the interpreter\n'
        f'      "args": [{json.dumps(backend_script("alpha"))},],\n'
        f'      "env": {{"MCPD_TEST_PIDDIR": {json.dumps(str(piddir))},}},\n'
        f'      "timeout": {json.dumps(timeout)}, /* a trailing comma follows */\n'
        "    },\n"
        "  },\n"
        "}\n"
    )


def test_json_with_comments_and_trailing_commas_is_served(mcpd_bin, piddir, write_config, raw_mcpd, mcpd_env):
    """A `{` file with // and /* */ comments and trailing commas: check exits 0 with OK, and stdio
    lists alpha's tools and answers a call."""
    config = write_config(jsonc_text(piddir), name="commented.json")
    check = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert check.returncode == 0, describe(check)
    assert f"{config}: OK, 1 server enabled: alpha" in check.stdout, describe(check)

    p = raw_mcpd(config)
    p.initialize()
    assert tool_names(p) == ALPHA_NAMES
    assert call_text(p, "alpha__echo", {"text": "commented"}) == "commented"
    stop(p)


def test_error_in_a_commented_json_file_names_its_line_and_column(mcpd_bin, piddir, write_config, mcpd_env):
    """timeout "5q" in a commented JSON file: check exits 1 with FILE:line:col of the value (the
    comments before it do not shift the line), and stdio refuses to start."""
    text = jsonc_text(piddir, timeout="5q")
    config = write_config(text, name="commented.json")
    line = line_of(text, '"timeout"')
    column = text.splitlines()[line - 1].index('"5q"') + 1
    for args in (["check"], ["stdio"]):
        proc = run_mcpd(mcpd_bin, *args, "-c", str(config), env=mcpd_env, timeout=15)
        assert proc.returncode == 1, describe(proc)
        assert f'{config}:{line}:{column}: servers.alpha.timeout "5q" is not a duration' in proc.stderr, describe(proc)
    assert recorded_pids(piddir) == {}


# --------------------------------------------------------------------------- 2-3. VS Code


def vscode_file(tmp_path: Path, document: dict[str, Any]) -> tuple[Path, Path]:
    """(workspace folder, workspace/.vscode/mcp.json) with document written as JSON."""
    workspace = tmp_path / "workspace"
    (workspace / ".vscode").mkdir(parents=True, exist_ok=True)
    path = workspace / ".vscode" / "mcp.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return workspace, path


def test_vscode_variables_expand_and_an_input_is_a_warning(mcpd_bin, tmp_path, piddir, raw_mcpd, mcpd_env):
    """.vscode/mcp.json: ${workspaceFolder} is the folder holding .vscode (as cwd and in env),
    ${userHome} is $HOME, ${env:NAME} is $NAME; ${input:api-key} warns that VS Code prompts for
    it (with file:line:col), is empty, and check still exits 0."""
    home = tmp_path / "home"
    home.mkdir()
    env = dict(mcpd_env, HOME=str(home), MCPD_TEST_VSCODE_VAR="from-the-environment")
    workspace, config = vscode_file(tmp_path, {
        "inputs": [{"type": "promptString", "id": "api-key", "description": "API key", "password": True}],
        "servers": {
            "beta": {
                "type": "stdio",
                "command": sys.executable,
                "args": [backend_script("beta")],
                "cwd": "${workspaceFolder}",
                "env": {
                    "MCPD_TEST_PIDDIR": str(piddir),
                    "WS": "${workspaceFolder}/sub",
                    "HOME_SEEN": "${userHome}",
                    "FROM_ENV": "${env:MCPD_TEST_VSCODE_VAR}",
                    "API_KEY": "${input:api-key}",
                },
            }
        },
    })
    text = config.read_text()
    prompt = "${input:api-key} is a value VS Code prompts for"
    position = f"{config}:{line_of(text, '${input:api-key}')}:"

    check = run_mcpd(mcpd_bin, "check", "-c", str(config), env=env)
    assert check.returncode == 0, describe(check)
    assert f"{config}: OK, 1 server enabled: beta" in check.stdout, describe(check)
    warnings = [line for line in check.stderr.splitlines() if prompt in line]
    assert len(warnings) == 1 and warnings[0].startswith("mcpd: warning: ") and position in warnings[0], describe(check)

    p = raw_mcpd(config, env=env)
    p.initialize()
    assert os.path.realpath(call_text(p, "beta__cwd")) == os.path.realpath(workspace)
    assert call_text(p, "beta__getenv", {"name": "WS"}) == f"{workspace}/sub"
    assert call_text(p, "beta__getenv", {"name": "HOME_SEEN"}) == str(home)
    assert call_text(p, "beta__getenv", {"name": "FROM_ENV"}) == "from-the-environment"
    assert call_text(p, "beta__getenv", {"name": "API_KEY"}) == ""
    stop(p)
    assert prompt in p.stderr_text(), p.stderr_text()


ENV_FILE = (
    "# a comment line\n"                     # 1
    "\n"                                     # 2
    "export EXPORTED=exported-value-1\n"     # 3
    'DOUBLE="quoted value two"\n'            # 4
    "SINGLE='single value three'\n"          # 5
    "PLAIN=plain-value-four # a comment\n"   # 6
    "this line is not an assignment\n"       # 7
    "OVERRIDDEN=from-the-env-file\n"         # 8
)
ENV_FILE_VALUES = {
    "EXPORTED": "exported-value-1",
    "DOUBLE": "quoted value two",
    "SINGLE": "single value three",
    "PLAIN": "plain-value-four",
}


def test_vscode_env_file_reaches_the_backend_and_stays_secret(mcpd_bin, tmp_path, piddir, raw_mcpd, mcpd_env):
    """envFile ${workspaceFolder}/.env (dotenv: comments, export, "double", 'single', a trailing
    # comment): each variable reaches the backend; env's OVERRIDDEN wins over the file's; line 7
    gets `<envfile>:7: not NAME=value, skipped`; at --log-level debug, with the backend printing
    the values to its stderr and a tool returning one, no value appears in mcpd's stderr (it
    shows ***), while the client gets the value itself."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    env_file = workspace / ".env"
    env_file.write_text(ENV_FILE)
    # The backend writes the values to its stderr, which mcpd relays with its own lines.
    leak = 'echo "values: $EXPORTED $DOUBLE $SINGLE $PLAIN" >&2; exec "$0" "$@"'
    _, config = vscode_file(tmp_path, {
        "servers": {
            "beta": {
                "type": "stdio",
                "command": "sh",
                "args": ["-c", leak, sys.executable, backend_script("beta")],
                "envFile": "${workspaceFolder}/.env",
                "env": {"MCPD_TEST_PIDDIR": str(piddir), "OVERRIDDEN": "from-env"},
            }
        }
    })
    malformed = f"{env_file}:7: not NAME=value, skipped"

    check = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert check.returncode == 0, describe(check)
    assert f"mcpd: warning: {malformed}" in check.stderr, describe(check)

    p = raw_mcpd(config, "--log-level", "debug", env=mcpd_env)
    p.initialize()
    for name, value in ENV_FILE_VALUES.items():
        assert call_text(p, "beta__getenv", {"name": name}) == value, name
    assert call_text(p, "beta__getenv", {"name": "OVERRIDDEN"}) == "from-env"
    stop(p)
    stderr = p.stderr_text()
    assert "mcpd: debug:" in stderr, f"--log-level debug logs debug lines:\n{stderr}"
    relayed = [line for line in stderr.splitlines() if "[beta] values: " in line]
    assert len(relayed) == 1 and relayed[0].endswith("[beta] values: *** *** *** ***"), f"the backend's stderr line, redacted:\n{stderr}"
    for value in ENV_FILE_VALUES.values():
        assert value not in stderr, f"envFile value {value!r} in mcpd's stderr:\n{stderr}"
    assert malformed in stderr, stderr


def test_a_missing_env_file_is_an_error(mcpd_bin, tmp_path, piddir, mcpd_env):
    """envFile naming a file that does not exist: check exits 1 with
    `servers.beta.envFile: cannot read <absolute path>` at the envFile's line; stdio exits 1."""
    workspace, config = vscode_file(tmp_path, {
        "servers": {"beta": {"command": sys.executable, "args": [backend_script("beta")],
                             "env": {"MCPD_TEST_PIDDIR": str(piddir)}, "envFile": "${workspaceFolder}/missing.env"}}
    })
    line = line_of(config.read_text(), '"envFile"')
    check = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert check.returncode == 1, describe(check)
    assert re.search(re.escape(f"{config}:{line}:") + r"\d+: " + re.escape(f"servers.beta.envFile: cannot read {workspace}/missing.env"),
                     check.stderr), describe(check)
    assert check.stderr.splitlines()[-1] == f"{config}: 1 error", describe(check)
    stdio = run_mcpd(mcpd_bin, "stdio", "-c", str(config), env=mcpd_env, timeout=15)
    assert stdio.returncode == 1 and f"envFile: cannot read {workspace}/missing.env" in stdio.stderr, describe(stdio)
    assert recorded_pids(piddir) == {}


# --------------------------------------------------------------------------- 4. Claude Code


def test_claude_code_user_and_project_servers(mcpd_bin, tmp_path, piddir, write_config, raw_mcpd, mcpd_env):
    """~/.claude.json: the user's alpha and the projects' beta and beta2 are all
    loaded; project two's identical alpha is merged silently, its different beta is left out with
    a warning naming the project; numStartups and the other top-level keys get one info line."""
    alpha = stdio_entry("alpha", piddir)
    beta = stdio_entry("beta", piddir)
    document = {
        "numStartups": 42,
        "autoUpdates": False,
        "mcpServers": {"alpha": alpha},
        "projects": {
            "/home/someone/one": {"mcpServers": {"beta": beta}, "allowedTools": [], "hasTrustDialogAccepted": True},
            "/home/someone/two": {
                "mcpServers": {"alpha": dict(alpha), "beta": stdio_entry("beta", piddir, args=[backend_script("beta"), "--other"]),
                               "beta2": stdio_entry("beta", piddir)},
                "allowedTools": ["Bash"],
            },
            "/home/someone/three": {"allowedTools": []},
        },
        "userID": "0123abcd",
    }
    config = write_config(document, name=".claude.json")
    text = config.read_text()
    left_out = 'server "beta" of project /home/someone/two is left out'

    check = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert check.returncode == 0, describe(check)
    assert f"{config}: OK, 3 servers enabled: alpha, beta, beta2" in check.stdout, describe(check)
    warnings = [line for line in check.stderr.splitlines() if "left out" in line]
    assert len(warnings) == 1 and left_out in warnings[0], describe(check)
    # The warning points at project two's beta, the second "beta" key of the file.
    beta_lines = [i + 1 for i, line in enumerate(text.splitlines()) if line.strip().startswith('"beta": {')]
    assert f"{config}:{beta_lines[1]}:" in warnings[0], f"{beta_lines}\n{describe(check)}"
    assert "alpha" not in warnings[0] and check.stderr.count("mcpd: warning:") == 1, describe(check)
    notes = [line for line in check.stderr.splitlines() if IGNORING_CLIENT_SETTINGS in line]
    assert notes == [f"mcpd: info: {config}: {IGNORING_CLIENT_SETTINGS}numStartups, autoUpdates, userID"], describe(check)

    p = raw_mcpd(config)
    p.initialize()
    assert tool_names(p) == ALPHA_NAMES | BETA_NAMES | {f"beta2__{t}" for t in BETA_TOOLS}
    assert call_text(p, "beta2__echo", {"text": "project"}) == "beta:project"
    assert call_text(p, "alpha__echo", {"text": "user"}) == "user"
    stop(p)
    stderr = p.stderr_text()
    assert stderr.count(IGNORING_CLIENT_SETTINGS) == 1 and left_out in stderr, stderr
    assert sorted(recorded_pids(piddir).values()) == ["alpha", "beta", "beta"], recorded_pids(piddir)


# --------------------------------------------------------------------------- 5. Zed


def zed_settings(piddir: Path) -> str:
    """A Zed settings.json (commented JSON, starting with comment lines as Zed's own does) with
    both command forms and an extension entry."""
    custom = {"source": "custom", "command": sys.executable, "args": [backend_script("alpha")],
              "env": {"MCPD_TEST_PIDDIR": str(piddir)}}
    legacy = {"command": {"path": sys.executable, "args": [backend_script("beta")], "env": {"MCPD_TEST_PIDDIR": str(piddir)}},
              "settings": {}}
    servers = json.dumps({"alpha": custom, "beta": legacy, "postgres": {"source": "extension", "settings": {"url": "x"}}}, indent=2)
    return (
        "// Zed settings\n"
        "//\n"
        "/* For information on how to configure Zed, see the Zed documentation. */\n"
        "{\n"
        '  "theme": "One Dark",\n'
        "  // the MCP servers\n"
        f'  "context_servers": {servers},\n'
        '  "vim_mode": false,\n'
        "}\n"
    )


def test_zed_context_servers_in_both_forms(mcpd_bin, piddir, write_config, raw_mcpd, mcpd_env):
    """Zed's settings.json: alpha ({source: custom, command, args, env}) and beta ({command: {path,
    args, env}, settings}) are served; the extension entry postgres is skipped with a warning; no
    warning for source or settings; theme and vim_mode get the info line."""
    config = write_config(zed_settings(piddir), name="settings.json")
    check = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert check.returncode == 0, describe(check)
    assert f"{config}: OK, 2 servers enabled: alpha, beta" in check.stdout, describe(check)
    warnings = [line for line in check.stderr.splitlines() if "mcpd: warning:" in line]
    assert len(warnings) == 1 and 'server "postgres" is a Zed extension' in warnings[0], describe(check)
    assert OTHER_CLIENTS_SETTING not in check.stderr, describe(check)
    assert f"mcpd: info: {config}: {IGNORING_CLIENT_SETTINGS}theme, vim_mode" in check.stderr, describe(check)

    p = raw_mcpd(config)
    p.initialize()
    assert tool_names(p) == ALPHA_NAMES | BETA_NAMES
    assert call_text(p, "alpha__echo", {"text": "zed"}) == "zed"
    assert call_text(p, "beta__upper", {"text": "zed"}) == "ZED"
    stop(p)
    assert "is a Zed extension" in p.stderr_text() and OTHER_CLIENTS_SETTING not in p.stderr_text()


# --------------------------------------------------------------------------- 6. disabledTools


def test_cursor_disabled_tools_are_hidden(piddir, write_config, raw_mcpd):
    """Cursor's mcp.json with alpha's `disabledTools: [shout, crash]`: both are absent from
    tools/list and a call to one is not available; the rest of alpha is served."""
    config = write_config({"mcpServers": {"alpha": stdio_entry("alpha", piddir, disabledTools=["shout", "crash"])}},
                          name="mcp.json")
    p = raw_mcpd(config)
    p.initialize()
    assert tool_names(p) == ALPHA_NAMES - {"alpha__shout", "alpha__crash"}
    message = call_error(p, "alpha__shout", {"line": "hidden"})
    assert message.startswith('Tool "alpha__shout" is not available'), message
    message = call_error(p, "alpha__crash")
    assert "not available" in message, message
    assert call_text(p, "alpha__echo", {"text": "cursor"}) == "cursor"
    assert len(pids_of(piddir, "alpha")) == 1, "the hidden crash tool reached alpha"
    stop(p)


# --------------------------------------------------------------------------- 7. check: every error


def test_check_reports_every_error_with_its_position(mcpd_bin, write_config, mcpd_env):
    """gateway.separatr, page_size 0, `comand:` (and so no command), timeout 5x, top-level
    sevrers: check exits 1 with one error line per problem, each at file:line:col, then
    `<file>: 6 errors`; --json gives ok false and the same six errors."""
    text = (
        "gateway:\n"                                                  # 1
        '  separatr: "-"\n'                                           # 2
        "  page_size: 0\n"                                            # 3
        "servers:\n"                                                  # 4
        "  alpha:\n"                                                  # 5
        f"    comand: {json.dumps(sys.executable)}\n"                # 6
        f"    args: [{json.dumps(backend_script('alpha'))}]\n"       # 7
        "  beta:\n"                                                   # 8
        f"    command: {json.dumps(sys.executable)}\n"               # 9
        f"    args: [{json.dumps(backend_script('beta'))}]\n"        # 10
        "    timeout: 5x\n"                                           # 11
        "sevrers: {}\n"                                               # 12
    )
    config = write_config(text)
    expected = [
        (2, 3, 'unknown key gateway.separatr; did you mean "separator"?'),
        (3, 14, "gateway.page_size must be between 1 and 10000"),
        (6, 5, 'unknown key "comand" in server "alpha"; did you mean "command"?'),
        (5, 3, 'server "alpha" has no "command"'),
        (11, 14, 'servers.beta.timeout "5x" is not a duration'),
        (12, 1, 'unknown top-level key "sevrers"; did you mean "servers"?'),
    ]
    proc = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 1, describe(proc)
    assert proc.stdout == "", describe(proc)
    lines = proc.stderr.splitlines()
    errors = [line for line in lines if line.startswith("mcpd: error: ")]
    assert len(errors) == len(expected), describe(proc)
    for line, column, message in expected:
        hits = [e for e in errors if e.startswith(f"mcpd: error: {config}:{line}:{column}: {message}")]
        assert len(hits) == 1, f"want one error at {line}:{column}: {message!r}\n{describe(proc)}"
    assert lines[-1] == f"{config}: {len(expected)} errors", describe(proc)

    document = run_mcpd(mcpd_bin, "check", "--json", "-c", str(config), env=mcpd_env)
    assert document.returncode == 1, describe(document)
    result = json.loads(document.stdout)
    assert result["ok"] is False and len(result["errors"]) == len(expected), result
    for line, column, message in expected:
        assert sum(e.startswith(f"{config}:{line}:{column}: {message}") for e in result["errors"]) == 1, (message, result)


# --------------------------------------------------------------------------- 8. mcpd import FILE


def import_env(mcpd_env: dict[str, str], tmp_path: Path, **extra: str) -> dict[str, str]:
    """mcpd's environment with HOME and XDG_CONFIG_HOME in tmp_path."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = dict(mcpd_env, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), **extra)
    return env


def test_import_claude_desktop_keeps_variables_and_prints_the_replacement(
    mcpd_bin, tmp_path, piddir, write_config, raw_mcpd, mcpd_env
):
    """claude_desktop_config.json (globalShortcut, preferences, env with ${SOME_TOKEN}, args, a
    disabled server, Cline's autoApprove): stdout is an mcpd config with ${SOME_TOKEN} as written
    (SOME_TOKEN is set) and `enabled: false` for the disabled server; the last stderr line is the
    mcpServers snippet running this mcpd with `stdio --config $XDG_CONFIG_HOME/mcpd/mcpd.yaml`; the
    config passes check and serves what the original serves, with the token expanded at run time."""
    token = "the-token-value-1234"
    env = import_env(mcpd_env, tmp_path, SOME_TOKEN=token)
    document = {
        "globalShortcut": "Ctrl+Space",
        "mcpServers": {
            "alpha": stdio_entry("alpha", piddir, autoApprove=["echo"]),
            "beta": stdio_entry("beta", piddir, env={"MCPD_TEST_PIDDIR": str(piddir), "TOKEN": "${SOME_TOKEN}"}),
            "off": {"command": "no-such-program-mcpd-test", "args": ["--flag"], "disabled": True},
        },
        "preferences": {"menuBarEnabled": False},
    }
    original = write_config(document, name="claude_desktop_config.json")
    proc = run_mcpd(mcpd_bin, "import", str(original), env=env)
    assert proc.returncode == 0, describe(proc)
    assert '"${SOME_TOKEN}"' in proc.stdout and token not in proc.stdout, describe(proc)
    assert "servers:" in proc.stdout and "mcpServers" not in proc.stdout, describe(proc)
    off = proc.stdout[proc.stdout.index("  off:\n"):]
    assert re.match(r"  off:\n(    .*\n)*?    enabled: false\n", off), describe(proc)
    assert "autoApprove" not in proc.stdout, describe(proc)

    entry = snippet(proc.stderr)["mcpServers"]["mcpd"]
    assert_runs_mcpd(entry, mcpd_bin, f"{tmp_path}/home/.config/mcpd/mcpd.yaml")

    imported = write_config(proc.stdout, name="imported.yaml")
    check = run_mcpd(mcpd_bin, "check", "-c", str(imported), env=env)
    assert check.returncode == 0, describe(check)
    assert f"{imported}: OK, 2 servers enabled: alpha, beta" in check.stdout, describe(check)

    assert served_tools(raw_mcpd, original, env) == served_tools(raw_mcpd, imported, env) == ALPHA_NAMES | BETA_NAMES
    p = raw_mcpd(imported, env=env)
    p.initialize()
    assert call_text(p, "beta__getenv", {"name": "TOKEN"}) == token
    stop(p)


def test_import_vscode_writes_out_the_workspace_and_keeps_env_variables(mcpd_bin, tmp_path, piddir, raw_mcpd, mcpd_env):
    """.vscode/mcp.json: the snippet's key is servers with type stdio; ${workspaceFolder} is
    written out as the absolute folder, ${env:X} becomes ${X}; the imported config serves the same
    tools, with the workspace as beta's cwd and X from the environment."""
    env = import_env(mcpd_env, tmp_path, MCPD_TEST_IMPORT_X="x-value-5678")
    workspace, original = vscode_file(tmp_path, {
        "inputs": [],
        "servers": {
            "alpha": {"type": "stdio", "command": sys.executable, "args": [backend_script("alpha")],
                      "env": {"MCPD_TEST_PIDDIR": str(piddir)}},
            "beta": {"type": "stdio", "command": sys.executable, "args": [backend_script("beta")],
                     "cwd": "${workspaceFolder}",
                     "env": {"MCPD_TEST_PIDDIR": str(piddir), "X": "${env:MCPD_TEST_IMPORT_X}"}},
        },
    })
    proc = run_mcpd(mcpd_bin, "import", str(original), env=env)
    assert proc.returncode == 0, describe(proc)
    assert f"cwd: {json.dumps(str(workspace))}" in proc.stdout, describe(proc)
    assert 'X: "${MCPD_TEST_IMPORT_X}"' in proc.stdout, describe(proc)
    assert "workspaceFolder" not in proc.stdout and "env:" + "MCPD_TEST_IMPORT_X" not in proc.stdout, describe(proc)
    assert "x-value-5678" not in proc.stdout, describe(proc)

    entry = snippet(proc.stderr)["servers"]["mcpd"]
    assert entry["type"] == "stdio", entry
    assert_runs_mcpd(entry, mcpd_bin, f"{tmp_path}/home/.config/mcpd/mcpd.yaml")

    imported = tmp_path / "imported.yaml"
    imported.write_text(proc.stdout)
    assert served_tools(raw_mcpd, original, env) == served_tools(raw_mcpd, imported, env) == ALPHA_NAMES | BETA_NAMES
    p = raw_mcpd(imported, env=env)
    p.initialize()
    assert os.path.realpath(call_text(p, "beta__cwd")) == os.path.realpath(workspace)
    assert call_text(p, "beta__getenv", {"name": "X"}) == "x-value-5678"
    stop(p)


def test_import_zed_to_a_file_is_private_and_never_overwritten(mcpd_bin, tmp_path, piddir, write_config, raw_mcpd, mcpd_env):
    """`mcpd import settings.json -o out.yaml` (relative, run from tmp): out.yaml has mode 0600 and
    stdout is empty; the snippet's key is context_servers and its config is out.yaml's absolute
    path; a second run exits 1 saying it does not overwrite and leaves the file as it was; out.yaml
    serves what Zed's file serves."""
    env = import_env(mcpd_env, tmp_path)
    original = write_config(zed_settings(piddir), name="settings.json")
    out = tmp_path / "out.yaml"
    proc = run_mcpd(mcpd_bin, "import", str(original), "-o", "out.yaml", env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout == "", describe(proc)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600, oct(out.stat().st_mode)
    entry = snippet(proc.stderr)["context_servers"]["mcpd"]
    assert_runs_mcpd(entry, mcpd_bin, str(out))
    written = out.read_text()
    assert "postgres" not in written and "  alpha:\n" in written and "  beta:\n" in written, written

    again = run_mcpd(mcpd_bin, "import", str(original), "-o", "out.yaml", env=env, cwd=str(tmp_path))
    assert again.returncode == 1, describe(again)
    assert "does not overwrite" in again.stderr and "out.yaml" in again.stderr, describe(again)
    assert out.read_text() == written

    assert served_tools(raw_mcpd, original, env) == served_tools(raw_mcpd, out, env) == ALPHA_NAMES | BETA_NAMES


# --------------------------------------------------------------------------- 9. mcpd import, no file


def test_import_without_a_file_lists_what_home_holds(mcpd_bin, tmp_path, piddir, mcpd_env):
    """HOME empty: exit 1, `no client config found`. With Claude Desktop's and Cursor's files in
    HOME (run from an empty folder): both listed with client name, server count and absolute path;
    `--from cursor` imports Cursor's file; `--from nosuch` is a usage error (64)."""
    home = tmp_path / "home"
    home.mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    env = dict(mcpd_env, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))

    nothing = run_mcpd(mcpd_bin, "import", env=env, cwd=str(empty))
    assert nothing.returncode == 1, describe(nothing)
    assert "no client config found" in nothing.stderr and nothing.stdout == "", describe(nothing)

    desktop = home / ".config" / "Claude" / "claude_desktop_config.json"
    desktop.parent.mkdir(parents=True)
    desktop.write_text(json.dumps({"mcpServers": {"alpha": stdio_entry("alpha", piddir), "beta": stdio_entry("beta", piddir)}}))
    cursor = home / ".cursor" / "mcp.json"
    cursor.parent.mkdir(parents=True)
    cursor.write_text(json.dumps({"mcpServers": {"cursorbeta": stdio_entry("beta", piddir)}}))

    listing = run_mcpd(mcpd_bin, "import", env=env, cwd=str(empty))
    assert listing.returncode == 0, describe(listing)
    rows = {line.split()[0]: line for line in listing.stdout.splitlines() if line.strip()}
    assert "claude-desktop" in rows and "cursor" in rows, describe(listing)
    assert re.search(r"\b2: alpha, beta\b", rows["claude-desktop"]) and rows["claude-desktop"].rstrip().endswith(str(desktop)), describe(listing)
    assert re.search(r"\b1: cursorbeta\b", rows["cursor"]) and rows["cursor"].rstrip().endswith(str(cursor)), describe(listing)
    assert not any(client in rows for client in ("claude-code", "vscode", "windsurf", "zed", "cline")), describe(listing)

    chosen = run_mcpd(mcpd_bin, "import", "--from", "cursor", env=env, cwd=str(empty))
    assert chosen.returncode == 0, describe(chosen)
    assert "  cursorbeta:\n" in chosen.stdout and "alpha" not in chosen.stdout, describe(chosen)
    assert f"imported from {cursor}" in chosen.stdout, describe(chosen)
    assert "mcpd" in snippet(chosen.stderr)["mcpServers"], describe(chosen)

    bad = run_mcpd(mcpd_bin, "import", "--from", "nosuch", env=env, cwd=str(empty))
    assert bad.returncode == 64, describe(bad)
    assert "nosuch" in bad.stderr and bad.stdout == "", describe(bad)


# --------------------------------------------------------------------------- 10. a server that is down


def test_a_down_server_tool_call_says_why(piddir, write_config, raw_mcpd, mcpd_env):
    """down (sh printing `TOKEN is required` and exiting 1, with TOKEN from an unset variable,
    lazy: false, restart_limit 2) beside beta: a call of down__anything gets -32602 `Tool
    "down__anything" is not available: backend "down"...` with its stderr and, once the restarts
    gave up, `it was started without ${UNSET_VAR_FOR_TEST}`; `zzz` is an unknown tool whose error
    names down as not running; beta serves."""
    env = dict(mcpd_env)
    env.pop("UNSET_VAR_FOR_TEST", None)
    config = write_config(
        "gateway:\n"
        "  restart_limit: 2\n"
        "servers:\n"
        "  down:\n"
        "    command: sh\n"
        "    args: [\"-c\", 'echo \"TOKEN is required\" >&2; exit 1']\n"
        "    env:\n"
        '      TOKEN: "${UNSET_VAR_FOR_TEST}"\n'
        "    lazy: false\n"
        + to_yaml({"beta": server_entry("beta", piddir)}, indent=1) + "\n"
    )
    p = raw_mcpd(config, env=env)
    p.initialize()
    prefix = 'Tool "down__anything" is not available: backend "down"'
    message = call_error(p, "down__anything")
    assert message.startswith(prefix) and "TOKEN is required" in message, message
    deadline = time.monotonic() + 10
    while "it was started without ${UNSET_VAR_FOR_TEST}" not in message:
        assert time.monotonic() < deadline, f"the error never named the unset variable: {message}"
        time.sleep(0.2)
        message = call_error(p, "down__anything")
        assert message.startswith(prefix) and "TOKEN is required" in message, message

    message = call_error(p, "zzz")
    assert message.startswith('Unknown tool: "zzz"') and '"down"' in message, message
    assert call_text(p, "beta__echo", {"text": "up"}) == "beta:up"
    wait_for_pidfiles(piddir, ["beta"])
    stop(p)
