"""Experimental tasks of 2025-11-25 through mcpd, driven with raw lines.

Two epsilon backends, e1 and e2, each number their tasks task-1, task-2, ... so their ids collide.
mcpd exposes a task as "<server>__<backend's taskId>" (in CreateTaskResult, tasks/get, tasks/cancel,
tasks/list, the related-task `_meta` of tasks/result and notifications/tasks/status), routes
tasks/get, tasks/result and tasks/cancel by that prefix with the backend's own id, refuses an id
without a known server's prefix with -32602, and merges every server's tasks in tasks/list.
Everything other than the id passes byte for byte: epsilon copies each line it writes to its stderr
("epsilon> <line>"), which mcpd relays as "[<server>] epsilon> <line>", and the tests compare.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from mcpd_helpers import LineProcess, raw_members, server_entry

SERVERS = ("e1", "e2")
SEP = "__"
RELATED = "io.modelcontextprotocol/related-task"
TASKS_CAPABILITY = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
TASK_FIELDS = {"taskId", "status", "createdAt", "lastUpdatedAt", "ttl", "pollInterval"}
TTL = 60000


@pytest.fixture
def tasks_config(write_config, piddir):
    return write_config({"servers": {name: server_entry("epsilon", piddir) for name in SERVERS}})


def exposed(server: str, backend_id: str) -> str:
    return f"{server}{SEP}{backend_id}"


def raw_items(array_text: str) -> list[str]:
    """The items of a JSON array as raw text slices."""
    dec = json.JSONDecoder()
    text = array_text.strip()
    assert text.startswith("["), text
    items: list[str] = []
    i = 1
    ws = " \t\r\n"
    while True:
        while text[i] in ws:
            i += 1
        if text[i] == "]":
            return items
        _, end = dec.raw_decode(text, i)
        items.append(text[i:end])
        i = end
        while text[i] in ws:
            i += 1
        if text[i] == ",":
            i += 1


class Client:
    """A LineProcess that keeps the notifications read while waiting for answers."""

    def __init__(self, p: LineProcess) -> None:
        self.p = p
        self.notes: list[tuple[str, dict[str, Any]]] = []

    def _keep(self, line: str, msg: dict[str, Any]) -> None:
        self.notes.append((line, msg))

    def request(self, method: str, params: Any = None, *, id_raw: str | None = None, timeout: float = 10.0):
        id_text = id_raw if id_raw is not None else str(self.p.new_id())
        body = '{"jsonrpc":"2.0","id":' + id_text + ',"method":' + json.dumps(method)
        if params is not None:
            body += ',"params":' + json.dumps(params, separators=(",", ":"), ensure_ascii=False)
        self.p.send_raw(body + "}")
        line, msg = self.p.recv_response(timeout, on_notification=self._keep)
        raw = raw_members(line)
        assert raw.get("id") == id_text, f"response id {raw.get('id')!r} != request id {id_text!r}: {line}"
        return line, msg, raw

    def result(self, method: str, params: Any = None, *, timeout: float = 10.0) -> tuple[dict[str, Any], str]:
        """(result, raw result text); fails on an error answer."""
        line, msg, raw = self.request(method, params, timeout=timeout)
        assert "result" in msg, f"{method} {params}: {line}"
        return msg["result"], raw["result"]

    def error(self, method: str, params: Any, code: int, *, id_raw: str = '"err"') -> dict[str, Any]:
        line, msg, raw = self.request(method, params, id_raw=id_raw)
        assert "result" not in msg, f"{method} {params}: expected error {code}, got {line}"
        assert msg["error"]["code"] == code, f"{method} {params}: expected error {code}, got {line}"
        assert isinstance(msg["error"].get("message"), str) and msg["error"]["message"], line
        return msg["error"]

    def wait_notification(self, match: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> tuple[str, dict[str, Any]]:
        """The first notification (kept or still to come) that matches; it is taken off the kept list."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (line, msg) in enumerate(self.notes):
                if match(msg):
                    del self.notes[i]
                    return line, msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching notification within {timeout}s; kept: {[l for l, _ in self.notes]}")
            try:
                line, msg = self.p.recv_message(remaining)
            except AssertionError as exc:
                raise AssertionError(f"no matching notification within {timeout}s ({exc}); kept: {[l for l, _ in self.notes]}") from None
            assert isinstance(msg, dict) and "method" in msg and "id" not in msg, f"unexpected line while waiting for a notification: {line}"
            self.notes.append((line, msg))

    def status_notification(self, task_id: str, status: str, timeout: float = 10.0) -> tuple[str, dict[str, Any]]:
        return self.wait_notification(
            lambda m: m.get("method") == "notifications/tasks/status"
            and m.get("params", {}).get("taskId") == task_id
            and m["params"].get("status") == status,
            timeout,
        )

    # --- what the backends sent, from mcpd's relay of their stderr
    def epsilon_lines(self, server: str) -> list[str]:
        prefix = f"[{server}] epsilon> "
        out = []
        for line in self.p.stderr_text().splitlines():
            at = line.find(prefix)
            if at >= 0:
                out.append(line[at + len(prefix) :])
        return out

    def assert_sent_by(self, server: str, member: str, expected_raw: str, timeout: float = 5.0) -> None:
        """Some line `server` sent has `member` ("result" or "params") equal to expected_raw, byte for byte."""
        deadline = time.monotonic() + timeout
        while True:
            sent = self.epsilon_lines(server)
            if any(raw_members(line).get(member) == expected_raw for line in sent):
                return
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{server} never sent a {member} of exactly\n  {expected_raw}\n"
                    f"(what mcpd passed on, with the exposed ids taken back); {server} sent:\n  " + "\n  ".join(sent[-20:])
                )
            time.sleep(0.05)

    def assert_item_sent_by(self, server: str, expected_raw: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            sent = self.epsilon_lines(server)
            if any(expected_raw in line for line in sent):
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"{server} never sent the task\n  {expected_raw}\n{server} sent:\n  " + "\n  ".join(sent[-20:]))
            time.sleep(0.05)

    # --- tasks
    def create_task(self, server: str, seconds: float, ttl: int = TTL) -> tuple[dict[str, Any], str]:
        result, raw = self.result(
            "tools/call", {"name": f"{server}{SEP}work", "arguments": {"seconds": seconds}, "task": {"ttl": ttl}}
        )
        assert set(result) == {"task"}, f"expected a CreateTaskResult: {raw}"
        task = result["task"]
        assert TASK_FIELDS <= set(task), raw
        assert task["status"] == "working", raw
        assert task["ttl"] == ttl and task["pollInterval"] == 250, raw
        return task, raw


