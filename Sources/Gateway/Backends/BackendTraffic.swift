import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Traffic between clients and a backend: forwarded requests and their answers, notifications
/// both ways, and the backend's own requests to clients (sampling, elicitation, roots).
extension Backend {
    // MARK: Client requests

    /// Why a forwarded request could not be sent.
    func unavailableReason() -> String? {
        // A compare rather than the switch's jump table, whose indirect branch is mispredicted
        // after every context switch.
        if state == .ready { return nil }
        switch state {
        case .ready: return nil
        case .configured, .starting, .initializing: return "backend \"\(name)\" is still starting"
        case .backoff:
            return "backend \"\(name)\" is restarting after it \(lastError ?? "exited"); try again shortly"
        case .failed: return "backend \"\(name)\" is unavailable: \(lastError ?? "it failed")"
        case .stopping, .stopped: return "backend \"\(name)\" is stopped"
        }
    }

    /// The process of this server that serves `session`: a stateless client's requests go to
    /// the server's stateless-era process (started on the first of them) unless the server
    /// does not speak that era.
    func process(for session: ClientSession) -> Backend {
        // `isolation: session`: an HTTP session of the handshake era gets a process of its own
        // (stdio has one session; a stateless request has none to keep one for).
        if config.isolatesSessions && owner == nil && !isTwin && !session.endsGateway && !session.isStateless {
            return session.ownProcess(of: self)
        }
        guard owner == nil, session.isStateless, era == .handshake, speaksStateless != false, config.era == "auto" else { return self }
        if let twin = statelessTwin {
            // A stateless process that failed (it could not start, or crashed until its circuit
            // opened) hands its clients back to this process, which serves them by translation.
            if twin.state == .failed {
                if !twin.hasBeenReady { speaksStateless = false }
                return self
            }
            return twin
        }
        let twin = Backend(config: config, gateway: gateway, era: .stateless)
        twin.fallback = self
        statelessTwin = twin
        return twin
    }

    /// The process whose pins apply: the server's own (a twin or a session's process is one
    /// of its processes).
    private var pinSource: Backend { fallback ?? (owner != nil ? gateway.backend(named: name) : nil) ?? self }

    private func rangeIsToolsCall(_ method: StaticString) -> Bool {
        method.utf8CodeUnitCount == 10 && method.description == "tools/call"
    }

    /// Forwards a client's request, rewriting its id (and progress token) to mcpd's and, when
    /// `renaming` is given, that range (the tool or prompt name, or the resource URI) to the
    /// route's original. The frame is not re-serialised: it is written as slices around the
    /// replaced values. Returns an error to send the client instead.
    func forward(_ frame: ByteBuffer, scan: MessageScan, method: StaticString, route: Route?, renaming: Range<Int>?,
                 session: ClientSession, batch: BatchCollector?, taskID: TaskIDPlace? = nil) -> BackendFailure?
    {
        // A call queued before the server listed a changed definition (`pin: strict`) is
        // refused when it would go out.
        if withholdsAny || ((fallback != nil || owner != nil) && pinSource.withholdsAny), let route, rangeIsToolsCall(method),
           let refusal = gateway.withheldMessage(pinSource, route.originalName) {
            return BackendFailure(code: ErrorCode.invalidParams, message: refusal)
        }
        if state != .ready || exiting {
            return queueUntilStarted(QueuedRequest(frame: frame, scan: scan, method: method, route: route, renaming: renaming,
                                                   session: session, batch: batch, taskID: taskID, deadline: loop.now + timeoutMs))
        }
        guard let process, let idRange = scan.id else {
            return BackendFailure(code: ErrorCode.internalError, message: "backend \"\(name)\" is not running")
        }
        guard process.stdin.isWritable else {
            return BackendFailure(code: ErrorCode.internalError,
                                  message: "backend \"\(name)\" is overloaded: \(process.stdin.queuedBytes) bytes are waiting for it to read its input")
        }
        guard pending.count < Backend.maxPending else {
            return BackendFailure(code: ErrorCode.internalError, message: "backend \"\(name)\" has \(plural(pending.count, "request")) in flight; try again later")
        }
        let clientID = RawValue(frame, idRange)
        let token = scan.metaProgressToken.map { RawValue(frame, $0) }
        let now = loop.now
        lastActivity = now
        let gatewayID = pending.insert(PendingRequest(origin: .client(session, id: clientID, progressToken: token, batch: batch),
                                                      method: method, route: route, deadline: now + timeoutMs, taskID: taskID))
        if era == .handshake ? session.isStateless : !session.isStateless {
            if era == .handshake {
                forwardWithoutEnvelope(frame, scan: scan, gatewayID: gatewayID, route: route, renaming: renaming, to: process.stdin)
            } else {
                forwardWithEnvelope(frame, scan: scan, method: method, gatewayID: gatewayID, route: route, renaming: renaming,
                                    session: session, to: process.stdin)
            }
            return nil
        }
        var splice = Splice()
        splice.replace(idRange, decimal: gatewayID)
        if let route, let renaming { splice.replace(renaming, bytes: route.originalNameLiteral) }
        if let tokenRange = scan.metaProgressToken { splice.replace(tokenRange, decimal: gatewayID) }
        splice.write(frame, to: process.stdin)
        return nil
    }

