"""mcpd as a service: systemd notifications, reload on SIGHUP (and `mcpd reload`), and `mcpd list`
while an mcpd runs on the same configuration.

systemd: with NOTIFY_SOCKET set (a path, or `@name` in the abstract namespace) mcpd sends
datagrams to that socket: `READY=1\\nSTATUS=<n> backends: ...; <m> tools` once start-up has
settled (the backends without a catalog entry are ready, or `gateway.startup_wait` passed), and
nothing before it; `STATUS=` lines about 100 ms after backends change; `RELOADING=1` with
`MONOTONIC_USEC` on SIGHUP, then `READY=1` again; `STOPPING=1` when it drains; `WATCHDOG=1` at
half of WATCHDOG_USEC unless WATCHDOG_PID names another process. Backends never see
NOTIFY_SOCKET, WATCHDOG_*, LISTEN_* (even with `inherit_env: true`).

Reload: a broken file is reported with file:line:col and the running configuration stays; a good
one starts the servers it adds, stops those it removes, restarts those whose settings changed
and leaves the others (their processes and their calls in flight) alone; clients get
`list_changed`. `mcpd reload --config FILE` validates FILE and sends SIGHUP to the mcpd running
on it (found through its run record in the state directory).

Every test drives the built binary with raw lines (`raw_mcpd`, or `spawn` for other argv), on
its own state directory (conftest's `state_home`). The first run on an empty state directory
starts every backend at launch to fill the catalog; alpha takes about 1 s to start.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import tempfile
import threading
import time
import uuid
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
    wait_for_pidfiles,
)

ALPHA_NAMES = {f"alpha__{t}" for t in ALPHA_TOOLS}
BETA_NAMES = {f"beta__{t}" for t in BETA_TOOLS}
LIST_CHANGED = "notifications/tools/list_changed"
PRIVATE_VARIABLES = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"]


# --------------------------------------------------------------------------- the notification socket


class NotifySocket:
    """A unix datagram socket standing in for systemd's: every datagram, with its arrival time."""

    def __init__(self, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._dir: str | None = None
        if abstract:
            name = f"mcpd-test-notify-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            # Not under tmp_path: sun_path holds at most 107 bytes.
            self._dir = tempfile.mkdtemp(prefix="mcpd-notify-")
            self.address = os.path.join(self._dir, "notify.sock")
            self.sock.bind(self.address)
        self.sock.settimeout(0.05)
        self._messages: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                self._messages.append((time.monotonic(), data.decode("utf-8", errors="replace")))
                self._cond.notify_all()

    def messages(self) -> list[tuple[float, str]]:
        with self._cond:
            return list(self._messages)

    def texts(self, *, watchdog: bool = False) -> list[str]:
        """The datagrams so far, without the WATCHDOG=1 keep-alives unless asked."""
        return [text for _, text in self.messages() if watchdog or text != "WATCHDOG=1"]

    def wait_for(self, predicate: Callable[[str], bool], *, after: int = 0, timeout: float = 10.0, what: str = "") -> int:
        """The index of the first datagram at or after index `after` that satisfies predicate."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for index in range(after, len(self._messages)):
                    if predicate(self._messages[index][1]):
                        return index
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no {what or 'matching'} datagram within {timeout} s; got "
                        f"{[text for _, text in self._messages if text != 'WATCHDOG=1']} "
                        f"(+{sum(text == 'WATCHDOG=1' for _, text in self._messages)} WATCHDOG=1)"
                    )
                self._cond.wait(remaining)

    def at(self, index: int) -> tuple[float, str]:
        with self._cond:
            return self._messages[index]

    def close(self) -> None:
        self._closed = True
        self._thread.join(2)
        self.sock.close()
        if self._dir is not None:
            try:
                os.unlink(self.address)
            except OSError:
                pass
            os.rmdir(self._dir)


@pytest.fixture
def notify_socket() -> Iterator[Callable[..., NotifySocket]]:
    """notify_socket(abstract=False): a bound socket, closed after the test."""
    made: list[NotifySocket] = []

    def make(abstract: bool = False) -> NotifySocket:
        s = NotifySocket(abstract)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., LineProcess]]:
    """spawn(argv, env): a LineProcess for an argv raw_mcpd does not make; killed after the test."""
    started: list[LineProcess] = []

    def start(argv: Sequence[str], env: dict[str, str]) -> LineProcess:
        p = LineProcess(argv, stderr_path=tmp_path / f"spawned-{len(started)}.stderr", env=env)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


# --------------------------------------------------------------------------- helpers


def is_ready(text: str) -> bool:
    return text.startswith("READY=1")


def assert_ready_comes_first(sock: NotifySocket, index: int) -> None:
    """Before the first READY=1 only STATUS= lines may come (sd_notify allows them; mcpd sends one
    when a batched status update falls in the loop turn where start-up settles)."""
    before = [text for _, text in sock.messages()[:index] if text != "WATCHDOG=1"]
    assert all(status_of(text) is not None for text in before), f"datagrams before READY: {before}"


def ready_status(text: str) -> str:
    match = re.fullmatch(r"READY=1\nSTATUS=(.*)", text, re.DOTALL)
    assert match, f"a READY datagram must be exactly READY=1 and a STATUS= line: {text!r}"
    return match.group(1)


def status_of(text: str) -> str | None:
    """The text of a `STATUS=` datagram (alone, as backends change), else None."""
    match = re.fullmatch(r"STATUS=(.*)", text, re.DOTALL)
    return match.group(1) if match else None


def wait_dead(pids: set[int], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while any(pid_is_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = {pid for pid in pids if pid_is_alive(pid)}
    assert not alive, f"processes {alive} still alive after {timeout} s: {[_cmdline(pid) for pid in alive]}"


def wait_stderr(p: LineProcess, needle: str, timeout: float = 5.0) -> str:
    """Polls mcpd's stderr until it contains needle; returns the first line that does."""
    deadline = time.monotonic() + timeout
    while True:
        text = p.stderr_text()
        for line in text.splitlines():
            if needle in line:
                return line
        assert time.monotonic() < deadline, f"mcpd did not log {needle!r} within {timeout} s; stderr:\n{text[-3000:]}"
        time.sleep(0.02)


def wait_stderr_count(p: LineProcess, needle: str, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while p.stderr_text().count(needle) < count:
        assert time.monotonic() < deadline, (
            f"mcpd did not log {needle!r} {count} times within {timeout} s; stderr:\n{p.stderr_text()[-3000:]}"
        )
        time.sleep(0.02)


def send_call(p: LineProcess, id_raw: str, tool: str, arguments: dict[str, Any] | None = None) -> None:
    p.send_raw('{"jsonrpc":"2.0","id":' + id_raw + ',"method":"tools/call","params":'
               + json.dumps({"name": tool, "arguments": arguments or {}}, separators=(",", ":")) + "}")


def call_text(p: LineProcess, tool: str, arguments: dict[str, Any] | None = None, timeout: float = 10.0) -> str:
    line, msg, _ = p.request("tools/call", {"name": tool, "arguments": arguments or {}}, timeout=timeout)
    assert "result" in msg and not msg["result"].get("isError"), f"{tool} failed: {line}"
    return msg["result"]["content"][0]["text"]


def read_until(p: LineProcess, *, ids: Sequence[str] = (), methods: Sequence[str] = (), timeout: float = 10.0):
    """Reads until a response to each raw id in `ids` and a notification of each method in
    `methods` have arrived. Returns (responses by raw id as (line, msg), notification methods seen)."""
    responses: dict[str, tuple[str, dict[str, Any]]] = {}
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while set(ids) - responses.keys() or set(methods) - set(seen):
        remaining = deadline - time.monotonic()
        assert remaining > 0, (
            f"within {timeout} s got responses {sorted(responses)} (wanted {list(ids)}) and notifications "
            f"{seen} (wanted {list(methods)}); stderr:\n{p.stderr_text()[-3000:]}"
        )
        line, msg = p.recv_message(timeout=remaining)
        if isinstance(msg, dict) and "method" in msg and "id" not in msg:
            seen.append(msg["method"])
        else:
            responses[raw_members(line).get("id", "")] = (line, msg)
    return responses, seen


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


def stop(p: LineProcess, timeout: float = 8.0) -> None:
    """Closes mcpd's input and expects it to exit 0."""
    p.close_stdin()
    code = p.wait(timeout)
    assert code == 0, f"mcpd exit status {code} after its input closed; stderr:\n{p.stderr_text()[-3000:]}"


def notify_env(mcpd_env: dict[str, str], sock: NotifySocket, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in mcpd_env.items() if k not in PRIVATE_VARIABLES}
    env["NOTIFY_SOCKET"] = sock.address
    env.update(extra)
    return env


def fill_catalog(mcpd_bin: str, config: Path, env: dict[str, str], piddir: Path) -> None:
    """`mcpd list` on the empty state directory starts every server and saves its catalog entry."""
    proc = run_mcpd(mcpd_bin, "list", "--config", str(config), env=env)
    assert proc.returncode == 0, describe(proc)
    wait_dead(set(recorded_pids(piddir)))


# --------------------------------------------------------------------------- 1. systemd notifications


def test_ready_comes_once_the_backends_are_ready_and_nothing_comes_before_it(
    piddir, write_config, raw_mcpd, mcpd_env, notify_socket
):
    """Empty state directory: alpha starts at launch (about 1 s) and start-up waits for it.
    The first datagram is READY=1 with the status `1 backend: 1 ready; 12 tools`; by then mcpd
    logged alpha ready, and a tools/list sent at once lists all of alpha's tools. READY comes once."""
    sock = notify_socket()
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir)}})
    started = time.monotonic()
    p = raw_mcpd(config, env=notify_env(mcpd_env, sock))
    index = sock.wait_for(is_ready, timeout=10, what="READY")
    arrived, text = sock.at(index)
    assert_ready_comes_first(sock, index)
    assert ready_status(text) == f"1 backend: 1 ready; {len(ALPHA_TOOLS)} tools", (
        f"READY must come once alpha is ready (its tools counted), {arrived - started:.2f} s after start: {text!r}"
    )
    wait_stderr(p, 'backend "alpha" ready', timeout=1)
    p.initialize()
    assert tool_names(p) == ALPHA_NAMES
    assert call_text(p, "alpha__echo", {"text": "hi"}) == "hi"
    time.sleep(0.3)
    assert sum(is_ready(t) for t in sock.texts()) == 1, f"READY sent more than once: {sock.texts()}"
    stop(p)


