import Reactor

/// One client conversation, served over a transport (`StdioTransport`: mcpd's stdin and
/// stdout), which frames the client's messages and hands them here.
///
/// mcpd answers `initialize`, `ping` and the four list methods itself, from its merged
/// catalog; `tools/call`, `prompts/get`, `resources/*` and `completion/complete` go to the
/// backend that owns the name or URI, with the id rewritten and the name spliced back to the
/// backend's own, and the answer comes back with the client's id byte for byte (the method
/// handlers are in `SessionRequests.swift`; the backends' requests to the client in
/// `ServerRequests.swift`). Until the gateway's start-up has settled (every backend ready or
/// failed), frames are held so that the first `tools/list` sees every tool.
public final class ClientSession {
    /// The gateway owns its sessions and outlives them.
    unowned(unsafe) let gateway: Gateway
    /// What the session is served over.
    let transport: SessionTransport
    /// Where answers and notifications go.
    let output: SessionOutput
    /// What the session sees: every server, or one (`/mcp/<server>`).
    let view: CatalogView

    /// The protocol version agreed in `initialize`, if any.
    public internal(set) var negotiatedVersion: String?
    /// True after `notifications/initialized`.
    public internal(set) var isInitialized = false
    /// The client's name from `initialize`, for logs.
    public internal(set) var clientName = "client"
    /// The protocol era the client speaks.
    var era = ClientEra.unknown
    /// The client negotiated a version before 2025-06-18: tool results reach it without
    /// `structuredContent` (their text content stays), and tools without `outputSchema`.
    var predatesStructuredOutput = false
    /// The capabilities the client declared in `initialize` (or, stateless, in its first
    /// request's envelope).
    var clientCapabilities: JSONValue = .null
    /// A stateless client's open `subscriptions/listen` requests.
    var listenStreams: [ListenStream] = []
    /// A stateless client's calls waiting for its input, by the `requestState` handle mcpd gave.
    var inputWaits: [String: InputWait] = [:]
    var nextInputKey = 0
    /// Exposed URIs of the resources the client subscribed to.
    var subscriptions: Set<String> = []
    /// Backends' requests relayed to the client and not yet answered, by the id mcpd gave them.
    var serverRequests: [Int: RelayedServerRequest] = [:]
    var nextServerRequestID = 1

    /// Frames received before start-up settled, and their bytes. Past either limit the
    /// transport stops reading the client until start-up settles.
    private var held: [ByteBuffer] = []
    private var heldBytes = 0
    private static let maxHeldFrames = 1024
    static let maxHeldBytes = 32 << 20
    /// Forwarded requests not yet answered.
    var inFlight = 0
    /// Command tools running for this session.
    var commandRuns: [CommandRun] = []
    /// Pipelines running for this session.
    var pipelineRuns: [PipelineRun] = []
    /// 0 for a client's session; 1 and more for the sessions that run pipelines' steps.
    var pipelineDepth = 0
    /// This session's own processes of `isolation: session` servers.
    private(set) var ownProcesses: [Backend] = []
    private var inputEnded = false
    private var drainTimer: LoopTimer?
    private(set) var finished = false
    /// The batch being dispatched, if any: answers go to it instead of the output.
    var currentBatch: BatchCollector?

    /// The session's name in logs: `stdio`, or `http:` and the start of its session id.
    var label = "stdio"
    /// True for the stdio session: mcpd stops when it ends.
    let endsGateway: Bool

    init(gateway: Gateway, transport: StdioTransport, view: CatalogView) {
        self.gateway = gateway
        self.transport = transport
        self.output = SessionOutput(stream: transport.output)
        self.view = view
        self.endsGateway = true
    }

    /// A session whose messages go to `output` (an HTTP session's).
    init(gateway: Gateway, transport: SessionTransport, output: SessionOutput, label: String, view: CatalogView? = nil) {
        self.gateway = gateway
        self.transport = transport
        self.output = output
        self.view = view ?? gateway.view
        self.label = label
        self.endsGateway = false
        output.onStallChange = { [unowned gateway] change in gateway.stalledOutputs += change }
    }

    func start() {
        transport.start(for: self)
    }

