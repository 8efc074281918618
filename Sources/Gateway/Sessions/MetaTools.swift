import Reactor

/// Meta mode's tools (`gateway.mode: meta | hybrid`): instead of every backend tool, a client
/// lists four of the gateway's and reaches the rest through them.
///
///     gateway_list_servers {}                          the servers and how many tools each has
///     gateway_list_tools {server}                      one server's tools, with their schemas
///     gateway_search_tools {query, limit?}             the best matches (BM25, `ToolSearch`)
///     gateway_invoke {server, tool, arguments}         the tool's result, unchanged
///
/// Listing and searching read the catalog (the session's view, so roles apply) and start no
/// backend; `gateway_invoke` is a `tools/call` of the tool's exposed name, which starts only
/// the server it needs. Mistakes in their arguments are `isError` results the model can read.
enum MetaTool: CaseIterable {
    case listServers, listTools, search, invoke

    var name: String {
        switch self {
        case .listServers: return "gateway_list_servers"
        case .listTools: return "gateway_list_tools"
        case .search: return "gateway_search_tools"
        case .invoke: return "gateway_invoke"
        }
    }

    /// The meta tool a `params.name` literal names, if any.
    init?(literal: UnsafeRawBufferPointer) {
        guard literal.count > 10, literal[1] == UInt8(ascii: "g") else { return nil }
        let text = String(decoding: literal, as: UTF8.self)
        guard let tool = MetaTool.allCases.first(where: { "\"\($0.name)\"" == text }) else { return nil }
        self = tool
    }

    /// Their definitions, as `tools/list` gives them.
    static var definitions: [ByteBuffer] { definitionTexts.map { ByteBuffer(string: $0) } }

    private static let definitionTexts = [
        #"{"name":"gateway_list_servers","description":"List the MCP servers behind this gateway, with a description and the number of tools of each. Use gateway_list_tools or gateway_search_tools next.","inputSchema":{"type":"object","properties":{}}}"#,
        #"{"name":"gateway_list_tools","description":"List one server's tools with their input schemas.","inputSchema":{"type":"object","properties":{"server":{"type":"string","description":"The server's name, from gateway_list_servers."}},"required":["server"]}}"#,
        #"{"name":"gateway_search_tools","description":"Search every server's tools by what they do, in natural language. Each hit gives the server, the tool, its input schema and a score; call it with gateway_invoke.","inputSchema":{"type":"object","properties":{"query":{"type":"string","description":"What you want to do, e.g. \"create an issue in a GitHub repository\"."},"limit":{"type":"integer","minimum":1,"maximum":50,"default":5,"description":"How many tools to return (default 5)."}},"required":["query"]}}"#,
        #"{"name":"gateway_invoke","description":"Call a tool of a server behind this gateway; the result is the tool's own.","inputSchema":{"type":"object","properties":{"server":{"type":"string","description":"The server's name."},"tool":{"type":"string","description":"The tool's name on that server."},"arguments":{"type":"object","description":"The tool's arguments, as its input schema says."}},"required":["server","tool"]}}"#,
    ]

    static let maxSearchLimit = 50
}

extension ClientSession {
    /// A `tools/call` of a meta tool.
    func callMeta(_ tool: MetaTool, _ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        let idRange = scan.id!
        var arguments = JSONObject()
        if let params = scan.params, let range = gateway.scanner.member("arguments", inObjectAt: params, of: raw), !rangeEquals(raw, range, "null") {
            guard let parsed = try? JSONParser.parse(UnsafeRawBufferPointer(rebasing: raw[range])), let object = parsed.objectValue else {
                return metaError(frame, idRange, "\(tool.name): arguments must be an object")
            }
            arguments = object
        }
        switch tool {
        case .listServers:
            var servers: [JSONValue] = []
            for backend in view.backends where backend.isListed {
                let count = view.tools.lazy.filter { $0.server == backend.name }.count
                if view.role != nil && count == 0 { continue }
                var entry = JSONObject([("name", .string(backend.name)), ("tools", .int(count)), ("state", .string(backend.displayState))])
                if let description = backend.config.description { entry["description"] = .string(description) }
                servers.append(.object(entry))
            }
            let own = view.tools.lazy.filter { $0.server == "mcpd" }.count
            if own > 0 {
                servers.append(.object(JSONObject([("name", "mcpd"), ("tools", .int(own)), ("state", "ready"),
                                                   ("description", "mcpd's own tools: command tools and pipelines")])))
            }
            metaResult(frame, idRange, JSONObject([("servers", .array(servers))]))
        case .listTools:
            guard let server = arguments["server"]?.stringValue else { return metaError(frame, idRange, "gateway_list_tools needs arguments.server (a string)") }
            let tools = view.tools.filter { $0.server == server }
            guard !tools.isEmpty else { return metaError(frame, idRange, unknownServer(server)) }
            metaResult(frame, idRange, JSONObject([("server", .string(server)), ("tools", .array(tools.map { metaEntry($0, score: nil) }))]))
        case .search:
            guard let query = arguments["query"]?.stringValue, !query.isEmpty else {
                return metaError(frame, idRange, "gateway_search_tools needs arguments.query (what you want to do, in words)")
            }
            var limit = 5
            if let value = arguments["limit"], value != .null {
                // An integer, also when written 3.0 or 1e1 (JSON Schema's integer).
                guard case .number(let text) = value, let real = Double(text), real == real.rounded(), real >= 1 else { return metaError(frame, idRange, "gateway_search_tools: limit must be a whole number from 1 to \(MetaTool.maxSearchLimit)") }
                limit = Int(min(real, Double(MetaTool.maxSearchLimit)))
            }
            let hits = view.search(query, limit: limit)
            metaResult(frame, idRange, JSONObject([("query", .string(query)), ("tools", .array(hits.map { metaEntry($0.tool, score: $0.score) }))]))
        case .invoke:
            guard let server = arguments["server"]?.stringValue, let name = arguments["tool"]?.stringValue else {
                return metaError(frame, idRange, "gateway_invoke needs arguments.server and arguments.tool (strings), and arguments.arguments (an object)")
            }
            if let given = arguments["arguments"], given != .null, given.objectValue == nil {
                return metaError(frame, idRange, "gateway_invoke: arguments.arguments must be an object (the tool's arguments)")
            }
            guard let target = view.tools.first(where: { $0.server == server && $0.original == name }),
                  let exposed = target.definition["name"]?.stringValue
            else {
                let hidden = view.role != nil && gateway.view(server: view.server, role: nil)?.tools.contains { $0.server == server && $0.original == name } == true
                if hidden, let refusal = view.roleRefusal("tool", "\(server)\(gateway.config.gateway.separator)\(name)") { return metaError(frame, idRange, refusal) }
                if let backend = gateway.backend(named: server), let refusal = gateway.withheldMessage(backend, name) {
                    return metaError(frame, idRange, refusal)
                }
                if !view.tools.contains(where: { $0.server == server }) { return metaError(frame, idRange, unknownServer(server)) }
                let names = view.tools.filter { $0.server == server }.map(\.original)
                let near = closestName(to: name, among: names).map { "; did you mean \"\($0)\"?" } ?? ""
                return metaError(frame, idRange, "server \"\(server)\" has no tool \"\(name)\"\(near) (gateway_list_tools lists them)")
            }
            invoke(exposed: exposed, arguments: arguments["arguments"], frame, raw, scan)
        }
    }

