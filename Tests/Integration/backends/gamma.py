"""Integration-test backend "gamma": an MCP stdio server with the whole non-tool surface.

Built on the SDK's lowlevel `Server` (the high-level MCPServer cannot paginate its lists).

Dual-era, like every SDK 2.x server: a process whose first request is `initialize` speaks the
handshake era (the negotiated version, e.g. 2025-11-25) for its whole life; one whose first request
carries the 2026-07-28 `_meta` envelope (typically `server/discover`) speaks the stateless era.
Once the era is known, a third line "<handshake|stateless> <version>" is appended to the pid file
($MCPD_TEST_PIDDIR/gamma-<pid>.pid: pid, script path, era).
Every list is paginated in pages of PAGE = 2, with gamma's own opaque cursors ("gamma:<kind>:<n>");
an unknown cursor is error -32602.

Capabilities: tools, prompts (listChanged), resources (subscribe, listChanged), completions, logging.

Resources (6, listed in this order):
  file:///gamma/a.txt            text "gamma file a" (title, description, mimeType, size, annotations, _meta)
  file:///gamma/b.txt            text "gamma file b"
  file:///gamma/pixel.png        a blob (1x1 PNG, base64)
  file:///gamma/tricky.txt       text TRICKY (non-ASCII, quotes, backslash, U+2028, an astral character)
  gamma://static/readme          markdown text, with icons
  https://example.com/gamma/q?a=1&b=%2F#frag   text (a URI with a query, an escape and a fragment)
  (plus what add_resource adds at run time, text "added <uri>")

Resource templates (4):
  gamma://notes/{id}
  gamma://users/{user}/files/{+path}
  gamma://search{?q,limit}
  file:///gamma/logs/{date}.log
  resources/read of a URI matching one returns one TextResourceContents (the requested uri,
  mimeType application/json) whose text is JSON {"template": <uriTemplate>, "variables": {...}}.
  An unknown URI is error -32002.

Prompts (4): greet(name, greeting?), plain(), multi(), review(language, code?)
  (plus what add_prompt adds at run time); prompts/get echoes the arguments in its messages.
  A missing required argument or an unknown prompt is error -32602.

completion/complete (values filtered by the argument's value as a prefix, with total and hasMore):
  ref/prompt greet, argument name:        alpha alpine amber beta bravo
  ref/prompt greet, argument greeting:    hello hey hi
  ref/prompt review, argument language:   perl php python swift
  ref/resource gamma://notes/{id}, id:    1 12 42 420
  ref/resource gamma://users/{user}/files/{+path}, user: alfred alice bob;
      path: "<user>/notes.txt" "<user>/todo.txt" with <user> from context.arguments (else "anon")
  anything else is error -32602.

resources/subscribe and resources/unsubscribe keep a set of subscribed URIs.
logging/setLevel sets the threshold for the log tool (default "debug": everything passes).

Stateless era (2026-07-28) differences, as the protocol wants them:
  - resources/(un)subscribe and logging/setLevel do not exist; subscriptions/listen does (the SDK's
    ListenHandler over an in-memory bus), so server/discover advertises listChanged and subscribe.
  - touch, add_prompt, add_resource publish their change on the listen streams (each stream gets what
    its filter asked for, tagged with its subscriptionId); touch's "sent" is whether an open listen
    stream has the uri in its resourceSubscriptions. No bare change notification is ever sent.
  - log passes when the call's own _meta "io.modelcontextprotocol/logLevel" opts in at or below the
    level (no opt-in: "filtered"), and the notifications/message rides that call.

Tools (listed in pages of 2 as well):
  echo(text)                  -> the text
  touch(uri)                  -> sends notifications/resources/updated for uri if it is subscribed;
                                 "touched" (structuredContent {"sent": true|false})
  log(level, message, logger?) -> sends notifications/message {level, data: message, logger?}
                                 unless level is below the set level; "logged" or "filtered"
  add_prompt(name)            -> adds a prompt, sends notifications/prompts/list_changed; "added"
  add_resource(uri)           -> adds a text resource, sends notifications/resources/list_changed; "added"
  ask_sample(prompt)          -> sampling/createMessage to the client with the prompt as the user
                                 message; the text of the answer
  ask_elicit(message)         -> elicitation/create (form mode, schema {name: string}); "accept: <content
                                 JSON, sort_keys>", "decline" or "cancel"
  ask_roots()                 -> roots/list; JSON list of the roots (as dumped by the SDK)
  client_caps()               -> JSON of the raw `capabilities` of the initialize request gamma received;
                                 stateless era: of the `clientCapabilities` in this request's envelope
  slow(steps)                 -> one progress notification per step, then "done <steps>"
  era()                       -> the protocol version the call runs on ("2026-07-28" in a stateless
                                 process, the negotiated one in a handshake process), structuredContent
                                 {"era": "handshake"|"stateless", "protocolVersion": v}.
  The ask_* tools answer "error: <message>" (with structuredContent {"code": n, "message": m}) when
  the client answers with an error.

  How the ask_* tools ask, per era:
  - handshake era: a server-to-client request (sampling/createMessage, elicitation/create, roots/list)
    related to the tools/call, as above.
  - stateless era (MRTR, 2026-07-28): the first tools/call returns an input-required result,
      {"resultType": "input_required", "inputRequests": {KEY: {"method": ..., "params": ...}},
       "requestState": <sealed token>}
    with KEY "sampling", "elicitation" or "roots"; the client retries the same tools/call (new id) with
    "inputResponses": {KEY: <CreateMessageResult | ElicitResult | ListRootsResult>} and the requestState
    echoed verbatim, and gets the final result, in the same formats as above. The requestState is sealed
    by the SDK's RequestStateBoundary (AES-GCM, ephemeral per-process key, bound to tools/call + tool name
    + arguments, 10-minute TTL): a mangled, expired or foreign one is error -32602 "Invalid or expired
    requestState". A retry without gamma's requestState, or without inputResponses[KEY], is asked again.
    If the request's envelope did not declare the capability (`sampling`; `elicitation` with form mode,
    a bare {} counting as form; `roots`), nothing is asked: the result is "error: ..." with code -32021
    (MISSING_REQUIRED_CLIENT_CAPABILITY). An inputResponses[KEY] of the wrong shape is "error: ..." -32602.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args
from urllib.parse import parse_qs

import anyio
import mcp_types as types
from _common import record_pid, say
from mcp.server.connection import allowed_log_levels
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.server.stdio import stdio_server
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
)
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

PAGE = 2
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
TRICKY = 'h\u00e9llo "q" \\ \u2028 \U0001f680'
RESOURCE_NOT_FOUND = -32002
LEVELS: tuple[str, ...] = get_args(types.LoggingLevel)  # severity-ascending (RFC 5424 order)

STATE: dict[str, Any] = {
    "level": "debug",
    "subscribed": set(),
    "init_capabilities": None,
    "era": None,  # (era, version) once the first request decided it
}

# --------------------------------------------------------------------------- resources

RESOURCES: list[types.Resource] = [
    types.Resource(
        uri="file:///gamma/a.txt",
        name="a.txt",
        title="Gamma file A",
        description="The first gamma file.",
        mime_type="text/plain",
        size=12,
        annotations=types.Annotations(audience=["user"], priority=0.5),
        _meta={"example.com/origin": "gamma"},
    ),
    types.Resource(uri="file:///gamma/b.txt", name="b.txt", mime_type="text/plain"),
    types.Resource(uri="file:///gamma/pixel.png", name="pixel.png", mime_type="image/png", size=70),
    types.Resource(uri="file:///gamma/tricky.txt", name="tricky.txt", description=TRICKY, mime_type="text/plain"),
    types.Resource(
        uri="gamma://static/readme",
        name="readme",
        title="Read me",
        mime_type="text/markdown",
        icons=[types.Icon(src="https://example.com/icon.png", mime_type="image/png", sizes=["16x16"])],
    ),
    types.Resource(uri="https://example.com/gamma/q?a=1&b=%2F#frag", name="query", mime_type="text/plain"),
]


def _text_contents(uri: str, text: str, mime_type: str = "text/plain", **extra: Any) -> types.TextResourceContents:
    return types.TextResourceContents(uri=uri, mime_type=mime_type, text=text, **extra)


CONTENTS: dict[str, types.TextResourceContents | types.BlobResourceContents] = {
    "file:///gamma/a.txt": _text_contents("file:///gamma/a.txt", "gamma file a", _meta={"rev": 1}),
    "file:///gamma/b.txt": _text_contents("file:///gamma/b.txt", "gamma file b"),
    "file:///gamma/pixel.png": types.BlobResourceContents(
        uri="file:///gamma/pixel.png", mime_type="image/png", blob=PNG_B64
    ),
    "file:///gamma/tricky.txt": _text_contents("file:///gamma/tricky.txt", TRICKY),
    "gamma://static/readme": _text_contents("gamma://static/readme", "# Gamma\n\nA *test* backend.\n", "text/markdown"),
    "https://example.com/gamma/q?a=1&b=%2F#frag": _text_contents(
        "https://example.com/gamma/q?a=1&b=%2F#frag", "query resource"
    ),
}

TEMPLATES: list[types.ResourceTemplate] = [
    types.ResourceTemplate(
        uri_template="gamma://notes/{id}", name="note", title="Note by id", mime_type="application/json"
    ),
    types.ResourceTemplate(
        uri_template="gamma://users/{user}/files/{+path}",
        name="user-file",
        description="A file of a user; the path may contain slashes.",
        mime_type="application/json",
    ),
    types.ResourceTemplate(uri_template="gamma://search{?q,limit}", name="search", mime_type="application/json"),
    types.ResourceTemplate(
        uri_template="file:///gamma/logs/{date}.log",
        name="daily-log",
        mime_type="application/json",
        annotations=types.Annotations(priority=0.1),
        _meta={"example.com/kind": "log"},
    ),
]


def _template_regex(template: str) -> tuple[re.Pattern[str], list[str]]:
    """A regex for the RFC 6570 subset used above: {var}, {+var} and a trailing {?a,b}."""
    pattern, query_vars, pos = "", [], 0
    for m in re.finditer(r"\{([+?]?)([^}]+)\}", template):
        pattern += re.escape(template[pos : m.start()])
        op, names = m.group(1), m.group(2).split(",")
        if op == "?":
            query_vars = names
            pattern += r"(?:\?(?P<_query>[^#]*))?"
        elif op == "+":
            pattern += f"(?P<{names[0]}>[^?#]+)"
        else:
            pattern += f"(?P<{names[0]}>[^/?#]+)"
        pos = m.end()
    pattern += re.escape(template[pos:])
    return re.compile(pattern + r"\Z"), query_vars


def match_template(uri: str) -> tuple[str, dict[str, str]] | None:
    for tpl in TEMPLATES:
        regex, query_vars = _template_regex(tpl.uri_template)
        m = regex.match(uri)
        if m is None:
            continue
        variables = {k: v for k, v in m.groupdict().items() if k != "_query" and v is not None}
        query = parse_qs(m.groupdict().get("_query") or "")
        for name in query_vars:
            if name in query:
                variables[name] = query[name][0]
        return tpl.uri_template, variables
    return None


# --------------------------------------------------------------------------- prompts


def _arg(name: str, description: str, required: bool) -> types.PromptArgument:
    return types.PromptArgument(name=name, description=description, required=required)


PROMPTS: list[types.Prompt] = [
    types.Prompt(
        name="greet",
        title="Greeting",
        description="Greet someone by name.",
        arguments=[_arg("name", "Who to greet", True), _arg("greeting", "The greeting word", False)],
        _meta={"example.com/origin": "gamma"},
    ),
    types.Prompt(name="plain", description="A prompt without arguments, with tricky text."),
    types.Prompt(name="multi", description="Several messages and content types."),
    types.Prompt(
        name="review",
        description="Review some code.",
        arguments=[_arg("language", "Programming language", True), _arg("code", "The code", False)],
    ),
]
ADDED_PROMPTS: set[str] = set()


def _text(role: str, text: str, **extra: Any) -> types.PromptMessage:
    return types.PromptMessage(role=role, content=types.TextContent(text=text, **extra))


def render_prompt(name: str, args: dict[str, str]) -> types.GetPromptResult:
    prompt = next((p for p in PROMPTS if p.name == name), None)
    if prompt is None:
        raise MCPError(types.INVALID_PARAMS, f"unknown prompt: {name}")
    for a in prompt.arguments or []:
        if a.required and a.name not in args:
            raise MCPError(types.INVALID_PARAMS, f"prompt {name} needs argument {a.name}")
    if name == "greet":
        return types.GetPromptResult(
            description=f"greeting for {args['name']}",
            messages=[_text("user", f"{args.get('greeting', 'Hello')}, {args['name']}!")],
        )
    if name == "plain":
        return types.GetPromptResult(messages=[_text("user", TRICKY)])
    if name == "multi":
        return types.GetPromptResult(
            description="multi",
            messages=[
                _text("user", "look at this"),
                types.PromptMessage(
                    role="user",
                    content=types.EmbeddedResource(resource=CONTENTS["file:///gamma/a.txt"]),
                ),
                types.PromptMessage(role="user", content=types.ImageContent(data=PNG_B64, mime_type="image/png")),
                _text("assistant", "seen", annotations=types.Annotations(audience=["assistant"], priority=1.0)),
            ],
        )
    if name == "review":
        return types.GetPromptResult(
            messages=[_text("user", f"Review this {args['language']} code:\n{args.get('code', '<none>')}")]
        )
    return types.GetPromptResult(  # added at run time
        description=f"added at run time: {name}",
        messages=[_text("user", f"late prompt {name} with {json.dumps(args, sort_keys=True)}")],
    )


# --------------------------------------------------------------------------- completions

COMPLETIONS: dict[tuple[str, str, str], list[str]] = {
    ("ref/prompt", "greet", "name"): ["alpha", "alpine", "amber", "beta", "bravo"],
    ("ref/prompt", "greet", "greeting"): ["hello", "hey", "hi"],
    ("ref/prompt", "review", "language"): ["perl", "php", "python", "swift"],
    ("ref/resource", "gamma://notes/{id}", "id"): ["1", "12", "42", "420"],
    ("ref/resource", "gamma://users/{user}/files/{+path}", "user"): ["alfred", "alice", "bob"],
    ("ref/resource", "gamma://users/{user}/files/{+path}", "path"): ["{user}/notes.txt", "{user}/todo.txt"],
}

# --------------------------------------------------------------------------- tools


def _tool(name: str, description: str, props: dict[str, Any] | None = None, required: Sequence[str] = ()) -> types.Tool:
    schema: dict[str, Any] = {"type": "object", "properties": props or {}}
    if required:
        schema["required"] = list(required)
    return types.Tool(name=name, description=description, input_schema=schema)


STR = {"type": "string"}
TOOLS: list[types.Tool] = [
    _tool("echo", "Echo the text back unchanged.", {"text": STR}, ["text"]),
    _tool("touch", "Send notifications/resources/updated for a subscribed uri.", {"uri": STR}, ["uri"]),
    _tool(
        "log",
        "Send a notifications/message (if the level passes logging/setLevel).",
        {"level": {"type": "string", "enum": list(LEVELS)}, "message": STR, "logger": STR},
        ["level", "message"],
    ),
    _tool("add_prompt", "Add a prompt and send notifications/prompts/list_changed.", {"name": STR}, ["name"]),
    _tool("add_resource", "Add a resource and send notifications/resources/list_changed.", {"uri": STR}, ["uri"]),
    _tool("ask_sample", "Ask the client for a sampling/createMessage.", {"prompt": STR}, ["prompt"]),
    _tool("ask_elicit", "Ask the client for an elicitation/create (form mode).", {"message": STR}, ["message"]),
    _tool("ask_roots", "Ask the client for roots/list."),
    _tool("client_caps", "The client capabilities gamma was initialized with, as JSON."),
    _tool("slow", "Send one progress notification per step, then return.", {"steps": {"type": "integer"}}, ["steps"]),
    _tool("era", "The protocol version this call runs on (2026-07-28 when stateless, else the negotiated one)."),
]


def text_result(text: str, structured: dict[str, Any] | None = None) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=structured)


def error_result(exc: Exception) -> types.CallToolResult:
    if isinstance(exc, MCPError):
        return text_result(f"error: {exc.message}", {"code": exc.code, "message": exc.message})
    return text_result(f"error: {exc}", {"code": None, "message": str(exc)})


def related(ctx: Any) -> ServerMessageMetadata:
    return ServerMessageMetadata(related_request_id=ctx.request_id)


def is_stateless(ctx: Any) -> bool:
    """True in a process serving the 2026-07-28 era (every request carries its own envelope)."""
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


# ----------------------------------------------------- sampling, elicitation, roots in both eras


def sample_request(args: Mapping[str, Any]) -> types.CreateMessageRequest:
    return types.CreateMessageRequest(
        params=types.CreateMessageRequestParams(
            messages=[types.SamplingMessage(role="user", content=types.TextContent(text=str(args["prompt"])))],
            max_tokens=64,
        )
    )


def sample_answer(answer: types.CreateMessageResult) -> types.CallToolResult:
    content = answer.content
    if isinstance(content, types.TextContent):
        return text_result(content.text)
    return text_result(json.dumps(content.model_dump(by_alias=True, mode="json", exclude_none=True)))


def elicit_request(args: Mapping[str, Any]) -> types.ElicitRequest:
    return types.ElicitRequest(
        params=types.ElicitRequestFormParams(
            message=str(args["message"]),
            requested_schema={
                "type": "object",
                "properties": {"name": {"type": "string", "description": "Your name"}},
                "required": ["name"],
            },
        )
    )


def elicit_answer(answer: types.ElicitResult) -> types.CallToolResult:
    if answer.action == "accept":
        return text_result("accept: " + json.dumps(answer.content, sort_keys=True))
    return text_result(answer.action)


def roots_answer(answer: types.ListRootsResult) -> types.CallToolResult:
    roots = [r.model_dump(by_alias=True, mode="json", exclude_none=True) for r in answer.roots]
    return text_result(json.dumps(roots, sort_keys=True))


def declares_sampling(caps: types.ClientCapabilities) -> bool:
    return caps.sampling is not None


def declares_form_elicitation(caps: types.ClientCapabilities) -> bool:
    # As the SDK's own resolvers (mcp/server/mcpserver/resolve.py `_require_capability`): a bare
    # `elicitation: {}` counts as form support, url-only does not.
    e = caps.elicitation
    return e is not None and (e.form is not None or e.url is None)


def declares_roots(caps: types.ClientCapabilities) -> bool:
    return caps.roots is not None


@dataclass(frozen=True)
class Ask:
    key: str  # the inputRequests/inputResponses key (stateless era)
    capability: str  # for the -32021 message
    request: Callable[[Mapping[str, Any]], types.InputRequest]
    result_type: type[Any]
    declared: Callable[[types.ClientCapabilities], bool]
    answer: Callable[[Any], types.CallToolResult]


ASKS: dict[str, Ask] = {
    "ask_sample": Ask(
        "sampling", "sampling", sample_request, types.CreateMessageResult, declares_sampling, sample_answer
    ),
    "ask_elicit": Ask(
        "elicitation",
        "elicitation (form mode)",
        elicit_request,
        types.ElicitResult,
        declares_form_elicitation,
        elicit_answer,
    ),
    "ask_roots": Ask(
        "roots", "roots", lambda _: types.ListRootsRequest(), types.ListRootsResult, declares_roots, roots_answer
    ),
}


async def ask(
    ctx: Any, params: types.CallToolRequestParams, spec: Ask
) -> types.CallToolResult | types.InputRequiredResult:
    args = params.arguments or {}
    request = spec.request(args)
    if not is_stateless(ctx):
        # Handshake era: a server-to-client request while the tools/call is in flight.
        try:
            answer = await ctx.session.send_request(request, spec.result_type, metadata=related(ctx))
        except Exception as exc:
            return error_result(exc)
        return spec.answer(answer)

    # Stateless era (MRTR): never ask for what this request's envelope did not declare.
    caps = ctx.session.client_capabilities
    if caps is None or not spec.declared(caps):
        return error_result(
            MCPError(
                types.MISSING_REQUIRED_CLIENT_CAPABILITY,
                f"the client did not declare the {spec.capability} capability",
            )
        )
    # The requestState gamma mints (plaintext here: RequestStateBoundary seals it on the way out and
    # verifies and unseals the client's echo before this handler runs).
    state = f"gamma:{params.name}:{spec.key}"
    responses = params.input_responses or {}
    if spec.key in responses:
        if params.request_state != state:
            say(f"gamma: {params.name}: inputResponses without gamma's requestState; asking again")
        else:
            raw = ((ctx.params or {}).get("inputResponses") or {}).get(spec.key)
            try:
                answer = spec.result_type.model_validate(raw, by_name=False)
            except ValidationError as exc:
                kind, errors = spec.result_type.__name__, exc.error_count()
                message = f"inputResponses[{spec.key!r}] does not parse as {kind} ({errors} validation errors)"
                return error_result(MCPError(types.INVALID_PARAMS, message))
            return spec.answer(answer)
    return types.InputRequiredResult(input_requests={spec.key: request}, request_state=state)


async def call_tool(
    ctx: Any, params: types.CallToolRequestParams
) -> types.CallToolResult | types.InputRequiredResult:
    args = params.arguments or {}
    session = ctx.session
    match params.name:
        case "echo":
            return text_result(str(args["text"]))
        case "touch":
            uri = str(args["uri"])
            if is_stateless(ctx):  # subscribed = named in the resourceSubscriptions of an open listen stream
                sent = LISTENED_URIS[uri] > 0
                await BUS.publish(ResourceUpdated(uri=uri))
                return text_result("touched", {"sent": sent})
            sent = uri in STATE["subscribed"]
            if sent:
                await session.send_notification(
                    types.ResourceUpdatedNotification(params=types.ResourceUpdatedNotificationParams(uri=uri))
                )
            return text_result("touched", {"sent": sent})
        case "log":
            level = args["level"]
            notification = types.LoggingMessageNotification(
                params=types.LoggingMessageNotificationParams(
                    level=level, data=args["message"], logger=args.get("logger")
                )
            )
            if is_stateless(ctx):  # the request's own _meta logLevel opt-in; on the request's stream
                if level not in allowed_log_levels(ctx.protocol_version, ctx.meta):
                    return text_result("filtered")
                await session.send_notification(notification, related_request_id=ctx.request_id)
                return text_result("logged")
            if LEVELS.index(level) < LEVELS.index(STATE["level"]):
                return text_result("filtered")
            await session.send_notification(notification)
            return text_result("logged")
        case "add_prompt":
            name = str(args["name"])
            if name not in ADDED_PROMPTS and all(p.name != name for p in PROMPTS):
                ADDED_PROMPTS.add(name)
                PROMPTS.append(types.Prompt(name=name, description=f"added at run time: {name}"))
            if is_stateless(ctx):
                await BUS.publish(PromptsListChanged())
            else:
                await session.send_notification(types.PromptListChangedNotification())
            return text_result("added")
        case "add_resource":
            uri = str(args["uri"])
            if uri not in CONTENTS:
                RESOURCES.append(types.Resource(uri=uri, name=uri.rsplit("/", 1)[-1] or uri, mime_type="text/plain"))
                CONTENTS[uri] = types.TextResourceContents(uri=uri, mime_type="text/plain", text=f"added {uri}")
            if is_stateless(ctx):
                await BUS.publish(ResourcesListChanged())
            else:
                await session.send_notification(types.ResourceListChangedNotification())
            return text_result("added")
        case "ask_sample" | "ask_elicit" | "ask_roots":
            return await ask(ctx, params, ASKS[params.name])
        case "client_caps":
            if is_stateless(ctx):
                meta = (ctx.params or {}).get("_meta") or {}
                return text_result(json.dumps(meta.get(types.CLIENT_CAPABILITIES_META_KEY), sort_keys=True))
            return text_result(json.dumps(STATE["init_capabilities"], sort_keys=True))
        case "era":
            era = "stateless" if is_stateless(ctx) else "handshake"
            return text_result(ctx.protocol_version, {"era": era, "protocolVersion": ctx.protocol_version})
        case "slow":
            steps = int(args["steps"])
            for i in range(1, steps + 1):
                await session.report_progress(i, steps, f"step {i}/{steps}")
                await anyio.sleep(0.01)
            return text_result(f"done {steps}")
    raise MCPError(types.INVALID_PARAMS, f"unknown tool: {params.name}")


# --------------------------------------------------------------------------- handlers


def paginate(items: list[Any], params: types.PaginatedRequestParams | None, kind: str) -> tuple[list[Any], str | None]:
    cursor = params.cursor if params is not None else None
    start = 0
    if cursor is not None:
        prefix = f"gamma:{kind}:"
        rest = cursor[len(prefix) :] if cursor.startswith(prefix) else ""
        if not rest.isdigit() or int(rest) > len(items):
            raise MCPError(types.INVALID_PARAMS, f"invalid cursor for {kind}: {cursor!r}")
        start = int(rest)
    end = start + PAGE
    return items[start:end], (f"gamma:{kind}:{end}" if end < len(items) else None)


async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    page, cursor = paginate(TOOLS, params, "tools")
    return types.ListToolsResult(tools=page, next_cursor=cursor)


async def list_resources(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
    page, cursor = paginate(RESOURCES, params, "resources")
    return types.ListResourcesResult(resources=page, next_cursor=cursor)


async def list_templates(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourceTemplatesResult:
    page, cursor = paginate(TEMPLATES, params, "templates")
    return types.ListResourceTemplatesResult(resource_templates=page, next_cursor=cursor)


async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    uri = str(params.uri)
    if uri in CONTENTS:
        return types.ReadResourceResult(contents=[CONTENTS[uri]])
    matched = match_template(uri)
    if matched is None:
        raise MCPError(RESOURCE_NOT_FOUND, f"resource not found: {uri}", {"uri": uri})
    template, variables = matched
    text = json.dumps({"template": template, "variables": variables}, sort_keys=True)
    return types.ReadResourceResult(
        contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=text)]
    )


async def subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
    STATE["subscribed"].add(str(params.uri))
    return types.EmptyResult()


async def unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    STATE["subscribed"].discard(str(params.uri))
    return types.EmptyResult()


async def list_prompts(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
    page, cursor = paginate(PROMPTS, params, "prompts")
    return types.ListPromptsResult(prompts=page, next_cursor=cursor)


async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
    return render_prompt(params.name, dict(params.arguments or {}))


async def complete(ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
    ref = params.ref
    key = ref.name if isinstance(ref, types.PromptReference) else ref.uri
    candidates = COMPLETIONS.get((ref.type, key, params.argument.name))
    if candidates is None:
        raise MCPError(types.INVALID_PARAMS, f"nothing to complete for {ref.type} {key} {params.argument.name}")
    user = ((params.context.arguments if params.context else None) or {}).get("user", "anon")
    values = [c.replace("{user}", user) for c in candidates]
    values = [v for v in values if v.startswith(params.argument.value)]
    return types.CompleteResult(completion=types.Completion(values=values, total=len(values), has_more=False))


# Stateless era: change notifications travel only on subscriptions/listen streams (the SDK drops bare
# ones), so touch/add_prompt/add_resource publish events on this bus and `listen` serves the streams.
BUS = InMemorySubscriptionBus()
LISTEN = ListenHandler(BUS)
LISTENED_URIS: Counter[str] = Counter()  # resourceSubscriptions of the open listen streams


async def listen(ctx: Any, params: types.SubscriptionsListenRequestParams) -> types.SubscriptionsListenResult:
    uris = list(params.notifications.resource_subscriptions or [])
    LISTENED_URIS.update(uris)
    try:
        return await LISTEN(ctx, params)
    finally:
        LISTENED_URIS.subtract(uris)


async def set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
    STATE["level"] = params.level
    return types.EmptyResult()


async def record_initialize(ctx: Any, call_next: Any) -> Any:
    """Middleware: remember the raw capabilities of the client's initialize request."""
    if ctx.method == "initialize" and isinstance(ctx.params, Mapping):
        STATE["init_capabilities"] = ctx.params.get("capabilities")
    return await call_next(ctx)


