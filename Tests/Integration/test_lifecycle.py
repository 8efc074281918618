"""Issue 12, the backends' life cycle across runs: the state directory, lazy start, idle stop, the
sweep of what a killed mcpd left, wrapper chains, stable uptime and PID 1.

What is covered, each against the debug binary driven with raw lines (`raw_mcpd`):

- The state directory (`gateway.state_dir`, else `$XDG_STATE_HOME/mcpd`; conftest's `state_home`
  gives each test its own): `catalog/<server>.json` is written once a backend is ready, and
  `run/<mcpd pid>.json` records the backends' states, pids and start times while mcpd runs and is
  removed when it stops cleanly.
- Lazy start from the catalog: a second run on the same state directory answers `initialize` and
  `tools/list` with no backend process; the first call to a tool starts exactly its backend and
  is served by it. Changing a server's command, arguments, environment or directory invalidates
  its entry (other keys do not). A backend that lists differently from its entry brings
  `notifications/tools/list_changed` and a rewritten entry. `lazy: false` servers start at launch
  anyway and are never stopped for being idle.
- `gateway.startup_wait` bounds how long the first `initialize` waits for backends without an
  entry; late ones arrive with `list_changed`.
- Idle stop (`idle_timeout` per server, in `gateway:` or at the top level; 0 = never): an idle
  lazy backend is stopped, its tools stay listed, and the next call starts a new process.
- The sweep: after mcpd is SIGKILLed, the backend leaders die with it (PR_SET_PDEATHSIG) but
  their descendants in the same process group survive; the next mcpd on the same state directory
  kills them before it starts anything and removes the stale run record. A running mcpd's
  backends are left alone.
- A wrapper chain (`sh -c 'sleep 300 & exec python alpha.py'`) leaves nothing behind on
  shutdown, idle stop, or a crash and restart.
- Stable uptime resets the crash count (restart_limit 3, restart_window 2 s).
- Reaping: an orphan that exits (hostile's double-fork mode) is reaped by mcpd as a subreaper and
  as PID 1 of a PID namespace (`unshare --pid --fork --mount-proc`), where SIGTERM drains and
  exits 0.

Every test ends within about 15 s and kills whatever it started, even when it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mcpd_helpers import (
    ALPHA_TOOLS,
    backend_script,
    BACKENDS,
    BETA_TOOLS,
    _cmdline,
    hostile,
    LineProcess,
    pid_is_alive,
    recorded_pids,
    server_entry,
    wait_for_pidfiles,
)

HOSTILE_TOOLS = {"echo", "big", "argv", "flood_stderr", "flood_pings", "close_stdin", "close_stdout", "garbage", "crash", "pid"}
CATALOG_KEYS = {"format", "key", "savedAt", "era", "protocolVersion", "capabilities", "serverInfo", "tools", "prompts",
                "resources", "resourceTemplates"}


# --------------------------------------------------------------------------- helpers


def wrapped_alpha(piddir: Path, **extra: Any) -> dict[str, Any]:
    """alpha behind `sh -c 'sleep 300 & ...; exec python alpha.py'`: the sleep (recorded as
    `wrapsleep-<pid>.pid`) is alpha's child, in its process group, holding its stdout and stderr."""
    script = (f'sleep 300 & echo $! > "{piddir}/wrapsleep-$!.pid"; '
              f'exec "{sys.executable}" "{backend_script("alpha")}"')
    entry: dict[str, Any] = {"command": "/bin/sh", "args": ["-c", script], "env": {"MCPD_TEST_PIDDIR": str(piddir)}}
    entry.update(extra)
    return entry


def wait_until(predicate: Callable[[], Any], timeout: float, what: str | Callable[[], str], interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"after {timeout} s: {what() if callable(what) else what}")
        time.sleep(interval)


def proc_stat(pid: int) -> dict[str, Any] | None:
    """state, ppid, pgrp, session and starttime of /proc/<pid>/stat; None when there is none."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return {"state": fields[0], "ppid": int(fields[1]), "pgrp": int(fields[2]), "session": int(fields[3]),
            "starttime": int(fields[19])}


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children_of(pid: int) -> set[int]:
    """The live (not zombie) processes whose parent is `pid`."""
    out = set()
    for child in all_pids():
        stat = proc_stat(child)
        if stat and stat["ppid"] == pid and stat["state"] != "Z":
            out.add(child)
    return out


def pid_exists(pid: int) -> bool:
    """True while /proc/<pid> exists: alive, or a zombie nobody reaped yet."""
    return os.path.exists(f"/proc/{pid}")


def pids_named(piddir: Path, name: str) -> set[int]:
    return {pid for pid, backend in recorded_pids(piddir).items() if backend == name}


def kill_if(pid: int, needle: str) -> None:
    """SIGKILL `pid` if it is alive and its command line contains `needle` (never a stranger)."""
    if pid_is_alive(pid) and needle in _cmdline(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.fixture(autouse=True)
def no_stray_sleeps(piddir: Path):
    """The wrapper's `sleep 300` is not under BACKENDS, so piddir's clean-up would miss it."""
    yield
    for pid, name in recorded_pids(piddir).items():
        if name == "wrapsleep":
            kill_if(pid, "sleep")


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def catalog_path(state: Path, server: str) -> Path:
    return state / "catalog" / f"{server}.json"


def run_record_path(state: Path, mcpd_pid: int) -> Path:
    return state / "run" / f"{mcpd_pid}.json"


def backend_entry(record: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    if not record:
        return None
    found = [b for b in record.get("backends", []) if b.get("name") == name and not b.get("statelessTwin")]
    return found[0] if found else None


def wait_record(state: Path, mcpd_pid: int, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = 3.0) -> dict[str, Any]:
    path = run_record_path(state, mcpd_pid)
    return wait_until(lambda: (r := read_json(path)) is not None and check(r) and r, timeout,
                      lambda: f"run record {path} never showed {what}; last: {read_json(path)}")


def wait_log(p: LineProcess, needle: str, timeout: float, count: int = 1) -> float:
    """Waits until mcpd's stderr holds `needle` (`count` times); returns when it was seen."""
    wait_until(lambda: p.stderr_text().count(needle) >= count, timeout,
               lambda: f"mcpd did not log {needle!r}; stderr:\n{p.stderr_text()[-3000:]}", interval=0.02)
    return time.monotonic()


