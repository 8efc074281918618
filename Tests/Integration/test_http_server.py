"""`mcpd serve`: the HTTP/1.1 front and its probes, driven over TCP on 127.0.0.1.

What is tested:
- where it listens: --listen HOST:PORT, --host with --port, --port alone, the config's
  http.listen; the `listening on http://HOST:PORT/` log line; a bad --listen or --port exits 64,
  a port in use exits 1 naming the address;
- GET /health: the document's shape, two eager backends ready with their tool counts, a killed
  backend restarting (restarts >= 1, then ready again), a crash-looping command ending
  circuit_open with last_error (status degraded, or failing when it is the only server);
  POST /health and POST /ready get 405 with `Allow: GET`; GET /ready is 200 once started;
- a per-server endpoint of a server not configured (/mcp/x) answers 404 naming the servers, any
  other path 404 (/mcp itself is not asserted here: it is becoming the Streamable HTTP transport);
- HTTP/1.1 connections: keep-alive (several requests on one connection), pipelining (three
  requests in one write, answered in order), `Connection: close`, HTTP/1.0 without keep-alive,
  `Expect: 100-continue`, a chunked body that reaches the handler, a request hidden in a body
  never answered as a request;
- limits and refused shapes (each answered with `Connection: close`, a JSON error and an end of
  stream well under 2 s): Transfer-Encoding with Content-Length, Transfer-Encoding twice, a bad
  chunk size, two Content-Lengths, a garbage request line (400); Transfer-Encoding gzip (501);
  a body over http.max_body by its Content-Length (413 before the body is sent) or by its chunks
  (413); too many header fields or too large a head (431);
- timeouts: a head sent one byte every 0.3 s (408 after http.header_timeout), a stalled body
  (408 after http.body_timeout), an idle keep-alive connection (closed after
  http.keepalive_timeout), a connection that sends nothing (closed after http.header_timeout);
- http.max_connections: the connection past the limit gets 503 and is closed, the others are
  served;
- SIGTERM while a keep-alive connection is idle: mcpd exits 0 promptly;
- `mcpd check` on the http section: a misspelt key suggests the right one; every key is acted
  on, so a section with all of them gets no warning.

Every served mcpd is started by the `serve` fixture on a port picked free beforehand, and stopped
with SIGTERM at the end of the test: it must exit 0 within 10 s and leave no backend running. The
HTTP protocol tests use raw sockets (the `Conn` class below); the small timeouts
(`SMALL_LIMITS`) keep each test within a few seconds.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcpd_helpers import (
    ALPHA_TOOLS,
    BETA_TOOLS,
    describe,
    hostile,
    kill_group,
    pid_is_alive,
    pids_of,
    run_mcpd,
    server_entry,
    wait_for_pidfiles,
)

HOST = "127.0.0.1"

# The limits the protocol tests run with: small, so that each limit and timeout is reached fast.
SMALL_LIMITS = {
    "header_timeout": "1s",
    "body_timeout": "1s",
    "keepalive_timeout": "1s",
    "max_body": "2KiB",
    "max_headers": 20,
    "max_header_bytes": "2KiB",
}


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A port nobody listens on right now (bound to 0, read, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)

    def header_count(self, name: str) -> int:
        return sum(1 for k, _ in self.headers if k == name.lower())

    def json(self) -> Any:
        return json.loads(self.body)


class Conn:
    """One raw TCP connection to mcpd, with a buffer so that pipelined responses parse one by one."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""
        self.eof = False

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for data; buffered so far: {self.buf[:500]!r}")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"timed out waiting for data; buffered so far: {self.buf[:500]!r}") from None
        if not chunk:
            self.eof = True
            raise AssertionError(f"connection closed while a response was expected; buffered: {self.buf[:500]!r}")
        self.buf += chunk

    def response(self, timeout: float = 5.0) -> Response:
        """The next response (a 1xx has no body; otherwise the body is Content-Length bytes)."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        assert version == "HTTP/1.1", f"bad status line {lines[0]!r}"
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        response = Response(int(status), reason, headers, b"")
        if 100 <= response.status < 200:
            return response
        length = response.header("content-length")
        assert length is not None, f"response without Content-Length: {head!r}"
        while len(self.buf) < int(length):
            self._fill(deadline)
        response.body, self.buf = self.buf[: int(length)], self.buf[int(length):]
        return response

    def wait_eof(self, timeout: float) -> tuple[float, bytes]:
        """Reads until the server ends the stream; returns (seconds it took, bytes read meanwhile).
        Fails when the stream is still open after `timeout`."""
        start = time.monotonic()
        extra = self.buf
        self.buf = b""
        if self.eof:
            return 0.0, extra
        deadline = start + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"connection still open {timeout} s later; read meanwhile: {extra[:500]!r}")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                raise AssertionError(f"connection reset instead of closed; read before: {extra[:500]!r}") from None
            if not chunk:
                self.eof = True
                return time.monotonic() - start, extra
            extra += chunk

    def close(self) -> None:
        self.sock.close()


@dataclass
class Served:
    """One `mcpd serve` process."""

    proc: subprocess.Popen
    port: int
    stderr_path: Path
    conns: list[Conn] = field(default_factory=list)
    signalled: bool = False

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def connect(self, timeout: float = 5.0) -> Conn:
        conn = Conn(self.port, timeout)
        self.conns.append(conn)
        return conn

    def get(self, path: str, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
        client = http.client.HTTPConnection(HOST, self.port, timeout=5)
        try:
            client.request(method, path, body=body, headers=headers or {})
            response = client.getresponse()
            return response, response.read()
        finally:
            client.close()

    def health(self) -> dict[str, Any]:
        response, body = self.get("/health")
        assert response.status == 200, (response.status, body)
        return json.loads(body)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Polls GET /ready until it is 200 {"status":"ready"}."""
        deadline = time.monotonic() + timeout
        while True:
            response, body = self.get("/ready")
            if response.status == 200:
                assert json.loads(body) == {"status": "ready"}, body
                return
            assert response.status == 503 and json.loads(body) == {"status": "starting"}, (response.status, body)
            if time.monotonic() > deadline:
                raise AssertionError(f"/ready still 503 after {timeout} s\n{self.stderr_text()[-3000:]}")
            time.sleep(0.1)

    def wait_health(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> dict[str, Any]:
        """Polls GET /health until predicate(document) holds; returns the document."""
        deadline = time.monotonic() + timeout
        document = self.health()
        while not predicate(document):
            if time.monotonic() > deadline:
                raise AssertionError(f"/health never matched in {timeout} s; last: {document}\n{self.stderr_text()[-3000:]}")
            time.sleep(0.1)
            document = self.health()
        return document

    def terminate(self) -> None:
        """One SIGTERM (a second signal would make mcpd exit 128+15 at once)."""
        if not self.signalled and self.proc.poll() is None:
            self.signalled = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM; the exit status (fails when mcpd is still running `timeout` s later)."""
        self.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.proc.pid)
            self.proc.wait(5)
            raise AssertionError(f"mcpd serve did not exit within {timeout} s of SIGTERM\n{self.stderr_text()[-3000:]}") from None


def backends_config(piddir: Path, http: dict[str, Any] | None = None) -> dict[str, Any]:
    """The protocol tests' config: one eager raw backend (hostile, plain; starts in about 50 ms)."""
    config: dict[str, Any] = {"servers": {"h": hostile(piddir, "plain", lazy=False)}}
    config["http"] = dict(SMALL_LIMITS) if http is None else http
    return config


def request(method: str, path: str, *headers: str, body: bytes = b"", version: str = "HTTP/1.1") -> bytes:
    """A request's bytes: the request line, Host, the given header lines, the body as is."""
    head = f"{method} {path} {version}\r\nHost: {HOST}\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n"
    return head.encode() + body


def assert_error_then_closed(conn: Conn, status: int, timeout: float = 3.0) -> Response:
    """An early error: `status` with Connection: close and a JSON {"error": ...}, then the end of
    the stream well under 2 s (not a reset, not after the lingering close)."""
    response = conn.response(timeout=timeout)
    assert response.status == status, (response, conn.buf)
    assert response.header("connection") == "close", response
    assert response.header("content-type") == "application/json", response
    document = response.json()
    assert isinstance(document.get("error"), str) and document["error"], document
    elapsed, extra = conn.wait_eof(timeout=1.5)
    assert extra == b"", f"bytes after the error response: {extra!r}"
    assert elapsed < 1.0, f"the stream ended {elapsed:.2f} s after the error response"
    return response


# --------------------------------------------------------------------------- fixture


@pytest.fixture
def serve(mcpd_bin: str, tmp_path: Path, mcpd_env: dict[str, str], assert_backends_dead) -> Iterator[Callable[..., Served]]:
    """serve(config, *args, port=None, listen_args=None): `mcpd serve -c config --listen
    127.0.0.1:PORT ARGS` (listen_args replaces the --listen pair), PORT a free port; returns once
    the port accepts connections. At the end: SIGTERM, exit 0 within 10 s, no backend left."""
    started: list[Served] = []

    def start(config: Path, *args: str, port: int | None = None, listen_args: list[str] | None = None) -> Served:
        port = port if port is not None else free_port()
        stderr_path = tmp_path / f"serve-{len(started)}.stderr"
        listen = listen_args if listen_args is not None else ["--listen", f"{HOST}:{port}"]
        with open(stderr_path, "ab") as err:
            proc = subprocess.Popen([mcpd_bin, "serve", "-c", str(config), *listen, *args], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err, env=mcpd_env, start_new_session=True)
        served = Served(proc, port, stderr_path)
        started.append(served)
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"mcpd serve exited {proc.returncode} before listening\n{served.stderr_text()[-3000:]}")
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                return served
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"port {port} not accepting after 10 s\n{served.stderr_text()[-3000:]}") from None
                time.sleep(0.05)

    yield start
    failures = []
    for served in started:
        for conn in served.conns:
            conn.close()
        try:
            code = served.stop()
            if code != 0:
                failures.append(f"mcpd serve exited {code} after SIGTERM\n{served.stderr_text()[-3000:]}")
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)
    assert_backends_dead()