    // MARK: Input

    /// True while the session takes more frames (it is serving, and the client has not closed
    /// its input).
    var wantsInput: Bool { !inputEnded && !finished }

    /// True when as many frames are held (during start-up) as the session may hold.
    var holdsTooMuch: Bool { held.count >= ClientSession.maxHeldFrames || heldBytes >= ClientSession.maxHeldBytes }

    /// The client stopped reading mcpd's output.
    func outputFailed(_ error: UVError) {
        gateway.log.info("the client stopped reading mcpd's output (\(error)); ending the session")
        finish(abandon: true, reason: nil)
    }

    /// The client closed its input (or reading it failed).
    func inputDidEnd(_ error: UVError) {
        if error != .eof { gateway.log.warning("reading the client's input failed: \(error)") }
        inputEnded = true
        finishIfDrained()
        startDrainDeadline()
    }

    /// After the client closed its input, answers still on their way get a bounded grace, then
    /// mcpd stops regardless. Frames held during start-up are served first: the grace starts
    /// only once they have been dispatched.
    private func startDrainDeadline() {
        guard inputEnded, !finished, drainTimer == nil, gateway.isStartupSettled, held.isEmpty else { return }
        let grace = gateway.config.gateway.drainTimeoutMs
        gateway.log.info("the client closed its input; waiting up to \(formatSeconds(grace)) for \(plural(inFlight, "request")) in flight")
        let timer = LoopTimer(loop: gateway.loop)
        drainTimer = timer
        timer.start(timeout: grace) { [unowned self] in
            finish(abandon: true, reason: "mcpd is shutting down: the client closed its input \(formatSeconds(grace)) ago")
        }
    }

    func receive(_ frame: ByteBuffer) {
        if !gateway.isStartupSettled || !held.isEmpty {
            if !isBlank(frame) {
                // A copy: a slice would keep the whole read buffer it came from alive.
                var copy = ByteBuffer(capacity: frame.readableBytes)
                copy.append(frame)
                held.append(copy)
                heldBytes += copy.readableBytes
            }
            return
        }
        handle(frame)
    }

    /// A frame the transport has scanned already (an HTTP body): dispatched without a second
    /// scan once start-up has settled.
    func receive(_ frame: ByteBuffer, scanned scan: MessageScan) {
        guard gateway.isStartupSettled && held.isEmpty else { return receive(frame) }
        dispatch(frame, scan)
    }

    /// Processes frames held during start-up.
    func startupSettled() {
        let frames = held
        held.removeAll()
        heldBytes = 0
        for frame in frames where !finished { handle(frame) }
        transport.resumeReading(for: self)
        finishIfDrained()
        startDrainDeadline()
    }

    private func isBlank(_ frame: ByteBuffer) -> Bool {
        frame.readablePointer.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
    }

    private func handle(_ frame: ByteBuffer) {
        if isBlank(frame) { return }
        var scan = MessageScan()
        do {
            try gateway.scanner.scan(frame, into: &scan)
        } catch {
            switch error {
            case .invalidJSON:
                sendError(id: .null, code: ErrorCode.parseError, message: "Parse error: \(error)")
            case .invalidRequest:
                sendError(id: .null, code: ErrorCode.invalidRequest, message: "Invalid request: \(error)")
            }
            return
        }
        dispatch(frame, scan)
    }

    private func dispatch(_ frame: ByteBuffer, _ scan: MessageScan) {
        if scan.kind == .request {  // a compare, not a jump table (see readFrames)
            handleRequest(frame, scan)
        } else {
            dispatchOther(frame, scan)
        }
    }

    /// `dispatch` for what is not a request; apart, so that its switch does not absorb the
    /// request's compare into a jump table.
    @inline(never)
    private func dispatchOther(_ frame: ByteBuffer, _ scan: MessageScan) {
        switch scan.kind {
        case .request: handleRequest(frame, scan)
        case .notification: handleNotification(frame, scan)
        case .response: handleResponse(frame, scan)
        case .batch: handleBatch(frame)
        }
    }

