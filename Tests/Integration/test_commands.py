"""The command-line commands around the gateway: `mcpd call`, completions and the man page made
from the parser's table, `make install-files`, the commit in `mcpd version`, the parser's error
messages, the debug request log in JSON, and secrets kept out of every log line.

1. `mcpd call NAME '{json}'` prints the tool's text (a newline appended when missing; other
   content items as JSON) and exits 0; stderr stays empty (its log level defaults to warning,
   raised by --log-level or MCPD_LOG_LEVEL). With the catalog filled, only the tool's backend is
   started, and none is left running. --json prints the whole result. An isError result, an
   argument the tool rejects or a crashing backend exit 1 with the text on stderr; an unknown tool
   exits 1 (`mcpd call: Unknown tool`, with did you mean) and starts nothing; arguments that are
   not one JSON object and a missing NAME exit 64. Multi-byte and escape-dense text round-trips
   byte for byte.
2. `mcpd completions bash|zsh|fish`: each passes its shell's `-n`; bash's `_mcpd` and fish's
   `complete -C` complete subcommands, options and option values; every subcommand of
   `mcpd --help` is in all three scripts, and each script's options of a subcommand are exactly
   those of `mcpd SUB --help`. An unknown shell exits 64.
3. `mcpd man` is roff that groff accepts without a warning; rendered by man it has the usual
   sections, every subcommand and every option, each option naming the subcommands that take it.
4. `make install-files BIN=... PREFIX=...` installs the binary, the three completion scripts and
   the man page (each what the binary prints), and the installed binary runs; DESTDIR is
   honoured; a BIN that is not an executable fails naming BIN.
5. `mcpd version`: `commit: <HEAD's abbreviated hash>[-dirty] (<HEAD's date>)` or
   `commit: unknown (unknown)`; libuv and libyaml are the versions pkg-config reports.
6. Parser errors from the table (exit 64): an option of another subcommand, an unknown option,
   a misspelt subcommand, a value given to a flag, an extra argument, an argument after `--`;
   `mcpd help call` and `mcpd call --help` print the same text.
7. `--log-level debug --log-format json`: every stderr line is a JSON object with time, level,
   source and msg; one debug line per forwarded request names the session, the method, the tool,
   the backend, the request id, the milliseconds and the outcome; a request answered by mcpd
   itself (an unknown tool) has none.
8. A value that came from `${VAR}` (a secret) is `***` in every log line at every level and in
   both formats: a backend's own stderr, the command line of a started backend, an error about a
   path; and it is not in the state directory. `mcpd check`, `check --json`, `list`,
   `list --json` and `call` do not print it either.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcpd_helpers import (
    REPO_ROOT,
    LineProcess,
    backend_script,
    describe,
    pids_of,
    recorded_pids,
    run_mcpd,
    server_entry,
)

SECRET = "sekr1t-Value-XYZ"


# --------------------------------------------------------------------------- helpers


def two_servers(write_config: Callable[..., Path], piddir: Path) -> Path:
    return write_config({"servers": {"alpha": server_entry("alpha", piddir), "beta": server_entry("beta", piddir)}})


def fill_catalog(mcpd_bin: str, config: Path, env: dict[str, str], assert_backends_dead) -> None:
    """`mcpd list` starts both backends once and records their tools in the state directory."""
    listing = run_mcpd(mcpd_bin, "list", "-c", str(config), env=env)
    assert listing.returncode == 0, describe(listing)
    assert sorted(assert_backends_dead(expect_at_least=2).values()) == ["alpha", "beta"]


def call_bytes(mcpd_bin: str, *args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess:
    """`mcpd ARGS` with stdout and stderr as bytes (run_mcpd decodes them)."""
    return subprocess.run([mcpd_bin, *args], stdin=subprocess.DEVNULL, capture_output=True, env=env,
                          timeout=timeout, start_new_session=True)


def help_sections(text: str) -> dict[str, list[str]]:
    """`HEADING:` -> the lines under it, up to the next blank line."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if re.fullmatch(r"[A-Z][A-Z ]*:", line):
            current = sections.setdefault(line[:-1], [])
        elif not line.strip():
            current = None
        elif current is not None:
            current.append(line)
    return sections


def option_spellings(left_column: str) -> list[str]:
    return re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", left_column)


def help_subcommands(mcpd_bin: str) -> list[str]:
    proc = run_mcpd(mcpd_bin, "--help", timeout=10)
    assert proc.returncode == 0, describe(proc)
    names = [line.split()[0] for line in help_sections(proc.stdout).get("SUBCOMMANDS", [])]
    assert len(names) >= 9 and {"stdio", "call", "completions", "man"} <= set(names), describe(proc)
    return names


def help_options(mcpd_bin: str, sub: str | None) -> set[str]:
    """The option spellings of the OPTIONS section of `mcpd [SUB] --help`."""
    proc = run_mcpd(mcpd_bin, *([sub] if sub else []), "--help", timeout=10)
    assert proc.returncode == 0, describe(proc)
    options: set[str] = set()
    for line in help_sections(proc.stdout)["OPTIONS"]:
        options.update(option_spellings(re.split(r"\s{2,}", line.strip())[0]))
    assert {"-h", "--help"} <= options, describe(proc)
    return options