@pytest.fixture
def small(serve, write_config, piddir) -> Served:
    """mcpd serve with SMALL_LIMITS and one eager backend, ready."""
    served = serve(write_config(backends_config(piddir)))
    served.wait_ready()
    return served


# --------------------------------------------------------------------------- listening


@pytest.mark.parametrize("how", ["listen", "host-and-port", "port", "config"])
def test_listens_where_asked_and_logs_the_address(serve, write_config, piddir, how):
    """--listen HOST:PORT, --host with --port, --port alone (host 127.0.0.1) and the config's
    http.listen each make mcpd listen there, and log once `listening on http://HOST:PORT/...`
    naming /health and /ready on stderr; /health answers there."""
    port = free_port()
    http = dict(SMALL_LIMITS)
    if how == "config":
        http["listen"] = f"{HOST}:{port}"
    config = write_config(backends_config(piddir, http))
    listen_args = {
        "listen": ["--listen", f"{HOST}:{port}"],
        "host-and-port": ["--host", HOST, "--port", str(port)],
        "port": ["--port", str(port)],
        "config": [],
    }[how]
    served = serve(config, port=port, listen_args=listen_args)
    assert served.health()["status"] in ("ok", "degraded"), served.stderr_text()
    lines = [line for line in served.stderr_text().splitlines() if f"listening on http://{HOST}:{port}/" in line]
    assert len(lines) == 1 and "/health" in lines[0] and "/ready" in lines[0], served.stderr_text()