def test_ready_comes_after_startup_wait_and_status_follows_the_late_backend(
    piddir, write_config, raw_mcpd, mcpd_env, notify_socket
):
    """gateway.startup_wait 100ms: READY comes before alpha is ready, saying so (`1 starting` or
    `1 initializing`, 0 tools); once alpha is ready a `STATUS=1 backend: 1 ready; 12 tools` line
    follows, about 100 ms after mcpd logged it."""
    sock = notify_socket()
    config = write_config({"gateway": {"startup_wait": "100ms"}, "servers": {"alpha": server_entry("alpha", piddir)}})
    started = time.monotonic()
    p = raw_mcpd(config, env=notify_env(mcpd_env, sock))
    index = sock.wait_for(is_ready, timeout=5, what="READY")
    arrived, text = sock.at(index)
    assert_ready_comes_first(sock, index)
    assert re.fullmatch(r"1 backend: 1 (starting|initializing); 0 tools", ready_status(text)), (
        f"READY {arrived - started:.2f} s after start, with startup_wait 100ms: {text!r}"
    )
    assert arrived - started < 2.5, f"READY only {arrived - started:.2f} s after start, with startup_wait 100ms"
    ready = sock.wait_for(lambda t: status_of(t) == f"1 backend: 1 ready; {len(ALPHA_TOOLS)} tools",
                          after=index + 1, timeout=10, what="STATUS with alpha ready")
    wait_stderr(p, 'backend "alpha" ready', timeout=1)
    assert all(not is_ready(t) for _, t in sock.messages()[index + 1:ready + 1]), sock.texts()
    p.initialize()
    assert tool_names(p) == ALPHA_NAMES
    stop(p)