def completion_script(mcpd_bin: str, shell: str, tmp_path: Path) -> Path:
    proc = run_mcpd(mcpd_bin, "completions", shell, timeout=10)
    assert proc.returncode == 0 and proc.stdout.strip(), describe(proc)
    assert proc.stderr == "", describe(proc)
    path = tmp_path / f"mcpd.{shell}"
    path.write_text(proc.stdout)
    return path


def shell_env(tmp_path: Path) -> dict[str, str]:
    """A shell's environment with its home and XDG folders in tmp_path (fish writes there)."""
    home = tmp_path / "shell-home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ["PATH"], "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"), "XDG_CACHE_HOME": str(home / "cache"), "LANG": "C.UTF-8"}


def bash_complete(script: Path, words: list[str], tmp_path: Path) -> list[str]:
    """COMPREPLY of the script's _mcpd for the command line `words` (the last one being completed)."""
    program = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; '
               'COMP_POINT=${#COMP_LINE}; COMPREPLY=(); _mcpd; printf "%s\\n" "${COMPREPLY[@]}"')
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", program, "bash", str(script), *words],
                          capture_output=True, text=True, env=shell_env(tmp_path), timeout=20)
    assert proc.returncode == 0 and proc.stderr == "", f"bash completion of {words}: {proc}"
    return [line for line in proc.stdout.splitlines() if line]


def fish_complete(script: Path, line: str, tmp_path: Path) -> list[str]:
    """The candidates (without descriptions) fish offers for the command line `line`."""
    proc = subprocess.run(["fish", "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", str(script), line],
                          capture_output=True, text=True, env=shell_env(tmp_path), timeout=20)
    assert proc.returncode == 0, f"fish completion of {line!r}: {proc}"
    return [candidate.split("\t")[0] for candidate in proc.stdout.splitlines() if candidate]


def bash_case_words(script_text: str, sub: str) -> list[str]:
    """The words of the last `compgen -W` of the bash script's case arm for `sub`."""
    match = re.search(rf"^ {{8}}{re.escape(sub)}\)\n(.*?)^ {{12}};;$", script_text, re.M | re.S)
    assert match, f"no case arm for {sub!r} in the bash script"
    lists = re.findall(r'compgen -W "([^"]*)"', match.group(1))
    assert lists, f"no compgen -W in the bash case arm of {sub!r}:\n{match.group(1)}"
    return lists[-1].split()


def fish_options(script_text: str, sub: str) -> set[str]:
    options: set[str] = set()
    for line in script_text.splitlines():
        if f"'__fish_seen_subcommand_from {sub}'" in line:
            options.update("-" + s for s in re.findall(r" -s (\S+)", line))
            options.update("--" + name for name in re.findall(r" -l (\S+)", line))
    return options


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


def stop(p: LineProcess, timeout: float = 10.0) -> None:
    """Closes mcpd's input and expects it to exit 0."""
    p.close_stdin()
    code = p.wait(timeout)
    assert code == 0, f"mcpd exit status {code} after its input closed; stderr:\n{p.stderr_text()[-3000:]}"


def tool_call(p: LineProcess, name: str, arguments: dict[str, Any] | None = None, *, id_raw: str | None = None,
              timeout: float = 15.0) -> dict[str, Any]:
    _, msg, _ = p.request("tools/call", {"name": name, "arguments": arguments or {}}, id_raw=id_raw, timeout=timeout)
    return msg


