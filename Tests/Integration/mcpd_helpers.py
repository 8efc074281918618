"""Helpers shared by the mcpd integration tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
BACKENDS = HERE / "backends"
PROTOCOL_VERSION = "2025-11-25"

ALPHA_TOOLS = {"echo", "add", "image", "mixed", "fail", "crash", "slow", "sleep", "stats", "shout", "linger", "spawn_child"}
BETA_TOOLS = {"echo", "upper", "getenv", "cwd"}


def backend_script(name: str) -> str:
    return str(BACKENDS / f"{name}.py")


def backend_argv(name: str) -> list[str]:
    return [sys.executable, backend_script(name)]


# --------------------------------------------------------------------------- config writing


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    # A JSON string literal is a valid YAML double-quoted scalar.
    return json.dumps(str(value), ensure_ascii=False)


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML for nested dicts; lists and scalars in flow/JSON style."""
    pad = "  " * indent
    lines: list[str] = []
    for key, val in value.items():
        if isinstance(val, Mapping):
            if val:
                lines.append(f"{pad}{key}:")
                lines.append(to_yaml(val, indent + 1))
            else:
                lines.append(f"{pad}{key}: {{}}")
        elif isinstance(val, list | tuple):
            lines.append(f"{pad}{key}: [" + ", ".join(_yaml_scalar(v) for v in val) + "]")
        else:
            lines.append(f"{pad}{key}: {_yaml_scalar(val)}")
    return "\n".join(lines)


# Backends built with the SDK before the stateless era (`mcp<2`) run in their own venv.
HANDSHAKE_ONLY_BACKENDS = {"delta"}
MCP1_PYTHON = REPO_ROOT / ".venv-mcp1" / "bin" / "python"


def backend_python(name: str) -> str:
    if name in HANDSHAKE_ONLY_BACKENDS:
        if not MCP1_PYTHON.exists():
            raise RuntimeError(f"{MCP1_PYTHON} is missing: `make deps` makes the mcp<2 venv for backend {name}")
        return str(MCP1_PYTHON)
    return sys.executable


def server_entry(name: str, piddir: Path | None, **extra: Any) -> dict[str, Any]:
    env: dict[str, str] = {}
    if piddir is not None:
        env["MCPD_TEST_PIDDIR"] = str(piddir)
    env.update(extra.pop("env", {}))
    entry: dict[str, Any] = {"command": backend_python(name), "args": [backend_script(name)]}
    if env:
        entry["env"] = env
    entry.update(extra)
    return entry


# --------------------------------------------------------------------------- processes


def pid_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (dead, not yet reaped by whoever adopted it) counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        # Gone between the kill and the read: reading /proc of a process being reaped can
        # fail with ESRCH (ProcessLookupError) rather than ENOENT.
        return False