    private func handleRequest(_ frame: ByteBuffer, _ scan: MessageScan) {
        let method = scan.method!
        frame.withUnsafeReadableBytes { raw in
            if era != .handshake && !checkEra(frame, raw, scan) { return }
            if rangeEquals(raw, method, "\"tools/call\"") {
                callTool(frame, raw, scan)
            } else {
                handleOtherRequest(frame, raw, scan)
            }
        }
    }

    private func handleNotification(_ frame: ByteBuffer, _ scan: MessageScan) {
        frame.withUnsafeReadableBytes { raw in
            let method = scan.method!
            if rangeEquals(raw, method, "\"notifications/initialized\"") {
                isInitialized = true
            } else if rangeEquals(raw, method, "\"notifications/roots/list_changed\"") {
                for backend in view.backends { backend.forwardNotification(frame) }
            } else if rangeEquals(raw, method, "\"notifications/cancelled\"") {
                guard let requestID = scan.paramsRequestID else { return }
                if !listenStreams.isEmpty && endListen(raw, requestID: requestID) { return }
                if cancelOwnRun(raw, requestID) { return }
                for backend in gateway.allBackends {
                    if let gatewayID = backend.pendingID(session: self, clientID: raw, range: requestID) {
                        let batch = backend.forwardCancel(frame, requestIDRange: requestID, gatewayID: gatewayID)
                        if let batch {
                            // A cancelled request gets no answer; the rest of its batch still does.
                            batch.outstanding -= 1
                            batch.finishIfDone()
                        }
                        requestEnded()
                        return
                    }
                }
            }
            // Other notifications (progress from the client) have no backend to go to.
        }
    }

    private func handleBatch(_ frame: ByteBuffer) {
        guard negotiatedVersion == ProtocolVersion.batching else {
            sendError(id: .null, code: ErrorCode.invalidRequest,
                      message: "Invalid request: batches are accepted only under protocol \(ProtocolVersion.batching) (negotiated: \(negotiatedVersion ?? "none"))")
            return
        }
        // The frame was scanned whole; only the element ranges are wanted now.
        let elements = (try? gateway.scanner.batchElements(frame)) ?? []
        guard !elements.isEmpty else {
            sendError(id: .null, code: ErrorCode.invalidRequest, message: "Invalid request: empty batch")
            return
        }
        let batch = BatchCollector(session: self)
        currentBatch = batch
        for range in elements {
            let element = frame.slice(range)
            do {
                let elementScan = try gateway.scanner.scan(element)
                if elementScan.kind == .batch {
                    sendError(id: .null, code: ErrorCode.invalidRequest, message: "Invalid request: nested batch")
                } else {
                    dispatch(element, elementScan)
                }
            } catch {
                sendError(id: .null, code: ErrorCode.invalidRequest, message: "Invalid request: \(error)")
            }
        }
        currentBatch = nil
        batch.sealed = true
        batch.finishIfDone()
    }

    // MARK: Output