def render_man(roff: str, tmp_path: Path) -> str:
    page = tmp_path / "mcpd.1"
    page.write_text(roff)
    env = dict(shell_env(tmp_path), MANWIDTH="100", MANPAGER="cat", PAGER="cat")
    proc = subprocess.run(["man", "-l", str(page)], capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 0, f"man -l failed: {proc}"
    return re.sub(".\b", "", proc.stdout)  # no overstrike, whatever the man configuration


# --------------------------------------------------------------------------- 1. mcpd call


def test_call_prints_the_text_and_starts_only_the_tools_backend(mcpd_bin, write_config, piddir, mcpd_env,
                                                               assert_backends_dead):
    """With the catalog filled by `mcpd list`, `mcpd call alpha__echo '{"text":"hi"}'` prints
    "hi\\n" on stdout, nothing on stderr, exits 0; it started one alpha and no beta, and left no
    backend running."""
    config = two_servers(write_config, piddir)
    fill_catalog(mcpd_bin, config, mcpd_env, assert_backends_dead)
    alpha_before, beta_before = pids_of(piddir, "alpha"), pids_of(piddir, "beta")

    proc = call_bytes(mcpd_bin, "call", "alpha__echo", '{"text":"hi"}', "-c", str(config), env=mcpd_env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"hi\n", b""), proc
    assert len(pids_of(piddir, "alpha") - alpha_before) == 1, recorded_pids(piddir)
    assert pids_of(piddir, "beta") == beta_before, f"mcpd call started beta for an alpha tool: {recorded_pids(piddir)}"
    assert_backends_dead()


@pytest.mark.parametrize("how", ["--log-level", "MCPD_LOG_LEVEL"])
def test_call_logs_info_lines_only_when_asked(mcpd_bin, write_config, piddir, mcpd_env, how, assert_backends_dead):
    """`mcpd call` is quiet by default; `--log-level info` or MCPD_LOG_LEVEL=info brings back the
    info lines (the backend starting, ready, stopped) on stderr; stdout has the text only."""
    config = two_servers(write_config, piddir)
    args = ["call", "beta__upper", '{"text":"loud"}', "-c", str(config)]
    env = dict(mcpd_env)
    env.pop("MCPD_LOG_LEVEL", None)
    if how == "--log-level":
        args += ["--log-level", "info"]
    else:
        env["MCPD_LOG_LEVEL"] = "info"
    proc = run_mcpd(mcpd_bin, *args, env=env)
    assert proc.returncode == 0 and proc.stdout == "LOUD\n", describe(proc)
    assert "mcpd: info: " in proc.stderr and 'backend "beta" ready' in proc.stderr, describe(proc)
    assert_backends_dead(expect_at_least=1)


def test_call_output_forms(mcpd_bin, write_config, piddir, mcpd_env, assert_backends_dead):
    """--json prints the whole result as one JSON object (content, isError false, structuredContent);
    without it, a non-text item (an image) is printed as its JSON and text as text; a text that
    already ends with a newline gets no second one."""
    config = two_servers(write_config, piddir)
    fill_catalog(mcpd_bin, config, mcpd_env, assert_backends_dead)

    proc = run_mcpd(mcpd_bin, "call", "alpha__echo", '{"text":"hi"}', "--json", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 0 and proc.stderr == "", describe(proc)
    result = json.loads(proc.stdout)
    assert result["isError"] is False, result
    assert result["content"] == [{"type": "text", "text": "hi"}], result
    assert result["structuredContent"] == {"result": "hi"}, result

    proc = run_mcpd(mcpd_bin, "call", "alpha__image", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 0 and proc.stderr == "", describe(proc)
    first, second = proc.stdout.splitlines()
    image = json.loads(first)
    assert image["type"] == "image" and image["mimeType"] == "image/png" and image["data"].startswith("iVBOR"), first
    assert second == "a 1x1 png", describe(proc)

    proc = call_bytes(mcpd_bin, "call", "alpha__echo", '{"text":"ends\\n"}', "-c", str(config), env=mcpd_env)
    assert (proc.returncode, proc.stdout) == (0, b"ends\n"), proc
    assert_backends_dead()


def test_call_failures_exit_1_with_the_text_on_stderr(mcpd_bin, write_config, piddir, mcpd_env, assert_backends_dead):
    """alpha__fail (isError) exits 1 with its text on stderr and stdout empty; with --json the
    result object (isError true) is printed on stdout all the same, for scripts; echo without its argument (rejected by the
    tool) exits 1 with the validation error; a backend crashing mid-call exits 1 naming the
    backend and the call."""
    config = two_servers(write_config, piddir)
    fill_catalog(mcpd_bin, config, mcpd_env, assert_backends_dead)

    proc = run_mcpd(mcpd_bin, "call", "alpha__fail", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 1 and proc.stdout == "", describe(proc)
    assert proc.stderr == "alpha failed on purpose\n", describe(proc)

    proc = run_mcpd(mcpd_bin, "call", "alpha__fail", "--json", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 1 and proc.stderr == "", describe(proc)
    result = json.loads(proc.stdout)
    assert result == {"content": [{"type": "text", "text": "alpha failed on purpose"}], "isError": True}, result

    proc = run_mcpd(mcpd_bin, "call", "alpha__echo", "{}", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 1 and proc.stdout == "", describe(proc)
    assert "validation error" in proc.stderr and "text" in proc.stderr, describe(proc)

    proc = run_mcpd(mcpd_bin, "call", "alpha__crash", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 1 and proc.stdout == "", describe(proc)
    assert 'mcpd call: backend "alpha"' in proc.stderr and 'tools/call "crash"' in proc.stderr, describe(proc)
    assert_backends_dead()


def test_call_of_an_unknown_tool_exits_1_and_starts_nothing(mcpd_bin, write_config, piddir, mcpd_env,
                                                             assert_backends_dead):
    """With the catalog filled, `mcpd call alpha__ecko` exits 1 with `mcpd call: Unknown tool:
    "alpha__ecko"` and did you mean "alpha__echo"? on stderr, stdout empty, and starts no backend."""
    config = two_servers(write_config, piddir)
    fill_catalog(mcpd_bin, config, mcpd_env, assert_backends_dead)
    before = recorded_pids(piddir)
    proc = run_mcpd(mcpd_bin, "call", "alpha__ecko", '{"text":"x"}', "-c", str(config), env=mcpd_env)
    assert proc.returncode == 1 and proc.stdout == "", describe(proc)
    assert proc.stderr.startswith('mcpd call: Unknown tool: "alpha__ecko"'), describe(proc)
    assert 'did you mean "alpha__echo"' in proc.stderr, describe(proc)
    assert recorded_pids(piddir) == before, "a call of an unknown tool started a backend"


@pytest.mark.parametrize(
    "args, message",
    [
        (["alpha__echo", "nope"], "must be one JSON object"),
        (["alpha__echo", "[1]"], "must be one JSON object"),
        (["alpha__echo", '"text"'], "must be one JSON object"),
        (["alpha__echo", '{"text": "x"'], "must be one JSON object"),
        ([], "missing <name>"),
    ],
    ids=["word", "array", "string", "truncated", "no-name"],
)
def test_call_usage_errors_exit_64_before_starting_anything(mcpd_bin, write_config, piddir, mcpd_env, args, message):
    """Arguments that are not one JSON object, or no tool name: exit 64, the message and the call
    usage on stderr, stdout empty, no backend started."""
    config = two_servers(write_config, piddir)
    proc = run_mcpd(mcpd_bin, "call", *args, "-c", str(config), env=mcpd_env, timeout=10)
    assert proc.returncode == 64 and proc.stdout == "", describe(proc)
    assert message in proc.stderr and "Usage: mcpd call <name>" in proc.stderr, describe(proc)
    assert recorded_pids(piddir) == {}, "a usage error started a backend"


@pytest.mark.parametrize("ascii_only", [False, True], ids=["utf8", "u-escapes"])
def test_call_text_round_trips_byte_exactly(mcpd_bin, write_config, piddir, mcpd_env, ascii_only):
    """Accents, CJK, an astral emoji (as UTF-8 or as a \\ud83c\\udf89 surrogate pair), quotes,
    backslashes, newline, tab, U+2028 and a NUL come back on stdout as the same UTF-8 bytes, plus
    one newline."""
    text = 'é漢字🎉\\"quote\\\\ \n line\t\u2028 sep \x00 nul / end'
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir)}})
    arguments = json.dumps({"text": text}, ensure_ascii=ascii_only)
    proc = call_bytes(mcpd_bin, "call", "alpha__echo", arguments, "-c", str(config), env=mcpd_env)
    assert proc.returncode == 0 and proc.stderr == b"", proc
    assert proc.stdout == text.encode() + b"\n", proc.stdout


# --------------------------------------------------------------------------- 2. completions


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_pass_their_shells_syntax_check(mcpd_bin, tmp_path, shell):
    """`mcpd completions SHELL` exits 0 with a script that `SHELL -n` accepts without a word."""
    script = completion_script(mcpd_bin, shell, tmp_path)
    proc = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True, env=shell_env(tmp_path), timeout=20)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), f"{shell} -n: {proc}"


def test_bash_completion_completes_subcommands_options_and_values(mcpd_bin, tmp_path):
    """bash's _mcpd: `mcpd ca` -> call; `mcpd import --from c` -> the four clients starting with c;
    `mcpd list --` -> list's long options (--refresh, --json, not --from); option values of
    --log-level and --log-format; shells after `completions`; subcommands after `help`."""
    script = completion_script(mcpd_bin, "bash", tmp_path)
    assert bash_complete(script, ["mcpd", "ca"], tmp_path) == ["call"]
    assert bash_complete(script, ["mcpd", "im"], tmp_path) == ["import"]
    assert bash_complete(script, ["mcpd", "import", "--from", "c"], tmp_path) == ["claude-desktop", "claude-code", "cursor", "cline"]
    listed = bash_complete(script, ["mcpd", "list", "--"], tmp_path)
    assert {"--refresh", "--json", "--config", "--log-level", "--log-format", "--help"} == set(listed), listed
    assert "--from" not in listed and "--output" not in listed
    assert bash_complete(script, ["mcpd", "check", "--log-level", "w"], tmp_path) == ["warning"]
    assert bash_complete(script, ["mcpd", "stdio", "--log-format", ""], tmp_path) == ["text", "json"]
    assert bash_complete(script, ["mcpd", "completions", "z"], tmp_path) == ["zsh"]
    assert set(bash_complete(script, ["mcpd", "help", "c"], tmp_path)) == {"check", "call", "completions"}
    assert "--refresh" not in bash_complete(script, ["mcpd", "stdio", "--re"], tmp_path)


def test_fish_completion_completes_subcommands_options_and_values(mcpd_bin, tmp_path):
    """fish: `complete -C "mcpd imp"` offers import; `mcpd import --from cl` offers claude-desktop,
    claude-code and cline; `mcpd list --` offers --refresh and --json and not --from."""
    script = completion_script(mcpd_bin, "fish", tmp_path)
    assert fish_complete(script, "mcpd imp", tmp_path) == ["import"]
    assert set(fish_complete(script, "mcpd import --from cl", tmp_path)) == {"claude-desktop", "claude-code", "cline"}
    listed = set(fish_complete(script, "mcpd list --", tmp_path))
    assert {"--refresh", "--json", "--config"} <= listed and "--from" not in listed, listed
    assert set(fish_complete(script, "mcpd call --log-level ", tmp_path)) == {"debug", "info", "warning", "error"}


def test_every_subcommand_and_option_of_the_help_is_in_the_completion_scripts(mcpd_bin, tmp_path):
    """Each subcommand of `mcpd --help` is offered by the bash, zsh and fish scripts; the options
    bash and fish offer for SUB are exactly the OPTIONS of `mcpd SUB --help`, and zsh's _mcpd_SUB
    names each of them."""
    subcommands = help_subcommands(mcpd_bin)
    bash = completion_script(mcpd_bin, "bash", tmp_path).read_text()
    zsh = completion_script(mcpd_bin, "zsh", tmp_path).read_text()
    fish = completion_script(mcpd_bin, "fish", tmp_path).read_text()
    first_words = re.search(r'COMP_CWORD" -eq 1 .*?compgen -W "([^"]*)"', bash, re.S)
    assert first_words, bash[:800]
    assert set(first_words.group(1).split()) == set(subcommands) | {"help", "--help", "--version"}, first_words.group(1)
    for sub in subcommands:
        assert f"'{sub}:" in zsh and re.search(rf"^\s+{sub}\) _mcpd_{sub} ;;$", zsh, re.M), f"{sub} missing from zsh"
        assert f"'__fish_use_subcommand' -a {sub} " in fish, f"{sub} missing from fish"
        options = help_options(mcpd_bin, sub)
        bash_options = {w for w in bash_case_words(bash, sub) if w.startswith("-")}
        assert bash_options == options, f"bash offers {sorted(bash_options)} for {sub}, its help has {sorted(options)}"
        assert fish_options(fish, sub) == options, f"fish offers {sorted(fish_options(fish, sub))} for {sub}: {sorted(options)}"
        body = re.search(rf"^_mcpd_{sub}\(\) {{\n(.*?)^}}", zsh, re.M | re.S)
        assert body, f"no _mcpd_{sub} in the zsh script"
        for option in options:
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", body.group(1)), f"zsh _mcpd_{sub} lacks {option}"


@pytest.mark.parametrize("args", [["tcsh"], [], ["bash", "zsh"]], ids=["tcsh", "none", "two"])
def test_completions_for_another_shell_is_a_usage_error(mcpd_bin, args):
    """`mcpd completions tcsh` (or no shell, or two) exits 64 with nothing on stdout."""
    proc = run_mcpd(mcpd_bin, "completions", *args, timeout=10)
    assert proc.returncode == 64 and proc.stdout == "", describe(proc)
    assert "Usage: mcpd completions <shell>" in proc.stderr, describe(proc)
    if args == ["tcsh"]:
        assert "bash, zsh or fish" in proc.stderr and "tcsh" in proc.stderr, describe(proc)


# --------------------------------------------------------------------------- 3. man page


def test_man_page_is_roff_groff_accepts_without_warnings(mcpd_bin, tmp_path):
    """`mcpd man` exits 0 with a page starting .TH MCPD 1; `groff -man -Tutf8 -ww -z` (every
    warning on) says nothing."""
    proc = run_mcpd(mcpd_bin, "man", timeout=10)
    assert proc.returncode == 0 and proc.stderr == "", describe(proc)
    assert proc.stdout.startswith(".TH MCPD 1 "), proc.stdout[:200]
    groff = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=proc.stdout, capture_output=True,
                           text=True, timeout=30)
    assert (groff.returncode, groff.stderr) == (0, ""), f"groff: {groff.stderr}"