def unexpose(raw_text: str, server: str, backend_ids: list[str]) -> str:
    """raw_text with each "<server>__<id>" string literal turned back into the backend's "<id>"."""
    for backend_id in backend_ids:
        raw_text = raw_text.replace(json.dumps(exposed(server, backend_id)), json.dumps(backend_id))
    return raw_text


def start(raw_mcpd, config) -> tuple[Client, dict[str, Any]]:
    p = raw_mcpd(config, "--log-level", "info")
    init = p.initialize("2025-11-25")
    return Client(p), init


def finish(c: Client, assert_backends_dead) -> None:
    c.p.ping()
    c.p.close_stdin()
    code = c.p.wait(10)
    assert code is not None, f"mcpd still running 10 s after stdin closed; stderr:\n{c.p.stderr_text()[-3000:]}"
    assert code == 0, f"exit status {code}; stderr:\n{c.p.stderr_text()[-3000:]}"
    pids = assert_backends_dead(expect_at_least=2)
    assert sorted(pids.values()) == ["epsilon", "epsilon"], pids


# --------------------------------------------------------------------------- capabilities


def test_initialize_advertises_tasks_and_tools_keep_execution(raw_mcpd, tasks_config, assert_backends_dead):
    c, init = start(raw_mcpd, tasks_config)
    assert init["protocolVersion"] == "2025-11-25"
    assert init["capabilities"].get("tasks") == TASKS_CAPABILITY, init["capabilities"]
    assert "tools" in init["capabilities"]
    listed, _ = c.result("tools/list")
    tools = {t["name"]: t for t in listed["tools"]}
    assert set(tools) == {f"{s}{SEP}work" for s in SERVERS}, tools
    for tool in tools.values():
        assert tool["execution"] == {"taskSupport": "optional"}, tool
    finish(c, assert_backends_dead)


# --------------------------------------------------------------------------- create and get


def test_created_tasks_get_namespaced_ids(raw_mcpd, tasks_config, assert_backends_dead):
    """Both backends call their first task "task-1"; the client sees e1__task-1 and e2__task-1,
    and every other byte of the CreateTaskResult is the backend's."""
    c, _ = start(raw_mcpd, tasks_config)
    t1, raw1 = c.create_task("e1", 30)
    t2, raw2 = c.create_task("e2", 30)
    assert t1["taskId"] == "e1__task-1", raw1
    assert t2["taskId"] == "e2__task-1", raw2
    assert t1["taskId"] != t2["taskId"]
    c.assert_sent_by("e1", "result", unexpose(raw1, "e1", ["task-1"]))
    c.assert_sent_by("e2", "result", unexpose(raw2, "e2", ["task-1"]))
    # A second task on e1 is e1__task-2.
    t3, raw3 = c.create_task("e1", 30)
    assert t3["taskId"] == "e1__task-2", raw3
    c.assert_sent_by("e1", "result", unexpose(raw3, "e1", ["task-2"]))
    finish(c, assert_backends_dead)