    /// Sends `{"jsonrpc":"2.0","id":<id from frame>,"result":<literal>}`.
    func sendResult(_ frame: ByteBuffer, _ idRange: Range<Int>, literal: StaticString) {
        var result = ByteBuffer(capacity: literal.utf8CodeUnitCount)
        result.append(UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
        sendResult(frame, idRange, buffer: result)
    }

    /// Sends a result of mcpd's own; `cacheHints`: it is a list (or discovery), whose result
    /// carries `ttlMs` and `cacheScope` for a stateless client.
    func sendResult(_ frame: ByteBuffer, _ idRange: Range<Int>, buffer result: ByteBuffer, cacheHints: Bool = false) {
        var message = ByteBuffer(capacity: result.readableBytes + 128)
        message.append(string: "{\"jsonrpc\":\"2.0\",\"id\":")
        message.append(frame.slice(idRange))
        message.append(string: ",\"result\":")
        if era == .stateless {
            appendStatelessResult(result, cacheHints: cacheHints, to: &message)
        } else {
            message.append(result)
        }
        message.appendByte(UInt8(ascii: "}"))
        emit(message)
    }

    func sendError(_ frame: ByteBuffer, _ idRange: Range<Int>, code: Int, message: String) {
        sendError(id: RawValue(frame, idRange), code: code, message: message, batch: currentBatch)
    }

    /// Sends a JSON-RPC error with `id` (`RawValue.null` when the id is unknown).
    func sendError(id: RawValue, code: Int, message text: String, data: JSONValue? = nil, batch: BatchCollector? = nil) {
        var message = errorResponse(id: id, code: code, message: text, data: data)
        if let batch = batch ?? currentBatch {
            batch.add(message)
        } else {
            message.appendByte(0x0A)
            output.write(message)
        }
    }

    /// Writes one message (without newline) to the current batch or the output.
    private func emit(_ message: ByteBuffer) {
        if let batch = currentBatch {
            batch.add(message)
        } else {
            output.write(message)
            newlineByte.withUnsafeBytes { output.write($0) }
        }
    }

    /// Delivers a backend's answer to a forwarded request, with the client's id put back.
    func requestSucceeded(_ frame: ByteBuffer, replacing range: Range<Int>, with id: RawValue, result: Range<Int>?, batch: BatchCollector?) {
        if era == .stateless, let result {
            relayStatelessResult(frame, replacing: range, with: id, result: result)
        } else if predatesStructuredOutput, let result, let cut = frame.withUnsafeReadableBytes({ gateway.scanner.removal(of: "structuredContent", inObjectAt: result, of: $0) }) {
            relayEdited(frame, replacing: range, with: id, and: (cut, ByteBuffer(capacity: 0)), batch: batch)
        } else if let batch {
            var message = ByteBuffer(capacity: frame.readableBytes + id.withBytes { $0.count })
            message.append(frame.slice(0..<range.lowerBound))
            id.withBytes { message.append($0) }
            message.append(frame.slice(range.upperBound..<frame.readableBytes))
            batch.outstanding -= 1
            batch.add(message)
        } else if frame.readableBytes < IOStream.copyThreshold {
            // The usual answer, assembled in place: the frame with the client's id put back.
            if output.stream == nil { output.answering = id }
            frame.withUnsafeReadableBytes { source in
                id.withBytes { value in
                    let tail = source.count - range.upperBound
                    output.write(count: range.lowerBound + value.count + tail + 1) { out in
                        let base = source.baseAddress!
                        UnsafeMutableRawPointer(out).copyMemory(from: base, byteCount: range.lowerBound)
                        var o = range.lowerBound
                        if value.count > 0 { UnsafeMutableRawPointer(out + o).copyMemory(from: value.baseAddress!, byteCount: value.count) }
                        o += value.count
                        UnsafeMutableRawPointer(out + o).copyMemory(from: base + range.upperBound, byteCount: tail)
                        out[o + tail] = 0x0A
                    }
                }
            }
        } else {
            if output.stream == nil { output.answering = id }
            var splice = Splice()
            splice.replace(range, raw: id)
            splice.write(frame, to: output)
        }
        if output.stream == nil { output.answering = nil }
        requestEnded()
    }

    /// A backend's answer with the client's id put back and one more range of it replaced
    /// (a member this client's version does not define cut out, a task id exposed), to the
    /// batch or the output. The slow path: off the usual answers.
    func relayEdited(_ frame: ByteBuffer, replacing range: Range<Int>, with id: RawValue, and edit: (range: Range<Int>, bytes: ByteBuffer),
                     batch: BatchCollector?)
    {
        var idBytes = ByteBuffer(capacity: 32)
        id.withBytes { idBytes.append($0) }
        let edits = [(range: range, bytes: idBytes), edit]
        guard let batch else {
            writeEdited(frame, edits, to: output)
            return
        }
        batch.outstanding -= 1
        batch.add(edited(frame, edits))
    }

    /// Fails a forwarded request with an error.
    func requestFailed(id: RawValue, code: Int, message: String, batch: BatchCollector?) {
        batch?.outstanding -= 1
        sendError(id: id, code: code, message: message, batch: batch)
        requestEnded()
    }

    /// Relays a backend notification tied to one of this session's requests (progress), with
    /// the client's own token put back.
    func relayNotification(_ frame: ByteBuffer, replacing range: Range<Int>, with token: RawValue) {
        var splice = Splice()
        splice.replace(range, raw: token)
        splice.write(frame, to: output)
    }

    /// Sends a notification mcpd makes itself (list_changed): a stateless client gets it on
    /// the listen streams that asked for it.
    func sendNotification(_ method: String) {
        guard isInitialized, !finished else { return }
        if era == .stateless {
            sendOnListenStreams(method)
            return
        }
        output.write(string: "{\"jsonrpc\":\"2.0\",\"method\":\"\(method)\"}\n")
    }

    /// Relays a backend's notification, edited by `splice`, once the client is initialized.
    func relay(_ frame: ByteBuffer, _ splice: Splice) {
        guard isInitialized, !finished else { return }
        splice.write(frame, to: output)
    }

    /// True when the client subscribed to the resource at `uri`.
    func isSubscribed(_ uri: String) -> Bool { subscriptions.contains(uri) }

    func requestEnded() {
        inFlight -= 1
        finishIfDrained()
    }

    @inline(__always)
    private func finishIfDrained() {
        if inputEnded && held.isEmpty && inFlight == 0 && currentBatch == nil { finish(abandon: false, reason: nil) }
    }

    /// Ends the session at its client's request (an HTTP session's DELETE, or its expiry):
    /// what is still in flight is cancelled at the backends. `abandon` false: nothing is (a
    /// stateless request's session, once answered), and the backends are not searched.
    func end(reason: String, abandon: Bool = true) {
        inputEnded = true
        finish(abandon: abandon, reason: reason)
    }

    /// Ends the session: the gateway shuts down when its stdio client is done. `abandon` cancels
    /// what is still in flight, answering the client with `reason` if there is one.
    private func finish(abandon: Bool, reason: String?) {
        guard !finished else { return }
        finished = true
        drainTimer?.close()
        drainTimer = nil
        transport.stopReading()
        if abandon {
            for backend in gateway.allBackends { backend.forgetSession(self, message: reason) }
            inFlight = 0
        }
        refuseServerRequests("the client disconnected")
        if !endsGateway {
            releaseSubscriptions()
            output.messagesStalled = false
        }
        stopOwnProcesses()
        for run in commandRuns { run.abandon() }
        commandRuns.removeAll()
        for run in pipelineRuns { run.abandon() }
        pipelineRuns.removeAll()
        gateway.sessionFinished(self)
    }

    /// A command tool's call: its arguments (the JSON text as the client sent it, or `{}`) on
    /// the program's stdin.
    func runCommandTool(_ tool: CommandToolConfig, _ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        let idRange = scan.id!
        guard currentBatch == nil else {
            return sendError(frame, idRange, code: ErrorCode.invalidRequest, message: "command tool \"\(tool.name)\" cannot be called inside a JSON-RPC batch; call it alone")
        }
        guard commandRuns.count < ClientSession.maxCommandRuns else {
            return sendError(frame, idRange, code: ErrorCode.internalError, message: "too many command tools running for this client (at most \(ClientSession.maxCommandRuns)); try again when one finishes")
        }
        var input = ByteBuffer(capacity: 64)
        if let params = scan.params, let range = gateway.scanner.member("arguments", inObjectAt: params, of: raw), !rangeEquals(raw, range, "null") {
            input.append(UnsafeRawBufferPointer(rebasing: raw[range]))
        } else {
            input.append(string: "{}")
        }
        input.appendByte(0x0A)
        let run = CommandRun(tool: tool, session: self, frame: frame, idRange: idRange)
        commandRuns.append(run)
        inFlight += 1
        run.start(input: input)
    }

    static let maxCommandRuns = 64

    /// A client's cancel of a command tool's call (its process group is killed) or of a
    /// pipeline's (its steps in flight are cancelled): no answer follows. False when the id
    /// names neither.
    private func cancelOwnRun(_ raw: UnsafeRawBufferPointer, _ requestID: Range<Int>) -> Bool {
        if let run = commandRuns.first(where: { RawValue($0.frame, $0.idRange).equals(raw, requestID) }) {
            run.abandon()
            commandRuns.removeAll { $0 === run }
        } else if let run = pipelineRuns.first(where: { RawValue($0.frame, $0.idRange).equals(raw, requestID) }) {
            run.abandon()
            pipelineRuns.removeAll { $0 === run }
        } else {
            return false
        }
        requestEnded()
        return true
    }

    /// A pipeline's call: its steps run in a session of the gateway's own.
    func runPipeline(_ pipeline: PipelineConfig, _ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        let idRange = scan.id!
        guard currentBatch == nil else {
            return sendError(frame, idRange, code: ErrorCode.invalidRequest, message: "pipeline \"\(pipeline.name)\" cannot be called inside a JSON-RPC batch; call it alone")
        }
        guard pipelineDepth < PipelineRun.maxDepth else {
            return sendError(frame, idRange, code: ErrorCode.invalidRequest, message: "pipeline \"\(pipeline.name)\": pipelines call each other more than \(PipelineRun.maxDepth) deep (a pipeline that calls itself?)")
        }
        guard pipelineRuns.count < ClientSession.maxCommandRuns else {
            return sendError(frame, idRange, code: ErrorCode.internalError, message: "too many pipelines running for this client (at most \(ClientSession.maxCommandRuns)); try again when one finishes")
        }
        var input: JSONValue = .object(JSONObject())
        var token: String?
        if let params = scan.params {
            if let range = gateway.scanner.member("arguments", inObjectAt: params, of: raw), let value = try? JSONParser.parse(UnsafeRawBufferPointer(rebasing: raw[range])), value != .null {
                input = value
            }
            if let meta = gateway.scanner.member("_meta", inObjectAt: params, of: raw), let range = gateway.scanner.member("progressToken", inObjectAt: meta, of: raw) {
                token = String(decoding: UnsafeRawBufferPointer(rebasing: raw[range]), as: UTF8.self)
            }
        }
        let run = PipelineRun(pipeline: pipeline, owner: self, frame: frame, idRange: idRange, input: input, progressToken: token)
        pipelineRuns.append(run)
        inFlight += 1
        run.start()
    }

    func pipelineFinished(_ run: PipelineRun, result: JSONObject) {
        pipelineRuns.removeAll { $0 === run }
        guard !finished else { return }
        sendResult(run.frame, run.idRange, buffer: JSONValue.object(result).serialized)
        requestEnded()
    }

    func commandRunFinished(_ run: CommandRun, result: JSONObject) {
        commandRuns.removeAll { $0 === run }
        guard !finished else { return }
        sendResult(run.frame, run.idRange, buffer: JSONValue.object(result).serialized)
        requestEnded()
    }

    /// The process of `server` (an `isolation: session` server) that serves this session alone,
    /// made on first use; it starts with the request that needs it.
    func ownProcess(of server: Backend) -> Backend {
        if let own = ownProcesses.first(where: { $0.name == server.name }) { return own }
        let own = Backend(config: server.config, gateway: gateway)
        own.owner = self
        ownProcesses.append(own)
        gateway.isolated.append(own)
        gateway.log.info("backend \"\(server.name)\" gets a process of its own for session \(label) (isolation: session)")
        return own
    }

    /// The session's own processes stop with it.
    private func stopOwnProcesses() {
        let processes = ownProcesses
        ownProcesses.removeAll()
        for own in processes {
            own.stopAll { [unowned(unsafe) gateway] in
                gateway.isolated.removeAll { $0 === own }
                own.closeHandles()
            }
        }
    }

    /// Unsubscribes the backends from the resources only this session watched (a session that
    /// ends while mcpd goes on serving others).
    private func releaseSubscriptions() {
        let watched = subscriptions
        subscriptions.removeAll()
        listenStreams.removeAll()
        for uri in watched where !gateway.sessions.contains(where: { $0 !== self && $0.isSubscribed(uri) }) {
            if let route = gateway.subscriptionRoute(uri) { route.backend.subscribe(route.originalName, false) }
        }
    }

    /// Closes the session's transport, flushing what is queued for at most `flushDeadlineMs`.
    func close(flushDeadlineMs: UInt64 = 2000) {
        finished = true
        drainTimer?.close()
        drainTimer = nil
        transport.close(flushDeadlineMs: flushDeadlineMs)
    }
}