def request(p: LineProcess, method: str, params: Any = None, *, timeout: float = 10.0,
            notes: list[dict[str, Any]] | None = None) -> tuple[str, dict[str, Any]]:
    """A request; notifications that arrive before its answer go to `notes`."""
    ident = p.new_id()
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": ident, "method": method}
    if params is not None:
        message["params"] = params
    p.send(message)
    line, msg = p.recv_response(timeout, on_notification=(lambda _l, m: notes.append(m)) if notes is not None else None)
    assert msg.get("id") == ident, f"expected the answer to {ident}, got {line}"
    return line, msg


def call(p: LineProcess, tool: str, arguments: dict[str, Any] | None = None, *, timeout: float = 10.0,
         notes: list[dict[str, Any]] | None = None) -> tuple[str, dict[str, Any]]:
    return request(p, "tools/call", {"name": tool, "arguments": arguments or {}}, timeout=timeout, notes=notes)


def text_of(line: str, msg: dict[str, Any]) -> str:
    assert "result" in msg, f"expected a result, got {line}"
    return msg["result"]["content"][0]["text"]


def tool_names(p: LineProcess, notes: list[dict[str, Any]] | None = None) -> set[str]:
    line, msg = request(p, "tools/list", notes=notes)
    assert "result" in msg, line
    assert "nextCursor" not in msg["result"], line
    return {tool["name"] for tool in msg["result"]["tools"]}


def exposed(server: str, tools: set[str]) -> set[str]:
    return {f"{server}__{tool}" for tool in tools}


def first_run(raw_mcpd, config: Path, state: Path, servers: list[str], piddir: Path) -> set[str]:
    """A run on an empty state directory: every server starts, and its catalog entry is written.
    Returns the tools listed; mcpd exits 0 and its backends are gone."""
    p = raw_mcpd(config)
    p.initialize(timeout=15)
    names = tool_names(p)
    assert "0 listed from the catalog" in p.stderr_text(), p.stderr_text()
    for server in servers:
        wait_until(lambda: read_json(catalog_path(state, server)) is not None, 5,
                   lambda: f"no catalog entry for {server} in {state}: {sorted(map(str, state.rglob('*')))}")
    backends = set(recorded_pids(piddir))
    p.close_stdin()
    assert p.wait(10) == 0, p.stderr_text()[-3000:]
    wait_until(lambda: not any(pid_is_alive(pid) for pid in backends), 5, "the first run's backends did not stop")
    return names


def mcpd_child_pid(unshare_pid: int, timeout: float = 5.0) -> int:
    def child() -> int | None:
        kids = children_of(unshare_pid)
        return next(iter(kids)) if len(kids) == 1 else None

    return wait_until(child, timeout, f"unshare (pid {unshare_pid}) did not fork mcpd")


def ns_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def namespace_members(ns: str) -> dict[int, str]:
    """host pid -> state letter of every process in the PID namespace `ns` (zombies included)."""
    out = {}
    for pid in all_pids():
        if ns_of(pid) == ns:
            stat = proc_stat(pid)
            if stat:
                out[pid] = stat["state"]
    return out