def test_status_lines_follow_a_lazy_backend_as_a_call_starts_it(
    mcpd_bin, piddir, write_config, raw_mcpd, mcpd_env, notify_socket
):
    """With alpha in the catalog (an earlier run), READY comes at once with `1 cached; 12 tools`
    and starts nothing; a call starts alpha: STATUS lines say it is starting, then ready (about
    100 ms after it is, so soon after the call is answered)."""
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir)}})
    fill_catalog(mcpd_bin, config, mcpd_env, piddir)
    earlier = set(recorded_pids(piddir))
    sock = notify_socket()
    p = raw_mcpd(config, env=notify_env(mcpd_env, sock))
    index = sock.wait_for(is_ready, timeout=5, what="READY")
    assert_ready_comes_first(sock, index)
    assert ready_status(sock.at(index)[1]) == f"1 backend: 1 cached; {len(ALPHA_TOOLS)} tools"
    p.initialize()
    assert tool_names(p) == ALPHA_NAMES
    time.sleep(0.3)
    assert set(recorded_pids(piddir)) == earlier, "a backend listed from the catalog was started before it was needed"
    assert sock.texts()[-1] == sock.at(index)[1], f"STATUS lines while nothing changed: {sock.texts()}"

    assert call_text(p, "alpha__echo", {"text": "wake"}) == "wake"
    answered = time.monotonic()
    starting = sock.wait_for(lambda t: re.fullmatch(r"STATUS=1 backend: 1 (starting|initializing); \d+ tools", t) is not None,
                             after=index + 1, timeout=1, what="STATUS with alpha starting")
    ready = sock.wait_for(lambda t: status_of(t) == f"1 backend: 1 ready; {len(ALPHA_TOOLS)} tools",
                          after=starting + 1, timeout=2, what="STATUS with alpha ready")
    assert sock.at(ready)[0] - answered < 0.8, (
        f"the ready STATUS came {sock.at(ready)[0] - answered:.2f} s after the call was answered"
    )
    assert len(pids_of(piddir, "alpha") - earlier) == 1
    stop(p)