def test_man_page_has_every_subcommand_and_option(mcpd_bin, tmp_path):
    """Rendered by `man -l` at 100 columns: NAME, SYNOPSIS, SUBCOMMANDS, OPTIONS and EXIT STATUS;
    an `mcpd SUB` heading for each subcommand of --help; each option spelling of every
    `mcpd SUB --help` and of `mcpd --help` under OPTIONS, each option followed by the subcommands
    that take it (as their --help says); the exit status names 64."""
    proc = run_mcpd(mcpd_bin, "man", timeout=10)
    assert proc.returncode == 0, describe(proc)
    page = render_man(proc.stdout, tmp_path)
    headings = [line for line in page.splitlines() if re.fullmatch(r"[A-Z][A-Z ]+", line)]
    for heading in ("NAME", "SYNOPSIS", "SUBCOMMANDS", "OPTIONS", "EXIT STATUS"):
        assert heading in headings, f"{heading} missing from the page: {headings}"

    def section(name: str) -> str:
        start = page.index(f"\n{name}\n")
        following = [page.find(f"\n{h}\n", start + 1) for h in headings]
        ends = [i for i in following if i > start]
        return page[start:min(ends) if ends else len(page)]

    subcommands = help_subcommands(mcpd_bin)
    for sub in subcommands:
        assert re.search(rf"^\s+mcpd\s+{sub}\b", section("SUBCOMMANDS"), re.M), f"no `mcpd {sub}` heading"

    takers: dict[str, set[str]] = {}
    for sub in subcommands:
        for option in help_options(mcpd_bin, sub):
            takers.setdefault(option, set()).add(sub)
    options_text = section("OPTIONS")
    # One paragraph per option: the tag line (indented 7), then its indented description.
    paragraphs: dict[str, str] = {}
    for block in re.split(r"\n(?= {7}-)", options_text):
        lines = block.strip().splitlines()
        if lines and lines[0].startswith("-"):
            tag = re.split(r"\s{2,}", lines[0])[0]
            body = " ".join(line.strip() for line in lines)
            for spelling in option_spellings(tag):
                paragraphs[spelling] = body
    for option in sorted(set(takers) | help_options(mcpd_bin, None)):
        assert option in paragraphs, f"{option} is not an entry of OPTIONS:\n{options_text}"
    for option, subs in takers.items():
        if subs == set(subcommands):
            continue  # -h/--help: every subcommand
        named = re.findall(r"\(([a-z, ]+)\)$", paragraphs[option])
        assert named and set(re.split(r",\s+", named[-1])) == subs, f"{option} is taken by {sorted(subs)}: {paragraphs[option]}"
    for spelling in ("--config", "--log-format", "--refresh", "--from", "--output"):
        assert spelling in options_text, spelling
    assert "64" in section("EXIT STATUS"), section("EXIT STATUS")