    /// A stateless client's request to a handshake-era backend: as `forward`, and with the
    /// stateless envelope (`io.modelcontextprotocol/*` in `params._meta`) taken out, since such
    /// a backend refuses it. The rest of `_meta` passes as it came.
    private func forwardWithoutEnvelope(_ frame: ByteBuffer, scan: MessageScan, gatewayID: Int, route: Route?, renaming: Range<Int>?,
                                        to stdin: IOStream)
    {
        var edits: [(range: Range<Int>, bytes: ByteBuffer)] = []
        var id = ByteBuffer(capacity: 20)
        id.append(decimal: gatewayID)
        edits.append((scan.id!, id))
        if let route, let renaming { edits.append((renaming, route.originalNameLiteral)) }
        frame.withUnsafeReadableBytes { raw in
            guard let params = scan.params, let meta = gateway.scanner.member("_meta", inObjectAt: params, of: raw) else { return }
            var kept = ByteBuffer(capacity: meta.count)
            kept.appendByte(UInt8(ascii: "{"))
            appendClientMeta(meta, of: raw, gatewayID: gatewayID, to: &kept)
            kept.appendByte(UInt8(ascii: "}"))
            edits.append((meta, kept))
        }
        writeEdited(frame, edits, to: stdin)
    }

    /// Appends the members of a client's `params._meta` (at `meta` in `raw`) to `out`, each after
    /// a comma unless `out` ends in `{`: the stateless envelope left out (mcpd writes its own or
    /// none), the progress token replaced by mcpd's id.
    func appendClientMeta(_ meta: Range<Int>, of raw: UnsafeRawBufferPointer, gatewayID: Int, to out: inout ByteBuffer) {
        for member in gateway.scanner.members(ofObjectAt: meta, of: raw) where !member.name.hasPrefix("io.modelcontextprotocol/") {
            if out.readablePointer.last != UInt8(ascii: "{") { out.appendByte(UInt8(ascii: ",")) }
            out.append(UnsafeRawBufferPointer(rebasing: raw[member.key]))
            out.appendByte(UInt8(ascii: ":"))
            if member.name == "progressToken" {
                out.append(decimal: gatewayID)
            } else {
                out.append(UnsafeRawBufferPointer(rebasing: raw[member.value]))
            }
        }
    }

    /// Forwards a client's `notifications/cancelled` for the request mcpd sent as `gatewayID`.
    /// Returns the batch the cancelled request belonged to, if any.
    func forwardCancel(_ frame: ByteBuffer, requestIDRange: Range<Int>, gatewayID: Int) -> BatchCollector? {
        let entry = pending.remove(gatewayID)
        if let process {
            var splice = Splice()
            splice.replace(requestIDRange, decimal: gatewayID)
            splice.write(frame, to: process.stdin)
        }
        if case .client(_, _, _, let batch)? = entry?.origin { return batch }
        return nil
    }