@pytest.mark.parametrize("args, message", [
    (["--listen", "x"], '--listen "x" must be HOST:PORT'),
    (["--port", "70000"], "--port must be a number from 0 to 65535"),
])
def test_a_bad_listen_address_is_a_usage_error(mcpd_bin, write_config, piddir, mcpd_env, args, message, assert_backends_dead):
    """A --listen that is not HOST:PORT, or a --port over 65535, exits 64 with a message and
    starts no backend."""
    config = write_config(backends_config(piddir))
    proc = run_mcpd(mcpd_bin, "serve", "-c", str(config), *args, env=mcpd_env, timeout=10)
    assert proc.returncode == 64, describe(proc)
    assert message in proc.stderr, describe(proc)
    assert len(assert_backends_dead()) == 0, "a backend was started for a usage error"


def test_a_port_in_use_exits_1_naming_the_address(mcpd_bin, write_config, piddir, mcpd_env, assert_backends_dead):
    """A port someone else listens on: mcpd serve exits 1 with `cannot listen on
    127.0.0.1:PORT: address already in use`, and leaves no backend behind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = write_config(backends_config(piddir))
        proc = run_mcpd(mcpd_bin, "serve", "-c", str(config), "--listen", f"{HOST}:{port}", env=mcpd_env, timeout=15)
    assert proc.returncode == 1, describe(proc)
    assert f"cannot listen on {HOST}:{port}: address already in use" in proc.stderr, describe(proc)
    assert_backends_dead()


# --------------------------------------------------------------------------- /health and /ready


def test_health_with_two_eager_backends_ready(serve, write_config, piddir):
    """Two backends with `lazy: false`: /health reaches status ok, each backend ready, running,
    no restarts, its tool count, no last_error; sessions all 0; /ready is 200 {"status":"ready"}."""
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir, lazy=False),
                                       "beta": server_entry("beta", piddir, lazy=False)},
                           "http": SMALL_LIMITS})
    served = serve(config)
    document = served.wait_health(lambda d: all(b["state"] == "ready" for b in d["backends"].values()))
    assert set(document) == {"status", "uptime_s", "sessions", "backends"}, document
    assert document["status"] == "ok", document
    assert isinstance(document["uptime_s"], int) and document["uptime_s"] >= 0, document
    assert document["sessions"] == {"http": 0, "sse": 0, "stdio": 0}, document
    assert document["backends"] == {
        "alpha": {"state": "ready", "running": True, "restarts": 0, "tools": len(ALPHA_TOOLS), "last_error": None, "changed_tools": []},
        "beta": {"state": "ready", "running": True, "restarts": 0, "tools": len(BETA_TOOLS), "last_error": None, "changed_tools": []},
    }, document
    response, body = served.get("/health")
    assert response.getheader("Content-Type") == "application/json", response.getheaders()
    served.wait_ready()
    wait_for_pidfiles(piddir, ["alpha", "beta"])


def test_health_shows_a_killed_backend_restarting(serve, write_config, piddir):
    """SIGKILL to a ready backend's process group: /health shows it restarting (restarts >= 1,
    state backoff, starting or ready) and then ready again with a new process; the other backend
    is untouched."""
    config = write_config({"servers": {"alpha": server_entry("alpha", piddir, lazy=False),
                                       "beta": server_entry("beta", piddir, lazy=False)},
                           "http": SMALL_LIMITS})
    served = serve(config)
    served.wait_health(lambda d: all(b["state"] == "ready" for b in d["backends"].values()))
    wait_for_pidfiles(piddir, ["alpha", "beta"])
    (old,) = pids_of(piddir, "beta")
    assert os.getpgid(old) == old, "the backend is not its own process group's leader"
    os.killpg(old, signal.SIGKILL)
    document = served.wait_health(lambda d: d["backends"]["beta"]["restarts"] >= 1, timeout=10)
    assert document["backends"]["beta"]["state"] in ("backoff", "starting", "ready"), document
    document = served.wait_health(lambda d: d["backends"]["beta"]["state"] == "ready", timeout=15)
    assert document["backends"]["beta"]["running"] is True and document["backends"]["beta"]["tools"] == len(BETA_TOOLS), document
    assert document["backends"]["alpha"] == {"state": "ready", "running": True, "restarts": 0,
                                             "tools": len(ALPHA_TOOLS), "last_error": None, "changed_tools": []}, document
    assert document["status"] == "ok", document
    new = pids_of(piddir, "beta") - {old}
    assert len(new) == 1 and all(pid_is_alive(p) for p in new), (old, pids_of(piddir, "beta"))


@pytest.mark.parametrize("alone", [True, False])
def test_health_shows_a_crash_looping_command_circuit_open(serve, write_config, piddir, alone):
    """A command that always exits 1 (`sh -c 'exit 1'`, lazy false, restart_limit 2) ends
    circuit_open, not running, with last_error set; /health's status is `failing` when it is the
    only server, `degraded` next to a healthy one."""
    servers: dict[str, Any] = {"broken": {"command": "sh", "args": ["-c", "exit 1"], "lazy": False}}
    if not alone:
        servers["h"] = hostile(piddir, "plain", lazy=False)
    config = write_config({"servers": servers, "gateway": {"restart_limit": 2}, "http": SMALL_LIMITS})
    served = serve(config)
    document = served.wait_health(lambda d: d["backends"]["broken"]["state"] == "circuit_open", timeout=10)
    broken = document["backends"]["broken"]
    assert broken["running"] is False and broken["tools"] == 0, document
    assert isinstance(broken["last_error"], str) and broken["last_error"], document
    if alone:
        assert document["status"] == "failing", document
    else:
        document = served.wait_health(lambda d: d["backends"]["h"]["state"] == "ready", timeout=10)
        assert document["backends"]["broken"]["state"] == "circuit_open", document
        assert document["status"] == "degraded", document


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_post_to_a_probe_is_405_allowing_get(small, path):
    """POST /health and POST /ready: 405 with `Allow: GET` and a JSON error."""
    response, body = small.get(path, method="POST", body=b"{}", headers={"Content-Type": "application/json"})
    assert response.status == 405, (response.status, body)
    assert response.getheader("Allow") == "GET", response.getheaders()
    assert "error" in json.loads(body), body


def test_unknown_servers_endpoints_and_other_paths_are_404(small):
    """/mcp/x and /mcp/alpha (per-server endpoints of servers not configured; this config has
    only "h") answer 404 with a JSON error that names the configured servers (GET and POST); any
    other unknown path answers 404 with a JSON error. (/mcp, /mcp/<server>, /sse and /messages
    are the MCP transports: test_streamable_http.py, test_http_eras.py,
    test_http_server_view.py.)"""
    for path in ("/mcp/x", "/mcp/alpha"):
        for method in ("GET", "POST"):
            response, body = small.get(path, method=method, body=b"{}" if method == "POST" else None)
            assert response.status == 404, (path, method, response.status, body)
            assert response.getheader("Content-Type") == "application/json", response.getheaders()
            error = json.loads(body)["error"]
            assert f'no server named "{path[5:]}"' in error and "for h" in error, body
    for path in ("/", "/nope", "/healthz", "/health/x", "/mcpx", "/readyz"):
        response, body = small.get(path)
        assert response.status == 404, (path, response.status, body)
        assert isinstance(json.loads(body)["error"], str), body


# --------------------------------------------------------------------------- connections


def test_keep_alive_serves_several_requests_on_one_connection(small):
    """HTTP/1.1 keep-alive: five requests one after another on one connection each get their
    answer, none with `Connection: close`, and the connection stays open."""
    conn = small.connect()
    for path, status in [("/health", 200), ("/ready", 200), ("/nope", 404), ("/mcp/x", 404), ("/health", 200)]:
        conn.send(request("GET", path))
        response = conn.response()
        assert response.status == status, (path, response)
        assert response.header("connection") is None, response
    assert conn.buf == b""


def test_pipelined_requests_are_answered_in_order(small):
    """Three GETs written in one send are answered in order: /health's document, /ready's, then
    a 404, each framed by its Content-Length."""
    conn = small.connect()
    conn.send(request("GET", "/health") + request("GET", "/ready") + request("GET", "/nope"))
    first, second, third = conn.response(), conn.response(), conn.response()
    assert first.status == 200 and "uptime_s" in first.json(), first
    assert second.status == 200 and second.json() == {"status": "ready"}, second
    assert third.status == 404 and "error" in third.json(), third
    assert conn.buf == b""


def test_connection_close_closes_after_the_response(small):
    """`Connection: close`: the response says `Connection: close` and the stream ends right after
    it (well before the 1 s keep-alive timeout)."""
    conn = small.connect()
    conn.send(request("GET", "/health", "Connection: close"))
    response = conn.response()
    assert response.status == 200 and response.header("connection") == "close", response
    elapsed, extra = conn.wait_eof(timeout=2)
    assert extra == b"" and elapsed < 0.5, (elapsed, extra)


def test_http_1_0_without_keep_alive_closes(small):
    """An HTTP/1.0 request without keep-alive: answered, with `Connection: close`, then the
    stream ends."""
    conn = small.connect()
    conn.send(b"GET /health HTTP/1.0\r\n\r\n")
    response = conn.response()
    assert response.status == 200 and "backends" in response.json(), response
    assert response.header("connection") == "close", response
    elapsed, extra = conn.wait_eof(timeout=2)
    assert extra == b"" and elapsed < 0.5, (elapsed, extra)


def test_expect_100_continue_comes_before_the_final_response(small):
    """A POST with `Expect: 100-continue` and a body: `HTTP/1.1 100 Continue` is sent once the
    head is read, before the body; then the final response (404 for /mcp/x, no such server)."""
    conn = small.connect()
    body = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    conn.send(request("POST", "/mcp/x", "Content-Type: application/json", f"Content-Length: {len(body)}",
                      "Expect: 100-continue"))
    interim = conn.response(timeout=2)
    assert (interim.status, interim.reason) == (100, "Continue"), interim
    conn.send(body)
    final = conn.response()
    assert final.status == 404 and "no server named" in final.json()["error"], final


def test_a_chunked_body_within_the_limit_reaches_the_handler(small):
    """A chunked POST /mcp/x whose body is within max_body is read whole and handled (404); the
    connection then serves the next request."""
    conn = small.connect()
    conn.send(request("POST", "/mcp/x", "Transfer-Encoding: chunked", "Content-Type: application/json",
                      body=b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"))
    response = conn.response()
    assert response.status == 404 and "no server named" in response.json()["error"], response
    assert response.header("connection") is None, response
    conn.send(request("GET", "/ready"))
    assert conn.response().json() == {"status": "ready"}


def test_a_request_inside_a_body_is_never_answered(small):
    """POST /x whose Content-Length covers the text of `GET /health HTTP/1.1`: the body is a body.
    Then GET /mcp/x with Connection: close: exactly two responses come back (404, 404), then the end
    of the stream; no /health document."""
    conn = small.connect()
    hidden = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    conn.send(request("POST", "/x", f"Content-Length: {len(hidden)}", body=hidden)
              + request("GET", "/mcp/x", "Connection: close"))
    first = conn.response()
    second = conn.response()
    assert (first.status, second.status) == (404, 404), (first, second)
    assert "no server named" in second.json()["error"], second
    elapsed, extra = conn.wait_eof(timeout=2)
    assert extra == b"", f"a third response: {extra!r}"
    assert b"uptime_s" not in first.body + second.body


# --------------------------------------------------------------------------- limits and refused shapes


TOO_MANY_HEADERS = tuple(f"X-Header-{i}: {i}" for i in range(25))
BIG_HEAD = (f"X-Big: {'a' * 3000}",)

# name -> (request bytes, expected status)
BAD_REQUESTS = {
    "transfer-encoding-with-content-length": (
        request("POST", "/mcp", "Transfer-Encoding: chunked", "Content-Length: 5", body=b"0\r\n\r\n"), 400),
    "transfer-encoding-twice": (
        request("POST", "/mcp", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400),
    "bad-chunk-size": (
        request("POST", "/mcp", "Transfer-Encoding: chunked", body=b"zz\r\nhello\r\n0\r\n\r\n"), 400),
    "two-content-lengths": (
        request("POST", "/mcp", "Content-Length: 5", "Content-Length: 6", body=b"hello!"), 400),
    "transfer-encoding-gzip": (
        request("POST", "/mcp", "Transfer-Encoding: gzip", body=b"xxxx"), 501),
    "chunked-body-over-max-body": (
        request("POST", "/mcp", "Transfer-Encoding: chunked",
                body=b"".join(b"3e8\r\n" + b"x" * 1000 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"), 413),
    "too-many-header-fields": (request("GET", "/health", *TOO_MANY_HEADERS), 431),
    "head-over-max-header-bytes": (request("GET", "/health", *BIG_HEAD), 431),
    "garbage-request-line": (b"\x01\x02 garbage here\r\n\r\n", 400),
    "garbage-method": (b"HELLO THERE\r\n\r\n", 400),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_a_refused_request_gets_its_status_then_the_connection_closes(small, case):
    """Each refused request shape is answered with its status (400 smuggling shapes and garbage,
    501 an unsupported transfer coding, 413 a body over max_body, 431 too many or too large
    headers), `Connection: close` and a JSON error, and the stream ends at once (not after the
    2 s lingering close); mcpd still serves a new connection."""
    data, status = BAD_REQUESTS[case]
    conn = small.connect()
    conn.send(data)
    assert_error_then_closed(conn, status)
    assert small.health()["backends"]["h"]["state"] == "ready"


def test_content_length_over_max_body_is_413_before_the_body(small):
    """A Content-Length over http.max_body (2 KiB): 413 right after the head, without waiting for
    the body (well before the 1 s body timeout would give 408), then the stream ends."""
    conn = small.connect()
    start = time.monotonic()
    conn.send(request("POST", "/mcp", "Content-Type: application/json", "Content-Length: 100000"))
    response = assert_error_then_closed(conn, 413, timeout=2)
    assert time.monotonic() - start < 0.8, "413 came too late: not right after the head"
    assert "max_body" in response.json()["error"], response


def test_a_body_at_max_body_is_accepted(small):
    """A body of exactly max_body (2048 bytes) with Content-Length is read and handled (404: no server x)."""
    conn = small.connect()
    conn.send(request("POST", "/mcp/x", "Content-Length: 2048", body=b"x" * 2048))
    response = conn.response()
    assert response.status == 404 and "no server named" in response.json()["error"], response


# --------------------------------------------------------------------------- timeouts


def test_slowloris_head_gets_408_after_the_header_timeout(small):
    """A head sent one byte every 0.3 s with header_timeout 1s: 408 about 1 s after the first
    byte (within 2 s), then the stream ends."""
    conn = small.connect()
    head = request("GET", "/health", "X-Slow: " + "s" * 40)
    start = time.monotonic()
    for byte in head:
        conn.send(bytes([byte]))
        readable, _, _ = select.select([conn.sock], [], [], 0.3)
        if readable:
            break
        assert time.monotonic() - start < 3, "no answer 3 s into a slow head"
    elapsed = time.monotonic() - start
    assert 0.8 <= elapsed <= 2.0, f"answered {elapsed:.2f} s after the first byte"
    response = assert_error_then_closed(conn, 408)
    assert "header_timeout" in response.json()["error"], response


def test_a_stalled_body_gets_408_after_the_body_timeout(small):
    """Content-Length 100 and only 10 bytes sent, then nothing: 408 after body_timeout (1 s),
    then the stream ends."""
    conn = small.connect()
    start = time.monotonic()
    conn.send(request("POST", "/mcp", "Content-Length: 100", body=b"0123456789"))
    response = assert_error_then_closed(conn, 408, timeout=3)
    elapsed = time.monotonic() - start
    assert 0.8 <= elapsed <= 2.5, f"408 after {elapsed:.2f} s"
    assert "body_timeout" in response.json()["error"], response


def test_an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout(small):
    """After a response on a keep-alive connection, nothing more sent: the connection is closed
    after keepalive_timeout (1 s), not before, without any bytes."""
    conn = small.connect()
    conn.send(request("GET", "/health"))
    assert conn.response().status == 200
    elapsed, extra = conn.wait_eof(timeout=2.5)
    assert extra == b"", extra
    assert elapsed >= 0.7, f"closed after {elapsed:.2f} s, before the keep-alive timeout"


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(small):
    """A connection that never sends a byte is closed after header_timeout (1 s), with no
    response (or at most a 408)."""
    conn = small.connect()
    start = time.monotonic()
    elapsed, extra = conn.wait_eof(timeout=2.5)
    elapsed = time.monotonic() - start
    assert 0.7 <= elapsed <= 2.5, f"closed after {elapsed:.2f} s"
    assert extra == b"" or extra.startswith(b"HTTP/1.1 408 "), extra


def test_sigterm_with_an_idle_keep_alive_connection_exits_0(serve, write_config, piddir, assert_backends_dead):
    """SIGTERM while a keep-alive connection is idle (keepalive_timeout 60 s): mcpd closes it,
    exits 0 within 10 s and stops its backend."""
    config = write_config(backends_config(piddir, dict(SMALL_LIMITS, keepalive_timeout="60s")))
    served = serve(config)
    served.wait_ready()
    conn = served.connect()
    conn.send(request("GET", "/health"))
    assert conn.response().status == 200
    start = time.monotonic()
    served.terminate()
    assert served.stop(timeout=10) == 0, served.stderr_text()
    assert time.monotonic() - start < 10
    _, extra = conn.wait_eof(timeout=2)
    assert extra == b"", extra
    assert len(assert_backends_dead(expect_at_least=1)) >= 1


# --------------------------------------------------------------------------- max_connections


def test_the_connection_past_max_connections_gets_503_and_the_others_are_served(serve, write_config, piddir):
    """max_connections 3: three open connections, then a fourth gets 503 with a JSON error and is
    closed; the first three still get 200 from GET /health."""
    config = write_config(backends_config(piddir, dict(SMALL_LIMITS, max_connections=3, header_timeout="10s")))
    served = serve(config)
    served.wait_ready()
    time.sleep(0.2)  # the probes' connections are closed and gone from the count
    first = [served.connect() for _ in range(3)]
    time.sleep(0.2)
    fourth = served.connect()
    response = assert_error_then_closed(fourth, 503)
    assert "max_connections" in response.json()["error"], response
    for conn in first:
        conn.send(request("GET", "/health"))
        response = conn.response()
        assert response.status == 200 and "backends" in response.json(), response


# --------------------------------------------------------------------------- mcpd check on http:


def test_check_suggests_the_http_key_meant(mcpd_bin, write_config, piddir, mcpd_env):
    """`http: {listn: x}`: mcpd check exits 1 and suggests `did you mean "listen"`, naming the
    file and line."""
    config = write_config(dict(backends_config(piddir), http={"listn": "x"}))
    proc = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env, timeout=15)
    assert proc.returncode == 1, describe(proc)
    assert 'did you mean "listen"' in proc.stderr, describe(proc)
    assert "mcpd.yaml:" in proc.stderr and "http.listn" in proc.stderr, describe(proc)


def test_check_accepts_every_http_key_without_a_warning(mcpd_bin, write_config, piddir, mcpd_env):
    """Every key of the `http:` section is acted on: a section with all of them passes `mcpd
    check` (exit 0) without a warning."""
    http = {"listen": "127.0.0.1:39999", "max_header_bytes": "8KiB", "max_headers": 50, "max_body": "1MiB",
            "max_connections": 100, "header_timeout": "5s", "body_timeout": "5s", "keepalive_timeout": "30s",
            "session_timeout": "10m", "allowed_origins": ["https://app.example"], "public_metrics": True}
    config = write_config(dict(backends_config(piddir), http=http))
    proc = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env, timeout=15)
    assert proc.returncode == 0, describe(proc)
    assert "warning" not in proc.stderr, describe(proc)