# --------------------------------------------------------------------------- 4. make install-files


def make_install_files(*assignments: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-C", str(REPO_ROOT), "--no-print-directory", "install-files", *assignments],
                          capture_output=True, text=True, timeout=60)


INSTALLED = {
    "completions bash": "share/bash-completion/completions/mcpd",
    "completions zsh": "share/zsh/site-functions/_mcpd",
    "completions fish": "share/fish/vendor_completions.d/mcpd.fish",
    "man": "share/man/man1/mcpd.1",
}


def test_make_install_files_installs_the_binary_completions_and_man_page(mcpd_bin, tmp_path):
    """PREFIX=tmp: bin/mcpd (mode 755, the same bytes as BIN) and the bash, zsh and fish scripts and
    mcpd.1, each non-empty and what the binary prints; the installed mcpd runs `version`. With
    DESTDIR=stage PREFIX=/usr the same files land under stage/usr."""
    prefix = tmp_path / "prefix"
    proc = make_install_files(f"BIN={mcpd_bin}", f"PREFIX={prefix}")
    assert proc.returncode == 0, f"make install-files: {proc}"
    binary = prefix / "bin" / "mcpd"
    assert stat.S_IMODE(binary.stat().st_mode) == 0o755, oct(binary.stat().st_mode)
    assert binary.read_bytes() == Path(mcpd_bin).read_bytes()
    for command, relative in INSTALLED.items():
        installed = prefix / relative
        assert installed.is_file() and installed.stat().st_size > 0, f"{installed} missing or empty"
        assert installed.read_text() == run_mcpd(mcpd_bin, *command.split(), timeout=10).stdout, f"{relative} differs"
    version = run_mcpd(str(binary), "version", timeout=10)
    assert version.returncode == 0 and re.match(r"mcpd \d+\.\d+\.\d+\n", version.stdout), describe(version)

    stage = tmp_path / "stage"
    proc = make_install_files(f"BIN={mcpd_bin}", "PREFIX=/usr", f"DESTDIR={stage}")
    assert proc.returncode == 0, f"make install-files DESTDIR: {proc}"
    for relative in ["bin/mcpd", *INSTALLED.values()]:
        assert (stage / "usr" / relative).stat().st_size > 0, relative