    /// Forwards a client's notification unchanged (`notifications/roots/list_changed`).
    func forwardNotification(_ frame: ByteBuffer) {
        guard state == .ready, let process else { return }
        process.stdin.write(frame)
        newlineByte.withUnsafeBytes { process.stdin.write($0) }
    }

    /// Cancels mcpd's request `gatewayID` on the backend with a reason.
    private func sendCancel(gatewayID: Int, reason: String) {
        notify("notifications/cancelled", params: ["requestId": .int(gatewayID), "reason": .string(reason)])
    }

    /// The gateway id of the pending request that `session` sent with `clientID`.
    func pendingID(session: ClientSession, clientID: UnsafeRawBufferPointer, range: Range<Int>) -> Int? {
        pending.firstID { entry in
            if case .client(let owner, let id, _, _) = entry.origin, owner === session, id.equals(clientID, range) { return true }
            return false
        }
    }

    /// The distinct sessions with requests in flight here, at most `limit` of them.
    func sessionsInFlight(limit: Int) -> [ClientSession] {
        var found: [ClientSession] = []
        _ = pending.firstID { entry in
            if case .client(let owner, _, _, _) = entry.origin, !found.contains(where: { $0 === owner }) {
                found.append(owner)
            }
            return found.count >= limit
        }
        return found
    }

    /// The oldest request in flight from `session`: its id here and its method.
    func oldestRequest(of session: ClientSession) -> (gatewayID: Int, method: StaticString)? {
        guard let id = pending.sortedIDs(where: { entry in
            if case .client(let owner, _, _, _) = entry.origin { return owner === session }
            return false
        }).first, let entry = pending[id] else { return nil }
        return (id, entry.method)
    }

    /// Cancels every pending request of a session that is going away; with `message`, the
    /// client is also answered with that error (it may still be reading).
    func forgetSession(_ session: ClientSession, message: String?) {
        expireStartQueue(now: 0, session: session, message: message)
        let owned = pending.sortedIDs { entry in
            if case .client(let owner, _, _, _) = entry.origin { return owner === session }
            return false
        }
        var removed: [PendingRequest] = []
        for gatewayID in owned {
            guard let entry = pending.remove(gatewayID) else { continue }
            sendCancel(gatewayID: gatewayID, reason: message ?? "the client disconnected")
            removed.append(entry)
        }
        if let message {
            for entry in removed { complete(entry, with: BackendFailure(code: ErrorCode.internalError, message: message)) }
        }
    }

    /// Fails requests whose deadline passed; called by the gateway's sweep timer.
    func expireRequests(now: UInt64) {
        expireStartQueue(now: now)
        guard !pending.isEmpty else { return }
        let expired = pending.sortedIDs { $0.deadline <= now }.compactMap { id in pending.remove(id).map { (id, $0) } }
        for (gatewayID, entry) in expired {
            let seconds = formatSeconds(timeoutMs)
            let message = "backend \"\(name)\" did not answer \(entry.what) within \(seconds); raise servers.\(name).timeout if it needs longer"
            log.warning(message)
            sendCancel(gatewayID: gatewayID, reason: "mcpd: request timed out after \(seconds)")
            complete(entry, with: BackendFailure(code: ErrorCode.requestTimeout, message: message))
        }
    }