def recorded_pids(piddir: Path) -> dict[int, str]:
    """pid -> backend name, from the `<name>-<pid>.pid` files the backends wrote."""
    out: dict[int, str] = {}
    for path in piddir.glob("*.pid"):
        name, _, pid = path.stem.rpartition("-")
        out[int(pid)] = name
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def wait_pids_dead(piddir: Path, timeout: float = 5.0, expect_at_least: int = 0) -> dict[int, str]:
    """Poll until every backend recorded in piddir is dead; fail (and clean up) otherwise."""
    pids = recorded_pids(piddir)
    assert len(pids) >= expect_at_least, (
        f"expected at least {expect_at_least} backend pid files in {piddir}, found {sorted(pids.items())}"
    )
    deadline = time.monotonic() + timeout
    alive = {pid: name for pid, name in pids.items() if pid_is_alive(pid)}
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = {pid: name for pid, name in alive.items() if pid_is_alive(pid)}
    if alive:
        details = {pid: (name, _cmdline(pid)) for pid, name in alive.items()}
        for pid in alive:  # do not leak them into the rest of the run
            if str(BACKENDS) in _cmdline(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        raise AssertionError(f"backend processes still alive {timeout}s after mcpd stopped: {details}")
    return pids


def wait_for_pidfiles(piddir: Path, names: Iterable[str], timeout: float = 10.0) -> dict[int, str]:
    wanted = set(names)
    deadline = time.monotonic() + timeout
    while True:
        pids = recorded_pids(piddir)
        if wanted <= set(pids.values()):
            return pids
        if time.monotonic() >= deadline:
            raise AssertionError(f"backends {sorted(wanted)} did not record pids in {piddir}: {pids}")
        time.sleep(0.05)


def kill_group(pid: int) -> None:
    for sig in (signal.SIGKILL,):
        try:
            os.killpg(pid, sig)
        except OSError:
            pass


# --------------------------------------------------------------------------- raw JSON


def raw_members(line: str | bytes) -> dict[str, str]:
    """The top-level members of a JSON object line as raw (unparsed) text slices.

    `raw_members('{"jsonrpc":"2.0","id":1e400,"result":{}}')["id"] == "1e400"`.
    """
    text = line.decode() if isinstance(line, bytes) else line
    text = text.strip()
    dec = json.JSONDecoder()
    ws = " \t\r\n"
    assert text.startswith("{"), f"not a JSON object: {text!r}"
    i = 1
    out: dict[str, str] = {}

    def skip(j: int) -> int:
        while j < len(text) and text[j] in ws:
            j += 1
        return j

    i = skip(i)
    if text[i] == "}":
        return out
    while True:
        i = skip(i)
        key, i = dec.raw_decode(text, i)
        i = skip(i)
        assert text[i] == ":", text
        i = skip(i + 1)
        _, end = dec.raw_decode(text, i)
        out[key] = text[i:end]
        i = skip(end)
        if text[i] == "}":
            assert skip(i + 1) == len(text), f"trailing data after object: {text!r}"
            return out
        assert text[i] == ",", text
        i += 1


# --------------------------------------------------------------------------- raw line driver


class LineProcess:
    """A child speaking newline-delimited JSON on stdin/stdout, driven line by line."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        stderr_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.stderr_path = stderr_path
        self._stderr_file = open(stderr_path, "ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._next_id = 1000

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    # --- writing
    def send_raw(self, data: str | bytes) -> None:
        if isinstance(data, str):
            data = data.encode()
        if not data.endswith(b"\n"):
            data += b"\n"
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: Any) -> None:
        self.send_raw(json.dumps(message, separators=(",", ":"), ensure_ascii=False))

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # --- reading
    def stderr_text(self) -> str:
        self._stderr_file.flush()
        return self.stderr_path.read_text(errors="replace")

    def recv_line(self, timeout: float = 10.0) -> str:
        """The next stdout line (without its newline); fails on timeout or EOF."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"no line from {self.argv[0]} within {timeout}s; stderr so far:\n{self.stderr_text()[-4000:]}"
            ) from None
        if line is None:
            self._lines.put(None)
            raise AssertionError(
                f"{self.argv[0]} closed stdout (returncode={self.proc.poll()}); stderr:\n{self.stderr_text()[-4000:]}"
            )
        assert line.endswith(b"\n"), f"partial line at EOF: {line!r}"
        text = line[:-1].decode("utf-8")
        assert "\n" not in text and "\r" not in text.rstrip("\r"), text
        return text

    def recv_message(self, timeout: float = 10.0) -> tuple[str, Any]:
        line = self.recv_line(timeout)
        return line, json.loads(line)

    def recv_response(self, timeout: float = 10.0, on_notification=None) -> tuple[str, dict[str, Any]]:
        """Next line that is a response (has "id" and no "method"); notifications go to on_notification."""
        deadline = time.monotonic() + timeout
        while True:
            line, msg = self.recv_message(max(0.01, deadline - time.monotonic()))
            if isinstance(msg, dict) and "method" in msg and "id" not in msg:
                if on_notification is not None:
                    on_notification(line, msg)
                continue
            return line, msg

    def request(self, method: str, params: Any = None, *, id_raw: str | None = None, timeout: float = 10.0):
        """Send a request (id given as raw JSON text, default a fresh integer); return (line, msg, raw)."""
        id_text = id_raw if id_raw is not None else str(self.new_id())
        body = '{"jsonrpc":"2.0","id":' + id_text + ',"method":' + json.dumps(method)
        if params is not None:
            body += ',"params":' + json.dumps(params, separators=(",", ":"), ensure_ascii=False)
        self.send_raw(body + "}")
        line, msg = self.recv_response(timeout)
        raw = raw_members(line)
        assert raw.get("id") == id_text, f"response id {raw.get('id')!r} != request id {id_text!r}: {line}"
        return line, msg, raw

    def initialize(self, version: str = PROTOCOL_VERSION, timeout: float = 20.0) -> dict[str, Any]:
        _, msg, _ = self.request(
            "initialize",
            {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "mcpd-tests", "version": "0"}},
            timeout=timeout,
        )
        assert "result" in msg, msg
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return msg["result"]

    def ping(self, timeout: float = 10.0) -> None:
        _, msg, _ = self.request("ping", timeout=timeout)
        assert msg.get("result") == {}, msg

    # --- ending
    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc.poll() is None:
            kill_group(self.proc.pid)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._stderr_file.close()