def test_make_install_files_without_a_binary_fails_naming_bin(tmp_path):
    """BIN=/nonexistent: make fails, the message names BIN=/nonexistent, nothing is installed."""
    prefix = tmp_path / "prefix"
    proc = make_install_files("BIN=/nonexistent", f"PREFIX={prefix}")
    assert proc.returncode != 0, f"make install-files: {proc}"
    assert "BIN=/nonexistent" in proc.stderr, f"make install-files: {proc}"
    assert not prefix.exists(), sorted(str(p) for p in prefix.rglob("*"))


# --------------------------------------------------------------------------- 5. version


def test_version_names_the_commit_and_the_libraries_it_was_built_with(mcpd_bin):
    """`commit: HASH[-dirty] (DATE)` with HASH a commit of this repository and DATE its commit
    date, or `commit: unknown (unknown)`; libuv and libyaml match pkg-config's versions."""
    proc = run_mcpd(mcpd_bin, "version", timeout=10)
    assert proc.returncode == 0 and proc.stderr == "", describe(proc)
    match = re.search(r"^commit: (\S+) \((\S+)\)$", proc.stdout, re.M)
    assert match, describe(proc)
    commit, date = match.groups()
    if commit == "unknown":
        assert date == "unknown", describe(proc)
    else:
        shape = re.fullmatch(r"([0-9a-f]{7,40})(-dirty)?", commit)
        assert shape, f"the commit is neither a git hash prefix (with -dirty) nor unknown:\n{describe(proc)}"
        git = lambda *a: subprocess.run(["git", "-C", str(REPO_ROOT), *a], capture_output=True, text=True,  # noqa: E731
                                        check=True, timeout=10).stdout.strip()
        # A commit of this repository (HEAD when built by `make build` from a fresh clone; an
        # earlier one when the binary predates the last commit), with its own date.
        found = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--verify", "--quiet", f"{shape.group(1)}^{{commit}}"],
                               capture_output=True, text=True, timeout=10)
        assert found.returncode == 0, f"mcpd says commit {commit}, which is not a commit of {REPO_ROOT}\n{describe(proc)}"
        assert date == git("log", "-1", "--format=%cs", found.stdout.strip()), describe(proc)
    for name, package in (("libuv", "libuv"), ("libyaml", "yaml-0.1")):
        expected = subprocess.run(["pkg-config", "--modversion", package], capture_output=True, text=True,
                                  check=True, timeout=10).stdout.strip()
        assert f"\n{name}: {expected}\n" in "\n" + proc.stdout, f"{name} {expected} (pkg-config)\n{describe(proc)}"


# --------------------------------------------------------------------------- 6. parser errors


