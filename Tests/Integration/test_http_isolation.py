"""`mcpd serve`: `isolation: session`, one backend process per handshake-era HTTP session.

What is tested (alpha, gamma, epsilon with `isolation: session`; beta and a contrast gamma shared):
- own state: three SDK sessions at /mcp; before any of them calls alpha no alpha process is added
  (tools/list comes from the template's catalog, with the usual names alpha__*, beta__*); session A
  calls alpha__sleep once, B three times, C never; alpha__stats then gives each session the counters
  of its own process only (A 1, B 3, C 0); three alpha processes were added (pid files), one per
  session, and mcpd logged `backend "alpha" gets a process of its own for session http:XXXXXXXX
  (isolation: session)` for three different sessions; beta (shared), used by all three sessions,
  keeps its one process; no stderr line calls `isolation` not acted on;
- ending a session: of two SDK sessions, leaving A's client (DELETE, logged `http session <id8>
  ended by its client`) stops A's own process within 5 s, while B's process lives on and keeps B's
  state (stats 1) and serves B; the log line names each session's id;
- expiry (`http.session_timeout: 2s`): an idle session's own process is stopped with it (within
  8 s), a session holding its GET stream open keeps its own process;
- backend requests: with gamma `isolation: session`, two SDK sessions with sampling callbacks each
  call gamma__ask_sample, both in flight at once (A's callback holds its answer until B's is asked): each
  session's callback is asked for its own prompt and each call returns its own session's marker.
  Contrast, gamma shared: the second session's call is answered with gamma's "error: ..." text
  saying that several clients have requests in flight and suggesting `isolation: session`, its
  callback never asked, while the first session's call still gets its own marker;
- notifications: gamma's log messages (notifications/message) from A's own process reach A only
  (not B within 1 s) and B's reach B only; with both sessions subscribed to
  mcpd://gamma/file:///gamma/a.txt, gamma__touch in A's process notifies A only (structuredContent
  sent: true) and gamma__touch in B's process notifies B only (sent: true); a session's
  logging/setLevel error reaches its own gamma process (a later warning is "filtered", no message
  arrives);
- tasks (epsilon, 2025-11-25): a task created in A's own process has its notifications/tasks/status
  on A's GET stream only, tasks/get finds it for A and not for B (whose own process numbers its
  own task e__task-1 too), and each session's tasks/list lists its own process's task;
- stateless-era requests (2026-07-28, no session) and the stdio session use the shared process:
  three stateless alpha__sleep calls are all counted by a stateless alpha__stats, at most one alpha
  process (the stateless twin) is added and no "gets a process of its own" is logged; over
  `mcpd stdio` alpha__sleep is counted by alpha__stats and only the one alpha process exists;
- `mcpd check` (text and --json) accepts `isolation: session` with exit 0 and no warning about it;
  `isolation: sessions` is an error naming `must be shared or session`;
- SIGTERM while two raw sessions hold their own processes (one with alpha__sleep 30 s in flight,
  one with its GET stream open): mcpd exits 0 within 10 s and no backend process is left.

Every mcpd serve is started by test_streamable_http's `serve` fixture (a free port, /health with
every backend ready; SIGTERM, exit 0 and no backend left at the end). End-to-end parts use the
official SDK (mcp 2.3.0 `streamable_http_client` + `ClientSession`); processes are counted by the
pid files the backends write (`server_entry(..., piddir)`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from mcpd_helpers import ALPHA_TOOLS, BETA_TOOLS, describe, pid_is_alive, pids_of, run_mcpd, server_entry
from test_http_server_view import Inbox, sdk_session, stateless_post, text_of
from test_streamable_http import (  # noqa: F401  (serve is a fixture)
    RawSession,
    Recorder,
    serve,
)

pytestmark = [
    # resources/subscribe and logging are deprecated as of 2026-07-28; handshake clients use them.
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

OWN = re.compile(r'backend "(\w+)" gets a process of its own for session http:([0-9a-f]{8}) \(isolation: session\)')
ZERO = {"sleep_started": 0, "sleep_cancelled": 0, "sleep_finished": 0}


def counted(n: int) -> dict[str, int]:
    return {"sleep_started": n, "sleep_cancelled": 0, "sleep_finished": n}


# --------------------------------------------------------------------------- helpers


def own_lines(served: Any) -> list[tuple[str, str]]:
    """(server, session id8) of each `gets a process of its own` line logged so far."""
    return [m.groups() for m in OWN.finditer(served.stderr_text())]


def wait_until(predicate: Callable[[], Any], timeout: float, message: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message())
        time.sleep(0.05)


@asynccontextmanager
async def recorded_session(url: str, recorder: Recorder, **kwargs: Any) -> AsyncIterator[ClientSession]:
    """sdk_session with an httpx2 client whose responses `recorder` records (for the session id)."""
    async with recorder.client() as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write, **kwargs) as session:
                await session.initialize()
                yield session


def session_id(recorder: Recorder) -> str:
    ids = recorder.session_ids()
    assert len(ids) == 1, recorder.seen
    return next(iter(ids))


async def stats(session: ClientSession, tool: str = "alpha__stats") -> dict[str, int]:
    return json.loads(text_of(await session.call_tool(tool, {})))


async def sleeps(session: ClientSession, n: int) -> None:
    for _ in range(n):
        assert text_of(await session.call_tool("alpha__sleep", {"seconds": 0.01})) == "slept 0.01"


def isolated(name: str, piddir: Path, **extra: Any) -> dict[str, Any]:
    return server_entry(name, piddir, isolation="session", **extra)


# --------------------------------------------------------------------------- own processes, own state


@pytest.mark.anyio
async def test_each_session_gets_its_own_process_with_its_own_state(serve, write_config, piddir):
    """alpha `isolation: session`, beta shared. Three SDK sessions at /mcp: listing tools starts no
    alpha process (the names are alpha__*/beta__* from the template's catalog); A sleeps once, B
    three times, C not at all: alpha__stats gives A {1}, B {3}, C zeros, each its own process's
    counters. Exactly three alpha processes were added (the template, if any, stays), and three
    `gets a process of its own for session http:XXXXXXXX` lines name three different sessions.
    beta__echo in every session is served by beta's one process. No stderr line says that
    `isolation` is not acted on."""
    config = write_config({"servers": {"alpha": isolated("alpha", piddir), "beta": server_entry("beta", piddir)}})
    served = serve(config)
    template = pids_of(piddir, "alpha")
    beta_before = pids_of(piddir, "beta")
    assert len(beta_before) == 1, beta_before
    with anyio.fail_after(40):
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(sdk_session(served.url))
            b = await stack.enter_async_context(sdk_session(served.url))
            c = await stack.enter_async_context(sdk_session(served.url))
            names = {t.name for t in (await a.list_tools()).tools}
            names_c = {t.name for t in (await c.list_tools()).tools}
            before_calls = pids_of(piddir, "alpha")

            await sleeps(a, 1)
            await sleeps(b, 3)
            got = {"a": await stats(a), "b": await stats(b), "c": await stats(c)}
            again_a = await stats(a)
            echoes = [text_of(await s.call_tool("beta__echo", {"text": key})) for key, s in (("a", a), ("b", b), ("c", c))]
            during = pids_of(piddir, "alpha")
            beta_during = pids_of(piddir, "beta")
            alive = {pid for pid in during if pid_is_alive(pid)}

    expected_names = {f"alpha__{t}" for t in ALPHA_TOOLS} | {f"beta__{t}" for t in BETA_TOOLS}
    assert names == expected_names and names_c == expected_names, sorted(names ^ expected_names)
    assert before_calls == template, f"alpha processes started before any session called alpha: {before_calls - template}"
    assert got == {"a": counted(1), "b": counted(3), "c": ZERO}, got
    assert again_a == counted(1), again_a
    assert echoes == ["beta:a", "beta:b", "beta:c"], echoes
    added = during - template
    assert len(added) == 3, f"alpha processes: template {template}, while three sessions used alpha {during}"
    assert alive == during, f"some alpha process died while its session was open: {during - alive}"
    assert beta_during == beta_before, f"shared beta: {beta_before} before, {beta_during} after three sessions used it"
    lines = own_lines(served)
    assert [server for server, _ in lines] == ["alpha"] * 3, lines
    assert len({sid for _, sid in lines}) == 3, lines
    stray = [line for line in served.stderr_text().splitlines() if "isolation" in line and not OWN.search(line)]
    assert stray == [], stray


@pytest.mark.anyio
async def test_ending_a_session_stops_its_own_process_only(serve, write_config, piddir):
    """Two SDK sessions at /mcp with alpha `isolation: session`: B calls alpha__echo, then A
    alpha__sleep twice, then B alpha__sleep once; each got a new alpha process, logged with its
    own session id. Leaving A's client sends DELETE (204; `http session <A> ended by its client`),
    and A's process is gone within 5 s while B's is alive, still counts B's sleep only (stats 1),
    and serves B; no further alpha process was started for B."""
    served = serve(write_config({"servers": {"alpha": isolated("alpha", piddir)}}))
    template = pids_of(piddir, "alpha")
    rec_a, rec_b = Recorder(), Recorder()
    with anyio.fail_after(40):
        async with recorded_session(served.url, rec_b) as b:
            assert text_of(await b.call_tool("alpha__echo", {"text": "b \u00e9\U0001f389"})) == "b \u00e9\U0001f389"
            (pid_b,) = pids_of(piddir, "alpha") - template
            async with recorded_session(served.url, rec_a) as a:
                await sleeps(a, 2)
                stats_a = await stats(a)
                (pid_a,) = pids_of(piddir, "alpha") - template - {pid_b}
                await sleeps(b, 1)
            sid_a = session_id(rec_a)
            served.wait_log(re.escape(f"http session {sid_a[:8]} ended by its client"))
            gone = time.monotonic()
            while pid_is_alive(pid_a) and time.monotonic() - gone < 5:
                await anyio.sleep(0.05)
            a_alive = pid_is_alive(pid_a)
            b_alive = pid_is_alive(pid_b)
            stats_b = await stats(b)
            echoed = text_of(await b.call_tool("alpha__echo", {"text": "still b"}))
            after = pids_of(piddir, "alpha")
        sid_b = session_id(rec_b)

    assert stats_a == counted(2), stats_a
    assert [status for method, status, _ in rec_a.seen if method == "DELETE"] == [204], rec_a.seen
    assert not a_alive, f"session A ended, but its own alpha process {pid_a} was still alive 5 s later"
    assert b_alive, f"session B's own alpha process {pid_b} died when session A ended"
    assert stats_b == counted(1), f"B's process counts {stats_b}: not B's own process (B slept once)"
    assert echoed == "still b"
    assert after == template | {pid_a, pid_b}, f"alpha processes: template {template}, A {pid_a}, B {pid_b}, all {after}"
    assert own_lines(served) == [("alpha", sid_b[:8]), ("alpha", sid_a[:8])], own_lines(served)


def test_expired_session_takes_its_own_process_with_it(serve, write_config, piddir):
    """With `http.session_timeout: 2s` and alpha `isolation: session`: raw sessions A and B each call
    alpha__echo (two new alpha processes); B holds its GET stream open, A is idle. A expires
    (`http session <A> expired`) and its process is gone within 8 s, while B's process is alive and
    serves B (stats zeros: B's own)."""
    config = write_config({"servers": {"alpha": isolated("alpha", piddir)}, "http": {"session_timeout": "2s"}})
    served = serve(config)
    template = pids_of(piddir, "alpha")
    a = RawSession(served.port)
    assert a.call_text("alpha__echo", {"text": "a"}, timeout=15) == "a"
    (pid_a,) = pids_of(piddir, "alpha") - template
    b = RawSession(served.port)
    stream = served.stream(b.id)
    assert stream.status == 200, stream.headers
    assert b.call_text("alpha__echo", {"text": "b"}, timeout=15) == "b"
    (pid_b,) = pids_of(piddir, "alpha") - template - {pid_a}
    served.wait_log(re.escape(f"http session {a.id[:8]} expired"), timeout=8)
    wait_until(lambda: not pid_is_alive(pid_a), 5,
               lambda: f"session A expired, but its own alpha process {pid_a} was still alive 5 s later")
    assert pid_is_alive(pid_b), f"session B's own alpha process {pid_b} died when session A expired"
    assert json.loads(b.call_text("alpha__stats", {})) == ZERO
    assert own_lines(served) == [("alpha", a.id[:8]), ("alpha", b.id[:8])], own_lines(served)


# --------------------------------------------------------------------------- backend requests


async def sampling_race(url: str) -> dict[str, Any]:
    """Sessions A and B (SDK, sampling callbacks) call gamma__ask_sample: A first; once A's callback
    has been asked, B. A callback answers `marker <session>: <prompt>` once released; the test
    releases them when B's callback was asked too or B's call came back, whichever is first."""
    asked: dict[str, list[str]] = {"a": [], "b": []}
    entered = {"a": anyio.Event(), "b": anyio.Event()}
    release = anyio.Event()
    results: dict[str, Any] = {}
    b_done = anyio.Event()

    def callback(key: str):
        async def sampling(ctx: ClientRequestContext, params: types.CreateMessageRequestParams) -> Any:
            prompt = params.messages[0].content.text
            asked[key].append(prompt)
            entered[key].set()
            with anyio.move_on_after(10):
                await release.wait()
            return types.CreateMessageResult(role="assistant", content=types.TextContent(text=f"marker {key}: {prompt}"),
                                             model="m")
        return sampling

    async def call(session: ClientSession, key: str) -> None:
        try:
            results[key] = await session.call_tool("gamma__ask_sample", {"prompt": f"prompt of {key}"})
        except Exception as exc:  # examined by the test
            results[key] = exc
        if key == "b":
            b_done.set()

    with anyio.fail_after(40):
        async with sdk_session(url, sampling_callback=callback("a")) as a, \
                sdk_session(url, sampling_callback=callback("b")) as b:
            await anyio.sleep(0.3)  # let each client's GET stream open
            async with anyio.create_task_group() as tg:
                tg.start_soon(call, a, "a")
                with anyio.fail_after(15):
                    await entered["a"].wait()
                tg.start_soon(call, b, "b")
                with anyio.move_on_after(15):
                    async with anyio.create_task_group() as race:
                        async def stop_when(event: anyio.Event) -> None:
                            await event.wait()
                            race.cancel_scope.cancel()
                        race.start_soon(stop_when, entered["b"])
                        race.start_soon(stop_when, b_done)
                both_in_flight = entered["b"].is_set() and "a" not in results
                release.set()
    return {"asked": asked, "results": results, "both_in_flight": both_in_flight}


def outcome_text(outcome: Any) -> str:
    if isinstance(outcome, Exception):
        return f"{type(outcome).__name__}: {outcome}"
    return text_of(outcome)


@pytest.mark.anyio
async def test_sampling_from_own_processes_reaches_each_session_with_both_in_flight(serve, write_config, piddir):
    """gamma `isolation: session`: A's and B's gamma__ask_sample are in flight at once (A's callback
    holds its answer until B's callback was asked): each session's callback is asked once, for its
    own prompt, and each call returns its own session's marker, none an error."""
    served = serve(write_config({"servers": {"gamma": isolated("gamma", piddir)}}))
    race = await sampling_race(served.url)
    texts = {key: outcome_text(value) for key, value in race["results"].items()}
    assert race["asked"] == {"a": ["prompt of a"], "b": ["prompt of b"]}, (race["asked"], texts)
    assert race["both_in_flight"], (race, texts)
    assert texts == {"a": "marker a: prompt of a", "b": "marker b: prompt of b"}, texts
    assert [server for server, _ in own_lines(served)] == ["gamma", "gamma"], own_lines(served)


@pytest.mark.anyio
async def test_sampling_from_a_shared_process_with_two_sessions_in_flight_is_refused(serve, write_config, piddir):
    """Contrast, gamma shared: the same race. A's callback is asked and A gets its marker; B's call,
    made while A's is in flight, is answered by gamma with `error: ...several clients have requests
    in flight...` suggesting `isolation: session`, and B's callback is never asked. No process of
    its own is logged."""
    served = serve(write_config({"servers": {"gamma": server_entry("gamma", piddir)}}))
    race = await sampling_race(served.url)
    texts = {key: outcome_text(value) for key, value in race["results"].items()}
    assert race["asked"] == {"a": ["prompt of a"], "b": []}, (race["asked"], texts)
    assert texts["a"] == "marker a: prompt of a", texts
    assert "several clients have requests in flight" in texts["b"] and "isolation: session" in texts["b"], texts
    assert own_lines(served) == []


# --------------------------------------------------------------------------- notifications


@pytest.mark.anyio
async def test_log_messages_of_an_own_process_reach_its_session_only(serve, write_config, piddir):
    """gamma `isolation: session`, SDK sessions A and B at /mcp: gamma__log in A's session sends
    notifications/message from A's own process: A receives it (logger "gamma"), B receives nothing
    within 1 s; gamma__log in B's session reaches B and not A."""
    served = serve(write_config({"servers": {"gamma": isolated("gamma", piddir)}}))
    inbox_a, inbox_b = Inbox(), Inbox()
    with anyio.fail_after(30):
        async with sdk_session(served.url, message_handler=inbox_a.put) as a, \
                sdk_session(served.url, message_handler=inbox_b.put) as b:
            await anyio.sleep(0.3)  # let each client's GET stream open
            assert text_of(await a.call_tool("gamma__log", {"level": "warning", "message": "from a"})) == "logged"
            at_a = await inbox_a.wait_for(types.LoggingMessageNotification)
            await anyio.sleep(1.0)
            b_meanwhile = list(inbox_b.of(types.LoggingMessageNotification))
            assert text_of(await b.call_tool("gamma__log", {"level": "error", "message": "from b"})) == "logged"
            at_b = await inbox_b.wait_for(types.LoggingMessageNotification)
            await anyio.sleep(1.0)
            at_a = inbox_a.of(types.LoggingMessageNotification)
            at_b = inbox_b.of(types.LoggingMessageNotification)

    assert b_meanwhile == [], f"B got the log message of A's own process: {b_meanwhile}"
    assert [(n.params.level, n.params.data, n.params.logger) for n in at_a] == [("warning", "from a", "gamma")], at_a
    assert [(n.params.level, n.params.data, n.params.logger) for n in at_b] == [("error", "from b", "gamma")], at_b


@pytest.mark.anyio
async def test_resource_updates_of_an_own_process_reach_its_session_only(serve, write_config, piddir):
    """gamma `isolation: session`: SDK sessions A and B both subscribe to
    mcpd://gamma/file:///gamma/a.txt (each session's subscription is its own process's). gamma__touch
    of that URI in A's session: gamma reports it sent the update (structuredContent sent: true), A
    receives notifications/resources/updated with the mcpd:// URI, B nothing within 1 s. gamma__touch
    in B's session: B's process sends it too (sent: true) and B receives it; A still has one."""
    served = serve(write_config({"servers": {"gamma": isolated("gamma", piddir)}}))
    uri = "mcpd://gamma/file:///gamma/a.txt"
    inbox_a, inbox_b = Inbox(), Inbox()
    with anyio.fail_after(30):
        async with sdk_session(served.url, message_handler=inbox_a.put) as a, \
                sdk_session(served.url, message_handler=inbox_b.put) as b:
            await anyio.sleep(0.3)  # let each client's GET stream open
            await a.subscribe_resource(uri)
            await b.subscribe_resource(uri)
            touched_a = await a.call_tool("gamma__touch", {"uri": "file:///gamma/a.txt"})
            await inbox_a.wait_for(types.ResourceUpdatedNotification)
            await anyio.sleep(1.0)
            b_meanwhile = list(inbox_b.of(types.ResourceUpdatedNotification))
            touched_b = await b.call_tool("gamma__touch", {"uri": "file:///gamma/a.txt"})
            try:
                await inbox_b.wait_for(types.ResourceUpdatedNotification, timeout=2)
            except TimeoutError:
                pass
            await anyio.sleep(0.5)
            at_a = [str(n.params.uri) for n in inbox_a.of(types.ResourceUpdatedNotification)]
            at_b = [str(n.params.uri) for n in inbox_b.of(types.ResourceUpdatedNotification)]

    assert touched_a.structured_content == {"sent": True}, touched_a
    assert b_meanwhile == [], f"B got the resources/updated of A's own process: {b_meanwhile}"
    assert touched_b.structured_content == {"sent": True}, (
        f"B subscribed to {uri}, but B's own gamma process was never subscribed: touch there {touched_b.structured_content}"
    )
    assert at_b == [uri], f"B's updates: {at_b}"
    assert at_a == [uri], f"A's updates: {at_a}"


@pytest.mark.anyio
async def test_set_level_reaches_the_sessions_own_process(serve, write_config, piddir):
    """gamma `isolation: session`: an SDK session calls gamma__log at warning (its own process starts;
    "logged"), then sends logging/setLevel error (answered {}), then gamma__log at warning again:
    its own process, which is the one sending it log messages, must have been told the level, so
    the message is "filtered" and no second notifications/message arrives."""
    served = serve(write_config({"servers": {"gamma": isolated("gamma", piddir)}}))
    inbox = Inbox()
    with anyio.fail_after(30):
        async with sdk_session(served.url, message_handler=inbox.put) as a:
            await anyio.sleep(0.3)  # let the client's GET stream open
            first = text_of(await a.call_tool("gamma__log", {"level": "warning", "message": "before"}))
            await inbox.wait_for(types.LoggingMessageNotification)
            await a.set_logging_level("error")
            second = text_of(await a.call_tool("gamma__log", {"level": "warning", "message": "after setLevel error"}))
            await anyio.sleep(1.0)
            messages = [n.params.data for n in inbox.of(types.LoggingMessageNotification)]

    assert first == "logged", first
    assert second == "filtered", (
        f"after logging/setLevel error, the session's own gamma process still logs a warning ({second!r}): "
        f"the level did not reach it; messages received: {messages}"
    )
    assert messages == ["before"], messages


def test_tasks_of_an_own_process_belong_to_its_session(serve, write_config, piddir):
    """epsilon (tasks of 2025-11-25) as server `e` with `isolation: session`; raw sessions A and B
    with their GET streams open. A's task-augmented e__work (0.2 s) creates task e__task-1 in A's own
    process; its notifications/tasks/status (completed) arrives on A's stream and nothing on B's
    within 1 s; A's tasks/get finds it completed and A's tasks/list lists it. B's tasks/get of that
    id is an error (B's own process has no such task); B's own task is numbered e__task-1 as well
    (a fresh process), B's tasks/get sees it complete, and B's tasks/list lists only it."""
    served = serve(write_config({"servers": {"e": isolated("epsilon", piddir)}}))
    a, b = RawSession(served.port), RawSession(served.port)
    stream_a, stream_b = served.stream(a.id), served.stream(b.id)
    assert stream_a.status == 200 and stream_b.status == 200
    created = a.request("tools/call", {"name": "e__work", "arguments": {"seconds": 0.2}, "task": {"ttl": 60000}},
                        timeout=15)
    task_id = created["result"]["task"]["taskId"]
    assert task_id == "e__task-1", created
    event, note = stream_a.next_event(timeout=10)
    assert event == "message" and note.get("method") == "notifications/tasks/status", note
    assert note["params"]["taskId"] == task_id and note["params"]["status"] == "completed", note
    try:
        extra = stream_b.next_event(timeout=1.0)
    except AssertionError as exc:  # nothing came within 1 s, as it should
        assert "no event" in str(exc), exc
    else:
        raise AssertionError(f"B's stream got a task status of A's own process: {extra}")
    got = a.request("tasks/get", {"taskId": task_id})
    assert got.get("result", {}).get("status") == "completed", got
    listed_a = a.request("tasks/list")

    foreign = b.request("tasks/get", {"taskId": task_id}, timeout=15)
    assert "error" in foreign and "result" not in foreign, f"B's tasks/get found A's task: {foreign}"
    created_b = b.request("tools/call", {"name": "e__work", "arguments": {"seconds": 0.05}, "task": {"ttl": 60000}})
    assert created_b["result"]["task"]["taskId"] == "e__task-1", created_b
    got_b = wait_until(lambda: (r := b.request("tasks/get", {"taskId": "e__task-1"})).get("result", {}).get("status")
                       == "completed" and r, 10, lambda: "B's own task did not complete within 10 s")
    assert got_b["result"]["ttl"] == 60000, got_b
    listed_b = b.request("tasks/list")
    assert [server for server, _ in own_lines(served)] == ["e", "e"], own_lines(served)
    assert [t["taskId"] for t in listed_a.get("result", {}).get("tasks", [])] == [task_id], (
        f"A's tasks/list does not list the task A's own process holds: {listed_a}"
    )
    assert [t["taskId"] for t in listed_b.get("result", {}).get("tasks", [])] == ["e__task-1"], (
        f"B's tasks/list does not list the task B's own process holds: {listed_b}"
    )


# --------------------------------------------------------------------------- what stays shared


def test_stateless_requests_share_one_process(serve, write_config, piddir):
    """alpha `isolation: session`: three stateless-era (2026-07-28) alpha__sleep POSTs, each with no
    session, are all counted by a stateless alpha__stats (one shared process served them); at most
    one alpha process (the stateless twin) was added; no `gets a process of its own` is logged."""
    served = serve(write_config({"servers": {"alpha": isolated("alpha", piddir)}}))
    template = pids_of(piddir, "alpha")
    for i in range(3):
        reply = stateless_post(served.port, "/mcp", "tools/call", {"name": "alpha__sleep", "arguments": {"seconds": 0.01}},
                               id=i, name="alpha__sleep")
        assert reply.status == 200, reply
        assert reply.json()["result"]["content"][0]["text"] == "slept 0.01", reply
    reply = stateless_post(served.port, "/mcp", "tools/call", {"name": "alpha__stats", "arguments": {}}, id="s",
                           name="alpha__stats")
    assert reply.status == 200, reply
    assert json.loads(reply.json()["result"]["content"][0]["text"]) == counted(3), reply
    added = pids_of(piddir, "alpha") - template
    assert len(added) <= 1, f"stateless requests started alpha processes {added} (template {template})"
    assert own_lines(served) == []
    assert served.http_sessions() == 0


def test_stdio_session_uses_the_shared_process(raw_mcpd, write_config, piddir):
    """`mcpd stdio --log-level info` with alpha `isolation: session`: alpha__sleep then alpha__stats
    (counted 1) are served by the one alpha process; no other alpha process starts and no `gets a
    process of its own` is logged; closing stdin ends mcpd with exit 0."""
    config = write_config({"servers": {"alpha": isolated("alpha", piddir)}})
    p = raw_mcpd(config, "--log-level", "info")
    p.initialize()
    _, msg, _ = p.request("tools/call", {"name": "alpha__sleep", "arguments": {"seconds": 0.01}}, timeout=15)
    assert msg["result"]["content"][0]["text"] == "slept 0.01", msg
    _, msg, _ = p.request("tools/call", {"name": "alpha__stats", "arguments": {}})
    assert json.loads(msg["result"]["content"][0]["text"]) == counted(1), msg
    assert len(pids_of(piddir, "alpha")) == 1, pids_of(piddir, "alpha")
    p.close_stdin()
    assert p.wait(10) == 0, p.stderr_text()[-3000:]
    assert OWN.search(p.stderr_text()) is None, p.stderr_text()[-3000:]
    assert "isolation" not in p.stderr_text(), p.stderr_text()[-3000:]


# --------------------------------------------------------------------------- config check


def test_check_accepts_isolation_session_without_a_warning(mcpd_bin, write_config, piddir, mcpd_env, assert_backends_dead):
    """`mcpd check -c CONFIG` with alpha `isolation: session` and beta `isolation: shared`: exit 0,
    no output line mentions isolation (no `accepted, but ... does not act on it`); `--json`: ok, no
    error, no warning mentioning isolation. `isolation: sessions` is refused (exit 1) with
    `must be shared or session`."""
    config = write_config({"servers": {"alpha": isolated("alpha", piddir),
                                       "beta": server_entry("beta", piddir, isolation="shared")}})
    proc = run_mcpd(mcpd_bin, "check", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 0, describe(proc)
    output = (proc.stdout + proc.stderr).replace(str(config), "CONFIG")
    assert [line for line in output.splitlines() if "isolation" in line] == [], describe(proc)
    assert "does not act on it" not in proc.stdout + proc.stderr, describe(proc)

    proc = run_mcpd(mcpd_bin, "check", "--json", "-c", str(config), env=mcpd_env)
    assert proc.returncode == 0, describe(proc)
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["errors"] == [], doc
    assert [w for w in doc["warnings"] if "isolation" in w.replace(str(config), "CONFIG")] == [], doc
    assert_backends_dead()

    bad = write_config({"servers": {"alpha": server_entry("alpha", piddir, isolation="sessions")}}, name="bad.yaml")
    proc = run_mcpd(mcpd_bin, "check", "-c", str(bad), env=mcpd_env)
    assert proc.returncode == 1, describe(proc)
    assert "must be shared or session" in proc.stderr, describe(proc)


# --------------------------------------------------------------------------- shutdown


def test_sigterm_with_own_processes_exits_0_and_leaves_none(serve, write_config, piddir, assert_backends_dead):
    """alpha `isolation: session`: raw session A has alpha__sleep 30 s in flight in its own process,
    session B (its GET stream open) has called alpha__echo in its own; both stay open. SIGTERM: mcpd
    exits 0 within 10 s, A's call is not left hanging, and every alpha process (template and both
    own ones) is gone within 5 s."""
    served = serve(write_config({"servers": {"alpha": isolated("alpha", piddir)}}))
    template = pids_of(piddir, "alpha")
    a, b = RawSession(served.port), RawSession(served.port)
    stream = served.stream(b.id)
    assert stream.status == 200, stream.headers
    assert b.call_text("alpha__echo", {"text": "b"}, timeout=15) == "b"
    outcome: dict[str, Any] = {}

    def long_call() -> None:
        try:
            outcome["a"] = a.request("tools/call", {"name": "alpha__sleep", "arguments": {"seconds": 30}}, timeout=40)
        except BaseException as exc:  # only whether it ended matters
            outcome["a"] = exc

    caller = threading.Thread(target=long_call, daemon=True)
    caller.start()
    wait_until(lambda: len(pids_of(piddir, "alpha") - template) == 2, 15,
               lambda: f"A's own alpha process did not start: {pids_of(piddir, 'alpha')} (template {template})")
    time.sleep(0.5)  # the sleep is under way in A's process
    assert "a" not in outcome, outcome
    own = pids_of(piddir, "alpha") - template
    assert all(pid_is_alive(pid) for pid in own), own
    assert served.stop() == 0, served.stderr_text()[-3000:]
    caller.join(10)
    assert not caller.is_alive(), "A's tools/call was still waiting 10 s after mcpd exited"
    dead = assert_backends_dead(expect_at_least=len(template) + 2)
    assert own <= set(dead), (own, dead)
    assert len(own_lines(served)) == 2, own_lines(served)