def test_sighup_sends_reloading_with_the_monotonic_time_then_ready(
    piddir, write_config, raw_mcpd, mcpd_env, notify_socket
):
    """SIGHUP: `RELOADING=1\\nMONOTONIC_USEC=<now>` (CLOCK_MONOTONIC in microseconds, taken when
    the signal was handled), then `READY=1` with the reloaded configuration's status (beta
    added: 2 backends), then a STATUS line once beta is ready too."""
    sock = notify_socket()
    alpha = server_entry("alpha", piddir)
    config = write_config({"servers": {"alpha": alpha}})
    p = raw_mcpd(config, env=notify_env(mcpd_env, sock))
    first = sock.wait_for(is_ready, timeout=10, what="READY")
    p.initialize()

    write_config({"servers": {"alpha": alpha, "beta": server_entry("beta", piddir)}})
    before = time.clock_gettime(time.CLOCK_MONOTONIC)
    p.proc.send_signal(signal.SIGHUP)
    reloading = sock.wait_for(lambda t: t.startswith("RELOADING=1"), after=first + 1, timeout=5, what="RELOADING")
    after = time.clock_gettime(time.CLOCK_MONOTONIC)
    text = sock.at(reloading)[1]
    match = re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=(\d+)", text)
    assert match, f"RELOADING datagram: {text!r}"
    usec = int(match.group(1))
    assert before * 1e6 - 1000 <= usec <= after * 1e6 + 1000, (
        f"MONOTONIC_USEC={usec} is not between {before * 1e6:.0f} and {after * 1e6:.0f} (CLOCK_MONOTONIC around the signal)"
    )
    again = sock.wait_for(is_ready, after=reloading + 1, timeout=5, what="READY after the reload")
    assert re.fullmatch(r"2 backends: .*; \d+ tools", ready_status(sock.at(again)[1])), sock.at(again)[1]
    assert not any(is_ready(t) for _, t in sock.messages()[first + 1:reloading]), f"READY before RELOADING: {sock.texts()}"
    sock.wait_for(lambda t: status_of(t) == f"2 backends: 2 ready; {len(ALPHA_TOOLS) + len(BETA_TOOLS)} tools",
                  after=again, timeout=10, what="STATUS with alpha and beta ready")
    stop(p)


@pytest.mark.parametrize("how", ["stdin", "sigterm"])
def test_stopping_is_sent_when_mcpd_drains(piddir, write_config, raw_mcpd, mcpd_env, notify_socket, how):
    """The client closes its input, or SIGTERM: `STOPPING=1\\nSTATUS=shutting down (<reason>)`,
    once, after READY; mcpd exits 0."""
    sock = notify_socket()
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir)}})
    p = raw_mcpd(config, env=notify_env(mcpd_env, sock))
    ready = sock.wait_for(is_ready, timeout=10, what="READY")
    p.initialize()
    assert not any(t.startswith("STOPPING") for t in sock.texts())
    if how == "stdin":
        p.close_stdin()
    else:
        p.proc.send_signal(signal.SIGTERM)
    index = sock.wait_for(lambda t: t.startswith("STOPPING=1"), after=ready + 1, timeout=5, what="STOPPING")
    text = sock.at(index)[1]
    match = re.fullmatch(r"STOPPING=1\nSTATUS=shutting down \((.+)\)", text)
    assert match, f"STOPPING datagram: {text!r}"
    assert ("input" if how == "stdin" else "signal") in match.group(1), text
    code = p.wait(8)
    assert code == 0, f"exit status {code}; stderr:\n{p.stderr_text()[-3000:]}"
    time.sleep(0.2)
    assert sum(t.startswith("STOPPING") for t in sock.texts()) == 1, sock.texts()


@pytest.mark.parametrize("watchdog_pid", ["unset", "mcpd", "other"])
def test_watchdog_keepalives_at_half_the_interval_unless_meant_for_another_process(
    mcpd_bin, piddir, write_config, spawn, mcpd_env, notify_socket, watchdog_pid
):
    """WATCHDOG_USEC=400000: WATCHDOG=1 about every 200 ms when WATCHDOG_PID is unset or is
    mcpd's own pid (a shell sets it to $$ and execs mcpd); none when it names another process."""
    sock = notify_socket()
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir)}})
    env = notify_env(mcpd_env, sock, WATCHDOG_USEC="400000")
    if watchdog_pid == "other":
        env["WATCHDOG_PID"] = str(os.getpid())
    if watchdog_pid == "mcpd":
        argv = ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$0" "$@"', mcpd_bin, "stdio", "--config", str(config)]
    else:
        argv = [mcpd_bin, "stdio", "--config", str(config)]
    p = spawn(argv, env)
    ready = sock.wait_for(is_ready, timeout=10, what="READY")
    if watchdog_pid == "mcpd":
        assert _cmdline(p.proc.pid).startswith(mcpd_bin), f"the shell did not exec mcpd: {_cmdline(p.proc.pid)!r}"
    window_start = sock.at(ready)[0]
    time.sleep(1.3)
    times = [at for at, text in sock.messages() if text == "WATCHDOG=1"]
    assert all(text == "WATCHDOG=1" or not text.startswith("WATCHDOG") for text in sock.texts(watchdog=True)), sock.texts(watchdog=True)
    if watchdog_pid == "other":
        assert times == [], f"{len(times)} WATCHDOG=1 sent although WATCHDOG_PID names another process"
    else:
        in_window = [at for at in times if window_start <= at <= window_start + 1.2]
        assert 4 <= len(in_window) <= 8, f"{len(in_window)} WATCHDOG=1 in 1.2 s with WATCHDOG_USEC=400000 (expected about 6)"
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert gaps and all(0.1 <= gap <= 0.4 for gap in gaps), f"gaps between WATCHDOG=1: {[round(g, 3) for g in gaps]}"
    stop(p)