@pytest.mark.parametrize(
    "args, message",
    [
        (["list", "--from", "x"], "'--from' is not an option of 'mcpd list'"),
        (["stdio", "--refersh"], "unknown option '--refersh'"),
        (["lst"], "unknown subcommand 'lst'; did you mean 'list'?"),
        (["check", "--json=1"], "'--json' takes no value"),
        (["call", "a", "b", "c"], "unexpected argument 'c'"),
        (["check", "--", "--weird"], "unexpected argument '--weird'"),
        (["version", "extra"], "unexpected argument 'extra'"),
        (["import", "--output"], "missing value for '--output'"),
    ],
)
def test_parser_errors_exit_64_with_the_message_and_the_usage(mcpd_bin, args, message):
    """Each mistake exits 64 with `Error: <message>` and the subcommand's usage on stderr, stdout empty."""
    proc = run_mcpd(mcpd_bin, *args, timeout=10)
    assert proc.returncode == 64 and proc.stdout == "", describe(proc)
    assert message in proc.stderr and "Usage: mcpd " in proc.stderr, describe(proc)
    if args[0] in ("list", "stdio", "check", "call", "version", "import"):
        assert f"see 'mcpd {args[0]} --help'" in proc.stderr, describe(proc)


def test_help_call_and_call_help_are_the_same_text(mcpd_bin):
    """`mcpd help call`, `mcpd call --help` and `mcpd call -h` print the same text, with an
    ARGUMENTS section naming <name> and <arguments>, and exit 0."""
    outputs = [run_mcpd(mcpd_bin, *args, timeout=10) for args in (["help", "call"], ["call", "--help"], ["call", "-h"])]
    for proc in outputs:
        assert proc.returncode == 0 and proc.stderr == "", describe(proc)
    assert outputs[0].stdout == outputs[1].stdout == outputs[2].stdout
    arguments = help_sections(outputs[0].stdout)["ARGUMENTS"]
    assert [line.split()[0] for line in arguments] == ["<name>", "<arguments>"], arguments


# --------------------------------------------------------------------------- 7. debug request log


REQUEST_LINE = re.compile(r'request (?P<session>\S+) id (?P<id>.+?): (?P<method>\S+) "(?P<name>[^"]+)" \("(?P<tool>[^"]+)"\) '
                          r'-> backend "(?P<backend>[^"]+)": (?P<outcome>.+) in (?P<ms>\d+) ms')


def test_debug_request_lines_in_json(write_config, piddir, raw_mcpd):
    """`stdio --log-level debug --log-format json`: each stderr line is one JSON object with time
    (ISO 8601, UTC), level, source (mcpd, or the backend for its own stderr) and msg. Forwarded
    calls (echo with a string id, fail, sleep 0.3 s, beta's upper, alpha's crash) each get one
    debug line `request stdio id <raw id>: tools/call "<exposed>" ("<tool>") -> backend "<name>":
    <outcome> in <n> ms`, outcome ok for a result, isError for an error result, and failed (...)
    when the backend died; the same values are fields of the JSON object (session, id, method,
    name, backend, outcome, ms); the sleep's line says at least 300 ms. An unknown tool, answered
    by mcpd, gets none."""
    config = two_servers(write_config, piddir)
    p = raw_mcpd(config, "--log-level", "debug", "--log-format", "json")
    p.initialize()
    assert tool_call(p, "alpha__echo", {"text": "x"}, id_raw='"s-7"')["result"]["isError"] is False
    assert tool_call(p, "alpha__nope", id_raw="8")["error"]["code"] == -32602
    assert tool_call(p, "alpha__fail", id_raw="9")["result"]["isError"] is True
    assert tool_call(p, "alpha__sleep", {"seconds": 0.3}, id_raw="10")["result"]["isError"] is False
    assert tool_call(p, "beta__upper", {"text": "x"}, id_raw="11")["result"]["content"][0]["text"] == "X"
    assert "error" in tool_call(p, "alpha__crash", id_raw="12")
    stop(p)

    entries = []
    for line in p.stderr_text().splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry.get("time", "")), line
        assert entry.get("level") in {"debug", "info", "warning", "error"}, line
        assert isinstance(entry.get("msg"), str) and isinstance(entry.get("source"), str), line
        entries.append(entry)
    assert any(e["source"] == "alpha" and e["msg"] == "alpha backend ready" for e in entries), entries

    requests = [e for e in entries if e["level"] == "debug" and e["msg"].startswith("request ")]
    parsed = {}
    for entry in requests:
        match = REQUEST_LINE.fullmatch(entry["msg"])
        assert match and entry["source"] == "mcpd", entry
        assert match["id"] not in parsed, f"two lines for request {match['id']}: {requests}"
        parsed[match["id"]] = match
    assert set(parsed) == {'"s-7"', "9", "10", "11", "12"}, [e["msg"] for e in requests]
    expected = {'"s-7"': ("echo", "alpha"), "9": ("fail", "alpha"), "10": ("sleep", "alpha"),
                "11": ("upper", "beta"), "12": ("crash", "alpha")}
    for request_id, (tool, backend) in expected.items():
        match = parsed[request_id]
        assert (match["session"], match["method"], match["tool"], match["backend"]) == ("stdio", "tools/call", tool, backend), match[0]
        assert match["name"] == f"{backend}__{tool}", match[0]
        outcome = {"9": "isError"}.get(request_id, "ok")
        assert match["outcome"] == outcome if request_id != "12" else match["outcome"].startswith("failed ("), match[0]
        entry = next(e for e in requests if REQUEST_LINE.fullmatch(e["msg"])["id"] == request_id)
        fields = {key: entry.get(key) for key in ("session", "id", "method", "name", "backend", "outcome", "ms")}
        assert fields == {"session": "stdio", "id": request_id, "method": "tools/call", "name": f"{backend}__{tool}",
                          "backend": backend, "outcome": match["outcome"], "ms": int(match["ms"])}, entry
    assert 300 <= int(parsed["10"]["ms"]) < 10_000, parsed["10"][0]
    assert 'backend "alpha" closed its stdout' in parsed["12"]["outcome"], parsed["12"][0]