def test_tasks_get_routes_by_prefix_and_shows_status(raw_mcpd, tasks_config, assert_backends_dead):
    """e1's task-1 runs for a minute, e2's task-1 finishes at once: tasks/get of each exposed id
    must reach its own server (the statuses differ)."""
    c, _ = start(raw_mcpd, tasks_config)
    long_task, _ = c.create_task("e1", 60)
    short_task, _ = c.create_task("e2", 0.1)
    got, raw = c.result("tasks/get", {"taskId": long_task["taskId"]})
    assert got["taskId"] == "e1__task-1" and got["status"] == "working", raw
    assert got["createdAt"] == long_task["createdAt"], raw
    c.assert_sent_by("e1", "result", unexpose(raw, "e1", ["task-1"]))
    deadline = time.monotonic() + 10
    while True:
        got, raw = c.result("tasks/get", {"taskId": short_task["taskId"]})
        assert got["taskId"] == "e2__task-1", raw
        assert got["createdAt"] == short_task["createdAt"], raw
        if got["status"] == "completed":
            break
        assert got["status"] == "working", raw
        assert time.monotonic() < deadline, f"e2__task-1 never completed: {raw}"
        time.sleep(0.1)
    c.assert_sent_by("e2", "result", unexpose(raw, "e2", ["task-1"]))
    got, raw = c.result("tasks/get", {"taskId": "e1__task-1"})
    assert got["status"] == "working", f"e1__task-1 must still be working (was the request routed to e2?): {raw}"
    finish(c, assert_backends_dead)


# --------------------------------------------------------------------------- notifications and results


def test_status_notifications_carry_exposed_ids(raw_mcpd, tasks_config, assert_backends_dead):
    c, _ = start(raw_mcpd, tasks_config)
    c.create_task("e1", 0.2)
    c.create_task("e2", 0.4)
    for server in SERVERS:
        line, msg = c.status_notification(exposed(server, "task-1"), "completed", timeout=10)
        params = msg["params"]
        assert TASK_FIELDS <= set(params), line
        assert params["ttl"] == TTL, line
        c.assert_sent_by(server, "params", unexpose(raw_members(line)["params"], server, ["task-1"]))
    # Nothing leaks a backend's own id.
    for line, msg in c.notes:
        if msg.get("method") == "notifications/tasks/status":
            assert msg["params"]["taskId"].split(SEP, 1)[0] in SERVERS, line
    finish(c, assert_backends_dead)


def test_tasks_result_waits_routes_and_exposes_related_task(raw_mcpd, tasks_config, assert_backends_dead):
    c, _ = start(raw_mcpd, tasks_config)
    c.create_task("e1", 0.3)
    c.create_task("e2", 0.6)
    # Asked while both still work: tasks/result waits for the end.
    for server, seconds in (("e2", 0.6), ("e1", 0.3)):
        task_id = exposed(server, "task-1")
        result, raw = c.result("tasks/result", {"taskId": task_id}, timeout=15)
        assert result["content"] == [{"type": "text", "text": f"worked {seconds}"}], f"{task_id} answered by the wrong server? {raw}"
        assert result["isError"] is False, raw
        assert result["_meta"][RELATED] == {"taskId": task_id}, raw
        c.assert_sent_by(server, "result", unexpose(raw, server, ["task-1"]))
    # And once more after completion.
    result, _ = c.result("tasks/result", {"taskId": "e1__task-1"})
    assert result["content"][0]["text"] == "worked 0.3"
    assert result["_meta"][RELATED] == {"taskId": "e1__task-1"}
    finish(c, assert_backends_dead)


# --------------------------------------------------------------------------- cancel