def test_notify_socket_in_the_abstract_namespace(piddir, write_config, raw_mcpd, mcpd_env, notify_socket):
    """NOTIFY_SOCKET=@name addresses the abstract namespace: READY and STOPPING arrive there."""
    sock = notify_socket(abstract=True)
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir)}})
    p = raw_mcpd(config, env=notify_env(mcpd_env, sock))
    ready = sock.wait_for(is_ready, timeout=10, what="READY on the abstract socket")
    assert ready_status(sock.at(ready)[1]) == f"1 backend: 1 ready; {len(ALPHA_TOOLS)} tools"
    p.initialize()
    stop(p)
    sock.wait_for(lambda t: t.startswith("STOPPING=1"), after=ready + 1, timeout=2, what="STOPPING")
    assert "NOTIFY_SOCKET" not in p.stderr_text(), f"mcpd complained about NOTIFY_SOCKET:\n{p.stderr_text()}"


def test_backends_never_see_the_supervisor_variables(piddir, write_config, raw_mcpd, mcpd_env, notify_socket):
    """beta with `inherit_env: true` gets mcpd's whole environment (a control variable shows it)
    except NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID, LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES."""
    sock = notify_socket()
    config = write_config({"servers": {"beta": server_entry("beta", piddir, inherit_env=True)}})
    env = notify_env(mcpd_env, sock, WATCHDOG_USEC="400000", WATCHDOG_PID=str(os.getpid()), LISTEN_FDS="1",
                     LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="mcpd", MCPD_TEST_CONTROL="inherited")
    p = raw_mcpd(config, env=env)
    sock.wait_for(is_ready, timeout=10, what="READY")
    p.initialize()
    got = {name: call_text(p, "beta__getenv", {"name": name}) for name in ["MCPD_TEST_CONTROL", *PRIVATE_VARIABLES]}
    assert got["MCPD_TEST_CONTROL"] == "inherited", f"inherit_env: true did not pass mcpd's environment: {got}"
    leaked = {name: value for name, value in got.items() if name in PRIVATE_VARIABLES and value != "<unset>"}
    assert not leaked, f"backend saw mcpd's supervisor variables: {leaked}"
    stop(p)


# --------------------------------------------------------------------------- 2. reload on SIGHUP


def alpha_beta(piddir: Path, **beta_extra: Any) -> dict[str, Any]:
    return {"servers": {"alpha": server_entry("alpha", piddir), "beta": server_entry("beta", piddir, **beta_extra)}}


@pytest.mark.parametrize("broken", ["yaml", "unknown-key"])
def test_broken_config_on_sighup_is_reported_and_the_running_one_stays(piddir, write_config, raw_mcpd, broken):
    """A file that does not parse, or has an unknown key, written over the config, then SIGHUP:
    mcpd logs the error with file:line:col and "the running configuration stays"; both backends
    keep their processes, their tools stay listed and calls are served."""
    config = write_config(alpha_beta(piddir))
    p = raw_mcpd(config)
    p.initialize()
    wait_for_pidfiles(piddir, ["alpha", "beta"])
    before = recorded_pids(piddir)
    good = config.read_text()

    if broken == "yaml":
        config.write_text(good + '  gamma: {command: ["unclosed"\n')
        where = re.escape(str(config)) + r":\d+:\d+: "
    else:
        config.write_text(good + "bogus_key: 1\n")
        where = re.escape(f'{config}:{good.count(chr(10)) + 1}:1: unknown top-level key "bogus_key"')
    p.proc.send_signal(signal.SIGHUP)
    line = wait_stderr(p, "reload failed")
    assert "the running configuration stays" in line, line
    assert re.search(where, line), f"the error must name {config} with line and column: {line}"

    assert call_text(p, "alpha__echo", {"text": "still"}) == "still"
    assert call_text(p, "beta__echo", {"text": "here"}) == "beta:here"
    assert tool_names(p) == ALPHA_NAMES | BETA_NAMES
    assert recorded_pids(piddir) == before, f"backends restarted on a failed reload: {before} -> {recorded_pids(piddir)}"
    assert all(pid_is_alive(pid) for pid in before)
    assert "reloaded " not in p.stderr_text()
    stop(p)


