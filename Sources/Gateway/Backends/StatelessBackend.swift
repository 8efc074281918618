import Reactor

/// A handshake-era client's request to a server that speaks only 2026-07-28, as sent, kept for
/// the retry when the server answers it input-required.
struct BridgedCall {
    /// The request as mcpd sent it (no newline).
    let sent: ByteBuffer
    /// How many input rounds the call has had.
    let round: Int
}

/// A server of the stateless era alone (it refuses `initialize` and answers `server/discover`):
/// one process serves every client, and mcpd speaks that era for handshake-era clients:
///
/// - each of their requests gets the envelope in `params._meta` (the version, the client's
///   capabilities from its `initialize`, its name);
/// - answers lose `resultType`, which their versions do not define;
/// - an input-required answer becomes server-to-client requests (`InputRelay.swift`), and once
///   the client answered them all mcpd retries the call with `inputResponses` and the server's
///   `requestState` untouched; the client sees one call with requests in the middle;
/// - change notifications come on mcpd's own `subscriptions/listen` stream on the server, which
///   refreshes the catalog, and `resources/subscribe` is a resource on that stream.
extension Backend {
    /// The most input rounds one call may take before mcpd gives up on it.
    static let maxInputRounds = 16

    /// Forwards a handshake-era client's request to a stateless-era server: as `forward`, and
    /// with the envelope in `params._meta`.
    func forwardWithEnvelope(_ frame: ByteBuffer, scan: MessageScan, method: StaticString, gatewayID: Int, route: Route?,
                             renaming: Range<Int>?, session: ClientSession, to stdin: IOStream)
    {
        var edits: [(range: Range<Int>, bytes: ByteBuffer)] = []
        var id = ByteBuffer(capacity: 20)
        id.append(decimal: gatewayID)
        edits.append((scan.id!, id))
        if let route, let renaming { edits.append((renaming, route.originalNameLiteral)) }
        var meta = ByteBuffer(capacity: 256)
        meta.append(string: "{\"\(ProtocolVersion.versionKey)\":\"\(ProtocolVersion.stateless)\",\"\(ProtocolVersion.capabilitiesKey)\":")
        let capabilities = session.clientCapabilities.objectValue.map(JSONValue.object) ?? .object(JSONObject())
        capabilities.write(to: &meta)
        meta.append(string: ",\"io.modelcontextprotocol/clientInfo\":")
        let info: JSONValue = ["name": .string(session.clientName), "version": .string("via mcpd \(GatewayVersion.string)")]
        info.write(to: &meta)
        frame.withUnsafeReadableBytes { raw in
            let scanner = gateway.scanner
            if let params = scan.params, raw[params.lowerBound] == UInt8(ascii: "{") {
                if let old = scanner.member("_meta", inObjectAt: params, of: raw) {
                    // The client's own `_meta` members follow, its progress token as mcpd's id.
                    appendClientMeta(old, of: raw, gatewayID: gatewayID, to: &meta)
                    meta.appendByte(UInt8(ascii: "}"))
                    edits.append((old, meta))
                } else {
                    var member = ByteBuffer(string: "\"_meta\":")
                    meta.appendByte(UInt8(ascii: "}"))
                    member.append(meta)
                    if !scanner.isEmptyObject(at: params, of: raw) { member.appendByte(UInt8(ascii: ",")) }
                    let at = params.lowerBound + 1
                    edits.append((at..<at, member))
                }
            } else if scan.params == nil, let close = raw.lastIndex(of: UInt8(ascii: "}")) {
                var member = ByteBuffer(string: ",\"params\":{\"_meta\":")
                meta.appendByte(UInt8(ascii: "}"))
                member.append(meta)
                member.appendByte(UInt8(ascii: "}"))
                edits.append((close..<close, member))
            }
        }
        let message = edited(frame, edits)
        stdin.write(message)
        newlineByte.withUnsafeBytes { stdin.write($0) }
        if Backend.mayAskForInput(method) {
            bridgedCalls[gatewayID] = BridgedCall(sent: message, round: 0)
            if bridgedCalls.count > 2 * pending.count + 64 { bridgedCalls = bridgedCalls.filter { pending[$0.key] != nil } }
        }
    }

    /// Only these may be answered input-required (2026-07-28).
    static func mayAskForInput(_ method: StaticString) -> Bool {
        let text = method.description
        return text == "tools/call" || text == "prompts/get" || text == "resources/read"
    }