def test_tasks_cancel_a_long_task(raw_mcpd, tasks_config, assert_backends_dead):
    c, _ = start(raw_mcpd, tasks_config)
    c.create_task("e1", 60)
    c.create_task("e2", 60)
    cancelled, raw = c.result("tasks/cancel", {"taskId": "e2__task-1"})
    assert cancelled["taskId"] == "e2__task-1", raw
    assert cancelled["status"] == "cancelled", raw
    assert cancelled["statusMessage"] == "cancelled by tasks/cancel", raw
    c.assert_sent_by("e2", "result", unexpose(raw, "e2", ["task-1"]))
    line, _ = c.status_notification("e2__task-1", "cancelled")
    c.assert_sent_by("e2", "params", unexpose(raw_members(line)["params"], "e2", ["task-1"]))
    # Only e2's task-1 was cancelled.
    got, raw = c.result("tasks/get", {"taskId": "e2__task-1"})
    assert got["status"] == "cancelled", raw
    got, raw = c.result("tasks/get", {"taskId": "e1__task-1"})
    assert got["status"] == "working", f"e1__task-1 was cancelled too (routed to the wrong server?): {raw}"
    # The backend's own refusals pass through: a terminal task cannot be cancelled, and has no result.
    c.error("tasks/cancel", {"taskId": "e2__task-1"}, -32602)
    c.error("tasks/result", {"taskId": "e2__task-1"}, -32603)
    cancelled, raw = c.result("tasks/cancel", {"taskId": "e1__task-1"})
    assert cancelled["taskId"] == "e1__task-1" and cancelled["status"] == "cancelled", raw
    finish(c, assert_backends_dead)


# --------------------------------------------------------------------------- list


def test_tasks_list_merges_every_server(raw_mcpd, tasks_config, assert_backends_dead):
    """e1 has three tasks (two pages of its own), e2 two; the client sees all five, once each,
    with exposed ids and otherwise the backends' bytes."""
    c, _ = start(raw_mcpd, tasks_config)
    for seconds in (60, 0, 60):
        c.create_task("e1", seconds)
    for seconds in (0, 60):
        c.create_task("e2", seconds)
    # The two 0-second tasks are done once their status notifications arrive.
    c.status_notification("e1__task-2", "completed")
    c.status_notification("e2__task-1", "completed")
    items: list[tuple[dict[str, Any], str]] = []
    cursor = None
    for _ in range(10):
        result, raw = c.result("tasks/list", {"cursor": cursor} if cursor is not None else None)
        assert isinstance(result["tasks"], list), raw
        items.extend(zip(result["tasks"], raw_items(raw_members(raw)["tasks"]), strict=True))
        cursor = result.get("nextCursor")
        if cursor is None:
            break
    else:
        raise AssertionError(f"tasks/list never ended; items so far {[t['taskId'] for t, _ in items]}")
    ids = [task["taskId"] for task, _ in items]
    assert sorted(ids) == ["e1__task-1", "e1__task-2", "e1__task-3", "e2__task-1", "e2__task-2"], ids
    status = {task["taskId"]: task["status"] for task, _ in items}
    assert status == {
        "e1__task-1": "working",
        "e1__task-2": "completed",
        "e1__task-3": "working",
        "e2__task-1": "completed",
        "e2__task-2": "working",
    }, status
    for task, item_raw in items:
        server, _, backend_id = task["taskId"].partition(SEP)
        c.assert_item_sent_by(server, unexpose(item_raw, server, [backend_id]))
    finish(c, assert_backends_dead)


# --------------------------------------------------------------------------- bad ids, plain calls


BOGUS_IDS = ["task-1", "nosuch__task-1", "e3__task-1", "", "__task-1", "e1_task-1", "E1__task-1"]


def test_bogus_task_ids_are_invalid_params(raw_mcpd, tasks_config, assert_backends_dead):
    c, _ = start(raw_mcpd, tasks_config)
    c.create_task("e1", 60)
    for method in ("tasks/get", "tasks/result", "tasks/cancel"):
        for i, bogus in enumerate(BOGUS_IDS):
            c.error(method, {"taskId": bogus}, -32602, id_raw=f'"bogus-{i}"')
        # A known server with an id it does not have: the server's own -32602 comes back.
        c.error(method, {"taskId": "e2__task-1"}, -32602, id_raw='"unknown-on-e2"')
        c.error(method, {"taskId": "e1__task-99"}, -32602, id_raw='"unknown-on-e1"')
    # The real task is untouched and mcpd keeps serving.
    got, raw = c.result("tasks/get", {"taskId": "e1__task-1"})
    assert got["status"] == "working", raw
    finish(c, assert_backends_dead)


def test_plain_tools_call_still_works(raw_mcpd, tasks_config, assert_backends_dead):
    c, _ = start(raw_mcpd, tasks_config)
    for server, seconds in (("e1", 0.1), ("e2", 0)):
        result, raw = c.result("tools/call", {"name": f"{server}{SEP}work", "arguments": {"seconds": seconds}})
        assert result == {"content": [{"type": "text", "text": f"worked {seconds}"}], "isError": False}, raw
        c.assert_sent_by(server, "result", raw)
    finish(c, assert_backends_dead)