# --------------------------------------------------------------------------- SDK client over mcpd


@dataclass
class ProcessHandle:
    pid: int = 0
    returncode: int | None = None
    killed: bool = False
    stderr_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path else ""


@asynccontextmanager
async def spawn_jsonrpc_streams(
    argv: Sequence[str],
    *,
    stderr_path: Path,
    env: Mapping[str, str] | None = None,
    exit_timeout: float = 10.0,
) -> AsyncIterator[tuple[Any, Any, ProcessHandle]]:
    """Like the SDK's stdio_client, but the caller learns the exit status and nothing is force-killed
    unless the child fails to exit within exit_timeout of its stdin closing (then handle.killed is set).

    Yields (read_stream, write_stream, handle) for `ClientSession(read_stream, write_stream)`.
    """
    errfile = open(stderr_path, "ab")
    proc = await anyio.open_process(
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errfile,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    handle = ProcessHandle(pid=proc.pid, stderr_path=stderr_path)
    read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](0)

    async def reader() -> None:
        assert proc.stdout is not None
        buf = b""
        async with read_send:
            try:
                async for chunk in proc.stdout:
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        try:
                            item: SessionMessage | Exception = SessionMessage(
                                types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                            )
                        except Exception as exc:  # surfaced to the session's message handler
                            item = exc
                        await read_send.send(item)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass

    async def writer() -> None:
        assert proc.stdin is not None
        try:
            async with write_recv:
                async for message in write_recv:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await proc.stdin.send((data + "\n").encode())
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            tg.start_soon(writer)
            try:
                yield read_recv, write_send, handle
            finally:
                with anyio.CancelScope(shield=True):
                    await write_send.aclose()
                    assert proc.stdin is not None
                    try:
                        await proc.stdin.aclose()
                    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                        pass
                    deadline = anyio.current_time() + exit_timeout
                    while proc.returncode is None and anyio.current_time() < deadline:
                        await anyio.sleep(0.02)
                    if proc.returncode is None:
                        handle.killed = True
                        kill_group(proc.pid)
                        while proc.returncode is None:
                            await anyio.sleep(0.02)
                    handle.returncode = proc.returncode
                tg.cancel_scope.cancel()
    finally:
        read_recv.close()
        errfile.close()


def hostile(piddir: Path | None, *mode: str, **extra: Any) -> dict[str, Any]:
    """A server entry running backends/hostile.py in the given mode."""
    entry = server_entry("hostile", piddir, **extra)
    entry["args"] = [backend_script("hostile"), *mode]
    return entry


def pids_of(piddir: Path, name: str) -> set[int]:
    """The pids recorded by backend `name`'s processes."""
    return {pid for pid, backend in recorded_pids(piddir).items() if backend == name}


def run_mcpd(mcpd_bin: str, *args: str, env: dict[str, str] | None = None, cwd: str | None = None,
             timeout: float = 30) -> subprocess.CompletedProcess:
    """`mcpd ARGS` to completion, stdin empty, output as text (a command, not a served session)."""
    try:
        return subprocess.run([mcpd_bin, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              env=env, cwd=cwd, timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"`mcpd {' '.join(args)}` did not finish within {timeout} s: {exc}") from None


def describe(proc: subprocess.CompletedProcess) -> str:
    """A finished `run_mcpd`, for assertion messages."""
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-4000:]}"