    /// At debug, one line per client request answered: `request stdio id 7: tools/call
    /// "echo" -> backend "alpha": ok in 3 ms`.
    /// The debug line of a client request answered: session, id, method, the exposed name and
    /// the backend's own, backend, outcome (`ok`, `isError` for a tool's error result, `error`
    /// for a JSON-RPC error, `failed (why)` when mcpd answered for it) and milliseconds; in
    /// `--log-format json` each is a field too.
    func logRequest(_ entry: PendingRequest, session: ClientSession, id: RawValue, outcome: String) {
        let elapsed = loop.now &- (entry.deadline &- timeoutMs)
        let exposed = entry.route?.exposedName
        let called = entry.route.map { route in exposed.map { "\"\($0)\" (\"\(route.originalName)\")" } ?? "\"\(route.originalName)\"" }
        let idText = String(id.text.prefix(100))
        log.log(.debug, "request \(session.label) id \(idText): \(entry.method)\(called.map { " \($0)" } ?? "") -> backend \"\(name)\": \(outcome) in \(elapsed) ms",
                fields: [("session", .string(session.label)), ("id", .string(idText)), ("method", .string("\(entry.method)")),
                         ("name", exposed.map(JSONValue.string) ?? entry.route.map { .string($0.originalName) } ?? .null),
                         ("backend", .string(name)), ("outcome", .string(outcome)), ("ms", .int(Int(elapsed)))])
    }

    /// `ok`, or `isError` for a result that says the tool failed (debug lines only).
    private func outcome(of frame: ByteBuffer, _ scan: MessageScan) -> String {
        guard scan.result != nil else { return "error" }
        let text = frame.string
        return text.contains("\"isError\":true") || text.contains("\"isError\": true") ? "isError" : "ok"
    }

    func complete(_ entry: PendingRequest, with failure: BackendFailure) {
        switch entry.origin {
        case .client(let session, let id, _, let batch):
            if gateway.httpServer != nil { countRequest(entry, .failed) }
            if log.enabled(.debug) { logRequest(entry, session: session, id: id, outcome: "failed (\(failure.message))") }
            session.requestFailed(id: id, code: failure.code, message: failure.message, batch: batch)
        case .gateway(let callback):
            callback(.failure(failure))
        }
    }

    /// Fails every request in flight (the backend is going away).
    func failAllPending(_ message: String) {
        for entry in pending.removeAll() {
            complete(entry, with: BackendFailure(code: ErrorCode.internalError, message: "\(message) while handling \(entry.what)"))
        }
    }

    // MARK: Reading

    func readFrames(_ buffer: inout ByteBuffer) {
        while process != nil {
            let next = framer.next(&buffer)
            // The common case first, by a compare: a switch here is a jump table, whose
            // indirect branch is mispredicted after every context switch.
            if case .line(let frame) = next {
                if !frame.isEmpty { handleFrame(frame) }
                continue
            }
            switch next {
            case .needMore:
                if gateway.clientOutputStalled { pauseReading() }
                return
            case .tooLong, .skippedLongLine:
                log.error("backend \"\(name)\" sent a line longer than \(framer.maxLineLength) bytes; stopping it (raise gateway.max_message_size if that is legitimate)")
                exiting = true
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                process?.stdout.close()
                process?.signalGroup(SIGKILL)
                failAllPending("backend \"\(name)\" sent an oversized message")
                return
            case .line(let frame):
                if frame.isEmpty { continue }
                handleFrame(frame)
            }
        }
    }

    /// Stops reading the backend while a client does not read its answers: it waits, blocked on
    /// its own pipe, and mcpd's memory stays bounded by the watermarks. Never because the
    /// backend does not read its input: a server that blocks writing its answer reads no more
    /// input until that write is done, so both would wait for good. mcpd's writes to it stay
    /// bounded anyway: requests are refused while its input is over the high watermark.
    private func pauseReading() {
        guard !readPaused, let process else { return }
        readPaused = true
        process.stdout.stopReading()
        log.debug("backend \"\(name)\": not reading it while a client does not read its answers")
    }

    /// Reads the backend again once the clients read again.
    func resumeReading() {
        guard readPaused, let process, !gateway.clientOutputStalled else { return }
        readPaused = false
        process.stdout.startReading()
    }

