"""The mcpd command line: --version, list, check, the accepted config forms and ${VAR} expansion."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mcpd_helpers import ALPHA_TOOLS, backend_script, BETA_TOOLS, describe, run_mcpd, server_entry


def test_version(mcpd_bin):
    proc = run_mcpd(mcpd_bin, "--version", timeout=10)
    assert proc.returncode == 0, describe(proc)
    assert re.search(r"\d+\.\d+", proc.stdout), describe(proc)


def test_unknown_subcommand_fails(mcpd_bin):
    proc = run_mcpd(mcpd_bin, "no-such-subcommand", timeout=10)
    assert proc.returncode != 0, describe(proc)
    assert proc.stdout.strip() == "" or "no-such-subcommand" in proc.stdout + proc.stderr


def test_no_subcommand_with_stdout_a_pipe_is_a_usage_error_on_stderr(mcpd_bin):
    """`mcpd` alone, as a client configured without `stdio` runs it: stdout (the protocol
    channel) stays empty; the usage goes to stderr, exit 64."""
    proc = run_mcpd(mcpd_bin, timeout=10)
    assert proc.returncode == 64, describe(proc)
    assert proc.stdout == "", describe(proc)
    assert "mcpd stdio --config" in proc.stderr and "SUBCOMMANDS" in proc.stderr, describe(proc)


def test_a_chain_of_mcpd_processes_stops_at_a_fixed_depth(mcpd_bin, write_config, mcpd_env):
    """A config that lists mcpd itself: each mcpd starts the next as a backend, with
    MCPD_DEPTH one higher; the fourth level refuses to start, with a clear error."""
    config = write_config("placeholder")
    config.write_text("servers:\n  self:\n    command: " + json.dumps(mcpd_bin) + "\n"
                      "    args: [stdio, --config, " + json.dumps(str(config)) + "]\n    inherit_env: true\n")
    deep = run_mcpd(mcpd_bin, "stdio", "--config", str(config), env=dict(mcpd_env, MCPD_DEPTH="4"), timeout=10)
    assert deep.returncode == 1, describe(deep)
    assert "MCPD_DEPTH=4" in deep.stderr and "list mcpd itself" in deep.stderr, describe(deep)
    # From the top: the chain ends by itself, and the client's initialize is answered.
    proc = subprocess.run([mcpd_bin, "stdio", "--config", str(config)], env=mcpd_env, capture_output=True, text=True, timeout=60,
                          input=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                              "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}) + "\n")
    assert '"id":1,"result"' in proc.stdout, describe(proc)
    assert "Refusing to start another level" in proc.stderr, describe(proc)


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["help"]])
def test_help_lists_subcommands(mcpd_bin, args):
    proc = run_mcpd(mcpd_bin, *args, timeout=10)
    assert proc.returncode == 0, describe(proc)
    for name in ("stdio", "list", "check", "--config", "--log-level", "--version"):
        assert name in proc.stdout, f"{name} missing from help\n{describe(proc)}"


@pytest.mark.parametrize("args", [["stdio", "--help"], ["help", "check"], ["list", "-h"]])
def test_subcommand_help(mcpd_bin, args):
    proc = run_mcpd(mcpd_bin, *args, timeout=10)
    assert proc.returncode == 0, describe(proc)
    name = args[1] if args[0] == "help" else args[0]
    assert f"USAGE: mcpd {name}" in proc.stdout and "--config" in proc.stdout, describe(proc)


@pytest.mark.parametrize(
    "args, message",
    [
        (["stdio", "--bogus"], "unknown option '--bogus'"),
        (["check", "-c"], "missing value for '-c'"),
        (["check", "extra"], "unexpected argument 'extra'"),
        (["--bogus"], "unknown option '--bogus'"),
        (["-c", "x.yaml"], "'-c' goes after a subcommand"),
        (["check", "--log-level", "loud", "-c", "/nonexistent.yaml"], "--log-level must be"),
    ],
)
def test_usage_errors_exit_64_with_a_message(mcpd_bin, args, message):
    proc = run_mcpd(mcpd_bin, *args, timeout=10)
    assert proc.returncode == 64, describe(proc)
    assert message in proc.stderr, describe(proc)
    assert proc.stdout == "", describe(proc)


def test_config_option_spellings(mcpd_bin, standard_config, mcpd_env):
    for args in (["-c", str(standard_config)], ["--config", str(standard_config)], [f"--config={standard_config}"]):
        proc = run_mcpd(mcpd_bin, "check", *args, "--log-level=warning", env=mcpd_env)
        assert proc.returncode == 0, describe(proc)
        assert f"{standard_config}: OK" in proc.stdout, describe(proc)


def test_list_prints_servers_and_exposed_tools(mcpd_bin, standard_config, mcpd_env, assert_backends_dead):
    proc = run_mcpd(mcpd_bin, "list", "--config", str(standard_config), env=mcpd_env)
    assert proc.returncode == 0, describe(proc)
    for name in [f"alpha__{t}" for t in ALPHA_TOOLS] + [f"beta__{t}" for t in BETA_TOOLS]:
        assert name in proc.stdout, f"{name} missing from `mcpd list` output\n{describe(proc)}"
    assert "alpha" in proc.stdout and "beta" in proc.stdout
    header = proc.stdout.splitlines()[0].split()
    assert header == ["SERVER", "STATE", "TOOLS", "PROMPTS", "RESOURCES", "TEMPLATES", "RESTARTS", "LAST", "EXIT", "CATALOG", "COMMAND"], proc.stdout
    alpha = next(line.split() for line in proc.stdout.splitlines() if line.startswith("alpha "))
    assert alpha[1:6] == ["ready", str(len(ALPHA_TOOLS)), "0", "0", "0"], proc.stdout
    pids = assert_backends_dead(expect_at_least=2)
    assert sorted(pids.values()) == ["alpha", "beta"]

    # The first run filled the catalog: the second answers from it and starts nothing.
    again = run_mcpd(mcpd_bin, "list", "--config", str(standard_config), env=mcpd_env)
    assert again.returncode == 0, describe(again)
    alpha = next(line.split() for line in again.stdout.splitlines() if line.startswith("alpha "))
    assert alpha[1:6] == ["cached", str(len(ALPHA_TOOLS)), "0", "0", "0"], again.stdout
    for name in [f"alpha__{t}" for t in ALPHA_TOOLS] + [f"beta__{t}" for t in BETA_TOOLS]:
        assert name in again.stdout, describe(again)
    assert len(assert_backends_dead()) == len(pids), "mcpd list started a backend the catalog lists"

    # --json, for scripts; --refresh starts every backend again.
    import json
    document = json.loads(run_mcpd(mcpd_bin, "list", "--json", "--refresh", "--config", str(standard_config), env=mcpd_env).stdout)
    assert {s["name"]: s["state"] for s in document["servers"]} == {"alpha": "ready", "beta": "ready"}
    assert {t["name"] for t in document["tools"]} >= {f"beta__{t}" for t in BETA_TOOLS}
    assert len(assert_backends_dead()) == len(pids) + 2


def test_check_accepts_good_config(mcpd_bin, standard_config, mcpd_env, assert_backends_dead):
    proc = run_mcpd(mcpd_bin, "check", "--config", str(standard_config), env=mcpd_env)
    assert proc.returncode == 0, describe(proc)
    assert_backends_dead()


# (config text, the line the error must point at, or None when any line number will do)
BAD_CONFIGS = {
    "bad-yaml-indent": ("servers:\n  alpha:\n    command: python3\n   args: [x]\n", None),
    "bad-yaml-unclosed": ('servers:\n  alpha:\n    command: "python3\n    args: [x]\n', None),
    "missing-command": ('servers:\n  alpha:\n    args: ["x.py"]\n', (2, 3)),
    "args-not-a-list": ("servers:\n  alpha:\n    command: python3\n    args: 42\n", (4,)),
    "enabled-not-bool": ("servers:\n  alpha:\n    command: python3\n    enabled: maybe\n", (4,)),
    "env-not-a-map": ("servers:\n  alpha:\n    command: python3\n    env: [1, 2]\n", (4,)),
    "servers-not-a-map": ("servers: 5\n", (1,)),
    "unknown-key": ("servers:\n  alpha:\n    command: python3\n    colour: blue\n", (4,)),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_check_rejects_bad_config_with_file_and_line(mcpd_bin, write_config, mcpd_env, case):
    text, lines = BAD_CONFIGS[case]
    path = write_config(text, name="mcpd.yaml")
    proc = run_mcpd(mcpd_bin, "check", "--config", str(path), env=mcpd_env, timeout=10)
    assert proc.returncode != 0, describe(proc)
    positions = [int(m) for m in re.findall(r"mcpd\.yaml:(\d+)", proc.stderr)]
    assert positions, f"error does not name the file and a line (want `mcpd.yaml:LINE:...`)\n{describe(proc)}"
    if lines is not None:
        assert positions[0] in lines, f"error points at line {positions[0]}, expected {lines}\n{describe(proc)}"


def test_check_rejects_bad_json_config(mcpd_bin, write_config, mcpd_env):
    path = write_config('{\n  "mcpServers": {\n    "beta": {"command": "python3"\n  }\n', name="desktop.json")
    proc = run_mcpd(mcpd_bin, "check", "--config", str(path), env=mcpd_env, timeout=10)
    assert proc.returncode != 0, describe(proc)
    assert re.search(r"desktop\.json:\d+", proc.stderr), describe(proc)


def test_check_missing_file(mcpd_bin, tmp_path, mcpd_env):
    path = tmp_path / "does-not-exist.yaml"
    proc = run_mcpd(mcpd_bin, "check", "--config", str(path), env=mcpd_env, timeout=10)
    assert proc.returncode != 0, describe(proc)
    assert "does-not-exist.yaml" in proc.stderr, describe(proc)


def _config_form(form: str, piddir: Path, write_config) -> Path:
    python, script = sys.executable, backend_script("beta")
    if form == "servers":
        return write_config({"servers": {"beta": server_entry("beta", piddir)}})
    if form == "backends-one-string":
        assert " " not in python + script, "paths with spaces cannot be used in a one-string command"
        return write_config(
            f"backends:\n  beta:\n    command: {json.dumps(python + ' ' + script)}\n"
            f"    env:\n      MCPD_TEST_PIDDIR: {json.dumps(str(piddir))}\n"
        )
    if form == "mcpServers-json":
        return write_config(
            {"mcpServers": {"beta": {"command": python, "args": [script], "env": {"MCPD_TEST_PIDDIR": str(piddir)}}}},
            name="claude_desktop_config.json",
        )
    raise AssertionError(form)


@pytest.mark.parametrize("form", ["servers", "backends-one-string", "mcpServers-json"])
def test_config_forms(mcpd_bin, write_config, piddir, mcpd_env, form, assert_backends_dead):
    config = _config_form(form, piddir, write_config)

    check = run_mcpd(mcpd_bin, "check", "--config", str(config), env=mcpd_env)
    assert check.returncode == 0, describe(check)

    listing = run_mcpd(mcpd_bin, "list", "--config", str(config), env=mcpd_env)
    assert listing.returncode == 0, describe(listing)
    assert "beta__upper" in listing.stdout, describe(listing)

    assert_backends_dead(expect_at_least=1)


def test_env_expansion_and_cwd_reach_the_backend(mcpd_bin, write_config, piddir, tmp_path, mcpd_env, raw_mcpd):
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    config = write_config(
        "servers:\n"
        "  beta:\n"
        f"    command: {json.dumps(sys.executable)}\n"
        f"    args: [{json.dumps(backend_script('beta'))}]\n"
        f"    cwd: {json.dumps(str(workdir))}\n"
        "    env:\n"
        f"      MCPD_TEST_PIDDIR: {json.dumps(str(piddir))}\n"
        '      PLAIN: "${MCPD_TEST_GREETING}"\n'
        '      EMBEDDED: "<${MCPD_TEST_GREETING}>/${MCPD_TEST_SET}"\n'
        '      DEFAULTED: "${MCPD_TEST_SURELY_UNSET_1234:-fallback value}"\n'
        '      NOT_DEFAULTED: "${MCPD_TEST_SET:-unused}"\n'
        "      LITERAL: just text\n"
    )
    env = dict(mcpd_env, MCPD_TEST_GREETING="hello world", MCPD_TEST_SET="set-value")
    env.pop("MCPD_TEST_SURELY_UNSET_1234", None)

    check = run_mcpd(mcpd_bin, "check", "--config", str(config), env=env)
    assert check.returncode == 0, describe(check)

    p = raw_mcpd(config, env=env)
    p.initialize()
    expected = {
        "PLAIN": "hello world",
        "EMBEDDED": "<hello world>/set-value",
        "DEFAULTED": "fallback value",
        "NOT_DEFAULTED": "set-value",
        "LITERAL": "just text",
    }
    got = {}
    for name in expected:
        _, msg, _ = p.request("tools/call", {"name": "beta__getenv", "arguments": {"name": name}})
        got[name] = msg["result"]["content"][0]["text"]
    assert got == expected
    _, msg, _ = p.request("tools/call", {"name": "beta__cwd", "arguments": {}})
    assert os.path.realpath(msg["result"]["content"][0]["text"]) == os.path.realpath(workdir)


@pytest.mark.parametrize("inherit", [False, True])
def test_backends_inherit_only_a_minimal_environment_unless_asked(
    mcpd_bin, write_config, raw_mcpd, piddir, mcpd_env, inherit
):
    """A backend gets PATH, HOME, LANG, LC_*, XDG_* ... of mcpd's environment and its own `env`;
    other variables (tokens meant for other servers) only with `inherit_env: true`; systemd's
    NOTIFY_SOCKET and WATCHDOG_* never."""
    server = server_entry("beta", piddir, env={"OWN": "mine"})
    if inherit:
        server["inherit_env"] = True
    config = write_config({"servers": {"beta": server}})
    env = dict(mcpd_env, OTHER_TOKEN="not-for-beta", LC_TIME="C", XDG_DATA_HOME="/tmp/xdg",
               NOTIFY_SOCKET="/nonexistent/notify", WATCHDOG_USEC="1000000")
    p = raw_mcpd(config, env=env)
    p.initialize()
    got = {}
    for name in ["OWN", "PATH", "HOME", "LC_TIME", "XDG_DATA_HOME", "OTHER_TOKEN", "NOTIFY_SOCKET", "WATCHDOG_USEC"]:
        _, msg, _ = p.request("tools/call", {"name": "beta__getenv", "arguments": {"name": name}})
        got[name] = msg["result"]["content"][0]["text"]
    assert got["OWN"] == "mine"
    assert got["PATH"] == env["PATH"] and got["LC_TIME"] == "C" and got["XDG_DATA_HOME"] == "/tmp/xdg"
    assert got["HOME"] == env.get("HOME", "<unset>")
    assert got["OTHER_TOKEN"] == ("not-for-beta" if inherit else "<unset>")
    assert got["NOTIFY_SOCKET"] == "<unset>" and got["WATCHDOG_USEC"] == "<unset>"


def test_version_subcommand_names_what_mcpd_was_built_with(mcpd_bin):
    proc = run_mcpd(mcpd_bin, "version", timeout=10)
    assert proc.returncode == 0, describe(proc)
    assert re.search(r"^mcpd \d+\.\d+\.\d+$", proc.stdout, re.M), describe(proc)
    assert re.search(r"^libuv: \d+\.\d+\.\d+$", proc.stdout, re.M), describe(proc)
    assert re.search(r"^libyaml: \d+\.\d+\.\d+$", proc.stdout, re.M), describe(proc)
    assert re.search(r"^swift compiler: ", proc.stdout, re.M), describe(proc)


def test_a_misspelt_subcommand_gets_the_closest_one(mcpd_bin):
    for typed, meant in (("lsit", "list"), ("stdoi", "stdio"), ("chek", "check"), ("reloads", "reload")):
        proc = run_mcpd(mcpd_bin, typed, timeout=10)
        assert proc.returncode == 64, describe(proc)
        assert f"did you mean '{meant}'?" in proc.stderr, describe(proc)
    proc = run_mcpd(mcpd_bin, "frobnicate", timeout=10)
    assert proc.returncode == 64 and "did you mean" not in proc.stderr, describe(proc)


def test_check_json_for_scripts(mcpd_bin, standard_config, write_config, mcpd_env):
    good = run_mcpd(mcpd_bin, "check", "--json", "--config", str(standard_config), env=mcpd_env)
    assert good.returncode == 0, describe(good)
    document = json.loads(good.stdout)
    assert document["ok"] is True and document["errors"] == [] and document["servers"] == ["alpha", "beta"], document
    bad_config = write_config("servers:\n  a:\n    command: no-such-program-mcpd-test\n  b:\n    command: ${MCPD_TEST_UNSET_VARIABLE}x\n",
                              name="bad.yaml")
    env = {k: v for k, v in mcpd_env.items() if k != "MCPD_TEST_UNSET_VARIABLE"}
    bad = run_mcpd(mcpd_bin, "check", "--json", "--config", str(bad_config), env=env)
    assert bad.returncode == 1, describe(bad)
    document = json.loads(bad.stdout)
    assert document["ok"] is False and len(document["errors"]) == 3, document  # a missing program, an unset variable, and its result
    assert any("bad.yaml:3" in e and "not found on PATH" in e for e in document["errors"]), document
    assert any("MCPD_TEST_UNSET_VARIABLE" in e and "is not set" in e for e in document["errors"]), document
