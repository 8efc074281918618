"""Integration-test backend "epsilon": an MCP stdio server with the experimental tasks of 2025-11-25.

Written without the SDK's server classes: plain JSON-RPC lines on stdin/stdout, on asyncio, so every
request is served while tools and tasks run. Each line epsilon writes to stdout is first copied to
stderr as "epsilon> <the exact line>" (mcpd relays it as "[<server>] epsilon> ..."), so a test can
compare what reaches the client with what epsilon sent, byte for byte.

initialize       protocolVersion: the client's if it is a handshake-era version, else 2025-11-25;
                 capabilities {"tools":{}, "tasks":{"list":{}, "cancel":{}, "requests":{"tools":{"call":{}}}}};
                 serverInfo {"name":"epsilon","version":"1.0.0"}. notifications/initialized is ignored.
ping             {}
tools/list       one tool, work(seconds: number), with execution {"taskSupport":"optional"}
tools/call work  without params.task: sleeps `seconds`, then CallToolResult text "worked <seconds>"
                 with params.task ({"ttl": ...}): at once CreateTaskResult
                   {"task":{"taskId":"task-<n>","status":"working","createdAt":..,"lastUpdatedAt":..,
                            "ttl":<the requested ttl or null>,"pollInterval":250}}
                 with ids task-1, task-2, ... per process (two epsilons collide on purpose). When the
                 work is done the task is "completed", its CallToolResult stored, and
                 notifications/tasks/status is sent with the Task as params.
                 An unknown tool or a bad `seconds` is error -32602.
tasks/get        {taskId} -> the Task (its fields at the top level of the result); unknown id -32602
tasks/result     {taskId} -> waits until the task is terminal; completed: the stored CallToolResult with
                 _meta {"io.modelcontextprotocol/related-task":{"taskId":"<id>"}}; cancelled: error
                 -32603 "task <id> was cancelled". Unknown id -32602.
tasks/cancel     {taskId} -> stops the work, the task becomes "cancelled" (statusMessage
                 "cancelled by tasks/cancel"), the result is the Task; then notifications/tasks/status
                 with it. Unknown id, or a task already terminal: -32602.
tasks/list       every task in creation order, 2 a page; nextCursor "epsilon:<offset>" while more remain;
                 an unknown cursor is -32602.
notifications/cancelled {requestId}: the request in flight with that id is dropped, unanswered.
Anything else with an id: -32601. Unparseable line: -32700 with id null. stdin EOF: exit 0.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import sys
from typing import Any

from _common import say, serve_lines

LATEST = "2025-11-25"
HANDSHAKE_VERSIONS = {"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}
PAGE = 2
POLL_INTERVAL_MS = 250
RELATED_TASK = "io.modelcontextprotocol/related-task"

CAPABILITIES = {"tools": {}, "tasks": {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}}
WORK_TOOL = {
    "name": "work",
    "description": "Sleep `seconds`, then say so. May run as a task.",
    "inputSchema": {"type": "object", "properties": {"seconds": {"type": "number"}}, "required": ["seconds"]},
    "execution": {"taskSupport": "optional"},
}
TERMINAL = {"completed", "failed", "cancelled"}


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def send(message: dict[str, Any]) -> None:
    line = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    say("epsilon> " + line)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def notify(method: str, params: dict[str, Any]) -> None:
    send({"jsonrpc": "2.0", "method": method, "params": params})


class TaskState:
    def __init__(self, task_id: str, ttl: int | None) -> None:
        stamp = now_iso()
        self.task: dict[str, Any] = {
            "taskId": task_id,
            "status": "working",
            "createdAt": stamp,
            "lastUpdatedAt": stamp,
            "ttl": ttl,
            "pollInterval": POLL_INTERVAL_MS,
        }
        self.result: dict[str, Any] | None = None
        self.done = asyncio.Event()
        self.worker: asyncio.Task[None] | None = None

    def settle(self, status: str, message: str | None = None) -> None:
        self.task["status"] = status
        self.task["lastUpdatedAt"] = now_iso()
        if message is not None:
            self.task["statusMessage"] = message
        self.done.set()


def work_result(seconds: Any) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": f"worked {seconds}"}], "isError": False}


class Epsilon:
    def __init__(self) -> None:
        self.tasks: dict[str, TaskState] = {}
        self.order: list[str] = []
        self.counter = 0
        self.inflight: dict[str, asyncio.Task[None]] = {}

    # ------------------------------------------------------------------ dispatch

    def on_line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return
        try:
            msg = json.loads(text)
        except ValueError:
            send({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
            return  # a response (epsilon sends no requests) or junk: nothing to answer
        method = msg["method"]
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        if "id" not in msg:
            self.on_notification(method, params)
            return
        key = json.dumps(msg["id"])
        job = asyncio.ensure_future(self.serve(msg["id"], key, method, params))
        self.inflight[key] = job

    def on_notification(self, method: str, params: dict[str, Any]) -> None:
        if method == "notifications/cancelled":
            job = self.inflight.pop(json.dumps(params.get("requestId")), None)
            if job is not None:
                job.cancel()

    async def serve(self, ident: Any, key: str, method: str, params: dict[str, Any]) -> None:
        try:
            handler = getattr(self, "m_" + method.replace("/", "_"), None)
            if handler is None:
                raise RpcError(-32601, f"method not found: {method}")
            result = await handler(params)
        except asyncio.CancelledError:
            return
        except RpcError as exc:
            if self.inflight.pop(key, None) is not None:
                send({"jsonrpc": "2.0", "id": ident, "error": {"code": exc.code, "message": exc.message}})
            return
        except Exception as exc:  # noqa: BLE001 - a bug here must still answer
            if self.inflight.pop(key, None) is not None:
                send({"jsonrpc": "2.0", "id": ident, "error": {"code": -32603, "message": f"{type(exc).__name__}: {exc}"}})
            return
        if self.inflight.pop(key, None) is not None:
            send({"jsonrpc": "2.0", "id": ident, "result": result})

    # ------------------------------------------------------------------ lifecycle

    async def m_initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        asked = params.get("protocolVersion")
        version = asked if asked in HANDSHAKE_VERSIONS else LATEST
        return {"protocolVersion": version, "capabilities": CAPABILITIES, "serverInfo": {"name": "epsilon", "version": "1.0.0"}}

    async def m_ping(self, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ tools

    async def m_tools_list(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"tools": [WORK_TOOL]}

    async def m_tools_call(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("name") != "work":
            raise RpcError(-32602, f"unknown tool: {params.get('name')!r}")
        arguments = params.get("arguments") or {}
        seconds = arguments.get("seconds") if isinstance(arguments, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise RpcError(-32602, "work: seconds must be a number >= 0")
        task_params = params.get("task")
        if not isinstance(task_params, dict):
            await asyncio.sleep(seconds)
            return work_result(seconds)
        ttl = task_params.get("ttl")
        if isinstance(ttl, bool) or not isinstance(ttl, int):
            ttl = None
        self.counter += 1
        state = TaskState(f"task-{self.counter}", ttl)
        self.tasks[state.task["taskId"]] = state
        self.order.append(state.task["taskId"])
        state.worker = asyncio.ensure_future(self.run_task(state, seconds))
        return {"task": dict(state.task)}

    async def run_task(self, state: TaskState, seconds: float) -> None:
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            return
        if state.task["status"] != "working":
            return
        state.result = work_result(seconds)
        state.settle("completed")
        notify("notifications/tasks/status", dict(state.task))

    # ------------------------------------------------------------------ tasks

    def lookup(self, params: dict[str, Any]) -> TaskState:
        task_id = params.get("taskId")
        state = self.tasks.get(task_id) if isinstance(task_id, str) else None
        if state is None:
            raise RpcError(-32602, f"unknown task: {task_id!r}")
        return state

    async def m_tasks_get(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(self.lookup(params).task)

    async def m_tasks_result(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self.lookup(params)
        await state.done.wait()
        task_id = state.task["taskId"]
        if state.task["status"] != "completed" or state.result is None:
            raise RpcError(-32603, f"task {task_id} was {state.task['status']}")
        meta = dict(state.result.get("_meta") or {})
        meta[RELATED_TASK] = {"taskId": task_id}
        return {**state.result, "_meta": meta}

    async def m_tasks_cancel(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self.lookup(params)
        if state.task["status"] in TERMINAL:
            raise RpcError(-32602, f"cannot cancel task {state.task['taskId']}: already {state.task['status']}")
        if state.worker is not None:
            state.worker.cancel()
        state.settle("cancelled", "cancelled by tasks/cancel")
        snapshot = dict(state.task)
        # After the answer to tasks/cancel (sent when this handler returns, in this same step).
        asyncio.get_running_loop().call_soon(notify, "notifications/tasks/status", dict(snapshot))
        return snapshot

    async def m_tasks_list(self, params: dict[str, Any]) -> dict[str, Any]:
        cursor = params.get("cursor")
        offset = 0
        if cursor is not None:
            prefix = "epsilon:"
            if not (isinstance(cursor, str) and cursor.startswith(prefix) and cursor[len(prefix):].isdigit()):
                raise RpcError(-32602, f"unknown cursor: {cursor!r}")
            offset = int(cursor[len(prefix):])
            if offset > len(self.order):
                raise RpcError(-32602, f"unknown cursor: {cursor!r}")
        page = self.order[offset : offset + PAGE]
        result: dict[str, Any] = {"tasks": [dict(self.tasks[t].task) for t in page]}
        if offset + PAGE < len(self.order):
            result["nextCursor"] = f"epsilon:{offset + PAGE}"
        return result


if __name__ == "__main__":
    serve_lines("epsilon", Epsilon)
