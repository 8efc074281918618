import Reactor

/// The protocol era a client speaks, known from its first request.
enum ClientEra {
    case unknown
    /// `initialize` first (2024-11-05 to 2025-11-25).
    case handshake
    /// 2026-07-28: `server/discover`, a version and capabilities in every request's `_meta`,
    /// `resultType` in every result, notifications only on `subscriptions/listen` streams, and
    /// input-required results instead of server-to-client requests.
    case stateless
}

/// One `subscriptions/listen` stream of a stateless client: which notifications it asked for.
struct ListenStream {
    /// The listen request's id, which tags every notification on the stream.
    let id: RawValue
    var tools = false
    var prompts = false
    var resources = false
    /// Exposed URIs whose `notifications/resources/updated` the stream carries.
    var resourceURIs: [String] = []

    func wants(_ method: String) -> Bool {
        switch method {
        case "notifications/tools/list_changed": return tools
        case "notifications/prompts/list_changed": return prompts
        case "notifications/resources/list_changed": return resources
        default: return false
        }
    }
}

/// Serving a stateless (2026-07-28) client over stdio from handshake-era backends: mcpd
/// answers `server/discover`, adds `resultType` (and the cache hints of lists) to every result,
/// delivers change notifications on listen streams, and turns backends' requests to the client
/// into input-required results (`InputRequired.swift`).
extension ClientSession {
    /// The most listen streams one client may hold open.
    static let maxListenStreams = 16

    var isStateless: Bool { era == .stateless }