    private func handleFrame(_ frame: ByteBuffer) {
        var scan = MessageScan()
        do {
            try gateway.scanner.scan(frame, into: &scan)
        } catch {
            log.warning("backend \"\(name)\" wrote a line that is not a JSON-RPC message (\(error)); dropped: \(frame.string.prefix(200))")
            return
        }
        frame.withUnsafeReadableBytes { raw in
            // Compares, not a jump table (see `unavailableReason`).
            if scan.kind == .response {
                handleResponse(frame, raw, scan)
            } else if scan.kind == .notification {
                handleNotification(frame, raw, scan)
            } else if scan.kind == .request {
                if process?.stdin.isWritable == false {
                    // It does not read its input, yet asks for more: an answer would only grow
                    // the queue of what it does not read. Dropped, as its pipe would drop it.
                    droppedRequests += 1
                    if droppedRequests == 1 || droppedRequests % 1000 == 0 {
                        log.warning("backend \"\(name)\" sends requests while it does not read its input (\(process?.stdin.queuedBytes ?? 0) bytes waiting); \(plural(droppedRequests, "request")) of it left unanswered")
                    }
                    return
                }
                handleRequest(frame, raw, scan)
            } else {
                log.warning("backend \"\(name)\" sent a batch; mcpd does not accept batches from backends")
            }
        }
    }

    private func handleResponse(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        guard let idRange = scan.id, let gatewayID = parseGatewayInteger(raw, idRange),
              let entry = pending.remove(gatewayID)
        else {
            log.debug("backend \"\(name)\" answered an unknown or cancelled request: \(frame.string.prefix(200))")
            return
        }
        if pending.isEmpty { lastActivity = loop.now }
        switch entry.origin {
        case .client(let session, let id, _, let batch):
            if logsRequests { logRequest(entry, session: session, id: id, outcome: outcome(of: frame, scan)) }
            // Counted for /metrics when mcpd serves HTTP (mcpd stdio has no /metrics).
            if gateway.httpServer != nil { countRequest(entry, scan.result == nil ? .error : .ok) }
            if era == .stateless && !session.isStateless {
                relayBridgedAnswer(frame, raw, scan, entry: entry, gatewayID: gatewayID, session: session, id: id, batch: batch)
            } else if let place = entry.taskID, let result = scan.result {
                session.taskRequestSucceeded(frame, replacing: idRange, with: id, result: result, place: place, backend: self, batch: batch)
            } else {
                session.requestSucceeded(frame, replacing: idRange, with: id, result: scan.result, batch: batch)
            }
        case .gateway(let callback):
            callback(.success(BackendReply(frame: frame, scan: scan)))
        }
    }

    // MARK: Notifications from the backend

    private func handleNotification(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        let method = scan.method!
        if rangeEquals(raw, method, "\"notifications/progress\"") {
            guard let tokenRange = scan.paramsProgressToken, let gatewayID = parseGatewayInteger(raw, tokenRange),
                  let entry = pending[gatewayID], case .client(let session, _, let token?, _) = entry.origin
            else { return }
            session.relayNotification(frame, replacing: tokenRange, with: token)
        } else if rangeEquals(raw, method, "\"notifications/message\"") {
            relayLogMessage(frame, raw, scan)
        } else if rangeEquals(raw, method, "\"notifications/resources/updated\"") {
            relayResourceUpdated(frame, raw, scan)
        } else if rangeEquals(raw, method, "\"notifications/tools/list_changed\"") {
            listChanged("tools")
        } else if rangeEquals(raw, method, "\"notifications/prompts/list_changed\"") {
            listChanged("prompts")
        } else if rangeEquals(raw, method, "\"notifications/resources/list_changed\"") {
            listChanged("resources")
        } else if rangeEquals(raw, method, "\"notifications/tasks/status\"") {
            relayTaskStatus(frame, raw, scan)
        } else if rangeEquals(raw, method, "\"notifications/cancelled\"") {
            // The backend gave up on a request it sent a client.
            guard let requestID = scan.paramsRequestID else { return }
            for session in gateway.sessions { session.serverRequestCancelled(frame, requestIDRange: requestID, backend: self) }
        } else {
            log.debug("backend \"\(name)\" notification ignored: \(frame.string.prefix(200))")
        }
    }