# --------------------------------------------------------------------------- 8. secrets


def secret_config(write_config: Callable[..., Path], piddir: Path, tmp_path: Path) -> Path:
    """alpha behind sh, which prints API_KEY (= ${TEST_SECRET_VALUE}) on its stderr; beta with the
    secret in an argument; ghost with the secret in a cwd that does not exist."""
    alpha = server_entry("alpha", piddir, env={"API_KEY": "${TEST_SECRET_VALUE}"})
    alpha["args"] = ["-c", 'echo "key=$API_KEY" >&2; exec "$0" "$1"', alpha["command"], backend_script("alpha")]
    alpha["command"] = "sh"
    beta = server_entry("beta", piddir)
    beta["args"] = [backend_script("beta"), "--token=${TEST_SECRET_VALUE}"]
    ghost = {"command": "sh", "cwd": str(tmp_path / "no-such-dir-${TEST_SECRET_VALUE}")}
    return write_config({"servers": {"alpha": alpha, "beta": beta, "ghost": ghost}})


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("level", ["debug", "info", "warning", "error"])
def test_a_secret_is_in_no_log_line(write_config, piddir, tmp_path, raw_mcpd, mcpd_env, state_home, level, log_format):
    """TEST_SECRET_VALUE in mcpd's environment, used by the config: at every level and format,
    stdio's stderr never has it: not in alpha's stderr (`key=...`, and a shouted line holding it),
    not in beta's command line, not in ghost's could-not-start error, which says `***` (also in the
    error the client gets for a ghost tool). Echoed back, it reaches stdout unchanged. Nothing under
    the state directory holds it."""
    config = secret_config(write_config, piddir, tmp_path)
    p = raw_mcpd(config, "--log-level", level, "--log-format", log_format, env=dict(mcpd_env, TEST_SECRET_VALUE=SECRET))
    p.initialize()
    assert tool_call(p, "alpha__echo", {"text": SECRET})["result"]["content"][0]["text"] == SECRET
    assert tool_call(p, "beta__echo", {"text": SECRET})["result"]["content"][0]["text"] == f"beta:{SECRET}"
    assert tool_call(p, "alpha__shout", {"line": f"shouting {SECRET}"})["result"]["content"][0]["text"] == "ok"
    message = tool_call(p, "ghost__echo", {"text": "x"})["error"]["message"]
    assert "could not start" in message and "no-such-dir-***" in message and SECRET not in message, message
    wait_stderr(p, "could not start")
    if level in ("debug", "info"):
        wait_stderr(p, "shouting ***")
        wait_stderr(p, "key=***")
        wait_stderr(p, "--token=***")
    stop(p)
    stderr = p.stderr_text()
    assert "no-such-dir-***" in stderr, stderr
    assert SECRET not in stderr, "the secret is in mcpd's log:\n" + "\n".join(x for x in stderr.splitlines() if SECRET in x)
    if log_format == "json":
        for line in stderr.splitlines():
            assert SECRET not in json.loads(line)["msg"], line
    leaked = [str(f) for f in state_home.rglob("*") if f.is_file() and SECRET.encode() in f.read_bytes()]
    assert not leaked, f"the secret is written in the state directory: {leaked}"


@pytest.mark.parametrize(
    "args, status",
    [
        (["check"], 1),
        (["check", "--json"], 1),
        (["list"], 1),
        (["list", "--json"], 1),
        (["call", "ghost__echo", '{"text":"x"}'], 1),
        (["call", "alpha__shout", json.dumps({"line": SECRET}), "--log-level", "debug"], 0),
    ],
    ids=["check", "check-json", "list", "list-json", "call-ghost", "call-shout-debug"],
)
def test_commands_do_not_print_a_secret(mcpd_bin, write_config, piddir, tmp_path, mcpd_env, args, status,
                                        assert_backends_dead):
    """check (ghost's missing cwd is an error), list (ghost cannot be listed) and call print
    `***` where the secret was, on stdout and stderr alike: in errors, in the COMMAND of list and
    in the command line and stderr of a started backend."""
    config = secret_config(write_config, piddir, tmp_path)
    proc = run_mcpd(mcpd_bin, *args, "-c", str(config), env=dict(mcpd_env, TEST_SECRET_VALUE=SECRET))
    assert proc.returncode == status, describe(proc)
    leaks = [line for line in (proc.stdout + proc.stderr).splitlines() if SECRET in line]
    assert not leaks, f"`mcpd {' '.join(args[:2])}` prints the secret:\n" + "\n".join(leaks)
    assert "***" in proc.stdout + proc.stderr, describe(proc)
    assert_backends_dead()