def record_era(era: str, version: str) -> None:
    """Remember the era once, and append it to the pid file _common.record_pid wrote."""
    if STATE["era"] is not None:
        return
    STATE["era"] = (era, version)
    piddir = os.environ.get("MCPD_TEST_PIDDIR")
    if piddir:
        try:
            with open(os.path.join(piddir, f"gamma-{os.getpid()}.pid"), "a") as f:
                f.write(f"{era} {version}\n")
        except OSError as exc:
            say(f"gamma: cannot record the era in the pid file: {exc}")
    say(f"gamma: {era} era, protocol {version}")


async def observe_era(ctx: Any, call_next: Any) -> Any:
    """Middleware: note the era the process ends up in (decided by its first request, for good)."""
    if STATE["era"] is not None or ctx.request_id is None:
        return await call_next(ctx)
    if is_stateless(ctx):
        record_era("stateless", ctx.protocol_version)
        return await call_next(ctx)
    result = await call_next(ctx)
    if ctx.method == "initialize" and isinstance(result, Mapping) and isinstance(result.get("protocolVersion"), str):
        record_era("handshake", result["protocolVersion"])
    return result


# Seals the requestState of input-required results and verifies/unseals the client's echo (what
# MCPServer installs by default; a lowlevel server appends it itself). Applied in the stateless era
# only, so a handshake-era process behaves exactly as before.
STATE_BOUNDARY = RequestStateBoundary(RequestStateSecurity.ephemeral(), default_audience="gamma")


async def stateless_request_state(ctx: Any, call_next: Any) -> Any:
    if is_stateless(ctx):
        return await STATE_BOUNDARY(ctx, call_next)
    return await call_next(ctx)


with warnings.catch_warnings():  # logging is deprecated as of protocol 2026-07-28; still served here
    warnings.simplefilter("ignore")
    server: Server[Any] = Server(
        "gamma",
        version="1.0.0",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe,
        on_unsubscribe_resource=unsubscribe,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_completion=complete,
        on_set_logging_level=set_level,
        on_subscriptions_listen=listen,  # 2026-07-28 only; a handshake-era process answers it -32601 as before
    )
server.middleware.extend([observe_era, record_initialize, stateless_request_state])


async def main() -> None:
    options = server.create_initialization_options(NotificationOptions(prompts_changed=True, resources_changed=True))
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, options)


if __name__ == "__main__":
    record_pid("gamma")
    say("gamma backend ready")
    anyio.run(main)