    /// `gateway_invoke`: the same request as a `tools/call` of the tool's exposed name, with the
    /// client's id and `_meta` (its progress token), routed as any call.
    private func invoke(exposed: String, arguments: JSONValue?, _ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        var call = ByteBuffer(capacity: frame.readableBytes + exposed.utf8.count + 64)
        call.append(string: "{\"jsonrpc\":\"2.0\",\"id\":")
        call.append(frame.slice(scan.id!))
        call.append(string: ",\"method\":\"tools/call\",\"params\":{\"name\":")
        call.append(jsonStringLiteral(exposed))
        call.append(string: ",\"arguments\":")
        (arguments ?? .object(JSONObject())).write(to: &call)
        if let params = scan.params, let meta = gateway.scanner.member("_meta", inObjectAt: params, of: raw) {
            call.append(string: ",\"_meta\":")
            call.append(UnsafeRawBufferPointer(rebasing: raw[meta]))
        }
        call.append(string: "}}")
        guard let callScan = try? gateway.scanner.scan(call) else {
            return metaError(frame, scan.id!, "gateway_invoke: the call could not be formed")
        }
        // As any call of that name: a server's tool, a command tool or a pipeline (never a
        // meta tool: a server's tool may have one's name).
        call.withUnsafeReadableBytes { callRaw in callTool(call, callRaw, callScan, meta: false) }
    }

    private func unknownServer(_ server: String) -> String {
        let names = Array(Set(view.tools.map(\.server))).sorted()
        let near = closestName(to: server, among: names).map { "; did you mean \"\($0)\"?" } ?? ""
        return "no server \"\(server.prefix(100))\" here\(near) (gateway_list_servers lists them: \(names.prefix(20).joined(separator: ", ")))"
    }

    /// A tool as meta mode describes it.
    private func metaEntry(_ tool: (server: String, original: String, definition: JSONObject), score: Double?) -> JSONValue {
        var entry = JSONObject([("server", .string(tool.server)), ("tool", .string(tool.original)),
                                ("name", tool.definition["name"] ?? .string(tool.original))])
        entry["description"] = tool.definition["description"] ?? .string("")
        entry["inputSchema"] = tool.definition["inputSchema"] ?? .object(JSONObject([("type", "object")]))
        if let score { entry["score"] = .number(String(format3(score))) }
        return .object(entry)
    }

    /// A meta tool's result: the object as text, and as structured content for clients that
    /// know it.
    private func metaResult(_ frame: ByteBuffer, _ idRange: Range<Int>, _ object: JSONObject) {
        let value = JSONValue.object(object)
        var result = JSONObject([("content", .array([.object(JSONObject([("type", "text"), ("text", .string(value.jsonText))]))]))])
        if !predatesStructuredOutput { result["structuredContent"] = value }
        sendResult(frame, idRange, buffer: JSONValue.object(result).serialized)
    }

    /// `score` with at most three decimals.
    private func format3(_ score: Double) -> String {
        let thousandths = Int((score * 1000).rounded())
        let fraction = thousandths % 1000
        return "\(thousandths / 1000).\(fraction < 10 ? "00" : fraction < 100 ? "0" : "")\(fraction)"
    }

    private func metaError(_ frame: ByteBuffer, _ idRange: Range<Int>, _ message: String) {
        let result = JSONObject([("content", .array([.object(JSONObject([("type", "text"), ("text", .string(message))]))])), ("isError", true)])
        sendResult(frame, idRange, buffer: JSONValue.object(result).serialized)
    }
}