def nspids(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except OSError:
        pass
    return []


# --------------------------------------------------------------------------- 1. lazy start, idle stop


def test_second_start_lists_from_the_catalog_then_one_call_starts_one_backend_and_idle_stops_it(
    piddir, raw_mcpd, write_config, state_home
):
    """First run: alpha and beta start and their catalog entries are written (every documented
    field, no temporary file left). Second run: initialize and tools/list are answered with the
    same 16 tools and no backend process at all; a call to alpha__echo starts alpha alone and is
    served by it (no list_changed: it lists what the catalog said); after alpha's idle_timeout
    (2 s) it is stopped, its tools stay listed, and the next call starts a new alpha process."""
    config = write_config({"servers": {
        "alpha": server_entry("alpha", piddir, idle_timeout="2s"),
        "beta": server_entry("beta", piddir),
    }})
    state = state_home / "mcpd"
    first = first_run(raw_mcpd, config, state, ["alpha", "beta"], piddir)
    assert first == exposed("alpha", ALPHA_TOOLS) | exposed("beta", BETA_TOOLS)
    for server, tools in (("alpha", ALPHA_TOOLS), ("beta", BETA_TOOLS)):
        entry = read_json(catalog_path(state, server))
        assert entry is not None and CATALOG_KEYS <= set(entry), f"catalog/{server}.json: {entry}"
        assert {t["name"] for t in entry["tools"]} == tools, entry["tools"]
        assert entry["serverInfo"].get("name") == server, entry["serverInfo"]
    assert not [f for f in (state / "catalog").iterdir() if not f.name.endswith(".json")], list((state / "catalog").iterdir())
    before = set(recorded_pids(piddir))

    p = raw_mcpd(config)
    p.initialize()
    notes: list[dict[str, Any]] = []
    assert tool_names(p, notes) == first, "the second run must list every tool from the catalog"
    assert children_of(p.proc.pid) == set(), f"backends started with a catalog entry for each: {children_of(p.proc.pid)}"
    assert "2 listed from the catalog, 0 starting now" in p.stderr_text(), p.stderr_text()
    time.sleep(0.5)
    assert children_of(p.proc.pid) == set() and set(recorded_pids(piddir)) == before, recorded_pids(piddir)

    assert text_of(*call(p, "alpha__echo", {"text": "lazy"}, notes=notes)) == "lazy"
    answered = time.monotonic()
    started = {pid: name for pid, name in recorded_pids(piddir).items() if pid not in before}
    assert list(started.values()) == ["alpha"], f"the call must start alpha and only alpha: {started}"
    alpha_pid = next(iter(started))
    assert children_of(p.proc.pid) == {alpha_pid}
    request(p, "ping", notes=notes)
    assert not [n for n in notes if n.get("method") == "notifications/tools/list_changed"], (
        f"alpha listed what its catalog entry said, yet clients were told the tools changed: {notes}"
    )

    seen = wait_log(p, 'backend "alpha" idle for 2 s; stopping it until it is needed', timeout=6)
    assert seen - answered >= 1.5, f"alpha was stopped {seen - answered:.2f} s after its last answer (idle_timeout 2 s)"
    wait_until(lambda: not pid_is_alive(alpha_pid), 5, "the idle alpha process did not exit")
    assert children_of(p.proc.pid) == set()
    assert tool_names(p) == first, "an idle-stopped backend's tools must stay listed"

    assert text_of(*call(p, "alpha__echo", {"text": "again"})) == "again"
    again = {pid: name for pid, name in recorded_pids(piddir).items() if pid not in before and pid != alpha_pid}
    assert list(again.values()) == ["alpha"], f"the call after the idle stop must start one new alpha: {again}"
    assert children_of(p.proc.pid) == set(again)
    assert "beta" not in set(started.values()) | set(again.values())
    p.close_stdin()
    assert p.wait(10) == 0


# --------------------------------------------------------------------------- 2. launch settings


def _change_env(entry: dict[str, Any], tmp_path: Path) -> None:
    entry["env"]["FLAVOUR"] = "changed"


def _change_args(entry: dict[str, Any], tmp_path: Path) -> None:
    entry["args"].append("--changed")


def _change_cwd(entry: dict[str, Any], tmp_path: Path) -> None:
    entry["cwd"] = str(tmp_path)


def _change_command(entry: dict[str, Any], tmp_path: Path) -> None:
    link = tmp_path / "python-link"
    link.symlink_to(sys.executable)  # hostile needs only the standard library
    entry["command"] = str(link)


def _change_nothing_that_launches(entry: dict[str, Any], tmp_path: Path) -> None:
    entry["timeout"] = "7s"
    entry["description"] = "same program, other settings"
    entry["idle_timeout"] = "9m"


@pytest.mark.parametrize(
    "change, invalidates",
    [(_change_env, True), (_change_args, True), (_change_cwd, True), (_change_command, True),
     (_change_nothing_that_launches, False)],
    ids=["env", "args", "cwd", "command", "timeout-description-idle_timeout"],
)
def test_changed_launch_settings_invalidate_the_catalog_entry(piddir, raw_mcpd, write_config, state_home, tmp_path,
                                                             change, invalidates):
    """Two hostile servers; between the runs one of them changes. A change of its command,
    arguments, environment or directory makes mcpd start it at launch (logged as "launch
    settings changed") and rewrite its entry under a new key, while the other stays listed from
    its entry with no process; other keys (timeout, description, idle_timeout) change nothing."""
    servers = {"h": hostile(piddir), "keep": hostile(piddir)}
    config = write_config({"servers": servers})
    state = state_home / "mcpd"
    first = first_run(raw_mcpd, config, state, ["h", "keep"], piddir)
    old_keys = {s: read_json(catalog_path(state, s))["key"] for s in ("h", "keep")}

    change(servers["h"], tmp_path)
    config = write_config({"servers": servers})
    p = raw_mcpd(config)
    p.initialize()
    err = p.stderr_text()
    kids = children_of(p.proc.pid)
    if invalidates:
        assert "launch settings changed" in err and '"h"' in err, err
        assert "1 listed from the catalog, 1 starting now" in err, err
        assert len(kids) == 1, f"h must be started at launch (and keep not): children {kids}"
        assert int(text_of(*call(p, "h__pid"))) == next(iter(kids))
        if change is _change_args:
            assert "--changed" in json.loads(text_of(*call(p, "h__argv")))
        wait_until(lambda: (read_json(catalog_path(state, "h")) or {}).get("key") not in (None, old_keys["h"]), 3,
                   lambda: f"h's entry was not rewritten under a new key: {read_json(catalog_path(state, 'h'))}")
    else:
        assert "launch settings changed" not in err, err
        assert "2 listed from the catalog, 0 starting now" in err, err
        assert kids == set(), f"nothing that decides how h is launched changed, yet it was started: {kids}"
    assert tool_names(p) == first
    assert children_of(p.proc.pid) == kids, "keep must not start"
    assert read_json(catalog_path(state, "keep"))["key"] == old_keys["keep"]
    p.close_stdin()
    assert p.wait(10) == 0


# --------------------------------------------------------------------------- 3. listing differs


def test_backend_that_lists_differently_from_its_entry_brings_list_changed_and_a_new_entry(
    piddir, raw_mcpd, write_config, state_home
):
    """The entry is edited between runs: `echo` removed, `ghost` added. The second run lists
    hostile__ghost and not hostile__echo (so it serves the entry); a call starts hostile, whose
    real list differs: the client gets notifications/tools/list_changed, tools/list then shows
    echo and not ghost, and catalog/hostile.json is rewritten with the real list."""
    config = write_config({"servers": {"hostile": hostile(piddir)}})
    state = state_home / "mcpd"
    first = first_run(raw_mcpd, config, state, ["hostile"], piddir)
    assert first == exposed("hostile", HOSTILE_TOOLS)
    path = catalog_path(state, "hostile")
    entry = read_json(path)
    entry["tools"] = [t for t in entry["tools"] if t["name"] != "echo"] + [
        {"name": "ghost", "description": "Only in the edited catalog.", "inputSchema": {"type": "object"}}
    ]
    edited_saved = entry["savedAt"] - 1000
    entry["savedAt"] = edited_saved
    path.write_text(json.dumps(entry))

    p = raw_mcpd(config)
    p.initialize()
    notes: list[dict[str, Any]] = []
    names = tool_names(p, notes)
    assert "hostile__ghost" in names and "hostile__echo" not in names, f"the second run must list the entry: {sorted(names)}"
    assert children_of(p.proc.pid) == set()

    pid = int(text_of(*call(p, "hostile__pid", notes=notes)))
    assert children_of(p.proc.pid) == {pid}
    if not any(n.get("method") == "notifications/tools/list_changed" for n in notes):
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not any(n.get("method") == "notifications/tools/list_changed" for n in notes):
            request(p, "ping", notes=notes)
            time.sleep(0.1)
    assert any(n.get("method") == "notifications/tools/list_changed" for n in notes), (
        f"hostile listed differently from its entry but no tools/list_changed came: {notes}"
    )
    assert tool_names(p) == first, "after the backend started, tools/list must be what it listed"

    def rewritten() -> bool:
        now = read_json(path)
        return bool(now) and {t["name"] for t in now["tools"]} == HOSTILE_TOOLS and now["savedAt"] > edited_saved

    wait_until(rewritten, 3, lambda: f"catalog/hostile.json was not rewritten with the real list: {read_json(path)}")
    p.close_stdin()
    assert p.wait(10) == 0


# --------------------------------------------------------------------------- 4. lazy: false


def test_lazy_false_starts_at_launch_despite_its_entry_and_is_never_idle_stopped(piddir, raw_mcpd, write_config, state_home):
    """gateway.idle_timeout 1s; `eager` is lazy: false, `lazy` is not; both have catalog entries.
    The second run starts eager at launch (not lazy); a call starts lazy, which is stopped once
    idle for 1 s, while eager, idle for longer, keeps its process."""
    config = write_config({"gateway": {"idle_timeout": "1s"},
                           "servers": {"eager": hostile(piddir, lazy=False), "lazy": hostile(piddir)}})
    state = state_home / "mcpd"
    first_run(raw_mcpd, config, state, ["eager", "lazy"], piddir)

    p = raw_mcpd(config)
    p.initialize()
    assert "2 listed from the catalog, 1 starting now" in p.stderr_text(), p.stderr_text()
    kids = wait_until(lambda: children_of(p.proc.pid), 3, "eager (lazy: false) was not started at launch")
    assert len(kids) == 1, kids
    eager_pid = int(text_of(*call(p, "eager__pid")))
    assert kids == {eager_pid}
    lazy_pid = int(text_of(*call(p, "lazy__pid")))
    assert children_of(p.proc.pid) == {eager_pid, lazy_pid}

    wait_log(p, 'backend "lazy" idle for 1 s; stopping it until it is needed', timeout=4)
    wait_until(lambda: not pid_is_alive(lazy_pid), 4, "the idle lazy backend did not exit")
    time.sleep(1.5)  # eager has now been idle for more than twice its idle_timeout
    assert 'backend "eager" idle' not in p.stderr_text(), p.stderr_text()
    assert pid_is_alive(eager_pid), "a lazy: false backend was stopped"
    assert int(text_of(*call(p, "eager__pid"))) == eager_pid
    p.close_stdin()
    assert p.wait(10) == 0


# --------------------------------------------------------------------------- 5. startup_wait


def test_startup_wait_bounds_the_first_initialize_and_late_backends_bring_list_changed(piddir, raw_mcpd, write_config):
    """No catalog; `slow` answers initialize after 3 s, `fast` at once; gateway.startup_wait 1s.
    initialize is answered after about 1 s with fast's tools only (a warning names slow); slow's
    tools arrive with notifications/tools/list_changed about 3 s after start, and then serve."""
    config = write_config({"gateway": {"startup_wait": "1s"},
                           "servers": {"slow": hostile(piddir, "slow-init", "3"), "fast": hostile(piddir)}})
    p = raw_mcpd(config)
    started = time.monotonic()
    p.initialize(timeout=10)
    waited = time.monotonic() - started
    assert 0.7 <= waited <= 2.2, f"initialize was answered after {waited:.2f} s; startup_wait is 1 s, slow needs 3 s"
    notes: list[dict[str, Any]] = []
    names = tool_names(p, notes)
    assert exposed("fast", HOSTILE_TOOLS) <= names and not any(n.startswith("slow__") for n in names), sorted(names)
    assert "backends still starting after 1 s: slow" in p.stderr_text(), p.stderr_text()

    deadline = started + 8
    while not any(n.get("method") == "notifications/tools/list_changed" for n in notes):
        assert time.monotonic() < deadline, f"no tools/list_changed when slow became ready; got {notes}"
        try:
            _, msg = p.recv_message(timeout=max(0.05, deadline - time.monotonic()))
        except AssertionError:
            continue
        notes.append(msg)
    arrived = time.monotonic() - started
    assert 2.0 <= arrived <= 6, f"list_changed came {arrived:.2f} s after start (slow answers initialize after 3 s)"
    assert tool_names(p) == exposed("fast", HOSTILE_TOOLS) | exposed("slow", HOSTILE_TOOLS)
    assert text_of(*call(p, "slow__echo", {"text": "late"})) == "late"
    p.close_stdin()
    assert p.wait(10) == 0


def test_without_startup_wait_the_first_initialize_waits_for_a_new_backend(piddir, raw_mcpd, write_config):
    """The control: with the default startup_wait (5 s), initialize waits for a backend that
    needs 2 s, and the first tools/list has its tools."""
    config = write_config({"servers": {"slow": hostile(piddir, "slow-init", "2"), "fast": hostile(piddir)}})
    p = raw_mcpd(config)
    started = time.monotonic()
    p.initialize(timeout=10)
    waited = time.monotonic() - started
    assert waited >= 1.8, f"initialize was answered after {waited:.2f} s, before slow (2 s) was ready"
    assert tool_names(p) == exposed("fast", HOSTILE_TOOLS) | exposed("slow", HOSTILE_TOOLS)
    p.close_stdin()
    assert p.wait(10) == 0


# --------------------------------------------------------------------------- 6. the sweep


@pytest.mark.parametrize("survivor_kind", ["spawn_child", "wrapper"])
def test_next_mcpd_kills_what_a_sigkilled_mcpd_left_before_starting_its_own(
    piddir, raw_mcpd, write_config, state_home, survivor_kind
):
    """alpha (lazy: false) gets a descendant in its process group: its spawn_child grandchild,
    or the `sleep 300` of its sh wrapper. mcpd is SIGKILLed: alpha dies with it, the descendant
    survives, the run record stays. A new mcpd on the same state directory logs "is gone but left
    backends running" before it starts its own alpha, the descendant is dead by the time it
    answers initialize, and the stale run record is gone."""
    entry = server_entry("alpha", piddir, lazy=False) if survivor_kind == "spawn_child" else wrapped_alpha(piddir, lazy=False)
    config = write_config({"servers": {"alpha": entry}})
    state = state_home / "mcpd"
    survivor = 0
    try:
        p1 = raw_mcpd(config)
        p1.initialize(timeout=15)
        alpha_pid = next(iter(wait_for_pidfiles(piddir, ["alpha"]).keys() & pids_named(piddir, "alpha")))
        if survivor_kind == "spawn_child":
            survivor = int(text_of(*call(p1, "alpha__spawn_child")))
        else:
            survivor = next(iter(wait_for_pidfiles(piddir, ["wrapsleep"]).keys() & pids_named(piddir, "wrapsleep")))
        assert proc_stat(survivor)["pgrp"] == alpha_pid, f"{survivor} is not in alpha's process group"
        wait_record(state, p1.proc.pid,
                    lambda r: (b := backend_entry(r, "alpha")) is not None and b.get("pid") == alpha_pid and "startTime" in b,
                    f"alpha with pid {alpha_pid} and its start time")
        old_record = run_record_path(state, p1.proc.pid)

        os.kill(p1.proc.pid, signal.SIGKILL)
        p1.proc.wait(5)
        wait_until(lambda: not pid_is_alive(alpha_pid), 3, "alpha did not die with mcpd (PR_SET_PDEATHSIG)")
        time.sleep(0.3)
        assert pid_is_alive(survivor), f"precondition: the {survivor_kind} descendant {survivor} should outlive mcpd"
        assert old_record.exists(), "a SIGKILLed mcpd cannot remove its run record"

        p2 = raw_mcpd(config)
        p2.initialize(timeout=15)
        assert not pid_is_alive(survivor), (
            f"the new mcpd answered initialize while {survivor} ({_cmdline(survivor)}), left by the killed mcpd, still runs"
        )
        err = p2.stderr_text()
        warning = f"mcpd pid {p1.proc.pid} ({config}) is gone but left backends running"
        assert warning in err and str(alpha_pid) in err, err
        started = 'backend "alpha" started'
        assert started in err and err.index(warning) < err.index(started), (
            f"the sweep must come before the new mcpd starts its backends:\n{err}"
        )
        assert not old_record.exists(), f"the stale run record {old_record} was not removed"
        wait_until(lambda: run_record_path(state, p2.proc.pid).exists(), 3, "the new mcpd wrote no run record")
        p2.close_stdin()
        assert p2.wait(10) == 0
    finally:
        if survivor:
            kill_if(survivor, "sleep" if survivor_kind == "wrapper" else str(BACKENDS))


def test_a_running_mcpds_backends_are_left_alone(piddir, raw_mcpd, write_config, state_home):
    """Two mcpd on one state directory: the second finds the first's run record, sees it is
    alive, and touches neither its backend nor its record."""
    config = write_config({"servers": {"h": hostile(piddir, lazy=False)}})
    state = state_home / "mcpd"
    p1 = raw_mcpd(config)
    p1.initialize()
    h1 = int(text_of(*call(p1, "h__pid")))
    wait_record(state, p1.proc.pid, lambda r: (backend_entry(r, "h") or {}).get("pid") == h1, "h's pid")
    p2 = raw_mcpd(config)
    p2.initialize()
    h2 = int(text_of(*call(p2, "h__pid")))
    time.sleep(0.3)
    assert h2 != h1 and pid_is_alive(h1), "the second mcpd killed the first one's backend"
    assert "left backends running" not in p2.stderr_text(), p2.stderr_text()
    assert run_record_path(state, p1.proc.pid).exists()
    assert int(text_of(*call(p1, "h__pid"))) == h1
    for p in (p2, p1):
        p.close_stdin()
        assert p.wait(10) == 0


# --------------------------------------------------------------------------- 7. wrapper chains


@pytest.mark.parametrize("how", ["shutdown", "idle-stop", "crash-restart"])
def test_wrapper_chain_leaves_no_survivor(piddir, raw_mcpd, write_config, how):
    """alpha behind `sh -c 'sleep 300 & exec python alpha.py'` (the sleep stays in alpha's group
    and holds its stdout): when mcpd stops it (client closes stdin), stops it for being idle
    (idle_timeout 1s), or restarts it after alpha's `crash` tool, the sleep goes with it."""
    extra = {"idle_timeout": "1s"} if how == "idle-stop" else {"timeout": "10s"}
    config = write_config({"gateway": {"stop_grace": "1s"}, "servers": {"alpha": wrapped_alpha(piddir, **extra)}})
    p = raw_mcpd(config)
    p.initialize(timeout=15)
    wait_for_pidfiles(piddir, ["alpha", "wrapsleep"])
    alpha_pid = next(iter(pids_named(piddir, "alpha")))
    sleep_pid = next(iter(pids_named(piddir, "wrapsleep")))
    assert "sleep" in _cmdline(sleep_pid) and proc_stat(sleep_pid)["pgrp"] == alpha_pid

    if how == "shutdown":
        p.close_stdin()
        assert p.wait(10) == 0, p.stderr_text()[-3000:]
        wait_until(lambda: not pid_is_alive(alpha_pid) and not pid_is_alive(sleep_pid), 2,
                   lambda: f"after mcpd exited: alpha alive={pid_is_alive(alpha_pid)}, "
                           f"sleep {sleep_pid} alive={pid_is_alive(sleep_pid)}; stderr:\n{p.stderr_text()[-2000:]}")
        return

    if how == "idle-stop":
        wait_log(p, 'backend "alpha" idle for 1 s; stopping it until it is needed', timeout=5)
        wait_log(p, 'backend "alpha" stopped', timeout=5)
    else:
        line, msg = call(p, "alpha__crash", timeout=8)
        assert "error" in msg, line
        wait_log(p, 'backend "alpha" exited with', timeout=5)
    wait_until(lambda: not pid_is_alive(alpha_pid) and not pid_is_alive(sleep_pid), 2,
               lambda: f"after the {how}: alpha {alpha_pid} alive={pid_is_alive(alpha_pid)}, the wrapper's sleep "
                       f"{sleep_pid} alive={pid_is_alive(sleep_pid)} (parent {(proc_stat(sleep_pid) or {}).get('ppid')}, "
                       f"mcpd {p.proc.pid}); stderr:\n{p.stderr_text()[-2000:]}")

    assert text_of(*call(p, "alpha__echo", {"text": "back"}, timeout=10)) == "back"
    new_alpha = pids_named(piddir, "alpha") - {alpha_pid}
    new_sleep = pids_named(piddir, "wrapsleep") - {sleep_pid}
    assert len(new_alpha) == 1 and len(new_sleep) == 1, recorded_pids(piddir)
    p.close_stdin()
    assert p.wait(10) == 0
    wait_until(lambda: not any(pid_is_alive(x) for x in new_alpha | new_sleep), 2,
               lambda: f"left after shutdown: {[x for x in new_alpha | new_sleep if pid_is_alive(x)]}")


# --------------------------------------------------------------------------- 8. stable uptime


def test_stable_uptime_resets_the_crash_count(piddir, raw_mcpd, write_config):
    """restart_limit 3 in a 2 s window. Two crashes, then the third process stays up for more
    than 2 s, then two more crashes: four exits in all, never three within a stable stretch, so
    the circuit stays closed and a call is served by a fifth process. (In this gateway's design
    an uptime longer than the window also puts the earlier exits outside the window.)"""
    config = write_config({"gateway": {"restart_limit": 3, "restart_window": "2s"},
                           "servers": {"hostile": hostile(piddir, timeout="10s")}})
    p = raw_mcpd(config)
    p.initialize()

    def crash(k: int) -> None:
        line, msg = call(p, "hostile__crash", timeout=8)
        assert "error" in msg and "hostile" in msg["error"]["message"], line
        wait_log(p, 'backend "hostile" exited with', timeout=5, count=k)

    crash(1)
    crash(2)
    third = int(text_of(*call(p, "hostile__pid", timeout=8)))
    assert len(pids_named(piddir, "hostile")) == 3
    time.sleep(2.4)  # the third process has now been up for longer than the window
    assert pid_is_alive(third)
    crash(3)
    crash(4)
    line, msg = call(p, "hostile__pid", timeout=8)
    assert "result" in msg, f"after a stable run, two more crashes must not open the circuit (limit 3): {line}"
    fifth = int(text_of(line, msg))
    assert len(pids_named(piddir, "hostile")) == 5 and fifth not in (third,), recorded_pids(piddir)
    assert "tries again in" not in p.stderr_text(), p.stderr_text()
    p.close_stdin()
    assert p.wait(10) == 0


# --------------------------------------------------------------------------- 9. reaping, PID 1


def test_an_orphan_that_exits_is_reaped_by_mcpd_as_subreaper(piddir, raw_mcpd, write_config):
    """hostile's double-fork orphan (sleeps 1 s, then exits) is re-parented to mcpd, which must
    reap it: no zombie is left."""
    config = write_config({"servers": {"orphans": hostile(piddir, "double-fork", "1")}})
    p = raw_mcpd(config)
    p.initialize()
    orphan = next(iter(wait_for_pidfiles(piddir, ["hostileorphan"]).keys() & pids_named(piddir, "hostileorphan")))
    stat = proc_stat(orphan)
    if stat is not None and stat["state"] != "Z":
        assert stat["ppid"] == p.proc.pid, f"the orphan's parent is {stat['ppid']}, not mcpd {p.proc.pid} (a subreaper)"
    wait_until(lambda: not pid_exists(orphan), 3,
               lambda: f"the orphan {orphan} was not reaped: {proc_stat(orphan)}; stderr:\n{p.stderr_text()[-2000:]}")
    p.close_stdin()
    assert p.wait(10) == 0


def test_as_pid_1_mcpd_reaps_orphans_and_sigterm_drains_and_exits_zero(mcpd_bin, write_config, tmp_path, mcpd_env, state_home):
    """`unshare --pid --fork --mount-proc mcpd stdio`: mcpd is PID 1 of a new PID namespace.
    hostile's double-fork orphan exits after 0.5 s, and alpha spawns a grandchild then crashes:
    a second later no process of the namespace is a zombie. SIGTERM to mcpd drains, stops the
    backends and exits 0 (so does unshare), and its run record is removed."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed")
    nsdir = tmp_path / "nspids"  # pids recorded inside the namespace are not host pids
    nsdir.mkdir()
    config = write_config({"servers": {"orphans": hostile(nsdir, "double-fork"), "alpha": server_entry("alpha", nsdir, timeout="10s")}})
    state = state_home / "mcpd"
    p = LineProcess(["unshare", "--pid", "--fork", "--mount-proc", mcpd_bin, "stdio", "--config", str(config)],
                    stderr_path=tmp_path / "mcpd-ns.stderr", env=mcpd_env)
    host_pid = 0
    try:
        try:
            host_pid = mcpd_child_pid(p.proc.pid)
        except AssertionError:
            err = p.stderr_text()
            if p.proc.poll() is not None and ("Operation not permitted" in err or "EPERM" in err):
                pytest.skip(f"unshare cannot make a PID namespace here: {err.strip()}")
            raise
        ns = ns_of(host_pid)
        assert ns and ns != ns_of(os.getpid()), "mcpd is not in a new PID namespace"
        assert nspids(host_pid)[-1:] == [1], f"mcpd is not PID 1 of its namespace: NSpid {nspids(host_pid)}"

        p.initialize(timeout=15)
        wait_for_pidfiles(nsdir, ["hostileorphan"])
        text_of(*call(p, "alpha__spawn_child"))
        line, msg = call(p, "alpha__crash", timeout=8)
        assert "error" in msg, line
        wait_log(p, 'backend "alpha" exited with', timeout=5)
        time.sleep(1.0)
        members = namespace_members(ns)
        zombies = {pid for pid, st in members.items() if st == "Z"}
        if zombies:  # one caught between its exit and its reaping must be gone a moment later
            time.sleep(0.3)
            zombies = {pid for pid, st in namespace_members(ns).items() if st == "Z" and pid in zombies}
        assert not zombies, (
            f"zombies in mcpd's namespace a second after they exited: "
            f"{ {z: (nspids(z), _cmdline(z)) for z in zombies} }; stderr:\n{p.stderr_text()[-2000:]}"
        )
        orphan_ns_pid = next(iter(pids_named(nsdir, "hostileorphan")))
        assert not any(nspids(pid)[-1:] == [orphan_ns_pid] for pid in members), "the orphan (0.5 s) should have exited"
        assert wait_until(lambda: run_record_path(state, 1).exists(), 3, "no run record run/1.json for mcpd as PID 1")

        os.kill(host_pid, signal.SIGTERM)
        code = p.wait(10)
        assert code == 0, f"unshare exited with {code} after SIGTERM to mcpd (PID 1); stderr:\n{p.stderr_text()[-3000:]}"
        assert "shutting down" in p.stderr_text(), p.stderr_text()
        assert not namespace_members(ns), "processes left in the namespace"
        assert not run_record_path(state, 1).exists(), "the run record was not removed on a clean SIGTERM exit"
    finally:
        if p.proc.poll() is None and host_pid and pid_is_alive(host_pid):
            os.kill(host_pid, signal.SIGKILL)  # PID 1 dying takes the whole namespace with it
        p.kill()


# --------------------------------------------------------------------------- 10. top-level idle_timeout


def test_top_level_idle_timeout_is_accepted_and_acted_on(mcpd_bin, piddir, raw_mcpd, write_config):
    """`idle_timeout: 1s` at the top level (mcp-unify's spelling): `mcpd check` accepts it without
    a "does not act on it" warning; `idler` is stopped after 1 s idle and a later call starts a new
    process; `keeper` (its own idle_timeout: 0) is never stopped."""
    config = write_config({"idle_timeout": "1s",
                           "servers": {"idler": hostile(piddir), "keeper": hostile(piddir, idle_timeout=0)}})
    check = subprocess.run([mcpd_bin, "check", "--config", str(config)], capture_output=True, text=True, timeout=10)
    assert check.returncode == 0, check.stderr
    assert "does not act on" not in check.stdout + check.stderr, check.stdout + check.stderr

    p = raw_mcpd(config)
    p.initialize()
    idler = int(text_of(*call(p, "idler__pid")))
    keeper = int(text_of(*call(p, "keeper__pid")))
    answered = time.monotonic()
    seen = wait_log(p, 'backend "idler" idle for 1 s; stopping it until it is needed', timeout=4)
    assert seen - answered >= 0.7, f"idler was stopped {seen - answered:.2f} s after its last answer (idle_timeout 1 s)"
    wait_until(lambda: not pid_is_alive(idler), 4, "the idle backend did not exit")
    time.sleep(1.2)
    assert 'backend "keeper" idle' not in p.stderr_text() and pid_is_alive(keeper), "idle_timeout: 0 must mean never"
    again = int(text_of(*call(p, "idler__pid")))
    assert again != idler and pid_is_alive(again)
    assert int(text_of(*call(p, "keeper__pid"))) == keeper
    p.close_stdin()
    assert p.wait(10) == 0


# --------------------------------------------------------------------------- 11. the run record


def test_run_record_shows_states_and_pids_while_running_and_is_removed_on_exit(
    piddir, raw_mcpd, write_config, tmp_path, state_home
):
    """gateway.state_dir set explicitly (the XDG default stays unused). First run: run/<pid>.json
    names mcpd (pid, start time, absolute config path) and both backends `ready` with their pids
    and start times; once alpha is idle-stopped its entry says `idle-stopped` with no pid; the
    record is gone after a clean exit. Second run: both `cached` with no pid, until a call makes
    alpha `ready` with its new pid."""
    state = tmp_path / "explicit-state"
    config = write_config({"gateway": {"state_dir": str(state)},
                           "servers": {"alpha": server_entry("alpha", piddir, idle_timeout="1s"),
                                       "keeper": hostile(piddir, idle_timeout=0)}})
    p = raw_mcpd(config)
    p.initialize(timeout=15)
    alpha_pid = next(iter(wait_for_pidfiles(piddir, ["alpha"]).keys() & pids_named(piddir, "alpha")))
    keeper_pid = int(text_of(*call(p, "keeper__pid")))

    def both_ready(r: dict[str, Any]) -> bool:
        return all((backend_entry(r, n) or {}).get("state") == "ready" and "startTime" in (backend_entry(r, n) or {})
                   for n in ("alpha", "keeper"))

    record = wait_record(state, p.proc.pid, both_ready, "alpha and keeper ready with start times")
    assert record["pid"] == p.proc.pid and int(record["startTime"]) == proc_stat(p.proc.pid)["starttime"], record
    assert record["config"] == str(config), record
    for name, pid, tools in (("alpha", alpha_pid, ALPHA_TOOLS), ("keeper", keeper_pid, HOSTILE_TOOLS)):
        b = backend_entry(record, name)
        assert b["pid"] == pid and int(b["startTime"]) == proc_stat(pid)["starttime"], (name, b)
        assert b["tools"] == len(tools) and b["restarts"] == 0, (name, b)
    assert not (state_home / "mcpd" / "run").exists() or not list((state_home / "mcpd" / "run").iterdir()), (
        "with gateway.state_dir set, nothing may be written to the XDG default"
    )

    wait_log(p, 'backend "alpha" idle for 1 s', timeout=5)
    record = wait_record(state, p.proc.pid,
                         lambda r: (backend_entry(r, "alpha") or {}).get("state") == "idle-stopped",
                         "alpha idle-stopped")
    assert "pid" not in backend_entry(record, "alpha"), record
    assert backend_entry(record, "keeper")["state"] == "ready" and backend_entry(record, "keeper")["pid"] == keeper_pid
    p.close_stdin()
    assert p.wait(10) == 0
    assert not run_record_path(state, p.proc.pid).exists(), "the run record outlived a clean exit"
    assert list((state / "run").iterdir()) == [], list((state / "run").iterdir())

    p2 = raw_mcpd(config)
    p2.initialize()
    record = wait_record(state, p2.proc.pid, lambda r: backend_entry(r, "alpha") is not None, "alpha")
    for name in ("alpha", "keeper"):
        b = backend_entry(record, name)
        assert b["state"] == "cached" and "pid" not in b, (name, b)
    assert text_of(*call(p2, "alpha__echo", {"text": "x"})) == "x"
    new_alpha = next(iter(pids_named(piddir, "alpha") - {alpha_pid}))
    wait_record(state, p2.proc.pid,
                lambda r: (backend_entry(r, "alpha") or {}).get("state") == "ready" and backend_entry(r, "alpha").get("pid") == new_alpha,
                f"alpha ready with pid {new_alpha}")
    p2.close_stdin()
    assert p2.wait(10) == 0
    assert not run_record_path(state, p2.proc.pid).exists()