def test_sighup_with_a_server_added_starts_only_it_and_a_call_in_flight_completes(piddir, write_config, raw_mcpd):
    """Config alpha; a call to alpha's sleep (1.5 s) is in flight when beta is added and SIGHUP
    arrives: only beta starts, alpha keeps its process, the sleep call is answered, the client
    gets tools/list_changed and the new list has beta's tools; mcpd logs "added beta; 1 unchanged"."""
    alpha = server_entry("alpha", piddir)
    config = write_config({"servers": {"alpha": alpha}})
    p = raw_mcpd(config)
    p.initialize()
    wait_for_pidfiles(piddir, ["alpha"])
    alpha_pids = pids_of(piddir, "alpha")
    assert len(alpha_pids) == 1

    sent = time.monotonic()
    send_call(p, '"sleeping"', "alpha__sleep", {"seconds": 1.5})
    time.sleep(0.2)
    write_config({"servers": {"alpha": alpha, "beta": server_entry("beta", piddir)}})
    p.proc.send_signal(signal.SIGHUP)
    responses, seen = read_until(p, ids=['"sleeping"'], methods=[LIST_CHANGED], timeout=10)
    line, msg = responses['"sleeping"']
    assert "result" in msg and msg["result"]["content"][0]["text"] == "slept 1.5", (
        f"the alpha call in flight across the reload must complete: {line}"
    )
    assert time.monotonic() - sent >= 1.4
    assert f"reloaded {config}: added beta; 1 unchanged" in wait_stderr(p, "reloaded ")

    assert tool_names(p) == ALPHA_NAMES | BETA_NAMES
    assert call_text(p, "beta__echo", {"text": "new"}) == "beta:new"
    assert call_text(p, "alpha__echo", {"text": "old"}) == "old"
    assert pids_of(piddir, "alpha") == alpha_pids and all(pid_is_alive(pid) for pid in alpha_pids), (
        f"alpha was restarted by a reload that did not change it: {recorded_pids(piddir)}"
    )
    assert len(pids_of(piddir, "beta")) == 1, recorded_pids(piddir)
    stop(p)


def test_sighup_with_a_server_removed_stops_it_and_its_tools_vanish(piddir, write_config, raw_mcpd):
    """alpha and beta; beta removed, SIGHUP: beta's process is stopped, the client gets
    tools/list_changed, beta's tools are gone from tools/list and calling one fails; alpha
    keeps its process; mcpd logs "removed beta; 1 unchanged"."""
    config = write_config(alpha_beta(piddir))
    p = raw_mcpd(config)
    p.initialize()
    wait_for_pidfiles(piddir, ["alpha", "beta"])
    alpha_pids, beta_pids = pids_of(piddir, "alpha"), pids_of(piddir, "beta")
    assert call_text(p, "beta__echo", {"text": "x"}) == "beta:x"

    write_config({"servers": {"alpha": server_entry("alpha", piddir)}})
    p.proc.send_signal(signal.SIGHUP)
    read_until(p, methods=[LIST_CHANGED], timeout=5)
    assert f"reloaded {config}: removed beta; 1 unchanged" in wait_stderr(p, "reloaded ")
    wait_dead(beta_pids)
    assert tool_names(p) == ALPHA_NAMES
    line, msg, _ = p.request("tools/call", {"name": "beta__echo", "arguments": {"text": "gone"}})
    assert "error" in msg or msg.get("result", {}).get("isError") is True, f"a removed server's tool must fail: {line}"
    assert call_text(p, "alpha__echo", {"text": "kept"}) == "kept"
    assert pids_of(piddir, "alpha") == alpha_pids and all(pid_is_alive(pid) for pid in alpha_pids)
    assert pids_of(piddir, "beta") == beta_pids, "the removed server was started again"
    stop(p)


@pytest.mark.parametrize("change", ["env", "args"])
def test_sighup_with_a_server_changed_restarts_only_it(piddir, write_config, raw_mcpd, change):
    """beta's env (or args) changed, SIGHUP: beta is restarted (old process gone, a new one
    started without waiting for a call) and runs with the new settings; alpha keeps its process;
    mcpd logs "restarted beta (settings changed); 1 unchanged"."""
    config = write_config(alpha_beta(piddir, env={"FLAVOUR": "old"}))
    p = raw_mcpd(config)
    p.initialize()
    wait_for_pidfiles(piddir, ["alpha", "beta"])
    alpha_pids, beta_pids = pids_of(piddir, "alpha"), pids_of(piddir, "beta")
    assert call_text(p, "beta__getenv", {"name": "FLAVOUR"}) == "old"

    if change == "env":
        write_config(alpha_beta(piddir, env={"FLAVOUR": "new"}))
    else:
        write_config(alpha_beta(piddir, env={"FLAVOUR": "old"}, args=[backend_script("beta"), "--second"]))
    p.proc.send_signal(signal.SIGHUP)
    line = wait_stderr(p, "reloaded ")
    assert f"reloaded {config}: restarted beta (settings changed); 1 unchanged" in line, line
    wait_dead(beta_pids)
    deadline = time.monotonic() + 5
    while not pids_of(piddir, "beta") - beta_pids and time.monotonic() < deadline:
        time.sleep(0.05)
    new = pids_of(piddir, "beta") - beta_pids
    assert len(new) == 1, f"beta was not restarted by the reload: {recorded_pids(piddir)}"
    # Calls during the restart are test_a_call_during_a_reload_restart_waits_for_the_new_process's.
    wait_stderr_count(p, 'backend "beta" ready', 2)
    assert call_text(p, "beta__getenv", {"name": "FLAVOUR"}) == ("new" if change == "env" else "old")
    if change == "args":
        assert "--second" in _cmdline(next(iter(new))), _cmdline(next(iter(new)))
    assert pids_of(piddir, "beta") - beta_pids == new, "more than one new beta process"
    assert pids_of(piddir, "alpha") == alpha_pids and all(pid_is_alive(pid) for pid in alpha_pids), (
        f"alpha was restarted although its settings did not change: {recorded_pids(piddir)}"
    )
    assert tool_names(p) == ALPHA_NAMES | BETA_NAMES
    stop(p)