    /// Before a request is served: an undecided era is decided by it (`adoptEra`); a stateless
    /// client's request must carry the version it speaks (each request stands alone). Returns
    /// false when the request was answered here with an error.
    func checkEra(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) -> Bool {
        if era == .unknown { return adoptEra(frame, raw, scan) }
        if rangeEquals(raw, scan.method!, "\"initialize\"") { return true }  // may choose the handshake
        guard let envelope = envelopeRange(raw, scan),
              let version = gateway.scanner.member(ProtocolVersion.versionKey, inObjectAt: envelope, of: raw)
        else {
            sendError(id: RawValue(frame, scan.id!), code: ErrorCode.invalidParams,
                      message: "Invalid params: a \(ProtocolVersion.stateless) request needs params._meta[\"\(ProtocolVersion.versionKey)\"]")
            return false
        }
        if rangeEquals(raw, version, "\"2026-07-28\"") { return true }
        let text = (try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[version]))) ?? "?"
        sendError(id: RawValue(frame, scan.id!), code: ErrorCode.unsupportedVersion,
                  message: "Unsupported protocol version \"\(text)\": this client speaks \(ProtocolVersion.stateless) with mcpd",
                  data: ["supported": [.string(ProtocolVersion.stateless)], "requested": .string(text)])
        return false
    }

    /// Decides the era from the client's first request (other than `initialize`, which makes it
    /// a handshake client). A request with the stateless envelope, or `server/discover`, makes
    /// it stateless; a plain request leaves it undecided and is served as before. Returns false
    /// when the request was answered here (a version mcpd does not serve).
    private func adoptEra(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) -> Bool {
        let discover = rangeEquals(raw, scan.method!, "\"server/discover\"")
        let envelope = envelopeRange(raw, scan)
        guard discover || envelope != nil else { return true }
        if let envelope, let version = gateway.scanner.member(ProtocolVersion.versionKey, inObjectAt: envelope, of: raw) {
            let text = (try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[version]))) ?? "?"
            guard text == ProtocolVersion.stateless else {
                sendError(id: RawValue(frame, scan.id!), code: ErrorCode.unsupportedVersion,
                          message: "Unsupported protocol version \"\(text)\": mcpd serves \(ProtocolVersion.stateless) without initialize, and \(ProtocolVersion.supported.joined(separator: ", ")) after initialize",
                          data: ["supported": [.string(ProtocolVersion.stateless)], "requested": .string(text)])
                return false
            }
        } else if !discover {
            return true
        }
        era = .stateless
        negotiatedVersion = ProtocolVersion.stateless
        isInitialized = true
        if let envelope, let capabilities = gateway.scanner.member(ProtocolVersion.capabilitiesKey, inObjectAt: envelope, of: raw) {
            clientCapabilities = (try? JSONParser.parse(UnsafeRawBufferPointer(rebasing: raw[capabilities]))) ?? .null
        }
        if let envelope, let info = gateway.scanner.member("io.modelcontextprotocol/clientInfo", inObjectAt: envelope, of: raw),
           let name = (try? JSONParser.parse(UnsafeRawBufferPointer(rebasing: raw[info])))?["name"]?.stringValue
        {
            clientName = name
        }
        gateway.log.info("client \"\(clientName)\" speaks protocol \(ProtocolVersion.stateless) (stateless)")
        return true
    }

    /// The range of `params._meta`, if the request has one.
    private func envelopeRange(_ raw: UnsafeRawBufferPointer, _ scan: MessageScan) -> Range<Int>? {
        guard let params = scan.params else { return nil }
        return gateway.scanner.member("_meta", inObjectAt: params, of: raw)
    }

    /// `server/discover`: the versions and capabilities mcpd serves without a handshake.
    func discover(_ frame: ByteBuffer, _ scan: MessageScan) {
        var capabilities = view.capabilities.objectValue ?? JSONObject()
        capabilities["logging"] = nil  // logging/setLevel is not part of 2026-07-28
        capabilities["tasks"] = nil  // tasks are an extension there, which mcpd does not relay yet
        let result: JSONValue = [
            "supportedVersions": [.string(ProtocolVersion.stateless)],
            "capabilities": .object(capabilities),
            "_meta": [ProtocolVersion.serverInfoKey: ["name": "mcpd", "version": .string(GatewayVersion.string)]],
        ]
        sendResult(frame, scan.id!, buffer: result.serialized, cacheHints: true)
    }

    /// Writes `result` (a JSON object) with what a stateless client requires of every result:
    /// `resultType`, and for lists and discovery the cache hints (mcpd's lists change when
    /// backends change, so nothing is cached).
    func appendStatelessResult(_ result: ByteBuffer, cacheHints: Bool, to message: inout ByteBuffer) {
        let fields = cacheHints ? "\"resultType\":\"complete\",\"ttlMs\":0,\"cacheScope\":\"private\"" : "\"resultType\":\"complete\""
        let bytes = result.readablePointer
        guard bytes.count >= 2, bytes.first == UInt8(ascii: "{"), bytes.last == UInt8(ascii: "}") else {
            message.append(result)
            return
        }
        message.appendByte(UInt8(ascii: "{"))
        message.append(string: fields)
        let empty = bytes.dropFirst().dropLast().allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        if !empty { message.appendByte(UInt8(ascii: ",")) }
        message.append(result.slice(from: 1, length: bytes.count - 1))
    }

    // MARK: Listen streams

    /// `subscriptions/listen`: acknowledges the notifications mcpd will send on the stream
    /// (tagged with the request's id), subscribes the backends to the resources asked for, and
    /// leaves the request open until the client cancels it.
    func listen(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        let idRange = scan.id!
        guard listenStreams.count < ClientSession.maxListenStreams else {
            sendError(frame, idRange, code: ErrorCode.invalidParams, message: "too many listen streams (at most \(ClientSession.maxListenStreams) per client)")
            return
        }
        guard let params = scan.params, let filterRange = gateway.scanner.member("notifications", inObjectAt: params, of: raw),
              let filter = try? JSONParser.parse(UnsafeRawBufferPointer(rebasing: raw[filterRange])), filter.objectValue != nil
        else {
            sendError(frame, idRange, code: ErrorCode.invalidParams, message: "subscriptions/listen needs params.notifications (an object)")
            return
        }
        var stream = ListenStream(id: RawValue(frame, idRange))
        var honoured = JSONObject()
        if filter["toolsListChanged"] == .bool(true) {
            stream.tools = true
            honoured["toolsListChanged"] = true
        }
        if filter["promptsListChanged"] == .bool(true), view.anyBackendDeclares("prompts") {
            stream.prompts = true
            honoured["promptsListChanged"] = true
        }
        if filter["resourcesListChanged"] == .bool(true), view.anyBackendDeclares("resources") {
            stream.resources = true
            honoured["resourcesListChanged"] = true
        }
        if let uris = filter["resourceSubscriptions"]?.arrayValue, view.supportsSubscriptions {
            var accepted: [JSONValue] = []
            for case .string(let uri) in uris.prefix(ClientSession.maxSubscriptions) {
                guard let route = view.resourceRoute(uri, backendsByName: gateway.backendsByName), view.admits(resource: route) else { continue }
                let exposed = ExposedURI.expose(server: route.backend.name, uri: route.originalName)
                stream.resourceURIs.append(exposed)
                accepted.append(.string(uri))
                if subscriptions.insert(exposed).inserted {
                    route.backend.subscribe(route.originalName, true)
                }
            }
            honoured["resourceSubscriptions"] = .array(accepted)
        }
        listenStreams.append(stream)
        var message = ByteBuffer(capacity: 256)
        message.append(string: "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/subscriptions/acknowledged\",\"params\":{\"_meta\":{\"\(ProtocolVersion.subscriptionKey)\":")
        stream.id.withBytes { message.append($0) }
        message.append(string: "},\"notifications\":")
        JSONValue.object(honoured).write(to: &message)
        message.append(string: "}}\n")
        output.write(message)
    }

    /// A client's `notifications/cancelled` for one of its listen streams: the stream ends.
    /// Returns false when `requestID` names no stream.
    func endListen(_ raw: UnsafeRawBufferPointer, requestID: Range<Int>) -> Bool {
        guard let index = listenStreams.firstIndex(where: { $0.id.equals(raw, requestID) }) else { return false }
        let stream = listenStreams.remove(at: index)
        for uri in stream.resourceURIs where !listenStreams.contains(where: { $0.resourceURIs.contains(uri) }) {
            subscriptions.remove(uri)
            if let route = gateway.subscriptionRoute(uri) { route.backend.subscribe(route.originalName, false) }
        }
        return true
    }

    /// A change notification on every listen stream that asked for it.
    func sendOnListenStreams(_ method: String) {
        for stream in listenStreams where stream.wants(method) {
            var message = ByteBuffer(capacity: 160)
            message.append(string: "{\"jsonrpc\":\"2.0\",\"method\":\"\(method)\",\"params\":{\"_meta\":{\"\(ProtocolVersion.subscriptionKey)\":")
            stream.id.withBytes { message.append($0) }
            message.append(string: "}}}\n")
            output.write(message)
        }
    }

    /// The listen stream that carries updates of the resource at `uri` (exposed), if any.
    func listenStream(forResource uri: String) -> ListenStream? {
        listenStreams.first { $0.resourceURIs.contains(uri) }
    }

    /// A backend's answer for a stateless client: the client's id put back and, when the
    /// backend (a handshake-era one) gave no `resultType`, `"resultType":"complete"` added at
    /// the start of the result. Everything else passes byte for byte.
    func relayStatelessResult(_ frame: ByteBuffer, replacing idRange: Range<Int>, with id: RawValue, result: Range<Int>) {
        var splice = Splice()
        splice.replace(idRange, raw: id)
        let insertion: ByteBuffer? = frame.withUnsafeReadableBytes { raw in
            guard raw[result.lowerBound] == UInt8(ascii: "{"),
                  gateway.scanner.member("resultType", inObjectAt: result, of: raw) == nil else { return nil }
            return ByteBuffer(string: gateway.scanner.isEmptyObject(at: result, of: raw) ? "\"resultType\":\"complete\"" : "\"resultType\":\"complete\",")
        }
        if let insertion {
            let at = result.lowerBound + 1
            splice.replace(at..<at, bytes: insertion)
        }
        withExtendedLifetime(insertion) { splice.write(frame, to: output) }
    }

    /// `notifications/resources/updated` for a stateless client: on the listen stream that
    /// asked for the resource, tagged with its id, with the exposed URI.
    func relayResourceUpdated(_ frame: ByteBuffer, _ scan: MessageScan, exposedURI: String, shownURI: String) {
        guard !finished, let stream = listenStream(forResource: exposedURI), let paramsRange = scan.params,
              var params = (try? JSONParser.parse(frame.slice(paramsRange)))?.objectValue,
              let tag = try? JSONParser.parse(stream.id.text)
        else { return }
        params["uri"] = .string(shownURI)
        var meta = params["_meta"]?.objectValue ?? JSONObject()
        meta[ProtocolVersion.subscriptionKey] = tag
        params["_meta"] = .object(meta)
        var message = ByteBuffer(capacity: 256)
        message.append(string: "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/updated\",\"params\":")
        JSONValue.object(params).write(to: &message)
        message.append(string: "}\n")
        output.write(message)
    }
}