    /// `notifications/message`, to every client, with `logger` naming the backend: `<server>`,
    /// or `<server>/<the backend's logger>`. Spliced: `data` passes byte for byte.
    private func relayLogMessage(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        guard let params = scan.params, raw[params.lowerBound] == UInt8(ascii: "{") else { return }
        var splice = Splice()
        var replacement: ByteBuffer
        if let logger = gateway.scanner.member("logger", inObjectAt: params, of: raw) {
            let own = raw[logger.lowerBound] == UInt8(ascii: "\"") ? (try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[logger]))) : nil
            replacement = jsonStringLiteral(own.map { "\(name)/\($0)" } ?? name)
            splice.replace(logger, bytes: replacement)
        } else {
            replacement = ByteBuffer(string: "\"logger\":")
            replacement.append(jsonStringLiteral(name))
            if !gateway.scanner.isEmptyObject(at: params, of: raw) { replacement.appendByte(UInt8(ascii: ",")) }
            let inside = params.lowerBound + 1
            splice.replace(inside..<inside, bytes: replacement)
        }
        withExtendedLifetime(replacement) {
            // The server's own view gets its logger as it is.
            for session in gateway.sessions where session.view.shows(name) && (owner == nil || session === owner) {
                session.relay(frame, session.view.isPrefixed ? splice : Splice())
            }
        }
    }

    /// `notifications/tasks/status`, to every handshake-era client (on stdio, the one), with the
    /// task id exposed.
    private func relayTaskStatus(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        guard let params = scan.params, let idRange = gateway.scanner.member("taskId", inObjectAt: params, of: raw),
              raw[idRange.lowerBound] == UInt8(ascii: "\""),
              let id = try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[idRange]))
        else { return }
        let literal = jsonStringLiteral(ExposedTaskID.expose(server: name, separator: gateway.config.gateway.separator, id: id))
        var splice = Splice()
        splice.replace(idRange, bytes: literal)
        withExtendedLifetime(literal) {
            for session in gateway.sessions where !session.isStateless && session.view.shows(name) && (owner == nil || session === owner) {
                session.relay(frame, splice)
            }
        }
    }

    /// `notifications/resources/updated`, to the sessions subscribed to the resource, with its
    /// exposed URI.
    private func relayResourceUpdated(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        guard let uriRange = scan.paramsURI, raw[uriRange.lowerBound] == UInt8(ascii: "\""),
              let uri = try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[uriRange]))
        else { return }
        let exposed = ExposedURI.expose(server: name, uri: uri)
        let literal = jsonStringLiteral(exposed)
        var splice = Splice()
        splice.replace(uriRange, bytes: literal)
        withExtendedLifetime(literal) {
            for session in gateway.sessions where session.isSubscribed(exposed) && (owner == nil || session === owner) {
                // A session of a server's view sees the server's own URI.
                let prefixed = session.view.isPrefixed
                if session.isStateless {
                    session.relayResourceUpdated(frame, scan, exposedURI: exposed, shownURI: prefixed ? exposed : uri)
                } else {
                    session.relay(frame, prefixed ? splice : Splice())
                }
            }
        }
    }

    // MARK: Requests from the backend

    /// A request the backend sends a client. `ping` is answered here; sampling, elicitation and
    /// roots go to the session whose request the backend is serving (on stdio, the one
    /// session), which answers for a client that lacks the capability.
    private func handleRequest(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        guard let idRange = scan.id else { return }
        let method = scan.method!
        if rangeEquals(raw, method, "\"ping\"") {
            answer(RawValue(frame, idRange), result: "{}")
            return
        }
        let capability: String?
        if rangeEquals(raw, method, "\"sampling/createMessage\"") {
            capability = "sampling"
        } else if rangeEquals(raw, method, "\"elicitation/create\"") {
            capability = "elicitation"
        } else if rangeEquals(raw, method, "\"roots/list\"") {
            capability = "roots"
        } else {
            capability = nil
        }
        let methodName = (try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[method]))) ?? "?"
        guard let capability else {
            log.debug("backend \"\(name)\" asked \(methodName), which mcpd does not relay")
            answer(RawValue(frame, idRange), code: ErrorCode.methodNotFound, message: "Method not found: \(methodName) (mcpd does not relay it to clients)")
            return
        }
        // A handshake-era request names no client request: it goes to the one session with
        // requests in flight here, and mcpd never guesses between several.
        let owners = sessionsInFlight(limit: 2)
        let session: ClientSession
        if owners.count == 1 {
            session = owners[0]
        } else if owners.isEmpty && gateway.sessions.count == 1 {
            session = gateway.sessions[0]
        } else if owners.isEmpty {
            answer(RawValue(frame, idRange), code: ErrorCode.methodNotFound,
                   message: gateway.sessions.isEmpty ? "no client is connected to answer \(methodName)"
                       : "no client has a request in flight on backend \"\(name)\", so mcpd cannot tell which client should answer \(methodName)")
            return
        } else {
            let message = "several clients have requests in flight on backend \"\(name)\" and its \(methodName) names none of them, so mcpd cannot tell which client should answer (isolation: session would give each client its own process)"
            log.warning("backend \"\(name)\": \(message)")
            answer(RawValue(frame, idRange), code: ErrorCode.internalError, message: message)
            return
        }
        if let refusal = session.relayServerRequest(frame, scan, capability: capability, method: methodName, from: self) {
            answer(RawValue(frame, idRange), code: refusal.code, message: refusal.message)
        }
    }

    /// Subscribes mcpd to (or unsubscribes it from) a resource of the backend, for a stateless
    /// client's listen stream or, when the backend speaks only the stateless era, for any client.
    func subscribe(_ uri: String, _ on: Bool) {
        if era == .stateless {
            // The stateless era subscribes on a listen stream: mcpd's is opened again with
            // the new set.
            guard on ? listenURIs.insert(uri).inserted : listenURIs.remove(uri) != nil else { return }
            // A lazy server not running yet starts for its subscriber (`becomeReady` opens the
            // stream).
            if on && (state == .configured || state == .stopped) && !gateway.isShuttingDown && !isRetired { start() }
            openListen()
            return
        }
        guard state == .ready else { return }
        let method: StaticString = on ? "resources/subscribe" : "resources/unsubscribe"
        request(method, params: ["uri": .string(uri)]) { [unowned self] result in
            if case .success(let reply) = result, reply.result != nil { return }
            log.warning("backend \"\(name)\" refused \(method) \"\(uri)\"")
        }
    }

    /// Sends the backend a client's answer to one of its requests, with the backend's own id
    /// put back. Dropped when the process that asked is gone.
    func deliverClientResponse(_ frame: ByteBuffer, replacing idRange: Range<Int>, with id: RawValue, epoch: Int) {
        guard epoch == self.epoch, let process else { return }
        var splice = Splice()
        splice.replace(idRange, raw: id)
        splice.write(frame, to: process.stdin)
    }

    /// Answers one of the backend's requests with a result (raw JSON).
    func answer(_ id: RawValue, result: StaticString) {
        guard let process else { return }
        var reply = ByteBuffer(capacity: 64)
        reply.append(string: "{\"jsonrpc\":\"2.0\",\"id\":")
        id.withBytes { reply.append($0) }
        reply.append(string: ",\"result\":\(result)}\n")
        process.stdin.write(reply)
    }

    /// Answers one of the backend's requests with `result`, raw JSON from `frame`.
    func answer(_ id: RawValue, result range: Range<Int>, of frame: ByteBuffer, epoch: Int) {
        guard epoch == self.epoch, let process else { return }
        var reply = ByteBuffer(capacity: range.count + 64)
        reply.append(string: "{\"jsonrpc\":\"2.0\",\"id\":")
        id.withBytes { reply.append($0) }
        reply.append(string: ",\"result\":")
        reply.append(frame.slice(range))
        reply.append(string: "}\n")
        process.stdin.write(reply)
    }

    /// Answers one of the backend's requests with an error.
    func answer(_ id: RawValue, code: Int, message: String, epoch: Int? = nil) {
        guard epoch == nil || epoch == self.epoch, let process else { return }
        var reply = errorResponse(id: id, code: code, message: message)
        reply.appendByte(0x0A)
        process.stdin.write(reply)
    }
}
