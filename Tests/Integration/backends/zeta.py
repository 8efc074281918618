"""Integration-test backend "zeta": an MCP stdio server that speaks ONLY the stateless era, 2026-07-28.

Written without the SDK's server classes: plain JSON-RPC lines on stdin/stdout, on asyncio. Each line zeta
writes to stdout is first copied to stderr as "zeta> <the exact line>", and each line it reads is copied
to stderr as "zeta< <the exact line>" (mcpd relays both as "[<server>] zeta> ..."), so a test can compare
what reaches the client with what zeta sent and see what mcpd sent zeta, byte for byte.

Envelope. Every request except `initialize` and `server/discover` must carry, in params._meta,
"io.modelcontextprotocol/protocolVersion" (exactly "2026-07-28") and
"io.modelcontextprotocol/clientCapabilities" (an object). A missing one (or a clientCapabilities that is
not an object) is error -32602 whose message names the missing key; another version is -32022
{"supported":["2026-07-28"],"requested":<it>}. An unknown method is -32601 before the envelope is checked.

initialize       error -32022 "Unsupported protocol version",
                 data {"supported":["2026-07-28"],"requested":<params.protocolVersion>}.
                 notifications/initialized is ignored.
server/discover  (envelope optional) {"supportedVersions":["2026-07-28"],"capabilities":{"tools":{"listChanged":true},
                 "prompts":{"listChanged":true},"resources":{"subscribe":true,"listChanged":true},"completions":{}},
                 "_meta":{"io.modelcontextprotocol/serverInfo":{"name":"zeta","version":"1.0.0"}},"resultType":"complete"}
ping, logging/setLevel, resources/subscribe, resources/unsubscribe, and anything else unknown: -32601.

Every result carries "resultType":"complete" (the lists also "ttlMs":0,"cacheScope":"private"), except
input-required results ("resultType":"input_required").

Lists, 2 items a page, nextCursor "zeta:<offset>" while more remain; any other cursor is -32602:
tools/list       echo, confirm, ask_model, two_step, add_tool, touch, caps, then extra_1, extra_2, ... (add_tool)
prompts/list     greet(name, required), farewell(), status()
resources/list   zeta://doc/1, zeta://doc/2, zeta://doc/3 (text/plain, name "doc <i>")
resources/templates/list   zeta://item/{id}

tools/call (an unknown tool is -32602; missing string arguments are -32602):
  echo(text)         "zeta: <text>"
  confirm(question)  needs elicitation. Without the "elicitation" client capability in the envelope: isError
                     result "elicitation not available". Without inputResponses: input-required
                       {"resultType":"input_required","inputRequests":{"q1":{"method":"elicitation/create",
                        "params":{"mode":"form","message":<question>,"requestedSchema":{"type":"object",
                        "properties":{"ok":{"type":"boolean"}},"required":["ok"]}}}},"requestState":"zeta-state-<n>"}
                     (n counts every requestState this process issues, from 1).
                     The retry carries params.inputResponses {"q1": ElicitResult} and the requestState: it must
                     be one issued for this tool and not yet used (each is good once), else -32602; a missing
                     inputResponses key is -32602. Answer: action accept -> "confirmed: <json.dumps(content)>",
                     decline -> "declined", cancel -> "cancelled".
  ask_model(prompt)  needs sampling ("sampling not available" without the capability); input request key "m1":
                     sampling/createMessage {"messages":[{"role":"user","content":{"type":"text","text":<prompt>}}],
                     "maxTokens":50}; answer "model said: <text of the CreateMessageResult content>".
  two_step()         needs elicitation. Round 1 asks key "a" (message "two_step a"); the retry with a's answer gets a
                     second input-required result asking key "b" (message "two_step b") with a new requestState;
                     the retry with b's answer gets "both: <json.dumps(a content)> <json.dumps(b content)>".
                     Both schemas: {"type":"object","properties":{"v":{"type":"string"}}}.
  add_tool()         adds tool extra_<n> (n = 1, 2, ...; calling it answers "extra_<n>"), sends
                     notifications/tools/list_changed on every open listen stream that asked for toolsListChanged
                     (before the answer), and answers "added extra_<n>".
  touch(uri)         sends notifications/resources/updated {uri} on every open listen stream whose
                     resourceSubscriptions contains uri (before the answer); answers "touched <uri>" with
                     structuredContent {"streams": <how many got it>}; logs "zeta: touch <uri> -> <k> streams".
  caps()             the JSON (sort_keys) of the clientCapabilities in this request's envelope.
prompts/get      greet {name} -> one user message "Hello, <name>" (no name: -32602); farewell -> "Goodbye";
                 status -> "All good"; unknown -32602.
completion/complete  ref/prompt greet, argument name: those of ["zed","zoe","zara"] starting with the value;
                 ref/resource zeta://item/{id}, argument id: those of ["1","7","42"]; anything else no values.
                 {"completion":{"values":[...],"total":n,"hasMore":false}}.
resources/read   zeta://doc/<i> (1..3) -> text "doc <i>"; zeta://item/<id> -> text "item <id>"
                 (contents [{"uri","mimeType":"text/plain","text"}]); anything else -32602.

subscriptions/listen {notifications:{toolsListChanged?, promptsListChanged?, resourcesListChanged?,
                 resourceSubscriptions?:[uri]}}: sends notifications/subscriptions/acknowledged
                 {"_meta":{"io.modelcontextprotocol/subscriptionId":<listen id>},"notifications":<what was honoured:
                 the true flags and a non-empty resourceSubscriptions>} and never answers: the stream stays open
                 until notifications/cancelled {requestId: that id}. Every notification on a stream carries
                 params._meta["io.modelcontextprotocol/subscriptionId"] = the listen id. Logs to stderr
                 "zeta: listen <json id> <json of the honoured filter>" when one opens and
                 "zeta: listen <json id> closed" when it is cancelled.
notifications/cancelled {requestId}: ends that listen stream (unanswered).
Responses (zeta sends no requests) are ignored. Unparseable line: -32700 with id null. stdin EOF: exit 0.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from _common import say, serve_lines

VERSION = "2026-07-28"
PAGE = 2
PV_KEY = "io.modelcontextprotocol/protocolVersion"
CAPS_KEY = "io.modelcontextprotocol/clientCapabilities"
SUB_KEY = "io.modelcontextprotocol/subscriptionId"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"

CAPABILITIES = {
    "tools": {"listChanged": True},
    "prompts": {"listChanged": True},
    "resources": {"subscribe": True, "listChanged": True},
    "completions": {},
}
STR = {"type": "string"}


def _tool(name: str, description: str, props: dict[str, Any] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props or {}}
    if props:
        schema["required"] = list(props)
    return {"name": name, "description": description, "inputSchema": schema}


BASE_TOOLS = [
    _tool("echo", "Answer 'zeta: <text>'.", {"text": STR}),
    _tool("confirm", "Ask the user a yes/no question (elicitation).", {"question": STR}),
    _tool("ask_model", "Ask the client's model (sampling).", {"prompt": STR}),
    _tool("two_step", "Ask the user twice, in two rounds."),
    _tool("add_tool", "Add a tool extra_<n> and say the tool list changed."),
    _tool("touch", "Say a resource was updated.", {"uri": STR}),
    _tool("caps", "The client capabilities of this request's envelope, as JSON."),
]
PROMPTS = [
    {"name": "greet", "description": "Greet someone", "arguments": [{"name": "name", "description": "Who", "required": True}]},
    {"name": "farewell", "description": "Say goodbye"},
    {"name": "status", "description": "How things are"},
]
DOCS = [
    {"uri": f"zeta://doc/{i}", "name": f"doc {i}", "mimeType": "text/plain"} for i in (1, 2, 3)
]
TEMPLATES = [{"uriTemplate": "zeta://item/{id}", "name": "item", "mimeType": "text/plain"}]
NAME_VALUES = ["zed", "zoe", "zara"]
ITEM_IDS = ["1", "7", "42"]
FORM_OK = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
FORM_V = {"type": "object", "properties": {"v": {"type": "string"}}}
NO_ANSWER = object()


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def send(message: dict[str, Any]) -> None:
    line = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    say("zeta> " + line)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def complete(result: dict[str, Any]) -> dict[str, Any]:
    return {**result, "resultType": "complete"}


def text_result(text: str, *, is_error: bool = False, structured: Any = None) -> dict[str, Any]:
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": is_error}
    if structured is not None:
        result["structuredContent"] = structured
    return complete(result)


def paginate(items: list[dict[str, Any]], attr: str, params: dict[str, Any]) -> dict[str, Any]:
    cursor = params.get("cursor")
    offset = 0
    if cursor is not None:
        prefix = "zeta:"
        if not (isinstance(cursor, str) and cursor.startswith(prefix) and cursor[len(prefix):].isdigit()):
            raise RpcError(-32602, f"unknown cursor: {cursor!r}")
        offset = int(cursor[len(prefix):])
        if offset > len(items):
            raise RpcError(-32602, f"unknown cursor: {cursor!r}")
    result: dict[str, Any] = {attr: items[offset : offset + PAGE]}
    if offset + PAGE < len(items):
        result["nextCursor"] = f"zeta:{offset + PAGE}"
    result.update(resultType="complete", ttlMs=0, cacheScope="private")
    return result


def string_arg(arguments: dict[str, Any], name: str, tool: str) -> str:
    value = arguments.get(name)
    if not isinstance(value, str):
        raise RpcError(-32602, f"{tool}: argument {name!r} must be a string")
    return value


def sampled_text(answer: Any) -> str:
    content = answer.get("content") if isinstance(answer, dict) else None
    if isinstance(content, list):
        content = content[0] if content else None
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        return content["text"]
    raise RpcError(-32602, f"ask_model: not a CreateMessageResult with text content: {answer!r}")


class Listen:
    def __init__(self, ident: Any, honoured: dict[str, Any]) -> None:
        self.ident = ident
        self.honoured = honoured

    def notify(self, method: str, params: dict[str, Any]) -> None:
        send({"jsonrpc": "2.0", "method": method, "params": {**params, "_meta": {SUB_KEY: self.ident}}})


class Zeta:
    def __init__(self) -> None:
        self.extra: list[str] = []
        self.state_counter = 0
        self.states: dict[str, dict[str, Any]] = {}  # requestState -> what it continues (good once)
        self.listens: dict[str, Listen] = {}  # json.dumps(id) -> stream

    # ------------------------------------------------------------------ dispatch

    def on_line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return
        say("zeta< " + text)
        try:
            msg = json.loads(text)
        except ValueError:
            send({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
            return  # a response (zeta sends no requests) or junk
        method = msg["method"]
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        if "id" not in msg:
            self.on_notification(method, params)
            return
        ident = msg["id"]
        try:
            handler = getattr(self, "m_" + method.replace("/", "_"), None)
            if handler is None:
                raise RpcError(-32601, f"method not found: {method}")
            if method not in ("initialize", "server/discover"):
                self.check_envelope(params)
            result = handler(ident, params)
        except RpcError as exc:
            error: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.data is not None:
                error["data"] = exc.data
            send({"jsonrpc": "2.0", "id": ident, "error": error})
            return
        except Exception as exc:  # noqa: BLE001 - a bug here must still answer
            send({"jsonrpc": "2.0", "id": ident, "error": {"code": -32603, "message": f"{type(exc).__name__}: {exc}"}})
            return
        if result is not NO_ANSWER:
            send({"jsonrpc": "2.0", "id": ident, "result": result})

    def on_notification(self, method: str, params: dict[str, Any]) -> None:
        if method == "notifications/cancelled":
            key = json.dumps(params.get("requestId"))
            stream = self.listens.pop(key, None)
            if stream is not None:
                say(f"zeta: listen {key} closed")

    @staticmethod
    def check_envelope(params: dict[str, Any]) -> None:
        meta = params.get("_meta")
        if not isinstance(meta, dict) or PV_KEY not in meta:
            raise RpcError(-32602, f"missing _meta {PV_KEY!r} (zeta speaks only {VERSION})")
        if meta[PV_KEY] != VERSION:
            raise RpcError(-32022, "Unsupported protocol version", {"supported": [VERSION], "requested": meta[PV_KEY]})
        if not isinstance(meta.get(CAPS_KEY), dict):
            raise RpcError(-32602, f"missing _meta {CAPS_KEY!r}")

    @staticmethod
    def client_caps(params: dict[str, Any]) -> dict[str, Any]:
        return params["_meta"][CAPS_KEY]

    # ------------------------------------------------------------------ lifecycle

    def m_initialize(self, ident: Any, params: dict[str, Any]) -> Any:
        raise RpcError(-32022, "Unsupported protocol version",
                       {"supported": [VERSION], "requested": params.get("protocolVersion")})

    def m_server_discover(self, ident: Any, params: dict[str, Any]) -> Any:
        return {
            "supportedVersions": [VERSION],
            "capabilities": CAPABILITIES,
            "_meta": {SERVER_INFO_KEY: {"name": "zeta", "version": "1.0.0"}},
            "resultType": "complete",
        }

    def m_subscriptions_listen(self, ident: Any, params: dict[str, Any]) -> Any:
        wanted = params.get("notifications")
        if not isinstance(wanted, dict):
            raise RpcError(-32602, "subscriptions/listen: params.notifications must be an object")
        honoured: dict[str, Any] = {}
        for flag in ("toolsListChanged", "promptsListChanged", "resourcesListChanged"):
            if wanted.get(flag) is True:
                honoured[flag] = True
        uris = wanted.get("resourceSubscriptions")
        if uris is not None:
            if not (isinstance(uris, list) and all(isinstance(u, str) for u in uris)):
                raise RpcError(-32602, "subscriptions/listen: resourceSubscriptions must be a list of strings")
            if uris:
                honoured["resourceSubscriptions"] = list(uris)
        key = json.dumps(ident)
        if key in self.listens:
            raise RpcError(-32602, f"subscriptions/listen: id {key} is already a listen stream")
        stream = Listen(ident, honoured)
        self.listens[key] = stream
        say(f"zeta: listen {key} {json.dumps(honoured, separators=(',', ':'))}")
        send({
            "jsonrpc": "2.0",
            "method": "notifications/subscriptions/acknowledged",
            "params": {"_meta": {SUB_KEY: ident}, "notifications": honoured},
        })
        return NO_ANSWER

    # ------------------------------------------------------------------ tools

    def tools(self) -> list[dict[str, Any]]:
        return BASE_TOOLS + [_tool(name, f"Added at run time; answers '{name}'.") for name in self.extra]

    def m_tools_list(self, ident: Any, params: dict[str, Any]) -> Any:
        return paginate(self.tools(), "tools", params)

    def m_tools_call(self, ident: Any, params: dict[str, Any]) -> Any:
        name = params.get("name")
        arguments = params.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise RpcError(-32602, "tools/call: arguments must be an object")
        caps = self.client_caps(params)
        if name == "echo":
            return text_result("zeta: " + string_arg(arguments, "text", "echo"))
        if name == "confirm":
            question = string_arg(arguments, "question", "confirm")
            if "elicitation" not in caps:
                return text_result("elicitation not available", is_error=True)
            if "requestState" not in params and "inputResponses" not in params:
                request = {"method": "elicitation/create",
                           "params": {"mode": "form", "message": question, "requestedSchema": FORM_OK}}
                return self.ask("confirm", {"q1": request}, {})
            _, answer = self.resume(params, "confirm", "q1")
            action = answer.get("action")
            if action == "accept":
                return text_result("confirmed: " + json.dumps(answer.get("content")))
            return text_result("declined" if action == "decline" else "cancelled")
        if name == "ask_model":
            prompt = string_arg(arguments, "prompt", "ask_model")
            if "sampling" not in caps:
                return text_result("sampling not available", is_error=True)
            if "requestState" not in params and "inputResponses" not in params:
                request = {"method": "sampling/createMessage",
                           "params": {"messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                                      "maxTokens": 50}}
                return self.ask("ask_model", {"m1": request}, {})
            _, answer = self.resume(params, "ask_model", "m1")
            return text_result("model said: " + sampled_text(answer))
        if name == "two_step":
            if "elicitation" not in caps:
                return text_result("elicitation not available", is_error=True)
            if "requestState" not in params and "inputResponses" not in params:
                return self.ask("two_step", {"a": self.step_request("a")}, {"step": "a"})
            saved, answer = self.resume(params, "two_step", None)
            if saved.get("step") == "a":
                return self.ask("two_step", {"b": self.step_request("b")}, {"step": "b", "a": answer.get("content")})
            return text_result(f"both: {json.dumps(saved.get('a'))} {json.dumps(answer.get('content'))}")
        if name == "add_tool":
            added = f"extra_{len(self.extra) + 1}"
            self.extra.append(added)
            for stream in list(self.listens.values()):
                if stream.honoured.get("toolsListChanged"):
                    stream.notify("notifications/tools/list_changed", {})
            return text_result(f"added {added}")
        if name == "touch":
            uri = string_arg(arguments, "uri", "touch")
            count = 0
            for stream in list(self.listens.values()):
                if uri in stream.honoured.get("resourceSubscriptions", []):
                    stream.notify("notifications/resources/updated", {"uri": uri})
                    count += 1
            say(f"zeta: touch {uri} -> {count} streams")
            return text_result(f"touched {uri}", structured={"streams": count})
        if name == "caps":
            return text_result(json.dumps(caps, sort_keys=True))
        if isinstance(name, str) and name in self.extra:
            return text_result(name)
        raise RpcError(-32602, f"unknown tool: {name!r}")

    @staticmethod
    def step_request(key: str) -> dict[str, Any]:
        return {"method": "elicitation/create",
                "params": {"mode": "form", "message": f"two_step {key}", "requestedSchema": FORM_V}}

    def ask(self, tool: str, requests: dict[str, Any], saved: dict[str, Any]) -> dict[str, Any]:
        self.state_counter += 1
        state = f"zeta-state-{self.state_counter}"
        self.states[state] = {"tool": tool, "keys": list(requests), **saved}
        return {"resultType": "input_required", "inputRequests": requests, "requestState": state}

    def resume(self, params: dict[str, Any], tool: str, key: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The saved continuation of a retry and the answer to its (single) input request."""
        state = params.get("requestState")
        saved = self.states.get(state) if isinstance(state, str) else None
        if saved is None or saved["tool"] != tool:
            raise RpcError(-32602, f"{tool}: requestState {state!r} is not one zeta issued for it (or was used)")
        responses = params.get("inputResponses")
        wanted = key if key is not None else saved["keys"][0]
        answer = responses.get(wanted) if isinstance(responses, dict) else None
        if not isinstance(answer, dict):
            raise RpcError(-32602, f"{tool}: inputResponses has no {wanted!r}")
        del self.states[state]
        return saved, answer

    # ------------------------------------------------------------------ prompts

    def m_prompts_list(self, ident: Any, params: dict[str, Any]) -> Any:
        return paginate(PROMPTS, "prompts", params)

    def m_prompts_get(self, ident: Any, params: dict[str, Any]) -> Any:
        name = params.get("name")
        arguments = params.get("arguments") or {}
        if name == "greet":
            who = arguments.get("name") if isinstance(arguments, dict) else None
            if not isinstance(who, str):
                raise RpcError(-32602, "greet: argument 'name' is required")
            text = f"Hello, {who}"
        elif name == "farewell":
            text = "Goodbye"
        elif name == "status":
            text = "All good"
        else:
            raise RpcError(-32602, f"unknown prompt: {name!r}")
        return complete({"description": f"zeta {name}",
                         "messages": [{"role": "user", "content": {"type": "text", "text": text}}]})

    def m_completion_complete(self, ident: Any, params: dict[str, Any]) -> Any:
        ref = params.get("ref") if isinstance(params.get("ref"), dict) else {}
        argument = params.get("argument") if isinstance(params.get("argument"), dict) else {}
        value = argument.get("value") if isinstance(argument.get("value"), str) else ""
        pool: list[str] = []
        if ref.get("type") == "ref/prompt" and ref.get("name") == "greet" and argument.get("name") == "name":
            pool = NAME_VALUES
        elif ref.get("type") == "ref/resource" and ref.get("uri") == "zeta://item/{id}" and argument.get("name") == "id":
            pool = ITEM_IDS
        values = [v for v in pool if v.startswith(value)]
        return complete({"completion": {"values": values, "total": len(values), "hasMore": False}})

    # ------------------------------------------------------------------ resources

    def m_resources_list(self, ident: Any, params: dict[str, Any]) -> Any:
        return paginate(DOCS, "resources", params)

    def m_resources_templates_list(self, ident: Any, params: dict[str, Any]) -> Any:
        return paginate(TEMPLATES, "resourceTemplates", params)

    def m_resources_read(self, ident: Any, params: dict[str, Any]) -> Any:
        uri = params.get("uri")
        text = None
        if isinstance(uri, str):
            if uri in {d["uri"] for d in DOCS}:
                text = "doc " + uri.rsplit("/", 1)[1]
            elif uri.startswith("zeta://item/") and uri[len("zeta://item/"):] and "/" not in uri[len("zeta://item/"):]:
                text = "item " + uri[len("zeta://item/"):]
        if text is None:
            raise RpcError(-32602, f"resource not found: {uri!r}")
        return complete({"contents": [{"uri": uri, "mimeType": "text/plain", "text": text}]})


if __name__ == "__main__":
    serve_lines("zeta", Zeta)