def test_a_call_during_a_reload_restart_waits_for_the_new_process(piddir, write_config, raw_mcpd):
    """beta's env changed, SIGHUP: once mcpd has logged the reload, beta's tools stay routable
    while the new process starts (about 1 s): a call sent then waits for it, as calls during a
    crash restart or a lazy start do, and is answered with the new settings, not refused as an
    unknown tool; tools/list keeps listing beta's tools meanwhile."""
    config = write_config(alpha_beta(piddir, env={"FLAVOUR": "old"}))
    p = raw_mcpd(config)
    p.initialize()
    wait_for_pidfiles(piddir, ["alpha", "beta"])
    beta_pids = pids_of(piddir, "beta")
    write_config(alpha_beta(piddir, env={"FLAVOUR": "new"}))
    p.proc.send_signal(signal.SIGHUP)
    wait_stderr(p, "reloaded ")
    assert p.stderr_text().count('backend "beta" ready') == 1, "the new beta was ready already: nothing to check"
    line, msg, _ = p.request("tools/call", {"name": "beta__getenv", "arguments": {"name": "FLAVOUR"}}, timeout=10)
    assert "result" in msg and msg["result"]["content"][0]["text"] == "new", (
        f"a call to a server being restarted by a reload must wait for the new process: {line}"
    )
    assert pids_of(piddir, "beta") - beta_pids, recorded_pids(piddir)
    stop(p)


def wait_run_record(state_home: Path, pid: int, timeout: float = 5.0) -> None:
    """Waits for mcpd `pid`'s run record: written off the loop a moment after it starts, and what
    `mcpd list` and `mcpd reload` find a running mcpd by."""
    record = state_home / "mcpd" / "run" / f"{pid}.json"
    deadline = time.monotonic() + timeout
    while not record.exists():
        assert time.monotonic() < deadline, f"mcpd pid {pid} wrote no run record {record} within {timeout} s"
        time.sleep(0.02)


def test_mcpd_reload_signals_the_mcpd_running_on_the_config(mcpd_bin, piddir, write_config, raw_mcpd, mcpd_env, state_home):
    """`mcpd reload --config FILE` (another process, same state directory) prints "sent SIGHUP to
    mcpd pid <pid>" and exits 0; the running mcpd reloads (beta added, list_changed)."""
    alpha = server_entry("alpha", piddir)
    config = write_config({"servers": {"alpha": alpha}})
    p = raw_mcpd(config)
    p.initialize()
    wait_run_record(state_home, p.proc.pid)
    write_config({"servers": {"alpha": alpha, "beta": server_entry("beta", piddir)}})
    proc = run_mcpd(mcpd_bin, "reload", "--config", str(config), env=mcpd_env)
    assert proc.returncode == 0, describe(proc)
    assert f"sent SIGHUP to mcpd pid {p.proc.pid}" in proc.stdout, describe(proc)
    wait_stderr(p, "received SIGHUP")
    assert f"reloaded {config}: added beta; 1 unchanged" in wait_stderr(p, "reloaded ")
    read_until(p, methods=[LIST_CHANGED], timeout=10)
    assert tool_names(p) == ALPHA_NAMES | BETA_NAMES
    stop(p)


def test_mcpd_reload_without_a_running_mcpd_on_the_config_fails(mcpd_bin, piddir, write_config, raw_mcpd, mcpd_env):
    """Exit 1 with "no running mcpd uses": when no mcpd ever ran on the file, when the one that
    did has exited, and when an mcpd runs only on another file (which is not signalled)."""
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir)}})
    proc = run_mcpd(mcpd_bin, "reload", "--config", str(config), env=mcpd_env)
    assert proc.returncode == 1 and "no running mcpd uses" in proc.stderr, describe(proc)
    assert "sent SIGHUP" not in proc.stdout, describe(proc)

    p = raw_mcpd(config)
    p.initialize()
    stop(p)
    proc = run_mcpd(mcpd_bin, "reload", "--config", str(config), env=mcpd_env)
    assert proc.returncode == 1 and "no running mcpd uses" in proc.stderr, (
        f"after the mcpd on it exited:\n{describe(proc)}"
    )

    other = write_config({"servers": {"alpha": server_entry("alpha", piddir)}}, name="other.yaml")
    q = raw_mcpd(other)
    q.initialize()
    proc = run_mcpd(mcpd_bin, "reload", "--config", str(config), env=mcpd_env)
    assert proc.returncode == 1 and "no running mcpd uses" in proc.stderr, (
        f"with an mcpd running on {other} only:\n{describe(proc)}"
    )
    time.sleep(0.5)
    assert "received SIGHUP" not in q.stderr_text(), f"the mcpd on another file was signalled:\n{q.stderr_text()}"
    stop(q)