    /// A stateless-era server's answer to a handshake-era client: input-required becomes
    /// requests to the client; anything else goes back without `resultType`.
    func relayBridgedAnswer(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan, entry: PendingRequest, gatewayID: Int,
                            session: ClientSession, id: RawValue, batch: BatchCollector?)
    {
        let call = bridgedCalls.removeValue(forKey: gatewayID)
        guard let result = scan.result, raw[result.lowerBound] == UInt8(ascii: "{") else {
            session.requestSucceeded(frame, replacing: scan.id!, with: id, result: scan.result, batch: batch)
            return
        }
        let type = gateway.scanner.member("resultType", inObjectAt: result, of: raw)
        if let type, rangeEquals(raw, type, "\"input_required\"") {
            guard let call else {
                session.requestFailed(id: id, code: ErrorCode.internalError,
                                      message: "backend \"\(name)\" asked for input in answer to \(entry.what), which may not ask", batch: batch)
                return
            }
            guard call.round < Backend.maxInputRounds else {
                session.requestFailed(id: id, code: ErrorCode.internalError,
                                      message: "backend \"\(name)\" asked for input \(call.round) times during \(entry.what); mcpd gave up", batch: batch)
                return
            }
            session.gatherInput(frame, raw, result: result, for: entry, call: call, from: self)
            return
        }
        var cut: Set<String> = []
        if type != nil { cut.insert("resultType") }
        if session.predatesStructuredOutput { cut.insert("structuredContent") }
        let members = cut.isEmpty ? [] : gateway.scanner.members(ofObjectAt: result, of: raw)
        guard members.contains(where: { cut.contains($0.name) }) else {
            session.requestSucceeded(frame, replacing: scan.id!, with: id, result: result, batch: batch)
            return
        }
        var kept = ByteBuffer(capacity: result.count)
        kept.appendByte(UInt8(ascii: "{"))
        for member in members where !cut.contains(member.name) {
            if kept.readableBytes > 1 { kept.appendByte(UInt8(ascii: ",")) }
            kept.append(UnsafeRawBufferPointer(rebasing: raw[member.key.lowerBound..<member.value.upperBound]))
        }
        kept.appendByte(UInt8(ascii: "}"))
        session.relayEdited(frame, replacing: scan.id!, with: id, and: (result, kept), batch: batch)
        session.requestEnded()
    }

    /// The client answered every input request of a call: mcpd sends the call again with the
    /// answers and the server's `requestState`, under a new id of its own.
    func retry(_ call: BridgedCall, entry: PendingRequest, epoch: Int, responses: JSONObject, requestState: JSONValue?) {
        guard case .client(let session, let id, _, let batch) = entry.origin else { return }
        guard epoch == self.epoch, state == .ready, let process,
              case .object(var request)? = try? JSONParser.parse(call.sent),
              case .object(var params)? = request["params"]
        else {
            session.requestFailed(id: id, code: ErrorCode.internalError,
                                  message: "backend \"\(name)\" restarted while the client answered its input requests for \(entry.what); call again", batch: batch)
            return
        }
        var next = entry
        next.deadline = loop.now + timeoutMs
        let gatewayID = pending.insert(next)
        request["id"] = .int(gatewayID)
        params["inputResponses"] = .object(responses)
        params["requestState"] = requestState
        if case .object(var meta)? = params["_meta"], meta["progressToken"] != nil {
            meta["progressToken"] = .int(gatewayID)
            params["_meta"] = .object(meta)
        }
        request["params"] = .object(params)
        let message = JSONValue.object(request).serialized
        process.stdin.write(message)
        newlineByte.withUnsafeBytes { process.stdin.write($0) }
        bridgedCalls[gatewayID] = BridgedCall(sent: message, round: call.round + 1)
    }

    /// Opens (or opens again, with the resources now wanted) mcpd's listen stream on a
    /// stateless-era server, for the change notifications it declares.
    func openListen() {
        guard era == .stateless, state == .ready else { return }
        if let old = listenID {
            pending.remove(old)
            notify("notifications/cancelled", params: ["requestId": .int(old), "reason": "mcpd opens its listen stream again"])
            listenID = nil
        }
        var wanted = JSONObject()
        if declares("tools") { wanted["toolsListChanged"] = true }
        if declares("prompts") { wanted["promptsListChanged"] = true }
        if declares("resources") { wanted["resourcesListChanged"] = true }
        if !listenURIs.isEmpty { wanted["resourceSubscriptions"] = .array(listenURIs.sorted().map(JSONValue.string)) }
        guard !wanted.isEmpty else { return }
        let epoch = self.epoch
        listenID = request("subscriptions/listen", params: ["notifications": .object(wanted)], timeoutMs: Backend.listenTimeoutMs) { [unowned self] result in
            // A listen stream ends only when the server ends it (or the process goes).
            guard epoch == self.epoch, state == .ready else { return }
            let why: String
            switch result {
            case .failure(let failure): why = failure.message
            case .success(let reply): why = reply.errorMessage ?? "it answered the request"
            }
            log.warning("backend \"\(name)\" ended mcpd's subscriptions/listen (\(why)); its catalog refreshes only when it restarts")
            listenID = nil
        }
    }

    /// A listen stream has no deadline: about 35 years.
    static let listenTimeoutMs: UInt64 = 1 << 40
}