def test_mcpd_reload_with_a_broken_config_fails_and_signals_nothing(mcpd_bin, piddir, write_config, raw_mcpd, mcpd_env):
    """The file is checked first: a broken one makes `mcpd reload` exit 1 with the error (file,
    line, column), and the running mcpd is not signalled."""
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir)}})
    p = raw_mcpd(config)
    p.initialize()
    good = config.read_text()
    config.write_text(good + "bogus_key: 1\n")
    proc = run_mcpd(mcpd_bin, "reload", "--config", str(config), env=mcpd_env)
    assert proc.returncode == 1, describe(proc)
    assert f'{config}:{good.count(chr(10)) + 1}:1: unknown top-level key "bogus_key"' in proc.stderr, describe(proc)
    assert "sent SIGHUP" not in proc.stdout, describe(proc)
    time.sleep(0.5)
    assert not any(needle in p.stderr_text() for needle in ("received SIGHUP", "reloaded ", "reload failed")), (
        f"the running mcpd was signalled although the file is broken:\n{p.stderr_text()}"
    )
    assert call_text(p, "alpha__echo", {"text": "on"}) == "on"
    stop(p)


# --------------------------------------------------------------------------- 3. mcpd list beside a running mcpd


def list_rows(stdout: str) -> dict[str, list[str]]:
    """SERVER -> the row's cells (split on whitespace), from `mcpd list`'s server table."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("SERVER "))
    rows: dict[str, list[str]] = {}
    for line in lines[start + 1:]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells
    return rows


def test_list_shows_the_running_mcpds_view_and_starts_nothing(mcpd_bin, piddir, write_config, raw_mcpd, mcpd_env, state_home):
    """An earlier run filled the catalog; an mcpd serves alpha and beta from it (starting
    neither) and a call starts alpha. `mcpd list` then says "States as mcpd pid <pid> sees them.",
    shows alpha ready and beta cached, starts no backend and leaves the daemon's alpha alone.
    (The daemon's run record is written off the loop a moment after it starts: the test waits
    for it, as a user's `mcpd list` a second later would find it.)"""
    config = write_config(alpha_beta(piddir))
    fill_catalog(mcpd_bin, config, mcpd_env, piddir)
    earlier = set(recorded_pids(piddir))

    p = raw_mcpd(config)
    p.initialize()
    assert tool_names(p) == ALPHA_NAMES | BETA_NAMES
    assert set(recorded_pids(piddir)) == earlier, "the daemon started a backend the catalog lists"
    wait_run_record(state_home, p.proc.pid)

    # Before any call: both cached, as the daemon sees them.
    proc = run_mcpd(mcpd_bin, "list", "--config", str(config), env=mcpd_env)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.splitlines()[0] == f"States as mcpd pid {p.proc.pid} sees them.", describe(proc)
    rows = list_rows(proc.stdout)
    assert rows["alpha"][1] == "cached" and rows["beta"][1] == "cached", describe(proc)
    assert set(recorded_pids(piddir)) == earlier, f"`mcpd list` started a backend:\n{describe(proc)}"

    assert call_text(p, "alpha__echo", {"text": "wake"}) == "wake"
    alpha_pids = pids_of(piddir, "alpha") - earlier
    assert len(alpha_pids) == 1
    started = set(recorded_pids(piddir))

    deadline = time.monotonic() + 5
    while True:
        proc = run_mcpd(mcpd_bin, "list", "--config", str(config), env=mcpd_env)
        assert proc.returncode == 0, describe(proc)
        rows = list_rows(proc.stdout)
        if rows["alpha"][1] == "ready" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert proc.stdout.splitlines()[0] == f"States as mcpd pid {p.proc.pid} sees them.", describe(proc)
    assert rows["alpha"][1] == "ready", f"alpha serves in the daemon, `mcpd list` must say ready:\n{describe(proc)}"
    assert rows["beta"][1] == "cached", describe(proc)
    assert rows["alpha"][2] == str(len(ALPHA_TOOLS)) and rows["beta"][2] == str(len(BETA_TOOLS)), describe(proc)
    for name in ALPHA_NAMES | BETA_NAMES:
        assert name in proc.stdout, describe(proc)
    document = json.loads(run_mcpd(mcpd_bin, "list", "--json", "--config", str(config), env=mcpd_env).stdout)
    assert document["runningPid"] == p.proc.pid, document
    assert {s["name"]: s["state"] for s in document["servers"]} == {"alpha": "ready", "beta": "cached"}, document

    assert set(recorded_pids(piddir)) == started, "`mcpd list` started a backend although the catalog lists every server"
    assert all(pid_is_alive(pid) for pid in alpha_pids), "`mcpd list` stopped the daemon's alpha"
    assert call_text(p, "alpha__echo", {"text": "again"}) == "again"
    assert pids_of(piddir, "alpha") - earlier == alpha_pids
    stop(p)
